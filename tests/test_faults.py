"""Every fetch fault is a recorded one-line error: no version, no change, no alert.

Each scenario in tests/faultserver.py runs a real cycle against a real misbehaving server
on 127.0.0.1: a healthy check (baseline), the faulty check, then a healthy check again.
The README's reliability table is generated from the very same scenarios.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faultserver import (
    HEALTHY,
    SCENARIOS,
    FaultServer,
    Row,
    Scenario,
    check,
    close_revived,
    half_loaded_html,
    healthy_html,
    page,
    respond,
    run_scenario,
    tls_context,
)

from watcher.store import Store


@pytest.fixture(autouse=True)
def _cleanup():
    yield
    close_revived()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.fault for s in SCENARIOS])
def test_fault_is_recorded_and_never_published(sc: Scenario, tmp_path: Path, shared_server: FaultServer) -> None:
    row = run_scenario(sc, tmp_path, shared_server)
    assert row.outcome == sc.expect, row.reason
    if sc.kind:
        assert row.kind == sc.kind, row.reason
    # one line that says what happened
    assert row.reason and "\n" not in row.reason and len(row.reason) < 300
    # never a version, a change or an alert
    assert (row.versions_added, row.changes_added, row.alerts_queued) == (0, 0, 0)
    assert row.fetch_rows, "the faulty check left no trace in fetches"
    assert not {f["outcome"] for f in row.fetch_rows} & {"new", "changed"}
    for fetch in row.fetch_rows:
        assert fetch["change_id"] is None
        if fetch["outcome"] != "unchanged":  # flapping back to the full page is "unchanged"
            assert fetch["version_id"] is None
            assert fetch["error"], "a faulty fetch must say why"
    if sc.expect == "error":
        assert row.failures == sc.faulty_checks
        assert {f["outcome"] for f in row.fetch_rows} == {"error"}
    else:
        assert row.failures == 0  # a held version is not a failure, just not yet believed
        assert "held" in {f["outcome"] for f in row.fetch_rows}
    assert row.next_outcome == (sc.then if sc.heal is not None else "n/a"), row.next_reason


def _row(name: str, tmp_path: Path) -> Row:
    return run_scenario(next(s for s in SCENARIOS if s.fault == name), tmp_path)


def test_streamed_bodies_are_stopped_at_the_cap_not_read_to_the_end(tmp_path: Path) -> None:
    # the servers below never stop sending (2 GB / 20 GB of zeros): returning at all proves
    # the client hung up while streaming
    for i, name in enumerate(
        ("endless body (no Content-Length)", "gzip bomb (endless zeros)", "brotli bomb (endless zeros)")
    ):
        row = _row(name, tmp_path / str(i))
        assert row.kind == "too-large" and "stopped reading" in row.reason
        assert row.extra["sent"]["/policy"] < 200_000_000


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with FaultServer() as srv:
        srv.route("/policy", page(HEALTHY))
        url = srv.url("/policy")
        assert check(tmp_path, url, {})[0].outcome == "new"
        srv.route("/policy", respond(429, "slow down", headers={"Retry-After": "120"}))
        res, store = check(tmp_path, url, {})
        assert res.outcome == "error" and "retry after 120s" in res.reason
        wait = store.state("acme")["retry_not_before"]
        store.close()
        earliest = (datetime.now(UTC) + timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%S")
        assert wait > earliest
        srv.route("/policy", page(HEALTHY))
        res, store = check(tmp_path, url, {})
        store.close()
        assert res.outcome == "skipped" and wait in res.reason
        assert srv.hits["/policy"] == 0  # the server was not asked again before Retry-After


def test_consecutive_failures_feed_one_failure_alert_then_one_recovery(tmp_path: Path) -> None:
    with FaultServer() as srv:
        url = srv.url("/policy")
        srv.route("/policy", page(HEALTHY))
        check(tmp_path, url, {})[1].close()
        srv.route("/policy", respond(500, "oops"))
        for n in range(1, 6):
            res, store = check(tmp_path, url, {})
            state = store.state("acme")
            alerts = list(store.db.query("select kind, subscriber, payload from outbox"))
            store.close()
            assert res.outcome == "error"
            assert state["consecutive_failures"] == n
            # failure_alert_after = 3: one alert on the third failure, none before, no repeats
            assert [a["kind"] for a in alerts] == ([] if n < 3 else ["failure"])
        assert json.loads(alerts[0]["payload"])["failures"] == 3
        srv.route("/policy", page(HEALTHY))
        res, store = check(tmp_path, url, {})
        state = store.state("acme")
        kinds = [a["kind"] for a in store.db.query("select kind from outbox order by id")]
        versions = store.db.execute("select count(*) from versions").fetchone()[0]
        store.close()
        assert res.outcome == "unchanged" and state["consecutive_failures"] == 0
        assert kinds == ["failure", "recovery"] and versions == 1


def test_a_confirmed_drop_is_published_once_the_refetch_agrees(tmp_path: Path) -> None:
    with FaultServer() as srv:
        url = srv.url("/policy")
        srv.route("/policy", page(HEALTHY))
        check(tmp_path, url, {})[1].close()
        srv.route("/policy", page(half_loaded_html()))
        first, store = check(tmp_path, url, {})
        held = json.loads(store.state("acme")["held"])
        due = store.state("acme")["next_due"]
        store.close()
        assert first.outcome == "held" and first.version is None
        # refetched after confirm_after (10 minutes), not after the day-long interval
        soon = (datetime.now(UTC) + timedelta(minutes=11)).strftime("%Y-%m-%dT%H:%M:%S")
        assert due < soon
        assert "waiting for confirmation" in first.reason and held["reason"] == first.reason
        second, store = check(tmp_path, url, {})
        versions = store.versions("acme")
        state = store.state("acme")
        store.close()
        assert second.outcome == "changed" and second.version == 2
        assert len(versions) == 2 and state["held"] is None


def test_a_304_for_the_stored_version_discards_a_held_candidate(tmp_path: Path) -> None:
    """The refetch must agree with the held text; a 304 for the old version is disagreement."""

    def etagged(html: str, tag: str):  # type: ignore[no-untyped-def]
        full = respond(200, html, headers={"ETag": tag})
        not_modified = respond(304, b"", ctype=None, headers={"ETag": tag})

        def run(h):  # type: ignore[no-untyped-def]
            (not_modified if h.headers.get("if-none-match") == tag else full)(h)

        return run

    with FaultServer() as srv:
        url = srv.url("/policy")
        srv.route("/policy", etagged(HEALTHY, '"v1"'))
        check(tmp_path, url, {})[1].close()
        # the half page, then the full one again (a 304), then the half page again
        srv.route("/policy", respond(200, half_loaded_html(), headers={"ETag": '"v2"'}), etagged(HEALTHY, '"v1"'))
        outcomes = []
        for _ in range(2):
            res, store = check(tmp_path, url, {})
            outcomes.append(res.outcome)
            store.close()
        srv.route("/policy", respond(200, half_loaded_html(), headers={"ETag": '"v2"'}))
        res, store = check(tmp_path, url, {})
        outcomes.append(res.outcome)
        versions = len(store.versions("acme"))
        store.close()
    assert outcomes == ["held", "unchanged", "held"]  # the second half page is not a confirmation
    assert versions == 1


def test_verify_tls_false_is_explicit_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with FaultServer(tls=tls_context(tmp_path)) as srv:
        srv.route("/policy", page(HEALTHY))
        url = srv.url("/policy")
        res, store = check(tmp_path / "default", url, {})
        store.close()
        assert res.outcome == "error" and res.error_kind == "tls"
        assert "CERTIFICATE_VERIFY_FAILED" in res.reason
        cfg = tmp_path / "off"
        from faultserver import write_config

        from watcher.config import load
        from watcher.cycle import run_cycle

        path = write_config(cfg, url, {})
        path.write_text(path.read_text().replace('name = "acme"', 'name = "acme"\nverify_tls = false'))
        config = load(path)
        store = Store(config.settings.database, config.settings.snapshots)
        with caplog.at_level(logging.WARNING, logger="watcher"):
            results = run_cycle(config, store)
        store.close()
    assert results[0].outcome == "new"
    assert any("verify_tls = false" in r.getMessage() and "acme" in r.getMessage() for r in caplog.records)


def test_no_secret_reaches_logs_json_errors_snapshots_or_the_database(tmp_path: Path) -> None:
    secrets = {
        "WATCHER_T_PASS": "hunter2-site-password",
        "WATCHER_T_TOKEN": "tok-3f9a8b7c6d5e",
        "WATCHER_T_HOOK": "hook-secret-91827364",
        "WATCHER_T_COOKIE": "sessionid-5551234",
    }
    with FaultServer() as srv:
        srv.route("/policy", respond(200, HEALTHY, headers={"Set-Cookie": "sid=server-cookie-777; Path=/"}))
        srv.route("/broken", respond(500, "no"))
        srv.route("/loop", respond(302, b"", headers={"Location": "/loop2"}))
        srv.route("/loop2", respond(302, b"", headers={"Location": "/loop"}))
        base = f"http://admin:${{WATCHER_T_PASS}}@127.0.0.1:{srv.port}"
        cfg = tmp_path / "sites.toml"
        cfg.write_text(
            f"""
