"""HTML, Markdown or plain text in, `Document` out: the policy text and nothing else.

Pure functions of their input (no clock except the per-page time budget, no I/O), so the
same page always gives byte-identical Markdown. The HTML path uses lxml directly: parsing
with BeautifulSoup costs about 19x more on the same pages (see docs/architecture.md), and
the output does not depend on which of the two built the tree.

Pipeline for HTML:
1. parse; drop scripts, styles, hidden elements, forms controls;
2. drop page chrome (nav, header, footer, banners...) unless it holds real sentences;
3. walk the tree once into raw blocks (paragraphs, list items, table rows, headings),
   remembering which element each block came from;
4. pick the policy container: the site's selector, else the element whose blocks score
   best (sentence text counts for it, links and short fragments against it);
5. find headings that are not tagged as such (bold-only lines, numbered lines, title lines);
6. group blocks into sections under their heading path.
"""

from __future__ import annotations

import html as htmlmod
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from .data import load_table
from .models import Block, Document, Section
from .textutil import WORD, clean, count_words

DEFAULT_BUDGET_S = 20.0
_OVER_BUDGET = "the page took too long to normalize (over the per-page time budget, settings.normalize_budget)"
# libxml2 stops reading HTML nested deeper than this and silently drops the rest of the page.
MAX_DEPTH = 2048


class NormalizeError(Exception):
    """The page cannot be turned into policy text (too slow, not a document...)."""


@dataclass
class RawBlock:
    """A block before headings are settled: what the walker or a text parser saw."""

    kind: str  # "h", "p", "li", "row"
    text: str
    level: int = 0  # headings: 1-6
    depth: int = 0  # list items: nesting
    cells: tuple[str, ...] = ()
    bold: bool = False  # all of its text is bold / strong
    hint: int = 0  # heading level suggested by markup (class "h2", font size rank)
    link_words: int = 0
    owner: object = None  # the element that produced it (HTML only)
    order: int = 0


@lru_cache(maxsize=1)
def _chrome() -> dict:
    data = load_table("chrome.toml")
    return {
        "banner": re.compile("|".join(f"(?:{p})" for p in data["banner_attr"]), re.I),
        "banner_max_words": data["banner_max_words"],
        "roles": set(data["chrome_roles"]),
        "tags": set(data["chrome_tags"]),
        "chrome_max": data["chrome_max_sentence_words"],
        "noise": re.compile("|".join(f"(?:{p})" for p in data["noise_block"]), re.I),
    }


# --------------------------------------------------------------------------------------
# Entry points


def detect_format(text: str) -> str:
    """ "html", "markdown" or "text", from the content itself (not the file name)."""
    head = text[:4000].lower()
    if re.search(r"<!doctype html|<html[\s>]|<body[\s>]|<head[\s>]", head):
        return "html"
    tags = len(re.findall(r"</(?:p|div|h[1-6]|li|td|span|section|article|a)>", text[:50000], re.I))
    if tags >= 3:
        return "html"
    md = 0
    md += 3 * len(re.findall(r"^#{1,6} \S", text, re.M))
    md += 2 * len(re.findall(r"^\S.*\n(?:=+|-+)[ \t]*$", text, re.M))
    md += len(re.findall(r"\[[^\]\n]+\]\([^)\s]+(?:\s+\"[^\"\n]*\")?\)", text))
    md += len(re.findall(r"^\s*\*   \S", text, re.M))
    md += len(re.findall(r"^\s*\|.*\|\s*$", text, re.M))
    md += len(re.findall(r"\*\*[^*\n]+\*\*", text))
    md += 2 * len(re.findall(r"^\d+\\\. ", text, re.M))
    return "markdown" if md >= 3 else "text"


def normalize(
    text: str,
    *,
    fmt: str | None = None,
    selector: str | None = None,
    remove: Iterable[str] = (),
    lang: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    canonical: bool = False,
) -> Document:
    """Turn a page (HTML, Markdown or text) into a `Document` of its policy text.

    `canonical=True` reads Markdown that watcher itself wrote (stored versions): its
    headings are already settled, so they are taken as written and the round trip
    `normalize(to_markdown(doc), fmt="markdown", canonical=True)` gives `doc` back.
    """
    fmt = fmt or detect_format(text)
    deadline = time.monotonic() + budget_s
    _heading_words.cache_clear()  # a per-page memo: no page is faster for resembling the last one
    title, page_lang = "", ""
    if fmt == "html":
        title, page_lang, raw = html_blocks(text, selector=selector, remove=remove, deadline=deadline)
    elif fmt == "markdown":
        try:
            raw = markdown_blocks(text)
        except RecursionError:  # nested list parsing recurses once per level
            raise NormalizeError("the Markdown nests its lists too deeply to read (hundreds of levels)") from None
    else:
        raw = text_blocks(text)
    if not canonical:
        raw = [b for b in raw if not _is_noise(b)]
        raw = find_headings(raw)
    doc_lang = (lang or page_lang or guess_lang(" ".join(b.text for b in raw[:200]))).lower()[:2]
    if not title:
        title = next((b.text for b in raw if b.kind == "h"), "")
    return build_document(title, doc_lang, raw)


def from_markdown(markdown: str, lang: str | None = None) -> Document:
    """A stored version (watcher's canonical Markdown) back into a Document."""
    return normalize(markdown, fmt="markdown", lang=lang, canonical=True)


def _is_noise(b: RawBlock) -> bool:
    if b.kind == "row":
        return not any(c for c in b.cells)
    if not b.text or not WORD.search(b.text):
        return True
    return len(b.text) < 200 and bool(_chrome()["noise"].search(b.text))


# --------------------------------------------------------------------------------------
# HTML

