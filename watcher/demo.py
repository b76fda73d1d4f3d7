"""`watcher demo`: the whole pipeline on bundled policies, served from 127.0.0.1, no network."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from . import samples
from .cli import results_table
from .config import load
from .cycle import run_cycle
from .notify import change_message
from .store import Store

# The edits a real policy goes through between two checks.
EDITS = {
    "wesgar": [
        (
            "We will retain the information that we have collected from you only so long as it is necessary to achieve "
            "our stated purposes or if it is legally required that we retain such information.",
            "We will retain the information that we have collected from you for seven (7) years after your last "
            "interaction with us.",
        ),
        ("This Privacy Policy was last updated July 2023.", "This Privacy Policy was last updated March 2026."),
    ],
    "cantrex": [
        (
            "Les renseignements personnels ne doivent pas être utilisés ou communiqués par Cantrex à des fins autres",
            "Les renseignements personnels peuvent être utilisés ou communiqués par Cantrex à ses partenaires "
            "publicitaires et à des fins autres",
        ),
    ],
}
LAYOUT = {
    "wesgar": "semantic",
    "spi-sorel-tracy": "divs",
    "planiso": "plain",
    "canadian-cloud-backup": "wrapped",
    "cantrex": "semantic",
}


class PageServer:
    """A tiny HTTP server on 127.0.0.1 whose pages carry fresh tokens on every request."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.layouts: dict[str, str] = {}
        self._counter = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/").removesuffix(".html")
                if name not in server.texts:
                    self.send_error(404)
                    return
                n = next(server._counter)
                html = samples.page(
                    name,
                    server.layouts[name],
                    text=server.texts[name],
                    token=f"{n:04x}{n * 7919:06x}",
                    stamp=f"2026-03-01T00:{n % 60:02d}:00Z",
                )
                body = html.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.html"


def _edited(name: str) -> str:
    text = samples.seed_text(name)
    for old, new in EDITS.get(name, []):
        if old not in text:
            raise RuntimeError(f"demo edit for {name} no longer applies")
        text = text.replace(old, new)
    return text


def run_demo(console: Console, keep: str | None = None) -> None:
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="watcher-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with PageServer() as server:
            for name in samples.SEEDS:
                server.texts[name] = samples.seed_text(name)
                server.layouts[name] = LAYOUT[name]
            config_path = workdir / "sites.toml"
            lines = [
                "[settings]",
                f'database = "{(workdir / "watcher.db").as_posix()}"',
                f'snapshots = "{(workdir / "snapshots").as_posix()}"',
                "concurrency = 4",
                "",
            ]
            for name in samples.SEEDS:
                lines += ["[[site]]", f'name = "{name}"', f'url = "{server.url(name)}"', ""]
            config_path.write_text("\n".join(lines), encoding="utf-8")
            config = load(config_path)
            store = Store(config.settings.database, config.settings.snapshots)
            try:
                console.rule("[bold]watcher demo")
                console.print(
                    f"Serving {len(samples.SEEDS)} sample policies on http://127.0.0.1:{server.port}/ "
                    "(every request carries new build tokens and timestamps).\n"
                )
                console.print("[bold]1. First check[/]: every policy becomes version 1.")
                results_table(run_cycle(config, store), console)
                for name, text in ((n, _edited(n)) for n in EDITS):
                    server.texts[name] = text
                server.layouts["planiso"] = "divs"
                console.print(
                    "\n[bold]2. The sites change[/]: Wesgar rewrites its retention period and date, Cantrex "
                    "(French) starts sharing with advertising partners, PLANISO redesigns its page "
                    "(same words, new markup); every page gets new tokens."
                )
                results = run_cycle(config, store)
                results_table(results, console)
                console.print("\n[bold]3. What subscribers are told[/]:")
                for r in results:
                    if r.outcome == "changed" and r.material and r.change_id:
                        _report(console, store, r.site, server.url(r.site), r.change_id)
                if keep:
                    console.print(f"\nDatabase and Markdown snapshots: {workdir}")
                    console.print(f"Try: watcher history wesgar -c {config_path}")
                else:
                    console.print(
                        "\nRun `watcher demo --keep DIR` to keep the database and snapshots and explore them."
                    )
            finally:
                store.close()
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _report(console: Console, store: Store, site: str, url: str, change_id: int) -> None:
    """The stored change as subscribers receive it: notify's own message (its plain-text form)."""
    row = store.change(change_id)
    new = store.version_by_id(row["to_version"]) if row else None
    if row is None or new is None:
        raise RuntimeError(f"demo: change #{change_id} of {site} is not in the database")
    message = change_message(site, url, row, lang=new["lang"])
    console.print(Panel(escape(message.text.rstrip()), title=escape(message.title), expand=False))
