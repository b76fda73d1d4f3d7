"""A classified change as JSON, plain text, Markdown or HTML (pure; shared by CLI, messages, report)."""

from __future__ import annotations

import html
from dataclasses import asdict
from typing import Any

from .models import Change, Fact, SectionChange, WordOp
from .topics import label

CONTEXT_WORDS = 25  # unchanged words kept around an edit in trimmed diffs

# Diff colours, defined once: the report's <style> and e-mail's inline styles (mail clients drop <style>).
DEL_STYLE = "background:#ffebe9;color:#82071e;text-decoration:line-through"
INS_STYLE = "background:#dafbe1;color:#116329;text-decoration:underline"


def change_json(change: Change, *, explain: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "changed": change.changed,
        "material": change.material,
        "severity": change.severity,
        "topics": change.topics,
        "effective_date": change.effective_date,
        "facts": [asdict(f) for f in change.facts],
        "summary": change.summary,
        "noise": change.noise,
        "lang": change.lang,
        "sections": [section_json(s) for s in change.sections],
    }
    if explain:
        out["cues"] = [asdict(c) for c in change.cues]
    return out


def section_json(s: SectionChange) -> dict[str, Any]:
    return {
        "status": s.status,
        "heading": s.heading,
        "heading_before": s.heading_before,
        "path": list(s.path),
        "topics": s.topics,
        "material": s.material,
        "before": s.before,
        "after": s.after,
        "diff": [[w.op, w.text] for w in s.words],
    }


def sections_from_json(items: list[dict[str, Any]]) -> list[SectionChange]:
    """Rebuild section changes stored as JSON (the database keeps them that way)."""
    out = []
    for d in items:
        words = d.get("words", d.get("diff", []))
        out.append(
            SectionChange(
                status=d["status"],
                heading=d.get("heading", ""),
                heading_before=d.get("heading_before", ""),
                path=tuple(d.get("path", ())),
                before=d.get("before", ""),
                after=d.get("after", ""),
                words=[WordOp(op, text) for op, text in words],
                topics=d.get("topics", []),
                material=d.get("material", True),
            )
        )
    return out


def change_from_row(row: dict[str, Any]) -> Change:
    """A stored change row (store.change) or `change_json` output, back as a Change to render."""
    eff = row.get("effective_date") or {"before": row.get("effective_before"), "after": row.get("effective_after")}
    return Change(
        changed=bool(row.get("changed", True)),
        material=bool(row.get("material")),
        severity=row.get("severity") or "none",
        topics=list(row.get("topics") or []),
        effective_date=dict(eff),
        sections=sections_from_json(row.get("sections") or []),
        facts=[Fact(**f) for f in row.get("facts") or []],
        summary=row.get("summary") or "",
        noise=list(row.get("noise") or []),
        lang=row.get("lang") or "en",
    )