_DROP_ALWAYS = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "math",
    "iframe",
    "object",
    "embed",
    "canvas",
    "video",
    "audio",
    "picture",
    "img",
    "source",
    "track",
    "select",
    "option",
    "input",
    "textarea",
    "link",
    "meta",
    "head",
    "map",
    "area",
    "title",
    "base",
    "param",
    "datalist",
    "progress",
    "meter",
}
_BLOCK = {
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "td",
    "th",
    "ul",
    "caption",
    "legend",
    "html",
    "br",
    "button",
    "label",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BOLD = {"b", "strong"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_CLASS_LEVEL = re.compile(r"(?:^|[-_ ])h([1-6])(?:$|[-_ ])|heading[-_]?([1-6])|title[-_]?h?([1-6])", re.I)
_FONT_SIZE = re.compile(r"font-size\s*:\s*([\d.]+)\s*(px|pt|em|rem)", re.I)
_BULLET = re.compile(r"^\s*[•·▪▫◦‣∙●○■□➢➤►▶✓✔–—*-]\s*(?=\S)")


def _parse_html(text: str) -> etree._Element:
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    try:  # lxml stops reading at a lone surrogate and drops the rest
        text.encode("utf-8")  # fails only on one, and runs ~3x faster than searching for it
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    # lxml.etree's parser, not lxml.html's: the same tree, without a Python class lookup for
    # every element proxy (~5% of parsing a page, issue 10); text_content() is _text() here
    parser = etree.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True, recover=True)
    try:
        root = _document(text, parser)
    except (etree.ParserError, ValueError) as exc:
        if not text.strip():
            raise NormalizeError("the page is empty") from exc
        root = _document(f"<html><body><p>{htmlmod.escape(text)}</p></body></html>", etree.HTMLParser())
    if any("excessive depth" in e.message.lower() for e in parser.error_log):
        # libxml2 drops everything past that depth: an error beats a silently truncated policy
        raise NormalizeError(
            f"the page's markup is nested more than {MAX_DEPTH:,} elements deep; the HTML parser cannot read it whole"
        )
    return root


_SURROGATE = re.compile("[\ud800-\udfff]")
_text = etree.XPath("string()")  # what lxml.html's text_content() runs


def _document(text: str, parser: etree.HTMLParser) -> etree._Element:
    """lxml.html.document_fromstring with a plain lxml.etree parser."""
    root = etree.fromstring(text, parser)
    if root is None:
        raise etree.ParserError("Document is empty")
    return root


def _attr_text(el: etree._Element) -> str:
    if not el.keys():  # most elements have no attributes: one call instead of four lookups
        return ""
    get = el.get
    return " ".join(filter(None, (get("id"), get("class"), get("aria-label"), get("data-testid"))))


def _is_hidden(el: etree._Element) -> bool:
    hidden = el.get("hidden")
    if hidden is not None and hidden != "until-found":
        return True
    style = el.get("style")
    return bool(style and _HIDDEN_STYLE.search(style))


def _sentence_words(el: etree._Element) -> tuple[int, int]:
    """(words of non-link text in sentence-like runs, words inside links) under `el`."""
    link = sum(count_words(_text(a)) for a in el.iter("a"))
    total = count_words(_text(el))
    return max(0, total - link), link


def _prune(root: etree._Element, remove: Iterable[str], deadline: float | None = None) -> None:
    """Drop what is never policy text, in place."""
    chrome = _chrome()

    def check(steps: int) -> None:
        if deadline is not None and steps and steps % 1024 == 0 and time.monotonic() > deadline:
            raise NormalizeError(_OVER_BUDGET)

    doomed: list[etree._Element] = []
    for sel in remove:
        doomed.extend(_select(root, sel))
    # ids that a toggle opens (aria-controls): a hidden element with one of them is collapsed content
    controlled = {c for v in root.xpath("//@aria-controls") for c in str(v).split()}
    for steps, el in enumerate(root.iter()):
        if not steps & 1023:  # a call per element cost ~10% of pruning
            check(steps)
        tag = el.tag
        if not isinstance(tag, str):
            doomed.append(el)
            continue
        tag = tag.lower()
        bare = not el.keys()  # no attributes (most elements): neither hidden nor a toggle
        control = tag == "button" and (bare or not (el.get("aria-expanded") or el.get("aria-controls")))
        if tag in _DROP_ALWAYS or control or (not bare and _is_hidden(el) and not _collapsed_panel(el, controlled)):
            doomed.append(el)
    _drop_all(doomed)
    doomed = []
    # (banner-like, screen-reader-only) per id/class string: pages repeat a few class lists
    # on thousands of elements, and the banner pattern is long (issue 10)
    named: dict[str, tuple[bool, bool]] = {}
    chrome_tags, chrome_roles = chrome["tags"], chrome["roles"]
    for steps, el in enumerate(root.iter()):
        if not steps & 1023:
            check(steps)
        tag = el.tag
        if not isinstance(tag, str) or tag in ("html", "body"):
            continue
        tag = tag.lower()
        if el.keys():
            attrs = _attr_text(el)
            role = (el.get("role") or "").lower()
        else:
            attrs = role = ""
        if attrs:
            hit = named.get(attrs)
            if hit is None:
                hit = named[attrs] = (bool(chrome["banner"].search(attrs)), bool(_SR_ONLY.search(attrs)))
            banner, sr_only = hit
            if banner and count_words(_text(el)) <= chrome["banner_max_words"]:
                doomed.append(el)
                continue
            if sr_only and count_words(_text(el)) <= 12:
                doomed.append(el)
                continue
        if tag in chrome_tags or role in chrome_roles:
            plain, link = _sentence_words(el)
            if tag == "header" and _in_content(el):
                # an article's own header holds its title and stated date: keep unless it is a menu
                if link > plain:
                    doomed.append(el)
            elif tag == "footer" and _in_content(el) and link <= plain and _states_a_date(el):
                pass  # an article footer saying "Last updated: ..."
            elif plain < chrome["chrome_max"] or link > plain:
                doomed.append(el)
    _drop_all(doomed)


_PANEL = re.compile(r"accordion|collaps|expand|panel|faq|tab-?pane|toggle|disclosure|read-?more|show-?more", re.I)
_OVERLAY = re.compile(r"modal|popup|pop-up|overlay|dialog|lightbox|drawer|offcanvas|newsletter|subscribe|toast", re.I)


def _collapsed_panel(el: etree._Element, controlled: set[str]) -> bool:
    """A hidden element that is collapsed policy text (an accordion panel shown on click), not a
    hidden modal, menu or banner: opened by a toggle or named like a panel, and holding sentences."""
    attrs = _attr_text(el)
    if (el.get("role") or "").lower() in ("dialog", "alertdialog") or _OVERLAY.search(attrs):
        return False
    if el.get("id") not in controlled and not _PANEL.search(attrs):
        return False
    plain, link = _sentence_words(el)
    return plain >= 8 and link <= plain  # at least a sentence, and not a list of links


_SR_ONLY = re.compile(
    r"(?:^|\s)(?:sr-only|visually-?hidden|screen-?reader(?:-text|-only)?|a11y-hidden|assistive-text|offscreen|hidden-visually)(?:\s|$)",
    re.I,
)


def _states_a_date(el: etree._Element) -> bool:
    from .dates import stated_dates_in

    return bool(stated_dates_in([clean(_text(el))]))


def _in_content(el: etree._Element) -> bool:
    return any(
        a.tag in ("article", "main") or (a.get("role") or "").lower() == "main"
        for a in el.iterancestors()
        if isinstance(a.tag, str)
    )


def _drop_all(doomed: list[etree._Element]) -> None:
    for el in doomed:
        parent = el.getparent()
        if parent is None:
            continue
        tail = el.tail
        if tail and tail.strip():
            prev = el.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + " " + tail
            else:
                parent.text = (parent.text or "") + " " + tail
        parent.remove(el)


def _select(root: etree._Element, selector: str) -> list[etree._Element]:
    from cssselect import SelectorError
    from lxml.cssselect import CSSSelector

    try:
        return CSSSelector(selector, translator="html")(root)
    except SelectorError as exc:  # syntax errors, and selectors lxml cannot run (":hover")
        raise NormalizeError(f"invalid CSS selector {selector!r}: {exc}") from exc


def _is_data_table(table: etree._Element) -> bool:
    if (table.get("role") or "").lower() in ("presentation", "none"):
        return False
    rows = [tr for tr in table.iter("tr")]
    if not rows:
        return False
    if any(t is not table for t in table.iter("table")):
        return False
    widest = max(sum(1 for c in tr if isinstance(c.tag, str) and c.tag in ("td", "th")) for tr in rows)
    return widest >= 2


class _Walker:
    """One pass over the tree that emits raw blocks, each tagged with its owner element."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.blocks: list[RawBlock] = []
        self.buf: list[tuple[str, bool, bool]] = []  # (text, bold, in_link)
        self.ctx: list[tuple[str, object, int]] = []  # (kind, element, level/depth)
        self.bold = 0
        self.bold_els: set[etree._Element] = set()  # elements that made the text bold
        self.link = 0
        self.cell: list[str] | None = None
        self.row: list[str] | None = None
        self.table_depth = 0  # nesting of data tables
        self.list_depth = 0
        self.hints: dict[object, int] = {}

    def add(self, text: str | None) -> None:
        if text:
            if self.cell is not None:
                self.cell.append(text)
            else:
                self.buf.append((text, self.bold > 0, self.link > 0))

    def flush(self) -> None:
        if not self.buf:
            return
        pieces, self.buf = self.buf, []
        joined = "".join([p for p, _, _ in pieces])
        if joined.isspace():  # half the runs between block tags are indentation: clean() gives ""
            return
        text = clean(joined)
        if not text:
            return
        visible = [(p, b) for p, b, _ in pieces if not p.isspace()]  # pieces are never empty
        bold = bool(visible) and all(b for p, b in visible if WORD.search(p))
        link_words = sum(count_words(p) for p, _, ln in pieces if ln)
        kind, owner, level = self._context()
        if kind == "h":
            self.blocks.append(RawBlock("h", text, level=level, owner=owner, link_words=link_words))
        elif kind == "li":
            self.blocks.append(RawBlock("li", text, depth=level, owner=owner, bold=bold, link_words=link_words))
        else:
            self.blocks.append(
                RawBlock("p", text, owner=owner, bold=bold, link_words=link_words, hint=self.hints.get(owner, 0))
            )

    def _context(self) -> tuple[str, object, int]:
        for kind, el, level in reversed(self.ctx):
            if kind in ("h", "li"):
                return kind, el, level
            if kind == "block":
                return "p", el, 0
        return "p", None, 0

    def walk(self, root: etree._Element) -> list[RawBlock]:
        data_tables: dict[etree._Element, bool] = {}
        for steps, (event, el) in enumerate(etree.iterwalk(root, events=("start", "end")), 1):
            if steps % 4096 == 0 and time.monotonic() > self.deadline:
                raise NormalizeError(_OVER_BUDGET)
            tag = el.tag
            tag = tag.lower() if isinstance(tag, str) else ""
            if event == "start":
                self._start(el, tag, data_tables)
            else:
                self._end(el, tag, data_tables)
                self.add(el.tail)
        self.flush()
        return self.blocks

    def _start(self, el: etree._Element, tag: str, data_tables: dict) -> None:
        if tag == "table":
            is_data = self.table_depth == 0 and self.cell is None and _is_data_table(el)
            data_tables[el] = is_data
            if is_data:
                self.flush()
                self.table_depth += 1
        if self.table_depth and self.cell is None and tag == "tr":
            self.row = []
        elif self.table_depth and self.row is not None and tag in ("td", "th") and self.cell is None:
            self.cell = []
        elif self.cell is not None:
            if tag in _BLOCK:
                self.cell.append(" ")
        elif tag in _BLOCK:
            self.flush()
            bare = not el.keys()  # no attributes (most elements): no role, class or style to read
            if tag in _HEADINGS:
                self.ctx.append(("h", el, _HEADINGS[tag]))
            elif not bare and (el.get("role") or "").lower() == "heading":
                self.ctx.append(
                    ("h", el, int(el.get("aria-level") or 2) if (el.get("aria-level") or "").isdigit() else 2)
                )
            elif tag == "li":
                self.ctx.append(("li", el, max(0, self.list_depth - 1)))
            elif tag in ("ul", "ol", "menu", "dir"):
                self.list_depth += 1
                self.ctx.append(("list", el, 0))
            elif tag == "br":
                self.ctx.append(("br", el, 0))
            else:
                self.ctx.append(("block", el, 0))
                hint = 0 if bare else _level_hint(el)
                if hint:
                    self.hints[el] = hint
        if tag in _BOLD or (tag in ("span", "div", "p", "font") and _style_bold(el)):
            self.bold += 1
            self.bold_els.add(el)
        if tag == "a":
            self.link += 1
        self.add(el.text)

    def _end(self, el: etree._Element, tag: str, data_tables: dict) -> None:
        if el in self.bold_els:  # decided once, at the start tag
            self.bold -= 1
            self.bold_els.discard(el)
        if tag == "a":
            self.link -= 1
        if self.table_depth and self.cell is not None and tag in ("td", "th"):
            text = clean("".join(self.cell))
            self.cell = None
            if self.row is not None:
                self.row.append(text)
            return
        if self.cell is not None:
            if tag in _BLOCK:
                self.cell.append(" ")
            return
        if self.table_depth and tag == "tr" and self.row is not None:
            row, self.row = self.row, None
            if any(row):
                self.blocks.append(RawBlock("row", " | ".join(c for c in row if c), cells=tuple(row), owner=el))
            return
        if tag == "table" and data_tables.get(el):
            self.table_depth -= 1
            return
        if tag in _BLOCK and not (self.table_depth and tag in ("tr", "td", "th", "tbody", "thead", "tfoot")):
            self.flush()
            if self.ctx and self.ctx[-1][1] is el:
                kind = self.ctx.pop()[0]
                if kind == "list":
                    self.list_depth -= 1


_BOLD_STYLE = re.compile(r"font-weight\s*:\s*(bold|[6-9]00)", re.I)


def _style_bold(el: etree._Element) -> bool:
    style = el.get("style")
    return bool(style and _BOLD_STYLE.search(style))


def _level_hint(el: etree._Element) -> int:
    """A heading level suggested by class names ("title-h2") or a large inline font size."""
    cls = el.get("class") or ""
    m = _CLASS_LEVEL.search(cls)
    if m:
        return int(next(g for g in m.groups() if g))
    style = el.get("style") or ""
    m = _FONT_SIZE.search(style)
    if m:
        size = float(m.group(1)) * (16 if m.group(2) in ("em", "rem") else 1.333 if m.group(2) == "pt" else 1)
        if size >= 26:
            return 1
        if size >= 20:
            return 2
        if size >= 17:
            return 3
    return 0


def html_blocks(
    text: str, *, selector: str | None = None, remove: Iterable[str] = (), deadline: float | None = None
) -> tuple[str, str, list[RawBlock]]:
    """Parse HTML and return (title, lang, blocks of the policy text)."""
    deadline = deadline if deadline is not None else time.monotonic() + DEFAULT_BUDGET_S
    root = _parse_html(text)
    title_el = root.find(".//title")
    title = clean(_text(title_el)) if title_el is not None else ""
    lang = (root.get("lang") or root.get("xml:lang") or "").split("-")[0].lower()
    if selector:
        picked = _select(root, selector)
        if not picked:
            raise NormalizeError(f"the selector {selector!r} matches nothing on this page")
        body = etree.Element("body")
        for el in picked:
            if not any(a in picked for a in el.iterancestors()):
                body.append(_copy(el))
        root = body
    _prune(root, remove, deadline)
    body = root if root.tag == "body" else (root.find("body") if root.find("body") is not None else root)
    blocks = _Walker(deadline).walk(body)
    for i, b in enumerate(blocks):
        b.order = i
    blocks = _bullets_to_items(blocks)
    if not selector:
        blocks = _main_blocks(body, blocks, deadline)
    return title, lang, blocks


def _copy(el: etree._Element) -> etree._Element:
    import copy

    el = copy.deepcopy(el)
    el.tail = None
    return el


def _bullets_to_items(blocks: list[RawBlock]) -> list[RawBlock]:
    for b in blocks:
        if b.kind == "p" and _BULLET.match(b.text) and not re.match(r"^\s*[-–—*]\s*\d", b.text):
            b.kind = "li"
            b.text = _BULLET.sub("", b.text, count=1)
    return blocks


# --- choosing the policy container ------------------------------------------------------

_SENTENCE_PUNCT = re.compile(r"[.;:!?»)\"”]\s|[.;:!?»)\"”]$")


def _block_score(b: RawBlock) -> tuple[float, float]:
    """(good, bad) words of a block: sentences count for the container, links and fragments against."""
    n = _heading_words(b.text)
    plain = max(0, n - b.link_words)
    if b.kind == "row":
        return float(n), 0.0
    if b.kind == "h":
        return min(plain, 12) * 0.5, b.link_words * 0.5
    if plain >= 10 and _SENTENCE_PUNCT.search(b.text):
        return float(plain), float(b.link_words)
    if plain >= 6:
        return plain * 0.5, float(b.link_words)
    return 0.0, float(b.link_words + 0.5 * plain + 1)


def _main_blocks(body: etree._Element, blocks: list[RawBlock], deadline: float | None = None) -> list[RawBlock]:
    """Keep the blocks of the element that best holds the policy (see module docstring)."""
    if not blocks:
        return blocks
    # per element: [good words, bad words, first block, last block] of the blocks it holds
    sums: dict[etree._Element, list] = {}
    for b in blocks:
        if b.owner is None:
            continue
        g, x = _block_score(b)
        acc = sums.get(b.owner)
        if acc is None:
            sums[b.owner] = [g, x, b.order, b.order]
        else:
            acc[0] += g
            acc[1] += x
            acc[3] = b.order
    # Sum each element's blocks into its ancestors in one bottom-up pass (reversed document
    # order visits children before parents): walking every block's ancestor chain instead is
    # O(blocks x depth) and took minutes on deeply nested pages.
    for steps, el in enumerate(reversed(list(body.iter())), 1):
        if deadline is not None and steps % 4096 == 0 and time.monotonic() > deadline:
            raise NormalizeError(_OVER_BUDGET)
        acc = sums.get(el)
        if acc is None or el is body:
            continue
        parent = el.getparent()
        if parent is None:
            continue
        up = sums.get(parent)
        if up is None:
            sums[parent] = acc.copy()
        else:
            up[0] += acc[0]
            up[1] += acc[1]
            up[2] = min(up[2], acc[2])
            up[3] = max(up[3], acc[3])
    whole = sums.get(body)
    total_good = (whole[0] if whole else 0.0) or sum(_block_score(b)[0] for b in blocks)
    if total_good <= 0:
        return blocks
    best, best_score = body, (whole[0] - whole[1] if whole else 0.0)
    for el, (g, x, _, _) in sums.items():
        if g < 0.25 * total_good:
            continue
        s = g - x
        # prefer the deeper element on near ties: the parent only adds chrome
        if s > best_score + 1e-9 or (abs(s - best_score) <= 1e-9 and _depth(el) > _depth(best)):
            best, best_score = el, s
    lo, hi = sums[best][2:] if best in sums else (0, len(blocks) - 1)
    inside = set(best.iter())
    kept = [b for b in blocks if lo <= b.order <= hi and b.owner in inside]
    # The title and stated date often sit just above the container (a page header).
    lead = _lead_in(blocks, lo)
    return lead + kept


def _depth(el: etree._Element) -> int:
    return sum(1 for _ in el.iterancestors())


def _lead_in(blocks: list[RawBlock], start: int) -> list[RawBlock]:
    """What sits just above the container but belongs to the policy: the page title (the last
    h1 before it, with the short lines that follow) and a stated-date line right above either
    ("Updated: 4 June 2026" is often set above the title, outside the article)."""
    from .dates import stated_dates_in

    h1 = None
    for b in blocks[:start]:
        if b.kind == "h" and b.level == 1:
            h1 = b.order
    lead: list[RawBlock] = []
    if h1 is not None:
        lead = [b for b in blocks[h1:start] if b.link_words * 2 < max(1, _heading_words(b.text))]
        if sum(_heading_words(b.text) for b in lead) > 80:
            lead = []
    first = lead[0].order if lead else start
    above = [
        b
        for b in blocks[max(0, first - 2) : first]
        if b.kind == "p" and _heading_words(b.text) <= 12 and stated_dates_in([b.text])
    ]
    return above + lead


# --------------------------------------------------------------------------------------
# Markdown

_MD_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_MD_BREAK = re.compile(r"^ {0,3}(?:(?:[-*_=][ \t]*){3,})$")
_MD_ITEM = re.compile(r"^(?P<lead> {0,12})(?P<marker>[-*+]|(?P<num>\d{1,3})[.)])(?:(?P<gap>[ ]+)(?P<rest>.*)|[ ]*$)")
_MD_ROW = re.compile(r"^\s*\|.*\|\s*$")
_MD_SEP_ROW = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")


_MD_INLINE = re.compile(r"[\\`*_\[\]<>&!]")


def strip_inline_markdown(text: str) -> str:
    """Markdown inline syntax to plain text: links to their text, emphasis and escapes removed."""
    if not _MD_INLINE.search(text):
        return clean(text)  # most lines hold no syntax at all: skip the dozen substitutions
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", "", text)
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.I)
    for _ in range(2):  # nested [[text](a)](b)
        text = re.sub(
            r"(?<!\\)\[((?:[^\[\]]|\\\[|\\\])*)(?<!\\)\]\((?:[^()\s]|\([^)]*\))*(?:\s+\"[^\"]*\")?\)", r"\1", text
        )
    text = re.sub(r"(?<!\\)\[((?:[^\[\]])*)(?<!\\)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"(?<!\\)<((?:https?|mailto):[^>\s]+)>", r"\1", text)
    text = re.sub(r"(?<!\\)<([^>\s@]+@[^>\s@]+)>", r"\1", text)
    text = re.sub(r"(?<!\\)</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>", " ", text)
    text = re.sub(r"(?<!\\)`+([^`]*)`+", r"\1", text)
    text = re.sub(r"(?<![\\\w*])(\*\*\*|\*\*|\*|___|__)(?=\S)(.+?)(?<=\S)(?<!\\)\1(?![\w*])", r"\2", text)
    text = re.sub(r"(?<![\\\w_])_(?=\S)(.+?)(?<=\S)(?<!\\)_(?![\w_])", r"\1", text)
    text = re.sub(r"(?<![\\\w*])(\*\*\*|\*\*|\*|___|__)(?=\S)(.+?)(?<=\S)(?<!\\)\1(?![\w*])", r"\2", text)
    # escapes and entities in one left-to-right pass: "\&amp;" is the text "&amp;", not "&"
    text = _MD_ESCAPE_OR_ENTITY.sub(lambda m: m.group(1) or htmlmod.unescape(m.group(0)), text)
    return clean(text)


_MD_ESCAPE_OR_ENTITY = re.compile(r"\\([!-/:-@\[-`{-~])|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _md_bold(text: str) -> bool:
    t = text.strip()
    return bool(re.fullmatch(r"(\*\*|__)(?=\S).+(?<=\S)\1[:.]?", t)) and t.count("**") <= 2


def markdown_blocks(text: str) -> list[RawBlock]:
    """Parse the Markdown watcher writes and the Markdown Open Terms Archive publishes.

    List items are containers (CommonMark): their indented content is parsed again, so an
    accordion exported as "*   Title" followed by an indented heading and paragraphs gives
    a list item, a heading and paragraphs rather than one giant item.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _md_parse(lines, 0)


def _indent(line: str) -> int:
    """Leading spaces (callers expand tabs first)."""
    return len(line) - len(line.lstrip(" "))


def _md_parse(lines: list[str], depth: int) -> list[RawBlock]:
    blocks: list[RawBlock] = []
    para: list[str] = []
    in_fence = False

    def end_para() -> None:
        if para:
            raw = " ".join(para)
            blocks.append(RawBlock("p", strip_inline_markdown(raw), bold=_md_bold(raw)))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i].replace("\t", "    ")
        i += 1
        if _MD_FENCE.match(line):
            end_para()
            in_fence = not in_fence
            continue
        if in_fence:
            if line.strip():
                blocks.append(RawBlock("p", clean(line)))
            continue
        stripped = re.sub(r"^(>\s?)+", "", line.strip())
        if not stripped:
            end_para()
            continue
        m = _MD_ATX.match(stripped)
        if m:
            end_para()
            heading = strip_inline_markdown(m.group(2) or "")
            if heading:
                blocks.append(RawBlock("h", heading, level=len(m.group(1))))
            continue
        if _MD_SETEXT.match(line) and para:
            level = 1 if stripped.startswith("=") else 2
            heading = strip_inline_markdown(" ".join(para))
            para.clear()
            if heading:
                blocks.append(RawBlock("h", heading, level=level))
            continue
        if _MD_BREAK.match(line):
            end_para()
            continue
        if _MD_ROW.match(line):
            end_para()
            if not _MD_SEP_ROW.match(line):
                cells = tuple(
                    strip_inline_markdown(
                        re.sub(r"(?:^|<br\s*/?>)\s*(?:[-*+]|\d+\.)\s{1,4}(?=\S)", " ", c.strip(), flags=re.I)
                    )
                    for c in re.split(r"(?<!\\)\|", stripped.strip().strip("|"))
                )
                blocks.append(RawBlock("row", " | ".join(c for c in cells if c), cells=cells))
            continue
        m = _MD_ITEM.match(line)
        # an ordered marker other than 1 cannot interrupt a paragraph (CommonMark)
        if m and not (para and m.group("num") and m.group("num") != "1"):
            end_para()
            offset = len(m.group("lead")) + len(m.group("marker"))
            gap = len(m.group("gap") or "")  # "-" alone on a line is an empty item
            offset += gap if 1 <= gap <= 4 else 1
            body = [m.group("rest") or ""]
            while i < len(lines):
                nxt = lines[i].replace("\t", "    ")
                if not nxt.strip():
                    ahead = next((ln for ln in lines[i + 1 :] if ln.strip()), None)
                    if ahead is None or _indent(ahead.replace("\t", "    ")) < offset:
                        break
                    body.append("")
                elif _indent(nxt) >= offset:
                    body.append(nxt[offset:])
                elif body[-1].strip() and not (
                    _MD_ITEM.match(nxt) or _MD_ATX.match(nxt.strip()) or _MD_ROW.match(nxt) or _MD_BREAK.match(nxt)
                ):
                    body.append(nxt.strip())  # lazy continuation of the item's paragraph
                else:
                    break
                i += 1
            sub = _md_parse(body, 0)
            first = sub.pop(0) if sub and sub[0].kind == "p" else None
            if first is not None:
                blocks.append(RawBlock("li", first.text, depth=depth, bold=first.bold))
            for b in sub:
                if b.kind == "li":
                    b.depth += depth + 1
                blocks.append(b)
            continue
        para.append(stripped)
    end_para()
    return blocks


