"""Who hears about what: routing changes and failures to subscribers (delivery comes later)."""

from __future__ import annotations

import fnmatch

from .config import Config, Subscriber
from .models import SEVERITIES, Change


def wants_site(sub: Subscriber, site: str) -> bool:
    return any(fnmatch.fnmatchcase(site, pat) for pat in sub.sites)


def route(config: Config, site: str, change: Change) -> list[Subscriber]:
    """Subscribers who asked for this site, one of these topics, at this severity or above."""
    if not change.material:
        return []
    out = []
    for sub in config.subscribers:
        if not wants_site(sub, site):
            continue
        if sub.topics and not set(sub.topics) & set(change.topics):
            continue
        if SEVERITIES.index(change.severity) < SEVERITIES.index(sub.min_severity):  # type: ignore[arg-type]
            continue
        out.append(sub)
    return out


def route_errors(config: Config, site: str) -> list[Subscriber]:
    return [s for s in config.subscribers if s.errors and wants_site(s, site)]
