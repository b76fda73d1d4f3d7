"""Plain dataclasses passed between the pipeline stages.

Each stage takes and returns these values; none of them knows about HTTP, SQLite or the
terminal, so `watcher diff` and `watcher check` run the very same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["p", "li", "row"]
SectionStatus = Literal["added", "removed", "modified", "moved", "renumbered"]
Severity = Literal["high", "medium", "low", "none"]
SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high")


@dataclass(frozen=True)
class Block:
    """One paragraph, list item or table row of policy text."""

    kind: BlockKind
    text: str
    depth: int = 0  # list nesting (0 = top level list item)
    cells: tuple[str, ...] = ()  # table rows only


@dataclass
class Section:
    """A heading and the blocks under it, up to the next heading."""

    heading: str  # "" for the text before the first heading
    level: int  # 1-6; 0 for the preamble
    path: tuple[str, ...]  # headings from the top down to this one
    blocks: list[Block] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


@dataclass
class Document:
    """The policy text of one page: what watcher snapshots and diffs."""

    title: str
    lang: str
    sections: list[Section]

    @property
    def text(self) -> str:
        parts: list[str] = []
        for s in self.sections:
            if s.heading:
                parts.append(s.heading)
            parts.extend(b.text for b in s.blocks)
        return "\n".join(parts)


@dataclass
class FetchResult:
    """One attempt to fetch a page; `error` is set when it must not become a version."""

    url: str
    final_url: str = ""
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    size: int = 0  # len(body) as fetched; kept when a check drops the bytes it already has
    text: str = ""  # decoded body
    content_type: str = ""
    charset: str = ""
    fetched_at: str = ""  # ISO 8601 UTC
    duration_ms: int = 0
    not_modified: bool = False  # a 304 answer to a conditional request
    error: str | None = None
    error_kind: str | None = None  # short machine-readable reason: "timeout", "http", ...
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class WordOp:
    """One run of a word-level diff: 0 equal, -1 deleted, 1 inserted."""

    op: int
    text: str


@dataclass
class SectionChange:
    """How one section differs between two versions."""

    status: SectionStatus
    heading: str  # heading in the new version ("" when removed: see heading_before)
    heading_before: str
    path: tuple[str, ...]
    before: str  # section text before ("" when added)
    after: str  # section text after ("" when removed)
    words: list[WordOp] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    material: bool = True
    index_before: int | None = None
    index_after: int | None = None


@dataclass
class Fact:
    """A structured term that changed, e.g. a retention period or an age threshold."""

    topic: str
    kind: str  # "period", "age", "notice", "place", "email", "negation", "date", "recipient"
    before: str | None
    after: str | None
    section: str = ""


@dataclass
class Cue:
    """Why a topic was assigned: which cue matched which words (for `--explain`)."""

    topic: str
    cue: str
    words: str
    section: str
    where: Literal["change", "heading"] = "change"


@dataclass
class Change:
    """The classified difference between two versions of one policy."""

    changed: bool
    material: bool
    severity: Severity
    topics: list[str]
    effective_date: dict[str, str | None]
    sections: list[SectionChange]
    facts: list[Fact] = field(default_factory=list)
    summary: str = ""
    noise: list[str] = field(default_factory=list)  # why a non-material change was dismissed
    cues: list[Cue] = field(default_factory=list)
    lang: str = "en"
