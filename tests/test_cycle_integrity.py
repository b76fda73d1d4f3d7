"""A check cycle under pressure, against real local servers and real SQLite files: slow pages
and concurrent writers, a full disk mid-batch, new extraction settings, crashes in the parser or
the classifier, overlapping `watcher run` / `watcher check`, dying parse workers, token pages."""

from __future__ import annotations

import gc
import os
import sqlite3
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watcher import samples
from watcher.config import Config, load
from watcher.cycle import (
    REBASELINE_REASON,
    ParseWorkerDied,
    Prepared,
    SiteResult,
    _Parsers,
    _Writes,
    parse_page,
    parse_workers,
    run_cycle,
)
from watcher.errors import StoreError
from watcher.models import FetchResult
from watcher.store import Store, text_hash

HOOK = '[[subscriber]]\nname = "team"\nurls = ["json://127.0.0.1:9/hook"]\nerrors = true\n'
RETENTION_BEFORE = "only so long as it is necessary to achieve our stated purposes"
RETENTION_AFTER = "for seven (7) years after our last interaction with you"


def sites_toml(web: HTTPServer, names: list[str], extra: str = "") -> str:
    return "".join(f'[[site]]\nname = "{n}"\nurl = "{web.url_for("/" + n)}"\n{extra}\n' for n in names)


def open_store(config: Config) -> Store:
    return Store(config.settings.database, config.settings.snapshots)


def cycle(config: Config, sites: list[str] | None = None) -> dict[str, SiteResult]:
    store = open_store(config)
    try:
        chosen = [config.site(n) for n in sites] if sites else None
        return {r.site: r for r in run_cycle(config, store, chosen)}
    finally:
        store.close()


def count(db: str | Path, table: str, where: str = "1") -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"select count(*) from {table} where {where}").fetchone()[0]


