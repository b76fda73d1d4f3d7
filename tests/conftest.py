"""Shared fixtures: seed pages, a temporary project folder, a config writer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from watcher import samples


@pytest.fixture
def seed_names() -> list[str]:
    return list(samples.SEEDS)


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a sites.toml in tmp_path whose database and snapshots live there too."""

    def write(body: str, settings: str = "") -> Path:
        path = tmp_path / "sites.toml"
        head = f'[settings]\ndatabase = "{(tmp_path / "w.db").as_posix()}"\nsnapshots = "{(tmp_path / "snap").as_posix()}"\n'
        path.write_text(head + textwrap.dedent(settings) + "\n" + textwrap.dedent(body), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch) -> None:
    """A developer's WATCHER_* variables must not send a test's database or config elsewhere."""
    for var in ("WATCHER_DATABASE", "WATCHER_SNAPSHOTS", "WATCHER_CONFIG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def _loopback_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def web(_loopback_server: HTTPServer) -> HTTPServer:
    """A real threaded HTTP server on 127.0.0.1 (pytest-httpserver), cleared for each test."""
    _loopback_server.clear()
    return _loopback_server
