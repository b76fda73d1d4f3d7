"""Fetching against a real HTTP server on 127.0.0.1: statuses, redirects, limits, encodings, charsets."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import socket
import threading
import time

import brotli
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watcher.fetch import Fetcher, decode_body

PAGE = "<!doctype html><html><head><title>Privacy</title></head><body><main><h1>Privacy</h1><p>We keep your data safe.</p></main></body></html>"

FRENCH = (
    "<html lang='fr'><head>{meta}<title>Politique de confidentialité</title></head><body><main>"
    "<h1>Politique de confidentialité</h1>"
    "<p>Nous protégeons vos données personnelles. Les renseignements recueillis sont conservés pendant la durée "
    "nécessaire à la réalisation des fins déterminées. Vous pouvez retirer votre consentement à tout moment, sous "
    "réserve des restrictions légales ou contractuelles. Données, sécurité, accès, rectification — « droits » à "
    "l'égard de nos partenaires; conformément à la loi.</p>"
    "<p>Ça dépend : où êtes-vous ? Élève, été, œuvre, déjà, garçon, très, fenêtre, naïf, coût.</p>"
    "</main></body></html>"
)
ACCENTED = ["confidentialité", "œuvre", "très", "déjà", "garçon", "fenêtre", "naïf", "coût", "« droits »", "—", "Ça"]


@pytest.fixture
def fetcher():
    with Fetcher(user_agent="watcher-tests", timeout=5, max_bytes=200_000) as f:
        yield f


def _codec(name: str) -> str:
    """Charset labels compared by codec: "windows-1252", "cp1252" and "CP1252" are one charset."""
    return codecs.lookup(name).name


def _french_ok(text: str) -> None:
    for word in ACCENTED:
        assert word in text, word


# --- statuses ---------------------------------------------------------------------------


def test_200_html(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/p").respond_with_data(PAGE, content_type="text/html; charset=utf-8")
    res = fetcher.fetch(web.url_for("/p"))
    assert res.ok and res.error is None
    assert res.status == 200
    assert res.text == PAGE
    assert res.body == PAGE.encode()
    assert _codec(res.charset) == "utf-8"
    assert res.final_url == web.url_for("/p")
    assert res.fetched_at.endswith("Z")
    assert res.duration_ms >= 0


def test_request_headers_are_sent(web: HTTPServer) -> None:
    web.expect_request("/p", headers={"User-Agent": "ua-under-test", "Accept-Language": "fr-FR"}).respond_with_data(
        PAGE, content_type="text/html"
    )
    with Fetcher(user_agent="ua-under-test") as f:
        res = f.fetch(web.url_for("/p"), headers={"Accept-Language": "fr-FR"})
    assert res.ok, res.error


def test_304_with_etag(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/p", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    web.expect_request("/p").respond_with_data(PAGE, content_type="text/html", headers={"ETag": '"v1"'})
    first = fetcher.fetch(web.url_for("/p"))
    assert first.ok and not first.not_modified
    assert first.headers["etag"] == '"v1"'
    second = fetcher.fetch(web.url_for("/p"), etag=first.headers["etag"])
    assert second.ok, second.error
    assert second.not_modified
    assert second.status == 304
    assert second.body == b""


def test_304_with_last_modified(web: HTTPServer, fetcher: Fetcher) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    web.expect_request("/p", headers={"If-Modified-Since": stamp}).respond_with_data("", status=304)
    web.expect_request("/p").respond_with_data(PAGE, content_type="text/html", headers={"Last-Modified": stamp})
    first = fetcher.fetch(web.url_for("/p"))
    assert first.headers["last-modified"] == stamp and not first.not_modified
    second = fetcher.fetch(web.url_for("/p"), last_modified=stamp)
    assert second.ok and second.not_modified


@pytest.mark.parametrize(("status", "words"), [(404, "HTTP 404 NOT FOUND"), (500, "HTTP 500"), (403, "HTTP 403")])
def test_http_errors(web: HTTPServer, fetcher: Fetcher, status: int, words: str) -> None:
    web.expect_request("/p").respond_with_data("<html><body><p>oops, something broke here</p></body></html>", status)
    res = fetcher.fetch(web.url_for("/p"))
    assert not res.ok
    assert res.status == status
    assert res.error_kind == "http"
    assert words.lower() in res.error.lower()
    assert res.body == b"" and res.text == ""


def test_503_retry_after(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/p").respond_with_data("busy", 503, headers={"Retry-After": "120"})
    res = fetcher.fetch(web.url_for("/p"))
    assert res.status == 503 and res.retry_after == 120.0
    assert "retry after 120s" in res.error


# --- redirects --------------------------------------------------------------------------


def _redirect(web: HTTPServer, frm: str, to: str, status: int = 302) -> None:
    web.expect_request(frm).respond_with_data("", status=status, headers={"Location": to})


def test_follows_five_redirects(web: HTTPServer, fetcher: Fetcher) -> None:
    for i in range(5):
        _redirect(web, f"/r{i}", f"/r{i + 1}" if i % 2 else web.url_for(f"/r{i + 1}"), 301 if i % 2 else 302)
    web.expect_request("/r5").respond_with_data(PAGE, content_type="text/html")
    res = fetcher.fetch(web.url_for("/r0"))
    assert res.ok, res.error
    assert res.final_url == web.url_for("/r5")
    assert res.text == PAGE


def test_refuses_a_sixth_redirect(web: HTTPServer, fetcher: Fetcher) -> None:
    for i in range(6):
        _redirect(web, f"/r{i}", f"/r{i + 1}")
    web.expect_request("/r6").respond_with_data(PAGE, content_type="text/html")
    res = fetcher.fetch(web.url_for("/r0"))
    assert not res.ok
    assert res.error_kind == "redirects"
    assert "more than 5 redirects" in res.error
    assert res.text == ""


def test_refuses_a_redirect_loop(web: HTTPServer, fetcher: Fetcher) -> None:
    _redirect(web, "/a", "/b")
    _redirect(web, "/b", "/a")
    res = fetcher.fetch(web.url_for("/a"))
    assert not res.ok
    assert res.error_kind == "redirect-loop"
    assert web.url_for("/a") in res.error


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/policy.html", "javascript:alert(1)"])
def test_refuses_a_redirect_to_another_scheme(web: HTTPServer, fetcher: Fetcher, target: str) -> None:
    _redirect(web, "/p", target)
    res = fetcher.fetch(web.url_for("/p"))
    assert not res.ok
    assert res.error_kind == "scheme"
    assert "refused" in res.error
    assert [r.path for r, _ in web.log] == ["/p"]  # nothing was fetched from the target


def test_refuses_a_non_http_url(fetcher: Fetcher) -> None:
    res = fetcher.fetch("file:///etc/passwd")
    assert not res.ok and res.error_kind == "scheme"


# --- network failures -------------------------------------------------------------------


def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = fetcher.fetch(f"http://127.0.0.1:{port}/privacy")
    assert not res.ok
    assert res.error_kind == "refused"
    assert "connection refused by 127.0.0.1" in res.error
    assert res.status is None


def test_timeout(web: HTTPServer) -> None:
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(5)
        return Response(PAGE, content_type="text/html")

    web.expect_request("/slow").respond_with_handler(slow)
    with Fetcher(user_agent="t", timeout=0.3) as f:
        res = f.fetch(web.url_for("/slow"))
    # Let the server's handler finish now: a request still in flight would land in the
    # next test's request log.
    release.set()
    deadline = time.monotonic() + 5
    while not web.log and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not res.ok
    assert res.error_kind == "timeout"
    assert "timeout after 0.3s" in res.error


def test_private_addresses_refused_when_disallowed(web: HTTPServer) -> None:
    web.expect_request("/p").respond_with_data(PAGE, content_type="text/html")
    with Fetcher(user_agent="t", allow_private=False) as f:
        res = f.fetch(web.url_for("/p"))
    assert not res.ok and res.error_kind == "private"
    assert web.log == []  # refused before any request was made


# --- size caps and content encodings ----------------------------------------------------


def test_body_over_max_bytes_with_content_length(web: HTTPServer) -> None:
    big = "<html><body>" + "<p>policy words here</p>" * 20_000 + "</body></html>"  # ~480 kB
    web.expect_request("/big").respond_with_data(big, content_type="text/html")
    with Fetcher(user_agent="t", max_bytes=200_000) as f:
        res = f.fetch(web.url_for("/big"))
    assert not res.ok
    assert res.error_kind == "too-large"
    assert "200,000" in res.error
    assert res.body == b""


def test_streamed_body_stops_at_the_cap(web: HTTPServer) -> None:
    """No Content-Length: the fetcher stops reading once the cap is passed instead of downloading it all."""
    chunk = b"<p>" + b"x" * 65_530 + b"</p>"
    total = 2_000  # 128 MB if it were all read
    sent: list[int] = []

    def stream():
        yield b"<html><body>"
        for i in range(total):
            sent.append(i)
            yield chunk

    web.expect_request("/stream").respond_with_handler(
        lambda _req: Response(stream(), content_type="text/html", direct_passthrough=True)
    )
    with Fetcher(user_agent="t", max_bytes=300_000) as f:
        res = f.fetch(web.url_for("/stream"))
    assert not res.ok
    assert res.error_kind == "too-large"
    assert len(sent) < total // 2


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_bodies_are_decoded(web: HTTPServer, fetcher: Fetcher, encoding: str) -> None:
    data = gzip.compress(PAGE.encode()) if encoding == "gzip" else brotli.compress(PAGE.encode())
    web.expect_request("/z").respond_with_data(data, content_type="text/html", headers={"Content-Encoding": encoding})
    res = fetcher.fetch(web.url_for("/z"))
    assert res.ok, res.error
    assert res.text == PAGE


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb_stopped_at_the_cap(web: HTTPServer, encoding: str) -> None:
    plain = b"<html><body><p>" + b"A" * 20_000_000 + b"</p></body></html>"
    data = gzip.compress(plain, 9) if encoding == "gzip" else brotli.compress(plain, quality=5)
    assert len(data) < 300_000  # a small download that would decode to 20 MB
    web.expect_request("/bomb").respond_with_data(
        data, content_type="text/html", headers={"Content-Encoding": encoding}
    )
    with Fetcher(user_agent="t", max_bytes=1_000_000) as f:
        res = f.fetch(web.url_for("/bomb"))
    assert not res.ok
    assert res.error_kind == "too-large"
    assert "decoded" in res.error
    assert res.body == b""


def test_corrupt_gzip_is_an_error(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/z").respond_with_data(
        b"this is not gzip at all", content_type="text/html", headers={"Content-Encoding": "gzip"}
    )
    res = fetcher.fetch(web.url_for("/z"))
    assert not res.ok and res.error_kind == "encoding"


# --- content types and bodies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ctype", "body", "words"),
    [
        ("application/pdf", b"%PDF-1.7\n...", "PDF policies are not supported yet"),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        ("application/json", b'{"policy": "we keep your data"}', "application/json"),
        ("text/html", b"%PDF-1.4 mislabelled", "PDF"),  # the bytes tell the truth
        ("text/html", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "PNG image"),
    ],
)
def test_non_html_content_is_an_error(web: HTTPServer, fetcher: Fetcher, ctype: str, body: bytes, words: str) -> None:
    web.expect_request("/x").respond_with_data(body, content_type=ctype)
    res = fetcher.fetch(web.url_for("/x"))
    assert not res.ok
    assert res.error_kind == "content-type"
    assert words in res.error
    assert res.body == b""


@pytest.mark.parametrize("body", [b"", b"  \n\t  \n"])
def test_empty_body_is_an_error(web: HTTPServer, fetcher: Fetcher, body: bytes) -> None:
    web.expect_request("/e").respond_with_data(body, content_type="text/html")
    res = fetcher.fetch(web.url_for("/e"))
    assert not res.ok
    assert res.error_kind == "empty"
    assert res.status == 200


def test_plain_text_and_markdown_are_accepted(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/t.md").respond_with_data("# Privacy\n\nWe keep data.\n", content_type="text/markdown")
    res = fetcher.fetch(web.url_for("/t.md"))
    assert res.ok and res.text.startswith("# Privacy")


# --- charsets ---------------------------------------------------------------------------


def test_windows_1252_from_the_header(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/fr").respond_with_data(
        FRENCH.format(meta="").encode("cp1252"), content_type="text/html; charset=windows-1252"
    )
    res = fetcher.fetch(web.url_for("/fr"))
    assert res.ok and _codec(res.charset) == "cp1252"
    _french_ok(res.text)


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="windows-1252">',
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',  # means windows-1252
    ],
)
def test_windows_1252_from_the_meta_tag(web: HTTPServer, fetcher: Fetcher, meta: str) -> None:
    web.expect_request("/fr").respond_with_data(FRENCH.format(meta=meta).encode("cp1252"), content_type="text/html")
    res = fetcher.fetch(web.url_for("/fr"))
    assert res.ok and _codec(res.charset) == "cp1252"
    _french_ok(res.text)


def test_windows_1252_without_any_declaration(web: HTTPServer, fetcher: Fetcher) -> None:
    web.expect_request("/fr").respond_with_data(FRENCH.format(meta="").encode("cp1252"), content_type="text/html")
    res = fetcher.fetch(web.url_for("/fr"))
    assert res.ok
    _french_ok(res.text)


def test_header_charset_wins_over_meta(web: HTTPServer, fetcher: Fetcher) -> None:
    page = FRENCH.format(meta='<meta charset="windows-1252">')
    web.expect_request("/fr").respond_with_data(page.encode("utf-8"), content_type="text/html; charset=utf-8")
    res = fetcher.fetch(web.url_for("/fr"))
    assert _codec(res.charset) == "utf-8"
    _french_ok(res.text)


def test_meta_wins_over_detection(web: HTTPServer, fetcher: Fetcher) -> None:
    page = FRENCH.format(meta='<meta charset="utf-8">')
    web.expect_request("/fr").respond_with_data(page.encode("utf-8"), content_type="text/html")
    res = fetcher.fetch(web.url_for("/fr"))
    assert _codec(res.charset) == "utf-8"
    _french_ok(res.text)


@pytest.mark.parametrize("label", ["iso-8859-1", "ISO-8859-1", "windows-1252"])
def test_utf8_bytes_labelled_latin1(web: HTTPServer, fetcher: Fetcher, label: str) -> None:
    page = FRENCH.format(meta=f'<meta charset="{label}">')
    web.expect_request("/fr").respond_with_data(page.encode("utf-8"), content_type=f"text/html; charset={label}")
    res = fetcher.fetch(web.url_for("/fr"))
    assert _codec(res.charset) == "utf-8"
    _french_ok(res.text)
    assert "Ã" not in res.text


def test_detection_of_undeclared_pages() -> None:
    """decode_body on its own: undeclared UTF-8, UTF-16 with a BOM, an unknown header charset."""
    page = FRENCH.format(meta="")
    text, charset = decode_body(page.encode("utf-8"), "text/html")
    assert (text, _codec(charset)) == (page, "utf-8")
    text, _ = decode_body(page.encode("utf-16"), "")
    assert text == page
    text, _ = decode_body(page.encode("cp1252"), "text/html; charset=x-no-such-charset")
    _french_ok(text)


@pytest.mark.parametrize("seed", ["cantrex"])
def test_windows_1252_seed_page_without_declaration(web: HTTPServer, fetcher: Fetcher, seed: str) -> None:
    """A whole French policy page served in windows-1252 with no charset anywhere."""
    from watcher import samples

    page = samples.page(seed).replace('<meta charset="utf-8">', "")
    web.expect_request("/fr").respond_with_data(page.encode("cp1252", errors="strict"), content_type="text/html")
    res = fetcher.fetch(web.url_for("/fr"))
    assert res.ok
    assert res.text == page


def test_credentials_are_not_sent_to_another_origin(web: HTTPServer) -> None:
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/landing").respond_with_data(PAGE, content_type="text/html")
        _redirect(web, "/same", "/moved")
        web.expect_request("/moved").respond_with_data("", status=302, headers={"Location": other.url_for("/landing")})
        with Fetcher(user_agent="t") as f:
            res = f.fetch(web.url_for("/same"), headers={"Authorization": "Bearer s3cret", "X-Keep": "yes"})
        assert res.ok, res.error
        assert [r.headers.get("Authorization") for r, _ in web.log] == ["Bearer s3cret", "Bearer s3cret"]
        ((landing, _),) = other.log
        assert landing.headers.get("Authorization") is None
        assert landing.headers.get("X-Keep") == "yes"
    finally:
        other.stop()


def test_a_cookie_check_redirect_is_passed_and_its_cookie_stays_on_its_origin(web: HTTPServer) -> None:
    """Consent and bot gates set a cookie on a redirect and send the page only to a client that
    returns it; the cookie is for that site's host, never for the next one (127.0.0.2: cookies
    ignore ports, so another port of 127.0.0.1 would rightly get it)."""

    def gate(request: Request) -> Response:
        return Response("", status=302, headers={"Set-Cookie": "gate=passed; Path=/", "Location": "/policy"})

    def policy(request: Request) -> Response:
        if request.cookies.get("gate") != "passed":
            return Response("", status=302, headers={"Location": "/gate"})  # would loop without the cookie
        return Response("", status=302, headers={"Location": other.url_for("/landing")})

    other = HTTPServer(host="127.0.0.2", port=0)
    other.start()
    try:
        other.expect_request("/landing").respond_with_data(PAGE, content_type="text/html")
        web.expect_request("/gate").respond_with_handler(gate)
        web.expect_request("/policy").respond_with_handler(policy)
        with Fetcher(user_agent="t") as f:
            res = f.fetch(web.url_for("/gate"))
            again = f.fetch(web.url_for("/policy"))  # a later fetch starts without the cookie
        assert res.ok, res.error
        assert [r.headers.get("Cookie") for r, _ in web.log[:2]] == [None, "gate=passed"]
        assert other.log[0][0].headers.get("Cookie") is None
        assert again.error_kind == "redirect-loop"
    finally:
        other.stop()


def test_url_credentials_are_basic_auth_for_their_origin_only(web: HTTPServer) -> None:
    web.expect_request("/private").respond_with_data(PAGE, content_type="text/html")
    with Fetcher(user_agent="t") as f:
        res = f.fetch(web.url_for("/private").replace("http://", "http://ann%40corp:p%3Ass@"))
    assert res.ok, res.error
    ((request, _),) = web.log
    assert request.authorization is not None
    assert (request.authorization.username, request.authorization.password) == ("ann@corp", "p:ss")


# --- a failed fetch never becomes a version ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "ctype", "body", "kind"),
    [
        (404, "text/html", b"<html><body><p>Not found</p></body></html>", "http"),
        (500, "text/html", b"<html><body><p>Internal error</p></body></html>", "http"),
        (200, "application/pdf", b"%PDF-1.7", "content-type"),
        (200, "text/html", b"", "empty"),
    ],
)
def test_failed_fetch_is_recorded_without_a_version(
    web: HTTPServer, write_config, tmp_path, status: int, ctype: str, body: bytes, kind: str
) -> None:
    from watcher.config import load
    from watcher.cycle import run_cycle
    from watcher.store import Store

    web.expect_request("/p").respond_with_data(body, status=status, content_type=ctype)
    config = load(write_config(f'[[site]]\nname = "acme"\nurl = "{web.url_for("/p")}"\n'))
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        (res,) = run_cycle(config, store)
        assert res.outcome == "error" and res.error_kind == kind
        (row,) = store.fetches("acme")
        assert row["outcome"] == "error" and row["error_kind"] == kind and row["error"]
        assert row["status"] == status and row["version_id"] is None and row["body_hash"] is None
        assert store.versions("acme") == []
        assert store.changes("acme") == []
        assert store.db["bodies"].count == 0
        assert store.state("acme")["consecutive_failures"] == 1
    finally:
        store.close()
    assert not (tmp_path / "snap" / "acme").exists()


def test_a_truncated_brotli_body_is_an_error(web: HTTPServer, fetcher: Fetcher) -> None:
    """Like gzip: a stream cut before its end marker is half a page, never a policy."""
    paragraphs = "".join(
        f"<p>Record {i}: we keep {hashlib.sha256(str(i).encode()).hexdigest()}.</p>" for i in range(300)
    )
    whole = brotli.compress(f"<html><body>{paragraphs}</body></html>".encode())  # half of it decodes to text
    web.expect_request("/br").respond_with_data(
        whole[: len(whole) // 2], content_type="text/html", headers={"Content-Encoding": "br"}
    )
    res = fetcher.fetch(web.url_for("/br"))
    assert not res.ok and res.error_kind == "truncated", res.error
    assert res.body == b""


def test_waiting_for_the_host_slot_is_not_counted_against_the_page(web: HTTPServer) -> None:
    """per_host = 1: the second page waits for the first, then gets its full body deadline
    (2 x timeout) and reports its own duration, not the wait."""
    pieces, every = 6, 0.2  # each body takes 1.2 s to arrive; the deadline is 2 s

    def stream():
        yield b"<html><body><main><h1>Privacy</h1>"
        for _ in range(pieces):
            time.sleep(every)
            yield b"<p>We keep your data safe and never sell it to anyone.</p>"
        yield b"</main></body></html>"

    web.expect_request("/slow").respond_with_handler(
        lambda _req: Response(stream(), content_type="text/html", direct_passthrough=True)
    )
    results = []
    with Fetcher(user_agent="t", timeout=1.0, per_host=1) as f:
        threads = [threading.Thread(target=lambda: results.append(f.fetch(web.url_for("/slow")))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(results) == 2
    for res in results:
        assert res.ok, res.error
        assert res.duration_ms < 2000


def test_fetchers_share_one_verifying_tls_context() -> None:
    """Loading the CA bundle costs ~20-40 ms: built once per process, not once per fetcher."""
    from watcher.fetch import Fetcher, tls_context

    first, second = Fetcher(user_agent="t"), Fetcher(user_agent="t")
    try:
        assert first._transport(True)._pool._ssl_context is tls_context()
        assert second._transport(True)._pool._ssl_context is tls_context()
        assert first._transport(False)._pool._ssl_context is not tls_context()  # verify_tls = false
    finally:
        first.close()
        second.close()
