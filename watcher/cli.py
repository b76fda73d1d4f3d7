"""The `watcher` command line: options, exit codes and terminal output; no business logic.

Exit codes: 0 the command did its job (a changed policy is not an error), 1 a site or a
source failed, 2 a configuration or usage error.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from json.encoder import encode_basestring as _json_str  # a str as json.dumps(ensure_ascii=False) writes it
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .config import Config, load
from .errors import ConfigError, WatcherError
from .render import excerpt

if TYPE_CHECKING:
    from rich.console import Console

CONFIG_HELP = "Path to sites.toml (default: $WATCHER_CONFIG or ./sites.toml)."


def _rich() -> tuple[Any, Any, Any]:
    """(Console, Table, escape), imported where a table or progress bar is drawn: rich costs
    ~30 ms of start-up, a fifth of an unchanged `check --json` of a thousand sites (issue 10)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    return Console, Table, escape


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
@click.option("--no-notify", is_flag=True, help="Record changes but do not send due notifications now.")
@click.option("--all", "list_all", is_flag=True, help="List unchanged sites too (by default they are only counted).")
@handle_errors
def check(config_path: str, sites: tuple[str, ...], as_json: bool, no_notify: bool, list_all: bool) -> None:
    """Check every site (or the named SITES) once, record new versions and changes, then
    send the notifications that are due (unless --no-notify).

    Lists every site that did not come back unchanged (new, changed, held, failed, skipped),
    then counts each outcome.

    \b
    Example:
      watcher check                  # all sites in sites.toml
      watcher check acme --json      # one site, machine-readable
    """
    from .cycle import MIN_SITES_FOR_FETCH_PROCESS, run_cycle, spare_fetch_processes

    # forked before the config is loaded, so they share little of this process's heap (issue 10);
    # a quick count of its [[site]] tables spares a small check the forks (if it misses some
    # spelling of the header, the cycle forks its own)
    spare = spare_fetch_processes() if _many_sites(config_path, sites, MIN_SITES_FOR_FETCH_PROCESS) else []
    try:
        config = load(config_path)
        chosen = [config.site(n) for n in sites] if sites else config.sites
        if not chosen:
            raise ConfigError(f"{config.path}: no [[site]] entries to check")
        store = _store(config)
        try:
            results = _with_progress(
                lambda cb: run_cycle(config, store, chosen, on_result=cb, spare=spare), len(chosen), as_json
            )
            if config.subscribers and not no_notify:
                _deliver_after_check(config, store)
        finally:
            store.close()
    finally:
        for idle in spare:  # those the cycle did not use (or never ran: a bad config); ended ones stay ended
            idle.dismiss()
    if as_json:
        _echo_json_list(r.as_dict() for r in results)
    else:
        results_table(results, everything=list_all)
    sys.exit(1 if any(r.outcome == "error" for r in results) else 0)


def _many_sites(config_path: str, named: tuple[str, ...], least: int) -> bool:
    """Will this check have at least `least` sites? Guessed before the config is parsed."""
    if named:
        return len(named) >= least
    try:
        return Path(config_path).read_bytes().count(b"[[site]]") >= least
    except OSError:
        return False  # load() says what is wrong with the file


def _deliver_after_check(config: Config, store: Any) -> None:
    """A one-shot cron `watcher check` sends what is due; a delivery problem is reported, not fatal."""
    from .notify import deliver

    report = deliver(config, store)
    for a in report.attempts:
        if not a.ok:
            click.echo(f"watcher: notification #{a.row} to {a.target} ({a.subscriber}) failed: {a.error}", err=True)
    if report.retrying or report.failed:
        click.echo(
            f"watcher: {report.sent} notification(s) sent, {report.retrying} will be retried, "
            f"{report.failed} failed for good; see `watcher outbox`",
            err=True,
        )


def _with_progress(run: Callable[[Callable[[Any], None]], list[Any]], total: int, quiet: bool) -> list[Any]:
    if quiet or total < 4 or not sys.stderr.isatty():
        return run(lambda r: None)
    Console = _rich()[0]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True, highlight=False, soft_wrap=True),
        transient=True,
    ) as progress:
        task = progress.add_task("check", total=total)
        return run(lambda r: progress.advance(task))