# --------------------------------------------------------------------------------------
# Plain text

_TEXT_BULLET = re.compile(r"^\s*(?:[-*•·▪◦‣●○■–]|\(?[a-z]\)|\(?[ivx]{1,4}\))\s+(?=\S)")
_TEXT_NUM_ITEM = re.compile(r"^\s+\d{1,3}[.)]\s+(?=\S)")


def text_blocks(text: str) -> list[RawBlock]:
    """Plain text: one block per line, or per paragraph when the lines are hard-wrapped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks = [c for c in re.split(r"\n[ \t]*\n", text) if c.strip()]
    lines = [ln for ln in text.split("\n") if ln.strip()]
    wrapped = _looks_wrapped(chunks, lines)
    blocks: list[RawBlock] = []
    for chunk in chunks if wrapped else lines:
        for piece in _split_items(chunk) if wrapped else [chunk]:
            m = _TEXT_BULLET.match(piece) or _TEXT_NUM_ITEM.match(piece)
            body = clean(piece[m.end() :] if m else piece)
            if not body:
                continue
            if m:
                indent = len(piece) - len(piece.lstrip())
                blocks.append(RawBlock("li", body, depth=min(indent // 4, 3)))
            else:
                blocks.append(RawBlock("p", body))
    return blocks


def _looks_wrapped(chunks: list[str], lines: list[str]) -> bool:
    """Hard-wrapped text: paragraphs separated by blank lines, long lines broken near one width."""
    multi = [c for c in chunks if c.strip().count("\n") >= 1]
    if len(multi) < max(2, len(chunks) // 4):
        return False
    widths = sorted(len(ln.rstrip()) for ln in lines)
    if not widths:
        return False
    p90 = widths[int(len(widths) * 0.9)]
    return p90 <= 100


def _split_items(chunk: str) -> list[str]:
    """Within a wrapped paragraph, each bulleted line starts a new piece."""
    out: list[str] = []
    for line in chunk.split("\n"):
        if not line.strip():
            continue
        if out and not (_TEXT_BULLET.match(line) or _TEXT_NUM_ITEM.match(line)):
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


# --------------------------------------------------------------------------------------
# Headings that markup does not tag

_NUMBERED = re.compile(
    r"^(?:(?:section|article|chapter|part|chapitre|partie|annexe|appendix|schedule)\s+)?"
    r"(\d{1,2}(?:\.\d{1,2}){0,3})\.?(?=\s|$)|^([IVX]{1,5})[.)]\s|^([A-Z])[.)]\s",
    re.I,
)
_END_PUNCT = re.compile(r"[.,;:!?]$")


@lru_cache(maxsize=16384)
def _heading_words(text: str) -> int:
    """Words in a block's text; cached, as headings, scores and lead-in ask again for the same blocks."""
    return count_words(text)


