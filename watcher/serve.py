"""`watcher serve`: the report's pages built live from the database, read-only, on 127.0.0.1.

Each request opens its own read-only connection (SQLite URI mode=ro), so the server sees
what a running `watcher run` has just written, can never write itself, and needs no
locking between its threads. Only GET and HEAD are answered.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import WatcherError
from .report import HTML, Page, esc, page_for
from .store import Store

log = logging.getLogger("watcher.serve")


def _error_page(status: int, message: str) -> Page:
    """A one-line error page; the details are in the server's log."""
    return Page(status, HTML, f"<!doctype html><html lang=en><meta charset=utf-8><p>{esc(message)}</p></html>")


def make_server(database: str | Path, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server ready to `serve_forever()`; fails at once with one line if the database cannot be read."""
    database = Path(database)
    Store.open_readonly(database).close()

    class Handler(BaseHTTPRequestHandler):
        server_version = "watcher"

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def _answer(self, *, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if path.endswith("/") and path != "/":
                path += "index.html"
            host_header = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            try:
                store = Store.open_readonly(database)
                try:
                    page = page_for(store, path, base=f"http://{host_header}/")
                finally:
                    store.close()
            except WatcherError as exc:  # the database cannot be opened (missing, locked, wrong schema)
                log.error("%s", exc)
                page = _error_page(503, str(exc))
            except Exception as exc:  # a damaged row or a bug: one 500 page, never a dropped connection
                log.exception("GET %s failed", path)
                page = _error_page(500, f"cannot build /{path.lstrip('/')}: {type(exc).__name__} (see the server log)")
            body = page.body.encode("utf-8")
            self.send_response(page.status)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise WatcherError(f"cannot listen on {host}:{port}: {exc.strerror} (choose another --port)") from None