def _json_scalar(value: Any) -> str | None:
    """A string, int, bool or null as json.dumps writes it (None: anything else)."""
    if isinstance(value, str):
        return _json_str(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return None


def _indented_json(item: Any) -> str:
    """`json.dumps(item, ensure_ascii=False, indent=2)`, byte for byte. With an indent, json
    uses its pure-Python encoder, a twentieth of an unchanged check's CPU for `check --json`
    (issue 10): a flat dict of scalars and string lists, every check's result, is written here."""
    if type(item) is dict and item:
        lines = []
        for key, value in item.items():
            text = _json_scalar(value) if type(key) is str else None
            if text is None:
                if type(key) is not str or type(value) is not list or any(type(v) is not str for v in value):
                    break
                text = "[\n    " + ",\n    ".join(map(_json_str, value)) + "\n  ]" if value else "[]"
            lines.append(f"  {_json_str(key)}: {text}")
        else:
            return "{\n" + ",\n".join(lines) + "\n}"
    return json.dumps(item, ensure_ascii=False, indent=2)


def _echo_json_list(items: Iterable[Any]) -> None:
    """`json.dumps(list(items), indent=2)`, written one item at a time: thousands of sites'
    results never sit in memory twice (as dicts and as one string)."""
    first = True
    for item in items:
        text = _indented_json(item).replace("\n", "\n  ")
        click.echo(("[\n  " if first else ",\n  ") + text, nl=False)
        first = False
    click.echo("[]" if first else "\n]")


def results_table(results: list[Any], console: Console | None = None, *, everything: bool = True) -> None:
    """A row per checked site (shared with `watcher demo`), then a count of each outcome.

    Without `everything`, unchanged sites are only counted: a thousand rows of "unchanged" bury
    the one that changed, and rich takes ~0.3 ms to lay out a row, a third of an unchanged
    check's CPU budget (issue 10).
    """
    rows = results if everything else [r for r in results if r.outcome != "unchanged"]
    if not rows and console is None:
        click.echo(outcome_counts(results))  # rich takes ~40 ms to import
        return
    Console, Table, escape = _rich()
    console = console or Console(highlight=False)
    if rows:
        console.print(_table(rows, Table, escape))
    console.print(outcome_counts(results), markup=False)


def outcome_counts(results: list[Any]) -> str:
    """One line such as `checked 1,000 sites: 2 changed (1 material), 1 error, 997 unchanged`."""
    counts = Counter(r.outcome for r in results)
    parts = []
    for outcome in ("new", "changed", "held", "error", "unchanged", "skipped"):  # what needs a look first
        n = counts.pop(outcome, 0)
        if not n:
            continue
        label = f"{n:,} {outcome}" if outcome != "error" else f"{n:,} error{'s' if n > 1 else ''}"
        if outcome == "changed":
            label += f" ({sum(1 for r in results if r.outcome == 'changed' and r.material):,} material)"
        parts.append(label)
    parts += [f"{n:,} {outcome}" for outcome, n in counts.items()]
    sites = f"{len(results):,} site{'s' if len(results) != 1 else ''}"
    return f"checked {sites}: {', '.join(parts)}" if parts else f"checked {sites}"


def _table(results: list[Any], Table: Any, escape: Callable[[str], str]) -> Any:
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
        table.add_row(escape(r.site), f"[{style}]{outcome}[/]", str(r.version or ""), escape(excerpt(detail, 300)))
    return table


# ---------------------------------------------------------------------------------------
# diff / normalize


def load_source(source: str, selector: str | None = None):  # type: ignore[no-untyped-def]
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
        return normalize(text, selector=selector)
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
    config = load(config_path)
    config.site(site)
    store = _store(config)
    try:
        versions = store.versions(site, text=False)
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
    Console, Table, escape = _rich()
    table = Table(show_header=True, header_style="bold")
    for col in ("version", "first seen", "last seen", "stated date", "change"):
        table.add_column(col, overflow="fold")
    for v in versions:
        c = changes.get(v["id"])
        if c is None:
            what = "first version"
        elif c["material"]:
            what = f"[yellow]{c['severity']}[/] " + escape(f"[{', '.join(c['topics'])}] {excerpt(c['summary'], 160)}")
        else:
            what = f"[dim]{escape(excerpt(c['summary'], 120))}[/]"
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
    config = load(config_path)
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
# run / status / health


@main.command("run")
@config_option
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=8.0,
    show_default=True,
    help="Seconds in-flight checks may take to finish after SIGTERM before they are abandoned.",
)
@click.pass_context
@handle_errors
def run_cmd(ctx: click.Context, config_path: str, grace: float) -> None:
    """Check every site on its own interval until stopped (SIGTERM or Ctrl-C).

    Sends due notifications every `notify_every`, reloads sites.toml on SIGHUP or when the
    file changes (a broken file is logged and the previous one kept), and holds a lock so
    only one `watcher run` uses a database. Logs one line per check at info level.

    \b
    Example:
      watcher run -c sites.toml
      watcher --log-format json run        # one JSON object per line, for containers
    """
    from .schedule import Daemon

    config = load(config_path)
    level_source = ctx.parent.get_parameter_source("log_level") if ctx.parent else None
    if level_source is click.core.ParameterSource.DEFAULT and "WATCHER_LOG_LEVEL" not in os.environ:
        logging.getLogger("watcher.run").setLevel(logging.INFO)  # a daemon's per-check lines are its output
    sys.exit(Daemon(config_path, config, grace=grace).run())


