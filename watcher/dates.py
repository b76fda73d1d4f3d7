"""Dates a policy states about itself ("Last updated: May 29, 2024", "En vigueur le 1er janvier 2025").

A date counts only right after a cue listed in data/dates.toml, so "after March 1, 2023"
in a sentence is not the policy's date. The finder's patterns already isolate day, month
name and year, so parsing is a table lookup: dateparser was measured at 0.5-0.9 s of CPU
for its first parse (locale regex compilation), ten times the budget of a whole
`watcher diff`. Results are ISO strings: `YYYY-MM-DD`, or `YYYY-MM` when the policy gives
no day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .data import load_table
from .models import Document


@dataclass(frozen=True)
class DateMatch:
    start: int
    end: int
    iso: str  # YYYY-MM-DD or YYYY-MM


@dataclass(frozen=True)
class StatedDate:
    iso: str
    cue: str
    text: str  # the block it was found in


@lru_cache(maxsize=1)
def _data() -> dict:
    raw = load_table("dates.toml")
    months: dict[str, int] = {}
    for num, names in raw["months"].items():
        for name in names:
            months[name] = int(num)
    names = sorted(months, key=len, reverse=True)
    mon = "(?:" + "|".join(re.escape(n) for n in names) + r")\.?"
    day = r"(?:[0-3]?\d)(?:st|nd|rd|th|er|e)?"
    year = r"(?:19[89]\d|20\d\d|21\d\d)"
    patterns = [
        # 8 July 2026, 1er janvier 2025, 25 October, 2021, 16-OCT-2023, le 12 de mars 2024
        ("dmy", rf"(?<!\d)(?P<d>{day})[\s.\-/]*(?:(?:de|of)\s+)?(?P<m>{mon})[\s,.\-/]*(?:de\s+)?(?P<y>{year})(?!\d)"),
        # May 29, 2024, April 2nd 2024, Feb 10 2026
        ("mdy", rf"(?<![\w])(?P<m>{mon})[\s.\-]*(?P<d>{day}),?[\s\-]+(?P<y>{year})(?!\d)"),
        # July 2023, APRIL-2024, juillet 2023
        ("my", rf"(?<![\w])(?P<m>{mon})[\s,.\-/]*(?:de\s+)?(?P<y>{year})(?!\d)"),
        # 2024-05-29, 2024/05/29
        ("iso", rf"(?<!\d)(?P<y>{year})[-/.](?P<mo>[01]?\d)[-/.](?P<d>[0-3]?\d)(?!\d)"),
        # 16.7.2026, 12/08/2024, 08-12-2024
        ("num", rf"(?<![\d.])(?P<a>[0-3]?\d)(?P<sep>[./\-])(?P<b>[0-3]?\d)(?P=sep)(?P<y>{year})(?!\d)"),
        # 2024-05
        ("ym", rf"(?<![\d\-])(?P<y>{year})-(?P<mo>0[1-9]|1[0-2])(?![\d\-])"),
    ]
    punct = r"[\s:|,.()*_\-–—]*"
    return {
        "cue": re.compile("|".join(f"(?:{c})" for c in raw["cues"]), re.I),
        "window": int(raw["window"]),
        "gap": re.compile(rf"^{punct}(?:{raw['gap']}\b{punct}){{0,6}}$", re.I),
        "update_cue": re.compile(raw["update_cue"], re.I),
        "policy_noun": re.compile(raw["policy_noun"], re.I),
        "after": re.compile(raw["after"], re.I),
        "months": months,
        "date": [(kind, re.compile(p, re.I)) for kind, p in patterns],
    }


def find_dates(text: str, lang: str = "en") -> list[DateMatch]:
    """Every calendar date written in `text` (cue or not), without overlaps: the formats are tried
    in a fixed order (day-month-year, month-day-year, month-year, ISO, numeric, year-month) and
    a span already taken by an earlier format is not read again."""
    data = _data()
    found: list[DateMatch] = []
    taken: list[tuple[int, int]] = []
    for kind, rx in data["date"]:
        for m in rx.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            iso = _to_iso(kind, m, lang)
            if iso:
                found.append(DateMatch(m.start(), m.end(), iso))
                taken.append((m.start(), m.end()))
    found.sort(key=lambda d: d.start)
    return found


def _to_iso(kind: str, m: re.Match[str], lang: str) -> str | None:
    g = m.groupdict()
    if kind in ("iso", "ym"):
        y, mo = int(g["y"]), int(g["mo"])
        d = int(g["d"]) if g.get("d") else 0
        return _valid(y, mo, d)
    if kind == "num":
        a, b, y = int(g["a"]), int(g["b"]), int(g["y"])
        # day first everywhere but in English (US) pages: 01/03/2024 is 1 March in Europe
        if g["sep"] == "." or a > 12 or lang != "en":
            d, mo = a, b
        elif b > 12:
            d, mo = b, a
        else:
            mo, d = a, b
        return _valid(y, mo, d)
    month = _data()["months"].get(g["m"].lower().rstrip("."))
    if month is None:
        return None
    day = int(re.match(r"\d+", g["d"]).group(0)) if kind != "my" else 0  # type: ignore[union-attr]
    return _valid(int(g["y"]), month, day)


def _valid(y: int, mo: int, d: int) -> str | None:
    import datetime as dt

    if not 1 <= mo <= 12:
        return None
    if d:
        try:
            dt.date(y, mo, d)
        except ValueError:
            return None
        return f"{y:04d}-{mo:02d}-{d:02d}"
    return f"{y:04d}-{mo:02d}"


def stated_dates_in(lines: list[str], lang: str = "en") -> list[StatedDate]:
    """Dates that follow a cue, in a list of consecutive text blocks."""
    data = _data()
    cue_rx, window = data["cue"], data["window"]
    found: list[StatedDate] = []
    # a year needs "19", "20" or "21": testing for those is 5x cheaper than the pattern
    has_year = [("20" in line or "19" in line or "21" in line) and _YEAR.search(line) is not None for line in lines]
    for idx, line in enumerate(lines):
        if not has_year[idx] and not (idx + 1 < len(lines) and has_year[idx + 1]):
            continue  # every date format watcher reads has a four-digit year
        # one scan for cues (the pattern is slow: ~40 us a line); dates are read only where a cue
        # or a version mark could claim them
        cues = list(cue_rx.finditer(line))
        versioned = has_year[idx] and len(line) < 200 and data["after"].search(line) is not None
        if not cues and not versioned:
            continue
        dates = find_dates(line, lang) if has_year[idx] else []
        if versioned:
            for d in dates:
                if data["after"].match(line, d.end):
                    found.append(StatedDate(d.iso, "version", line))
        if not cues:
            continue
        short = len(line.split()) <= 14 and cue_rx.match(line.lstrip(" *_#>|-(")) is not None
        for cue in cues:
            hit = next(
                (
                    d
                    for d in dates
                    if cue.end() - 2 <= d.start <= cue.end() + window
                    # prose needs the date right after the cue; a short date line may qualify it
                    # ("Effective Date in EEA, UK, and Switzerland: April 30, 2024")
                    and (short or data["gap"].match(line[cue.end() : max(cue.end(), d.start)]))
                    # in prose, "effective on July 1, 2020" may be a law's date: the sentence must be
                    # about the policy, unless the cue itself says it was updated
                    and (
                        short
                        or data["update_cue"].match(cue.group(0).strip())
                        or _about_policy(line, cue.start(), data)
                    )
                ),
                None,
            )
            if hit:
                found.append(StatedDate(hit.iso, cue.group(0).strip(), line))
                continue
            # "Last updated :" (or "Effective date of the policy :") ending a line, the date on the next one
            if data["gap"].match(line[cue.end() :]) and idx + 1 < len(lines):
                nxt = lines[idx + 1]
                dn = find_dates(nxt[: window + 20], lang)
                if dn and dn[0].start <= 8:
                    found.append(StatedDate(dn[0].iso, cue.group(0).strip(), nxt))
    return found


# The same as (?<!\d)(?:19[89]\d|20\d\d|21\d\d)(?!\d), written to start with its digits: a pattern
# that opens with a lookbehind is tried at every position, this one only where a 1 or 2 stands
# (4x faster; searched in every block of every new page, issue 10).
_YEAR = re.compile(r"(?:19[89]|2[01]\d)\d(?<!\d{5})(?!\d)")


def _about_policy(line: str, at: int, data: dict) -> bool:
    """Does the sentence around position `at` speak of the policy itself?"""
    start = max(line.rfind(". ", 0, at), line.rfind("; ", 0, at), 0)
    end = line.find(". ", at)
    sentence = line[start : end if end >= 0 else len(line)]
    return bool(data["policy_noun"].search(sentence))


def _key(iso: str) -> tuple[int, int, int]:
    parts = [int(p) for p in iso.split("-")]
    return (parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


def latest(dates: list[StatedDate]) -> str | None:
    if not dates:
        return None
    return max(dates, key=lambda d: _key(d.iso)).iso


def document_lines(doc: Document) -> list[str]:
    lines: list[str] = []
    if doc.title:
        lines.append(doc.title)
    for s in doc.sections:
        if s.heading:
            lines.append(s.heading)
        lines.extend(b.text for b in s.blocks)
    return lines


def effective_date(doc: Document) -> str | None:
    """The latest date the policy states as its effective / last-updated date."""
    return latest(stated_dates_in(document_lines(doc), doc.lang))
