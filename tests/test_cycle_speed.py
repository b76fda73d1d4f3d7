"""Pieces of the cycle's speed and memory (issue 10) whose logic can be checked without timing
anything: the fetch throttle, the batch's savepoints, the slim state read, streamed JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from watcher import cycle
from watcher.cycle import Throttle
from watcher.store import Store, snapshot_name


class Clock:
    """Wall and CPU clocks the test advances by hand."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def spend(self, wall: float, cpu_share: float) -> None:
        self.wall += wall
        self.cpu += wall * cpu_share


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(cycle.time, "monotonic", lambda: c.wall)
    monkeypatch.setattr(cycle.time, "process_time", lambda: c.cpu)
    return c


def test_a_cpu_bound_cycle_shrinks_to_two_fetches_and_a_waiting_one_grows_to_the_setting(clock: Clock) -> None:
    t = Throttle(32)
    assert t.limit == 2  # starts small, whatever the setting
    for _ in range(5):  # a slow server: the process mostly waits
        clock.spend(Throttle.WINDOW * 1.01, 0.1)
        t.tick()
    assert t.limit == 32  # doubled each window, capped at concurrency
    for _ in range(6):  # a fast server: the process is busy all the time
        clock.spend(Throttle.WINDOW * 1.01, 1.0)
        t.tick()
    assert t.limit == 2  # never below two: one page on the wire while one is read
    clock.spend(Throttle.WINDOW * 1.01, 0.7)  # in between: keep
    t.tick()
    assert t.limit == 2


def test_the_throttle_waits_a_whole_window_and_respects_a_concurrency_of_one(clock: Clock) -> None:
    t = Throttle(8)
    clock.spend(Throttle.WINDOW / 2, 0.0)
    t.tick()
    assert t.limit == 2  # half a window: no decision yet
    one = Throttle(1)
    for share in (0.0, 1.0, 1.0):
        clock.spend(Throttle.WINDOW * 1.01, share)
        one.tick()
        assert one.limit == 1


def test_a_fetch_process_throttle_starts_at_one_and_goes_back_to_one(clock: Clock) -> None:
    t = Throttle(8, start=1, least=1)  # a fetch process: nothing else there needs the GIL
    assert t.limit == 1
    for _ in range(3):
        clock.spend(Throttle.WINDOW * 1.01, 0.1)
        t.tick()
    assert t.limit == 8
    for _ in range(4):
        clock.spend(Throttle.WINDOW * 1.01, 1.0)
        t.tick()
    assert t.limit == 1