def _open_existing(config: Config):  # type: ignore[no-untyped-def]
    """The database for viewing, or None when no check has created it yet; never creates or migrates."""
    from .store import Store

    if not Path(config.settings.database).is_file():
        return None
    return Store.open_readonly(config.settings.database)


def _when(value: str | None, now: Any, due: bool = False) -> str:
    """A stored UTC time as "3m ago" / "in 2h" (the exact times are in --json)."""
    if not value:
        return ""
    from datetime import datetime

    secs = int((datetime.fromisoformat(value) - now).total_seconds())
    if due and secs <= 0:
        return "now"
    span = abs(secs)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if span >= size or unit == "s":
            rel = f"{span // size}{unit}"
            break
    return f"in {rel}" if secs > 0 else f"{rel} ago"


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the scheduler and every site as one JSON object.")
@handle_errors
def status(config_path: str, as_json: bool) -> None:
    """Show each site's last check, last change, last error, failures in a row and next due time.

    \b
    Example:
      watcher status
      watcher status --json
    """
    from datetime import UTC, datetime

    from .schedule import site_status

    config = load(config_path)
    store = _open_existing(config)
    try:
        report = site_status(config, store)
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    now = datetime.now(UTC)
    sched = report["scheduler"]
    if sched is None:
        click.echo("scheduler: no heartbeat (`watcher run` has not run on this database)")
    else:
        click.echo(
            f"scheduler: {sched['state']} (pid {sched['pid']} on {sched['host']}), "
            f"heartbeat {_when(sched['heartbeat_at'], now)}"
        )
    Console, Table, escape = _rich()
    table = Table(show_header=True, header_style="bold")
    for col in ("site", "last check", "outcome", "last change", "failures", "next due", "last error"):
        table.add_column(col, overflow="fold")
    for s in report["sites"]:
        failures = str(s["consecutive_failures"]) if s["consecutive_failures"] else ""
        table.add_row(
            escape(s["site"]),
            _when(s["last_check"], now) or "never",
            s["last_outcome"] or "",
            _when(s["last_change"], now),
            f"[red]{failures}[/]" if failures else "",
            _when(s["next_due"], now, due=True) or "now",
            escape(excerpt(s["last_error"] or "", 120)),
        )
    Console(highlight=False).print(table)