def _numbered_depth(text: str) -> int:
    m = _NUMBERED.match(text)
    if not m:
        return 0
    if m.group(1):
        return m.group(1).count(".") + 1
    return 1


def find_headings(blocks: list[RawBlock]) -> list[RawBlock]:
    """Promote untagged headings: bold-only short lines, numbered titles, title lines."""
    # headings marked up in any way (tags, bold-only lines, heading classes): then a plain title
    # line is body text, whichever of those markups a page uses (layouts must not change the text)
    has_real = any(b.kind == "h" or _bold_short(b) or b.hint for b in blocks)
    for b in blocks:
        if b.kind == "h" and (len(b.text) > 250 or _heading_words(b.text) > 40):
            b.kind, b.level = "p", 0  # a paragraph set in a heading tag
    # a line followed by a numbered title ("1. Consent" then "1.1 Commitment...") is a title too
    numbered = [b.kind == "p" and _numbered_title(b.text) for b in blocks]
    promoted: set[int] = set()
    for i, b in enumerate(blocks):
        if b.kind != "p":
            continue
        # the next body block; bold short lines are skipped whether or not they end up headings,
        # so the decision is the same on the canonical Markdown (where they are headings)
        nxt_i = next(
            (k for k in range(i + 1, min(i + 4, len(blocks))) if blocks[k].kind != "h" and not _bold_short(blocks[k])),
            None,
        )
        nxt = blocks[nxt_i] if nxt_i is not None else None
        nxt_title = nxt_i is not None and numbered[nxt_i]
        # after "...including but not limited to:", a line with no body text of its own is an
        # unbulleted list item, not a section title
        item_like = (
            i > 0
            and blocks[i - 1].kind == "p"
            and blocks[i - 1].text.endswith(":")
            and not (i + 1 < len(blocks) and _is_body(blocks[i + 1]))
        )
        level = _pseudo_heading_level(b, nxt, has_real, nxt_title, item_like)
        if level:
            b.kind, b.level = "h", level
            promoted.add(id(b))
    _nest_under_numbered(blocks, promoted)
    return blocks


