"""A policy site and a notification receiver on 127.0.0.1, and helpers to drive `watcher run`.

Shared by tests/test_daemon.py and tests/test_docker.py. The server is a real threaded HTTP
server whose pages can be edited, slowed down, or taken off the network (the port is
closed, so clients see "connection refused") and brought back on the same port.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from watcher import samples
from watcher.demo import EDITS

WATCHER = [sys.executable, "-m", "watcher"]


def edited(name: str) -> str:
    """The seed policy with the demo's real-world edit applied (a material change)."""
    text = samples.seed_text(name)
    for old, new in EDITS[name]:
        assert old in text
        text = text.replace(old, new)
    return text


class PolicyServer:
    """Serves `/<name>` as a sample policy page (fresh tokens each time) and records POSTs."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.delays: dict[str, float] = {}
        self.hits: dict[str, int] = {}
        self.started: dict[str, int] = {}  # requests that have begun, for "a fetch is in flight"
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                name = self.path.strip("/")
                with server._lock:
                    server.started[name] = server.started.get(name, 0) + 1
                    text = server.texts.get(name)
                    delay = server.delays.get(name, 0.0)
                if delay:
                    time.sleep(delay)
                if text is None:
                    self.send_error(404)
                    return
                n = time.monotonic_ns()
                body = samples.page(name, "semantic", text=text, token=f"{n:x}", stamp=str(n)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # the client is gone (a daemon abandoned this fetch): without this, the
                    # traceback lands, up to a minute later, in whatever test captures stderr then
                    return
                with server._lock:
                    server.hits[name] = server.hits.get(name, 0) + 1

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {"raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.posts.append({"path": self.path, "body": payload})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def start(self) -> None:
        """Listen (again) on the same port."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: clients now get "connection refused"."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def hook(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"


def write_sites(
    path: Path, server: PolicyServer, sites: dict[str, str], settings: str = "", extra: str = "", timeout: float = 5
) -> Path:
    """sites.toml with its database and snapshots beside it; `sites` maps name -> interval."""
    lines = [
        "[settings]",
        f'database = "{(path.parent / "w.db").as_posix()}"',
        f'snapshots = "{(path.parent / "snap").as_posix()}"',
        f"timeout = {timeout}",
        settings,
    ]
    for name, interval in sites.items():
        lines += ["[[site]]", f'name = "{name}"', f'url = "{server.url(name)}"', f'interval = "{interval}"']
    text = "\n".join(lines) + "\n" + extra
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


class Daemon:
    """`watcher run` as a real subprocess, with its stderr (the logs) in a file."""

    def __init__(
        self,
        config: Path,
        *args: str,
        env: dict[str, str] | None = None,
        argv: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = config.parent / f"run-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        cmd = argv or [*WATCHER, "--log-format", "json", "--log-level", "info", "run", "-c", str(config), *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=self._log, env=env, cwd=cwd or config.parent, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def checks(self, site: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == "check" and (site is None or e.get("site") == site)]

    def terminate(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self._log.close()
        return rc, time.monotonic() - start

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 20, daemon: Daemon | None = None) -> Any:
    """Poll until `cond()` is truthy; fail with the daemon's log when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if daemon is not None and daemon.proc.poll() is not None:
            raise AssertionError(f"watcher run exited ({daemon.proc.returncode}) waiting for {what}:\n{daemon.log()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{daemon.log()[-4000:]}" if daemon else ""))


def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Read the daemon's database from another connection, as any reader would."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def meta(db: Path, key: str) -> Any:
    rows = query(db, "select value from meta where key = ?", (key,))
    return json.loads(rows[0][0]) if rows else None


def assert_consistent(db: Path) -> None:
    """Integrity ok; no version repeats its predecessor; one change per new version; no duplicate outbox row."""
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    for (site,) in query(db, "select name from sites"):
        hashes = [h for (h,) in query(db, "select text_hash from versions where site = ? order by seq", (site,))]
        seqs = [s for (s,) in query(db, "select seq from versions where site = ? order by seq", (site,))]
        assert seqs == list(range(1, len(seqs) + 1)), (site, seqs)
        assert all(a != b for a, b in itertools.pairwise(hashes)), f"{site}: a version repeats"
        changes = query(db, "select count(*), count(distinct to_version) from changes where site = ?", (site,))[0]
        assert changes[0] == changes[1] == max(0, len(hashes) - 1), (site, changes, len(hashes))
    dup = query(
        db, "select change_id, subscriber, count(*) from outbox where kind = 'change' group by 1, 2 having count(*) > 1"
    )
    assert dup == [], dup


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WATCHER, *args], capture_output=True, text=True, timeout=timeout, env=env)
