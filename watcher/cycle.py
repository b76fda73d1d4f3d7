"""One check of many sites: fetch -> guard -> normalize -> diff -> classify -> store -> queue.

Pages are fetched by a pool of threads (the sync httpx client: faster than its async one
here, issue 10), in a big cycle by threads in forked fetch processes, one per core
(`FetchProcess`); a body whose hash equals the last one stops there, undecoded and unparsed.
New bodies are decoded, normalized, guarded, rendered and dated in worker processes
(`parse_workers`), which also run the drop guard and classify the change against the version
stored when the page was handed over, so parsing runs beside fetching instead of behind the
GIL. The store is written by the calling thread only, each site's check in one transaction.
Results are committed in batches (BATCH results or BATCH_SECONDS) and announced (snapshot
files, `on_result`) once committed. So a crash loses at most the open batch, which the next
cycle simply redoes (a lost new version or change is found again), never an announced
version, and the loop never waits for a page with a batch open: a concurrent `watcher check`
or the daemon's heartbeat waits at most BATCH_SECONDS for the write lock, not for a slow
server. At most a few pages per thread are in flight, so memory does not grow with the number
of sites. A site that fails is recorded on its state and the cycle goes on: nothing here raises
because one site went wrong (storage failures do, as one-line StoreErrors).
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import BrokenExecutor, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any

from . import guard
from .config import Config, Settings, Site
from .fetch import Fetcher, decode_body, tls_context
from .logs import redact
from .models import Change, FetchResult
from .store import Store, body_hash, pack_body, text_hash
from .times import in_seconds, now_iso

log = logging.getLogger("watcher.cycle")

# Checks are committed in batches (one commit per BATCH results, or BATCH_SECONDS after the batch
# opened), and announced (snapshot files, on_result) only once committed. New versions too: committed
# one by one, a cold cycle's 1,000 first versions cost 16,000 more page writes (issue 10).
BATCH = 64
BATCH_SECONDS = 0.25
STOP_POLL = 0.25  # seconds between looks at stop() while every page in flight is still out
REBASELINE_REASON = "new baseline: selector/remove changed"


@dataclass(slots=True)
class SiteResult:
    """What one check of one site did, for the terminal, `--json` and the logs (slots: a
    cycle keeps one per site to the end, ~0.6 KB each without them)."""

    site: str
    outcome: str  # new | unchanged | changed | held | error | skipped
    reason: str = ""
    status: int | None = None
    duration_ms: int = 0
    version: int | None = None
    change_id: int | None = None
    material: bool = False
    severity: str = "none"
    topics: list[str] = field(default_factory=list)
    summary: str = ""
    error_kind: str | None = None

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass
class Parsed:
    """What `parse_page` computed for one body (crosses the process boundary, so kept small:
    the Markdown, not the Document, whose many small objects cost more to pickle than to rebuild
    from the Markdown in the rare case a change must be classified)."""

    title: str = ""
    lang: str = ""
    markdown: str = ""
    text_hash: str = ""
    effective: str | None = None
    packed: bytes | None = None  # the body compressed for the store; None when the text is the stored one
    error: str | None = None
    error_kind: str | None = None
    prev_hash: str = ""  # the version `drop` and `change` were computed against
    drop: guard.Verdict | None = None
    change: Change | None = None


@dataclass
class Prepared:
    """A fetch plus what a fetch thread or parse worker computed from it, without the database."""

    site: Site
    fetch: FetchResult
    digest: str = ""  # sha256 of the body, computed once in the fetch thread
    same_body: bool = False  # the bytes of the last check: nothing decoded or parsed
    needs_parse: bool = False  # a new body, waiting for a parse worker
    parsed: Parsed | None = None  # set once a new body parsed cleanly
    error: str | None = None  # the page could not be parsed (or the check crashed)
    error_kind: str | None = None


def parse_page(
    body: bytes,
    content_type: str,
    site: Site,
    budget: float,
    prev: tuple[str, str, str] | None = None,
    drop_ratio: float = 0.5,
) -> Parsed:
    """Everything CPU-bound about a new body: decode, normalize, guard, Markdown, stated date,
    compress, and, given the previous version `prev` (text hash, Markdown, lang), the
    suspicious-drop verdict and the classified change.

    Pure of the network and the database, so it can run in a worker process; never raises,
    so a parser or classifier bug is one site's error, not the cycle's.
    """
    # imported where used: a cycle with nothing new never loads the parser (~45 ms of start-up)
    from .dates import effective_date
    from .normalize import NormalizeError, normalize, to_markdown

    try:
        text, _ = decode_body(body, content_type)
        doc = normalize(text, selector=site.selector, remove=site.remove, lang=site.lang, budget_s=budget)
        verdict = guard.assess_page(doc, text)
        if verdict.kind == "error":
            return Parsed(error=verdict.reason, error_kind=verdict.error_kind)
        markdown = to_markdown(doc)
        parsed = Parsed(doc.title, doc.lang, markdown, text_hash(markdown), effective_date(doc))
    except NormalizeError as exc:
        return Parsed(error=str(exc), error_kind="normalize")
    except Exception as exc:
        log.exception("site %s: normalization failed", site.name)
        return Parsed(error=f"normalization failed: {type(exc).__name__}: {exc}", error_kind="normalize")
    if prev is not None and prev[0] == parsed.text_hash:
        return parsed  # same text, other bytes: the body is not stored, so not compressed either
    parsed.packed = pack_body(body)
    if prev is not None:
        parsed.prev_hash = prev[0]
        try:
            parsed.drop, parsed.change = compare(prev[1], prev[2], markdown, doc.lang, drop_ratio)
        except Exception as exc:
            log.exception("site %s: classification failed", site.name)
            return _classify_failed(exc)
    return parsed


def _classify_failed(exc: Exception) -> Parsed:
    return Parsed(error=f"classification failed: {type(exc).__name__}: {exc}", error_kind="classify")


def compare(
    prev_markdown: str, prev_lang: str, markdown: str, lang: str, drop_ratio: float
) -> tuple[guard.Verdict, Change]:
    """(suspicious-drop verdict, classified change) between two stored-form versions."""
    from .classify import classify
    from .normalize import from_markdown
    from .textutil import forget_words

    old, new = from_markdown(prev_markdown, prev_lang or None), from_markdown(markdown, lang or None)
    try:
        return guard.assess_drop(old, new, drop_ratio), classify(old, new)
    finally:
        forget_words()


def _apply(prep: Prepared, parsed: Parsed) -> Prepared:
    prep.needs_parse = False
    if parsed.error:
        prep.error, prep.error_kind = parsed.error, parsed.error_kind
    else:
        prep.parsed = parsed
    return prep


# Worker processes pay off once a cycle has a few new bodies to parse (a fork costs ~5 ms,
# a page ~20 ms of CPU).
MIN_PAGES_FOR_WORKERS = 8


def parse_workers(pages: int, setting: int = 0) -> int:
    """Parse processes for a cycle of `pages` sites.

    WATCHER_WORKERS wins (0 there: parse in the fetch threads); else `settings.workers`: N >= 1
    is N processes, 0 is automatic, one per usable core on Linux when there are several cores
    and at least MIN_PAGES_FOR_WORKERS pages. None where fork is unavailable (the pool forks).
    """
    env = os.environ.get("WATCHER_WORKERS", "").strip()
    if env.isdigit():
        wanted = int(env)
    elif setting > 0:
        wanted = setting
    else:
        if sys.platform != "linux" or pages < MIN_PAGES_FOR_WORKERS:
            return 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        wanted = cores if cores > 1 else 0
    if wanted and not hasattr(os, "fork"):  # the pool forks (multiprocessing's "fork" exists where os.fork does)
        return 0
    return wanted


class ParseWorkerDied(BrokenExecutor):
    """The parse process died (out of memory, a crash in lxml) with this page handed to it."""


class _Parsers:
    """Forked parse processes, started on the first body that needs parsing (a warm cycle never
    starts them).

    Not a ProcessPoolExecutor: its manager and queue-feeder threads handed each page over three
    times on this process's GIL, ~0.15 ms of CPU per page beside the database writes (issue 10).
    Here the calling thread sends a page straight down a worker's pipe, PER_WORKER at most on
    each (the rest wait here, cancellable), and one thread per worker reads its results, in
    order, into the pages' Futures. A worker that dies fails only the pages it held
    (`ParseWorkerDied`); `reset` drops it and the next page starts another.
    """

    PER_WORKER = 2  # one being parsed, one waiting in the pipe

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.procs: list[_ParseProcess] = []
        self.waiting: deque[tuple[Future[Parsed], tuple]] = deque()
        self._frozen = False
        self._no_fork = False  # a fork failed: no more workers this cycle

    def submit(
        self, prep: Prepared, budget: float, prev: tuple[str, str, str] | None = None, drop_ratio: float = 0.5
    ) -> Future[Parsed]:
        fut: Future[Parsed] = Future()
        self.waiting.append((fut, (prep.fetch.body, prep.fetch.content_type, prep.site, budget, prev, drop_ratio)))
        self._pump()
        return fut

    def _pump(self) -> None:
        """Hand waiting pages to workers with room (calling thread only: the readers never send,
        so a worker blocked sending a big result never waits on a thread blocked sending to it)."""
        while self.waiting:
            idle = [p for p in self.procs if p.alive and not p.held]
            if not idle and len(self.procs) < self.workers and not self._no_fork:
                try:
                    idle = [self._start()]  # a page for each worker before any gets a second
                except OSError as exc:  # no fork here (a sandbox, a process limit)
                    log.warning("cannot start a parse worker process (%s); parsing in this process", exc)
                    self._no_fork = True
            room = idle or [p for p in self.procs if p.alive and len(p.held) < self.PER_WORKER]
            if not room and self.procs:
                return  # a worker makes room as its results are collected (or `reset` drops it)
            fut, args = self.waiting.popleft()
            if not fut.set_running_or_notify_cancel():
                continue  # cancelled while it waited (a stopped cycle)
            if room:
                min(room, key=lambda p: len(p.held)).send(fut, args)
            else:  # no worker at all: parse here (parse_page never raises)
                fut.set_result(parse_page(*args))

    def _start(self) -> _ParseProcess:
        if not self._frozen:
            # fork: the children inherit the imported parser (no start-up imports) and run only
            # pure code (no httpx, no sqlite), so the fetch threads' locks are never touched.
            from . import dates, normalize  # noqa: F401 - loaded once here, before the fork

            # Frozen, the objects alive now are never walked by a garbage collection, in the
            # children or here: a walk writes to every object it visits, so each forked worker
            # would slowly copy the parent's whole heap, page by page (its private memory grew
            # with the number of pages parsed, issue 10).
            gc.freeze()
            self._frozen = True
        proc = _ParseProcess()
        self.procs.append(proc)
        return proc

    def done(self) -> None:
        """A page's result was collected: its worker has room for the next."""
        self._pump()

    def reset(self) -> None:
        """After a worker died: drop it (the next page starts another); a failure from a worker
        already dropped changes nothing."""
        for proc in [p for p in self.procs if not p.alive]:
            self.procs.remove(proc)
            proc.close()
        self._pump()

    def close(self) -> None:
        for fut, _ in self.waiting:
            fut.cancel()
        self.waiting.clear()
        for proc in self.procs:
            proc.close()
        self.procs.clear()
        if self._frozen:
            gc.unfreeze()  # a long-lived daemon must collect them again
            self._frozen = False


