"""One check of many sites: fetch -> guard -> normalize -> diff -> classify -> store -> queue.

Pages are fetched by a pool of threads (the sync httpx client: faster than its async one
here, issue 10); a body whose hash equals the last one stops there, undecoded and unparsed.
New bodies are decoded, normalized, rendered, dated and compressed in worker processes, one
per core, so parsing runs beside fetching instead of behind the GIL. The store is written
by the calling thread only, one transaction per site, so the database has a single writer
and a crash loses at most the site being written. At most a few pages per thread are in
flight, so memory does not grow with the number of sites. A site that fails is recorded on
its state and the cycle goes on: nothing here raises because one site went wrong.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from queue import SimpleQueue

from . import guard
from .config import Config, Site
from .fetch import Fetcher, decode_body, now_iso
from .logs import redact
from .models import Change, FetchResult
from .store import Store, body_hash, pack_body, text_hash

log = logging.getLogger("watcher.cycle")

# Unchanged and failed checks are committed in batches (one commit per BATCH results or
# BATCH_SECONDS); a new or changed version is committed, and announced, at once.
BATCH = 64
BATCH_SECONDS = 0.25


@dataclass
class SiteResult:
    """What one check of one site did, for the terminal, `--json` and the logs."""

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
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Prepared:
    """A fetch plus what the worker could compute without the database."""

    site: Site
    fetch: FetchResult
    same_body: bool = False
    markdown: str = ""
    error: str | None = None
    error_kind: str | None = None
    seconds: float = 0.0
    digest: str = ""  # sha256 of the body, computed once in the fetch thread
    needs_parse: bool = False  # a new body, waiting for a parse worker
    text_hash: str = ""
    effective: str | None = None  # the policy's stated date
    prev_hash: str = ""  # computed by the parse worker against this previous version:
    drop: guard.Verdict | None = None  # ... the suspicious-drop verdict
    change: Change | None = None  # ... and the classified change
    packed: bytes | None = None  # the body compressed for the store, by the parse worker
    title: str = ""
    lang: str = ""


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
    packed: bytes | None = None
    error: str | None = None
    error_kind: str | None = None
    prev_hash: str = ""  # the version `drop` and `change` were computed against
    drop: guard.Verdict | None = None
    change: Change | None = None


def parse_page(
    body: bytes,
    content_type: str,
    site: Site,
    budget: float,
    text: str = "",
    prev: tuple[str, str, str] | None = None,
    drop_ratio: float = 0.5,
) -> Parsed:
    """Everything CPU-bound about a new body: decode, normalize, guard, Markdown, stated date,
    compress, and, given the previous version `prev` (text hash, Markdown, lang), the
    suspicious-drop verdict and the classified change.

    Pure of the network and the database, so it can run in a worker process.
    """
    # imported where used: a cycle with nothing new never loads the parser (~45 ms of start-up)
    from .dates import effective_date
    from .normalize import NormalizeError, normalize, to_markdown

    if not text:
        text, _ = decode_body(body, content_type)
    try:
        doc = normalize(text, selector=site.selector, remove=site.remove, lang=site.lang, budget_s=budget)
    except NormalizeError as exc:
        return Parsed(error=str(exc), error_kind="normalize")
    except Exception as exc:  # a parser bug must not stop the cycle
        log.exception("site %s: normalization failed", site.name)
        return Parsed(error=f"normalization failed: {type(exc).__name__}: {exc}", error_kind="normalize")
    verdict = guard.assess_page(doc, text)
    if verdict.kind == "error":
        return Parsed(error=verdict.reason, error_kind=verdict.error_kind)
    markdown = to_markdown(doc)
    parsed = Parsed(doc.title, doc.lang, markdown, text_hash(markdown), effective_date(doc), pack_body(body))
    if prev is not None and prev[0] != parsed.text_hash:
        parsed.prev_hash = prev[0]
        parsed.drop, parsed.change = compare(prev[1], prev[2], markdown, doc.lang, drop_ratio)
    return parsed


def compare(
    prev_markdown: str, prev_lang: str, markdown: str, lang: str, drop_ratio: float
) -> tuple[guard.Verdict, Change]:
    """(suspicious-drop verdict, classified change) between two stored-form versions."""
    from .classify import classify
    from .normalize import from_markdown

    old, new = from_markdown(prev_markdown, prev_lang or None), from_markdown(markdown, lang or None)
    return guard.assess_drop(old, new, drop_ratio), classify(old, new)


def _apply(prep: Prepared, parsed: Parsed) -> Prepared:
    prep.needs_parse = False
    if parsed.error:
        prep.error, prep.error_kind = parsed.error, parsed.error_kind
        return prep
    prep.title, prep.lang, prep.markdown, prep.text_hash = parsed.title, parsed.lang, parsed.markdown, parsed.text_hash
    prep.effective, prep.packed = parsed.effective, parsed.packed
    prep.prev_hash, prep.drop, prep.change = parsed.prev_hash, parsed.drop, parsed.change
    return prep


# Worker processes pay off once a cycle has a few new bodies to parse (a fork costs ~5 ms,
# a page ~20 ms of CPU); WATCHER_WORKERS overrides the count (0: parse in the fetch threads).
MIN_PAGES_FOR_WORKERS = 8


def parse_workers(pages: int) -> int:
    """Worker processes for a cycle of `pages` sites: one per usable core, none where fork is unsafe."""
    env = os.environ.get("WATCHER_WORKERS", "").strip()
    if env.isdigit():
        return int(env)
    if sys.platform != "linux" or pages < MIN_PAGES_FOR_WORKERS:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


class _Parsers:
    """A process pool started on the first body that needs parsing (a warm cycle never starts it)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def submit(
        self, prep: Prepared, budget: float, prev: tuple[str, str, str] | None = None, drop_ratio: float = 0.5
    ) -> Future[Parsed]:
        if self.pool is None:
            # fork: the children inherit the imported parser (no start-up imports) and run only
            # pure code (no httpx, no sqlite), so the fetch threads' locks are never touched.
            from . import dates, normalize  # noqa: F401 - loaded once here, before the fork

            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        return self.pool.submit(
            parse_page, prep.fetch.body, prep.fetch.content_type, prep.site, budget, "", prev, drop_ratio
        )

    def reset(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def make_fetcher(config: Config) -> Fetcher:
    s = config.settings
    return Fetcher(
        user_agent=s.user_agent,
        timeout=s.timeout,
        max_bytes=s.max_bytes,
        per_host=s.per_host,
        allow_private=s.allow_private,
        pool_size=s.concurrency,
    )


def prepare(site: Site, fetcher: Fetcher, state: dict, budget: float, inline: bool = True) -> Prepared:
    """Fetch one page and, when `inline`, parse it (runs in a fetch thread; no database access).

    Without `inline` a new body is left for a parse worker (`needs_parse`).
    """
    start = time.monotonic()
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
        return prep
    if not inline:
        prep.needs_parse = True
        return prep
    _apply(prep, parse_page(result.body, result.content_type, site, budget))
    prep.seconds = time.monotonic() - start
    return prep


def _due_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_cycle(
    config: Config,
    store: Store,
    sites: Iterable[Site] | None = None,
    *,
    fetcher: Fetcher | None = None,
    on_result: Callable[[SiteResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[SiteResult]:
    """Check the given sites (all by default) once; never raises for a site's failure."""
    sites = list(sites if sites is not None else config.sites)
    own_fetcher = fetcher is None
    fetcher = fetcher or make_fetcher(config)
    results: list[SiteResult] = []
    now = now_iso()
    with store.transaction():
        for site in sites:
            # the database keeps the URL without its credentials (user:password@, ?token=)
            store.upsert_site(site.name, redact(site.url), site.settings_hash(), now)
    states = {site.name: store.state(site.name) for site in sites}
    order = {site.name: i for i, site in enumerate(sites)}
    budget = config.settings.normalize_budget
    threads = max(1, config.settings.concurrency)
    parsers = _Parsers(parse_workers(len(sites)))
    writes: list[Future[None]] = []

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
            finished: SimpleQueue[Future] = SimpleQueue()  # O(1) per page, unlike wait() on all in flight

            def fill() -> None:
                while len(fetching) + len(parsing) < window:
                    site = next(queue, None)
                    if site is None:
                        return
                    inline = parsers.workers == 0
                    fut = pool.submit(prepare, site, fetcher, states[site.name], budget, inline)
                    fetching[fut] = site
                    fut.add_done_callback(finished.put)

            fill()
            unannounced: list[SiteResult] = []
            batch_until = time.monotonic() + BATCH_SECONDS
            while fetching or parsing:
                if stop and stop():
                    for fut in [*fetching, *parsing]:
                        fut.cancel()
                    break
                prep = _collect(finished.get(), fetching, parsing, parsers)
                if prep is None:
                    continue
                if prep.needs_parse:
                    # the worker also classifies the change, against the version stored now
                    last = store.latest_version(prep.site.name)
                    prev = (last["text_hash"], last["markdown"], last["lang"] or "") if last else None
                    parsed = parsers.submit(prep, budget, prev, config.settings.hold_drop_ratio)
                    parsing[parsed] = prep
                    parsed.add_done_callback(finished.put)
                    continue
                store.begin()  # joined by record()'s own transaction, committed below
                res = record(config, store, prep, states[prep.site.name])
                results.append(res)
                unannounced.append(res)
                if (
                    res.outcome in ("new", "changed", "held")
                    or len(unannounced) >= BATCH
                    or time.monotonic() > batch_until
                ):
                    # a new version is acknowledged (committed) at once; routine results go in batches
                    store.commit()
                    batch_until = time.monotonic() + BATCH_SECONDS
                    for done in unannounced:
                        if done.outcome in ("new", "changed"):
                            _snapshots(store, done.site, io.submit, writes)
                        if on_result:
                            on_result(done)
                    unannounced.clear()
                fill()
            store.commit()
            for done in unannounced:
                if on_result:
                    on_result(done)
            unannounced.clear()
            for w in writes:
                try:
                    w.result()
                except OSError as exc:
                    log.error("cannot write snapshot files under %s: %s", store.snapshots, exc.strerror)
    finally:
        parsers.close()
        if own_fetcher:
            fetcher.close()
        if store.db.conn.in_transaction:  # an exception left a batch open: keep what was recorded
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
) -> Prepared | None:
    """The Prepared a finished fetch or parse future stands for (None if the fetch thread crashed)."""
    if fut in fetching:
        site = fetching.pop(fut)
        try:
            return fut.result()
        except Exception:  # defensive: prepare() handles its own errors
            log.exception("fetch worker crashed on site %s", site.name)
            return None
    prep = parsing.pop(fut)
    try:
        return _apply(prep, fut.result())
    except BrokenProcessPool:
        # a worker died (out of memory, a crash in the parser): this page fails, the rest go on
        log.error("site %s: the parse worker process died", prep.site.name)
        parsers.reset()
        prep.error, prep.error_kind = "normalization failed: the parse worker process died", "normalize"
        prep.needs_parse = False
        return prep
    except Exception as exc:
        prep.error, prep.error_kind = f"normalization failed: {type(exc).__name__}: {exc}", "normalize"
        prep.needs_parse = False
        return prep


def _write_all(todo: list[tuple]) -> None:
    for fn, *args in todo:
        fn(*args)


def _snapshots(store: Store, site: str, submit: Callable | None = None, writes: list | None = None) -> None:
    """Bring a site's snapshot files up to date; with `submit`, the file writes (fsyncs) go to a thread.

    A site's files are written in order (its version file, then latest.md), as without threads.
    """
    try:
        if submit is None or writes is None:
            store.ensure_snapshots(site)
        else:
            todo: list[tuple] = []
            store.ensure_snapshots(site, write=lambda *a: todo.append(a))
            if todo:
                writes.append(submit(_write_all, todo))
    except OSError as exc:
        log.error("site %s: cannot write snapshot files under %s: %s", site, store.snapshots, exc.strerror)


def record(config: Config, store: Store, prep: Prepared, state: dict) -> SiteResult:
    """Write one site's check in one transaction and return what happened."""
    site, fetch = prep.site, prep.fetch
    at = fetch.fetched_at or now_iso()
    base = {
        "at": at,
        "status": fetch.status,
        "duration_ms": fetch.duration_ms,
        "bytes": len(fetch.body),
    }
    interval = config.interval(site)
    with store.transaction():
        error = fetch.error or prep.error
        if error:
            kind = fetch.error_kind or prep.error_kind
            return _record_failure(config, store, site, state, base, error, kind, fetch)
        prev = store.latest_version(site.name, markdown=False)  # the text is read only if it changed
        succeeded = {
            "consecutive_failures": 0,
            "last_check": at,
            "last_success": at,
            "last_error": None,
            "next_due": _due_in(interval),
            "retry_not_before": None,
        }
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
            store.record_fetch(site.name, **base, outcome="unchanged", version_id=prev["id"])
            _recovered(config, store, site, state, at)
            # the server still serves the stored version: a held shorter candidate is not confirmed
            store.update_state(site.name, **succeeded, held=None, last_outcome="unchanged")
            reason = "304 Not Modified" if fetch.not_modified else "same bytes as last time"
            return SiteResult(site.name, "unchanged", reason, fetch.status, fetch.duration_ms, prev["seq"])
        assert prep.markdown
        digest = store.put_body(fetch.body, fetch.content_type, digest=prep.digest, packed=prep.packed)
        validators = {
            "etag": fetch.headers.get("etag"),
            "last_modified": fetch.headers.get("last-modified"),
            "last_body_hash": digest,
        }
        new_hash = prep.text_hash or text_hash(prep.markdown)
        if prev is not None and prev["text_hash"] == new_hash:
            store.record_fetch(site.name, **base, outcome="unchanged", body_hash=digest, version_id=prev["id"])
            _recovered(config, store, site, state, at)
            store.update_state(site.name, **succeeded, **validators, held=None, last_outcome="unchanged")
            reason = "same policy text" + ("; the held shorter version was not confirmed" if state.get("held") else "")
            return SiteResult(site.name, "unchanged", reason, fetch.status, fetch.duration_ms, prev["seq"])
        if prev is None:
            v = _add_version(store, site, prep, digest, at)
            store.record_fetch(site.name, **base, outcome="new", body_hash=digest, version_id=v["id"])
            _recovered(config, store, site, state, at)
            store.update_state(site.name, **succeeded, **validators, held=None, last_outcome="new")
            return SiteResult(site.name, "new", "first version", fetch.status, fetch.duration_ms, v["seq"])

        if prep.change is not None and prep.prev_hash == prev["text_hash"]:
            drop, change = prep.drop, prep.change  # computed by the parse worker
        else:  # parsed in this process, or another writer stored a version meanwhile
            prev_markdown, prev_lang = store.version_markdown(prev["id"])
            drop, change = compare(prev_markdown, prev_lang, prep.markdown, prep.lang, config.settings.hold_drop_ratio)
        if drop.kind == "hold":
            held = json.loads(state["held"]) if state.get("held") else None
            if not held or held.get("text_hash") != new_hash:
                store.record_fetch(
                    site.name, **base, outcome="held", body_hash=digest, error=drop.reason, error_kind=drop.error_kind
                )
                store.update_state(
                    site.name,
                    held=json.dumps({"text_hash": new_hash, "at": at, "reason": drop.reason}),
                    last_check=at,
                    last_outcome="held",
                    next_due=_due_in(min(config.settings.confirm_after, interval)),
                )
                return SiteResult(
                    site.name, "held", drop.reason, fetch.status, fetch.duration_ms, error_kind=drop.error_kind
                )
        v = _add_version(store, site, prep, digest, at)
        cid = store.add_change(site.name, prev["id"], v["id"], change, at)
        store.record_fetch(site.name, **base, outcome="changed", body_hash=digest, version_id=v["id"], change_id=cid)
        if change.material:
            from . import notify

            for sub in notify.route(config, site.name, change):
                store.queue(kind="change", subscriber=sub.name, site=site.name, change_id=cid, at=at)
        _recovered(config, store, site, state, at)
        store.update_state(site.name, **succeeded, **validators, held=None, last_outcome="changed", last_change_at=at)
        reason = (
            change.summary if change.material else "not material: " + ", ".join(change.noise or ["wording unchanged"])
        )
        return SiteResult(
            site.name,
            "changed",
            reason,
            fetch.status,
            fetch.duration_ms,
            v["seq"],
            cid,
            change.material,
            change.severity,
            change.topics,
            change.summary,
        )


def _add_version(store: Store, site: Site, prep: Prepared, digest: str, at: str) -> dict:
    return store.add_version(
        site.name,
        markdown=prep.markdown,
        title=prep.title,
        lang=prep.lang,
        effective_date=prep.effective,
        body_hash=digest,
        at=at,
    )


def _record_failure(
    config: Config, store: Store, site: Site, state: dict, base: dict, error: str, kind: str | None, fetch: FetchResult
) -> SiteResult:
    failures = int(state.get("consecutive_failures") or 0) + 1
    store.record_fetch(site.name, **base, outcome="error", error=error, error_kind=kind)
    retry = None
    if fetch.retry_after:
        retry = _due_in(min(fetch.retry_after, 7 * 86_400))
    fields = {
        "consecutive_failures": failures,
        "last_check": base["at"],
        "last_error": error,
        "last_outcome": "error",
        "retry_not_before": retry,
        "next_due": retry or _due_in(min(config.interval(site), 3600 * 2 ** min(failures - 1, 4))),
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
