"""The `watcher` command line: options, exit codes and terminal output; no business logic.

Exit codes: 0 the command did its job (a changed policy is not an error), 1 a site or a
source failed, 2 a configuration or usage error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .config import Config, load
from .errors import ConfigError, WatcherError

CONFIG_HELP = "Path to sites.toml (default: $WATCHER_CONFIG or ./sites.toml)."

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "-c",
        "config_path",
        envvar="WATCHER_CONFIG",
        default="sites.toml",
        show_default=False,
        help=CONFIG_HELP,
        type=click.Path(dir_okay=False),
    )(f)


def handle_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """User-facing errors become one line on stderr and the right exit status."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except WatcherError as exc:
            click.echo(f"watcher: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def _load_config(path: str) -> Config:
    return load(path)


def _store(config: Config):  # type: ignore[no-untyped-def]
    from .store import Store

    return Store(config.settings.database, config.settings.snapshots)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="watcher")
@click.option(
    "--log-level",
    default=os.environ.get("WATCHER_LOG_LEVEL", "warning"),
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log verbosity.",
)
@click.option(
    "--log-format",
    default=os.environ.get("WATCHER_LOG_FORMAT", "text"),
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="Log lines as text or as one JSON object per line.",
)
def main(log_level: str, log_format: str) -> None:
    """Watch privacy-policy pages and report material changes to the terms.

    \b
    Quick start:
      watcher demo                      # see it work, no configuration needed
      watcher check                     # check every site in ./sites.toml once
      watcher diff old.html new.html    # compare two versions of a policy
    """
    from .logs import setup_logging

    setup_logging(log_level, log_format)


# ---------------------------------------------------------------------------------------
# check


OUTCOME_STYLE = {
    "new": "cyan",
    "unchanged": "dim",
    "changed": "yellow",
    "held": "magenta",
    "error": "red",
    "skipped": "dim",
}


