"""Small text helpers shared by normalize, diff and classify (pure, no I/O)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Characters that render as a space or as nothing; pages swap them freely between versions.
_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t\r\n\f\v"),
    " ",
)
_INVISIBLE = dict.fromkeys(
    # zero-width characters, soft hyphens, and bidi controls: invisible formatting, never wording
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u2061\u2062\u2063\u2064\u034f"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    None,
)
_WS = re.compile(r" {2,}")

# Typographic variants folded for comparison only (snapshots keep what the page says).
_TYPO = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2033": '"',
        "\u2039": '"',
        "\u203a": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u2022": "-",
        "\u00b7": "-",
    }
)
WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)

# ASCII letters, digits and "_" (what \w is in ASCII) kept, every other byte a space
_ASCII_WORD_BYTES = bytes(c if c < 128 and (chr(c).isalnum() or c == 95) else 32 for c in range(256))


def count_words(text: str) -> int:
    """len(WORD.findall(text)), about twice as fast on ASCII text without apostrophes (most
    blocks of English pages): every block of every new page is counted (issue 10)."""
    if text.isascii() and "'" not in text:
        return len(text.encode("ascii").translate(_ASCII_WORD_BYTES).split())
    return len(WORD.findall(text))


# The same mappings as two character classes: a regex scan is ~3x faster than str.translate
# with a dict, and clean() runs on every block of every page (issue 10). The sets are
# disjoint, so mapping then deleting is the same as translating with both (plus C0/C1 controls).
_SPACE_RX = re.compile("[" + re.escape("".join(map(chr, _SPACES))) + "]")
_CONTROLS = r"\x00-\x08\x0e-\x1f\x7f"  # C0 controls other than whitespace, and DEL
_DROP_RX = re.compile("[" + re.escape("".join(map(chr, _INVISIBLE))) + _CONTROLS + r"\x80-\x9f]")  # + C1
_DROP_ASCII = re.compile(f"[{_CONTROLS}]")  # what _DROP_RX can find in ASCII text


# Whitespace outside ASCII (all of str.isspace()'s), and what _DROP_RX drops: text without any
# of them has only ASCII whitespace, and needs what ASCII text needs, plus NFC
_NON_ASCII_SPACE = "\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_UNUSUAL = re.compile("[" + _NON_ASCII_SPACE + re.escape("".join(map(chr, _INVISIBLE))) + _CONTROLS + r"\x80-\x9f]")


def clean(text: str) -> str:
    """Collapse whitespace, drop invisible and control characters; keep the wording as is."""
    if text.isascii():
        # the same for ASCII, in fewer passes (most blocks of English pages): without the
        # dropped controls, the only whitespace left is what the general path turns into spaces
        return " ".join(_DROP_ASCII.sub("", text).split())
    if not _UNUSUAL.search(text):  # curly quotes, accents: one scan instead of four (issue 10)
        return unicodedata.normalize("NFC", " ".join(text.split()))
    text = _DROP_RX.sub("", _SPACE_RX.sub(" ", text))
    text = unicodedata.normalize("NFC", text)
    return _WS.sub(" ", text).strip()


_SPACE_BEFORE = re.compile(r"\s*([.,;:!?)\]])")
_SPACE_AFTER = re.compile(r"([(\[])\s*")


def fold(text: str) -> str:
    """Comparison form: typography, case and spacing folded away (not for display)."""
    text = unicodedata.normalize("NFKC", clean(text)).translate(_TYPO).lower()
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


@lru_cache(maxsize=4096)  # one diff's blocks fit; 65,536 entries held ~80 MB after 500 changes (issue 10)
def _words(text: str) -> tuple[str, ...]:
    return tuple(WORD.findall(fold(text)))


def words(text: str) -> list[str]:
    """Lower-case word tokens of the comparison form (cached: most sentences repeat between versions)."""
    return list(_words(text))


def forget_words() -> None:
    """Empty the word cache once a diff is done: it serves the two versions of one diff, and kept
    full across a cycle's diffs it held ~17 MB in every parse worker (issue 10)."""
    _words.cache_clear()


_SENTENCE_END = re.compile(r"(?<=[.!?;])[\"'”»)]*\s+(?=[\"'“«(]*[A-ZÀ-ÖØ-Þ0-9])")
_ABBREV = re.compile(
    r"\b(?:e\.g|i\.e|etc|inc|ltd|co|corp|no|art|sec|mr|mrs|ms|dr|st|vs|cf|p|pp|para|fig|approx|u\.s|e\.u|n°)\.$",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    """Split a block into sentences, conservatively (abbreviations stay whole)."""
    out: list[str] = []
    for line in text.split("\n"):
        start = 0
        for m in _SENTENCE_END.finditer(line):
            piece = line[start : m.start()].strip()
            if piece and _ABBREV.search(piece):
                continue
            if piece:
                out.append(piece)
            start = m.end()
        tail = line[start:].strip()
        if tail:
            out.append(tail)
    return out
