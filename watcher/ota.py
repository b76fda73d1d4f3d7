"""Open Terms Archive interop: service declarations to [[site]] entries, versions repositories to history.

Declarations (`declarations/<service id>.json`): `{"name": …, "terms": {"Privacy Policy":
{"fetch": URL, "select": …, "remove": …, "filter": […], "executeClientScripts": true}}}`
(older files say `documents` for `terms`). `select`/`remove` are a CSS selector, a range
selector `{startBefore|startAfter: CSS, endBefore|endAfter: CSS}`, or an array of both.
A range becomes sibling selectors (`S, S ~ *:not(E):not(E ~ *)`), exact when its start and
end share a parent; anything watcher cannot do (filter functions, client scripts, `combine`
of several pages, PDF) is reported for the service, never dropped without a word.

Versions repositories (`<service id>/<terms type>.md`, one commit per recorded version,
dated with the fetch time): each commit touching the file is a version dated by its author
date, and each consecutive pair is classified. The import is one transaction: a commit whose
file cannot be read, or a `git` that hangs, stops it with one line naming the repository and
the commit, and nothing is imported (skipping the commit would compare the versions around it
as if they were consecutive, and a rerun would never go back for it). Commits whose message starts with "Apply
technical or declaration upgrade" (or the older "Record refilter"/"Refilter") changed how
OTA extracts the text, not the policy: they are never classified or announced, but their
text becomes the new baseline (a version with a non-material change marked as a technical
upgrade), so the next real change is compared with text extracted the same way, as OTA
itself does. Imported history is not sent to subscribers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import times
from .errors import ConfigError, WatcherError

if TYPE_CHECKING:
    from .config import Site
    from .store import Store

DEFAULT_TERMS = ("Privacy Policy",)
TECHNICAL_PREFIXES = ("Apply technical or declaration upgrade", "Record refilter", "Refilter")
TECHNICAL_SUMMARY = (
    "Open Terms Archive technical or declaration upgrade: how the text is extracted changed, not the policy."
)
# Open Terms Archive terms types, to tell "Acme (Terms of Service)" from a site that merely has brackets.
TERMS_TYPES = (
    "Privacy Policy",
    "Terms of Service",
    "Cookies Policy",
    "Trackers Policy",
    "Imprint",
    "Developer Terms",
    "Community Guidelines",
    "Deceased Users",
    "Acceptable Use Policy",
    "Restricted Use Policy",
    "Commercial Terms",
    "Copyright Claims Policy",
    "Law Enforcement Guidelines",
    "Human Rights Policy",
    "In-App Purchases Policy",
    "Review Guidelines",
    "Data Processor Agreement",
    "Business Privacy Policy",
    "Seller Warranty",
    "Parent Organization Terms",
    "Service Level Agreement",
    "Vulnerability Disclosure Policy",
    "Frequently Asked Questions",
)
GIT_TIMEOUT = 300  # seconds for one git command; a clone of the whole OTA history is large, not slow
_KNOWN_KEYS = {"fetch", "select", "remove", "filter", "executeClientScripts", "combine", "validUntil"}
_RANGE_KEYS = {"startBefore", "startAfter", "endBefore", "endAfter"}


def site_name(service: str, terms: str) -> str:
    """The [[site]] name for a service's terms: the OTA service id for a privacy policy."""
    return service if terms == "Privacy Policy" else f"{service} ({terms})"


def split_site_name(name: str) -> tuple[str, str]:
    """Inverse of `site_name`: (service, terms type); a plain name is a privacy policy."""
    m = re.fullmatch(r"(.+) \(([^()]+)\)", name)
    if m and m.group(2) in TERMS_TYPES:
        return m.group(1), m.group(2)
    return name, "Privacy Policy"


# ----------------------------------------------------------------------------------------
# declarations


