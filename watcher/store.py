"""SQLite (through sqlite-utils) and the Markdown snapshot folder.

The database is the source of truth; `snapshots/` is a readable copy that is rebuilt from
it when a file is missing, never the other way round. Every check of a site is written in
one `transaction()` (fetch row, version, change, outbox rows, site state), so a crash keeps
all of it or none of it. A cycle may open a batch with `begin()` that several sites'
transactions join (as savepoints) until `commit()`: routine results are committed together,
and a crash loses at most that open batch, never a committed version. WAL mode and a busy
timeout let a `watcher check` work beside a running daemon. SQLite errors come out as
one-line `StoreError`s (full disk, busy, damaged file).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StoreError
from .models import Change

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = 2
# Schemas `open_readonly` can read: v2 only added versions.settings_hash, which no reader needs.
READABLE_SCHEMAS = (1, 2)
BUSY_TIMEOUT_MS = 30_000


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def pack_body(body: bytes) -> bytes:
    """How raw bodies are stored: zlib level 3 (a parse worker may do it off the writer thread).

    Measured on 17.7 KB policy pages: level 3 takes 0.27 ms and 6.4 KB, level 6 0.50 ms and 5.9 KB.
    """
    return zlib.compress(body, 3)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _storage_error(path: Path, exc: BaseException) -> StoreError:
    msg = str(exc).lower()
    if "disk is full" in msg or "no space" in msg or getattr(exc, "errno", None) == 28:
        return StoreError(f"{path}: the disk is full; free some space and run again (nothing acknowledged was lost)")
    if "disk i/o error" in msg:
        return StoreError(
            f"{path}: cannot write the database (disk I/O error: is the disk full, over a file-size limit"
            " or failing?); fix that and run again (nothing acknowledged was lost)"
        )
    if "locked" in msg or "busy" in msg:
        return StoreError(f"{path}: the database is busy (another watcher is writing); try again")
    if "malformed" in msg or "not a database" in msg:
        return StoreError(f"{path}: the database file is damaged ({exc}); restore it from a backup")
    if "readonly" in msg or "read-only" in msg:
        return StoreError(f"{path}: the database is read-only; check the file's permissions")
    return StoreError(f"{path}: {exc}")


class Store:
    """All reads and writes of watcher's state."""

    def __init__(self, path: str | os.PathLike[str], snapshots: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self.snapshots = Path(snapshots) if snapshots is not None else None
        conn: sqlite3.Connection | None = None
        self._depth = 0  # savepoints open inside a batch
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.conn = conn
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = wal")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.migrate()
        except BaseException as exc:
            if conn is not None:  # a failed open (newer schema, damaged file) must not leak the handle
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _storage_error(self.path, exc) from None
            if isinstance(exc, OSError):
                raise StoreError(f"{self.path}: cannot open the database: {exc.strerror}") from None
            raise

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str]) -> Store:
        """A read-only view (SQLite URI mode=ro) for report and serve: viewing can never write or migrate."""
        self = cls.__new__(cls)
        self.path, self.snapshots, self._depth = Path(path), None, 0
        if not self.path.is_file():
            raise StoreError(
                f"{self.path}: no database yet (run `watcher check` first, or fix 'database' in sites.toml)"
            )
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.conn = conn
            current = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from None
        if current not in READABLE_SCHEMAS:
            conn.close()
            raise StoreError(
                f"{self.path}: schema {current}, this watcher reads schema {SCHEMA_VERSION}; "
                "run `watcher check` with this watcher to upgrade it"
            )
        return self

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, for schema work and ad-hoc queries; imported on
        first use, since a check cycle runs on plain SQL and the import costs ~35 ms (issue 10)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        self.conn.close()

    # --- schema -----------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the schema; the version lives in PRAGMA user_version."""
        current = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer watcher (schema {current} > {SCHEMA_VERSION}); upgrade watcher"
            )
        if current == SCHEMA_VERSION:
            return
        with self.transaction():
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version](self.db)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work; takes the write lock at once (BEGIN IMMEDIATE)."""
        conn = self.conn
        if conn.in_transaction:  # inside a batch (`begin()`): a savepoint
            self._depth += 1
            name = f"watcher_{self._depth}"  # plain SQL: sqlite-utils' atomic() costs more than the check it wraps
            try:
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield
                except BaseException:
                    if conn.in_transaction:
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                    raise
                conn.execute(f"RELEASE {name}")
            except sqlite3.Error as exc:  # a full disk mid-batch is a user-facing error here too
                raise _storage_error(self.path, exc) from None
            finally:
                self._depth -= 1
            return
        self.begin()
        try:
            yield
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite has rolled back by itself (e.g. after SQLITE_FULL)
            if isinstance(exc, sqlite3.Error):  # a full disk mid-transaction is a user-facing error
                raise _storage_error(self.path, exc) from None
            raise
        self.commit()

    # --- sites and state ----------------------------------------------------------------

    def upsert_site(self, name: str, url: str, settings_hash: str, now: str) -> None:
        self.register_sites([(name, url, settings_hash)], now)

    def register_sites(self, sites: list[tuple[str, str, str]], now: str) -> set[str]:
        """`upsert_site` for many (name, url, settings hash), reading what is stored a chunk of
        500 at a time: a cycle used to ask two questions per site before its first fetch (issue 10).

        Returns the sites whose newest version was extracted under other settings (a changed
        selector or remove list; see `version_settings_hash`)."""
        conn = self.conn
        other: set[str] = set()
        for chunk in range(0, len(sites), 500):
            part = sites[chunk : chunk + 500]
            names = [name for name, _, _ in part]
            marks = ",".join("?" for _ in names)
            stored = {
                row[0]: (row[1], row[2])
                for row in conn.execute(f"select name, url, settings_hash from sites where name in ({marks})", names)
            }
            # the bare column comes from the row holding max(seq), read from the covering index
            extracted = {
                row[0]: row[1]
                for row in conn.execute(
                    f"select site, settings_hash, max(seq) from versions where site in ({marks}) group by site", names
                )
            }
            for name, url, settings_hash in part:
                now_stored = stored.get(name)
                if now_stored is None:
                    conn.execute(
                        "insert into sites (name, url, settings_hash, added_at) values (?, ?, ?, ?)",
                        [name, url, settings_hash, now],
                    )
                elif now_stored != (url, settings_hash):
                    conn.execute(
                        "update sites set url = ?, settings_hash = ? where name = ?", [url, settings_hash, name]
                    )
                used = extracted.get(name)
                if used is not None and used != settings_hash:
                    other.add(name)
        return other

    def site_row(self, name: str) -> dict[str, Any] | None:
        return _one(self.conn.execute("select * from sites where name = ?", [name]))

    def site_names(self) -> list[str]:
        return [r["name"] for r in self.db.query("select name from sites order by name")]

    def state(self, site: str) -> dict[str, Any]:
        row = _one(self.conn.execute("select * from site_state where site = ?", [site]))
        if row:
            return row
        return {"site": site, "consecutive_failures": 0, "held": None, "failure_alerted": 0}

    def check_states(self, sites: list[str]) -> dict[str, dict[str, Any]]:
        """What a check reads of each site's state before fetching (validators, a held candidate,
        Retry-After), for many sites in a few queries; only the columns set, so thousands of
        sites cost little memory (a whole row per site was most of a warm cycle's, issue 10)."""
        cols = ("etag", "last_modified", "last_body_hash", "held", "retry_not_before")
        out: dict[str, dict[str, Any]] = {name: {} for name in sites}
        for chunk in range(0, len(sites), 500):
            part = sites[chunk : chunk + 500]
            marks = ",".join("?" for _ in part)
            sql = f"select site, {', '.join(cols)} from site_state where site in ({marks})"
            for row in self.conn.execute(sql, part):
                out[row[0]] = {k: v for k, v in zip(cols, row[1:], strict=True) if v is not None}
        return out

    def update_state(self, site: str, **fields: Any) -> None:
        if not fields:
            self.conn.execute("insert or ignore into site_state (site) values (?)", [site])
            return
        cols = ", ".join(f'"{k}"' for k in fields)
        marks = ", ".join("?" for _ in fields)
        sets = ", ".join(f'"{k}" = excluded."{k}"' for k in fields)
        self.conn.execute(
            f"insert into site_state (site, {cols}) values (?, {marks}) on conflict(site) do update set {sets}",
            [site, *map(_sql_value, fields.values())],
        )

    def states(self) -> list[dict[str, Any]]:
        return list(self.db["site_state"].rows)

    # --- bodies, fetches, versions ------------------------------------------------------

    def put_body(self, body: bytes, content_type: str = "", *, digest: str = "", packed: bytes | None = None) -> str:
        """Store a raw body once per content; `digest`/`packed` (`pack_body`) may come precomputed from a worker."""
        digest = digest or body_hash(body)
        conn = self.conn
        if not conn.execute("select 1 from bodies where hash = ?", [digest]).fetchone():
            data = packed if packed is not None else pack_body(body)
            conn.execute(
                "insert into bodies (hash, size, content_type, data) values (?, ?, ?, ?)",
                [digest, len(body), content_type, data],
            )
        return digest

    def body(self, digest: str) -> bytes | None:
        row = self.conn.execute("select data from bodies where hash = ?", [digest]).fetchone()
        return zlib.decompress(row[0]) if row else None

    def record_fetch(self, site: str, **fields: Any) -> int:
        return _insert(self.conn, "fetches", {"site": site, **fields})

    def latest_version(self, site: str, markdown: bool = True) -> dict[str, Any] | None:
        """The newest version; `markdown=False` gives only id, site, seq and text_hash, which is all
        an unchanged check needs, without reading the text's ~20 KB of overflow pages."""
        cols = "*" if markdown else _HEAD_COLUMNS
        return _one(self.conn.execute(f"select {cols} from versions where site = ? order by seq desc limit 1", [site]))

    def version_markdown(self, vid: int) -> tuple[str, str]:
        """(markdown, lang) of a version."""
        row = self.conn.execute("select markdown, lang from versions where id = ?", [vid]).fetchone()
        return (row[0], row[1] or "") if row else ("", "")

    def version_settings_hash(self, site: str) -> str | None:
        """The `Site.settings_hash()` the newest version was extracted with (None: no version, or
        one stored before schema 2, taken as matching). Answered from a covering index (migration
        2): the column comes after the Markdown, whose overflow pages a row read would walk."""
        row = self.conn.execute(
            "select settings_hash from versions where site = ? order by seq desc limit 1",
            [site],
        ).fetchone()
        return row[0] if row else None

    def version(self, site: str, seq: int) -> dict[str, Any] | None:
        return _one(self.conn.execute("select * from versions where site = ? and seq = ?", [site, seq]))

    def version_by_id(self, vid: int) -> dict[str, Any] | None:
        return _one(self.conn.execute("select * from versions where id = ?", [vid]))

    def versions(self, site: str, text: bool = True) -> list[dict[str, Any]]:
        """A site's versions, oldest first; `text=False` leaves out the Markdown (cheap)."""
        cols = (
            "*" if text else "id, site, seq, text_hash, title, lang, effective_date, body_hash, first_seen, last_seen"
        )
        rows = list(self.db.query(f"select {cols} from versions where site = ? order by seq", [site]))
        if rows:
            # the latest version was last seen at the site's last successful check (not written
            # to the version row on every check: that would rewrite its ~20 KB of text each time)
            seen = self.conn.execute("select last_success from site_state where site = ?", [site]).fetchone()
            if seen and seen[0] and seen[0] > (rows[-1]["last_seen"] or ""):
                rows[-1]["last_seen"] = seen[0]
        return rows

    def add_version(
        self,
        site: str,
        *,
        markdown: str,
        title: str,
        lang: str,
        effective_date: str | None,
        body_hash: str | None,
        at: str,
        settings_hash: str | None = None,
    ) -> dict[str, Any]:
        """A new newest version; `settings_hash` is the site's `settings_hash()` it was extracted
        with (None when unknown, e.g. imported history)."""
        prev = self.latest_version(site, markdown=False)
        seq = (prev["seq"] + 1) if prev else 1
        if prev:
            # the previous version's last sighting was the last successful check before this one
            self.conn.execute(
                "update versions set last_seen = coalesce((select last_success from site_state where site = ?), last_seen)"
                " where id = ? and last_seen < coalesce((select last_success from site_state where site = ?), '')",
                [site, prev["id"], site],
            )
        row = {
            "site": site,
            "seq": seq,
            "text_hash": text_hash(markdown),
            "markdown": markdown,
            "title": title,
            "lang": lang,
            "effective_date": effective_date,
            "body_hash": body_hash,
            "first_seen": at,
            "last_seen": at,
            "settings_hash": settings_hash,
        }
        row["id"] = _insert(self.conn, "versions", row)
        return row

    def begin(self) -> None:
        """Open a transaction that several `transaction()` blocks join (as savepoints) until
        `commit()`: routine check results are written in batches, not one commit each."""
        if not self.conn.in_transaction:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _storage_error(self.path, exc) from None

    def commit(self) -> None:
        conn = self.conn
        if conn.in_transaction:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _storage_error(self.path, exc) from None

    def set_version_settings(self, vid: int, settings_hash: str) -> None:
        """Record that a version's text is also what the current settings extract (rewrites the row once)."""
        self.conn.execute("update versions set settings_hash = ? where id = ?", [settings_hash, vid])

    def touch_version(self, vid: int, at: str) -> None:
        self.conn.execute("update versions set last_seen = ? where id = ?", [at, vid])

    # --- changes --------------------------------------------------------------------------

    def add_change(self, site: str, from_version: int | None, to_version: int, change: Change, at: str) -> int:
        row = {
            "site": site,
            "from_version": from_version,
            "to_version": to_version,
            "at": at,
            "changed": int(change.changed),
            "material": int(change.material),
            "severity": change.severity,
            "topics": _json(change.topics),
            "facts": _json([asdict(f) for f in change.facts]),
            "summary": change.summary,
            "sections": _json([_section_json(s) for s in change.sections]),
            "effective_before": change.effective_date.get("before"),
            "effective_after": change.effective_date.get("after"),
            "noise": _json(change.noise),
        }
        return _insert(self.conn, "changes", row)

    def changes(
        self, site: str | None = None, since: str | None = None, material_only: bool = False
    ) -> list[dict[str, Any]]:
        where, args = [], []
        if site:
            where.append("site = ?")
            args.append(site)
        if since:
            where.append("at >= ?")
            args.append(since)
        if material_only:
            where.append("material = 1")
        sql = "select * from changes" + (" where " + " and ".join(where) if where else "") + " order by at, id"
        return [decode_change(r) for r in self.db.query(sql, args)]

    def change(self, cid: int) -> dict[str, Any] | None:
        row = _one(self.conn.execute("select * from changes where id = ?", [cid]))
        return decode_change(row) if row else None

    def last_change(self, site: str, material_only: bool = True) -> dict[str, Any] | None:
        sql = (
            "select * from changes where site = ?"
            + (" and material = 1" if material_only else "")
            + " order by id desc limit 1"
        )
        row = _one(self.conn.execute(sql, [site]))
        return decode_change(row) if row else None

    def fetches(self, site: str, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.db.query("select * from fetches where site = ? order by id desc limit ?", [site, limit]))

    # --- outbox ---------------------------------------------------------------------------

    def queue(
        self, *, kind: str, subscriber: str, site: str, change_id: int | None, at: str, payload: dict | None = None
    ) -> int:
        row = {
            "kind": kind,
            "subscriber": subscriber,
            "site": site,
            "change_id": change_id,
            "state": "pending",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": at,
            "created_at": at,
            "sent_at": None,
            "payload": _json(payload or {}),
        }
        return _insert(self.conn, "outbox", row)

    def outbox(self, states: tuple[str, ...] = ("pending", "failed")) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in states)
        return list(self.db.query(f"select * from outbox where state in ({marks}) order by id", list(states)))

    def outbox_rows(self, ids: list[int]) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in ids) or "NULL"
        return list(self.db.query(f"select * from outbox where id in ({marks}) order by id", list(ids)))

    def claim_outbox(self, row_id: int, seen_next: str, until: str) -> bool:
        """Lease a pending row until `until`, only if nobody touched it since we read it (compare and set)."""
        cur = self.conn.execute(
            "update outbox set next_attempt_at = ? where id = ? and state = 'pending' and next_attempt_at = ?",
            [until, row_id, seen_next],
        )
        return cur.rowcount == 1

    def update_outbox(self, row_id: int, **fields: Any) -> None:
        if "payload" in fields and not isinstance(fields["payload"], str):
            fields["payload"] = _json(fields["payload"])
        self.db["outbox"].update(row_id, fields)

    # --- snapshots ------------------------------------------------------------------------

    def snapshot_dir(self, site: str) -> Path | None:
        return self.snapshots / site if self.snapshots else None

    def ensure_snapshots(self, site: str, write: Callable[..., Any] | None = None) -> int:
        """Rewrite missing or stale snapshot files from the database; returns how many.

        `write(fn, *args)` may run the file operations elsewhere, in their order, e.g. in a thread
        while the cycle goes on: `atomic_write` of each file (a version file fsyncs; latest.md
        gets durable=False), then the folder's stamp. The database is read here, on the caller's thread.
        """
        return self.ensure_all_snapshots([site], write)

    def first_snapshot(self, site: str, first_seen: str, markdown: str, write: Callable[..., Any]) -> bool:
        """The files of a site's first version, from its text just stored (`ensure_snapshots`
        reads it back: four queries per site, a fifth of a cold cycle's database work, issue 10).

        Only into a folder made here: an existing one (a database deleted, its snapshots kept)
        gets the full check, so False. `write` as for `ensure_snapshots`.
        """
        if self.snapshots is None:
            return True  # nothing to write
        folder = self.snapshots / site
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            return False
        write(atomic_write, folder / snapshot_name(first_seen), markdown)
        write(atomic_write, folder / "latest.md", markdown, False)  # not fsynced, as in the full check
        write(_stamp, folder, _stamp_ns(first_seen, 1))
        return True

    def ensure_all_snapshots(self, sites: list[str], write: Callable[..., Any] | None = None) -> int:
        """`ensure_snapshots` for many sites, a chunk of 500 at a time (memory stays flat).

        This runs for every site after every cycle, so a site whose files were already checked
        costs two stat calls: once its files match the database, its folder and latest.md get
        the newest version's first-seen time as mtime (`_stamp_ns`). Adding, removing or
        renaming a file sets the folder's mtime to now, editing latest.md sets its own, so a
        stamp that still matches means nothing was touched; anything else gets the full check.
        The stamp goes through `write` too, after the site's files: set only once they are written.
        """
        if self.snapshots is None or not sites:
            return 0
        put = write or (lambda fn, *args: fn(*args))
        fixed = 0
        cutoff = time.time() - 600.0
        for chunk in range(0, len(sites), 500):
            part = sites[chunk : chunk + 500]
            fixed += self._ensure_snapshot_files(part, put, cutoff)
        return fixed

    def _ensure_snapshot_files(self, sites: list[str], put: Callable[..., Any], cutoff: float) -> int:
        conn = self.conn
        assert self.snapshots is not None  # checked by the caller
        marks = ",".join("?" for _ in sites)
        # SQLite fills the bare columns from the row holding max(seq)
        newest = {
            row[0]: _stamp_ns(row[2], row[1])
            for row in conn.execute(
                f"select site, max(seq), first_seen from versions where site in ({marks}) group by site", sites
            )
        }
        suspect = [site for site in sites if site in newest and not _stamped(self.snapshots / site, newest[site])]
        if not suspect:
            return 0
        by_site: dict[str, list[tuple]] = {}
        marks = ",".join("?" for _ in suspect)
        for row in conn.execute(
            f"select site, id, seq, first_seen, text_hash from versions where site in ({marks}) order by site, seq",
            suspect,
        ):
            by_site.setdefault(row[0], []).append(row[1:])
        fixed = 0
        for site in suspect:
            versions = by_site[site]
            folder = self.snapshots / site
            present: dict[str, os.DirEntry] = {}
            try:
                with os.scandir(folder) as entries:
                    present = {e.name: e for e in entries}
            except FileNotFoundError:
                pass
            except OSError:
                continue
            leftovers = False
            for name, entry in present.items():
                if name.startswith(".tmp-"):  # left by a write killed before its rename
                    leftovers = True
                    try:
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)
                    except OSError:
                        pass
            used: set[str] = set()
            missing: list[tuple[int, str]] = []
            for vid, seq, first_seen, _digest in versions:
                name = snapshot_name(first_seen)
                if name in used:  # two versions first seen in one second: the later one must not hide the first
                    name = name.removesuffix(".md") + f"-v{seq}.md"
                used.add(name)
                if name not in present:
                    missing.append((vid, name))
            last_id, last_digest = versions[-1][0], versions[-1][3]
            stale = True
            if "latest.md" in present:
                try:
                    stale = hashlib.sha256((folder / "latest.md").read_bytes()).hexdigest() != last_digest
                except OSError:
                    stale = True
            if missing or stale:
                folder.mkdir(parents=True, exist_ok=True)
            for vid, name in missing:
                row = conn.execute("select markdown from versions where id = ?", [vid]).fetchone()
                put(atomic_write, folder / name, row[0])
                fixed += 1
            if stale:
                row = conn.execute("select markdown from versions where id = ?", [last_id]).fetchone()
                # no fsync: a power cut can only leave a stale or empty latest.md, which the hash
                # check above repairs on the next cycle (half the fsyncs of a cold cycle, issue 10)
                put(atomic_write, folder / "latest.md", row[0], False)
                fixed += 1
            if not leftovers:  # a young temp file waits for the next full check
                put(_stamp, folder, newest[site])
        return fixed


