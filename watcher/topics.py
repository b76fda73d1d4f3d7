"""The fixed topic taxonomy (ids, labels, OPP-115 mapping), read from data/topics.toml."""

from __future__ import annotations

from .data import load_table

_DATA = load_table("topics.toml")
TOPICS: dict[str, dict[str, str]] = {t["id"]: t for t in _DATA["topic"]}
TOPIC_IDS: tuple[str, ...] = tuple(TOPICS)


def label(topic: str) -> str:
    return TOPICS.get(topic, {}).get("label", topic)