@dataclass
class SiteEntry:
    """One [[site]] table to append, with what of the declaration it could not carry over."""

    terms: str
    table: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class ServiceImport:
    """What became of one declaration file."""

    path: Path
    service: str
    name: str = ""
    entries: list[SiteEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per service: skipped terms, errors
    error: str | None = None


def range_to_css(r: dict[str, Any]) -> str:
    """A range selector as sibling selectors; ValueError when it has no CSS equivalent."""
    keys = set(r)
    starts, ends = keys & {"startBefore", "startAfter"}, keys & {"endBefore", "endAfter"}
    if keys - _RANGE_KEYS or len(starts) != 1 or len(ends) != 1:
        raise ValueError("needs exactly one of startBefore/startAfter and one of endBefore/endAfter")
    start_key, end_key = starts.pop(), ends.pop()
    start, end = r[start_key], r[end_key]
    if not all(isinstance(x, str) and x.strip() and "," not in x for x in (start, end)):
        raise ValueError("its start and end must each be a single CSS selector (no ',' lists)")
    stop = f":not({end}):not({end} ~ *)" if end_key == "endBefore" else f":not({end} ~ *)"
    following = f"{start} ~ *{stop}"
    return f"{start}{stop}, {following}" if start_key == "startBefore" else following


def _selectors(value: Any, key: str) -> tuple[list[str], list[str], bool]:
    """CSS selectors from an OTA select/remove value, notes, and whether something was dropped."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    notes: list[str] = []
    dropped = False
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        elif isinstance(item, dict):
            try:
                out.append(range_to_css(item))
                notes.append(
                    f"range selector in '{key}' {json.dumps(item)} became sibling selectors; exact only when its "
                    "start and end share a parent (check with `watcher normalize URL --selector …`)"
                )
            except ValueError as exc:
                notes.append(f"range selector in '{key}' {json.dumps(item)} not supported ({exc}); dropped")
                dropped = True
        else:
            notes.append(f"'{key}' entry {json.dumps(item)} is not a selector; dropped")
            dropped = True
    return out, notes, dropped


def declaration_sites(data: Any, service: str, terms_types: tuple[str, ...] = DEFAULT_TERMS) -> ServiceImport:
    """Turn one parsed declaration into [[site]] tables (pure); `service` is the file's stem (OTA's id)."""
    result = ServiceImport(path=Path(f"{service}.json"), service=service)
    if not isinstance(data, dict) or not isinstance(data.get("terms", data.get("documents")), dict):
        result.error = "not an Open Terms Archive service declaration (no 'terms' object)"
        return result
    result.name = str(data.get("name") or service)
    all_terms: dict[str, Any] = data.get("terms", data.get("documents"))
    others = [t for t in all_terms if t not in terms_types]
    if others:
        result.notes.append(f"not imported (other terms types; use --terms-type): {', '.join(others)}")
    for terms in terms_types:
        decl = all_terms.get(terms)
        if decl is None:
            continue
        if not isinstance(decl, dict):
            result.notes.append(f"{terms}: declaration is not an object; skipped")
            continue
        if "combine" in decl:
            parts = decl.get("combine") or []
            urls = [p.get("fetch", "?") for p in parts if isinstance(p, dict)]
            result.notes.append(
                f"{terms}: 'combine' of {len(urls)} pages is not supported (watcher watches one page per site); "
                f"skipped — add the pages as separate sites if you want them: {', '.join(urls)}"
            )
            continue
        url = decl.get("fetch")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            result.notes.append(f"{terms}: 'fetch' is not an http(s) URL ({url!r}); skipped")
            continue
        if url.lower().split("?")[0].endswith(".pdf"):
            result.notes.append(f"{terms}: {url} is a PDF, which watcher does not read yet; skipped")
            continue
        table: dict[str, Any] = {"name": site_name(service, terms), "url": url}
        entry = SiteEntry(terms=terms, table=table)
        if "select" in decl:
            css, notes, dropped = _selectors(decl["select"], "select")
            entry.notes.extend(notes)
            if dropped and css:
                entry.notes.append(
                    "'select' kept none of its selectors, since part of it was dropped; watcher will find the "
                    "policy text itself"
                )
            elif css:
                table["selector"] = ", ".join(css)
        if "remove" in decl:
            css, notes, _ = _selectors(decl["remove"], "remove")
            entry.notes.extend(notes)
            if css:
                table["remove"] = css
        filters = decl.get("filter")
        if filters:
            names = [
                f if isinstance(f, str) else json.dumps(f)
                for f in (filters if isinstance(filters, list) else [filters])
            ]
            entry.notes.append(
                f"filter functions not applied: {', '.join(names)} (they live in OTA's {service}.filters.js)"
            )
        if decl.get("executeClientScripts"):
            entry.notes.append(
                "executeClientScripts: the page needs a browser to render; watcher reads the served HTML, so "
                "check the text with `watcher normalize URL`"
            )
        for key in sorted(set(decl) - _KNOWN_KEYS):
            entry.notes.append(f"unknown key {key!r} ignored")
        result.entries.append(entry)
    return result


def declaration_files(paths: list[str]) -> list[Path]:
    """Files named on the command line; a folder stands for its *.json (not *.history.json)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.glob("*.json") if not f.name.endswith(".history.json")))
        else:
            out.append(p)
    return out


