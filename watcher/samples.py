"""Sample policy pages built from the bundled seed policies (for `watcher demo`, tests and bench).

A seed text is parsed once into a Document and rendered into an HTML page in one of
several layouts real sites use, wrapped in the usual chrome (menu, cookie banner,
footer, scripts) with per-request noise (build tokens, timestamps) that watcher must
ignore.
"""

from __future__ import annotations

import html
import textwrap
from functools import cache

from .data import DIR as DATA_DIR
from .models import Document
from .normalize import normalize

SEEDS = {
    "wesgar": "wesgar.txt",
    "spi-sorel-tracy": "spi-sorel-tracy.txt",
    "planiso": "planiso.txt",
    "canadian-cloud-backup": "canadian-cloud-backup.txt",
    "cantrex": "cantrex.txt",
}
LAYOUTS = ("semantic", "divs", "plain", "wrapped")


@cache
def seed_text(name: str) -> str:
    return (DATA_DIR / "demo" / SEEDS[name]).read_text("utf-8")


def seed_document(name: str, text: str | None = None) -> Document:
    return normalize(text if text is not None else seed_text(name))


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _chrome_top(token: str, lang: str, title: str, banner: bool) -> str:
    menu = ["Home", "Products", "Pricing", "About", "Blog", "Careers", "Contact"]
    links = " | ".join(f'<a href="/{m.lower()}?v={token}">{m}</a>' for m in menu)
    cookie = (
        '<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. '
        '<button>Accept all</button> <button>Reject</button> <a href="/cookies">Settings</a></div>'
        if banner
        else ""
    )
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">\n<title>{_e(title)}</title>\n'
        f'<meta name="csrf-token" content="{token}">\n<link rel="stylesheet" href="/static/site.css?build={token}">\n'
        f'<script>window.__BUILD__="{token}";window.__TS__="{token}";</script>\n</head><body>\n'
        f'<header><nav class="menu">{links}</nav></header>\n{cookie}\n'
    )


def _chrome_bottom(token: str, stamp: str) -> str:
    return (
        '\n<footer><p>© 2026 Example Inc. All rights reserved. <a href="/terms">Terms</a> · '
        f'<a href="/privacy">Privacy</a></p><p class="build">Build {token} · rendered {stamp}</p></footer>\n'
        f'<script src="/static/app.js?{token}"></script>\n</body></html>\n'
    )


def render_page(
    doc: Document,
    layout: str = "semantic",
    *,
    token: str = "0000",
    stamp: str = "2026-01-01T00:00:00Z",
    banner: bool = True,
) -> str:
    """One HTML page of the document in `layout`, with chrome and noise."""
    body: list[str] = []
    title = doc.title or next((s.heading for s in doc.sections if s.heading), "Privacy Policy")
    for s in doc.sections:
        if s.heading:
            body.append(_heading(s.heading, s.level, layout))
        in_list = False
        for b in s.blocks:
            if b.kind == "li" and layout == "semantic":
                if not in_list:
                    body.append("<ul>")
                    in_list = True
                body.append(f"<li>{_e(b.text)}</li>")
                continue
            if in_list:
                body.append("</ul>")
                in_list = False
            if b.kind == "li":
                glyph = "&bull;&nbsp;" if layout != "plain" else "• "
                body.append(
                    f'<div class="item">{glyph}{_e(b.text)}</div>'
                    if layout == "divs"
                    else f"<p>{glyph}{_e(b.text)}</p>"
                )
            elif b.kind == "row":
                cells = "".join(f"<td>{_e(c)}</td>" for c in b.cells)
                body.append(f"<table><tr>{cells}</tr></table>")
            elif layout == "divs":
                body.append(f'<div class="para"><span>{_wrap(b.text)}</span></div>')
            elif layout == "wrapped":
                body.append(f"<p>{_wrap(b.text)}</p>")
            else:
                body.append(f"<p>{_e(b.text)}</p>")
        if in_list:
            body.append("</ul>")
    inner = "\n".join(body)
    if layout == "semantic":
        main = f'<main id="content"><article class="policy">\n{inner}\n</article></main>'
    elif layout == "plain":
        side = "".join(f'<li><a href="/help/{i}?v={token}">Help topic {i}</a></li>' for i in range(1, 9))
        main = f'<div class="sidebar"><ul>{side}</ul></div>\n<div class="content">\n{inner}\n</div>'
    else:
        main = f'<div id="page"><div class="policy-body">\n{inner}\n</div></div>'
    return _chrome_top(token, doc.lang or "en", title, banner) + main + _chrome_bottom(token, stamp)


def _heading(text: str, level: int, layout: str) -> str:
    level = max(1, min(level, 6))
    if layout in ("semantic", "wrapped"):
        return f"<h{level}>{_e(text)}</h{level}>"
    if layout == "divs":
        size = {1: 28, 2: 20, 3: 17}.get(level, 16)
        return f'<div class="title-h{level}" style="font-size:{size}px"><strong>{_e(text)}</strong></div>'
    return f"<p><b>{_e(text)}</b></p>"


def _wrap(text: str) -> str:
    # break at spaces only, as a text editor would: a line break after "Sorel-" renders as a space
    lines = textwrap.wrap(text, 70, break_on_hyphens=False, break_long_words=False)
    return "\n  ".join(_e(line) for line in lines) or _e(text)


def page(
    name: str,
    layout: str = "semantic",
    *,
    text: str | None = None,
    token: str = "0000",
    stamp: str = "2026-01-01T00:00:00Z",
) -> str:
    """The seed policy `name` (optionally edited `text`) as an HTML page."""
    return render_page(seed_document(name, text), layout, token=token, stamp=stamp)