@main.command()
@config_option
@click.option(
    "--max-age",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Oldest acceptable heartbeat, in seconds.",
)
@click.option(
    "--cycles",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Unhealthy when this many cycles in a row all failed (0: ignore).",
)
@click.option(
    "--max-cycle",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Longest acceptable cycle, in seconds.",
)
def health(config_path: str, max_age: float, cycles: int, max_cycle: float) -> None:
    """Exit 0 when `watcher run` is alive and working, 1 otherwise (for container health checks).

    Unhealthy: no heartbeat, a stale or stopped one, a cycle running too long, or the last
    CYCLES cycles all failed (every check in them failed, e.g. the network is down). Any
    error, a configuration error included, exits 1: Docker reserves status 2.

    \b
    Example:
      watcher health --max-age 120 --cycles 3
    """
    from .schedule import check_health

    try:
        config = load(config_path)
        store = _open_existing(config)
        if store is None:
            raise WatcherError(f"{config.settings.database}: no database yet (is `watcher run` running?)")
        try:
            verdict = check_health(store, max_age=max_age, cycles=cycles, max_cycle=max_cycle)
        finally:
            store.close()
    except WatcherError as exc:
        click.echo(f"watcher: unhealthy: {exc}", err=True)
        sys.exit(1)
    if not verdict.ok:
        click.echo(f"watcher: unhealthy: {verdict.message}", err=True)
        sys.exit(1)
    click.echo(verdict.message)


# ---------------------------------------------------------------------------------------
# report / serve / export / import (Open Terms Archive)


def _readonly_store(config: Config):  # type: ignore[no-untyped-def]
    from .store import Store

    return Store.open_readonly(config.settings.database)