def _nest_under_numbered(blocks: list[RawBlock], promoted: set[int]) -> None:
    """An unnumbered untagged title after a top-level numbered one ("5. Disclosing your data",
    then "Information we may disclose"), or after a tagged heading, is its sub-section."""
    top = 0  # level of the section such a title belongs to
    for b in blocks:
        if b.kind != "h":
            continue
        depth = _numbered_depth(b.text)
        if id(b) not in promoted:
            top = b.level  # a tagged heading: bold lines below it are its sub-sections
            continue
        if depth == 1:
            top = b.level
        elif depth == 0 and top and b.level <= top and not b.hint:
            b.level = min(6, top + 1)


def _is_body(b: RawBlock) -> bool:
    if b.kind in ("li", "row"):
        return True
    return b.kind == "p" and not b.bold and not _numbered_title(b.text) and _heading_words(b.text) >= 8


def _bold_short(b: RawBlock) -> bool:
    return b.bold and b.kind == "p" and _heading_words(b.text) <= 14


def _numbered_title(text: str) -> bool:
    n = _heading_words(text)
    return (
        bool(_numbered_depth(text))
        and 0 < n <= 12
        and not re.search(r"[,;]", text)
        and (not text.endswith(".") or n <= 6 or _title_case(text))
    )


def _title_case(text: str) -> bool:
    ws = [w for w in WORD.findall(text) if len(w) >= 4]
    return bool(ws) and sum(1 for w in ws if w[0].isupper()) / len(ws) >= 0.6