def _stamp_ns(first_seen: str, seq: int) -> int:
    """The mtime (ns) of a checked snapshot folder and its latest.md: the newest version's
    first-seen second, plus its sequence number in nanoseconds (two versions can share a second)."""
    when = datetime.fromisoformat(first_seen.replace("Z", "+00:00"))
    return int(when.timestamp()) * 1_000_000_000 + seq % 1_000_000_000


def _stamp(folder: Path, ns: int) -> None:
    """Best effort: a folder that cannot be stamped (files owned by another user, a file system
    without settable times) only gets the full check again next cycle."""
    try:
        os.utime(folder / "latest.md", ns=(ns, ns))
        os.utime(folder, ns=(ns, ns))  # last: writing latest.md touched the folder
    except OSError:
        pass


def _stamped(folder: Path, ns: int) -> bool:
    try:
        return os.stat(folder).st_mtime_ns == ns and os.stat(folder / "latest.md").st_mtime_ns == ns
    except OSError:
        return False


# Only columns stored before `markdown`: reading any column after it walks its overflow pages.
_HEAD_COLUMNS = "id, site, seq, text_hash"


def _sql_value(value: Any) -> Any:
    """What sqlite-utils would store: containers as JSON, the rest as is."""
    return _json(value) if isinstance(value, dict | list | tuple) else value


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    cols = ", ".join(f'"{k}"' for k in row)
    marks = ", ".join("?" for _ in row)
    cur = conn.execute(f'insert into "{table}" ({cols}) values ({marks})', [_sql_value(v) for v in row.values()])
    return int(cur.lastrowid or 0)