def test_a_failed_check_inside_a_batch_rolls_back_only_its_own_savepoint(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    store.begin()
    with store.transaction():
        store.update_state("kept", consecutive_failures=1)
    with pytest.raises(RuntimeError), store.transaction():
        store.update_state("lost", consecutive_failures=1)
        with store.transaction():  # nested deeper: its own savepoint, released with the outer one
            store.update_state("lost-too", consecutive_failures=1)
        raise RuntimeError("a bug while recording this site")
    store.commit()
    names = {r["site"] for r in store.states()}
    assert names == {"kept"}
    store.close()


@pytest.mark.parametrize("items", [[], [{"a": 1, "b": "x\ny"}], [{"a": 1}, {"b": [1, 2], "c": {"d": None, "é": "ü"}}]])
def test_check_json_is_streamed_but_byte_for_byte_json_dumps(items: list, capsys: pytest.CaptureFixture[str]) -> None:
    from watcher.cli import _echo_json_list

    _echo_json_list(iter(items))
    assert capsys.readouterr().out == json.dumps(items, ensure_ascii=False, indent=2) + "\n"


def test_check_states_reads_only_what_a_check_needs_for_many_sites(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    with store.transaction():
        for i in range(1200):  # more than one chunk of 500
            store.update_state(f"s{i}", etag=f'"e{i}"', consecutive_failures=3, last_error="boom")
    states = store.check_states([f"s{i}" for i in range(1200)] + ["never-checked"])
    assert states["s1100"] == {"etag": '"e1100"'}  # no failure counts, errors, times...
    assert states["never-checked"] == {}
    store.close()


def _store_with_versions(tmp_path: Path) -> tuple[Store, Path]:
    snap = tmp_path / "snap"
    store = Store(tmp_path / "w.db", snap)
    for name in ("alpha", "beta"):
        store.upsert_site(name, f"https://{name}.example/privacy", "h", "2026-01-01T00:00:00Z")
        for i, at in enumerate(("2026-01-01T00:00:00.100Z", "2026-02-01T00:00:00.100Z")):
            store.add_version(
                name, markdown=f"# {name}\n\nversion {i}\n", title=name, lang="en",
                effective_date=None, body_hash=None, at=at,
            )  # fmt: skip
    return store, snap


def test_checked_snapshot_folders_are_not_read_again_until_something_touches_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, snap = _store_with_versions(tmp_path)
    assert store.ensure_all_snapshots(["alpha", "beta"]) == 6  # two versions and latest.md each
    assert store.ensure_all_snapshots(["alpha", "beta"]) == 0
    # stamped with the newest version's first-seen time: the next pass only stats
    assert (snap / "alpha" / "latest.md").stat().st_mtime_ns // 10**9 == 1769904000
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    assert store.ensure_all_snapshots(["alpha", "beta"]) == 0
    assert reads == []

    # an edited latest.md, a deleted version file: each folder gets the full check again
    (snap / "alpha" / "latest.md").write_text("edited by hand\n", encoding="utf-8")
    next(p for p in (snap / "beta").glob("2026-01-*.md")).unlink()
    assert store.ensure_all_snapshots(["alpha", "beta"]) == 2
    assert (snap / "alpha" / "latest.md").read_text(encoding="utf-8") == "# alpha\n\nversion 1\n"
    assert len(list((snap / "beta").glob("2026-*.md"))) == 2
    reads.clear()
    assert store.ensure_all_snapshots(["alpha", "beta"]) == 0
    assert reads == []

    # a new version whose files were never written (a crash after the commit) is noticed too
    store.add_version(
        "beta", markdown="# beta\n\nversion 2\n", title="beta", lang="en",
        effective_date=None, body_hash=None, at="2026-03-01T00:00:00.100Z",
    )  # fmt: skip
    assert store.ensure_all_snapshots(["alpha", "beta"]) == 2
    assert (snap / "beta" / "latest.md").read_text(encoding="utf-8") == "# beta\n\nversion 2\n"


def test_a_young_temp_file_keeps_its_folder_unstamped_until_it_can_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, snap = _store_with_versions(tmp_path)
    store.ensure_all_snapshots(["alpha"])
    (snap / "alpha" / ".tmp-crashed").write_text("half a file", encoding="utf-8")  # a write killed mid-way
    store.ensure_all_snapshots(["alpha"])
    assert (snap / "alpha" / ".tmp-crashed").exists()  # too young to be sure its writer is gone
    later = time.time() + 3600
    monkeypatch.setattr("watcher.store.time.time", lambda: later)
    store.ensure_all_snapshots(["alpha"])
    assert not (snap / "alpha" / ".tmp-crashed").exists()


def test_a_folder_that_cannot_be_stamped_is_fully_checked_again_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, snap = _store_with_versions(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # files owned by another user

    monkeypatch.setattr("watcher.store.os.utime", refuse)
    assert store.ensure_all_snapshots(["alpha"]) == 3  # the files are written all the same
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    assert store.ensure_all_snapshots(["alpha"]) == 0
    assert reads == [snap / "alpha" / "latest.md"]  # unstamped: checked in full, found right


def test_a_first_versions_files_are_written_from_its_text_and_come_out_checked(
    web, write_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New sites' files are written without reading the versions back; they are the files the
    full check writes, stamped, and a folder left from an earlier database still gets that check."""
    from werkzeug import Response

    from watcher import samples
    from watcher.config import load
    from watcher.cycle import run_cycle

    names = ["fresh", "leftover"]
    for n in names:
        web.expect_request(f"/{n}").respond_with_handler(
            lambda _r, n=n: Response(samples.page("wesgar", token=n), content_type="text/html")
        )
    body = "".join(f'[[site]]\nname = "{n}"\nurl = "{web.url_for("/" + n)}"\n' for n in names)
    config = load(write_config(body))
    snap = Path(config.settings.snapshots)
    (snap / "leftover").mkdir(parents=True)
    (snap / "leftover" / "latest.md").write_text("from a deleted database\n", encoding="utf-8")

    store = Store(config.settings.database, config.settings.snapshots)
    reads: list[str] = []
    real_ensure = Store.ensure_snapshots
    monkeypatch.setattr(
        Store, "ensure_snapshots", lambda self, site, write=None: reads.append(site) or real_ensure(self, site, write)
    )
    results = {r.site: r for r in run_cycle(config, store, config.sites)}
    assert {r.outcome for r in results.values()} == {"new"}
    assert reads == ["leftover"]  # the new folder was written from the text in hand

    for n in names:
        markdown, first_seen = store.conn.execute(
            "select markdown, first_seen from versions where site = ?", [n]
        ).fetchone()
        files = sorted(p.name for p in (snap / n).iterdir())
        assert files == [snapshot_name(first_seen), "latest.md"]
        assert all((snap / n / f).read_text(encoding="utf-8") == markdown for f in files)
    # both folders are stamped: the next check does not read them
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self}"))
    assert store.ensure_all_snapshots(names) == 0
    store.close()


def test_registering_many_sites_reads_them_in_chunks_and_finds_changed_extraction(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    at = "2026-01-01T00:00:00.000000Z"
    sites = [(f"s{i}", f"https://s{i}.example/p", "h1") for i in range(1200)]
    assert store.register_sites(sites, at) == set()
    for name, settings in (("s5", "h1"), ("s700", "h1"), ("s1100", "h0"), ("s1100", "h1")):
        store.add_version(
            name, markdown=f"# {name}\n", title=name, lang="en", effective_date=None, body_hash=None,
            at=at, settings_hash=settings,
        )  # fmt: skip
    sites[700] = ("s700", "https://s700.example/moved", "h2")  # a new selector, and a new URL
    assert store.register_sites(sites, at) == {"s700"}  # s1100's newest version used h1, s5's too
    row = store.conn.execute("select url, settings_hash from sites where name = 's700'").fetchone()
    assert row == ("https://s700.example/moved", "h2")
    assert store.conn.execute("select count(*) from sites").fetchone()[0] == 1200
    store.close()
