"""Section-level diff of two Documents (pure).

Sections are aligned across versions before anything is compared, so that a section that
moved, or whose number changed because another was inserted above it, is reported as
`moved` / `renumbered` and never as a rewrite:

1. same heading (numbering, case and typography ignored) and same text;
2. same heading;
3. same text under a renamed heading;
4. the most similar remaining pair, when similar enough (renamed and edited).

Whatever is left is `added` or `removed`. Modified sections carry a word-level diff made
with diff-match-patch on word tokens, with semantic cleanup.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left

from diff_match_patch import diff_match_patch

from .models import Document, Section, SectionChange, WordOp
from .textutil import fold, words

_ENUM = re.compile(
    r"^\s*(?:(?:section|article|chapter|part|chapitre|partie|annexe|appendix|schedule)\s+)?"
    r"(?:\d{1,3}(?:\.\d{1,3})*\.?|[ivxlc]{1,6}[.)]|[a-z][.)]|\(\w{1,4}\))(?=\s|$)\s*",
    re.I,
)
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
SIMILAR = 0.5  # minimum similarity for pairing two differently-titled sections


def strip_enumeration(text: str) -> str:
    """ "3.2 Cookies" -> "Cookies": numbering is layout, not wording."""
    return _ENUM.sub("", text, count=1)


def heading_key(heading: str) -> str:
    key = fold(strip_enumeration(heading))
    return re.sub(r"[\W_]+", " ", key).strip()


def body_key(section: Section) -> tuple[str, ...]:
    return tuple(w for b in section.blocks for w in words(strip_enumeration(b.text)))


def _bigrams(body: tuple[str, ...]) -> set[tuple[str, ...]]:
    return set(itertools.pairwise(body)) or {(w,) for w in body}


def _similarity(sa: set[tuple[str, ...]], sb: set[tuple[str, ...]]) -> float:
    """Bigram Jaccard, or containment for a section that grew (sets from `_bigrams`)."""
    if not sa and not sb:
        return 1.0
    if not sa or not sb:
        return 0.0
    common = len(sa & sb)
    jaccard = common / len(sa | sb)
    small = min(len(sa), len(sb))
    # a section that grew a lot is still the same section: count containment too
    return max(jaccard, 0.8 * common / small if small >= 5 else 0.0)


Keys = tuple[list[str], list[tuple[str, ...]]]  # heading keys and body keys of a version's sections


def keys(sections: list[Section]) -> Keys:
    return [heading_key(s.heading) for s in sections], [body_key(s) for s in sections]


def align(
    old: list[Section], new: list[Section], old_keys: Keys | None = None, new_keys: Keys | None = None
) -> list[tuple[int | None, int | None]]:
    """Pairs of (old index, new index); None on one side for added/removed sections."""
    okeys, obody = old_keys or keys(old)
    nkeys, nbody = new_keys or keys(new)
    obig: dict[int, set] = {}
    nbig: dict[int, set] = {}

    def body_sim(i: int, j: int) -> float:
        if i not in obig:
            obig[i] = _bigrams(obody[i])
        if j not in nbig:
            nbig[j] = _bigrams(nbody[j])
        return _similarity(obig[i], nbig[j])

    pairs: dict[int, int] = {}
    used: set[int] = set()

    def match(okey, nkey, accept=lambda i, j: True) -> None:  # type: ignore[no-untyped-def]
        index: dict[object, list[int]] = {}
        for j in range(len(new)):
            if j not in used:
                index.setdefault(nkey(j), []).append(j)
        for i in range(len(old)):
            if i in pairs:
                continue
            for j in index.get(okey(i), ()):
                if j not in used and accept(i, j):
                    pairs[i] = j
                    used.add(j)
                    break

    match(lambda i: (okeys[i], obody[i]), lambda j: (nkeys[j], nbody[j]))
    match(
        lambda i: okeys[i],
        lambda j: nkeys[j],
        lambda i, j: bool(okeys[i]) or body_sim(i, j) >= SIMILAR,
    )
    match(lambda i: obody[i] or None, lambda j: nbody[j] or (None, j))
    # most similar remaining pairs first
    cands = []
    for i in range(len(old)):
        if i in pairs:
            continue
        for j in range(len(new)):
            if j in used:
                continue
            score = body_sim(i, j)
            if okeys[i] and nkeys[j] and okeys[i] != nkeys[j]:
                heads = _similarity(_bigrams(tuple(okeys[i].split())), _bigrams(tuple(nkeys[j].split())))
                score = 0.8 * score + 0.2 * heads
            if score >= SIMILAR:
                cands.append((score, -abs(i - j), i, j))
    for _sim, _d, i, j in sorted(cands, reverse=True):
        if i not in pairs and j not in used:
            pairs[i] = j
            used.add(j)
    out: list[tuple[int | None, int | None]] = [(i, j) for i, j in pairs.items()]
    out += [(i, None) for i in range(len(old)) if i not in pairs]
    out += [(None, j) for j in range(len(new)) if j not in used]
    return out


def _in_order(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The longest run of pairs whose order is the same in both versions (the rest moved)."""
    seq = sorted(pairs, key=lambda p: p[1])
    tails: list[int] = []
    tails_idx: list[int] = []
    prev = [-1] * len(seq)
    for k, (i, _j) in enumerate(seq):
        pos = bisect_left(tails, i)
        if pos == len(tails):
            tails.append(i)
            tails_idx.append(k)
        else:
            tails[pos] = i
            tails_idx[pos] = k
        prev[k] = tails_idx[pos - 1] if pos else -1
    keep: set[tuple[int, int]] = set()
    k = tails_idx[-1] if tails_idx else -1
    while k >= 0:
        keep.add(seq[k])
        k = prev[k]
    return keep


