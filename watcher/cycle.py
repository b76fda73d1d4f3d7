"""One check of many sites: fetch -> guard -> normalize -> diff -> classify -> store -> queue.

Pages are fetched and normalized by a pool of workers; the store is written by the calling
thread only, one transaction per site, so the database has a single writer and a crash
loses at most the site being written. A site that fails is recorded on its state and the
cycle goes on: nothing here raises because one site went wrong.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import guard, notify
from .classify import classify
from .config import Config, Site
from .dates import effective_date
from .fetch import Fetcher, now_iso
from .models import Document, FetchResult
from .normalize import NormalizeError, normalize, to_markdown
from .store import Store, body_hash, text_hash

log = logging.getLogger("watcher.cycle")


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
    doc: Document | None = None
    markdown: str = ""
    error: str | None = None
    error_kind: str | None = None
    seconds: float = 0.0


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


def prepare(site: Site, fetcher: Fetcher, state: dict, budget: float) -> Prepared:
    """Fetch and normalize one page (runs in a worker thread; no database access)."""
    start = time.monotonic()
    if not site.verify_tls:
        log.warning("site %s: TLS certificate verification is off (verify_tls = false)", site.name)
    result = fetcher.fetch(
        site.url,
        headers=site.headers,
        etag=state.get("etag"),
        last_modified=state.get("last_modified"),
        verify_tls=site.verify_tls,
    )
    prep = Prepared(site=site, fetch=result)
    if not result.ok or result.not_modified:
        return prep
    if state.get("last_body_hash") == body_hash(result.body) and not state.get("held"):
        prep.same_body = True  # identical bytes: nothing to parse
        return prep
    try:
        doc = normalize(result.text, selector=site.selector, remove=site.remove, lang=site.lang, budget_s=budget)
    except NormalizeError as exc:
        prep.error, prep.error_kind = str(exc), "normalize"
        return prep
    except Exception as exc:  # a parser bug must not stop the cycle
        log.exception("site %s: normalization failed", site.name)
        prep.error, prep.error_kind = f"normalization failed: {type(exc).__name__}: {exc}", "normalize"
        return prep
    verdict = guard.assess_page(doc, result.text)
    if verdict.kind == "error":
        prep.error, prep.error_kind = verdict.reason, verdict.error_kind
        return prep
    prep.doc = doc
    prep.markdown = to_markdown(doc)
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
            store.upsert_site(site.name, site.url, site.settings_hash(), now)
    states = {site.name: store.state(site.name) for site in sites}
    try:
        with ThreadPoolExecutor(max_workers=max(1, config.settings.concurrency), thread_name_prefix="fetch") as pool:
            futures: list[Future[Prepared]] = []
            for site in sites:
                st = states[site.name]
                wait = st.get("retry_not_before")
                if wait and wait > now_iso():
                    res = SiteResult(site.name, "skipped", f"the server asked to wait until {wait}")
                    results.append(res)
                    if on_result:
                        on_result(res)
                    continue
                futures.append(pool.submit(prepare, site, fetcher, st, config.settings.normalize_budget))
            for fut in futures:
                if stop and stop():
                    fut.cancel()
                    continue
                try:
                    prep = fut.result()
                except Exception:  # defensive: prepare() handles its own errors
                    log.exception("fetch worker crashed")
                    continue
                res = record(config, store, prep, states[prep.site.name])
                results.append(res)
                if on_result:
                    on_result(res)
    finally:
        if own_fetcher:
            fetcher.close()
    for site in sites:
        try:
            store.ensure_snapshots(site.name)
        except OSError as exc:
            log.error("site %s: cannot write snapshot files under %s: %s", site.name, store.snapshots, exc.strerror)
    return results


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
        prev = store.latest_version(site.name)
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
            store.touch_version(prev["id"], at)
            store.record_fetch(site.name, **base, outcome="unchanged", version_id=prev["id"])
            _recovered(config, store, site, state, at)
            store.update_state(site.name, **succeeded, last_outcome="unchanged")
            reason = "304 Not Modified" if fetch.not_modified else "same bytes as last time"
            return SiteResult(site.name, "unchanged", reason, fetch.status, fetch.duration_ms, prev["seq"])
        assert prep.doc is not None
        digest = store.put_body(fetch.body, fetch.content_type)
        validators = {
            "etag": fetch.headers.get("etag"),
            "last_modified": fetch.headers.get("last-modified"),
            "last_body_hash": digest,
        }
        new_hash = text_hash(prep.markdown)
        if prev is not None and prev["text_hash"] == new_hash:
            store.touch_version(prev["id"], at)
            store.record_fetch(site.name, **base, outcome="unchanged", body_hash=digest, version_id=prev["id"])
            _recovered(config, store, site, state, at)
            store.update_state(site.name, **succeeded, **validators, held=None, last_outcome="unchanged")
            return SiteResult(site.name, "unchanged", "same policy text", fetch.status, fetch.duration_ms, prev["seq"])
        if prev is None:
            v = _add_version(store, site, prep, digest, at)
            store.record_fetch(site.name, **base, outcome="new", body_hash=digest, version_id=v["id"])
            _recovered(config, store, site, state, at)
            store.update_state(site.name, **succeeded, **validators, held=None, last_outcome="new")
            return SiteResult(site.name, "new", "first version", fetch.status, fetch.duration_ms, v["seq"])
        prev_doc = normalize(prev["markdown"], fmt="markdown", lang=prev["lang"] or None)
        drop = guard.assess_drop(prev_doc, prep.doc, config.settings.hold_drop_ratio)
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
        change = classify(prev_doc, prep.doc)
        v = _add_version(store, site, prep, digest, at)
        cid = store.add_change(site.name, prev["id"], v["id"], change, at)
        store.record_fetch(site.name, **base, outcome="changed", body_hash=digest, version_id=v["id"], change_id=cid)
        if change.material:
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
    assert prep.doc is not None
    return store.add_version(
        site.name,
        markdown=prep.markdown,
        title=prep.doc.title,
        lang=prep.doc.lang,
        effective_date=effective_date(prep.doc),
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