def _one(cur: sqlite3.Cursor) -> dict[str, Any] | None:
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def snapshot_name(at: str) -> str:
    """2026-03-12T02:12:00.123Z -> 2026-03-12T02-12-00Z.md (sortable, portable)."""
    stamp = at.split(".")[0].rstrip("Z").replace(":", "-")
    return f"{stamp}Z.md"


def atomic_write(path: Path, text: str, durable: bool = True) -> None:
    """Temp file + rename: never a partial file. `durable=False` skips the fsync, for a file
    that is checked against the database and rewritten on every cycle anyway (latest.md).

    Plain os calls, no tempfile/TextIOWrapper: a cold cycle writes two files per site, and
    mkstemp's machinery was a third of their cost (issue 10). The temp name is unique per
    process and thread; a leftover from a killed writer is removed by the snapshot check.
    Files get the usual 0o666 & ~umask, like any file the user's tools write.
    """
    tmp = f"{path.parent}{os.sep}.tmp-{path.name}-{os.getpid()}-{threading.get_ident()}"
    data = text.encode("utf-8")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _section_json(s: Any) -> dict[str, Any]:
    """The same JSON as `watcher diff --json` (rows stored before it used "words" for "diff"; both read back)."""
    from .render import section_json

    return section_json(s)


def decode_change(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("topics", "facts", "sections", "noise"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    out["material"] = bool(out.get("material"))
    out["changed"] = bool(out.get("changed"))
    return out


def _m1(db: sqlite_utils.Database) -> None:
    db["sites"].create({"name": str, "url": str, "settings_hash": str, "added_at": str}, pk="name")
    db["bodies"].create({"hash": str, "size": int, "content_type": str, "data": bytes}, pk="hash")
    db["versions"].create(
        {
            "id": int,
            "site": str,
            "seq": int,
            "text_hash": str,
            "markdown": str,
            "title": str,
            "lang": str,
            "effective_date": str,
            "body_hash": str,
            "first_seen": str,
            "last_seen": str,
        },
        pk="id",
        foreign_keys=[("site", "sites", "name")],
    )
    db["versions"].create_index(["site", "seq"], unique=True)
    db["fetches"].create(
        {
            "id": int,
            "site": str,
            "at": str,
            "status": int,
            "duration_ms": int,
            "bytes": int,
            "body_hash": str,
            "outcome": str,
            "error": str,
            "error_kind": str,
            "version_id": int,
            "change_id": int,
        },
        pk="id",
    )
    db["fetches"].create_index(["site", "id"])
    db["changes"].create(
        {
            "id": int,
            "site": str,
            "from_version": int,
            "to_version": int,
            "at": str,
            "changed": int,
            "material": int,
            "severity": str,
            "topics": str,
            "facts": str,
            "summary": str,
            "sections": str,
            "effective_before": str,
            "effective_after": str,
            "noise": str,
        },
        pk="id",
        foreign_keys=[("to_version", "versions", "id")],
    )
    db["changes"].create_index(["site", "id"])
    db["outbox"].create(
        {
            "id": int,
            "kind": str,
            "subscriber": str,
            "site": str,
            "change_id": int,
            "state": str,
            "attempts": int,
            "last_error": str,
            "next_attempt_at": str,
            "created_at": str,
            "sent_at": str,
            "payload": str,
        },
        pk="id",
    )
    db["outbox"].create_index(["state", "next_attempt_at"])
    db["outbox"].create_index(["change_id", "subscriber", "kind"], unique=True)
    db["site_state"].create(
        {
            "site": str,
            "consecutive_failures": int,
            "last_check": str,
            "last_success": str,
            "last_outcome": str,
            "last_error": str,
            "last_change_at": str,
            "next_due": str,
            "etag": str,
            "last_modified": str,
            "last_body_hash": str,
            "held": str,
            "retry_not_before": str,
            "failure_alerted": int,
        },
        pk="site",
    )
    db["meta"].create({"key": str, "value": str}, pk="key")


def _m2(db: sqlite_utils.Database) -> None:
    """versions.settings_hash: the site's selector/remove a version was extracted with, so a new
    selector starts a new baseline instead of a false change. Old rows stay NULL (unknown,
    taken as matching). The index answers "the newest version's settings" without the row."""
    db.execute("alter table versions add column settings_hash text")
    db.execute("create index idx_versions_site_seq_settings on versions (site, seq, settings_hash)")


_MIGRATIONS = {1: _m1, 2: _m2}