def word_diff(before: str, after: str) -> list[WordOp]:
    """Word-level diff (diff-match-patch over word tokens, semantic cleanup)."""
    dmp = diff_match_patch()
    dmp.Diff_Timeout = 2.0
    vocab: dict[str, str] = {}
    tokens: list[str] = []

    def encode(text: str) -> str:
        out = []
        for tok in _TOKEN.findall(text):
            ch = vocab.get(tok)
            if ch is None:
                ch = vocab[tok] = chr(0xE000 + len(tokens)) if len(tokens) < 6400 else chr(0xF0000 + len(tokens) - 6400)
                tokens.append(tok)
            out.append(ch)
        return "".join(out)

    ea, eb = encode(before), encode(after)
    diffs = dmp.diff_main(ea, eb, False)
    dmp.diff_cleanupSemantic(diffs)
    index = {ch: tok for tok, ch in vocab.items()}
    ops: list[WordOp] = []
    for op, chars in diffs:
        text = "".join(index[c] for c in chars)
        if ops and ops[-1].op == op:
            ops[-1].text += text
        else:
            ops.append(WordOp(op, text))
    return ops


def section_text(section: Section) -> str:
    lines = []
    for b in section.blocks:
        if b.kind == "li":
            lines.append("  " * b.depth + "- " + b.text)
        else:
            lines.append(b.text)
    return "\n".join(lines)


def display_heading(path: tuple[str, ...], roots: set[str]) -> str:
    """A section's heading with its parent ("How we use data › Purposes"), without the page title.

    A sub-heading such as "Other contacts:" means little on its own in an alert.
    """
    shown = [h for h in path if h not in roots] or list(path[-1:])
    return " › ".join(shown[-2:])


def diff_documents(old: Document, new: Document) -> list[SectionChange]:
    """Changed sections, in the order of the new document (removed ones where they were)."""
    roots = {s.heading for s in old.sections + new.sections if s.level == 1}
    okeys, nkeys = keys(old.sections), keys(new.sections)
    pairs = align(old.sections, new.sections, okeys, nkeys)
    matched = [(i, j) for i, j in pairs if i is not None and j is not None]
    ordered = _in_order(matched)  # type: ignore[arg-type]
    changes: list[tuple[float, SectionChange]] = []
    for i, j in pairs:
        if i is not None and j is not None:
            a, b = old.sections[i], new.sections[j]
            same_body = okeys[1][i] == nkeys[1][j]
            same_head = okeys[0][i] == nkeys[0][j]
            if same_body and same_head:
                if (i, j) not in ordered:
                    status = "moved"
                elif fold(a.heading) != fold(b.heading) and fold(strip_enumeration(a.heading)) == fold(
                    strip_enumeration(b.heading)
                ):
                    status = "renumbered"
                else:
                    continue
                changes.append((j, _change(status, a, b, i, j, roots)))
            else:
                changes.append((j, _change("modified", a, b, i, j, roots)))
        elif i is not None:
            # place a removed section just after the new position of its predecessor
            pos = _position_after(i, matched)
            changes.append((pos, _change("removed", old.sections[i], None, i, None, roots)))
        else:
            assert j is not None
            changes.append((j, _change("added", None, new.sections[j], None, j, roots)))
    changes.sort(key=lambda c: c[0])
    return [c for _, c in changes]


def _position_after(i: int, matched: list[tuple[int, int]]) -> float:
    before = [j for oi, j in matched if oi < i]
    return (max(before) if before else -1) + 0.5


def _change(
    status: str,
    a: Section | None,
    b: Section | None,
    i: int | None,
    j: int | None,
    roots: set[str],
) -> SectionChange:
    before = section_text(a) if a else ""
    after = section_text(b) if b else ""
    return SectionChange(
        status=status,  # type: ignore[arg-type]
        heading=display_heading(b.path, roots) if b else "",
        heading_before=display_heading(a.path, roots) if a else "",
        path=(b.path if b else a.path if a else ()),
        before=before,
        after=after,
        words=word_diff(before, after) if status == "modified" else [],
        index_before=i,
        index_after=j,
    )
