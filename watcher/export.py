"""History as data: versions and changes as JSON Lines or CSV, and versions as a Markdown tree.

One record per version and per change, in one stream, so a researcher loads a single file
in pandas or a spreadsheet and filters on `record`. JSON Lines keeps lists and objects as
JSON; CSV joins topics with ';' and carries facts and changed-section headings as JSON
text in their cells. The Markdown tree mirrors the Open Terms Archive dataset layout
(`<service>/<terms type>/<YYYY-MM-DDTHH-MM-SSZ>.md`) so tools written for it read ours.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .errors import ConfigError
from .store import Store, snapshot_name

COLUMNS = [
    "record",  # "version" or "change"
    "site",
    "id",
    "version",  # the version's number; for a change, the version it produced
    "from_version",  # changes only
    "at",  # when the version was first seen / when the change was recorded (UTC ISO 8601)
    "last_seen",  # versions only
    "effective_date",  # versions: the date the policy states
    "effective_before",
    "effective_after",
    "material",
    "severity",
    "topics",
    "facts",
    "summary",
    "sections",  # changes: headings of the changed sections
    "title",
    "lang",
    "text_hash",
]


def parse_since(value: str) -> str:
    """'2024-01-31' or any ISO 8601 time -> a UTC prefix that compares as text with stored stamps."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {value!r}: not a date; use e.g. 2024-01-31 or 2024-01-31T12:00:00Z") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _sites(store: Store, site: str | None) -> list[str]:
    """The sites to export: all, or `site` when the database has it (a usage error otherwise)."""
    names = store.site_names()
    if site is None:
        return names
    if site not in names:
        raise ConfigError(f"{store.path}: no site named {site!r} in the database (sites: {', '.join(names[:10])})")
    return [site]


def records(
    store: Store, *, site: str | None = None, since: str | None = None, with_text: bool = False
) -> Iterator[dict[str, Any]]:
    """Every version and change (oldest first, per site); each change right after the version it made.

    The site name is checked here, at the call, not when the records are first read: the caller
    can then open (and truncate) its output file knowing the export will not fail on a typo."""
    return _records(store, _sites(store, site), since, with_text)


def _records(store: Store, names: list[str], since: str | None, with_text: bool) -> Iterator[dict[str, Any]]:
    for name in names:
        versions = store.versions(name, text=with_text)  # the Markdown is read only when it is exported
        seq = {v["id"]: v["seq"] for v in versions}
        by_to = {c["to_version"]: c for c in store.changes(name)}
        for v in versions:
            if not since or v["first_seen"] >= since:
                rec = {
                    "record": "version",
                    "site": name,
                    "id": v["id"],
                    "version": v["seq"],
                    "at": v["first_seen"],
                    "last_seen": v["last_seen"],
                    "effective_date": v["effective_date"],
                    "title": v["title"],
                    "lang": v["lang"],
                    "text_hash": v["text_hash"],
                }
                if with_text:
                    rec["markdown"] = v["markdown"]
                yield rec
            c = by_to.get(v["id"])
            if c is not None and (not since or c["at"] >= since):
                yield {
                    "record": "change",
                    "site": name,
                    "id": c["id"],
                    "version": seq.get(c["to_version"]),
                    "from_version": seq.get(c["from_version"]),
                    "at": c["at"],
                    "effective_before": c["effective_before"],
                    "effective_after": c["effective_after"],
                    "material": c["material"],
                    "severity": c["severity"],
                    "topics": c["topics"],
                    "facts": c["facts"],
                    "summary": c["summary"],
                    "sections": [
                        s.get("heading") or s.get("heading_before") or ""
                        for s in c["sections"]
                        if s["status"] not in ("moved", "renumbered")
                    ],
                }


def write_jsonl(recs: Iterator[dict[str, Any]], out: TextIO) -> int:
    n = 0
    for rec in recs:
        out.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")
        n += 1
    return n


def csv_row(rec: dict[str, Any]) -> dict[str, str]:
    """Flatten one record for CSV: lists joined or JSON-encoded, booleans as true/false, None as ''."""
    row: dict[str, str] = {}
    for key in [*COLUMNS, "markdown"]:
        value = rec.get(key)
        if value is None:
            row[key] = ""
        elif key == "topics":
            row[key] = ";".join(value)
        elif isinstance(value, (list, dict)):
            row[key] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            row[key] = "true" if value else "false"
        else:
            row[key] = str(value)
    return row


def write_csv(recs: Iterator[dict[str, Any]], out: TextIO, *, with_text: bool = False) -> int:
    columns = [*COLUMNS, "markdown"] if with_text else COLUMNS
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    n = 0
    for rec in recs:
        writer.writerow(csv_row(rec))
        n += 1
    return n


def write_markdown_tree(store: Store, out: Path, *, site: str | None = None, since: str | None = None) -> int:
    """One Markdown file per version under `out/<site>/<terms type>/`; returns how many were written."""
    from .ota import split_site_name
    from .report import publish

    n = 0
    for name in _sites(store, site):
        service, terms = split_site_name(name)
        folder = out / service / terms
        for v in store.versions(name):
            if since and v["first_seen"] < since:
                continue
            publish(folder / snapshot_name(v["first_seen"]), v["markdown"])  # a dataset to share
            n += 1
    return n