_CONTACT = re.compile(r"\S\s*(?:@|\(at\)|\[at\])\s*\w[\w-]*(?:\.|\s*\(dot\)\s*)\w|https?://|www\.\w", re.I)


def _pseudo_heading_level(
    b: RawBlock, nxt: RawBlock | None, has_real: bool, nxt_title: bool = False, item_like: bool = False
) -> int:
    text = b.text
    n = _heading_words(text)
    if n == 0 or n > 14 or len(text) > 140 or nxt is None:
        return 0
    if _CONTACT.search(text):
        return 0  # "By email: privacy@example.com" is a contact line, not a section title
    depth = _numbered_depth(text)
    ends = bool(_END_PUNCT.search(text))
    starts_upper = text[:1].isupper() or text[:1].isdigit() or text[:1] in '«"“('
    if not starts_upper:
        return 0
    if text.endswith(":") and not b.bold:
        return 0
    body_follows = nxt.kind in ("li", "row") or _heading_words(nxt.text) >= max(8, n + 3) or nxt_title
    if b.bold and (not ends or (text.endswith(":") and not has_real) or (depth and n <= 8)):
        return b.hint or (min(6, 1 + depth) if depth else 2)
    if depth and body_follows and _numbered_title(text):
        return b.hint or min(6, 1 + depth)
    if b.hint and not ends and n <= 12:
        return b.hint
    if has_real:
        return 0
    if not ends and n <= 10 and body_follows and not item_like and _title_like(text):
        return 2
    return 0


