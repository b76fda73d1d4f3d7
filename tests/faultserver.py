"""A local HTTP(S) server that misbehaves on command, and the fault scenarios run against it.

The server speaks HTTP/1.1 over raw sockets (one response per connection, then close), so
it can do what a well-behaved framework never would: stall before the headers, trickle a
body, lie in Content-Length, drop or reset the connection, stream a gzip or brotli bomb
forever, redirect in circles. Each path serves a *sequence* of behaviours (the last one
repeats, or the whole list cycles), which is how a flapping page is made.

`SCENARIOS` and `run_scenario` are shared by tests/test_faults.py (which asserts on every
row) and scripts/fault_table.py (which prints the rows as the README's reliability table),
so the table is what the tests prove. Only loopback addresses are ever used.
"""

from __future__ import annotations

import contextlib
import gzip
import http
import json
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher import samples
from watcher.config import load
from watcher.cycle import SiteResult, run_cycle
from watcher.models import Document
from watcher.store import Store

Behaviour = Callable[["Handler"], None]
HOST = "127.0.0.1"


# --------------------------------------------------------------------------------------
# The server


class Handler(socketserver.BaseRequestHandler):
    """Reads one request, then lets the path's current behaviour write whatever it likes."""

    server: FaultServer
    method = ""
    path = ""
    headers: dict[str, str]

    def setup(self) -> None:
        self.sock: socket.socket = self.request
        if self.server.tls is not None:
            self.sock.settimeout(5)
            try:
                self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
            except (ssl.SSLError, OSError):
                self.sock = None  # type: ignore[assignment]  # the client refused our certificate
                return
        self.sock.settimeout(30)

    def handle(self) -> None:
        if self.sock is None:
            self.server.tls_refusals += 1
            return
        try:
            if not self._read_request():
                return
            behaviour = self.server.next_behaviour(self.path, self)
            behaviour(self)
        except (OSError, ssl.SSLError):
            pass  # the client went away: that is what most faults are about

    def _read_request(self) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            data += chunk
            if len(data) > 1 << 20:
                return False
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        self.method, target, _ = ([*head[0].split(" "), "", ""])[:3]
        self.path = target.split("?", 1)[0]
        self.headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        return True

    # helpers for behaviours
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.server.sent[self.path] = self.server.sent.get(self.path, 0) + len(data)

    def head(self, status: int, headers: dict[str, str] | None = None) -> None:
        reason = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Whatever"
        lines = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def sleep(self, seconds: float) -> None:
        """Sleep, but give up when the server is closed (no thread outlives a test)."""
        self.server.closing.wait(seconds)

    def finish(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()


class FaultServer(socketserver.ThreadingTCPServer):
    """`with FaultServer() as srv: srv.route("/p", page(html)); srv.url("/p")`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((HOST, port), Handler)
        self.tls = tls
        self.routes: dict[str, tuple[list[Behaviour], bool]] = {}
        self.hits: dict[str, int] = {}
        self.sent: dict[str, int] = {}  # bytes written per path (proves a client stopped reading)
        self.decoded: dict[str, int] = {}  # bytes a bomb expanded to, per path
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.tls_refusals = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stalled: list[socket.socket] = []
        self.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/policy") -> str:
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}{path}"

    def route(self, path: str, *behaviours: Behaviour, cycle: bool = False) -> None:
        """Serve `behaviours` in turn at `path` (the last repeats, or all cycle)."""
        with self._lock:
            self.routes[path] = (list(behaviours), cycle)
            self.hits[path] = 0
            self.sent[path] = 0

    def next_behaviour(self, path: str, h: Handler) -> Behaviour:
        with self._lock:
            self.requests.append((path, dict(h.headers)))
            if path not in self.routes:
                return respond(404, b"<html><body><h1>Not Found</h1></body></html>")
            behaviours, cycle = self.routes[path]
            n = self.hits[path]
            self.hits[path] = n + 1
            return behaviours[n % len(behaviours)] if cycle else behaviours[min(n, len(behaviours) - 1)]

    # lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stall(self) -> None:
        """Stop accepting and fill the accept queue: new connections now time out in connect()."""
        self.shutdown()
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect((HOST, self.port))
            self._stalled.append(c)

    def resume(self) -> None:
        for c in self._stalled:
            c.close()
        self._stalled.clear()
        self.start()

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
        for c in self._stalled:
            c.close()

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    """A loopback port nobody listens on (connection refused until someone binds it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tls_context(tmp: Path) -> ssl.SSLContext:
    """A server context with a certificate from a private CA no client trusts (trustme)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


# --------------------------------------------------------------------------------------
# Behaviours


def respond(
    status: int = 200,
    body: bytes | str = b"",
    *,
    ctype: str | None = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
    length: int | None = None,
    close_delimited: bool = False,
) -> Behaviour:
    """An ordinary response; `length` overrides Content-Length (a lie, when it differs).

    `close_delimited` sends no Content-Length: the body ends when the connection closes, so
    a body cut short is indistinguishable from a complete one.
    """
    data = body.encode("utf-8") if isinstance(body, str) else body

    def run(h: Handler) -> None:
        hdrs = dict(headers or {})
        if ctype is not None:
            hdrs.setdefault("Content-Type", ctype)
        if not close_delimited:
            hdrs.setdefault("Content-Length", str(len(data) if length is None else length))
        h.head(status, hdrs)
        if h.method != "HEAD":
            h.send(data)

    return run


def page(html: str, **kw: Any) -> Behaviour:
    return respond(200, html, **kw)


def stall_headers(seconds: float) -> Behaviour:
    """Accept the request and say nothing (a read timeout on the client)."""
    return lambda h: h.sleep(seconds)


def trickle(body: bytes, every: float, piece: int = 16) -> Behaviour:
    """Send the body a few bytes at a time: each read is quick, the whole is too slow."""

    def run(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))})
        for i in range(0, len(body), piece):
            h.send(body[i : i + piece])
            h.sleep(every)
            if h.server.closing.is_set():
                return

    return run


def trickle_headers(every: float) -> Behaviour:
    """Send the response headers one byte at a time: every read is quick, the headers never end."""

    def run(h: Handler) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 2000
        for i in range(len(head)):
            h.send(head[i : i + 1])
            h.sleep(every)
            if h.server.closing.is_set():
                return

    return run


def drop() -> Behaviour:
    """Close the connection without a word."""
    return lambda h: None


def reset() -> Behaviour:
    """Abort the connection with a TCP RST."""

    def run(h: Handler) -> None:
        h.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        h.sock.close()

    return run


def cut_chunked(body: bytes, keep: float = 0.5) -> Behaviour:
    """A chunked body whose connection closes before the last chunk."""

    def run(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/html; charset=utf-8", "Transfer-Encoding": "chunked"})
        part = body[: int(len(body) * keep)]
        h.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")

    return run


def endless(piece: bytes = b"<p>We may share your data with partners. </p>\n", ctype: str = "text/html") -> Behaviour:
    """A close-delimited body that never ends (until the client hangs up or 2 GB)."""

    def run(h: Handler) -> None:
        h.head(200, {"Content-Type": ctype})
        block = piece * max(1, 65536 // len(piece))
        while h.server.sent.get(h.path, 0) < 2_000_000_000 and not h.server.closing.is_set():
            h.send(block)

    return run


def bomb(encoding: str) -> Behaviour:
    """A gzip or brotli stream of zeros, compressed on the fly, forever (~1000:1 or better)."""

    def run(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/html", "Content-Encoding": encoding})
        zeros = b"\0" * (1 << 20)
        if encoding == "br":
            import brotli

            comp = brotli.Compressor(quality=1)

            def more() -> bytes:
                return comp.process(zeros) + comp.flush()
        else:
            z = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)

            def more() -> bytes:
                return z.compress(zeros) + z.flush(zlib.Z_SYNC_FLUSH)

        decoded = 0
        while decoded < 20_000_000_000 and not h.server.closing.is_set():
            h.send(more())
            decoded += len(zeros)
            h.server.decoded[h.path] = decoded

    return run


def encoded(html: str, encoding: str, *, truncate: float | None = None, corrupt: bool = False) -> Behaviour:
    data = html.encode("utf-8")
    if encoding == "gzip":
        comp = gzip.compress(data)
    else:
        import brotli

        comp = brotli.compress(data)
    if truncate is not None:
        comp = comp[: int(len(comp) * truncate)]
    if corrupt:
        comp = comp[:10] + bytes(b ^ 0x5A for b in comp[10:40]) + comp[40:]
    return respond(200, comp, headers={"Content-Encoding": encoding})


def redirect(location: str, status: int = 302) -> Behaviour:
    return respond(status, b"", headers={"Location": location})


# --------------------------------------------------------------------------------------
# Pages


def healthy_html() -> str:
    """The policy as served when all is well (byte-identical each time)."""
    return samples.page("wesgar", "semantic", token="t0", stamp="2026-01-01T00:00:00Z")


def _doc_part(fraction: float) -> Document:
    doc = samples.seed_document("wesgar")
    keep = max(1, int(len(doc.sections) * fraction))
    return Document(doc.title, doc.lang, doc.sections[:keep])


def half_loaded_html(fraction: float = 0.2) -> str:
    """The same page with most of its sections missing (a half-rendered or A/B page)."""
    return samples.render_page(_doc_part(fraction), "semantic", token="t0", stamp="2026-01-01T00:00:00Z")


def _shell(body: str, title: str = "") -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


CHALLENGE = _shell(
    "<div id='cf-wrapper'><h1>Checking your browser before accessing example.com</h1>"
    "<p>This process is automatic. Your browser will redirect to your requested content shortly.</p>"
    "<p>Please allow up to 5 seconds…</p><noscript>Please enable JavaScript and Cookies to continue</noscript>"
    "<script>var cf_chl_opt={cRay:'7c1'};</script></div><p>DDoS protection by Cloudflare</p>",
    "Just a moment...",
)
ACCESS_DENIED = _shell(
    "<h1>Access Denied</h1><p>You don't have permission to access this page on this server.</p>"
    "<p>Reference #18.5c2e3b17.1700000000.1a2b3c</p>",
    "Access Denied",
)
LOGIN = _shell(
    "<h1>Welcome back</h1><p>Please sign in to continue.</p><form><input name=user><input name=pass></form>"
    "<p><a href='/reset'>Forgot your password?</a></p>",
    "Sign in",
)
SOFT_404 = _shell(
    "<h1>Oops!</h1><p>We're sorry, the page you are looking for could not be found.</p>"
    "<p><a href='/'>Go back home</a></p>",
    "Page not found | Example",
)
MAINTENANCE = _shell(
    "<h1>We'll be back soon</h1><p>Our site is down for maintenance. Please check back in a few minutes.</p>",
    "Site under maintenance",
)
JS_SHELL = _shell(
    "<div id='root'></div><script src='/static/js/main.3f2a1c.js'></script>"
    "<script>window.__INITIAL_STATE__={}</script>",
    "Example",
)
NOSCRIPT_SHELL = _shell(
    "<noscript>You need to enable JavaScript to run this app.</noscript><div id='app'></div>"
    "<script src='/app.js'></script>",
    "Example App",
)
DEEP = "<html><body>" + "<div>" * 3000 + "<p>We keep your data.</p>" + "</div>" * 3000 + "</body></html>"


# --------------------------------------------------------------------------------------
# Scenarios


@dataclass
class Lab:
    """One scenario's world: a server, a config, a database, and the port tricks."""

    root: Path
    server: FaultServer
    path: str = "/policy"
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def serve(self, *behaviours: Behaviour, cycle: bool = False) -> None:
        self.server.route(self.path, *behaviours, cycle=cycle)

    def healthy(self) -> None:
        self.serve(page(healthy_html()))


@dataclass
class Scenario:
    """One row of the fault table: arrange a fault, check, heal, check again."""

    fault: str
    arrange: Callable[[Lab], None]  # serve the fault (may change lab.url)
    kind: str | None = None  # expected error_kind of the faulty check
    expect: str = "error"  # outcome of the faulty check
    baseline: bool = True  # record a healthy version first
    heal: Callable[[Lab], None] | None = Lab.healthy  # None: this URL cannot recover
    then: str = "unchanged"  # outcome of the healthy check after the fault
    settings: dict[str, Any] = field(default_factory=dict)
    faulty_checks: int = 1
    own_server: bool = False  # the scenario closes, stalls or encrypts its server


@dataclass
class Row:
    fault: str
    baseline: str
    outcome: str
    kind: str | None
    reason: str
    versions_added: int
    changes_added: int
    alerts_queued: int
    failures: int
    next_outcome: str
    next_reason: str
    fetch_rows: list[dict[str, Any]]
    results: list[SiteResult]
    extra: dict[str, Any] = field(default_factory=dict)


SETTINGS = {
    "timeout": 0.5,
    "max_bytes": "1MB",
    "failure_alert_after": 3,
    "hold_drop_ratio": 0.5,
    "confirm_after": "10m",
}


def write_config(root: Path, url: str, settings: dict[str, Any]) -> Path:
    merged = {**SETTINGS, **settings}
    root.mkdir(parents=True, exist_ok=True)
    lines = ["[settings]", f'database = "{(root / "w.db").as_posix()}"', f'snapshots = "{(root / "snap").as_posix()}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in merged.items()]
    lines += ["", "[[site]]", 'name = "acme"', f"url = {json.dumps(url)}"]
    lines += ["", "[[subscriber]]", 'name = "team"', 'urls = ["json://127.0.0.1:9/hook"]', "errors = true"]
    path = root / "sites.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check(root: Path, url: str, settings: dict[str, Any]) -> tuple[SiteResult, Store]:
    config = load(write_config(root, url, settings))
    store = Store(config.settings.database, config.settings.snapshots)
    results = run_cycle(config, store)
    return results[0], store


def counts(store: Store) -> tuple[int, int, int]:
    one = store.db.execute
    return (
        one("select count(*) from versions").fetchone()[0],
        one("select count(*) from changes").fetchone()[0],
        one("select count(*) from outbox").fetchone()[0],
    )


_templates: dict[tuple[str, str], Path] = {}


def _baseline(root: Path, lab: Lab, settings: dict[str, Any]) -> str:
    """Record the healthy first version, or copy the database of an identical earlier baseline."""
    key = (lab.url, json.dumps(settings, sort_keys=True))
    template = _templates.get(key)
    if template is not None and (template / "w.db").exists():
        shutil.copyfile(template / "w.db", root / "w.db")
        return "new"
    lab.healthy()
    res, store = check(root, lab.url, settings)
    store.close()  # the last connection checkpoints the WAL into w.db
    assert res.outcome == "new", f"baseline was {res.outcome}: {res.reason}"
    if lab.extra.get("shared"):
        keep = Path(tempfile.mkdtemp(prefix="watcher-baseline-"))
        shutil.copyfile(root / "w.db", keep / "w.db")
        _templates[key] = keep
    return res.outcome


def run_scenario(sc: Scenario, root: Path, shared: FaultServer | None = None) -> Row:
    """Healthy check (baseline), the faulty check(s), then a healthy check; report each.

    `shared` is a server reused across scenarios (saves a server and a baseline per row);
    scenarios that close, stall or encrypt their server always get their own.
    """
    root.mkdir(parents=True, exist_ok=True)
    own = shared is None or sc.own_server
    tls = tls_context(root) if sc.fault.startswith("TLS") else None
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FaultServer(tls=tls)) if own else shared
        assert server is not None
        lab = Lab(root=root, server=server, extra={"shared": not own})
        lab.url = server.url(lab.path)
        base = _baseline(root, lab, sc.settings) if sc.baseline else "-"
        store = Store(root / "w.db", root / "snap")
        before = counts(store)
        last_fetch = store.db.execute("select coalesce(max(id), 0) from fetches").fetchone()[0]
        store.close()
        server.sent.clear()
        server.decoded.clear()
        sc.arrange(lab)
        results = []
        for _ in range(sc.faulty_checks):
            res, store = check(root, lab.url, sc.settings)
            results.append(res)
            store.close()
        store = Store(root / "w.db", root / "snap")
        after = counts(store)
        state = store.state("acme")
        fetch_rows = list(store.db.query("select * from fetches where id > ? order by id", [last_fetch]))
        store.close()
        sent, decoded = dict(server.sent), dict(server.decoded)
        next_outcome, next_reason = "n/a", "the URL stays broken"
        if sc.heal is not None:
            sc.heal(lab)
            res2, store = check(root, lab.url, sc.settings)
            store.close()
            next_outcome, next_reason = res2.outcome, res2.reason
        res = results[-1]
        return Row(
            fault=sc.fault,
            baseline=base,
            outcome=res.outcome,
            kind=res.error_kind,
            reason=res.reason,
            versions_added=after[0] - before[0],
            changes_added=after[1] - before[1],
            alerts_queued=after[2] - before[2],
            failures=int(state.get("consecutive_failures") or 0),
            next_outcome=next_outcome,
            next_reason=next_reason,
            fetch_rows=fetch_rows,
            results=results,
            extra={"sent": sent, "decoded": decoded},
        )


# arrangements that need more than one behaviour ---------------------------------------


def _refused(lab: Lab) -> None:
    """The server goes away: its port now refuses connections."""
    lab.server.close()


def _refused_heal(lab: Lab) -> None:
    """The server comes back on the same port."""
    srv = FaultServer(port=lab.server.port)
    srv.route(lab.path, page(healthy_html()))
    _closers.append(srv)


_closers: list[FaultServer] = []


def close_revived() -> None:
    while _closers:
        _closers.pop().close()


def _dns(lab: Lab) -> None:
    lab.url = "http://nonexistent.invalid/policy"


def _tls(lab: Lab) -> None:
    lab.healthy()


def _stall(lab: Lab) -> None:
    lab.healthy()
    lab.server.stall()


def _resume(lab: Lab) -> None:
    lab.server.resume()
    lab.healthy()


def _redirect_loop(lab: Lab) -> None:
    lab.server.route("/a", redirect("/b"))
    lab.server.route("/b", redirect("/a"))
    lab.serve(redirect("/a"))


def _redirect_chain(lab: Lab) -> None:
    for i in range(8):
        lab.server.route(f"/hop{i}", redirect(f"/hop{i + 1}"))
    lab.serve(redirect("/hop0"))


def _private(lab: Lab) -> None:
    lab.healthy()


def _serve(*behaviours: Behaviour, cycle: bool = False) -> Callable[[Lab], None]:
    return lambda lab: lab.serve(*behaviours, cycle=cycle)


def _big(n: int) -> str:
    return (
        "<html><body>" + "".join(f"<p>Paragraph {i} says we may share data.</p>" for i in range(n)) + "</body></html>"
    )


HEALTHY = healthy_html()
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

SCENARIOS: list[Scenario] = [
    # --- the network ---
    Scenario("connection refused", _refused, "refused", heal=_refused_heal, own_server=True),
    Scenario("DNS failure (nonexistent.invalid)", _dns, "dns", baseline=False, heal=None),
    Scenario("TLS: certificate from an untrusted CA", _tls, "tls", baseline=False, heal=None, own_server=True),
    Scenario("connect timeout (accept queue full)", _stall, "timeout", heal=_resume, own_server=True),
    Scenario("read timeout (no response headers)", _serve(stall_headers(3)), "timeout"),
    Scenario("body trickles in slower than 2 × timeout", _serve(trickle(HEALTHY.encode(), 0.05, 256)), "timeout"),
    Scenario("headers trickle in, one byte per read", _serve(trickle_headers(0.1)), "timeout"),
    Scenario("connection closed before any response", _serve(drop()), "protocol"),
    Scenario("connection reset (TCP RST)", _serve(reset()), None),
    Scenario("Content-Length larger than the body", _serve(respond(200, HEALTHY, length=len(HEALTHY) + 5000)), None),
    Scenario("chunked body cut off mid-stream", _serve(cut_chunked(HEALTHY.encode())), "protocol"),
    Scenario(
        "body cut off, no Content-Length (looks complete)",
        _serve(respond(200, half_loaded_html(), close_delimited=True)),
        "suspicious-drop",
        expect="held",
    ),
    # --- HTTP ---
    Scenario("HTTP 404", _serve(respond(404, SOFT_404)), "http"),
    Scenario("HTTP 403 with a bot-challenge body", _serve(respond(403, CHALLENGE)), "http"),
    Scenario("HTTP 500", _serve(respond(500, "<h1>Internal Server Error</h1>")), "http"),
    Scenario(
        "HTTP 503 with Retry-After: 120",
        _serve(respond(503, MAINTENANCE, headers={"Retry-After": "120"})),
        "http",
        then="skipped",
    ),
    Scenario(
        "HTTP 429 with Retry-After: 120",
        _serve(respond(429, "Too Many Requests", headers={"Retry-After": "120"})),
        "http",
        then="skipped",
    ),
    Scenario("redirect loop", _redirect_loop, "redirect-loop"),
    Scenario("more than 5 redirects", _redirect_chain, "redirects"),
    Scenario("redirect to file:///etc/passwd", _serve(redirect("file:///etc/passwd")), "scheme"),
    Scenario("redirect to ftp://", _serve(redirect("ftp://127.0.0.1/policy.txt", 301)), "scheme"),
    Scenario("redirect to javascript:", _serve(redirect("javascript:alert(1)")), "scheme"),
    # --- size and encoding ---
    Scenario("endless body (no Content-Length)", _serve(endless()), "too-large"),
    Scenario("Content-Length: 50 GB", _serve(respond(200, HEALTHY, length=50_000_000_000)), "too-large"),
    Scenario("gzip bomb (endless zeros)", _serve(bomb("gzip")), "too-large"),
    Scenario("brotli bomb (endless zeros)", _serve(bomb("br")), "too-large"),
    Scenario("truncated gzip body", _serve(encoded(HEALTHY, "gzip", truncate=0.5)), "truncated"),
    Scenario("corrupt gzip body", _serve(encoded(HEALTHY, "gzip", corrupt=True)), "encoding"),
    Scenario("corrupt brotli body", _serve(encoded(HEALTHY, "br", corrupt=True)), "encoding"),
    Scenario(
        "unknown Content-Encoding", _serve(respond(200, HEALTHY, headers={"Content-Encoding": "zstd2"})), "encoding"
    ),
    # --- not a page ---
    Scenario("PDF (application/pdf)", _serve(respond(200, PDF, ctype="application/pdf")), "content-type"),
    Scenario("PDF served as text/html", _serve(respond(200, PDF)), "content-type"),
    Scenario("PNG image", _serve(respond(200, PNG, ctype="image/png")), "content-type"),
    Scenario("JSON", _serve(respond(200, '{"policy": "see app"}', ctype="application/json")), "content-type"),
    Scenario(
        "binary body with NUL bytes", _serve(respond(200, b"\x01\x02\x00\x00" * 500, ctype="text/html")), "binary"
    ),
    Scenario("empty body", _serve(respond(200, b"")), "empty"),
    Scenario("whitespace-only body", _serve(respond(200, b" \n\t \n" * 100)), "empty"),
    Scenario("HTML with no text at all", _serve(page("<html><body><div></div></body></html>")), "empty"),
    # --- a page, but not the policy ---
    Scenario("JavaScript-only shell", _serve(page(JS_SHELL)), "js-shell"),
    Scenario("'enable JavaScript' noscript shell", _serve(page(NOSCRIPT_SHELL)), "js-shell"),
    Scenario("bot challenge served with 200", _serve(page(CHALLENGE)), "challenge"),
    Scenario("'Access Denied' served with 200", _serve(page(ACCESS_DENIED)), "error"),
    Scenario("login page served with 200", _serve(page(LOGIN)), "login"),
    Scenario("soft 404 ('page not found' with 200)", _serve(page(SOFT_404)), "not-found"),
    Scenario("maintenance page served with 200", _serve(page(MAINTENANCE)), "error"),
    Scenario("markup nested 3,000 levels deep", _serve(page(DEEP)), "normalize"),
    Scenario(
        "page over the normalize time budget",
        _serve(page(_big(15_000))),
        "normalize",
        settings={"normalize_budget": 0.001},
    ),
    # --- the page is a policy, but most of it is gone ---
    Scenario(
        "most of the text gone (half-loaded page)", _serve(page(half_loaded_html())), "suspicious-drop", expect="held"
    ),
    Scenario(
        "flapping: half-loaded / full / half-loaded",
        _serve(page(half_loaded_html()), page(HEALTHY), cycle=True),
        "suspicious-drop",
        expect="held",
        faulty_checks=3,
        then="unchanged",
    ),
    # --- policy ---
    Scenario(
        "loopback address with allow_private = false",
        _private,
        "private",
        baseline=False,
        heal=None,
        settings={"allow_private": False},
    ),
]


def scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.fault == name)


def iter_rows(base: Path) -> Iterator[Row]:
    with FaultServer() as shared:
        for i, sc in enumerate(SCENARIOS):
            try:
                yield run_scenario(sc, base / f"s{i:02d}", shared)
            finally:
                close_revived()
