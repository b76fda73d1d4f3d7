"""The `watcher run` daemon: due times, jitter, coalescing, signals, lock and health heartbeat.

One main thread owns the `schedule` scheduler (one job per site, one for outbox delivery),
signals, config reloads and the heartbeat. Due sites are batched into `run_cycle` calls on a
single cycle thread, so check results have one writer in this process and a site is never
checked twice at once: a job that fires while its site is queued or being checked is simply
absorbed (coalesced, never stacked). The main thread (heartbeat, next due times) and the
delivery thread write too, each on its own SQLite connection, in short transactions; a cycle
never holds the write lock while it waits for a page (see cycle.py), and WAL and the busy
timeout let a `watcher check` run alongside. When a check finishes, its site's next run is
taken from `site_state.next_due` (which already knows about failure back-off, held versions
and Retry-After), jittered, and written back, so a restart continues where it stopped and
`watcher status` shows the real plan. One fetcher serves every cycle, so connections and TLS
contexts are reused; a config reload replaces it.

The lock is an flock on `<database>.lock`: the kernel drops it when the process dies, even
on kill -9, so a crashed daemon never blocks its successor.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import signal
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import schedule

from . import notify
from .config import Config, Site, load
from .cycle import SiteResult, make_fetcher, run_cycle
from .errors import ConfigError, LockedError, StoreError
from .fetch import Fetcher
from .logs import redact
from .store import Store
from .times import iso as _iso

log = logging.getLogger("watcher.run")

TICK = 0.25  # seconds the main loop sleeps at most: bounds signal and reload latency
HEARTBEAT_EVERY = 5.0  # seconds between heartbeats in the `meta` table
CONFIG_POLL = 1.0  # seconds between looks at sites.toml's mtime
RECENT_CYCLES = 20  # cycle summaries kept in `meta` for `watcher health`
META_SCHEDULER = "scheduler"
META_CYCLES = "cycles"


# --- time helpers ------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _local_naive(dt: datetime) -> datetime:
    """The `schedule` library keeps next runs as naive local times."""
    return dt.astimezone().replace(tzinfo=None)


# --- lock ---------------------------------------------------------------------------------


class DaemonLock:
    """Exclusive flock on `<database>.lock`, holding the owner's pid for the error message."""

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.database = Path(database)
        self.path = self.database.with_name(self.database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the lock file: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise LockedError(
                f"{self.database}: another `watcher run` (pid {owner}) is already using this database; "
                "stop it first, or give this one its own 'database'"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# --- meta (heartbeat, recent cycles) ---------------------------------------------------------


def meta_get(store: Store, key: str) -> Any:
    row = store.db.execute("select value from meta where key = ?", [key]).fetchone()
    if row is None:
        return None
    try:
        return json.loads(row[0])
    except (TypeError, ValueError):
        return None


def meta_put(store: Store, **values: Any) -> None:
    with store.transaction():
        for key, value in values.items():
            store.db["meta"].upsert({"key": key, "value": json.dumps(value, ensure_ascii=False)}, pk="key")


# --- the daemon -----------------------------------------------------------------------------


@dataclass
class _Job:
    job: schedule.Job
    interval: int
    jitter: float


@dataclass
class _Cycle:
    thread: threading.Thread
    sites: list[str]
    started_at: str
    results: list[SiteResult] = field(default_factory=list)
    fetcher: Fetcher | None = None  # the daemon's at the cycle's start (None: run_cycle makes its own)


class Daemon:
    """Checks every site of a config on its own interval until SIGTERM/SIGINT."""

    def __init__(self, config_path: str | os.PathLike[str], config: Config, *, grace: float = 8.0) -> None:
        self.config_path = Path(config_path)
        self.config = config
        self.grace = grace
        self.scheduler = schedule.Scheduler()
        self.jobs: dict[str, _Job] = {}
        self.due: dict[str, float] = {}  # site -> when it became due; a dict keeps due order and coalesces
        self.reschedule: dict[str, datetime] = {}  # next runs decided inside a job, applied after it returns
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.cycle: _Cycle | None = None
        self.delivery: threading.Thread | None = None
        self.deliver_wanted = False
        self.notify_job: schedule.Job | None = None
        self.stopping = False
        self.abandon = False
        self.reload_wanted = False
        self.started_at = _iso(_utcnow())
        self.last_beat = 0.0
        self.last_poll = 0.0
        self.stamp = _file_stamp(self.config_path)
        self.recent: list[dict[str, Any]] = []
        # one fetcher for every cycle (keep-alive, TLS contexts); replaced on reload, and the old
        # one closed once no cycle uses it (all on the main thread, so no lock is needed)
        self.fetcher = make_fetcher(config)
        self.store: Store
        self.cycle_store: Store
        self.deliver_store: Store

    # -- life cycle ------------------------------------------------------------------------

    def run(self) -> int:
        """Hold the lock, schedule, loop until a stop signal, then stop within `grace` seconds."""
        s = self.config.settings
        lock = DaemonLock(s.database)
        lock.acquire()
        try:
            self.store = Store(s.database, s.snapshots)
            self.cycle_store = Store(s.database, s.snapshots)
            self.deliver_store = Store(s.database, s.snapshots)
            self.recent = list(meta_get(self.store, META_CYCLES) or [])[-RECENT_CYCLES:]
            self._install_signals()
            self._plan(initial=True)
            self._beat(force=True)
            log.info(
                "watcher run: %d sites from %s, database %s (pid %d)",
                len(self.config.sites),
                self.config_path,
                s.database,
                os.getpid(),
                extra={"fields": {"event": "start", "sites": len(self.config.sites), "pid": os.getpid()}},
            )
            if not self.config.sites:
                log.warning("%s: no [[site]] entries yet; add some and the daemon picks them up", self.config_path)
            while not self.stopping:
                try:
                    self._step()
                except Exception:  # a bug in one step must not end months of watching
                    log.exception("scheduler step failed; continuing")
                    time.sleep(1.0)
            self._shutdown()
            return 0
        finally:
            lock.release()

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            if self.stopping:  # a second signal: do not wait for in-flight fetches
                self.abandon = True
            self.stopping = True

        def hup(_signum: int, _frame: object) -> None:
            self.reload_wanted = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def _step(self) -> None:
        now = time.monotonic()
        if self.reload_wanted:
            self.reload_wanted = False
            self._reload("SIGHUP")
        elif now - self.last_poll >= CONFIG_POLL:
            self.last_poll = now
            stamp = _file_stamp(self.config_path)
            if stamp != self.stamp:
                self._reload("file changed")
        self.scheduler.run_pending()
        self._apply_reschedules()
        self._start_cycle()
        self._start_delivery()
        self._beat()
        idle = self.scheduler.idle_seconds
        wait = TICK if idle is None else min(TICK, max(0.0, idle))
        try:
            event = self.events.get(timeout=wait)
        except queue.Empty:
            return
        self._handle(event)
        while True:
            try:
                self._handle(self.events.get_nowait())
            except queue.Empty:
                break

    def _shutdown(self) -> None:
        """Let in-flight work finish for `grace` seconds, then abandon it; always exit 0."""
        busy = self._busy()
        if busy:
            log.info("stopping: waiting up to %.0f s for %s", self.grace, ", ".join(busy))
        deadline = time.monotonic() + self.grace
        while self._busy() and time.monotonic() < deadline and not self.abandon:
            try:
                self._handle(self.events.get(timeout=0.1))
            except queue.Empty:
                pass
        while True:
            try:
                self._handle(self.events.get_nowait())
            except queue.Empty:
                break
        left = self._busy()
        if left:
            sites = ", ".join(self.cycle.sites) if self.cycle else ""
            log.warning(
                "stopping: abandoning %s (%s); unfinished sites are checked first on the next start",
                ", ".join(left),
                sites,
                extra={"fields": {"event": "abandon", "sites": self.cycle.sites if self.cycle else []}},
            )
        try:
            self.store.db.execute("PRAGMA busy_timeout = 2000")  # never wait long on an abandoned writer
            self._beat(force=True, state="stopped")
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not record the stop: %s", exc)
        log.info("stopped", extra={"fields": {"event": "stop"}})
        if left:
            # Worker threads cannot be interrupted; the database is safe (a batch is one
            # transaction: uncommitted results are simply redone) and the kernel drops the
            # lock, so leave without joining them.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        self.fetcher.close()
        for st in (self.store, self.cycle_store, self.deliver_store):
            st.close()

    def _busy(self) -> list[str]:
        out = []
        if self.cycle is not None and self.cycle.thread.is_alive():
            out.append(f"a check of {len(self.cycle.sites)} site(s)")
        if self.delivery is not None and self.delivery.is_alive():
            out.append("a notification delivery")
        return out

    # -- planning ----------------------------------------------------------------------------

    def _plan(self, initial: bool = False) -> None:
        """Make the jobs match the config: one per site, first runs from the stored state."""
        settings = self.config.settings
        sites = {s.name: s for s in self.config.sites}
        for name in list(self.jobs):
            entry = self.jobs[name]
            site = sites.get(name)
            if site is None or self.config.interval(site) != entry.interval or settings.jitter != entry.jitter:
                self.scheduler.cancel_job(entry.job)
                del self.jobs[name]
            if site is None:
                self.due.pop(name, None)
        for name, site in sites.items():
            if name not in self.jobs:
                self._add_job(site)
        if self.notify_job is None or self.notify_job.interval != settings.notify_every:
            if self.notify_job is not None:
                self.scheduler.cancel_job(self.notify_job)
            self.notify_job = self.scheduler.every(settings.notify_every).seconds.do(self._want_delivery)
            if initial:  # send what a previous run left pending at once
                self.notify_job.next_run = _local_naive(_utcnow())

    def _add_job(self, site: Site) -> None:
        interval, jitter = self.config.interval(site), self.config.settings.jitter
        lo = max(1, round(interval * (1 - jitter)))
        hi = max(lo, round(interval * (1 + jitter)))
        job = self.scheduler.every(lo)
        if hi > lo:
            job = job.to(hi)  # the library's own jitter, used when no stored due time applies
        job = job.seconds.do(self._mark_due, site.name).tag("site", site.name)
        job.next_run = _local_naive(self._first_run(site))
        self.jobs[site.name] = _Job(job, interval, jitter)

    def _first_run(self, site: Site) -> datetime:
        """Never checked, or its URL, selector or remove changed: now. Otherwise the stored due time (overdue = now, oldest first)."""
        now = _utcnow()
        state = self.store.state(site.name)
        row = self.store.site_row(site.name)
        if not state.get("last_check") or (
            row is not None and (row.get("settings_hash") != site.settings_hash() or row.get("url") != redact(site.url))
        ):
            return now
        due = _parse(state.get("next_due")) or now
        last = _parse(state.get("last_check"))
        if last is not None:  # an interval shortened in sites.toml applies at once
            due = min(due, last + timedelta(seconds=self.config.interval(site)))
        retry = _parse(state.get("retry_not_before"))
        if retry is not None:
            due = max(due, retry)
        return due  # in the past for overdue sites: run_pending() runs the oldest first

    def _mark_due(self, name: str) -> None:
        """A site's job fired: queue it once, unless a `watcher check` just did it."""
        if name in self.due or (self.cycle is not None and name in self.cycle.sites):
            return  # coalesced: already queued or being checked
        stored = _parse(self.store.state(name).get("next_due"))
        if stored is not None and stored > _utcnow() + timedelta(seconds=1):
            self.reschedule[name] = stored  # checked elsewhere since we planned; follow the database
            return
        self.due[name] = time.time()

    def _apply_reschedules(self) -> None:
        for name, when in self.reschedule.items():
            entry = self.jobs.get(name)
            if entry is not None:
                entry.job.next_run = _local_naive(when)
        self.reschedule.clear()

    def _after_check(self, name: str, next_due: str | None, retry: str | None) -> None:
        """Plan a site's next run from what the check stored, with jitter, and store the plan."""
        entry = self.jobs.get(name)
        if entry is None:
            return  # removed from sites.toml meanwhile
        now = _utcnow()
        target = _parse(next_due) or now + timedelta(seconds=entry.interval)
        delay = max(0.0, (target - now).total_seconds())
        delay *= 1 + random.uniform(-entry.jitter, entry.jitter)
        when = now + timedelta(seconds=delay)
        floor = _parse(retry)
        if floor is not None and when < floor:
            when = floor
        entry.job.next_run = _local_naive(when)
        try:
            with self.store.transaction():
                self.store.update_state(name, next_due=_iso(when))
        except (StoreError, sqlite3.Error) as exc:
            log.warning("site %s: could not store its next due time: %s", name, exc)

    # -- cycles ------------------------------------------------------------------------------

    def _start_cycle(self) -> None:
        if self.stopping or not self.due or self.cycle is not None:  # cleared when its results are in
            return
        by_name = {s.name: s for s in self.config.sites}
        batch_max = max(8, self.config.settings.concurrency * 4)
        names = [n for n in self.due if n in by_name][:batch_max]
        for n in list(self.due):
            if n in names or n not in by_name:
                del self.due[n]
        if not names:
            return
        sites = [by_name[n] for n in names]
        cycle = _Cycle(thread=threading.Thread(), sites=names, started_at=_iso(_utcnow()), fetcher=self.fetcher)
        cycle.thread = threading.Thread(
            target=self._run_cycle, args=(self.config, sites, cycle), name="cycle", daemon=True
        )
        self.cycle = cycle
        cycle.thread.start()

    def _run_cycle(self, config: Config, sites: list[Site], cycle: _Cycle) -> None:
        """Cycle thread: check a batch; results go back to the main thread as events."""
        store = self.cycle_store
        error = None

        def on_result(res: SiteResult) -> None:
            _log_check(res)
            st = store.state(res.site)
            self.events.put(("result", cycle, res, st.get("next_due"), st.get("retry_not_before")))

        try:
            run_cycle(config, store, sites, fetcher=cycle.fetcher, on_result=on_result, stop=lambda: self.stopping)
        except Exception as exc:  # storage trouble (disk full, locked): record it, keep the daemon alive
            error = str(exc)
            log.error("cycle of %s failed: %s", ", ".join(s.name for s in sites), exc)
        self.events.put(("cycle_done", cycle, error))

    def _handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "result":
            _, cycle, res, next_due, retry = event
            cycle.results.append(res)
            self._after_check(res.site, next_due, retry)
        elif kind == "cycle_done":
            _, cycle, error = event
            self._cycle_done(cycle, error)
        elif kind == "delivered":
            pass

    def _cycle_done(self, cycle: _Cycle, error: str | None) -> None:
        results = cycle.results
        errors = [r for r in results if r.outcome == "error"]
        outcomes: dict[str, int] = {}
        for r in results:
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        summary = {
            "started_at": cycle.started_at,
            "finished_at": _iso(_utcnow()),
            "sites": len(cycle.sites),
            "checked": len(results),
            "errors": len(errors) + (len(cycle.sites) - len(results) if error else 0),
            "outcomes": outcomes,
            "failed": bool(error) or (bool(results) and len(errors) == len(results)),
            "error": error or (errors[-1].reason if errors else None),
        }
        if results or error:  # a cycle cut short by a stop before any check is not evidence
            self.recent = [*self.recent, summary][-RECENT_CYCLES:]
        if self.cycle is cycle:
            self.cycle = None
        if cycle.fetcher is not None and cycle.fetcher is not self.fetcher:  # replaced by a reload meanwhile
            cycle.fetcher.close()
        log.debug("cycle done: %s", summary, extra={"fields": {"event": "cycle", **summary}})
        try:
            meta_put(self.store, **{META_CYCLES: self.recent})
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not record the cycle: %s", exc)
        self._beat(force=True)

    # -- delivery ---------------------------------------------------------------------------

    def _want_delivery(self) -> None:
        self.deliver_wanted = True

    def _start_delivery(self) -> None:
        if not self.deliver_wanted or self.stopping or (self.delivery is not None and self.delivery.is_alive()):
            return
        self.deliver_wanted = False
        deliver = getattr(notify, "deliver", None)
        if deliver is None:  # delivery not built in this version: rows stay in the outbox
            return
        config, store = self.config, self.deliver_store

        def work() -> None:
            try:
                report = deliver(config, store)
                counts = {k: int(getattr(report, k, 0) or 0) for k in ("sent", "retrying", "failed")}
                if any(counts.values()):
                    log.info(
                        "notifications: %d sent, %d to retry, %d failed",
                        *counts.values(),
                        extra={"fields": {"event": "delivery", **counts}},
                    )
            except Exception:
                log.exception("notification delivery failed; pending rows stay in the outbox")
            self.events.put(("delivered",))

        self.delivery = threading.Thread(target=work, name="deliver", daemon=True)
        self.delivery.start()

    # -- reload -----------------------------------------------------------------------------

    def _reload(self, why: str) -> None:
        """Validate the new sites.toml first; on any error keep running the old one."""
        self.stamp = _file_stamp(self.config_path)
        try:
            new = load(self.config_path)
        except ConfigError as exc:
            log.error(
                "config reload (%s) failed, keeping the previous configuration: %s",
                why,
                exc,
                extra={"fields": {"event": "reload_failed", "error": str(exc)}},
            )
            return
        old = self.config.settings
        for key in ("database", "snapshots"):
            before, after = getattr(old, key), getattr(new.settings, key)
            if before != after:
                log.warning(
                    "%s: [settings] %s changed from %r to %r; restart `watcher run` to use it (keeping %r)",
                    self.config_path,
                    key,
                    before,
                    after,
                    before,
                )
                setattr(new.settings, key, before)
        self.config = new
        old_fetcher, self.fetcher = self.fetcher, make_fetcher(new)  # timeouts, user agent, limits may have changed
        if self.cycle is None or self.cycle.fetcher is not old_fetcher:
            old_fetcher.close()  # else closed when that cycle is done
        self._plan()
        log.info(
            "config reloaded (%s): %d sites",
            why,
            len(new.sites),
            extra={"fields": {"event": "reload", "sites": len(new.sites)}},
        )

    # -- heartbeat --------------------------------------------------------------------------

    def _beat(self, force: bool = False, state: str = "running") -> None:
        now = time.monotonic()
        if not force and now - self.last_beat < HEARTBEAT_EVERY:
            return
        self.last_beat = now
        cycle = self.cycle if self.cycle is not None and self.cycle.thread.is_alive() else None
        info = {
            "state": state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "heartbeat_at": _iso(_utcnow()),
            "config": str(self.config_path),
            "sites": len(self.config.sites),
            "due": len(self.due),
            "cycle_started_at": cycle.started_at if cycle else None,
        }
        try:
            meta_put(self.store, **{META_SCHEDULER: info})
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not write the heartbeat: %s", exc)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _log_check(res: SiteResult) -> None:
    """One line per check, with the fields a log pipeline filters on."""
    fields = {
        "event": "check",
        "site": res.site,
        "outcome": res.outcome,
        "duration_ms": res.duration_ms,
        "status": res.status,
        "version": res.version,
    }
    if res.outcome == "changed":
        fields.update(material=res.material, severity=res.severity, topics=res.topics)
    if res.outcome in ("error", "held", "skipped"):
        fields.update(reason=res.reason, error_kind=res.error_kind)
    detail = f" ({res.reason})" if res.reason and res.outcome != "changed" else ""
    if res.outcome == "changed":
        detail = f" ({res.severity})" if res.material else " (not material)"
    level = logging.WARNING if res.outcome == "error" else logging.INFO
    log.log(level, "%s: %s%s in %d ms", res.site, res.outcome, detail, res.duration_ms, extra={"fields": fields})


# --- status and health ----------------------------------------------------------------------


def scheduler_info(store: Store) -> dict[str, Any] | None:
    info = meta_get(store, META_SCHEDULER)
    if not isinstance(info, dict):
        return None
    beat = _parse(info.get("heartbeat_at"))
    info["heartbeat_age"] = round((_utcnow() - beat).total_seconds(), 1) if beat else None
    return info


def site_status(config: Config, store: Store | None) -> dict[str, Any]:
    """Per site: last check, last change, last error, failures in a row, next due (None = now)."""
    sites = []
    for site in config.sites:
        st = store.state(site.name) if store is not None else {}
        sites.append(
            {
                "site": site.name,
                "url": redact(site.url),  # printed by `watcher status --json`: no user:password@, ?token=
                "interval": config.interval(site),
                "last_check": st.get("last_check"),
                "last_outcome": st.get("last_outcome"),
                "last_success": st.get("last_success"),
                "last_change": st.get("last_change_at"),
                "last_error": st.get("last_error"),
                "consecutive_failures": int(st.get("consecutive_failures") or 0),
                "next_due": st.get("next_due") if st.get("last_check") else None,
                "held": bool(st.get("held")),
            }
        )
    return {"scheduler": scheduler_info(store) if store is not None else None, "sites": sites}


@dataclass
class Health:
    ok: bool
    message: str


def check_health(store: Store, *, max_age: float, cycles: int, max_cycle: float) -> Health:
    """Unhealthy when the heartbeat is stale or stopped, a cycle hangs, or the last N cycles all failed."""
    info = scheduler_info(store)
    if info is None:
        return Health(False, f"{store.path}: no scheduler heartbeat (is `watcher run` running?)")
    age = info.get("heartbeat_age")
    if info.get("state") != "running":
        return Health(False, f"{store.path}: the scheduler stopped at {info.get('heartbeat_at')}")
    if age is None:
        return Health(False, f"{store.path}: the scheduler heartbeat has no time; restart `watcher run`")
    if age > max_age:
        return Health(
            False,
            f"{store.path}: the scheduler heartbeat is {age:.0f} s old (limit {max_age:.0f} s): "
            f"pid {info.get('pid')} has stalled or died",
        )
    started = _parse(info.get("cycle_started_at"))
    if started is not None:
        running = (_utcnow() - started).total_seconds()
        if running > max_cycle:
            return Health(
                False, f"{store.path}: a cycle has been running for {running:.0f} s (limit {max_cycle:.0f} s)"
            )
    recent = meta_get(store, META_CYCLES) or []
    last = recent[-cycles:] if cycles > 0 else []
    if cycles > 0 and len(last) >= cycles and all(c.get("failed") for c in last):
        return Health(False, f"{store.path}: the last {cycles} cycles all failed (last error: {last[-1].get('error')})")
    done = recent[-1] if recent else None
    tail = f"; last cycle {done['finished_at']} checked {done['checked']} site(s)" if done else "; no cycle yet"
    return Health(True, f"ok: heartbeat {age:.0f} s ago (pid {info.get('pid')}){tail}")