[settings]
database = "{(tmp_path / "w.db").as_posix()}"
snapshots = "{(tmp_path / "snap").as_posix()}"
timeout = 2

[[site]]
name = "ok"
url = "{base}/policy?token=${{WATCHER_T_TOKEN}}"
headers = {{ Cookie = "session=${{WATCHER_T_COOKIE}}", Authorization = "Bearer ${{WATCHER_T_TOKEN}}" }}

[[site]]
name = "broken"
url = "{base}/broken?api_key=${{WATCHER_T_TOKEN}}"

[[site]]
name = "loop"
url = "{base}/loop?token=${{WATCHER_T_TOKEN}}"

[[subscriber]]
name = "team"
urls = ["json://user:${{WATCHER_T_HOOK}}@127.0.0.1:9/hook", "jsons://127.0.0.1:9/hook?token=${{WATCHER_T_HOOK}}"]
errors = true
""",
            encoding="utf-8",
        )
        env = {**os.environ, **secrets, "WATCHER_CONFIG": str(cfg)}
        outs = []
        for args in (
            ["--log-level", "debug", "check", "--json"],
            ["--log-format", "json", "--log-level", "debug", "check"],
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "watcher", *args], capture_output=True, text=True, env=env, timeout=60
            )
            assert proc.returncode == 1, proc.stderr  # two sites fail, and say so
            outs += [proc.stdout, proc.stderr]
        assert srv.hits["/policy"] == 2
        # the credentials did reach the server, where they belong
        sent = next(h for p, h in srv.requests if p == "/policy")
        assert secrets["WATCHER_T_COOKIE"] in sent["cookie"] and sent["authorization"].startswith("Basic ")
    results = json.loads(outs[0])
    assert {r["site"]: r["outcome"] for r in results} == {"ok": "new", "broken": "error", "loop": "error"}
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "sites.toml")
    for value in [*secrets.values(), "server-cookie-777"]:
        for text in outs:
            assert value not in text
        assert value.encode() not in stored


def test_allow_private_is_on_by_default_for_intranet_policies(tmp_path: Path) -> None:
    with FaultServer() as srv:
        srv.route("/policy", page(healthy_html()))
        res, store = check(tmp_path, srv.url("/policy"), {})
        store.close()
    assert res.outcome == "new"


# --------------------------------------------------------------------------------------
# Bad HTML and text: normalize never crashes, never hangs, and says so when it gives up

SENTENCE = "We may share your personal information with our partners for advertising purposes."


def _nested(depth: int) -> str:
    return "<html><body>" + "<div>" * depth + f"<p>{SENTENCE}</p>" + "</div>" * depth + "</body></html>"


BAD_PAGES = {
    "malformed markup": (
        "<html><body><h1>Privacy<p>We share <b>data <i>with</b> partners</i> for advertising purposes"
        " and <table><tr><td>keep<p>it</td></table></div></span></i></body></html></html><p>Unclosed <a href='x"
    ),
    "1,500 nested divs": _nested(1500),
    "20,000 nested divs": _nested(20_000),
    "20,000 unclosed <b> tags": "<html><body><p>" + "<b>x " * 20_000 + "</p></body></html>",
    "NUL bytes and control characters": (
        "<html><body><h1>Privacy\x00</h1><p>We share\x00 data\x01\x02\x1b[31m with\x7f partners\x0c"
        " for advertising purposes.\x08</p><p>\x00\x00\x00</p></body></html>"
    ),
    "RTL and emoji": (
        "<html dir='rtl' lang='ar'><body><h1>سياسة الخصوصية 🔒</h1><p>نحن نجمع بياناتك الشخصية ونشاركها"
        " مع الشركاء 🙂👍🏽 \u202eabc\u202c ‏.</p><p>עברית 😀 mixed עם English text here.</p></body></html>"
    ),
    "one line of 2 MB": "<html><body><p>" + ("We share data with partners. " * 70_000) + "</p></body></html>",
    "one word of 1 MB": "<html><body><p>" + "a" * 1_000_000 + "</p><p>" + SENTENCE + "</p></body></html>",
    "no headings at all": "<html><body>" + f"<p>{SENTENCE}</p>" * 200 + "</body></html>",
    "one giant table": (
        "<html><body><table>"
        + "".join(f"<tr><td>Category {i}</td><td>kept for {i} days</td><td>{SENTENCE}</td></tr>" for i in range(5_000))
        + "</table></body></html>"
    ),
    "tables nested in tables": "<html><body>"
    + "<table><tr><td>" * 300
    + SENTENCE
    + "</td></tr></table>" * 300
    + "</body></html>",
    "markdown-looking text in HTML": (
        "<html><body><h2># Not a heading</h2><p>| a | b |</p><p>* star **bold** _under_ [link](x) `code` \\ &amp;amp; 1. 2)</p>"
        f"<p>{SENTENCE}</p></body></html>"
    ),
    "lone surrogate": f"<html><body><p>We share \ud800 data. {SENTENCE}</p></body></html>",
    "empty": "",
    "only whitespace and comments": "  \n<!-- nothing --> \t ",
    "plain text, 10,000 lines": "\n".join(f"Line {i}: {SENTENCE}" for i in range(10_000)),
    "markdown with 2,000-deep lists": "\n".join(" " * (2 * i) + f"- item {i}" for i in range(2_000)),
    "markdown of 3,000 stars": "*" * 3_000 + " text " + "_" * 3_000,
}


@pytest.mark.parametrize("name", list(BAD_PAGES))
def test_bad_pages_never_crash_normalize(name: str) -> None:
    from watcher.normalize import NormalizeError, normalize, to_markdown

    page = BAD_PAGES[name]
    try:
        doc = normalize(page, budget_s=20)
    except NormalizeError as exc:  # the one way to give up: a one-line reason
        assert str(exc) and "\n" not in str(exc)
        assert name in (
            "20,000 nested divs",
            "20,000 unclosed <b> tags",
            "markdown with 2,000-deep lists",
            "empty",
            "only whitespace and comments",
        )
        return
    markdown = to_markdown(doc)
    assert to_markdown(normalize(page, budget_s=20)) == markdown  # deterministic
    assert to_markdown(normalize(markdown, fmt="markdown")) == markdown  # and its Markdown reads back
    assert "\x00" not in markdown and "\x1b" not in markdown
    if SENTENCE in page:
        assert "partners for advertising purposes" in markdown


def test_a_page_over_the_time_budget_is_an_error_not_a_hang() -> None:
    from watcher.normalize import NormalizeError, normalize

    page = (
        "<html><body>"
        + "".join(f"<div><p>Paragraph {i}: {SENTENCE}</p></div>" for i in range(100_000))
        + "</body></html>"
    )
    with pytest.raises(NormalizeError, match="normalize_budget"):
        normalize(page, budget_s=0.001)


@pytest.mark.parametrize(
    "body, content_type, expect",
    [
        ("Données partagées".encode(), "text/html; charset=iso-8859-1", "Données partagées"),  # header lies: UTF-8
        ("Données partagées à nos partenaires".encode("cp1252"), "text/html", "Données partagées à nos partenaires"),
        ("Données “partagées”".encode("cp1252"), "text/html; charset=utf-8", "Donn"),  # header lies: cp1252
        ("Données".encode() + b" et " + "reçues".encode("latin-1"), "text/html", "Donn"),  # mixed in one page
        ("\ufeffDonnées partagées".encode("utf-16-le"), "text/html", "Données partagées"),
        ("Données partagées".encode("utf-16"), "text/html; charset=utf-16", "Données partagées"),
        ("Données".encode(), "text/html; charset=no-such-charset", "Données"),
    ],
    ids=[
        "utf8-labelled-latin1",
        "cp1252-unlabelled",
        "cp1252-labelled-utf8",
        "mixed",
        "utf16-bom",
        "utf16-declared",
        "unknown-charset",
    ],
)
def test_wrong_and_mixed_charsets_are_decoded_not_fatal(
    body: bytes, content_type: str, expect: str, shared_server: FaultServer
) -> None:
    from watcher.fetch import Fetcher
    from watcher.normalize import normalize, to_markdown

    html_bytes = b"<html><body><h1>Politique</h1><p>" if not body.startswith((b"\xff\xfe", b"\xfe\xff")) else b""
    payload = html_bytes + body + (b" nous les conservons pendant trois ans.</p></body></html>" if html_bytes else b"")
    shared_server.route("/charset", respond(200, payload, ctype=content_type))
    with Fetcher(user_agent="test", timeout=5) as fetcher:
        result = fetcher.fetch(shared_server.url("/charset"))
    assert result.ok, result.error
    assert expect in result.text
    to_markdown(normalize(result.text))  # and it normalizes


def test_the_readme_fault_table_has_a_row_for_every_scenario() -> None:
    """The table is generated (scripts/fault_table.py --write README.md): a new scenario needs a rerun."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- fault-table:start -->", 1)[1].split("<!-- fault-table:end -->", 1)[0]
    rows = [line.split(" | ")[0].removeprefix("| ") for line in block.splitlines() if line.startswith("| ")]
    assert rows[1:] == [s.fault for s in SCENARIOS]
    assert all(" | no | no | " in line for line in block.splitlines()[2:] if line.startswith("| "))