def wait_until(what: str, cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def html_page(name: str = "wesgar", text: str | None = None, token: str = "0000") -> str:
    return samples.page(name, text=text, token=token)


# --- 1. a slow page never holds the database's write lock -------------------------------------


def test_a_slow_page_never_holds_the_write_lock(web: HTTPServer, write_config) -> None:
    """Routine results are committed (and announced) while a slow page is still out, so a
    concurrent writer (`watcher check`, the daemon's heartbeat) is not locked out for its duration."""
    release = threading.Event()
    fast = ["a", "b", "c"]
    for n in fast:  # routine results: errors go into a batch
        web.expect_request(f"/{n}").respond_with_data("<p>down</p>", status=500, content_type="text/html")

    def slow(_request: Request) -> Response:
        release.wait(30)
        return Response(html_page(), content_type="text/html")

    web.expect_request("/slow").respond_with_handler(slow)
    config = load(write_config(sites_toml(web, [*fast, "slow"])))
    store = open_store(config)
    announced: list[SiteResult] = []
    done: list[SiteResult] = []
    runner = threading.Thread(target=lambda: done.extend(run_cycle(config, store, on_result=announced.append)))
    runner.start()
    try:
        wait_until("the fast sites' results", lambda: {r.site for r in announced} >= set(fast))
        assert not done  # the slow page is still being fetched
        writer = sqlite3.connect(config.settings.database, timeout=1.0, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # "database is locked" if the batch were still open
            writer.execute("insert into meta (key, value) values ('probe', '1')")
            writer.execute("COMMIT")
        finally:
            writer.close()
        # and what was announced is committed: another connection sees it
        assert count(config.settings.database, "fetches", "outcome = 'error'") == 3
    finally:
        release.set()
        runner.join(30)
        store.close()
    assert {r.site: r.outcome for r in done} == {"a": "error", "b": "error", "c": "error", "slow": "new"}


# --- 2. a full disk mid-batch is a one-line StoreError ------------------------------------------


def test_a_full_disk_inside_a_batch_is_a_store_error(web: HTTPServer, write_config) -> None:
    texts = {"text": samples.seed_text("wesgar")}
    web.expect_request("/acme").respond_with_handler(
        lambda _r: Response(html_page(text=texts["text"]), content_type="text/html")
    )
    config = load(write_config(sites_toml(web, ["acme"])))
    assert cycle(config)["acme"].outcome == "new"
    texts["text"] = texts["text"].replace(RETENTION_BEFORE, RETENTION_AFTER)
    store = open_store(config)
    try:
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages}")  # this connection: the disk is full
        with pytest.raises(StoreError) as err:
            run_cycle(config, store)
    finally:
        store.close()
    message = str(err.value)
    assert "disk is full" in message and "\n" not in message
    assert count(config.settings.database, "versions") == 1
    assert count(config.settings.database, "changes") == 0


# --- 3. a new selector or remove is a new baseline, not a change ---------------------------------


def test_new_selector_or_remove_gives_a_new_baseline_not_a_change(web: HTTPServer, write_config) -> None:
    etag = {"value": '"v1"'}
    seen_conditional: list[bool] = []

    def handle(request: Request) -> Response:
        seen_conditional.append("If-None-Match" in request.headers)
        if request.headers.get("If-None-Match") == etag["value"]:
            return Response(status=304, headers={"ETag": etag["value"]})
        return Response(html_page(), content_type="text/html", headers={"ETag": etag["value"]})

    web.expect_request("/acme").respond_with_handler(handle)

    def run(extra: str = "") -> SiteResult:
        return cycle(load(write_config(sites_toml(web, ["acme"], extra) + HOOK)))["acme"]

    assert run().outcome == "new"
    assert run().reason == "304 Not Modified"

    # the same page under a `remove` that takes a list away: before, a 304 hid it (validators
    # kept) until the bytes changed, and then the old text was diffed against the new
    res = run('remove = ["article.policy ul"]')
    assert (res.outcome, res.reason, res.version) == ("new", REBASELINE_REASON, 2)
    assert seen_conditional[-1] is False  # validators cleared: fetched and parsed in full
    db = load(write_config(sites_toml(web, ["acme"]))).settings.database
    assert count(db, "versions") == 2 and count(db, "changes") == 0 and count(db, "outbox") == 0
    assert count(db, "versions", "seq = 2 and settings_hash is not null") == 1

    res = run('remove = ["article.policy ul"]')  # settled: conditional requests again
    assert (res.outcome, res.reason, res.version) == ("unchanged", "304 Not Modified", 2)

    # settings that extract the very same text: no new version, and no endless refetching
    res = run('remove = ["article.policy ul", "article.policy blink"]')
    assert (res.outcome, res.version) == ("unchanged", 2)
    assert run('remove = ["article.policy ul", "article.policy blink"]').reason == "304 Not Modified"
    assert count(db, "versions") == 2 and count(db, "changes") == 0 and count(db, "outbox") == 0


def test_versions_from_before_schema_2_count_as_matching(web: HTTPServer, write_config) -> None:
    web.expect_request("/acme").respond_with_handler(lambda _r: Response(html_page(), content_type="text/html"))
    config = load(write_config(sites_toml(web, ["acme"])))
    assert cycle(config)["acme"].outcome == "new"
    with sqlite3.connect(config.settings.database) as conn:  # as migration 2 leaves older rows
        conn.execute("update versions set settings_hash = null")
    config.sites[0].remove = ["article.policy ul"]  # unknown settings are not evidence of a change
    assert cycle(config)["acme"].outcome == "unchanged"


# --- 7. a crash while checking one site is that site's error --------------------------------------


def test_a_crashed_fetch_thread_is_recorded_not_lost(web: HTTPServer, write_config, monkeypatch) -> None:
    from watcher import fetch

    web.expect_request("/ok").respond_with_handler(lambda _r: Response(html_page(), content_type="text/html"))
    config = load(write_config(sites_toml(web, ["ok", "boom"])))
    real = fetch.Fetcher.fetch

    def crashing(self, url, **kw):  # type: ignore[no-untyped-def]
        if url.endswith("/boom"):
            raise RuntimeError("fetcher bug")
        return real(self, url, **kw)

    monkeypatch.setattr(fetch.Fetcher, "fetch", crashing)
    results = cycle(config)
    assert results["ok"].outcome == "new"
    boom = results["boom"]
    assert (boom.outcome, boom.error_kind) == ("error", "internal") and "RuntimeError: fetcher bug" in boom.reason
    db = config.settings.database
    assert count(db, "fetches", "site = 'boom' and outcome = 'error' and error_kind = 'internal'") == 1
    assert count(db, "site_state", "site = 'boom' and consecutive_failures = 1 and next_due is not null") == 1


@pytest.mark.parametrize("workers", ["0", "2"], ids=["in-threads", "in-workers"])
def test_a_classifier_bug_is_one_sites_classify_error(web: HTTPServer, write_config, monkeypatch, workers: str) -> None:
    from watcher import classify

    texts = {n: samples.seed_text(n) for n in ("wesgar", "planiso")}
    for n in texts:
        web.expect_request(f"/{n}").respond_with_handler(
            lambda _r, n=n: Response(html_page(n, text=texts[n]), content_type="text/html")
        )
    config = load(write_config(sites_toml(web, list(texts))))
    cycle(config)
    texts["wesgar"] = texts["wesgar"].replace(RETENTION_BEFORE, RETENTION_AFTER)

    def broken(old, new):  # type: ignore[no-untyped-def]
        raise RuntimeError("classifier bug")

    monkeypatch.setattr(classify, "classify", broken)  # forked parse workers inherit it
    monkeypatch.setenv("WATCHER_WORKERS", workers)
    results = cycle(config)
    assert results["planiso"].outcome == "unchanged"  # the cycle went on
    res = results["wesgar"]
    assert (res.outcome, res.error_kind) == ("error", "classify")
    assert res.reason == "classification failed: RuntimeError: classifier bug"
    db = config.settings.database
    assert count(db, "versions", "site = 'wesgar'") == 1 and count(db, "changes") == 0
    monkeypatch.undo()  # fixed: the next check records the change
    assert cycle(config)["wesgar"].outcome == "changed"


def test_a_bug_after_normalize_in_the_fetch_thread_is_a_normalize_error(
    web: HTTPServer, write_config, monkeypatch
) -> None:
    from watcher import dates

    web.expect_request("/acme").respond_with_handler(lambda _r: Response(html_page(), content_type="text/html"))
    config = load(write_config(sites_toml(web, ["acme"])))

    def broken(doc):  # type: ignore[no-untyped-def]
        raise ValueError("date bug")

    monkeypatch.setattr(dates, "effective_date", broken)
    monkeypatch.setenv("WATCHER_WORKERS", "0")
    res = cycle(config)["acme"]
    assert (res.outcome, res.error_kind) == ("error", "normalize") and "ValueError: date bug" in res.reason


# --- 8. state is read inside the site's transaction ------------------------------------------------


def test_overlapping_checks_count_failures_once_and_alert_once(web: HTTPServer, write_config) -> None:
    """`watcher run` took its state snapshot before a `watcher check` recorded a failure: the
    run's own failure must count on top of it, and not alert a second time."""
    gate = {"block": False}
    started, release = threading.Event(), threading.Event()

    def handle(_request: Request) -> Response:
        if gate["block"]:
            gate["block"] = False
            started.set()
            release.wait(30)
        return Response("<p>down</p>", status=500, content_type="text/html")

    web.expect_request("/acme").respond_with_handler(handle)
    config = load(write_config(sites_toml(web, ["acme"]) + HOOK))  # failure_alert_after = 3
    for _ in range(2):
        assert cycle(config)["acme"].outcome == "error"
    gate["block"] = True
    slow_store = open_store(config)
    out: list[SiteResult] = []
    runner = threading.Thread(target=lambda: out.extend(run_cycle(config, slow_store)))
    runner.start()
    try:
        assert started.wait(15)
        assert cycle(config)["acme"].outcome == "error"  # the third failure: alerted
    finally:
        release.set()
        runner.join(30)
        slow_store.close()
    assert out[0].outcome == "error"
    db = config.settings.database
    assert count(db, "site_state", "consecutive_failures = 4 and failure_alerted = 1") == 1
    assert count(db, "outbox", "kind = 'failure'") == 1


# --- 9. a dead parse worker fails only its own pages, and is replaced -----------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="parse workers are forked")
def test_a_dead_parse_worker_fails_its_own_pages_and_the_next_page_gets_a_new_one(monkeypatch) -> None:
    from watcher import normalize
    from watcher.config import Site

    real = normalize.normalize

    def dying(text, **kw):  # type: ignore[no-untyped-def]
        if "CRASH-THE-WORKER" in text:
            os._exit(1)  # what an out-of-memory kill or a segfault in lxml looks like
        if "SLOW" in text:
            time.sleep(0.3)
        return real(text, **kw)

    monkeypatch.setattr(normalize, "normalize", dying)
    site = Site(name="acme", url="http://127.0.0.1:9/")

    def prep(body: str) -> Prepared:
        return Prepared(site, FetchResult(url=site.url, body=body.encode(), content_type="text/html"))

    parsers = _Parsers(2)
    try:
        first = [parsers.submit(prep(html_page(token=str(i))), 5.0) for i in range(2)]
        assert len(parsers.procs) == 2  # a page for each worker
        for fut in first:
            assert fut.result(30).error is None
            parsers.done()
        bad = parsers.submit(prep("<p>CRASH-THE-WORKER</p>"), 5.0)
        with pytest.raises(ParseWorkerDied):
            bad.result(30)
        survivor = [p for p in parsers.procs if p.alive]
        assert len(parsers.procs) == 2 and len(survivor) == 1  # the other worker was not touched
        parsers.reset()
        assert parsers.procs == survivor  # the dead one is gone...
        pages = [parsers.submit(prep(html_page(token=str(i))), 5.0) for i in range(4)]
        assert len(parsers.procs) == 2  # ...and a new one took its share of the next pages
        for fut in pages:
            assert fut.result(30).error is None
            parsers.done()
        parsers.reset()  # a failure collected late changes nothing
        assert len(parsers.procs) == 2 and all(p.alive for p in parsers.procs)

        # more pages than the workers hold wait here, and go out as results come back
        many = [parsers.submit(prep(html_page(token=f"SLOW{i}")), 5.0) for i in range(9)]
        assert len(parsers.waiting) == 9 - 2 * _Parsers.PER_WORKER
        for fut in many:
            while not fut.done():
                parsers.done()  # what the cycle does as it collects each result
                time.sleep(0.01)
            assert fut.result().error is None
        assert not parsers.waiting
    finally:
        parsers.close()
    assert gc.get_freeze_count() == 0 and not parsers.procs


@pytest.mark.skipif(sys.platform != "linux", reason="parse workers are forked")
def test_pages_sent_to_a_worker_that_just_died_fail_instead_of_hanging() -> None:
    from watcher.config import Site
    from watcher.cycle import _ParseProcess

    site = Site(name="acme", url="http://127.0.0.1:9/")
    proc = _ParseProcess()
    try:
        proc.proc.kill()
        proc._reader.join(30)  # the reader saw the pipe close: the worker is marked dead
        assert not proc.alive
        late: Future = Future()
        late.set_running_or_notify_cancel()
        proc.send(late, (html_page().encode(), "text/html", site, 5.0, None, 0.5))
        with pytest.raises(ParseWorkerDied):
            late.result(5)  # failed at once, not left waiting for a reader that has gone
    finally:
        proc.close()


def test_a_machine_that_cannot_fork_parses_in_the_cycle(web: HTTPServer, write_config, monkeypatch, caplog) -> None:
    from watcher import cycle as cycle_mod

    names = [f"s{i}" for i in range(3)]
    for n in names:
        web.expect_request(f"/{n}").respond_with_handler(
            lambda _r, n=n: Response(html_page(token=n), content_type="text/html")
        )
    config = load(write_config(sites_toml(web, names)))

    def no_fork(self) -> None:  # type: ignore[no-untyped-def]
        raise BlockingIOError(11, "Resource temporarily unavailable")  # EAGAIN: a process limit

    monkeypatch.setattr(cycle_mod._ParseProcess, "__init__", no_fork)
    monkeypatch.setenv("WATCHER_WORKERS", "2")
    with caplog.at_level("WARNING", logger="watcher.cycle"):
        results = cycle(config)
    assert {r.outcome for r in results.values()} == {"new"}
    assert caplog.text.count("cannot start a parse worker process") == 1  # one line, not one per page
    assert count(config.settings.database, "versions") == 3
    assert gc.get_freeze_count() == 0


# --- 5. settings.workers is used; WATCHER_WORKERS overrides it ---------------------------------------


def test_parse_workers_from_the_setting_and_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("WATCHER_WORKERS", raising=False)
    assert parse_workers(1, 3) == 3  # an explicit count, however few pages
    assert parse_workers(2, 0) == 0  # automatic: too few pages to pay for a fork
    monkeypatch.setenv("WATCHER_WORKERS", "0")
    assert parse_workers(100, 3) == 0  # the override: parse in the fetch threads
    monkeypatch.setenv("WATCHER_WORKERS", "2")
    assert parse_workers(1, 5) == 2


@pytest.mark.skipif(sys.platform != "linux", reason="parse workers are forked")
def test_settings_workers_parses_in_worker_processes(web: HTTPServer, write_config, monkeypatch) -> None:
    from watcher import dates

    monkeypatch.delenv("WATCHER_WORKERS", raising=False)
    monkeypatch.setattr(dates, "effective_date", lambda doc: str(os.getpid()))  # who parsed the page
    web.expect_request("/acme").respond_with_handler(lambda _r: Response(html_page(), content_type="text/html"))
    config = load(write_config(sites_toml(web, ["acme"]), settings="workers = 1\n"))
    assert config.settings.workers == 1
    assert cycle(config)["acme"].outcome == "new"
    with sqlite3.connect(config.settings.database) as conn:
        (parsed_by,) = conn.execute("select effective_date from versions").fetchone()
    assert parsed_by != str(os.getpid())  # a worker process, for a one-page cycle


# --- 11. same text in new bytes stores no body --------------------------------------------------------


@pytest.mark.parametrize("workers", ["0", "2"], ids=["in-threads", "in-workers"])
def test_token_pages_store_one_body_not_one_per_check(web: HTTPServer, write_config, monkeypatch, workers: str) -> None:
    monkeypatch.setenv("WATCHER_WORKERS", workers)
    n = {"i": 0}

    def handle(_request: Request) -> Response:
        n["i"] += 1
        return Response(html_page(token=f"tok{n['i']:04d}"), content_type="text/html")

    web.expect_request("/acme").respond_with_handler(handle)
    config = load(write_config(sites_toml(web, ["acme"])))
    outcomes = [cycle(config)["acme"].outcome for _ in range(3)]
    assert outcomes == ["new", "unchanged", "unchanged"]
    db = config.settings.database
    assert count(db, "bodies") == 1 and count(db, "fetches") == 3
    with sqlite3.connect(db) as conn:
        last_fetch = conn.execute("select body_hash from fetches order by id desc limit 1").fetchone()[0]
        state = conn.execute("select last_body_hash from site_state").fetchone()[0]
    assert state == last_fetch  # the newest bytes are remembered, so the same bytes skip parsing


def test_a_worker_does_not_compress_a_body_whose_text_is_stored() -> None:
    from watcher.config import Site

    site = Site(name="acme", url="http://127.0.0.1:9/")
    first = parse_page(html_page(token="a").encode(), "text/html", site, 5.0)
    assert first.packed is not None
    prev = (first.text_hash, first.markdown, first.lang)
    again = parse_page(html_page(token="b").encode(), "text/html", site, 5.0, prev)
    assert again.error is None and again.text_hash == text_hash(first.markdown) and again.packed is None


# --- 9. memory: nothing per site outlives its work ---------------------------------------------


def test_a_diff_leaves_the_word_cache_empty() -> None:
    """The cache serves one diff; kept across a cycle it held ~17 MB in each parse worker."""
    from watcher import textutil
    from watcher.config import Site
    from watcher.cycle import compare

    site = Site(name="acme", url="http://127.0.0.1:9/")
    old = parse_page(html_page().encode(), "text/html", site, 5.0)
    edited = samples.seed_text("wesgar").replace(RETENTION_BEFORE, RETENTION_AFTER)
    prev = (old.text_hash, old.markdown, old.lang)
    new = parse_page(html_page(text=edited).encode(), "text/html", site, 5.0, prev)
    assert new.change is not None and new.change.material  # classified in full...
    assert textutil._words.cache_info().currsize == 0  # ...and its words forgotten
    _, change = compare(old.markdown, old.lang, new.markdown, new.lang, 0.5)
    assert change.material and textutil._words.cache_info().currsize == 0


def test_a_snapshot_that_cannot_be_written_is_logged_and_the_cycle_goes_on(
    web: HTTPServer, write_config, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("WATCHER_WORKERS", "2")
    names = [f"s{i}" for i in range(10)]
    for n in names:
        web.expect_request(f"/{n}").respond_with_handler(
            lambda _r, n=n: Response(html_page(token=n), content_type="text/html")
        )
    config = load(write_config(sites_toml(web, names)))
    assert config.settings.snapshots is not None
    blocked = Path(config.settings.snapshots) / "s3" / "latest.md"
    (blocked / "in-the-way").mkdir(parents=True)  # latest.md is a folder: its write fails in a thread
    with caplog.at_level("ERROR", logger="watcher.cycle"):
        results = cycle(config)
    assert {r.outcome for r in results.values()} == {"new"}
    failed = [r for r in caplog.records if "cannot write snapshot files" in r.getMessage()]
    assert len(failed) == 2  # the write in the cycle's thread, then the closing check's retry
    assert count(config.settings.database, "versions") == 10
    assert len(list((blocked.parent).glob("20*.md"))) == 1  # the version file came first and stands
    assert (Path(config.settings.snapshots) / "s4" / "latest.md").is_file()
    # the objects frozen for the forked parse workers are collectable again once the pool is gone
    assert gc.get_freeze_count() == 0


def test_finished_snapshot_writes_are_forgotten_and_their_errors_kept() -> None:
    from concurrent.futures import ThreadPoolExecutor

    writes = _Writes()

    def write(i: int) -> None:
        if i == 7:
            raise OSError(28, "No space left on device")

    with ThreadPoolExecutor(4) as pool:
        for i in range(200):
            writes.add(pool.submit(write, i))
        errors = writes.wait()
    assert writes.pending == set()  # a cold cycle of thousands of sites holds none of them
    assert [e.errno for e in errors if isinstance(e, OSError)] == [28]