class _ParseProcess:
    """One forked parse worker (`_parse_child`) and the thread here that reads its results."""

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self.held: deque[Future[Parsed]] = deque()  # sent, in order: the child answers in order
        self.alive = True
        self._lock = threading.Lock()  # `alive` and the reader's final failing of `held`
        try:
            self.proc = ctx.Process(target=_parse_child, args=(child,), name="watcher-parse", daemon=True)
            self.proc.start()
        except BaseException:
            self._conn.close()
            raise
        finally:
            child.close()
        self._reader = threading.Thread(target=self._read, name="parse-results", daemon=True)
        self._reader.start()

    def send(self, fut: Future[Parsed], args: tuple) -> None:
        with self._lock:
            if not self.alive:  # died since it was chosen: its reader has failed what it held
                fut.set_exception(ParseWorkerDied("the parse worker process died"))
                return
            self.held.append(fut)
        try:
            self._conn.send(args)
        except (OSError, ValueError):
            pass  # the worker is gone: its reader fails what it held, this page included
        except Exception as exc:  # a page that does not pickle (never seen): this page's error
            with self._lock:
                if not fut.done():
                    self.held.remove(fut)
                    fut.set_exception(exc)

    def _read(self) -> None:
        try:
            while True:
                try:
                    result = self._conn.recv()
                except (EOFError, OSError):
                    break
                except Exception:  # a result that cannot be read: treat the worker as broken
                    self.proc.terminate()
                    break
                self.held.popleft().set_result(result)
        finally:
            with self._lock:
                self.alive = False
                while self.held:
                    fut = self.held.popleft()
                    if not fut.done():
                        fut.set_exception(ParseWorkerDied("the parse worker process died"))

    def close(self) -> None:
        """End the worker: at once if it still holds pages (a stopped cycle: a page may take the
        whole normalize budget, and a big one may fill the pipe), else once it reads the None."""
        _end_child(self.proc, self._conn, None if self.held else 5.0)
        self._reader.join()
        self._conn.close()


