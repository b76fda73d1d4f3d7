"""Values that would parse to nothing, and a database that cannot be opened, fail cleanly."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from watcher.config import parse_duration, parse_size
from watcher.errors import StoreError
from watcher.store import Store


@pytest.mark.parametrize("value", [0.5, "0.5s", "0s", 0.99])
def test_durations_under_a_second_are_rejected(value: object) -> None:
    with pytest.raises(ValueError):  # int() would make them 0: a site checked in a busy loop
        parse_duration(value)


@pytest.mark.parametrize("value", ["0", 0, "0.5", 0.5, "0kb", True])
def test_sizes_under_a_byte_are_rejected(value: object) -> None:
    with pytest.raises(ValueError):  # a cap of 0 bytes refuses every page
        parse_size(value)


def test_an_invalid_size_in_sites_toml_names_the_key(write_config) -> None:
    from watcher.config import load
    from watcher.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load(write_config("", settings='max_bytes = "0"\n'))
    assert "invalid value for 'max_bytes'" in str(err.value)


@pytest.mark.skipif(sys.platform != "linux", reason="counts open files through /proc")
def test_a_database_from_a_newer_watcher_is_refused_without_leaking_its_handle(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")

    def handles() -> int:
        return sum(1 for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(db))

    before = handles()
    for _ in range(3):
        with pytest.raises(StoreError, match="newer watcher"):
            Store(db)
    assert handles() == before
