"""Fetching in forked processes (issue 10), against a real local server and real SQLite files:
the same results as the fetch threads, a process that dies mid-cycle, a stopped cycle, the
per-host limit shared between processes, and when the processes are used at all."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import sqlite3
import sys
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watcher import cycle, samples
from watcher.config import Config, load
from watcher.cycle import _share, fetch_processes, run_cycle
from watcher.store import Store

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fetch processes are forked")


RETENTION_BEFORE = "only so long as it is necessary to achieve our stated purposes"
RETENTION_AFTER = "for seven (7) years after our last interaction with you"


def sites_toml(web: HTTPServer, names: list[str]) -> str:
    return "".join(f'[[site]]\nname = "{n}"\nurl = "{web.url_for("/" + n)}"\n\n' for n in names)


def check(config: Config, **kw) -> dict[str, cycle.SiteResult]:  # type: ignore[no-untyped-def]
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        return {r.site: r for r in run_cycle(config, store, **kw)}
    finally:
        store.close()


def serve_pages(web: HTTPServer, names: list[str]) -> None:
    """Each page its own policy text; "gone" answers 404; the rest change on "bump"."""
    bumped: set[str] = set()

    def handler(req: Request) -> Response:
        name = req.path.strip("/")
        if name == "gone":
            return Response("not here", status=404)
        text = samples.seed_text("wesgar")
        if name in bumped:  # a material edit: the retention period
            text = text.replace(RETENTION_BEFORE, RETENTION_AFTER)
        page = samples.page("wesgar", text=text, token=name)
        return Response(page, content_type="text/html; charset=utf-8")

    web.expect_request(re.compile("/.*")).respond_with_handler(handler)
    serve_pages.bumped = bumped  # type: ignore[attr-defined]


def fetch_rows(db: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select site, outcome, status, error_kind, bytes from fetches order by site, id").fetchall()


def test_how_many_fetch_processes(monkeypatch, write_config) -> None:
    config = load(write_config("", "concurrency = 10\nper_host = 3\n"))
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    assert fetch_processes(config, 5) == 2  # the environment wins, whatever the number of sites
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "8")
    assert fetch_processes(config, 5000) == 3  # never more than per_host: each takes a share of it
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "0")
    assert fetch_processes(config, 5000) == 0
    monkeypatch.delenv("WATCHER_FETCH_PROCESSES")
    assert fetch_processes(config, cycle.MIN_SITES_FOR_FETCH_PROCESS - 1) == 0  # a small cycle: threads
    if sys.platform == "linux":
        cores = len(os.sched_getaffinity(0))
        assert fetch_processes(config, 1000) == (min(cores, 3) if cores > 1 else 0)
    assert [_share(10, 3, j) for j in range(3)] == [4, 3, 3]
    assert [_share(2, 2, j) for j in range(2)] == [1, 1]
    assert _share(1, 2, 1) == 1  # never zero threads


def test_fetch_processes_record_what_the_fetch_threads_record(web: HTTPServer, tmp_path, monkeypatch) -> None:
    names = [f"p{i:02d}" for i in range(12)] + ["gone"]
    serve_pages(web, names)
    runs = {}
    for procs in ("0", "2"):
        monkeypatch.setenv("WATCHER_FETCH_PROCESSES", procs)
        folder = tmp_path / procs
        folder.mkdir()
        (folder / "sites.toml").write_text(
            f'[settings]\ndatabase = "{folder / "w.db"}"\nsnapshots = "{folder / "snap"}"\n' + sites_toml(web, names)
        )
        config = load(str(folder / "sites.toml"))
        serve_pages.bumped.clear()  # type: ignore[attr-defined]
        first = check(config)
        second = check(config)
        serve_pages.bumped.update(["p03", "p07"])  # type: ignore[attr-defined]
        third = check(config)
        runs[procs] = (
            [(r.site, r.outcome, r.status, r.error_kind) for r in first.values()],
            [(r.site, r.outcome) for r in second.values()],
            [(r.site, r.outcome, r.version) for r in third.values()],
            fetch_rows(config.settings.database),
            sorted(p.name for p in (folder / "snap").iterdir()),
        )
    assert runs["2"] == runs["0"]
    first, second, third, rows, folders = runs["2"]
    assert {o for s, o, *_ in first if s != "gone"} == {"new"}
    assert ("gone", "error", 404, "http") in first
    assert {o for s, o in second if s != "gone"} == {"unchanged"}
    assert [(s, o) for s, o, _ in third if o == "changed"] == [("p03", "changed"), ("p07", "changed")]
    assert len(rows) == 3 * len(names) and len(folders) == 12
    # an unchanged body is not piped back from the fetch process, but its size is still recorded
    sizes = {site: size for site, outcome, *_, size in rows if outcome == "new"}
    unchanged = [(site, size) for site, outcome, *_, size in rows if outcome == "unchanged"]
    assert len(unchanged) == 12 + 10 and all(size == sizes[site] > 1000 for site, size in unchanged)
    assert gc.get_freeze_count() == 0  # the heap frozen for the fork is unfrozen


def test_a_fetch_process_that_dies_leaves_its_sites_to_the_cycle(
    web: HTTPServer, write_config, monkeypatch, caplog
) -> None:
    names = [f"p{i:02d}" for i in range(10)]
    serve_pages(web, names)
    config = load(write_config(sites_toml(web, names)))
    parent = os.getpid()
    real = cycle.prepare

    def dying(site, *a, **kw):  # type: ignore[no-untyped-def]
        if os.getpid() != parent and site.name == "p04":
            os._exit(3)  # the fetch process dies (out of memory, a crash in a C library)
        return real(site, *a, **kw)

    monkeypatch.setattr(cycle, "prepare", dying)
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    with caplog.at_level(logging.ERROR, logger="watcher.cycle"):
        results = check(config)
    assert {r.outcome for r in results.values()} == {"new"}  # every site checked, p04 by this process
    assert sorted(results) == names
    assert "a fetch process ended (exit code 3)" in caplog.text
    with sqlite3.connect(config.settings.database) as conn:
        assert conn.execute("select count(*) from fetches").fetchone()[0] == len(names)  # once each
    assert not [p for p in multiprocessing.active_children() if p.name == "watcher-fetch"]


def test_a_stopped_cycle_ends_its_fetch_processes(web: HTTPServer, write_config, monkeypatch) -> None:
    release = threading.Event()

    def handler(req: Request) -> Response:
        if req.path != "/fast":
            release.wait(10)  # every other page hangs until the test ends
        return Response(samples.page("wesgar"), content_type="text/html")

    web.expect_request(re.compile("/.*")).respond_with_handler(handler)
    names = ["fast"] + [f"slow{i}" for i in range(6)]
    config = load(write_config(sites_toml(web, names), "timeout = 30\n"))
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    heard: list[str] = []
    start = time.monotonic()
    try:
        results = check(config, on_result=lambda r: heard.append(r.site), stop=lambda: bool(heard))
    finally:
        release.set()
    assert time.monotonic() - start < 8  # not the slow pages' 10 s, nor the 30 s timeout
    assert list(results) == ["fast"]
    assert not [p for p in multiprocessing.active_children() if p.name == "watcher-fetch"]


def test_the_per_host_limit_holds_across_fetch_processes(web: HTTPServer, write_config, monkeypatch) -> None:
    lock = threading.Lock()
    now = [0]
    most = [0]

    def handler(req: Request) -> Response:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.15)
        with lock:
            now[0] -= 1
        return Response(samples.page("wesgar", token=req.path), content_type="text/html")

    web.expect_request(re.compile("/.*")).respond_with_handler(handler)
    names = [f"p{i:02d}" for i in range(12)]
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    config = load(write_config(sites_toml(web, names), "concurrency = 8\nper_host = 2\n"))
    results = check(config)
    assert {r.outcome for r in results.values()} == {"new"}
    assert most[0] == 2  # both processes fetched at once, each its share of the host's two
    most[0] = 0
    config = load(write_config(sites_toml(web, names), "concurrency = 8\nper_host = 4\n"))
    check(config)
    assert 2 < most[0] <= 4


def fetch_children() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "watcher-fetch"]


@pytest.mark.skipif(sys.platform != "linux", reason="parse workers are forked")
def test_a_stopped_cycle_ends_its_parse_workers_mid_page(web: HTTPServer, write_config, monkeypatch) -> None:
    from watcher import normalize

    real = normalize.normalize

    def slow(text, **kw):  # type: ignore[no-untyped-def]
        if "wesgar" not in text.lower():
            time.sleep(20)  # every page but one takes far longer than the test allows
        return real(text, **kw)

    monkeypatch.setattr(normalize, "normalize", slow)  # the forked workers inherit it
    pages = {"fast": samples.page("wesgar")} | {f"slow{i}": samples.page("planiso") for i in range(5)}
    for name, body in pages.items():
        web.expect_request(f"/{name}").respond_with_data(body, content_type="text/html")
    # one fetch at a time, in order: the fast page reaches an idle worker first
    config = load(write_config(sites_toml(web, list(pages)), "concurrency = 1\n"))
    monkeypatch.setenv("WATCHER_WORKERS", "2")
    heard: list[str] = []
    start = time.monotonic()
    results = check(config, on_result=lambda r: heard.append(r.site), stop=lambda: bool(heard))
    assert time.monotonic() - start < 10  # not the slow pages' 20 s
    assert list(results) == ["fast"]
    assert not [p for p in multiprocessing.active_children() if p.name == "watcher-parse"]
    assert gc.get_freeze_count() == 0


def test_spare_fetch_processes_are_used_or_dismissed(web: HTTPServer, write_config, monkeypatch) -> None:
    names = [f"p{i:02d}" for i in range(6)]
    serve_pages(web, names)
    config = load(write_config(sites_toml(web, names)))
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    spare = cycle.spare_fetch_processes()
    assert len(spare) == 2 and all(p.proc.is_alive() for p in spare)
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "1")  # the cycle wants one: the other is sent away
    results = check(config, spare=spare)
    assert {r.outcome for r in results.values()} == {"new"} and sorted(results) == names
    assert [p.proc.exitcode for p in spare] == [0, 0] and not fetch_children()
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    spare = cycle.spare_fetch_processes()
    monkeypatch.delenv("WATCHER_FETCH_PROCESSES")  # six sites: too few for processes, both sent away
    assert {r.outcome for r in check(config, spare=spare).values()} == {"unchanged"}
    assert [p.proc.exitcode for p in spare] == [0, 0] and not fetch_children()


def test_watcher_check_ends_its_spare_processes_whatever_happens(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from watcher.cli import main

    forked: list[int] = []
    real = cycle.spare_fetch_processes

    def counted() -> list:
        spare = real()
        forked.append(len(spare))
        return spare

    monkeypatch.setattr(cycle, "spare_fetch_processes", counted)
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    bad = tmp_path / "sites.toml"
    tables = "".join(f'[[site]]\nname = "s{i}"\nurl = "http://127.0.0.1:9/{i}"\n' for i in range(600))
    bad.write_text(tables + "[[site]]\nname = \n")  # malformed at the end: the check never starts
    result = CliRunner().invoke(main, ["check", "-c", str(bad)])
    assert result.exit_code != 0 and "invalid TOML" in result.output
    assert forked == [2]  # a big config: forked before it was read...
    assert not fetch_children()  # ...and ended when it could not be
    small = tmp_path / "small.toml"
    small.write_text('[[site]]\nname = "one"\nurl = "http://127.0.0.1:9/"\n')
    CliRunner().invoke(main, ["check", "-c", str(small), "--no-notify"])
    assert forked == [2]  # a small one is not worth the forks


def test_watcher_check_of_a_big_config_fetches_in_its_early_processes(web: HTTPServer, tmp_path, monkeypatch) -> None:
    import json

    from click.testing import CliRunner

    from watcher.cli import main

    names = [f"p{i:02d}" for i in range(8)]
    serve_pages(web, names)
    monkeypatch.setattr(cycle, "MIN_SITES_FOR_FETCH_PROCESS", 5)  # "big" for this test: 8 sites
    monkeypatch.delenv("WATCHER_FETCH_PROCESSES", raising=False)
    monkeypatch.setenv("WATCHER_WORKERS", "0")
    started: list[int] = []
    real_start = cycle.FetchProcess.start

    def start(self, *args, **kw):  # type: ignore[no-untyped-def]
        started.append(self.proc.pid)
        return real_start(self, *args, **kw)

    monkeypatch.setattr(cycle.FetchProcess, "start", start)
    early: list[int] = []
    real_spare = cycle.spare_fetch_processes

    def spare() -> list:
        made = real_spare()
        early.extend(p.proc.pid for p in made)
        return made

    monkeypatch.setattr(cycle, "spare_fetch_processes", spare)
    config = tmp_path / "sites.toml"
    config.write_text(
        f'[settings]\ndatabase = "{tmp_path / "w.db"}"\nsnapshots = "{tmp_path / "snap"}"\n' + sites_toml(web, names)
    )
    result = CliRunner().invoke(main, ["check", "-c", str(config), "--json", "--no-notify"])
    assert result.exit_code == 0, result.output
    assert sorted((r["site"], r["outcome"]) for r in json.loads(result.stdout)) == [(n, "new") for n in names]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    expected = min(cores, 2) if sys.platform == "linux" and cores > 1 else 0  # per_host = 2 by default
    assert len(started) == expected and set(started) <= set(early)  # the ones forked before the config
    assert not fetch_children()


def test_a_machine_that_cannot_fork_fetches_in_threads(web: HTTPServer, write_config, monkeypatch, caplog) -> None:
    names = [f"p{i:02d}" for i in range(4)]
    serve_pages(web, names)
    config = load(write_config(sites_toml(web, names)))
    monkeypatch.setenv("WATCHER_FETCH_PROCESSES", "2")
    spare = cycle.spare_fetch_processes()  # one forked while forking still worked

    def no_fork(self) -> None:  # type: ignore[no-untyped-def]
        raise BlockingIOError(11, "Resource temporarily unavailable")  # EAGAIN: a process limit

    monkeypatch.setattr(cycle.FetchProcess, "__init__", no_fork)
    assert cycle.spare_fetch_processes() == []  # a one-line warning, no traceback up the CLI
    with caplog.at_level(logging.WARNING, logger="watcher.cycle"):
        results = check(config, spare=spare[:1])
    assert {r.outcome for r in results.values()} == {"new"} and sorted(results) == names
    assert "cannot start a fetch process" in caplog.text
    for extra in spare[1:]:
        extra.dismiss()
    assert spare[0].proc.exitcode == 0 and not fetch_children()  # the one that was forked is ended


def test_a_prepared_page_crosses_the_pipe_whole() -> None:
    from watcher.config import Site
    from watcher.cycle import Prepared, _without_site
    from watcher.models import FetchResult

    prep = Prepared(Site(name="a", url="http://127.0.0.1:9/"), FetchResult(url="u"), "d", True, False, None, "e", "k")
    assert Prepared(prep.site, *_without_site(prep)) == prep  # every field after the Site, in order