def test_status_and_config_errors_never_show_url_credentials(tmp_path: Path, monkeypatch) -> None:
    """`watcher status --json` and a config error quote URLs after ${VAR} expansion: redacted."""
    from watcher.config import load
    from watcher.errors import ConfigError
    from watcher.logs import redact
    from watcher.schedule import site_status

    monkeypatch.setenv("WATCHER_T_PASS", "hunter2-site-password")
    monkeypatch.setenv("WATCHER_T_TOKEN", "tok-3f9a8b7c6d5e")
    cfg = tmp_path / "sites.toml"
    site = '[[site]]\nname = "acme"\nurl = "{url}"\n'
    head = f'[settings]\ndatabase = "{(tmp_path / "w.db").as_posix()}"\n'
    cfg.write_text(
        head + site.format(url="https://admin:${WATCHER_T_PASS}@example.org/privacy?token=${WATCHER_T_TOKEN}"),
        encoding="utf-8",
    )
    config = load(cfg)
    store = Store(config.settings.database)
    try:
        shown = json.dumps(site_status(config, store))
    finally:
        store.close()
    assert "example.org/privacy" in shown
    assert "hunter2" not in shown and "tok-3f9a" not in shown

    cfg.write_text(head + site.format(url="ftp://${WATCHER_T_TOKEN}@example.org/?key=${WATCHER_T_PASS}"), "utf-8")
    with pytest.raises(ConfigError) as err:
        load(cfg)
    assert "'url' must be an http:// or https:// URL" in str(err.value)
    assert "hunter2" not in str(err.value) and "tok-3f9a" not in str(err.value)

    # a bare token as the URL's user name is a credential too
    assert redact("https://tok-3f9a8b7c6d5e@api.example.org/v1") == "https://***@api.example.org/v1"
    assert redact("http://admin:pw@host/x?token=abc&page=2") == "http://***:***@host/x?token=***&page=2"
    assert redact("https://example.org/a?q=x@y") == "https://example.org/a?q=x@y"  # not a user name