def excerpt(text: str | None, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with '…': for table cells, index rows and feeds."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section_ops(s: SectionChange) -> list[WordOp]:
    """What a section's diff shows: an added or removed section whole, else its word diff (or, when it
    has none, the old text deleted and the new inserted). Every renderer starts from these ops."""
    if s.status == "added":
        return [WordOp(1, s.after)]
    if s.status == "removed":
        return [WordOp(-1, s.before)]
    return s.words or [WordOp(-1, s.before), WordOp(1, s.after)]


def wrap_marks(text: str, left: str, right: str) -> str:
    """Mark a run line by line without swallowing its surrounding spaces (Markdown needs `**x** `, not
    `** x **`, and a mark cannot span lines)."""
    out = []
    for line in text.split("\n"):
        core = line.strip()
        if core:
            lead = line[: len(line) - len(line.lstrip())]
            tail = line[len(line.rstrip()) :]
            line = f"{lead}{left}{core}{right}{tail}"
        out.append(line)
    return "\n".join(out)


def trimmed(ops: list[WordOp], context: int = CONTEXT_WORDS) -> list[WordOp]:
    """Keep edits and up to `context` words around them; long unchanged runs become '…'."""
    out: list[WordOp] = []
    for i, w in enumerate(ops):
        if w.op != 0:
            out.append(w)
            continue
        parts = w.text.split(" ")
        first, last = i == 0, i == len(ops) - 1
        keep_head = 0 if first else context
        keep_tail = 0 if last else context
        if len(parts) <= keep_head + keep_tail + 3:
            out.append(w)
            continue
        text = ""
        if keep_head:
            text += " ".join(parts[:keep_head]) + " … "
        else:
            text += "… "
        if keep_tail:
            text += " ".join(parts[-keep_tail:])
        out.append(WordOp(0, text))
    return out


def _heading(s: SectionChange) -> str:
    if s.heading and s.heading_before and s.heading != s.heading_before and s.status != "renumbered":
        return f"{s.heading_before} → {s.heading}"
    return s.heading or s.heading_before or "(untitled section)"


def _topics(s: SectionChange) -> str:
    return ", ".join(label(t) for t in s.topics)


def interesting(change: Change) -> list[SectionChange]:
    """Sections worth showing: material ones first; cosmetic ones only when nothing is material."""
    material = [s for s in change.sections if s.material and s.status not in ("moved", "renumbered")]
    return material or [s for s in change.sections if s.status not in ("moved", "renumbered")]


def to_text(change: Change, *, color: bool = False) -> str:
    lines = [_verdict(change), "", change.summary, ""]
    for s in interesting(change):
        tag = f"[{s.status}]" + (f" ({_topics(s)})" if s.topics else "") + ("" if s.material else " (not material)")
        lines.append(f"## {_heading(s)} {tag}")
        lines.append(_inline_text(s, color))
        lines.append("")
    moved = [s for s in change.sections if s.status in ("moved", "renumbered")]
    if moved:
        lines.append(f"{len(moved)} section(s) moved or renumbered without new wording.")
    return "\n".join(lines).rstrip() + "\n"


def _verdict(change: Change) -> str:
    if not change.changed:
        return "No change."
    if not change.material:
        return "Changed, not material."
    topics = ", ".join(change.topics) or "other"
    return f"Material change ({change.severity}): {topics}"


def _inline_text(s: SectionChange, color: bool) -> str:
    """wdiff-style marks ([-gone-] {+new+}), coloured on a terminal; the marks alone carry the meaning."""
    out = []
    for w in trimmed(section_ops(s)):
        if w.op == 0:
            out.append(w.text)
        elif w.op < 0:
            out.append(wrap_marks(w.text, "\x1b[31m[-", "-]\x1b[0m") if color else wrap_marks(w.text, "[-", "-]"))
        else:
            out.append(wrap_marks(w.text, "\x1b[32m{+", "+}\x1b[0m") if color else wrap_marks(w.text, "{+", "+}"))
    return "".join(out)


def to_markdown(change: Change) -> str:
    lines = [f"**{_verdict(change)}**", "", change.summary, ""]
    for s in interesting(change):
        tag = f" — {s.status}" + (f" ({_topics(s)})" if s.topics else "")
        lines.append(f"### {_md_escape(_heading(s))}{tag}")
        lines.append("")
        parts = []
        for w in trimmed(section_ops(s)):
            text = _md_escape(w.text)
            mark = "~~" if w.op < 0 else "**"
            parts.append(text if w.op == 0 else wrap_marks(text, mark, mark))
        lines.append("> " + "".join(parts).replace("\n", "\n> "))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md_escape(text: str) -> str:
    for ch in "\\`*_[]<>":
        text = text.replace(ch, "\\" + ch)
    return text


STYLE = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
del{@DEL}
ins{@INS}
del::before{content:"[−";font-size:.8em}del::after{content:"]";font-size:.8em}
ins::before{content:"[+";font-size:.8em}ins::after{content:"]";font-size:.8em}
.sr{position:absolute;left:-9999px}
.badge{display:inline-block;border:1px solid #8c959f;border-radius:1em;padding:0 .5em;margin:0 .2em;font-size:.8em}
.high{border-color:#cf222e;color:#cf222e}.medium{border-color:#bf8700;color:#7d4e00}.low{border-color:#0969da;color:#0969da}
blockquote{border-left:3px solid #d0d7de;margin:0;padding:0 1em;white-space:pre-wrap}
@media print{del{color:#000}ins{color:#000}}
""".replace("@DEL", DEL_STYLE).replace("@INS", INS_STYLE)


def html_inline(ops: list[WordOp]) -> str:
    """Inline diff with <del>/<ins>; the markers are text too, so it reads without colour."""
    return "".join(html_mark(w.op, w.text) for w in trimmed(ops))


def html_mark(op: int, text: str) -> str:
    """One diff run as escaped HTML: <del>/<ins> with a screen-reader word, or plain text."""
    t = html.escape(text)
    if op == 0:
        return t
    if op < 0:
        return f'<del><span class="sr">deleted: </span>{t}</del>'
    return f'<ins><span class="sr">inserted: </span>{t}</ins>'


def html_sides(ops: list[WordOp]) -> tuple[str, str]:
    """Side-by-side halves of a word diff, untrimmed: (before with <del>, after with <ins>)."""
    before = "".join(html_mark(w.op, w.text) for w in ops if w.op <= 0)
    after = "".join(html_mark(w.op, w.text) for w in ops if w.op >= 0)
    return before, after


def to_html(change: Change, *, title: str = "watcher diff") -> str:
    """A standalone page: the frame is English; headings and quoted policy text carry the policy's lang."""
    la = f' lang="{html.escape(change.lang)}"' if change.lang else ""
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p><strong>{html.escape(_verdict(change))}</strong> <span class="badge {change.severity}">{change.severity}</span></p>',
        f"<p>{html.escape(change.summary)}</p>",
    ]
    for s in interesting(change):
        badges = "".join(
            f'<span class="badge" title="{html.escape(t)}">{html.escape(label(t))}</span>' for t in s.topics
        )
        parts.append(f"<h2><span{la}>{html.escape(_heading(s))}</span> <small>({s.status})</small> {badges}</h2>")
        parts.append(f"<blockquote{la}>{html_inline(section_ops(s))}</blockquote>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
