"""Shared fixtures: seed pages, a temporary project folder, a config writer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from watcher import samples

SHARED = Path(__file__).resolve().parents[2] / "shared"


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
