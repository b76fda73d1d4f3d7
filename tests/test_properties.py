"""Properties of normalize, diff and classify, checked by hypothesis on generated pages.

- normalize is deterministic, and its Markdown is a fixed point: normalizing the Markdown
  rendering again gives the same Document;
- the diff of a document with itself is empty;
- the reported section changes are complete: applying them to the old document rebuilds
  the new one (unchanged sections are exactly those the diff does not mention);
- markup-only perturbations of a policy page (wrappers, attributes, tag names, whitespace,
  entities) never make a material change.

Runs are derandomized (same examples every run, so CI is stable); raise the number of
examples with WATCHER_HYPOTHESIS_EXAMPLES=2000 when hunting for bugs.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.classify import classify
from watcher.diff import body_key, diff_documents, heading_key
from watcher.models import Document, Section
from watcher.normalize import NormalizeError, from_markdown, normalize, to_markdown

EXAMPLES = int(os.environ.get("WATCHER_HYPOTHESIS_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------
# Generated policies

WORDS = [
    "we",
    "collect",
    "use",
    "share",
    "personal",
    "data",
    "information",
    "with",
    "partners",
    "for",
    "purposes",
    "of",
    "advertising",
    "analytics",
    "retain",
    "delete",
    "request",
    "access",
    "your",
    "rights",
    "children",
    "under",
    "consent",
    "cookies",
    "transfer",
    "outside",
    "country",
    "security",
    "measures",
    "contact",
    "us",
    "email",
    "address",
    "policy",
    "changes",
    "notify",
    "law",
    "enforcement",
    "service",
    "providers",
    "nous",
    "collectons",
    "vos",
    "données",
    "personnelles",
    "partenaires",
    "conservons",
    "pendant",
    "années",
    "droits",
    "enfants",
]
ODD = [
    "*",
    "_",
    "#",
    "|",
    "[",
    "]",
    "`",
    "<b>",
    "&amp;",
    "1.",
    "-",
    "+",
    ">",
    "\\",
    "«",
    "»",
    "’",
    "—",
    "é",
    "🙂",
    "مرحبا",
    "(a)",
    "http://x.example/y_z",
    "2.3",
    ":",
    ";",
    "!",
    "?",
    "%",
    "$",
    "=",
]


@st.composite
def sentence(draw: st.DrawFn, odd: bool = True) -> str:
    # policy sentences: long enough to read as text (normalize rightly drops four-word crumbs)
    pool = WORDS + ODD if odd else WORDS
    words = draw(st.lists(st.sampled_from(pool), min_size=10, max_size=30))
    text = " ".join(words)
    return text[:1].upper() + text[1:] + (draw(st.sampled_from([".", ".", ";", ":", "!", ""])) if odd else ".")


@st.composite
def heading(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
    number = draw(st.sampled_from(["", "", "1. ", "2.1 ", "Article 3 - "]))
    return number + " ".join(w.capitalize() for w in words)


@dataclass
class Block:
    kind: str  # p | li | row
    parts: list[str]


@dataclass
class Part:
    heading: str
    level: int
    blocks: list[Block]


@st.composite
def block(draw: st.DrawFn, odd: bool = True) -> Block:
    kind = draw(st.sampled_from(["p", "p", "p", "li", "row"]))
    if kind == "row":
        return Block("row", draw(st.lists(sentence(odd), min_size=2, max_size=3)))
    return Block(kind, [draw(sentence(odd))])


@st.composite
def policy(draw: st.DrawFn, odd: bool = True) -> list[Part]:
    n = draw(st.integers(1, 7))
    parts = []
    for _ in range(n):
        parts.append(
            Part(draw(heading()), draw(st.sampled_from([2, 2, 3])), draw(st.lists(block(odd), min_size=1, max_size=4)))
        )
    return parts


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def render(parts: list[Part], style: dict | None = None) -> str:
    """A policy page; `style` picks markup that must not matter (see perturb)."""
    style = style or {}
    wrap = style.get("wrap", "")  # element wrapped around every block
    attrs = style.get("attrs", "")
    ws = style.get("ws", "\n")
    ent = style.get("entities", False)

    def text(t: str) -> str:
        out = esc(t)
        if ent:  # the same characters, written as numeric entities
            out = "".join(f"&#{ord(c)};" if c in "aeiouéAE" else c for c in out)
        return out

    def wrapped(inner: str) -> str:
        if not wrap:
            return inner
        return f"<{wrap}{attrs}>{ws}{inner}{ws}</{wrap}>"

    body = []
    title = parts[0].heading if parts else "Privacy"
    body.append(f"<h1{attrs}>Privacy Policy</h1>")
    for part in parts:
        body.append(wrapped(f"<h{part.level}{attrs}>{text(part.heading)}</h{part.level}>"))
        items = []
        for b in part.blocks:
            if b.kind == "li":
                items.append(f"<li{attrs}>{ws}{text(b.parts[0])}{ws}</li>")
                continue
            if items:
                body.append(wrapped(f"<ul>{''.join(items)}</ul>"))
                items = []
            if b.kind == "row":
                cells = "".join(f"<td{attrs}>{text(c)}</td>" for c in b.parts)
                body.append(wrapped(f"<table><tr>{cells}</tr></table>"))
            else:
                body.append(wrapped(f"<p{attrs}>{ws}{text(b.parts[0])}{ws}</p>"))
        if items:
            body.append(wrapped(f"<ul>{''.join(items)}</ul>"))
    main = ws.join(body)
    if style.get("container"):
        main = f'<{style["container"]} class="policy-body">{main}</{style["container"]}>'
    return (
        f'<!doctype html><html lang="en"><head><title>{esc(title)}</title></head>'
        f"<body><main>{main}</main></body></html>"
    )


perturbation = st.fixed_dictionaries(
    {
        "wrap": st.sampled_from(["", "div", "section", "span", "article"]),
        "attrs": st.sampled_from(["", ' class="x"', ' id="p-1" data-v="2"', ' style="color:red" lang="en"']),
        "ws": st.sampled_from(["\n", "", "  \n\t  ", " "]),
        "entities": st.booleans(),
        "container": st.sampled_from(["", "div", "section"]),
    }
)


def same(a: Document, b: Document) -> None:
    assert to_markdown(a) == to_markdown(b)
    assert [(s.heading, s.level, s.path, s.blocks) for s in a.sections] == [
        (s.heading, s.level, s.path, s.blocks) for s in b.sections
    ]


# --------------------------------------------------------------------------------------
# Properties


@SETTINGS
@given(policy())
def test_normalize_is_deterministic_and_its_markdown_a_fixed_point(parts: list[Part]) -> None:
    page = render(parts)
    doc = normalize(page)
    same(doc, normalize(page))
    same(normalize(to_markdown(doc), fmt="markdown"), doc)
    same(from_markdown(to_markdown(doc)), doc)  # how the store reads a version back


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400))
def test_any_text_normalizes_to_a_fixed_point(text: str) -> None:
    for fmt in ("text", "markdown", "html"):
        try:
            doc = normalize(text, fmt=fmt)
        except NormalizeError:  # the only way normalize may refuse a page
            assert fmt == "html" and not text.strip()
            continue
        markdown = to_markdown(doc)
        assert to_markdown(normalize(markdown, fmt="markdown")) == markdown
        assert to_markdown(from_markdown(markdown)) == markdown


@SETTINGS
@given(policy())
def test_a_document_does_not_differ_from_itself(parts: list[Part]) -> None:
    doc = normalize(render(parts))
    assert diff_documents(doc, doc) == []
    change = classify(doc, normalize(render(parts)))
    assert not change.changed and not change.material and change.sections == []


@st.composite
def edited(draw: st.DrawFn) -> tuple[list[Part], list[Part]]:
    """A policy and a later version: sections edited, added, removed, moved, renamed."""
    old = draw(policy())
    new = [Part(p.heading, p.level, list(p.blocks)) for p in old]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["edit", "add", "remove", "move", "rename"]))
        if op == "add" or not new:
            new.insert(draw(st.integers(0, len(new))), draw(policy())[0])
        elif op == "remove":
            new.pop(draw(st.integers(0, len(new) - 1)))
        elif op == "edit":
            p = new[draw(st.integers(0, len(new) - 1))]
            p.blocks[draw(st.integers(0, len(p.blocks) - 1))] = draw(block())
        elif op == "move":
            p = new.pop(draw(st.integers(0, len(new) - 1)))
            new.insert(draw(st.integers(0, len(new))), p)
        else:
            p = new[draw(st.integers(0, len(new) - 1))]
            p.heading = draw(heading())
    return old, new


def rebuild(old: Document, new: Document) -> list[tuple[str, tuple[str, ...]]]:
    """Apply the reported changes to `old`: the (heading, body) keys of the new sections, in order.

    Sections the diff does not mention are unchanged and keep their relative order (anything
    else would be reported as moved), so they fill the new positions no change claims.
    """
    changes = diff_documents(old, new)
    by_new: dict[int, tuple[str, tuple[str, ...]]] = {}
    touched_old = set()
    for c in changes:
        if c.index_before is not None:
            touched_old.add(c.index_before)
        if c.status == "removed":
            assert c.after == "" and c.index_after is None
            continue
        assert c.index_after is not None
        section = Section(c.heading, 0, (), [])
        # `heading` may be disambiguated for display ("Parent › Child"); the path ends with the heading
        by_new[c.index_after] = (heading_key(c.path[-1] if c.path else c.heading), _keys_of_text(c.after, section))
        if c.status == "added":
            assert c.before == "" and c.index_before is None
        else:  # the old side is carried in full too
            assert c.index_before is not None
            assert _keys_of_text(c.before, section) == body_key(old.sections[c.index_before])
    unchanged = iter(i for i in range(len(old.sections)) if i not in touched_old)
    out = []
    for j in range(len(new.sections)):
        if j in by_new:
            out.append(by_new[j])
        else:
            s = old.sections[next(unchanged)]
            out.append((heading_key(s.heading), body_key(s)))
    assert next(unchanged, None) is None, "an old section is neither unchanged nor reported"
    return out


def _keys_of_text(text: str, section: Section) -> tuple[str, ...]:
    from watcher.models import Block as DocBlock

    lines = [ln.lstrip() for ln in text.split("\n")] if text else []
    blocks = [DocBlock("p", ln[2:] if ln.startswith("- ") else ln) for ln in lines]
    return body_key(Section(section.heading, 0, (), blocks))


@SETTINGS
@given(edited())
def test_applying_the_reported_changes_to_the_old_version_gives_the_new(pair: tuple[list[Part], list[Part]]) -> None:
    old, new = (normalize(render(p)) for p in pair)
    assert rebuild(old, new) == [(heading_key(s.heading), body_key(s)) for s in new.sections]


@SETTINGS
@given(policy(odd=False), perturbation, perturbation)
def test_markup_only_changes_are_never_material(parts: list[Part], style_a: dict, style_b: dict) -> None:
    a, b = normalize(render(parts, style_a)), normalize(render(parts, style_b))
    change = classify(a, b)
    assert not change.material, (change.summary, style_a, style_b)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789 12a٢٠", max_size=24))
def test_the_year_pattern_finds_what_the_plain_lookbehind_form_finds(text: str) -> None:
    """dates._YEAR is written digits-first for speed; it must find the same four-digit years."""
    import re

    from watcher.dates import _YEAR

    plain = re.compile(r"(?<!\d)(?:19[89]\d|20\d\d|21\d\d)(?!\d)")
    assert [m.span() for m in _YEAR.finditer(text)] == [m.span() for m in plain.finditer(text)]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab_9 '’-.,é\t\nß", max_size=40) | st.text(max_size=40))
def test_counting_words_matches_the_word_pattern(text: str) -> None:
    """textutil.count_words has an ASCII fast path; it must count what WORD finds."""
    from watcher.textutil import WORD, count_words

    assert count_words(text) == len(WORD.findall(text))


_JSON_VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False)
    | st.lists(st.text(), max_size=3)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=6) | st.lists(st.integers(), max_size=2))
def test_check_json_items_are_written_as_json_dumps_writes_them(item: object) -> None:
    """`watcher check --json` writes each result without json's slow indenting encoder."""
    import json

    from watcher.cli import _indented_json

    assert _indented_json(item) == json.dumps(item, ensure_ascii=False, indent=2)
