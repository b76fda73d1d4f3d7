"""Is this fetch trustworthy enough to become a version? (pure)

Two kinds of doubt, two outcomes:
- the page is not the policy at all (bot challenge, error, login or "not found" page served
  with any status, a JavaScript shell with no text): the fetch is an *error*. It never
  becomes a version or a change, and counts as a failed check.
- the page is a policy but most of the previous text is gone (more than `hold_drop_ratio`
  of the words, or more than half of the sections): the new text is *held* as unconfirmed
  and refetched after `confirm_after`; it is published only if the refetch agrees, so a
  half-loaded page or a passing A/B test never reaches subscribers.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from .data import load_table
from .models import Document


@dataclass(frozen=True)
class Verdict:
    kind: Literal["ok", "error", "hold"]
    reason: str = ""
    error_kind: str = ""


OK = Verdict("ok")


@lru_cache(maxsize=1)
def _data() -> dict:
    raw = load_table("guard.toml")

    def rx(key: str) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in raw[key]), re.I)

    return {
        "max_words": raw["max_words"],
        "challenge": rx("challenge"),
        "error": rx("error"),
        "not_found": rx("not_found"),
        "login": rx("login"),
        "js_words": raw["js_shell_words"],
        "js": rx("js_shell"),
    }


def doc_words(doc: Document) -> int:
    # per block, through normalize's word-count cache: the blocks were just counted there
    from .normalize import _heading_words

    return sum(_heading_words(s.heading) for s in doc.sections) + sum(
        _heading_words(b.text) for s in doc.sections for b in s.blocks
    )


def assess_page(doc: Document, raw_html: str = "") -> Verdict:
    """Reject pages that are not a policy: challenges, errors, logins, soft 404s, JS shells."""
    data = _data()
    n = doc_words(doc)
    head = f"{doc.title}\n{doc.text[:3000]}"
    if n == 0:
        if raw_html and raw_html.lower().count("<script") >= 1:
            return Verdict("error", "the page has no text without JavaScript (a JavaScript shell)", "js-shell")
        return Verdict("error", "no policy text found on the page", "empty")
    if n <= data["max_words"]:
        if n < data["js_words"] and raw_html:
            # normalize drops forms, menus and boilerplate lines: on a near-empty page the tell
            # ("Please sign in", "Checking your browser") may only be in the raw page
            head += "\n" + _visible_text(raw_html)
        for key, what in (
            ("challenge", "a bot challenge page"),
            ("login", "a login page"),
            ("not_found", "a 'page not found' page"),
            ("error", "an error page"),
        ):
            m = data[key].search(head)
            if m:
                return Verdict("error", f"got {what} instead of the policy ({m.group(0)!r})", key.replace("_", "-"))
    if n < data["js_words"] and data["js"].search(head + raw_html[-20000:].lower()):
        return Verdict("error", "the page needs JavaScript to show its text (a JavaScript shell)", "js-shell")
    return OK


_INVISIBLE = re.compile(r"<(script|style|template)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def _visible_text(raw_html: str) -> str:
    """The words a reader would see on a small page, crudely (for pattern matching only)."""
    text = _TAG.sub(" ", _INVISIBLE.sub(" ", raw_html[:200_000]))
    return " ".join(html.unescape(text).split())[:3000]


def assess_drop(previous: Document, new: Document, ratio: float) -> Verdict:
    """Hold a version that lost most of the previous text until a refetch confirms it."""
    before, after = doc_words(previous), doc_words(new)
    if before >= 50 and after < before * (1 - ratio):
        lost = 1 - after / before
        return Verdict(
            "hold",
            f"{lost:.0%} of the policy text disappeared ({before} -> {after} words); waiting for confirmation",
            "suspicious-drop",
        )
    sb = len([s for s in previous.sections if s.heading])
    sa = len([s for s in new.sections if s.heading])
    if sb >= 6 and sa < sb * 0.5:
        return Verdict("hold", f"most sections disappeared ({sb} -> {sa}); waiting for confirmation", "suspicious-drop")
    return OK