def _title_like(text: str) -> bool:
    """A title line: capitalised, not a sentence fragment ending in a connective."""
    ws = WORD.findall(text)
    if not ws:
        return False
    last = ws[-1].lower()
    if last in {
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "to",
        "for",
        "with",
        "by",
        "in",
        "on",
        "le",
        "la",
        "les",
        "de",
        "des",
        "du",
        "et",
        "ou",
        "à",
        "au",
        "aux",
        "pour",
        "par",
        "en",
        "sur",
        "avec",
    }:
        return False
    return not re.search(r"\b(?:is|are|was|were|will|may|can|must|shall|est|sont|sera|peut|doit)\b", text, re.I) or (
        text.isupper()
    )


# --------------------------------------------------------------------------------------
# Document

_FR = set(
    [
        "le",
        "la",
        "les",
        "des",
        "du",
        "une",
        "est",
        "sont",
        "pour",
        "avec",
        "dans",
        "nous",
        "vous",
        "vos",
        "votre",
        "nos",
        "notre",
        "sur",
        "par",
        "qui",
        "que",
        "aux",
        "ces",
        "cette",
    ]
)
_EN = set(
    [
        "the",
        "and",
        "are",
        "for",
        "with",
        "you",
        "your",
        "our",
        "we",
        "this",
        "that",
        "from",
        "which",
        "will",
        "may",
        "have",
        "has",
        "not",
        "their",
        "about",
    ]
)


