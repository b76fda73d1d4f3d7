"""Pieces of the cycle's speed and memory (issue 10) whose logic can be checked without timing
anything: the fetch throttle, the batch's savepoints, the slim state read, streamed JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watcher import cycle
from watcher.cycle import Throttle
from watcher.store import Store


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