@main.command()
@config_option
@click.argument("sites", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per site, in a list.")
@handle_errors
def check(config_path: str, sites: tuple[str, ...], as_json: bool) -> None:
    """Check every site (or the named SITES) once, record new versions and changes.

    \b
    Example:
      watcher check                  # all sites in sites.toml
      watcher check acme --json      # one site, machine-readable
    """
    from .cycle import run_cycle

    config = _load_config(config_path)
    chosen = [config.site(n) for n in sites] if sites else config.sites
    if not chosen:
        raise ConfigError(f"{config.path}: no [[site]] entries to check")
    store = _store(config)
    try:
        results = _with_progress(lambda cb: run_cycle(config, store, chosen, on_result=cb), len(chosen), as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        _results_table(results)
    sys.exit(1 if any(r.outcome == "error" for r in results) else 0)


def _with_progress(run: Callable[[Callable[[Any], None]], list[Any]], total: int, quiet: bool) -> list[Any]:
    if quiet or total < 4 or not err_console.is_terminal:
        return run(lambda r: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("check", total=total)
        return run(lambda r: progress.advance(task))


def _results_table(results: list[Any]) -> None:
    console = Console(highlight=False)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("site")
    table.add_column("outcome")
    table.add_column("version", justify="right")
    table.add_column("details", overflow="fold", max_width=90)
    for r in results:
        outcome = r.outcome
        if r.outcome == "changed":
            outcome = f"changed ({r.severity})" if r.material else "changed (not material)"
        detail = r.reason
        if r.material and r.topics:
            detail = f"[{', '.join(r.topics)}] {r.summary}"
        style = OUTCOME_STYLE.get(r.outcome, "")
        table.add_row(escape(r.site), f"[{style}]{outcome}[/]", str(r.version or ""), escape(_trim(detail, 300)))
    console.print(table)


def _trim(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------
# diff / normalize


def load_source(source: str, selector: str | None = None, lang: str | None = None):  # type: ignore[no-untyped-def]
    """A file path or an http(s) URL to a Document, without touching the database."""
    from .fetch import Fetcher, decode_body
    from .normalize import NormalizeError, normalize

    if source.startswith(("http://", "https://")):
        from .config import DEFAULT_USER_AGENT

        with Fetcher(user_agent=DEFAULT_USER_AGENT) as f:
            res = f.fetch(source)
        if not res.ok:
            raise WatcherError(f"{source}: {res.error}")
        text = res.text
    else:
        path = Path(source)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise WatcherError(f"{source}: file not found") from None
        except IsADirectoryError:
            raise WatcherError(f"{source}: is a directory, not a file") from None
        except OSError as exc:
            raise WatcherError(f"{source}: cannot read: {exc.strerror}") from None
        if b"\x00" in body[:4096] and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise WatcherError(f"{source}: binary file, not HTML, Markdown or text")
        if body.startswith(b"%PDF"):
            raise WatcherError(f"{source}: PDF files are not supported yet")
        text, _ = decode_body(body, "")
    try:
        return normalize(text, selector=selector, lang=lang)
    except NormalizeError as exc:
        raise WatcherError(f"{source}: {exc}") from None


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the classified change as one JSON object.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "html"]),
    default="text",
    show_default=True,
    help="Report format (ignored with --json).",
)
@click.option("--explain", is_flag=True, help="Show which cue words assigned each topic.")
@click.option("--selector", help="CSS selector of the policy container (both sides).")
@handle_errors
def diff(old: str, new: str, as_json: bool, fmt: str, explain: bool, selector: str | None) -> None:
    """Compare two versions of a policy (files or URLs) without touching the database.

    Files may be HTML, Markdown (e.g. Open Terms Archive versions) or plain text; the
    format is detected from the content.

    \b
    Example:
      watcher diff old.html new.html
      watcher diff v1.md v2.md --json
      watcher diff https://example.com/privacy saved.html --format markdown
    """
    from . import render
    from .classify import classify

    a, b = load_source(old, selector), load_source(new, selector)
    change = classify(a, b)
    if as_json:
        click.echo(json.dumps(render.change_json(change, explain=explain), ensure_ascii=False, indent=2))
        return
    if fmt == "markdown":
        out = render.to_markdown(change)
    elif fmt == "html":
        out = render.to_html(change, title=f"{Path(old).name} → {Path(new).name}")
    else:
        out = render.to_text(change, color=sys.stdout.isatty())
    click.echo(out, nl=False)
    if explain:
        click.echo("\nWhy these topics:")
        for c in change.cues:
            where = "heading" if c.where == "heading" else "changed words"
            click.echo(f"  {c.topic:<14} cue /{c.cue}/ matched {c.words!r} in {where} of '{c.section or '(top)'}'")
        if not change.cues and change.material:
            click.echo("  no cue matched; the change is filed under 'other'")


@main.command("normalize")
@click.argument("source")
@click.option("--selector", help="CSS selector of the policy container.")
@click.option("--json", "as_json", is_flag=True, help="Print the Document (sections, blocks) as JSON.")
@handle_errors
def normalize_cmd(source: str, selector: str | None, as_json: bool) -> None:
    """Print the policy text watcher extracts from a page (file or URL).

    Use it to see, and tune with --selector, what watcher will watch before adding a site.

    \b
    Example:
      watcher normalize https://example.com/privacy
      watcher normalize page.html --selector "main article" --json
    """
    from .normalize import document_to_json, to_markdown

    doc = load_source(source, selector)
    if as_json:
        click.echo(json.dumps(document_to_json(doc), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(to_markdown(doc))


# ---------------------------------------------------------------------------------------
# history / show


@main.command()
@config_option
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@handle_errors
def history(config_path: str, site: str, as_json: bool) -> None:
    """List a site's versions and a one-line summary of each change.

    \b
    Example:
      watcher history acme
    """
    config = _load_config(config_path)
    config.site(site)
    store = _store(config)
    try:
        versions = store.versions(site)
        changes = {c["to_version"]: c for c in store.changes(site)}
    finally:
        store.close()
    if as_json:
        out = []
        for v in versions:
            c = changes.get(v["id"])
            out.append(
                {
                    "version": v["seq"],
                    "first_seen": v["first_seen"],
                    "last_seen": v["last_seen"],
                    "effective_date": v["effective_date"],
                    "material": c["material"] if c else None,
                    "severity": c["severity"] if c else None,
                    "topics": c["topics"] if c else [],
                    "summary": c["summary"] if c else "first version",
                }
            )
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not versions:
        click.echo(f"{site}: no versions yet (run `watcher check {site}`)")
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("version", "first seen", "last seen", "stated date", "change"):
        table.add_column(col, overflow="fold")
    for v in versions:
        c = changes.get(v["id"])
        if c is None:
            what = "first version"
        elif c["material"]:
            what = f"[yellow]{c['severity']}[/] " + escape(f"[{', '.join(c['topics'])}] {_trim(c['summary'], 160)}")
        else:
            what = f"[dim]{escape(_trim(c['summary'], 120))}[/]"
        table.add_row(str(v["seq"]), v["first_seen"][:19], v["last_seen"][:19], v["effective_date"] or "", what)
    Console(highlight=False).print(table)


@main.command()
@config_option
@click.argument("site")
@click.option("--version", "seq", type=int, help="Version number (default: the latest).")
@handle_errors
def show(config_path: str, site: str, seq: int | None) -> None:
    """Print the normalized Markdown of a site's latest (or given) version.

    \b
    Example:
      watcher show acme --version 2
    """
    config = _load_config(config_path)
    config.site(site)
    store = _store(config)
    try:
        v = store.version(site, seq) if seq else store.latest_version(site)
    finally:
        store.close()
    if v is None:
        raise WatcherError(
            f"{site}: no version {seq}" if seq else f"{site}: no versions yet (run `watcher check {site}`)"
        )
    sys.stdout.write(v["markdown"])


# ---------------------------------------------------------------------------------------
# demo


@main.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the demo's database and snapshots in this folder.")
@handle_errors
def demo(keep: str | None) -> None:
    """Run watcher end to end on bundled sample policies, offline.

    Serves five sample policies (four English, one French) from a local web server,
    checks them, edits two of them the way real policies change, checks again and
    prints the change report.

    \b
    Example:
      watcher demo
    """
    from .demo import run_demo

    run_demo(Console(highlight=False), keep)


def run() -> None:  # pragma: no cover - console script entry for `python -m watcher`
    main()


if __name__ == "__main__":  # pragma: no cover
    main()


logging.getLogger("httpx").setLevel(logging.WARNING)