def _child_signals() -> None:
    """In a forked child: Ctrl-C is the parent's to handle (it ends the child), and SIGTERM
    does the default, not what the daemon's handler, inherited by the fork, would do."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _next_job(conn: Any) -> Any:
    """A forked child's next message from the parent; None once told to end, or the parent has gone."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _end_child(proc: Any, conn: Any, wait: float | None) -> None:
    """Ask a forked child to end (None down its pipe) and give it `wait` seconds, then
    terminate it; `wait` None: terminate it at once."""
    if wait is not None:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass  # already gone
        proc.join(wait)
    if proc.is_alive():
        proc.terminate()
        proc.join()


def _parse_child(conn: Any) -> None:
    """A parse worker: `parse_page` each page sent, in order, until None or the pipe closes."""
    _child_signals()
    while (job := _next_job(conn)) is not None:
        parsed = parse_page(*job)
        try:
            conn.send(parsed)
        except (OSError, ValueError):
            return  # the parent has gone
        except Exception as exc:  # a result that does not pickle (never seen): still this page's answer
            conn.send(
                Parsed(error=f"internal error in a parse worker: {type(exc).__name__}: {exc}", error_kind="internal")
            )


class Throttle:
    """How many fetches run at once: up to `most` (settings.concurrency), fewer while this
    process is CPU-bound.

    Threads only pay while pages are on the wire. Against a fast server they queue for the
    GIL instead, and ten fetch threads cost about twice the CPU of one (bench/run.py, issue 10),
    slowing the database writes that share the GIL too. So every WINDOW seconds the share of a
    core the process used decides: at least BUSY, halve the limit; under IDLE, double it (a
    slow server or many hosts: at `most` within a few windows); in between, keep it, never
    under `least`. It starts at two (`start`): each connection opened stays in httpcore's pool,
    which polls every idle one on each request, so a burst of threads at the start would tax
    every later fetch. Two is also the floor where the same process writes the database: one
    page on the wire, one being read; the fetch process, which does nothing else, goes down to one.
    """

    WINDOW = 0.1
    BUSY = 0.85
    IDLE = 0.6

    def __init__(self, most: int, start: int = 2, least: int = 2) -> None:
        self.most = max(1, most)
        self.least = min(self.most, least)
        self.limit = min(self.most, start)
        self._wall, self._cpu = time.monotonic(), time.process_time()

    def tick(self) -> None:
        wall = time.monotonic()
        if wall - self._wall < self.WINDOW:
            return
        cpu = time.process_time()
        used = (cpu - self._cpu) / (wall - self._wall)
        if used >= self.BUSY:
            self.limit = max(self.least, self.limit // 2)
        elif used < self.IDLE:
            self.limit = min(self.most, self.limit * 2)
        self._wall, self._cpu = wall, cpu


def make_fetcher(config: Config) -> Fetcher:
    """The fetcher for a config's settings; long-lived callers (the daemon) keep one for its
    keep-alive connections and TLS contexts."""
    return _fetcher(config.settings)


def _fetcher(s: Settings, concurrency: int = 0, per_host: int = 0) -> Fetcher:
    """A fetcher for settings `s`, or for a fetch process's share of `concurrency` and `per_host`."""
    return Fetcher(
        user_agent=s.user_agent,
        timeout=s.timeout,
        max_bytes=s.max_bytes,
        per_host=per_host or s.per_host,
        allow_private=s.allow_private,
        pool_size=concurrency or s.concurrency,
    )


def prepare(site: Site, fetcher: Fetcher, state: dict, budget: float, inline: bool = True) -> Prepared:
    """Fetch one page and, when `inline`, parse it (runs in a fetch thread; no database access).

    Without `inline` a new body is left for a parse worker (`needs_parse`).
    """
    if not site.verify_tls:
        log.warning("site %s: TLS certificate verification is off (verify_tls = false)", site.name)
    result = fetcher.fetch(
        site.url,
        headers=site.headers,
        etag=state.get("etag"),
        last_modified=state.get("last_modified"),
        verify_tls=site.verify_tls,
        decode=False,  # decoded only if the bytes changed
    )
    prep = Prepared(site=site, fetch=result)
    if not result.ok or result.not_modified:
        return prep
    prep.digest = body_hash(result.body)
    if state.get("last_body_hash") == prep.digest and not state.get("held"):
        prep.same_body = True  # identical bytes: nothing to decode or parse
        result.body = b""  # nor to hold, or pipe from a fetch process (~10% of an unchanged check)
        return prep
    if not inline:
        prep.needs_parse = True
        return prep
    return _apply(prep, parse_page(result.body, result.content_type, site, budget))


def _extracted_otherwise(store: Store, site: Site) -> bool:
    """Was the newest version extracted under another selector/remove? (Unknown counts as no.)"""
    stored = store.version_settings_hash(site.name)
    return stored is not None and stored != site.settings_hash()


# A cycle of at least this many sites fetches in forked processes (see `FetchProcess`): each
# holds ~10-13 MB of private memory and takes ~0.5 ms of CPU per fetch off this process; at 100
# sites (bench/run.py) they made a cycle no faster and its peak memory 14-22 MB larger.
MIN_SITES_FOR_FETCH_PROCESS = 500


def _fetch_cores() -> int:
    """Fetch processes wanted, before the limits: WATCHER_FETCH_PROCESSES=N (0 = none), else
    one per usable core on Linux with several cores. 0 where there is no fork."""
    if not hasattr(os, "fork"):
        return 0
    env = os.environ.get("WATCHER_FETCH_PROCESSES", "").strip()
    if env.isdigit():
        return int(env)
    if sys.platform != "linux":
        return 0
    cores = len(os.sched_getaffinity(0))
    return cores if cores > 1 else 0


def fetch_processes(config: Config, sites: int) -> int:
    """How many child processes fetch a cycle of `sites` sites (0: this process's threads).

    `_fetch_cores()`, when WATCHER_FETCH_PROCESSES says so or the cycle has at least
    MIN_SITES_FOR_FETCH_PROCESS sites (the daemon checks smaller batches); never more than
    `concurrency` or `per_host`: each process takes its share of both, so neither limit is
    exceeded in all.
    """
    if not os.environ.get("WATCHER_FETCH_PROCESSES", "").strip().isdigit() and sites < MIN_SITES_FOR_FETCH_PROCESS:
        return 0
    return min(_fetch_cores(), max(1, config.settings.concurrency), max(1, config.settings.per_host))


def spare_fetch_processes() -> list[FetchProcess]:
    """Fork the fetch processes a big cycle may use, now, before the config is loaded.

    A forked child shares its parent's pages until either side writes one; forked after a
    5,000-site config and its states, each child ended up holding ~4 MB more of the parent's
    heap than one forked before (pages the parent wrote during the cycle), so its memory grew
    with the number of sites (issue 10). `run_cycle` takes what it needs and dismisses the rest.
    Parse workers are not forked early: idle, each still held 16-21 MB, the pages of the heap it
    shared that this process wrote meanwhile, in every cycle, most of which parse nothing.
    """
    made: list[FetchProcess] = []
    try:
        while len(made) < _fetch_cores():
            made.append(FetchProcess())
    except OSError as exc:  # no fork here (a sandbox, a process limit): the cycle fetches in threads
        log.warning("cannot start a fetch process (%s); fetching in threads", exc)
    return made


def _share(total: int, parts: int, part: int) -> int:
    """Part `part` of `total` split in `parts` as evenly as whole numbers allow (at least 1)."""
    return max(1, total // parts + (1 if part < total % parts else 0))


CHUNK = 50  # sites sent to a fetch process at a time


class FetchProcess:
    """A forked child process that fetches for a big cycle.

    In one process the HTTP client's Python layers (~0.5 ms of CPU per fetch) and the database
    writes take turns on one GIL, and the fetch threads' hand-offs of it cost system time too;
    in processes of their own the fetches run on the other cores (issue 10). The child starts
    idle (see `spare_fetch_processes`); `start` sends it the settings and its share of the
    limits, then it asks for sites CHUNK at a time, fetches them (its own fetcher, as many
    threads as its share of `concurrency`, a `Throttle`) and sends back what `prepare` made of
    each, without its Site. A reader thread here answers its requests and hands each result
    to `deliver` as a Prepared, then this object itself once the child has ended. A message is
    read only with one of the cycle's `slots` (given back as each page is recorded), so memory
    stays bounded when the children are faster than the database. If the child dies,
    `outstanding` holds the sites it never answered for.
    """

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self.outstanding: set[int] = set()
        self._closing = False
        self._reader: threading.Thread | None = None
        gc.freeze()  # as for the parse workers: the child's collections must not copy this heap
        try:
            self.proc = ctx.Process(target=_fetch_child, args=(child,), name="watcher-fetch", daemon=True)
            self.proc.start()
        finally:
            gc.unfreeze()
            child.close()

    def start(
        self,
        settings: Settings,
        limits: tuple[int, int],
        inline: bool,
        sites: list[Site],
        indices: list[int],
        states: dict[str, dict],
        slots: threading.Semaphore,
        deliver: Callable[[Any], None],
    ) -> None:
        """Fetch the `sites` at `indices`; `limits` = (threads, per host)."""
        self.outstanding = set(indices)
        self._work = ((i, sites[i], states[sites[i].name]) for i in indices)
        self._slots, self._deliver = slots, deliver
        self._sites: dict[int, Site] = {}  # sent, not yet answered
        try:
            self._conn.send((settings, limits, inline))
        except (OSError, ValueError):
            pass  # the child is gone: the reader sees the end of the pipe at once
        self._reader = threading.Thread(target=self._read, name="fetch-results", daemon=True)
        self._reader.start()

    def dismiss(self) -> None:
        """End the child if it was given no work; harmless once it has ended."""
        _end_child(self.proc, self._conn, 1.0)
        self._conn.close()

    def _read(self) -> None:
        try:
            while True:
                while not self._slots.acquire(timeout=STOP_POLL):
                    if self._closing:
                        return
                try:
                    msg = self._conn.recv()
                except (EOFError, OSError):
                    break
                except Exception as exc:  # a result that cannot be read: the rest is fetched in the parent
                    log.error("a fetch process sent a result that cannot be read: %s: %s", type(exc).__name__, exc)
                    self.proc.terminate()
                    break
                if msg is None:  # the child asks for more sites
                    self._slots.release()
                    chunk = list(itertools.islice(self._work, CHUNK))
                    self._sites.update((index, site) for index, site, _ in chunk)
                    try:
                        self._conn.send(chunk)  # an empty chunk: nothing left
                    except (OSError, ValueError):
                        break
                    continue
                index, fields = msg
                self.outstanding.discard(index)
                self._deliver(Prepared(self._sites.pop(index), *fields))
        finally:
            self._deliver(self)

    def close(self) -> None:
        """End the child, at once if it has not answered for every site (a stopped cycle)."""
        self.proc.join(0 if self.outstanding else 5.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join()
        self._closing = True  # a reader waiting for a slot gives up
        if self._reader is not None:
            self._reader.join()
        self._conn.close()


def _without_site(prep: Prepared) -> tuple:
    """A Prepared's fields after its Site, as a fetch process sends them: `Prepared(site, *fields)`."""
    return (prep.fetch, prep.digest, prep.same_body, prep.needs_parse, prep.parsed, prep.error, prep.error_kind)


def _fetch_child(conn: Any) -> None:
    """The fetch process: wait for (settings, (threads, per host), inline), or None; then the
    threads take the next site in turn, the first `Throttle.limit` of them at a time, asking
    the parent for more CHUNK at a time, and send back each Prepared's fields (not its Site).
    A thread keeps its turn from one page to the next: no hand-off while the limit holds.
    `inline`: new bodies are parsed here too (a cycle without parse workers)."""
    _child_signals()
    tls_context()  # built while the parent loads the config, not before the first fetch
    job = _next_job(conn)
    if job is None:
        return
    settings, (threads, per_host), inline = job
    fetcher = _fetcher(settings, threads, per_host)
    # one fetch at a time while this process is CPU-bound: nothing else here needs the GIL
    throttle = Throttle(threads, start=1, least=1)
    turn = threading.Condition()
    taking, sending = threading.Lock(), threading.Lock()
    ended = threading.Event()

    def sites() -> Iterator[tuple[int, Site, dict]]:
        while True:
            with sending:
                conn.send(None)  # more, please
            chunk = conn.recv()
            if not chunk:
                return
            yield from chunk

    todo = sites()

    def work(k: int) -> None:
        while True:
            with turn:
                throttle.tick()
                while k >= throttle.limit and not ended.is_set():
                    turn.wait(Throttle.WINDOW)
                    throttle.tick()
            with taking:
                try:
                    item = next(todo, None)
                except (EOFError, OSError):  # the parent has gone
                    item = None
            if item is None:
                with turn:
                    ended.set()
                    turn.notify_all()  # the threads waiting for a turn: there is nothing left
                return
            index, site, state = item
            try:
                prep = prepare(site, fetcher, state, settings.normalize_budget, inline)
            except Exception as exc:  # a bug in prepare() or the fetcher: this site's error
                prep = _crashed(site, exc)
            with sending:
                try:
                    conn.send((index, _without_site(prep)))
                except (OSError, ValueError):
                    return  # the parent has gone: nobody to tell
                except Exception as exc:  # a result that does not pickle: still this site's answer
                    conn.send((index, _without_site(_crashed(site, exc))))

    workers = [threading.Thread(target=work, args=(k,), name=f"fetch-{k}") for k in range(max(1, threads))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    fetcher.close()
    conn.close()


def run_cycle(
    config: Config,
    store: Store,
    sites: Iterable[Site] | None = None,
    *,
    fetcher: Fetcher | None = None,
    on_result: Callable[[SiteResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
    spare: list[FetchProcess] | None = None,
) -> list[SiteResult]:
    """Check the given sites (all by default) once; never raises for a site's failure.

    `on_result` hears of each result once it is committed; `fetcher` lets a long-lived caller
    reuse its connections (else one is made and closed here); `spare` are idle fetch processes
    forked early (`spare_fetch_processes`): used if the cycle fetches in processes, else ended.
    """
    sites = list(sites if sites is not None else config.sites)
    own_fetcher = fetcher is None
    fetcher = fetcher or make_fetcher(config)
    results: list[SiteResult] = []
    now = now_iso()
    with store.transaction():
        # the database keeps the URL without its credentials (user:password@, ?token=)
        for name in store.register_sites([(s.name, redact(s.url), s.settings_hash()) for s in sites], now):
            # a new selector/remove: refetch and reparse in full, whatever the validators
            # say; record() makes the result a new baseline, not a change
            store.update_state(name, etag=None, last_modified=None, last_body_hash=None)
    states = store.check_states([site.name for site in sites])
    order = {site.name: i for i, site in enumerate(sites)}
    budget = config.settings.normalize_budget
    threads = max(1, config.settings.concurrency)
    parsers = _Parsers(parse_workers(len(sites), config.settings.workers))
    writes = _Writes()
    remotes: list[FetchProcess] = []
    spare = list(spare or [])

    def todo() -> Iterator[Site]:
        for site in sites:
            wait_until = states[site.name].get("retry_not_before")
            if wait_until and wait_until > now_iso():
                res = SiteResult(site.name, "skipped", f"the server asked to wait until {wait_until}")
                results.append(res)
                if on_result:
                    on_result(res)
                continue
            yield site

    try:
        with (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch") as pool,
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="snapshot") as io,
        ):
            queue = todo()
            fetching: dict[Future[Prepared], Site] = {}
            parsing: dict[Future[Parsed], Prepared] = {}
            window = threads * 3  # pages in flight: bounded, whatever the number of sites
            # finished futures, and pages from the fetch process: O(1) per page, unlike wait() on all in flight
            finished: SimpleQueue[Any] = SimpleQueue()
            slots = threading.Semaphore(window)  # pages read from the fetch processes, not yet recorded
            procs = fetch_processes(config, len(sites)) if own_fetcher else 0  # a caller's fetcher is used as given
            try:
                while len(spare) < procs:
                    spare.append(FetchProcess())
            except OSError as exc:  # no fork here (a sandbox, a process limit): threads, as for a small cycle
                log.warning("cannot start a fetch process (%s); fetching in threads", exc)
                procs = 0
            while spare[procs:]:
                spare.pop().dismiss()
            if procs:
                indices = [order[site.name] for site in queue]
                for j in range(procs):  # sites dealt in turn: each process gets its share of every host
                    remotes.append(spare.pop(0))
                    limits = (_share(threads, procs, j), _share(config.settings.per_host, procs, j))
                    inline = parsers.workers == 0
                    remotes[-1].start(
                        config.settings, limits, inline, sites, indices[j::procs], states, slots, finished.put
                    )
                queue = iter(())
            remote_running = len(remotes)
            unannounced: list[SiteResult] = []  # recorded in the open batch, not yet committed
            # a site's first version: (first seen, Markdown), to write its files without reading them back
            firsts: dict[str, tuple[str, str]] = {}
            batch_until = 0.0
            throttle = Throttle(threads)

            def fill() -> None:
                throttle.tick()
                while len(fetching) < throttle.limit and len(fetching) + len(parsing) < window:
                    site = next(queue, None)
                    if site is None:
                        return
                    inline = parsers.workers == 0
                    fut = pool.submit(prepare, site, fetcher, states[site.name], budget, inline)
                    fetching[fut] = site
                    fut.add_done_callback(finished.put)

            def flush() -> None:
                """Commit the open batch, then announce it (snapshot files, `on_result`)."""
                store.commit()
                for done in unannounced:
                    if done.outcome in ("new", "changed"):
                        _snapshots(store, done.site, io.submit, writes, firsts.pop(done.site, None))
                    if on_result:
                        on_result(done)
                unannounced.clear()

            fill()
            while fetching or parsing or remote_running:
                if stop and stop():
                    for fut in [*fetching, *parsing]:
                        fut.cancel()
                    break
                # never wait for a page with the batch open: it holds the database's write lock
                wait = max(0.0, batch_until - time.monotonic()) if unannounced else STOP_POLL
                try:
                    done = finished.get(timeout=wait)
                except Empty:
                    if unannounced:
                        flush()
                    fill()
                    continue
                if isinstance(done, FetchProcess):  # a fetch process has ended
                    remote_running -= 1
                    if done.outstanding:  # it died: the sites it never answered for are fetched here
                        done.proc.join(1.0)  # its pipe closed as it died: reaped, for its exit code
                        log.error(
                            "a fetch process ended (exit code %s) with %d sites unchecked; checking them here",
                            done.proc.exitcode,
                            len(done.outstanding),
                        )
                        queue = itertools.chain(queue, [sites[i] for i in sorted(done.outstanding)])
                        fill()
                    continue
                prep = done if isinstance(done, Prepared) else _collect(done, fetching, parsing, parsers)
                fill()  # the next page is on its way while this one is parsed or recorded
                if prep.needs_parse:
                    # the worker also classifies the change, against the version stored now
                    # (none for a new baseline: there is nothing to compare with)
                    prev = None
                    last = store.latest_version(prep.site.name)
                    if last and not _extracted_otherwise(store, prep.site):
                        prev = (last["text_hash"], last["markdown"], last["lang"] or "")
                    parsed = parsers.submit(prep, budget, prev, config.settings.hold_drop_ratio)
                    parsing[parsed] = prep
                    parsed.add_done_callback(finished.put)
                    continue
                if not unannounced:
                    batch_until = time.monotonic() + BATCH_SECONDS
                store.begin()  # joined by record()'s own transaction, committed by flush()
                res = record(config, store, prep)
                if remotes:
                    slots.release()  # one more page may come from the fetch process
                results.append(res)
                if res.outcome == "new" and res.version == 1 and prep.parsed and prep.fetch.fetched_at:
                    firsts[res.site] = (prep.fetch.fetched_at, prep.parsed.markdown)
                unannounced.append(res)
                if len(unannounced) >= BATCH or time.monotonic() >= batch_until:
                    flush()
            flush()
            for exc in writes.wait():
                if not isinstance(exc, OSError):
                    raise exc
                log.error("cannot write snapshot files under %s: %s", store.snapshots, exc.strerror)
    finally:
        for remote in remotes:
            remote.close()
        for idle in spare:  # those the cycle did not take (an error before the fetching started)
            idle.dismiss()
        parsers.close()
        if own_fetcher:
            fetcher.close()
        if store.conn.in_transaction:  # an exception left a batch open: keep what was recorded
            try:
                store.commit()
            except Exception:
                log.exception("could not commit the last batch of check results")
    try:
        store.ensure_all_snapshots([site.name for site in sites])
    except OSError as exc:
        log.error("cannot write snapshot files under %s: %s", store.snapshots, exc.strerror)
    results.sort(key=lambda r: order.get(r.site, 0))
    return results


def _collect(
    fut: Future, fetching: dict[Future[Prepared], Site], parsing: dict[Future[Parsed], Prepared], parsers: _Parsers
) -> Prepared:
    """The Prepared a finished fetch or parse future stands for; a crash becomes its site's error,
    so the site is still recorded (a fetches row, its state, a result the daemon reschedules)."""
    if fut in fetching:
        site = fetching.pop(fut)
        try:
            return fut.result()
        except Exception as exc:  # a bug in prepare() or the fetcher
            return _crashed(site, exc)
    prep = parsing.pop(fut)
    prep.needs_parse = False
    try:
        return _apply(prep, fut.result())
    except BrokenExecutor:  # ParseWorkerDied
        # a worker died (out of memory, a crash in the parser): this page fails, the rest go on
        log.error("site %s: the parse worker process died", prep.site.name)
        parsers.reset()
        prep.error, prep.error_kind = "normalization failed: the parse worker process died", "normalize"
        return prep
    except Exception as exc:  # parse_page returns its own errors: this is the pool or pickling
        log.error("site %s: the parse worker failed: %s: %s", prep.site.name, type(exc).__name__, exc)
        prep.error, prep.error_kind = (
            redact(f"internal error in a parse worker: {type(exc).__name__}: {exc}"),
            "internal",
        )
        return prep
    finally:
        parsers.done()


def _crashed(site: Site, exc: Exception) -> Prepared:
    """A check that crashed, as its site's error: the site is still recorded."""
    log.error("site %s: the check crashed", site.name, exc_info=exc)
    message = redact(f"internal error: {type(exc).__name__}: {exc}")
    return Prepared(site, FetchResult(url=site.url, fetched_at=now_iso()), error=message, error_kind="internal")


def _write_all(todo: list[tuple]) -> None:
    for fn, *args in todo:
        fn(*args)


class _Writes:
    """The snapshot writes still running, and the errors of those done. A finished write is
    forgotten at once: kept to the end, a cold cycle held a Future per site (3.6 MB of objects,
    ~9 MB of peak RSS at 5,000 sites, issue 10)."""

    def __init__(self) -> None:
        self.pending: set[Future[None]] = set()
        self.errors: list[BaseException] = []

    def add(self, fut: Future[None]) -> None:
        self.pending.add(fut)  # before the callback, which may run at once
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        self.pending.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.errors.append(fut.exception())  # type: ignore[arg-type]

    def wait(self) -> list[BaseException]:
        """Wait for the writes still running; the errors of all."""
        futures_wait(set(self.pending))
        return self.errors


def _snapshots(
    store: Store, site: str, submit: Callable, writes: _Writes, first: tuple[str, str] | None = None
) -> None:
    """Bring a site's snapshot files up to date, the file writes (fsyncs) in a thread via `submit`.

    A site's files are written in order (its version file, then latest.md), as without threads.
    `first` (first seen, Markdown) is a site's first version, just stored: its files are written
    from it, unless its folder already exists (then the usual check reads the database).
    """
    try:
        todo: list[tuple] = []
        put = lambda *a: todo.append(a)  # noqa: E731
        if first is None or not store.first_snapshot(site, *first, write=put):
            store.ensure_snapshots(site, write=put)
        if todo:
            writes.add(submit(_write_all, todo))
    except OSError as exc:
        log.error("site %s: cannot write snapshot files under %s: %s", site, store.snapshots, exc.strerror)


def record(config: Config, store: Store, prep: Prepared) -> SiteResult:
    """Write one site's check in one transaction and return what happened.

    Run inside the cycle's batch (see the module docstring), the transaction is a savepoint of it.
    The site's state is read here, inside the transaction, not taken from the cycle's start, so
    failure counts, failure alerts and a held candidate stay right when `watcher run` and
    `watcher check` overlap.
    """
    site, fetch = prep.site, prep.fetch
    at = fetch.fetched_at or now_iso()
    base = {
        "at": at,
        "status": fetch.status,
        "duration_ms": fetch.duration_ms,
        "bytes": fetch.size or len(fetch.body),
    }
    with store.transaction():
        state = store.state(site.name)
        error = fetch.error or prep.error
        if error:
            kind = fetch.error_kind or prep.error_kind
            return _record_failure(config, store, site, state, base, error, kind, fetch)
        prev = store.latest_version(site.name, markdown=False)  # the text is read only if it changed

        def result(outcome: str, reason: str, version: int | None, **more: Any) -> SiteResult:
            return SiteResult(site.name, outcome, reason, fetch.status, fetch.duration_ms, version, **more)

        def succeeded(outcome: str, fetch_fields: dict, state_fields: dict | None = None) -> None:
            _succeeded(config, store, site, state, base, outcome, fetch_fields, state_fields or {})

        if fetch.not_modified or prep.same_body:
            if prev is None:
                # a conditional answer without a baseline: forget the validators, fetch in full next time
                store.record_fetch(
                    site.name,
                    **base,
                    outcome="error",
                    error="304 Not Modified without a stored version",
                    error_kind="http",
                )
                store.update_state(site.name, etag=None, last_modified=None, last_body_hash=None, last_check=at)
                return SiteResult(site.name, "error", "304 without a stored version; will refetch", fetch.status)
            # the server still serves the stored version: a held shorter candidate is not confirmed
            succeeded("unchanged", {"version_id": prev["id"]})
            return result(
                "unchanged", "304 Not Modified" if fetch.not_modified else "same bytes as last time", prev["seq"]
            )

        parsed = prep.parsed
        assert parsed is not None and parsed.markdown
        digest = prep.digest
        validators = {
            "etag": fetch.headers.get("etag"),
            "last_modified": fetch.headers.get("last-modified"),
            "last_body_hash": digest,
        }
        rebaseline = prev is not None and _extracted_otherwise(store, site)
        if prev is not None and prev["text_hash"] == parsed.text_hash:
            if rebaseline:  # the new selector/remove extracts the same text: it is the baseline
                store.set_version_settings(prev["id"], site.settings_hash())
            # the body is not stored: pages whose bytes change on every fetch (tokens, timestamps)
            # would add a row per check; last_body_hash still moves, so the same bytes skip parsing
            succeeded("unchanged", {"body_hash": digest, "version_id": prev["id"]}, validators)
            reason = "same policy text" + ("; the held shorter version was not confirmed" if state.get("held") else "")
            return result("unchanged", reason, prev["seq"])
        if prev is None or rebaseline:
            # a first version, or text extracted under a new selector/remove: a baseline, never a change
            store.put_body(fetch.body, fetch.content_type, digest=digest, packed=parsed.packed)
            v = _add_version(store, site, parsed, digest, at)
            succeeded("new", {"body_hash": digest, "version_id": v["id"]}, validators)
            return result("new", "first version" if prev is None else REBASELINE_REASON, v["seq"])

        if parsed.change is not None and parsed.drop is not None and parsed.prev_hash == prev["text_hash"]:
            drop, change = parsed.drop, parsed.change  # computed by the parse worker
        else:  # parsed in a fetch thread, or another writer stored a version meanwhile
            prev_markdown, prev_lang = store.version_markdown(prev["id"])
            try:
                drop, change = compare(
                    prev_markdown, prev_lang, parsed.markdown, parsed.lang, config.settings.hold_drop_ratio
                )
            except Exception as exc:  # a classifier bug is this site's error, not the cycle's
                log.exception("site %s: classification failed", site.name)
                failed = _classify_failed(exc)
                return _record_failure(config, store, site, state, base, failed.error or "", failed.error_kind, fetch)
        if drop.kind == "hold":
            held = json.loads(state["held"]) if state.get("held") else None
            if not held or held.get("text_hash") != parsed.text_hash:
                store.put_body(fetch.body, fetch.content_type, digest=digest, packed=parsed.packed)
                store.record_fetch(
                    site.name, **base, outcome="held", body_hash=digest, error=drop.reason, error_kind=drop.error_kind
                )
                store.update_state(
                    site.name,
                    held=json.dumps({"text_hash": parsed.text_hash, "at": at, "reason": drop.reason}),
                    last_check=at,
                    last_outcome="held",
                    next_due=in_seconds(min(config.settings.confirm_after, config.interval(site))),
                )
                return result("held", drop.reason, None, error_kind=drop.error_kind)
        store.put_body(fetch.body, fetch.content_type, digest=digest, packed=parsed.packed)
        v = _add_version(store, site, parsed, digest, at)
        cid = store.add_change(site.name, prev["id"], v["id"], change, at)
        if change.material:
            from . import notify

            for sub in notify.route(config, site.name, change):
                store.queue(kind="change", subscriber=sub.name, site=site.name, change_id=cid, at=at)
        succeeded(
            "changed",
            {"body_hash": digest, "version_id": v["id"], "change_id": cid},
            {**validators, "last_change_at": at},
        )
        reason = (
            change.summary if change.material else "not material: " + ", ".join(change.noise or ["wording unchanged"])
        )
        return result(
            "changed",
            reason,
            v["seq"],
            change_id=cid,
            material=change.material,
            severity=change.severity,
            topics=change.topics,
            summary=change.summary,
        )


def _succeeded(
    config: Config,
    store: Store,
    site: Site,
    state: dict,
    base: dict,
    outcome: str,
    fetch_fields: dict,
    state_fields: dict,
) -> None:
    """The end of every successful check: its fetches row, a recovery notice if its failures had
    been alerted, and its state (failures reset, next due, no held candidate, `state_fields`)."""
    at = base["at"]
    store.record_fetch(site.name, **base, outcome=outcome, **fetch_fields)
    _recovered(config, store, site, state, at)
    store.update_state(
        site.name,
        consecutive_failures=0,
        last_check=at,
        last_success=at,
        last_error=None,
        next_due=in_seconds(config.interval(site)),
        retry_not_before=None,
        held=None,
        last_outcome=outcome,
        **state_fields,
    )


def _add_version(store: Store, site: Site, parsed: Parsed, digest: str, at: str) -> dict:
    return store.add_version(
        site.name,
        markdown=parsed.markdown,
        title=parsed.title,
        lang=parsed.lang,
        effective_date=parsed.effective,
        body_hash=digest,
        at=at,
        settings_hash=site.settings_hash(),
    )


def _record_failure(
    config: Config, store: Store, site: Site, state: dict, base: dict, error: str, kind: str | None, fetch: FetchResult
) -> SiteResult:
    failures = int(state.get("consecutive_failures") or 0) + 1
    store.record_fetch(site.name, **base, outcome="error", error=error, error_kind=kind)
    retry = None
    if fetch.retry_after:
        retry = in_seconds(min(fetch.retry_after, 7 * 86_400))
    fields = {
        "consecutive_failures": failures,
        "last_check": base["at"],
        "last_error": error,
        "last_outcome": "error",
        "retry_not_before": retry,
        "next_due": retry or in_seconds(min(config.interval(site), 3600 * 2 ** min(failures - 1, 4))),
    }
    if failures >= config.settings.failure_alert_after and not state.get("failure_alerted"):
        from . import notify

        for sub in notify.route_errors(config, site.name):
            store.queue(
                kind="failure",
                subscriber=sub.name,
                site=site.name,
                change_id=None,
                at=base["at"],
                payload={"failures": failures, "error": error, "since": state.get("last_success")},
            )
        fields["failure_alerted"] = 1
    store.update_state(site.name, **fields)
    return SiteResult(site.name, "error", error, fetch.status, fetch.duration_ms, error_kind=kind)


def _recovered(config: Config, store: Store, site: Site, state: dict, at: str) -> None:
    if state.get("failure_alerted"):
        from . import notify

        for sub in notify.route_errors(config, site.name):
            store.queue(
                kind="recovery",
                subscriber=sub.name,
                site=site.name,
                change_id=None,
                at=at,
                payload={"failures": state.get("consecutive_failures") or 0},
            )
        store.update_state(site.name, failure_alerted=0)