def read_declaration(path: Path, terms_types: tuple[str, ...]) -> ServiceImport:
    service = path.name.removesuffix(".json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ServiceImport(path=path, service=service, error="file not found")
    except (OSError, UnicodeDecodeError) as exc:
        return ServiceImport(path=path, service=service, error=f"cannot read: {exc}")
    except json.JSONDecodeError as exc:
        return ServiceImport(path=path, service=service, error=f"invalid JSON: {exc}")
    result = declaration_sites(data, service, terms_types)
    result.path = path
    return result


def toml_string(value: str) -> str:
    """A TOML basic string (JSON string escapes are a subset TOML accepts)."""
    return json.dumps(value, ensure_ascii=False)


def toml_block(entry: SiteEntry, imp: ServiceImport) -> str:
    lines = [f"# Open Terms Archive: {imp.name} — {entry.terms} (from {imp.path.name})"]
    lines.extend(f"# note: {n}" for n in entry.notes)
    lines.append("[[site]]")
    for key, value in entry.table.items():
        if isinstance(value, list):
            lines.append(f"{key} = [{', '.join(toml_string(v) for v in value)}]")
        else:
            lines.append(f"{key} = {toml_string(value)}")
    return "\n".join(lines) + "\n"


def plan_append(
    imports: list[ServiceImport], config_path: Path, existing: dict[str, Any]
) -> tuple[str, list[tuple[ServiceImport, SiteEntry]]]:
    """The TOML text to append and the entries it holds; skips names and URLs already present."""
    from .config import parse

    sites = existing.get("site", []) if isinstance(existing.get("site", []), list) else []
    names = {s.get("name") for s in sites if isinstance(s, dict)}
    urls = {s.get("url"): s.get("name") for s in sites if isinstance(s, dict)}
    blocks: list[str] = []
    added: list[tuple[ServiceImport, SiteEntry]] = []
    for imp in imports:
        for entry in imp.entries:
            name, url = entry.table["name"], entry.table["url"]
            if name in names:
                imp.notes.append(f"{entry.terms}: a site named {name!r} is already in {config_path}; skipped")
                continue
            if url in urls:
                imp.notes.append(f"{entry.terms}: {url} is already watched as site {urls[url]!r}; skipped")
                continue
            try:
                parse({"site": [entry.table]}, config_path)
            except ConfigError as exc:
                imp.notes.append(f"{entry.terms}: skipped, the entry would not load: {exc}")
                continue
            names.add(name)
            urls[url] = name
            blocks.append(toml_block(entry, imp))
            added.append((imp, entry))
    return "\n".join(blocks), added


# ----------------------------------------------------------------------------------------
# versions repositories


@dataclass
class Commit:
    sha: str
    at: str  # author date, UTC, watcher's stamp format
    subject: str

    @property
    def technical(self) -> bool:
        return self.subject.startswith(TECHNICAL_PREFIXES)


def utc_stamp(iso: str) -> str:
    """A git ISO 8601 date (any offset) in watcher's stored format."""
    return times.iso(datetime.fromisoformat(iso))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "--literal-pathspecs", "-C", str(repo), *args],
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise WatcherError(f"{repo}: `git {' '.join(args)}` took over {GIT_TIMEOUT} s; nothing was imported") from None
    except OSError as exc:
        raise WatcherError(f"{repo}: cannot run git: {exc.strerror or exc}") from None