def guess_lang(text: str) -> str:
    ws = [w.lower() for w in WORD.findall(text[:20000])]
    fr = sum(1 for w in ws if w in _FR)
    en = sum(1 for w in ws if w in _EN)
    return "fr" if fr > en else "en"


def build_document(title: str, lang: str, raw: list[RawBlock]) -> Document:
    """Group blocks under their headings; headings nest by level."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    current = Section(heading="", level=0, path=())
    for b in raw:
        if b.kind == "h":
            if current.heading or current.blocks:
                sections.append(current)
            level = max(1, min(6, b.level or 2))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, b.text))
            current = Section(heading=b.text, level=level, path=tuple(h for _, h in stack))
            continue
        if b.kind == "row":
            cells = tuple(clean(c) for c in b.cells)
            current.blocks.append(Block("row", " | ".join(c for c in cells if c), cells=cells))
        elif b.kind == "li":
            # a list cannot start deeper than one level below the item before it
            prev = current.blocks[-1] if current.blocks else None
            limit = prev.depth + 1 if prev is not None and prev.kind == "li" else 0
            current.blocks.append(Block("li", b.text, depth=min(b.depth, limit, 5)))
        else:
            current.blocks.append(Block("p", b.text))
    if current.heading or current.blocks:
        sections.append(current)
    return Document(title=clean(title), lang=lang, sections=sections)


# --------------------------------------------------------------------------------------
# Canonical Markdown

_ESCAPE_START = re.compile(r"^(#{1,6}(?=\s|$)|[-*+>](?=\s)|\d{1,3}(?=[.)](?:\s|$))|[=|])")


_ESCAPABLE = re.compile(r"[\\*`\[\]_<&]")  # every character the substitutions below can touch


def _escape(text: str) -> str:
    """Escape what our Markdown parser would read as syntax, so rendering round-trips."""
    if _ESCAPABLE.search(text):  # most blocks have none of them: skip five substitutions
        text = re.sub(r"\\(?=[!-/:-@\[-`{-~])", r"\\\\", text)
        text = re.sub(r"([*`\[\]])", r"\\\1", text)
        text = re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)
        text = re.sub(r"<(?=[a-zA-Z/!])", r"\\<", text)
        text = re.sub(r"&(?=#?\w+;)", r"\\&", text)
    m = _ESCAPE_START.match(text)
    if m:
        tok = m.group(1)
        text = tok + "\\" + text[len(tok) :] if tok[0].isdigit() else "\\" + text
    return text


def _escape_cell(text: str) -> str:
    if not text:
        return ""
    out = _escape(text)
    head = "\\|" if out.startswith("\\|") else ""  # _escape already escaped a leading pipe
    return head + out[len(head) :].replace("|", "\\|")


def to_markdown(doc: Document) -> str:
    """The canonical Markdown of a document: what snapshots store and diffs compare."""
    out: list[str] = []
    for s in doc.sections:
        if s.heading:
            out.append("#" * s.level + " " + _escape(s.heading))
            out.append("")
        prev_row = False
        for b in s.blocks:
            if b.kind == "row":
                cells = [_escape_cell(c) for c in b.cells] or [""]
                out.append("| " + " | ".join(cells) + " |")
                if not prev_row:
                    out.append("|" + "|".join(" --- " for _ in cells) + "|")
                prev_row = True
                continue
            if prev_row:
                out.append("")
                prev_row = False
            if b.kind == "li":
                out.append("  " * b.depth + "- " + _escape(b.text))
            else:
                out.append(_escape(b.text))
                out.append("")
        if prev_row:
            out.append("")
        if out and out[-1] != "":
            out.append("")
    text = "\n".join(out)
    while "\n\n\n" in text:  # runs of blank lines to one; str search, not a regex scan of the page
        text = text.replace("\n\n\n", "\n\n")
    text = text.strip("\n")
    # a list ends with a blank line before the next paragraph or heading (line by line: the
    # multi-line regex that did this scanned every character, ~5% of parsing a page)
    lines = text.split("\n")
    spaced: list[str] = []
    for line, nxt in zip(lines, [*lines[1:], ""], strict=True):
        spaced.append(line)
        if nxt[:1] not in ("", " ", "-") and line.lstrip(" ").startswith("- "):
            spaced.append("")
    text = "\n".join(spaced)
    return text + "\n" if text else ""


def document_to_json(doc: Document) -> dict:
    return {
        "title": doc.title,
        "lang": doc.lang,
        "sections": [
            {
                "heading": s.heading,
                "level": s.level,
                "path": list(s.path),
                "blocks": [
                    {
                        "kind": b.kind,
                        "text": b.text,
                        **({"depth": b.depth} if b.kind == "li" else {}),
                        **({"cells": list(b.cells)} if b.kind == "row" else {}),
                    }
                    for b in s.blocks
                ],
            }
            for s in doc.sections
        ],
    }


__all__ = [
    "NormalizeError",
    "RawBlock",
    "build_document",
    "detect_format",
    "document_to_json",
    "find_headings",
    "from_markdown",
    "guess_lang",
    "html_blocks",
    "markdown_blocks",
    "normalize",
    "strip_inline_markdown",
    "text_blocks",
    "to_markdown",
]
