"""A real headless Chromium renders a change page of the report served over HTTP from 127.0.0.1.

The screenshot is kept as a CI artifact at .ci/artifacts/report-change.png (not in git).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import html as lxhtml
from ota_history import filled_project

from watcher.report import write_report
from watcher.store import Store

ARTIFACTS = Path(__file__).resolve().parents[1] / ".ci" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed and could not be (.ci/run runs: apt-get install -y chromium)",
    ),
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def report_url(tmp_path: Path, write_config) -> Iterator[str]:
    config = filled_project(tmp_path, write_config)
    store = Store.open_readonly(config.settings.database)
    try:
        write_report(store, tmp_path / "report")
        cid = store.last_change("Acme")["id"]
    finally:
        store.close()
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "report"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sites/Acme/changes/{cid}.html"
    finally:
        server.shutdown()
        server.server_close()


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=60, check=False)


def test_change_page_shows_insertions_and_deletions_in_chromium(report_url: str, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile-dom", "--dump-dom", report_url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    doc = lxhtml.document_fromstring(dom.stdout)
    assert doc.findtext(".//h1") == "Acme: change #" + report_url.rsplit("/", 1)[1].removesuffix(".html")
    children = next(s for s in doc.xpath("//section[@class='change']") if "Children" in s.xpath("string(h3)"))
    assert [d.text_content() for d in children.xpath(".//del")] == ["deleted: 13", "deleted: 13"]  # side, inline
    assert [i.text_content() for i in children.xpath(".//ins")] == ["inserted: 16", "inserted: 16"]
    sharing = next(s for s in doc.xpath("//section[@class='change']") if "Sharing" in s.xpath("string(h3)"))
    assert any("advertising partners" in i.text_content() for i in sharing.xpath(".//ins"))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-change.png"
    shot.unlink(missing_ok=True)
    run = chromium(tmp_path / "profile-shot", "--window-size=1280,1600", f"--screenshot={shot}", report_url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