def commits(repo: Path, path: str) -> list[Commit]:
    """Commits touching `path`, oldest first."""
    if shutil.which("git") is None:
        raise WatcherError("git is not installed; install it to import an Open Terms Archive versions repository")
    if not repo.is_dir() or _git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise WatcherError(f"{repo}: not a git repository (clone an Open Terms Archive versions repository first)")
    proc = _git(repo, "log", "--reverse", "--format=%H%x1f%aI%x1f%s%x1e", "--", path)
    if proc.returncode != 0:
        raise WatcherError(f"{repo}: git log failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    out = []
    for rec in proc.stdout.decode("utf-8", "replace").split("\x1e"):
        rec = rec.strip("\n")
        if rec:
            sha, at, subject = rec.split("\x1f", 2)
            out.append(Commit(sha, utc_stamp(at), subject))
    return out


def blob(repo: Path, sha: str, path: str) -> str | None:
    """The file at a commit, or None when the commit deleted it."""
    proc = _git(repo, "cat-file", "blob", f"{sha}:{path}")
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None


def _services_hint(repo: Path, service: str) -> str:
    import difflib

    proc = _git(repo, "ls-tree", "--name-only", "HEAD")
    names = proc.stdout.decode("utf-8", "replace").split("\n") if proc.returncode == 0 else []
    close = difflib.get_close_matches(service, [n for n in names if n and not n.startswith(".")], n=5, cutoff=0.5)
    return f" (similar services: {', '.join(close)})" if close else ""


@dataclass
class VersionsImport:
    site: str
    versions: int = 0
    changes: int = 0
    material: int = 0
    technical: int = 0
    unchanged: int = 0
    already: int = 0  # commits not newer than the site's latest version
    deleted: int = 0


def import_versions(store: Store, repo: Path, *, service: str, terms: str, site: Site, now: str) -> VersionsImport:
    """Backfill `site` (a config Site) from the OTA versions repository at `repo`, in one transaction."""
    from .classify import classify
    from .dates import effective_date
    from .diff import diff_documents
    from .logs import redact
    from .models import Change
    from .normalize import NormalizeError, from_markdown, normalize, to_markdown
    from .store import text_hash

    path = f"{service}/{terms}.md"
    history = commits(repo, path)
    if not history:
        raise WatcherError(
            f"{repo}: no commit touches {path!r}; check --service and --terms{_services_hint(repo, service)}"
        )
    result = VersionsImport(site=site.name)
    with store.transaction():
        store.upsert_site(site.name, redact(site.url), site.settings_hash(), now)  # no credentials in the database
        prev = store.latest_version(site.name)
        cutoff = prev["first_seen"] if prev else ""
        prev_doc = from_markdown(prev["markdown"], prev["lang"] or None) if prev else None
        for commit in history:
            if commit.at <= cutoff:
                result.already += 1
                continue
            text = blob(repo, commit.sha, path)
            if text is None:
                result.deleted += 1
                continue
            try:
                doc = normalize(text, fmt="markdown", lang=site.lang)
            except NormalizeError as exc:
                raise WatcherError(
                    f"{repo}: commit {commit.sha[:12]}: cannot read {path!r}: {exc}; nothing was imported"
                ) from None
            markdown = to_markdown(doc)
            if prev is not None and prev["text_hash"] == text_hash(markdown):
                store.touch_version(prev["id"], commit.at)
                result.unchanged += 1
                continue
            version = store.add_version(
                site.name,
                markdown=markdown,
                title=doc.title,
                lang=doc.lang,
                effective_date=effective_date(doc),
                body_hash=None,
                at=commit.at,
            )
            result.versions += 1
            if prev is not None and prev_doc is not None:
                if commit.technical:
                    sections = diff_documents(prev_doc, doc)
                    for s in sections:
                        s.material = False
                    change = Change(
                        changed=True,
                        material=False,
                        severity="none",
                        topics=[],
                        effective_date={"before": prev["effective_date"], "after": version["effective_date"]},
                        sections=sections,
                        summary=TECHNICAL_SUMMARY,
                        noise=["technical upgrade"],
                        lang=doc.lang,
                    )
                    result.technical += 1
                else:
                    change = classify(prev_doc, doc)
                    result.material += int(change.material)
                store.add_change(site.name, prev["id"], version["id"], change, commit.at)
                result.changes += 1
            prev, prev_doc = version, doc
    return result
