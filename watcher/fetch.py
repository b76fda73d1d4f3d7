"""HTTP: one page in, one `FetchResult` out. Never raises for a bad page or a bad network.

What a fetch guarantees before anything downstream sees the body:
- http(s) only, at every redirect hop (at most 5; loops are refused);
- the body is streamed and stopped at `max_bytes` of *decoded* data, so a gzip or
  brotli bomb costs no more memory than an honest page of the cap's size;
- 4xx/5xx, non-text content (PDF, images, JSON), empty and binary bodies are errors;
- the text is decoded from the header charset, then the page's `<meta>`, then detection
  (bs4's UnicodeDammit with charset-normalizer);
- conditional requests: a 304 is "not modified", not a failure.

The sync httpx client is used from a thread pool: on loopback it fetched 1,000 pages in
0.38 s against 0.96 s for the async client (issue 10), and threads release the GIL on I/O.
"""

from __future__ import annotations

import base64
import functools
import heapq
import ipaddress
import logging
import os
import re
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from .logs import redact
from .models import FetchResult
from .times import now_iso

# httpx's __init__ imports its command-line client (httpx._main) and with it rich and pygments:
# ~35 ms of every start-up, a tenth of an unchanged check's CPU (issue 10), for a CLI watcher never
# runs. A None entry makes that one import fail, and httpx falls back to its own stub `main`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402

log = logging.getLogger("watcher.fetch")

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
TEXT_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "text/x-markdown",
    "application/xml",
    "text/xml",
)
_MAGIC = {
    b"%PDF": "a PDF document (PDF policies are not supported yet; point watcher at the HTML version)",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PK\x03\x04": "a ZIP archive (or an Office document)",
    b"\x1f\x8b": "gzip-compressed data",
}


