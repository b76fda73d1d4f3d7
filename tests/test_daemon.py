"""`watcher run` as a real subprocess against a real local web server and a real SQLite file.

Intervals are a second or two so the whole file runs in well under a minute; every wait is
bounded and fails with the daemon's log.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_support import (
    WATCHER,
    Daemon,
    PolicyServer,
    assert_consistent,
    edited,
    meta,
    query,
    run_cli,
    wait_for,
    write_sites,
)

from watcher import notify, samples
from watcher import schedule as daemon_mod
from watcher.config import load
from watcher.store import Store

pytestmark = pytest.mark.slow
DELIVERS = hasattr(notify, "deliver")


@pytest.fixture
def server():
    srv = PolicyServer()
    yield srv
    srv.stop()


def failures(db: Path) -> dict[str, int]:
    return dict(query(db, "select site, consecutive_failures from site_state"))


def test_daemon_checks_on_schedule_records_a_change_survives_an_outage_and_stops_on_sigterm(
    tmp_path: Path, server: PolicyServer
) -> None:
    for name in ("wesgar", "planiso", "cantrex"):
        server.texts[name] = samples.seed_text(name)
    subscriber = f'[[subscriber]]\nname = "team"\nurls = ["{server.hook()}"]\n'
    cfg = write_sites(
        tmp_path / "sites.toml",
        server,
        {"wesgar": "1s", "cantrex": "1s", "planiso": "3s"},
        settings='notify_every = "1s"\njitter = 0.2',
        extra=subscriber,
    )
    db = tmp_path / "w.db"
    d = Daemon(cfg)
    try:
        # the first cycle starts at once, then each site comes back on its own interval
        wait_for("two checks of every site", lambda: all(len(d.checks(n)) >= 2 for n in server.texts), daemon=d)
        healthy = run_cli("health", "-c", str(cfg))
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout.startswith("ok: heartbeat")

        # a material edit made while the daemon runs becomes one change (and, once delivery exists, a message)
        server.texts["wesgar"] = edited("wesgar")
        wait_for("the change", lambda: query(db, "select id from changes where site = 'wesgar'"), daemon=d)
        assert len(d.checks("wesgar")) > len(d.checks("planiso"))  # 1 s against 3 s
        if DELIVERS:
            wait_for("the notification", lambda: any("wesgar" in json.dumps(p) for p in server.posts), daemon=d)

        # the site goes away: every check fails, health notices, the daemon keeps going
        server.stop()
        wait_for("failed checks of every site", lambda: min(failures(db).values()) >= 1, daemon=d)
        wait_for(
            "two failed cycles",
            lambda: all(c["failed"] for c in (meta(db, "cycles") or [{}])[-2:]),
            daemon=d,
        )
        sick = run_cli("health", "-c", str(cfg), "--cycles", "2")
        assert sick.returncode == 1 and "cycles all failed" in sick.stderr, sick.stderr
        assert len(sick.stderr.strip().splitlines()) == 1

        # and comes back: the failures clear
        server.start()
        wait_for("recovery", lambda: max(failures(db).values()) == 0, timeout=25, daemon=d)

        rc, took = d.terminate()
        assert rc == 0, d.log()
        assert took < 10
    finally:
        d.close()

    checks = d.checks()
    assert checks and all({"site", "outcome", "duration_ms"} <= set(c) for c in checks)
    assert {c["outcome"] for c in checks} >= {"new", "unchanged", "changed", "error"}
    assert_consistent(db)
    assert len(query(db, "select id from changes where site = 'wesgar'")) == 1

    status = run_cli("status", "-c", str(cfg), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["scheduler"]["state"] == "stopped"
    by_site = {s["site"]: s for s in report["sites"]}
    assert set(by_site) == {"wesgar", "planiso", "cantrex"}
    assert by_site["wesgar"]["last_change"] and by_site["wesgar"]["next_due"]
    assert all(s["consecutive_failures"] == 0 and s["last_error"] is None for s in by_site.values())
    stopped = run_cli("health", "-c", str(cfg))
    assert stopped.returncode == 1 and "stopped" in stopped.stderr


def test_a_second_run_is_refused_and_watcher_check_works_alongside(tmp_path: Path, server: PolicyServer) -> None:
    for name in ("wesgar", "cantrex", "planiso"):
        server.texts[name] = samples.seed_text(name)
    subscriber = f'[[subscriber]]\nname = "team"\nurls = ["{server.hook()}"]\n'
    cfg = write_sites(
        tmp_path / "sites.toml", server, {"wesgar": "1s", "cantrex": "1s", "planiso": "1s"}, extra=subscriber
    )
    db = tmp_path / "w.db"
    d = Daemon(cfg)
    try:
        wait_for("first checks", lambda: len(d.checks()) >= 3, daemon=d)
        second = subprocess.run([*WATCHER, "run", "-c", str(cfg)], capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and "already using this database" in second.stderr
        assert f"pid {d.proc.pid}" in second.stderr

        # two `watcher check` at once, while the daemon checks the same sites and a policy changes
        server.texts["cantrex"] = edited("cantrex")
        checks = [
            subprocess.Popen([*WATCHER, "check", "-c", str(cfg), "--json"], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for p in checks:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0
            assert {r["site"] for r in json.loads(out)} == {"wesgar", "cantrex", "planiso"}
        before = len(d.checks())
        wait_for("the daemon to carry on", lambda: len(d.checks()) >= before + 3, daemon=d)
        assert d.terminate()[0] == 0
    finally:
        d.close()
    assert_consistent(db)
    assert len(query(db, "select id from changes where site = 'cantrex'")) == 1
    assert len(query(db, "select id from outbox where site = 'cantrex' and kind = 'change'")) == 1


def test_kill_9_during_a_cycle_then_restart_duplicates_nothing(tmp_path: Path, server: PolicyServer) -> None:
    server.texts.update(wesgar=samples.seed_text("wesgar"), planiso=samples.seed_text("planiso"))
    server.delays["planiso"] = 1.5  # a slow page keeps a cycle open long enough to kill it
    subscriber = f'[[subscriber]]\nname = "team"\nurls = ["{server.hook()}"]\n'
    cfg = write_sites(tmp_path / "sites.toml", server, {"wesgar": "1s", "planiso": "1s"}, extra=subscriber)
    db = tmp_path / "w.db"

    def in_flight() -> bool:
        return server.started.get("planiso", 0) > server.hits.get("planiso", 0)

    for edit in (False, True):
        if edit:
            server.texts["wesgar"] = edited("wesgar")
        d = Daemon(cfg)
        try:
            wait_for("a check of wesgar", lambda d=d: d.checks("wesgar"), daemon=d)
            time.sleep(random.uniform(0, 0.5))
            wait_for("a fetch in flight", in_flight, daemon=d)
            d.kill()
        finally:
            d.close()
        assert_consistent(db)

    server.delays.clear()
    d = Daemon(cfg)
    try:
        # the restart goes on where the killed runs stopped: both sites checked, the change recorded once
        wait_for("checks of both sites", lambda: {c["site"] for c in d.checks()} >= {"wesgar", "planiso"}, daemon=d)
        wait_for("the change", lambda: query(db, "select id from changes where site = 'wesgar'"), daemon=d)
        if DELIVERS:
            wait_for("the pending notification", lambda: any("wesgar" in json.dumps(p) for p in server.posts), daemon=d)
        assert d.terminate()[0] == 0
    finally:
        d.close()
    assert_consistent(db)
    assert len(query(db, "select id from versions where site = 'wesgar'")) == 2
    assert len(query(db, "select id from versions where site = 'planiso'")) == 1
    assert len(query(db, "select id from outbox where site = 'wesgar' and kind = 'change'")) == 1


def test_reload_keeps_the_old_config_when_the_new_one_is_broken(tmp_path: Path, server: PolicyServer) -> None:
    server.texts.update(wesgar=samples.seed_text("wesgar"), planiso=samples.seed_text("planiso"))
    path = tmp_path / "sites.toml"
    cfg = write_sites(path, server, {"wesgar": "1s"})
    d = Daemon(cfg)
    try:
        wait_for("a check", lambda: d.checks("wesgar"), daemon=d)

        good = path.read_text()
        path.write_text(good.replace('interval = "1s"', 'intervall = "1s"'))  # a typo, found on the mtime change

        def reload_failures() -> list[dict]:
            return [e for e in d.events() if e.get("event") == "reload_failed"]

        wait_for("the failed reload", reload_failures, daemon=d)
        failure = reload_failures()[0]
        assert failure["level"] == "error" and "keeping the previous configuration" in failure["msg"]
        assert "unknown key 'intervall'" in failure["error"] and "did you mean 'interval'" in failure["error"]
        n = len(d.checks("wesgar"))
        wait_for("checks on the old config", lambda: len(d.checks("wesgar")) >= n + 2, daemon=d)

        d.proc.send_signal(signal.SIGHUP)  # asked explicitly: validated again, refused again
        wait_for("the second failed reload", lambda: len(reload_failures()) >= 2, daemon=d)
        assert "SIGHUP" in reload_failures()[1]["msg"]

        write_sites(path, server, {"wesgar": "1s", "planiso": "1s"})  # fixed, with one more site
        wait_for("the new site", lambda: d.checks("planiso"), daemon=d)
        assert any(e.get("event") == "reload" and e.get("sites") == 2 for e in d.events())
        assert d.terminate()[0] == 0
    finally:
        d.close()


def test_sigterm_abandons_a_stuck_fetch_after_the_grace_period(tmp_path: Path, server: PolicyServer) -> None:
    server.texts["wesgar"] = samples.seed_text("wesgar")
    server.delays["wesgar"] = 60
    cfg = write_sites(tmp_path / "sites.toml", server, {"wesgar": "1s"}, timeout=30)
    d = Daemon(cfg, "--grace", "1")
    try:
        wait_for("the fetch to start", lambda: server.started.get("wesgar"), daemon=d)
        rc, took = d.terminate()
    finally:
        d.close()
    assert rc == 0
    assert took < 15  # the fetch itself would have taken 30 s
    assert "abandoning" in d.log()
    db = tmp_path / "w.db"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]

    server.delays.clear()  # the lock went with the process: a new daemon starts and checks it first
    d = Daemon(cfg)
    try:
        wait_for("the abandoned site's check", lambda: d.checks("wesgar"), daemon=d)
        assert d.terminate()[0] == 0
    finally:
        d.close()


# --- the scheduler's decisions, in process, on a real database ------------------------------


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _daemon(tmp_path: Path, write_config, names: list[str]) -> daemon_mod.Daemon:
    body = "".join(f'[[site]]\nname = "{n}"\nurl = "http://127.0.0.1:9/{n}"\ninterval = "1h"\n' for n in names)
    path = write_config(body)
    config = load(path)
    dm = daemon_mod.Daemon(path, config)
    dm.store = Store(config.settings.database, config.settings.snapshots)
    return dm


def test_overdue_sites_go_first_and_due_checks_coalesce(tmp_path: Path, write_config) -> None:
    dm = _daemon(tmp_path, write_config, ["recent", "late", "very-late", "future", "never"])
    now = datetime.now(UTC)
    store, config = dm.store, dm.config
    with store.transaction():
        for name, due in {
            "recent": now - timedelta(minutes=1),
            "late": now - timedelta(minutes=30),
            "very-late": now - timedelta(hours=5),
            "future": now + timedelta(minutes=20),
        }.items():
            store.upsert_site(name, config.site(name).url, config.site(name).settings_hash(), _iso(now))
            store.update_state(name, last_check=_iso(due - timedelta(hours=1)), next_due=_iso(due))
    dm._plan(initial=True)
    dm.scheduler.run_pending()
    assert list(dm.due) == ["very-late", "late", "recent", "never"]

    for entry in dm.jobs.values():  # every job fires again before the cycle ran: nothing is stacked
        entry.job.next_run = datetime.now() - timedelta(seconds=1)
    dm.scheduler.run_pending()
    assert list(dm.due) == ["very-late", "late", "recent", "never"]

    dm.due.clear()
    dm.cycle = daemon_mod._Cycle(thread=daemon_mod.threading.Thread(), sites=["late"], started_at=_iso(now))
    dm._mark_due("late")  # being checked right now: not queued again
    assert "late" not in dm.due
    with store.transaction():  # a `watcher check` just checked it and moved its due time on
        store.update_state("recent", next_due=_iso(now + timedelta(hours=1)))
    dm._mark_due("recent")
    dm._apply_reschedules()
    assert "recent" not in dm.due
    assert dm.jobs["recent"].job.next_run > datetime.now() + timedelta(minutes=50)


def test_jitter_spreads_sites_that_are_due_together(tmp_path: Path, write_config) -> None:
    names = [f"s{i}" for i in range(60)]
    dm = _daemon(tmp_path, write_config, names)
    dm._plan(initial=True)
    target = datetime.now(UTC) + timedelta(hours=1)
    for n in names:
        dm._after_check(n, _iso(target), None)
    runs = [dm.jobs[n].job.next_run for n in names]
    local = target.astimezone().replace(tzinfo=None)
    assert all(abs((r - local).total_seconds()) <= 0.1 * 3600 + 5 for r in runs)  # settings.jitter = 0.1
    assert (max(runs) - min(runs)).total_seconds() > 120
    stored = {s["site"]: s["next_due"] for s in dm.store.states()}
    assert len(set(stored.values())) > 50  # the plan is stored, so `status` and a restart see it


def test_health_reports_a_stale_heartbeat_and_failing_cycles(tmp_path: Path, write_config) -> None:
    dm = _daemon(tmp_path, write_config, ["a"])
    store = dm.store
    now = datetime.now(UTC)
    beat = {"state": "running", "pid": 1, "heartbeat_at": _iso(now - timedelta(minutes=10))}
    daemon_mod.meta_put(store, scheduler=beat)
    verdict = daemon_mod.check_health(store, max_age=120, cycles=3, max_cycle=3600)
    assert not verdict.ok and "stalled" in verdict.message

    beat["heartbeat_at"] = _iso(now)
    failed = {"failed": True, "error": "connection refused", "finished_at": _iso(now), "checked": 1}
    daemon_mod.meta_put(store, scheduler=beat, cycles=[{**failed, "failed": False}, failed, failed])
    assert daemon_mod.check_health(store, max_age=120, cycles=3, max_cycle=3600).ok
    daemon_mod.meta_put(store, cycles=[failed, failed, failed])
    verdict = daemon_mod.check_health(store, max_age=120, cycles=3, max_cycle=3600)
    assert not verdict.ok and "last 3 cycles all failed" in verdict.message and "connection refused" in verdict.message
    store.close()

    proc = run_cli("health", "-c", str(dm.config_path))  # the command line agrees, in one line, exit 1
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "all failed" in proc.stderr


def test_cycles_share_one_fetcher_and_a_reload_replaces_it(tmp_path: Path, write_config) -> None:
    """Keep-alive across cycles (the server sees one connection), a fresh fetcher after a reload."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page = samples.page("planiso").encode()
    ports: list[int] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            ports.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    path = write_config(f'[[site]]\nname = "acme"\nurl = "http://127.0.0.1:{httpd.server_address[1]}/p"\n')
    config = load(path)
    dm = daemon_mod.Daemon(path, config)
    dm.store = Store(config.settings.database, config.settings.snapshots)
    dm.cycle_store = Store(config.settings.database, config.settings.snapshots)

    def one_cycle() -> None:
        dm.due["acme"] = time.time()
        dm._start_cycle()
        assert dm.cycle is not None
        dm.cycle.thread.join(30)
        while dm.cycle is not None:
            dm._handle(dm.events.get(timeout=5))

    try:
        first = dm.fetcher
        one_cycle()
        one_cycle()
        assert len(ports) == 2 and ports[0] == ports[1]  # the second cycle reused the connection
        dm._reload("test")
        assert dm.fetcher is not first and not first._transports  # the old one is closed at once (no cycle ran)
        one_cycle()
        assert len(ports) == 3 and ports[2] != ports[0]
    finally:
        dm.fetcher.close()
        dm.store.close()
        dm.cycle_store.close()
        httpd.shutdown()
        httpd.server_close()