@contextmanager
def _output_errors(dest: str, database: str | os.PathLike[str]) -> Iterator[None]:
    """Writing a report or an export: a full disk, a folder without permission or a damaged database is
    one line naming the file, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise WatcherError(f"{exc.filename or dest}: cannot write: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise WatcherError(f"{database}: cannot read the database: {exc}") from None


@main.command()
@config_option
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write the report to.")
@click.option("--base-url", default="", help="Public URL of the folder, to make feed links absolute.")
@handle_errors
def report(config_path: str, out: str, base_url: str) -> None:
    """Write a static HTML report (index, a page per site and per change) and Atom feeds.

    The pages are self-contained (no external CSS, scripts or fonts) and work from file://
    or any static host. The database is opened read-only.

    \b
    Example:
      watcher report --out report/ && open report/index.html
      watcher report --out public/ --base-url https://policies.example.org/
    """
    from .report import write_report

    config = load(config_path)
    store = _readonly_store(config)
    try:
        with _output_errors(out, config.settings.database):
            stats = write_report(store, Path(out), base_url=base_url)
    finally:
        store.close()
    click.echo(f"{out}: {stats.sites} site(s), {stats.changes} change page(s), {stats.files} files; open index.html")


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@handle_errors
def serve(config_path: str, host: str, port: int) -> None:
    """Serve the report's pages and feeds live from the database, read-only.

    \b
    Example:
      watcher serve                      # http://127.0.0.1:8080/
      watcher serve --port 9000
    """
    from .serve import make_server

    config = load(config_path)
    server = make_server(config.settings.database, host, port)
    h, p = server.server_address[:2]
    click.echo(f"serving {config.settings.database} read-only on http://{h}:{p}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@config_option
@click.argument("dest", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv", "markdown-tree"]), default="jsonl", show_default=True
)
@click.option("--site", help="Only this site.")
@click.option("--since", help="Only versions and changes at or after this date (2024-01-31 or ISO 8601).")
@click.option("--with-text", is_flag=True, help="Include each version's Markdown (jsonl, csv).")
@handle_errors
def export(config_path: str, dest: str | None, fmt: str, site: str | None, since: str | None, with_text: bool) -> None:
    """Export versions and changes (topics, severity, facts, dates) for analysis.

    jsonl and csv write one record per version and per change to DEST (default: stdout);
    markdown-tree writes DEST/<site>/<terms type>/YYYY-MM-DDTHH-MM-SSZ.md like the Open
    Terms Archive dataset.

    \b
    Example:
      watcher export --format csv history.csv
      watcher export --format jsonl --site acme --since 2024-01-01
      watcher export --format markdown-tree dataset/
    """
    from . import export as ex

    config = load(config_path)
    cutoff = ex.parse_since(since) if since else None
    if fmt == "markdown-tree" and not dest:
        raise ConfigError(
            "export --format markdown-tree needs a destination folder: watcher export --format markdown-tree DIR"
        )
    to_file = bool(dest and dest != "-")
    store = _readonly_store(config)
    try:
        with _output_errors(dest or "stdout", config.settings.database):
            if fmt == "markdown-tree":
                n = ex.write_markdown_tree(store, Path(dest or "."), site=site, since=cutoff)
                click.echo(f"{dest}: {n} version file(s)", err=True)
                return
            recs = ex.records(store, site=site, since=cutoff, with_text=with_text)  # checks --site: DEST is intact
            out = open(dest or "", "w", encoding="utf-8", newline="") if to_file else sys.stdout  # noqa: SIM115
            try:
                n = ex.write_jsonl(recs, out) if fmt == "jsonl" else ex.write_csv(recs, out, with_text=with_text)
            finally:
                if out is not sys.stdout:
                    out.close()
        if to_file:
            click.echo(f"{dest}: {n} record(s)", err=True)
    finally:
        store.close()


@main.group("import")
def import_group() -> None:
    """Import from Open Terms Archive: service declarations and version history."""


@import_group.command("ota-declarations")
@config_option
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--terms-type",
    "terms_types",
    multiple=True,
    default=["Privacy Policy"],
    show_default=True,
    help="OTA terms type to import (repeat for several, e.g. --terms-type 'Terms of Service').",
)
@click.option("--dry-run", is_flag=True, help="Print the [[site]] entries instead of appending them.")
@handle_errors
def import_ota_declarations(
    config_path: str, paths: tuple[str, ...], terms_types: tuple[str, ...], dry_run: bool
) -> None:
    """Turn Open Terms Archive declaration files (or folders of them) into [[site]] entries in sites.toml.

    What watcher cannot carry over (filter functions, client scripts, combined pages,
    range selectors it cannot express) is listed for each service.

    \b
    Example:
      watcher import ota-declarations ../declarations/declarations/
      watcher import ota-declarations Acme.json --terms-type "Privacy Policy" --terms-type "Terms of Service"
    """
    import tomllib

    from . import ota

    target = Path(config_path)
    try:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        existing = tomllib.loads(current)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{target}: cannot read it to append sites ({exc}); fix it first") from None
    files = ota.declaration_files(list(paths))
    if not files:
        raise WatcherError(f"{', '.join(paths)}: no declaration files (*.json) found")
    imports = [ota.read_declaration(f, tuple(terms_types)) for f in files]
    text, added = ota.plan_append(imports, target, existing)
    for imp in imports:
        if imp.error:
            click.echo(f"{imp.path}: error: {imp.error}", err=True)
            continue
        for entry in imp.entries:
            if any(e is entry for _, e in added):
                click.echo(
                    f"{imp.service}: {entry.terms} -> site {entry.table['name']!r} ({entry.table['url']})", err=True
                )
                for note in entry.notes:
                    click.echo(f"{imp.service}: note: {note}", err=True)
        for note in imp.notes:
            click.echo(f"{imp.service}: note: {note}", err=True)
    if dry_run:
        click.echo(text, nl=False)
    elif text:
        sep = "" if not current or current.endswith("\n\n") else ("\n" if current.endswith("\n") else "\n\n")
        try:
            with target.open("a", encoding="utf-8") as fh:
                fh.write(sep + text)
        except OSError as exc:
            raise WatcherError(f"{target}: cannot append the new sites: {exc.strerror}") from None
        click.echo(f"{target}: added {len(added)} site(s)", err=True)
    sys.exit(1 if any(imp.error for imp in imports) else 0)


@import_group.command("ota-versions")
@config_option
@click.argument("repo", type=click.Path(file_okay=False))
@click.option("--service", required=True, help="OTA service id (the folder name in the versions repository).")
@click.option(
    "--terms", default="Privacy Policy", show_default=True, help="OTA terms type (the file name without .md)."
)
@click.option(
    "--site", "site_name", help="Site in sites.toml to fill (default: the name `import ota-declarations` gives)."
)
@handle_errors
def import_ota_versions(config_path: str, repo: str, service: str, terms: str, site_name: str | None) -> None:
    """Backfill a site's history from a local clone of an Open Terms Archive versions repository.

    Each commit touching SERVICE/TERMS.md becomes a version dated by the commit, and each
    change is classified. Technical-upgrade commits are kept as a new baseline, never as a
    change of the policy. Nothing is sent to subscribers. Running it again adds only newer commits.

    \b
    Example:
      git clone https://github.com/OpenTermsArchive/pga-versions
      watcher import ota-versions pga-versions --service Facebook
    """
    from . import ota
    from .times import now_iso

    config = load(config_path)
    site = config.site(site_name or ota.site_name(service, terms))
    store = _store(config)
    try:
        res = ota.import_versions(store, Path(repo), service=service, terms=terms, site=site, now=now_iso())
        store.ensure_snapshots(site.name)
    finally:
        store.close()
    click.echo(
        f"{site.name}: {res.versions} version(s), {res.changes} change(s) ({res.material} material, "
        f"{res.technical} technical upgrade(s)); {res.unchanged} commit(s) without new text, "
        f"{res.already} already imported or older than the site's history"
    )


# ---------------------------------------------------------------------------------------
# outbox / notify-test


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the deliveries (and any resend attempts) as JSON.")
@click.option("--retry", is_flag=True, help="Resend failed deliveries, and those waiting to be retried, now.")
@handle_errors
def outbox(config_path: str, as_json: bool, retry: bool) -> None:
    """List notifications not delivered yet (pending, failed, waiting for a digest).

    With --retry, failed and backing-off deliveries are sent again at once; targets that
    already accepted a message are not sent it twice. Targets are shown with secrets masked.

    \b
    Example:
      watcher outbox
      watcher outbox --retry --json
    """
    from . import notify

    config = load(config_path)
    report = None
    if retry:
        store = _store(config)
        try:
            notify.requeue(config, store)
            report = notify.deliver(config, store)
            rows = notify.outbox_view(config, store)
        finally:
            store.close()
    else:
        view = _open_existing(config)
        rows = []
        if view is not None:
            try:
                rows = notify.outbox_view(config, view)
            finally:
                view.close()
    if as_json:
        out = {"outbox": rows, "delivery": report.as_dict() if report else None}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for a in report.attempts if report else []:
            what = "sent" if a.ok else f"failed: {a.error}"
            click.echo(f"#{a.row} {a.kind} {a.site} -> {a.subscriber} {a.target}: {what}")
        if not rows:
            click.echo("outbox: nothing pending or failed")
        for r in rows:
            what = f"{r['kind']} {r['site']}".strip()
            when = f", next try {r['next_attempt_at'][:19]}Z" if r["next_attempt_at"] and r["attempts"] else ""
            tries = f", {r['attempts']} tr{'y' if r['attempts'] == 1 else 'ies'}" if r["attempts"] else ""
            click.echo(
                f"#{r['id']} {what} -> {r['subscriber']}: {r['state']}, waiting for {r['waiting_for']}{tries}{when}"
            )
            for t in r["targets"]:
                click.echo(f"    {t['target']}: {'delivered' if t['delivered'] else 'not yet'}")
            if r["last_error"]:
                click.echo(f"    last error: {r['last_error']}")
    sys.exit(1 if report and (report.failed or report.retrying) else 0)


@main.command("notify-test")
@config_option
@click.argument("subscriber", required=False)
@handle_errors
def notify_test(config_path: str, subscriber: str | None) -> None:
    """Send a sample change notification to a subscriber's targets (default: every subscriber).

    Checks the wiring (tokens, SMTP, webhooks) without waiting for a real change. Each
    target is printed with its secrets masked; the exit status is 1 when one failed.

    \b
    Example:
      watcher notify-test
      watcher notify-test privacy-team
    """
    from . import notify

    config = load(config_path)
    subs = config.subscribers
    if subscriber:
        subs = [s for s in subs if s.name == subscriber]
        if not subs:
            names = ", ".join(s.name for s in config.subscribers) or "none"
            raise ConfigError(f"{config.path}: no subscriber named {subscriber!r} (subscribers: {names})")
    if not subs:
        raise ConfigError(f"{config.path}: no [[subscriber]] entries (add one with 'name' and 'urls')")
    message = notify.sample_message()
    failed = 0
    for sub in subs:
        for url in sub.urls:
            target = notify.Target.of(url)
            ok, error = notify.send(target, message)
            failed += not ok
            what = "sent" if ok else f"failed: {error}"
            click.echo(f"{sub.name}: {target.label} ({target.format}): {what}")
    sys.exit(1 if failed else 0)


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

    run_demo(_rich()[0](highlight=False), keep)


if __name__ == "__main__":  # pragma: no cover
    main()
