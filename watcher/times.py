"""Timestamps: one format everywhere (ISO 8601, UTC, microseconds, "Z"), so they sort as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(when: datetime) -> str:
    """`when` (aware, or naive UTC) in watcher's timestamp format."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime(FORMAT)


def now_iso() -> str:
    return iso(datetime.now(UTC))


def in_seconds(seconds: float) -> str:
    """The timestamp `seconds` from now."""
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))


def parse(stamp: str) -> datetime:
    """A stored timestamp back to an aware datetime (accepts the format without microseconds too)."""
    text = stamp.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)
