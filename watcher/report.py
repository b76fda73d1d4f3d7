"""The HTML report and Atom feeds: pure page builders over rows read from a Store.

`watcher report` writes every page to a folder; `watcher serve` builds the very same pages
per request from a read-only connection, so the two never disagree. Pages are
self-contained (inline CSS and SVG; no scripts, fonts or remote assets) and link to each
other relatively with explicit `index.html`, so a report works from file:// and from any
static host. The interface is English; policy text keeps its own `lang` attribute, so a
French policy is read (and hyphenated, and spoken) as French.

Layout (the same URLs in both):
    index.html, feed.atom                  all sites; feed of material changes
    sites/<slug>/index.html, feed.atom     one site: timeline, chart, its feed
    sites/<slug>/changes/<id>.html         one change: summary, facts, diffs
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import render, times
from .errors import WatcherError
from .models import SectionChange
from .store import Store, atomic_write
from .topics import label

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_LIMIT = 200  # entries per feed; feeds are for news, the pages keep everything

REPORT_STYLE = """
body{max-width:72rem}
nav.crumbs{font-size:.9em;margin-bottom:1rem}nav.crumbs a{color:#0969da}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #8c959f}
table.sbs{table-layout:fixed}table.sbs td{white-space:pre-wrap;width:50%;border-left:3px solid #d0d7de}
.muted{color:#57606a}.err{border-color:#cf222e;color:#cf222e;font-weight:600}.ok{border-color:#1a7f37;color:#1a7f37}
.held{border-color:#8250df;color:#8250df}
section.change{margin:2rem 0;border-top:1px solid #d0d7de}
figure{margin:1rem 0}figcaption{font-size:.9em;color:#57606a}
svg .bar-material{fill:#cf222e}svg .bar-other{fill:url(#hatch)}svg text{font:11px system-ui,sans-serif;fill:#57606a}
footer{margin-top:3rem;font-size:.85em;color:#57606a}
@media print{nav.crumbs,footer{display:none}table.sbs td{border-left:1px solid #000}a{color:#000}}
"""


# ----------------------------------------------------------------------------------------
# what the pages are made of


@dataclass
class SiteInfo:
    """One site as the report sees it: identity, state and (for its own pages) its history."""

    name: str
    slug: str
    url: str
    lang: str
    state: dict[str, Any]
    versions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    last_material: dict[str, Any] | None = None
    version_count: int = 0


def slug(name: str) -> str:
    """A file- and URL-safe name; a short hash keeps two names that clean up alike apart."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "site"
    if clean == name:
        return clean
    return f"{clean}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"


def site_summary(store: Store, name: str) -> SiteInfo:
    """What the index needs about a site, without loading its whole history."""
    row = store.site_row(name) or {"url": ""}
    head = store.db.execute(
        "select count(*), (select lang from versions where site = ? order by seq desc limit 1) "
        "from versions where site = ?",
        [name, name],
    ).fetchone()
    return SiteInfo(
        name=name,
        slug=slug(name),
        url=row["url"],
        lang=head[1] or "",
        state=store.state(name),
        last_material=store.last_change(name, material_only=True),
        version_count=head[0],
    )


def site_history(store: Store, name: str) -> SiteInfo:
    """A site with its versions (text left out) and every change (sections included)."""
    info = site_summary(store, name)
    info.versions = store.versions(name, text=False)  # its last_seen is current, unlike the stored row's
    info.changes = store.changes(name)
    return info


# ----------------------------------------------------------------------------------------
# small pieces


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def _lang_attr(lang: str) -> str:
    return f' lang="{esc(lang)}"' if lang else ""


def when(at: str | None) -> str:
    """An ISO stamp as a <time> element, to the minute, in UTC."""
    if not at:
        return '<span class="muted">—</span>'
    shown = at[:16].replace("T", " ") + (" UTC" if len(at) > 10 else "")
    return f'<time datetime="{esc(at)}">{esc(shown)}</time>'


def severity_badge(severity: str | None, material: bool = True) -> str:
    if not material:
        return '<span class="badge">not material</span>'
    sev = severity or "none"
    return f'<span class="badge {esc(sev)}">severity: {esc(sev)}</span>'


def topic_badges(topics: list[str]) -> str:
    return "".join(f'<span class="badge" title="{esc(t)}">{esc(label(t))}</span>' for t in topics)


def status_badge(state: dict[str, Any]) -> str:
    """The site's health in words (never colour alone)."""
    outcome = state.get("last_outcome")
    if not state.get("last_check"):
        return '<span class="badge">not checked yet</span>'
    if outcome == "error":
        n = int(state.get("consecutive_failures") or 0)
        return (
            f'<span class="badge err">error</span> <span class="muted">{n} failed check{"s" if n != 1 else ""}'
            f" in a row: {esc(state.get('last_error') or 'unknown error')}</span>"
        )
    if state.get("held"):
        return '<span class="badge held">held</span> <span class="muted">a new version awaits confirmation</span>'
    return '<span class="badge ok">ok</span>'


def _page(title: str, body: str, *, depth: int, crumbs: list[tuple[str, str]], now: str, feed: str = "") -> str:
    """The page frame: inline CSS only, breadcrumbs, an Atom link when the page has a feed."""
    up = "../" * depth
    trail = " › ".join(f'<a href="{esc(href)}">{esc(text)}</a>' if href else esc(text) for text, href in crumbs)
    feed_link = (
        f'<link rel="alternate" type="application/atom+xml" title="{esc(title)}" href="{esc(feed)}">' if feed else ""
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n{feed_link}\n<style>{render.STYLE}{REPORT_STYLE}</style>\n</head>\n<body>\n"
        f'<nav class="crumbs" aria-label="Breadcrumb"><a href="{up}index.html">All sites</a>'
        f"{' › ' + trail if trail else ''}</nav>\n<main>\n{body}\n</main>\n"
        f"<footer>Generated by watcher at {when(now)}.</footer>\n</body>\n</html>\n"
    )


# ----------------------------------------------------------------------------------------
# pages


def index_page(sites: list[SiteInfo], *, now: str) -> str:
    rows = []
    for s in sites:
        last = s.last_material
        if last:
            change_cell = (
                f'<a href="sites/{esc(s.slug)}/changes/{last["id"]}.html">{when(last["at"])}</a>'
                f"<br>{esc(render.excerpt(last['summary'], 160))}"
            )
            sev, topics = severity_badge(last["severity"]), topic_badges(last["topics"])
        else:
            change_cell, sev, topics = '<span class="muted">none recorded</span>', "", ""
        rows.append(
            "<tr>"
            f'<th scope="row"><a href="sites/{esc(s.slug)}/index.html">{esc(s.name)}</a>'
            f'<br><small class="muted">{esc(s.url)}</small></th>'
            f"<td>{status_badge(s.state)}</td><td>{when(s.state.get('last_check'))}</td>"
            f"<td>{change_cell}</td><td>{sev}</td><td>{topics}</td><td>{s.version_count}</td></tr>"
        )
    failing = sum(1 for s in sites if s.state.get("last_outcome") == "error")
    body = (
        "<h1>Privacy policies watched</h1>\n"
        f"<p>{len(sites)} site{'s' if len(sites) != 1 else ''}"
        + (f', <span class="badge err">{failing} failing</span>' if failing else "")
        + '. <a href="feed.atom">Atom feed of material changes</a>.</p>\n'
        + (
            '<table>\n<thead><tr><th scope="col">Site</th><th scope="col">Status</th><th scope="col">Last check</th>'
            '<th scope="col">Last material change</th><th scope="col">Severity</th><th scope="col">Topics</th>'
            '<th scope="col">Versions</th></tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>"
            if sites
            else "<p>No site has been checked yet: run <code>watcher check</code>.</p>"
        )
    )
    return _page("watcher: privacy policies watched", body, depth=0, crumbs=[], now=now, feed="feed.atom")


def site_page(site: SiteInfo, *, now: str) -> str:
    by_to = {c["to_version"]: c for c in site.changes}
    rows = []
    for v in reversed(site.versions):
        c = by_to.get(v["id"])
        if c is None:
            what = '<span class="muted">first version</span>' if v["seq"] == site.versions[0]["seq"] else ""
        else:
            what = (
                f'<a href="changes/{c["id"]}.html">change #{c["id"]}</a> {severity_badge(c["severity"], c["material"])}'
                f"{topic_badges(c['topics']) if c['material'] else ''}<br>"
                f'<span class="{"" if c["material"] else "muted"}">{esc(render.excerpt(c["summary"], 240))}</span>'
            )
        rows.append(
            f'<tr><th scope="row">{v["seq"]}</th><td>{when(v["first_seen"])}</td><td>{when(v["last_seen"])}</td>'
            f"<td>{esc(v['effective_date'] or '')}</td><td>{what}</td></tr>"
        )
    material = sum(1 for c in site.changes if c["material"])
    body = (
        f"<h1>{esc(site.name)}</h1>\n"
        f'<p><a href="{esc(site.url)}" rel="noreferrer">{esc(site.url)}</a></p>\n'
        f"<p>Status: {status_badge(site.state)} · last check {when(site.state.get('last_check'))} · "
        f"{len(site.versions)} version{'s' if len(site.versions) != 1 else ''}, {len(site.changes)} change"
        f"{'s' if len(site.changes) != 1 else ''} ({material} material) · "
        '<a href="feed.atom">Atom feed</a></p>\n'
        f"{chart_svg(site.changes, site.versions)}\n"
        '<h2>Timeline</h2>\n<table>\n<thead><tr><th scope="col">Version</th><th scope="col">First seen</th>'
        '<th scope="col">Last seen</th><th scope="col">Stated date</th><th scope="col">Change</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )
    return _page(f"{site.name}: policy history", body, depth=2, crumbs=[(site.name, "")], now=now, feed="feed.atom")


def change_page(site: SiteInfo, row: dict[str, Any], *, now: str) -> str:
    change = render.change_from_row(row)
    versions = {v["id"]: v for v in site.versions}
    before_v, after_v = versions.get(row["from_version"]), versions.get(row["to_version"])
    lang = (after_v or {}).get("lang") or site.lang
    verdict = (
        f"Material change {severity_badge(change.severity)} {topic_badges(change.topics)}"
        if change.material
        else f"Changed, {severity_badge(None, False)}"
    )

    def vlabel(v: dict[str, Any] | None) -> str:
        return f"version {v['seq']} ({v['first_seen'][:10]})" if v else "an earlier version"

    parts = [
        f"<h1>{esc(site.name)}: change #{row['id']}</h1>",
        f"<p>{when(row['at'])} · from {esc(vlabel(before_v))} to {esc(vlabel(after_v))}</p>",
        f"<p><strong>{verdict}</strong></p>",
        f'<h2>Summary</h2>\n<p class="summary">{esc(change.summary)}</p>',
    ]
    if change.effective_date.get("before") != change.effective_date.get("after"):
        parts.append(
            f"<p>Stated date: {esc(change.effective_date.get('before') or 'none')} → "
            f"{esc(change.effective_date.get('after') or 'none')}</p>"
        )
    if change.facts:
        frows = "\n".join(
            f"<tr><td>{esc(label(f.topic))}</td><td>{esc(f.kind)}</td>"
            f"<td{_lang_attr(lang)}>{_fact_value(f.before, -1)}</td><td{_lang_attr(lang)}>{_fact_value(f.after, 1)}</td>"
            f"<td{_lang_attr(lang)}>{esc(f.section)}</td></tr>"
            for f in change.facts
        )
        parts.append(
            '<h2>Facts that changed</h2>\n<table class="facts">\n<thead><tr><th scope="col">Topic</th>'
            '<th scope="col">Kind</th><th scope="col">Before</th><th scope="col">After</th>'
            f'<th scope="col">Section</th></tr></thead>\n<tbody>\n{frows}\n</tbody>\n</table>'
        )
    if change.noise:
        parts.append(f'<p class="muted">Dismissed as noise: {esc(", ".join(change.noise))}.</p>')
    shown = render.interesting(change)
    parts.append(f"<h2>Changed sections ({len(shown)})</h2>")
    parts.extend(section_html(s, lang, vlabel(before_v), vlabel(after_v)) for s in shown)
    rest = [s for s in change.sections if s not in shown and s.status not in ("moved", "renumbered")]
    if rest:
        parts.append(f"<details><summary>{len(rest)} other changed section(s), not material</summary>")
        parts.extend(section_html(s, lang, vlabel(before_v), vlabel(after_v)) for s in rest)
        parts.append("</details>")
    moved = sum(1 for s in change.sections if s.status in ("moved", "renumbered"))
    if moved:
        parts.append(f'<p class="muted">{moved} section(s) moved or renumbered without new wording.</p>')
    title = f"{site.name}: change #{row['id']} ({row['at'][:10]})"
    crumbs = [(site.name, "../index.html"), (f"change #{row['id']}", "")]
    return _page(title, "\n".join(parts), depth=3, crumbs=crumbs, now=now)


def _fact_value(value: str | None, op: int) -> str:
    return render.html_mark(op, value) if value else '<span class="muted">—</span>'


def section_html(s: SectionChange, lang: str, before_label: str, after_label: str) -> str:
    """One changed section: side-by-side halves, then the inline word diff."""
    ops = render.section_ops(s)
    left, right = render.html_sides(ops)
    if s.status == "added":
        left = '<span class="muted">(not in the earlier version)</span>'
    if s.status == "removed":
        right = '<span class="muted">(no longer in the policy)</span>'
    heading = render._heading(s)
    flag = "" if s.material else ' <span class="badge">not material</span>'
    la = _lang_attr(lang)
    return (
        f'<section class="change">\n<h3><span{la}>{esc(heading)}</span> <small>({esc(s.status)})</small>'
        f"{topic_badges(s.topics)}{flag}</h3>\n"
        f'<table class="sbs">\n<caption class="sr">Side by side: before and after</caption>\n'
        f'<thead><tr><th scope="col">Before: {esc(before_label)}</th><th scope="col">After: {esc(after_label)}</th>'
        f'</tr></thead>\n<tbody><tr><td class="before"{la}>{left}</td><td class="after"{la}>{right}</td></tr></tbody>\n'
        f'</table>\n<h4>Inline</h4>\n<blockquote class="inline"{la}>{render.html_inline(ops)}</blockquote>\n</section>'
    )


def chart_svg(changes: list[dict[str, Any]], versions: list[dict[str, Any]]) -> str:
    """Changes per month (per year past four years) as an inline SVG bar chart with a text alternative."""
    if not changes:
        return '<p class="muted">No change recorded yet.</p>'
    stamps = [v["first_seen"] for v in versions] + [c["at"] for c in changes]
    first, last = min(stamps)[:7], max(stamps)[:7]
    y0, m0, y1, m1 = int(first[:4]), int(first[5:7]), int(last[:4]), int(last[5:7])
    months = (y1 - y0) * 12 + (m1 - m0) + 1
    if months < 12:  # at least a year wide, so one busy month does not fill the chart
        start = y1 * 12 + m1 - 1 - 11
        y0, m0, months = start // 12, start % 12 + 1, 12
    by_year = months > 48
    keys = (
        [str(y) for y in range(y0, y1 + 1)]
        if by_year
        else [f"{y0 + (m0 - 1 + i) // 12:04d}-{(m0 - 1 + i) % 12 + 1:02d}" for i in range(months)]
    )
    counts = {k: [0, 0] for k in keys}
    for c in changes:
        k = c["at"][:4] if by_year else c["at"][:7]
        if k in counts:
            counts[k][0 if c["material"] else 1] += 1
    peak = max(sum(v) for v in counts.values()) or 1
    width, height, pad, top = 640, 140, 24, 12
    slot = (width - 2 * pad) / len(keys)
    bar = min(40.0, max(1.0, slot * 0.8))
    scale = (height - pad - top) / peak
    bars = []
    for i, k in enumerate(keys):
        mat, other = counts[k]
        x = pad + i * slot + (slot - bar) / 2
        y = height - pad
        for n, cls, what in ((mat, "bar-material", "material"), (other, "bar-other", "not material")):
            if n:
                h = n * scale
                y -= h
                bars.append(
                    f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                    f"<title>{k}: {n} {what}</title></rect>"
                )
    material = sum(v[0] for v in counts.values())
    unit = "year" if by_year else "month"
    plural = "change" if len(changes) == 1 else "changes"
    desc = f"{len(changes)} {plural} ({material} material) between {keys[0]} and {keys[-1]}, per {unit}"
    return (
        f'<figure>\n<svg role="img" aria-label="{esc(desc)}" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">\n<title>{esc(desc)}</title>\n'
        '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="4" height="4" fill="#fff"/><line x1="0" y1="0" x2="0" y2="4" stroke="#57606a" stroke-width="2"/>'
        "</pattern></defs>\n"
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#8c959f"/>\n'
        + "\n".join(bars)
        + f'\n<text x="{pad}" y="{height - 6}">{esc(keys[0])}</text>'
        f'<text x="{width - pad}" y="{height - 6}" text-anchor="end">{esc(keys[-1])}</text>'
        f'<text x="{pad}" y="{top - 2}">max {peak} per {unit}</text>\n</svg>\n'
        f"<figcaption>Changes per {unit}: solid bars are material changes, hatched bars are changes "
        f"that are not material. {esc(desc)}.</figcaption>\n</figure>"
    )


# ----------------------------------------------------------------------------------------
# Atom


def _uuid(*parts: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "watcher:" + ":".join(parts)))


def atom_feed(
    *,
    title: str,
    feed_id: str,
    self_href: str,
    alt_href: str,
    entries: list[tuple[SiteInfo, dict[str, Any], str]],
    now: str,
) -> str:
    """An Atom 1.0 feed of material changes; each entry (site, change row, page link) carries the summary."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "en"})  # titles, summaries
    sub(feed, "title", title)
    sub(feed, "id", feed_id)
    sub(feed, "updated", max((row["at"] for _, row, _ in entries), default=now))
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_href)
    sub(feed, "link", rel="alternate", type="text/html", href=alt_href)
    author = sub(feed, "author")
    sub(author, "name", "watcher")
    sub(feed, "generator", "watcher")
    for site, row, link in entries:
        entry = sub(feed, "entry")
        topics = ", ".join(label(t) for t in row["topics"]) or "other"
        sub(entry, "title", f"{site.name}: {row['severity']} change ({topics})")
        sub(entry, "id", _uuid("change", site.name, str(row["id"]), row["at"]))
        sub(entry, "updated", row["at"])
        sub(entry, "published", row["at"])
        sub(entry, "link", rel="alternate", type="text/html", href=link)
        sub(entry, "summary", row["summary"] or "", type="text")
        for t in row["topics"]:
            sub(entry, "category", term=t, label=label(t))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def _material_entries(
    changes: list[tuple[SiteInfo, dict[str, Any]]], link: Any
) -> list[tuple[SiteInfo, dict[str, Any], str]]:
    entries = [(s, c, link(s, c)) for s, c in changes if c["material"]]
    entries.sort(key=lambda e: (e[1]["at"], e[1]["id"]), reverse=True)
    return entries[:FEED_LIMIT]


def all_feed(store: Store, material: list[tuple[SiteInfo, dict[str, Any]]], *, base: str, now: str) -> str:
    """The feed of every site over its (site, material change row) pairs; `base` ends with '/' (empty:
    links relative to the report root)."""
    entries = _material_entries(material, lambda s, c: f"{base}sites/{s.slug}/changes/{c['id']}.html")
    return atom_feed(
        title="watcher: material changes to privacy policies",
        feed_id=_uuid("feed", str(store.path.resolve())),
        self_href=f"{base}feed.atom",
        alt_href=f"{base}index.html",
        entries=entries,
        now=now,
    )


def site_feed(store: Store, site: SiteInfo, *, base: str, now: str) -> str:
    """One site's feed; `base` is the site folder's URL ending with '/' (empty: relative)."""
    entries = _material_entries([(site, c) for c in site.changes], lambda s, c: f"{base}changes/{c['id']}.html")
    return atom_feed(
        title=f"watcher: material changes to {site.name}",
        feed_id=_uuid("feed", str(store.path.resolve()), site.name),
        self_href=f"{base}feed.atom",
        alt_href=f"{base}index.html",
        entries=entries,
        now=now,
    )


# ----------------------------------------------------------------------------------------
# one page by path (serve) and every page (report)


@dataclass
class Page:
    status: int
    content_type: str
    body: str


HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
_SITE_PATH = re.compile(r"^sites/([^/]+)/(index\.html|feed\.atom|changes/(\d+)\.html)?$")


def not_found(what: str, now: str) -> Page:
    return Page(404, HTML, _page("Not found", f"<h1>Not found</h1>\n<p>{esc(what)}</p>", depth=0, crumbs=[], now=now))


def page_for(store: Store, path: str, *, base: str, now: str | None = None) -> Page:
    """The page at a report path ('', 'index.html', 'sites/<slug>/…'); `base` is the root URL for feeds."""
    now = now or times.now_iso()
    path = path.lstrip("/")
    names = {slug(n): n for n in store.site_names()}
    if path in ("", "index.html"):
        return Page(200, HTML, index_page([site_summary(store, n) for n in names.values()], now=now))
    if path == "feed.atom":
        sites = [site_summary(store, n) for n in names.values()]
        material = [(s, c) for s in sites for c in store.changes(s.name, material_only=True)]
        return Page(200, ATOM, all_feed(store, material, base=base, now=now))
    m = _SITE_PATH.match(path)
    if not m or m.group(1) not in names:
        return not_found(f"No page at /{path}.", now)
    site = site_history(store, names[m.group(1)])
    if m.group(2) in (None, "index.html"):
        return Page(200, HTML, site_page(site, now=now))
    if m.group(2) == "feed.atom":
        return Page(200, ATOM, site_feed(store, site, base=f"{base}sites/{site.slug}/", now=now))
    cid = int(m.group(3))
    row = next((c for c in site.changes if c["id"] == cid), None)
    if row is None:
        return not_found(f"{site.name} has no change #{cid}.", now)
    return Page(200, HTML, change_page(site, row, now=now))


@dataclass
class ReportStats:
    sites: int = 0
    changes: int = 0
    files: int = 0


def write_report(store: Store, out: Path, *, base_url: str = "", now: str | None = None) -> ReportStats:
    """Write the whole static report under `out`; `base_url` makes feed links absolute. A file that
    cannot be written (permissions, full disk) is a one-line WatcherError naming it."""
    now = now or times.now_iso()
    base = base_url.rstrip("/") + "/" if base_url else ""
    stats = ReportStats()
    summaries: list[SiteInfo] = []
    material: list[tuple[SiteInfo, dict[str, Any]]] = []
    for name in store.site_names():
        site = site_history(store, name)
        folder = out / "sites" / site.slug
        _write(folder / "index.html", site_page(site, now=now), stats)
        _write(
            folder / "feed.atom",
            site_feed(store, site, base=f"{base}sites/{site.slug}/" if base else "", now=now),
            stats,
        )
        for row in site.changes:
            _write(folder / "changes" / f"{row['id']}.html", change_page(site, row, now=now), stats)
            stats.changes += 1
        material += [(site, {k: v for k, v in c.items() if k != "sections"}) for c in site.changes if c["material"]]
        site.changes, site.versions = [], []  # only the index and the feed are left to write: free the history
        summaries.append(site)
        stats.sites += 1
    _write(out / "index.html", index_page(summaries, now=now), stats)
    _write(out / "feed.atom", all_feed(store, material, base=base, now=now), stats)
    return stats


def _write(path: Path, text: str, stats: ReportStats) -> None:
    publish(path, text)
    stats.files += 1


def publish(path: Path, text: str) -> None:
    """Write a file meant for sharing (report page, exported version): atomically, its folder created,
    readable by a web server (not 0600 like a temp file); failures become one line naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WatcherError(f"{exc.filename or path.parent}: cannot create the folder: {exc.strerror or exc}") from None
    try:
        atomic_write(path, text)
        os.chmod(path, 0o644)
    except OSError as exc:
        raise WatcherError(f"{path}: cannot write: {exc.strerror or exc}") from None