class FetchError(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class _Decoder:
    """Content-Encoding decoder that never produces more than `limit` bytes in total."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        enc = encoding.lower().strip()
        self.kind = enc
        if enc in ("gzip", "x-gzip", "deflate"):
            self._z = zlib.decompressobj(47 if enc != "deflate" else zlib.MAX_WBITS)
            self._deflate_raw_fallback = enc == "deflate"
        elif enc == "br":
            import brotli

            self._br = brotli.Decompressor()
        elif enc in ("", "identity"):
            pass
        else:
            raise FetchError("encoding", f"unsupported Content-Encoding {encoding!r}")

    def _room(self) -> int:
        return self.limit - self.produced + 1

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if self.kind in ("", "identity"):
            yield from self._count(chunk)
        elif self.kind == "br":
            import brotli

            try:
                out = self._br.process(chunk, output_buffer_limit=max(1, min(self._room(), 1 << 20)))
                yield from self._count(out)
                while not self._br.can_accept_more_data():
                    out = self._br.process(b"", output_buffer_limit=max(1, min(self._room(), 1 << 20)))
                    if not out:
                        break
                    yield from self._count(out)
            except brotli.error as exc:
                raise FetchError("encoding", f"corrupt brotli body: {exc}") from None
        else:
            data = chunk
            try:
                while data:
                    out = self._z.decompress(data, min(self._room(), 1 << 20))
                    yield from self._count(out)
                    data = self._z.unconsumed_tail
            except zlib.error as exc:
                if getattr(self, "_deflate_raw_fallback", False) and self.produced == 0:
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._deflate_raw_fallback = False
                    yield from self.feed(chunk)
                    return
                raise FetchError("encoding", f"corrupt {self.kind} body: {exc}") from None

    def finish(self) -> Iterator[bytes]:
        """Whatever the decoder still holds; a compressed stream that stopped before its end
        marker is a truncated body (a cut connection), never half a policy."""
        if self.kind in ("gzip", "x-gzip", "deflate"):
            try:
                out = self._z.flush()
            except zlib.error as exc:
                raise FetchError("truncated", f"truncated {self.kind} body: {exc}") from None
            yield from self._count(out)
            if not self._z.eof and self.produced:
                raise FetchError("truncated", f"truncated {self.kind} body (the stream ended early)")
        elif self.kind == "br" and self.produced and not self._br.is_finished():
            raise FetchError("truncated", "truncated br body (the stream ended early)")

    def _count(self, out: bytes) -> Iterator[bytes]:
        if not out:
            return
        self.produced += len(out)
        if self.produced > self.limit:
            raise FetchError(
                "too-large", f"body is larger than max_bytes ({self.limit:,} bytes decoded); stopped reading"
            )
        yield out


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_LATIN1 = ("iso8859-1", "cp1252", "ascii")  # codec names (codecs.lookup) of labels browsers read as windows-1252
# Detected single-byte Latin code pages are all read as windows-1252, the web's default for
# Western pages (WHATWG): on short French text detectors often guess windows-1250 and turn à into ŕ.
_LATIN_FAMILY = (
    "iso8859-1",
    "iso8859-2",
    "iso8859-15",
    "cp1250",
    "cp1252",
    "ascii",
    "latin-1",
    "windows-1252",
    "windows-1250",
)


def decode_body(body: bytes, content_type: str = "") -> tuple[str, str]:
    """Bytes to text: charset from the header, then `<meta>`, then detection. Returns (text, charset).

    Declared and UTF-8 pages are decoded directly; only undeclared, non-UTF-8 pages go
    through bs4's UnicodeDammit (with charset-normalizer), whose import alone costs ~0.2 s.
    """
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        enc = "utf-8-sig" if body.startswith(b"\xef\xbb\xbf") else "utf-16"
        return body.decode(enc, errors="replace"), enc.replace("-sig", "")
    declared = _charset_of(content_type).lower()
    meta = _META_CHARSET.search(body[:8192])
    candidates = [declared] if declared else []
    if meta:
        candidates.append(_codec(meta.group(1).decode("ascii", "replace")))
    for enc in candidates:
        if not enc:
            continue
        if enc in _LATIN1 or enc == "iso8859-15":
            # A page labelled Latin-1 whose non-ASCII bytes are valid UTF-8 is UTF-8 (a common
            # server misconfiguration; the reverse cannot happen by accident). Browsers read
            # the Latin-1 label as windows-1252, where 0x80-0x9F are printable.
            if _is_utf8_with_non_ascii(body):
                return body.decode("utf-8"), "utf-8"
            enc = "cp1252" if enc != "iso8859-15" else enc
        try:
            return body.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from bs4.dammit import UnicodeDammit

    dammit = UnicodeDammit(body, is_html=True)
    guess = _codec(dammit.original_encoding or "") if dammit.unicode_markup is not None else ""
    if not guess or guess in _LATIN_FAMILY:
        return body.decode("cp1252", errors="replace"), "cp1252"
    return dammit.unicode_markup, guess  # type: ignore[return-value]


def _is_utf8_with_non_ascii(body: bytes) -> bool:
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _codec(name: str) -> str:
    import codecs

    try:
        return codecs.lookup(name).name
    except LookupError:
        return ""


def _charset_of(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return _codec(value.strip().strip("\"'"))
    return ""


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import email.utils  # only for a Retry-After date: its import pulls in half of email

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _check_public(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve host {host!r}: {exc.strerror}") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_reserved
            or ip.is_multicast
            or ip.is_unspecified
        ):
            raise FetchError("private", f"{host} resolves to a private address ({ip}) and allow_private = false")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate-verifying TLS context, built once per process: loading the CA bundle
    costs ~20-40 ms of CPU, which every new fetcher paid again (each fetch process builds it
    while it waits for its work, issue 10)."""
    return httpx.create_ssl_context(trust_env=False)


class Fetcher:
    """Fetches pages with shared connection pools and a per-host concurrency limit."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float = 30.0,
        max_bytes: int = 10_000_000,
        per_host: int = 2,
        allow_private: bool = True,
        pool_size: int = 8,
    ) -> None:
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.per_host = per_host
        self.allow_private = allow_private
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=max(pool_size, 1) * 2, max_keepalive_connections=max(pool_size, 1) * 2)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0))
        self._transports: dict[bool, httpx.HTTPTransport] = {}
        self._limits = limits
        self._headers = {
            "User-Agent": self.user_agent,
            "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1",
            "Accept-Encoding": "gzip, deflate, br",
        }

    def _transport(self, verify: bool) -> httpx.HTTPTransport:
        """httpx's connection-pooling transport, driven directly rather than through `httpx.Client`.

        The fetcher already does what the client adds (redirects, their checks, cookies between
        hops, timeouts); the client's layers cost a quarter of an unchanged check's CPU (issue 10).
        """
        with self._lock:
            transport = self._transports.get(verify)
            if transport is None:
                transport = httpx.HTTPTransport(
                    verify=tls_context() if verify else False, limits=self._limits, trust_env=False
                )
                self._transports[verify] = transport
            return transport

    def close(self) -> None:
        with self._lock:
            for t in self._transports.values():
                t.close()
            self._transports.clear()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _host_slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._hosts.get(host)
            if sem is None:
                sem = self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return sem

    def fetch(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        verify_tls: bool = True,
        decode: bool = True,
    ) -> FetchResult:
        """Fetch one page. Errors come back in `FetchResult.error`, never as exceptions.

        `decode=False` leaves `text` empty: a check cycle decodes only bodies whose hash changed.
        """
        result = FetchResult(url=url)
        host = (urlsplit(url).hostname or "").lower()
        dog = _Watchdog(self.timeout * 3)
        start = time.monotonic()
        try:
            with self._host_slot(host):
                # timed from here: waiting for the host's slot is not the server's slowness, and
                # must not eat into the body deadline or show up in duration_ms
                start = time.monotonic()
                result.fetched_at = now_iso()
                with dog:
                    self._fetch(result, url, dict(headers or {}), etag, last_modified, verify_tls, start, dog.trace)
        except FetchError as exc:
            result.error, result.error_kind = str(exc), exc.kind
            if exc.status is not None:
                result.status = exc.status
            result.retry_after = exc.retry_after
        except httpx.ConnectTimeout:
            result.error, result.error_kind = f"connect timeout after {self.timeout:g}s to {host}", "timeout"
        except httpx.ReadTimeout:
            result.error, result.error_kind = f"read timeout after {self.timeout:g}s from {host}", "timeout"
        except httpx.TimeoutException:
            result.error, result.error_kind = f"timeout after {self.timeout:g}s from {host}", "timeout"
        except httpx.ConnectError as exc:
            result.error, result.error_kind = _describe_connect_error(exc, host)
        except httpx.RemoteProtocolError as exc:
            result.error, result.error_kind = f"connection broken by {host}: {_first_line(exc)}", "protocol"
        except httpx.TransportError as exc:
            result.error, result.error_kind = f"network error from {host}: {_first_line(exc)}", "network"
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            result.error, result.error_kind = f"invalid URL {url!r}: {_first_line(exc)}", "url"
        if dog.fired and result.error is not None:
            result.error, result.error_kind = (
                f"gave up after {self.timeout * 3:g}s: {host} sends too slowly (headers or body a trickle)",
                "timeout",
            )
        if decode and result.error is None and result.body:
            result.text, result.charset = decode_body(result.body, result.content_type)
        result.duration_ms = int((time.monotonic() - start) * 1000)
        if result.error:
            result.body, result.text, result.size = b"", "", 0
            # errors quote URLs (redirect targets, the site's own): never their credentials
            result.error = redact(result.error)
        return result

    def _fetch(
        self,
        result: FetchResult,
        url: str,
        headers: dict[str, str],
        etag: str | None,
        last_modified: str | None,
        verify_tls: bool,
        start: float,
        trace: Callable[[str, dict], None] | None = None,
    ) -> None:
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        transport = self._transport(verify_tls)
        sent = {**self._headers}
        for key, value in headers.items():  # the site's own headers win, whatever their case
            for k in [k for k in sent if k.lower() == key.lower()]:
                del sent[k]
            sent[key] = value
        extensions: dict[str, Any] = {"timeout": self._timeout.as_dict()}
        if trace:
            extensions["trace"] = trace
        jar: httpx.Cookies | None = None  # cookies a redirect sets, sent on the next hops (cookie checks)
        seen: set[str] = set()
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https"):
                raise FetchError("scheme", f"refused to fetch {parts.scheme}: URL (only http and https)")
            if not self.allow_private:
                _check_public(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
            seen.add(current)
            try:
                request = httpx.Request("GET", current, headers=sent, extensions=extensions)
            except httpx.InvalidURL as exc:  # parsed here, so a bad URL is our one-line error
                raise FetchError("url", f"invalid URL {current!r}: {_first_line(exc)}") from None
            if parts.username is not None or parts.password is not None:
                # user:password@ in the URL is Basic auth for this origin, as httpx.Client does
                userinfo = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
                request.headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
            if jar is not None:
                jar.set_cookie_header(request)
            resp = transport.handle_request(request)
            resp.request = request
            try:
                result.status = resp.status_code
                result.final_url = current
                # not resp.is_redirect: httpx counts every 3xx, and a 304 answers a conditional request
                if resp.status_code in _REDIRECTS:
                    head = _headers(resp)
                    location = head.get("location", "")
                    if not location:
                        raise FetchError(
                            "http", f"HTTP {resp.status_code} redirect without a Location", resp.status_code
                        )
                    nxt = urljoin(current, location)
                    scheme = urlsplit(nxt).scheme.lower()
                    if scheme not in ("http", "https"):
                        raise FetchError(
                            "scheme",
                            f"redirect to a {scheme}: URL refused (only http and https)",
                            resp.status_code,
                        )
                    if nxt in seen:
                        raise FetchError("redirect-loop", f"redirect loop at {nxt}", resp.status_code)
                    if "set-cookie" in head:
                        jar = jar if jar is not None else httpx.Cookies()
                        jar.extract_cookies(resp)
                    if _origin(nxt) != _origin(current):
                        # a site's Authorization or Cookie header is for its own host only
                        for key in [k for k in sent if k.lower() in _CREDENTIAL_HEADERS]:
                            del sent[key]
                    current = nxt
                    continue
                self._read(result, resp, start)
                return
            finally:
                resp.close()
        raise FetchError("redirects", f"more than {MAX_REDIRECTS} redirects", result.status)

    def _read(self, result: FetchResult, resp: httpx.Response, start: float) -> None:
        head = _headers(resp)
        result.headers = {k: v for k, v in head.items() if k in _KEEP_HEADERS}
        status = resp.status_code
        if status == 304:
            result.not_modified = True
            return
        if status >= 400:
            retry = parse_retry_after(head.get("retry-after")) if status in (429, 503) else None
            reason = resp.reason_phrase or ""
            hint = f"; retry after {retry:.0f}s" if retry is not None else ""
            raise FetchError("http", f"HTTP {status} {reason}{hint}".strip(), status, retry)
        if status >= 300 or status < 200:
            raise FetchError("http", f"unexpected HTTP status {status}", status)
        ctype = head.get("content-type", "")
        result.content_type = ctype
        mime = ctype.split(";")[0].strip().lower()
        if mime and not (mime in TEXT_TYPES or mime.startswith("text/")):
            if mime == "application/pdf":
                raise FetchError(
                    "content-type", "got a PDF (application/pdf): PDF policies are not supported yet", status
                )
            raise FetchError("content-type", f"not a web page: content type {mime}", status)
        declared = head.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes * 4:
            raise FetchError(
                "too-large", f"body is {int(declared):,} bytes, over max_bytes ({self.max_bytes:,})", status
            )
        decoder = _Decoder(head.get("content-encoding", ""), self.max_bytes)
        chunks: list[bytes] = []
        raw_len = 0
        # no chunk size: httpx would buffer up to it before yielding, so a server trickling a
        # few bytes per read could hold a fetch for hours past the whole-body deadline below
        for raw in resp.iter_raw():
            raw_len += len(raw)
            for out in decoder.feed(raw):
                chunks.append(out)
            if time.monotonic() - start > self.timeout * 2:
                raise FetchError("timeout", f"body still arriving after {self.timeout * 2:g}s; gave up", status)
        for out in decoder.finish():
            chunks.append(out)
        body = b"".join(chunks)
        if declared and declared.isdigit() and decoder.kind in ("", "identity") and raw_len < int(declared):
            raise FetchError("truncated", f"truncated body: got {raw_len:,} of {int(declared):,} bytes", status)
        if not body.strip():
            raise FetchError("empty", "empty body", status)
        for magic, what in _MAGIC.items():
            if body.startswith(magic):
                raise FetchError("content-type", f"not a web page: the body is {what}", status)
        if b"\x00" in body[:4096] and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise FetchError("binary", "not a web page: the body is binary", status)
        result.body, result.size = body, len(body)


def _headers(resp: httpx.Response) -> dict[str, str]:
    """Response headers, lower-cased, read once (httpx re-derives their encoding on every lookup)."""
    out: dict[str, str] = {}
    for key, value in resp.headers.raw:
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


_KEEP_HEADERS = {
    "etag",
    "last-modified",
    "content-type",
    "content-length",
    "retry-after",
    "server",
    "date",
    "cache-control",
}


_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class _Watchdog:
    """Closes a fetch's connection once it outlives `seconds` in all.

    httpx times each read, not the whole: a server that trickles its *headers* a byte at a
    time, each within `timeout`, would otherwise hold a check (and its cycle) for hours. The
    socket comes from httpcore's trace of a new connection; a reused keep-alive connection
    is not covered, the body deadline in `_read` still is.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._sock: socket.socket | None = None
        self._alarm: list = []

    def trace(self, name: str, info: dict) -> None:
        if name.endswith("connect_tcp.complete") and info.get("return_value") is not None:
            self._sock = info["return_value"].get_extra_info("socket")

    def _fire(self) -> None:
        self.fired = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
            except OSError:
                pass

    def __enter__(self) -> _Watchdog:
        self._alarm = _ALARMS.add(self.seconds, self._fire)
        return self

    def __exit__(self, *exc: object) -> None:
        _ALARMS.cancel(self._alarm)


class _Alarms:
    """One thread runs every watchdog's deadline (a heap of them).

    A `threading.Timer` per fetch started a thread per fetch: ~0.5 ms of CPU each, a third
    of the cost of an unchanged check (issue 10).
    """

    def __init__(self) -> None:
        self._heap: list[list] = []  # [deadline, seq, callback or None when cancelled]
        self._cv = threading.Condition()
        self._seq = 0
        self._cancelled = 0  # cancelled entries still in the heap
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, callback: Callable[[], None]) -> list:
        with self._cv:
            self._seq += 1
            entry = [time.monotonic() + seconds, self._seq, callback]
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cv.notify()
        return entry

    def cancel(self, entry: list) -> None:
        with self._cv:
            entry[2] = None
            self._cancelled += 1
            # a cancelled deadline stays in the heap until it comes due (3x the timeout): drop
            # them once they are most of it, so a cycle of thousands of pages does not keep them
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._cv.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cv.wait(delay)
                    continue
                callback = heapq.heappop(self._heap)[2]
                self._cv.release()
                try:
                    callback()
                except Exception:  # a watchdog must never take the alarm thread down
                    log.exception("fetch watchdog failed")
                finally:
                    self._cv.acquire()


_ALARMS = _Alarms()


def _fresh_alarms() -> None:
    """In a forked child (a fetch process): the alarm thread did not come along, and another
    thread of the parent may have held its lock at the fork."""
    global _ALARMS
    _ALARMS = _Alarms()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_alarms)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _describe_connect_error(exc: httpx.ConnectError, host: str) -> tuple[str, str]:
    msg = _first_line(exc)
    low = msg.lower()
    if (
        "name or service not known" in low
        or "nodename nor servname" in low
        or "name resolution" in low
        or "getaddrinfo" in low
    ):
        return f"cannot resolve host {host!r} (DNS)", "dns"
    if "certificate" in low or "ssl" in low or "tls" in low:
        return f"TLS error from {host}: {msg}", "tls"
    if "refused" in low:
        return f"connection refused by {host}", "refused"
    return f"cannot connect to {host}: {msg}", "connect"
