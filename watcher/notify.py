"""Who hears about what, in which words, and how it reaches them: once, and never lost.

Three layers, so each can be tested on its own:

* routing (`route`, `route_errors`) runs inside the cycle's per-site transaction, so an
  outbox row exists as soon as the change does and a crash cannot lose it;
* rendering (`change_message`, `failure_message`, `recovery_message`, `digest_message`)
  is pure: a stored change row in, a `Message` out, rendered as plain text, Markdown or
  HTML from the same parts so every target says the same thing;
* delivery (`deliver`) leases due outbox rows one at a time, sends them through apprise
  target by target, and records each attempt; failures back off exponentially and one
  failing target never holds back the others. A crash after a target accepted a message
  but before the row was marked may resend it once, after the lease expires.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import html
import json
import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import render, times
from .config import Config, Subscriber
from .logs import redact
from .models import SEVERITIES, Change, SectionChange, WordOp
from .render import wrap_marks

log = logging.getLogger("watcher.notify")

MAX_SECTIONS = 3  # changed sections quoted in one message; the rest are counted
DIGEST_SECTIONS = 1  # per change inside a digest, which must stay readable with many changes
EXCERPT_CONTEXT = 12  # unchanged words kept around an edit
EXCERPT_CHARS = 700  # past this, further edits of a section are counted, not quoted
RUN_WORDS = 80  # longest run of added, removed or whole-section words quoted in full
LEASE = timedelta(minutes=10)  # a claimed row is invisible to other senders this long
BACKOFF_FIRST = 60  # seconds before the first retry; doubles each attempt
BACKOFF_MAX = 6 * 3600
ATTEMPT_LOG = 20  # attempts remembered per outbox row

# Chat services that render Markdown although apprise may declare plain text first for them.
MARKDOWN_SCHEMES = frozenset({"discord", "mmost", "mmosts", "tgram", "matrix", "matrixs", "rocket", "rockets"})


# ---------------------------------------------------------------------------------------
# routing


def wants_site(sub: Subscriber, site: str) -> bool:
    return any(fnmatch.fnmatchcase(site, pat) for pat in sub.sites)


def route(config: Config, site: str, change: Change) -> list[Subscriber]:
    """Subscribers who asked for this site, one of these topics, at this severity or above."""
    if not change.material:
        return []
    out = []
    for sub in config.subscribers:
        if not wants_site(sub, site):
            continue
        if sub.topics and not set(sub.topics) & set(change.topics):
            continue
        if SEVERITIES.index(change.severity) < SEVERITIES.index(sub.min_severity):  # type: ignore[arg-type]
            continue
        out.append(sub)
    return out


def route_errors(config: Config, site: str) -> list[Subscriber]:
    return [s for s in config.subscribers if s.errors and wants_site(s, site)]


# ---------------------------------------------------------------------------------------
# messages (pure)

Span = tuple[str, str]  # (kind, text): "t" text, "b" bold, "del", "ins", "code", "url"


@dataclass(frozen=True)
class Part:
    """One block of a message: a paragraph, a heading, a quoted excerpt or a side note."""

    kind: str  # "p", "h", "quote", "note"
    spans: tuple[Span, ...]
    lang: str = ""  # excerpts carry the policy's language (French stays French)


@dataclass(frozen=True)
class Message:
    """One notification, built once and rendered per target, so every target says the same thing."""

    title: str
    parts: tuple[Part, ...]
    notify_type: str = "info"  # apprise NotifyType value: info, success, warning, failure

    @property
    def text(self) -> str:
        return "\n\n".join(_text_part(p) for p in self.parts).strip() + "\n"

    @property
    def markdown(self) -> str:
        return "\n\n".join(_md_part(p) for p in self.parts).strip() + "\n"

    @property
    def html(self) -> str:
        """Body fragment; `html_document` wraps it for e-mail."""
        return "\n".join(_html_part(p) for p in self.parts)


def _p(*spans: Span, kind: str = "p", lang: str = "") -> Part:
    return Part(kind, tuple(s for s in spans if s[1]), lang)


def _text_part(p: Part) -> str:
    out = []
    for kind, text in p.spans:
        out.append(wrap_marks(text, "*", "*") if kind in ("del", "ins") else text)
    body = "".join(out)
    if p.kind == "quote":
        return "  " + body.replace("\n", "\n  ")
    if p.kind == "note":
        return f"({body})"
    return body


def _md_part(p: Part) -> str:
    out = []
    for kind, text in p.spans:
        if kind == "t":
            out.append(render._md_escape(text))
        elif kind in ("b", "del", "ins"):
            out.append(wrap_marks(render._md_escape(text), "**", "**"))
        elif kind == "code":
            out.append("`" + text.replace("`", "'") + "`")
        else:  # url: bare, so chat services link it and nothing escapes its underscores
            out.append(text)
    body = "".join(out)
    if p.kind == "h":
        return wrap_marks(body, "**", "**")
    if p.kind == "quote":
        return "> " + body.replace("\n", "\n> ")
    if p.kind == "note":
        return wrap_marks(body, "_", "_")
    return body


def _html_part(p: Part) -> str:
    out = []
    for kind, text in p.spans:
        t = html.escape(text)
        if kind == "t":
            out.append(t)
        elif kind == "b":
            out.append(f"<strong>{t}</strong>")
        elif kind == "del":
            out.append(f'<del style="{render.DEL_STYLE}">{t}</del>')
        elif kind == "ins":
            out.append(f'<ins style="{render.INS_STYLE}">{t}</ins>')
        elif kind == "code":
            # a monospace span, not <code>: apprise's plain-text part would put <code> on lines of its own
            out.append(f'<span style="font-family:ui-monospace,Menlo,Consolas,monospace;background:#f6f8fa">{t}</span>')
        else:
            out.append(f'<a href="{html.escape(text, quote=True)}">{t}</a>')
    body = "".join(out)
    lang = f' lang="{html.escape(p.lang)}"' if p.lang else ""
    if p.kind == "h":
        return f'<h3 style="margin:1.2em 0 .3em;font-size:1em">{body}</h3>'
    if p.kind == "quote":  # a bordered paragraph: converts to separate lines in the plain-text part
        body = body.replace("\n", "<br>")
        return f'<p{lang} style="border-left:3px solid #d0d7de;margin:.3em 0;padding:0 .8em">{body}</p>'
    if p.kind == "note":
        return f'<p style="color:#57606a"><em>{body}</em></p>'
    return f"<p>{body}</p>"


def html_document(message: Message) -> str:
    """A whole e-mail body: inline styles only, since mail clients drop <style> and classes. The frame
    is English; policy excerpts carry their own lang attribute."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"></head>'
        '<body style="font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1f24;'
        f'max-width:46rem">\n{message.html}\n</body></html>\n'
    )


def change_title(site: str, change: Change, prefix: str = "[watcher]") -> str:
    """`[watcher] acme privacy policy: sharing, retention changed (high)`."""
    names = [t for t in change.topics if t != "effective_date"]
    if "effective_date" in change.topics:
        names.append("stated date")
    if len(names) > 4:
        names = [*names[:3], f"{len(names) - 3} more topics"]
    what = ", ".join(names) or "wording"
    return f"{prefix} {site} privacy policy: {what} changed ({change.severity})"


def change_message(
    site: str,
    url: str,
    row: dict[str, Any],
    *,
    commands: Iterable[tuple[str, str]] = (),
    lang: str = "",
    sections: int = MAX_SECTIONS,
    prefix: str = "[watcher]",
    note: tuple[Span, ...] = (),
) -> Message:
    """The message for one material change: summary, quoted before/after wording, date, page, commands."""
    change = render.change_from_row(row)
    lang = lang or change.lang
    parts: list[Part] = []
    if note:
        parts.append(_p(*note, kind="note"))
    parts.append(_p(("t", change.summary or "The policy text changed.")))
    meta: list[Span] = [("b", "Severity: "), ("t", change.severity)]
    if change.topics:
        meta += [("t", " · "), ("b", "Topics: "), ("t", _topics(change.topics))]
    before, after = change.effective_date.get("before"), change.effective_date.get("after")
    if after and before != after:
        meta += [("t", " · "), ("b", "Stated date: "), ("t", f"{before or 'none'} → {after}")]
    parts.append(_p(*meta))
    # sections whose only news is the stated date go last: the terms that moved come first
    shown = sorted(render.interesting(change), key=lambda s: bool(s.topics) and set(s.topics) <= {"effective_date"})
    for s in shown[:sections]:
        parts += _section_parts(s, lang)
    if len(shown) > sections:
        more = len(shown) - sections
        parts.append(_p(("t", f"{more} more changed section{'s' if more > 1 else ''} not shown"), kind="note"))
    parts.append(_p(("b", "Page: "), ("url", url)))
    for label, command in commands:
        parts.append(_p(("b", f"{label}: "), ("code", command)))
    notify_type = "warning" if change.severity == "high" else "info"
    return Message(change_title(site, change, prefix), tuple(parts), notify_type)


def _topics(topics: list[str]) -> str:
    """Topic ids as subscribers write them, except the stated date, which reads better in words."""
    return ", ".join("stated date" if t == "effective_date" else t for t in topics)


def _section_parts(s: SectionChange, lang: str) -> list[Part]:
    what = s.status + (f" · {_topics(s.topics)}" if s.topics else "")
    parts = [_p(("t", render._heading(s)), ("t", f" ({what})"), kind="h")]
    if s.status == "added" or (s.status != "removed" and not s.words and not s.before):
        text, left = _clip(s.after)
        parts.append(_p(("b", "Added: "), ("ins", text), kind="quote", lang=lang))
    elif s.status == "removed" or (not s.words and not s.after):
        text, left = _clip(s.before)
        parts.append(_p(("b", "Removed: "), ("del", text), kind="quote", lang=lang))
    elif not s.words:
        text_b, left_b = _clip(s.before)
        text, left = _clip(s.after)
        left += left_b
        parts.append(_p(("b", "Before: "), ("t", text_b), kind="quote", lang=lang))
        parts.append(_p(("b", "After: "), ("t", text), kind="quote", lang=lang))
    else:
        before, after, left = excerpt(s.words)
        parts.append(_p(("b", "Before: "), *before, kind="quote", lang=lang))
        parts.append(_p(("b", "After: "), *after, kind="quote", lang=lang))
        if left:
            parts.append(_p(("t", f"{left} more edit{'s' if left > 1 else ''} in this section not shown"), kind="note"))
        return parts
    if left:
        parts.append(_p(("t", f"{left} more word{'s' if left > 1 else ''} not shown"), kind="note"))
    return parts


def _clip(text: str, words: int = RUN_WORDS) -> tuple[str, int]:
    """The first `words` words of `text` (line breaks kept) and how many were left out."""
    parts = text.split(" ")
    if len(parts) <= words:
        return text, 0
    return " ".join(parts[:words]) + " …", len(parts) - words


def excerpt(ops: list[WordOp], budget: int = EXCERPT_CHARS) -> tuple[list[Span], list[Span], int]:
    """Before and after wording around the edits of a word diff, cut at an edit boundary once past
    `budget` characters; returns (before spans, after spans, edits left out)."""
    ops = render.trimmed(ops, EXCERPT_CONTEXT)
    before: list[Span] = []
    after: list[Span] = []
    hunks = sum(1 for i, w in enumerate(ops) if w.op != 0 and (i == 0 or ops[i - 1].op == 0))
    shown = size = 0
    cut = False
    for i, w in enumerate(ops):
        starts = w.op != 0 and (i == 0 or ops[i - 1].op == 0)
        if starts:
            if shown and size > budget:
                cut = True
                break
            shown += 1
        text = w.text if w.op == 0 else _clip(w.text)[0]
        size += len(text)
        if w.op <= 0:
            before.append(("t" if w.op == 0 else "del", text))
        if w.op >= 0:
            after.append(("t" if w.op == 0 else "ins", text))
    if cut:
        before.append(("t", " …"))
        after.append(("t", " …"))
    return before, after, hunks - shown


def failure_message(site: str, url: str, payload: dict[str, Any], commands: Iterable[tuple[str, str]] = ()) -> Message:
    """One alert when a site has failed several checks in a row (never one per failed check)."""
    failures = payload.get("failures") or 0
    parts = [
        _p(("t", f"watcher could not check {site} {failures} times in a row; its changes are not being watched.")),
        _p(("b", "Last error: "), ("t", redact(str(payload.get("error") or "unknown")))),
    ]
    if payload.get("since"):
        parts.append(_p(("b", "Last successful check: "), ("t", str(payload["since"]))))
    parts.append(_p(("b", "Page: "), ("url", url)))
    parts.append(_p(("t", "You will get one more message when it recovers."), kind="note"))
    for label, command in commands:
        parts.append(_p(("b", f"{label}: "), ("code", command)))
    title = f"[watcher] {site} privacy policy: check failing ({failures} times in a row)"
    return Message(title, tuple(parts), "failure")


def recovery_message(site: str, url: str, payload: dict[str, Any]) -> Message:
    failures = payload.get("failures") or 0
    parts = [
        _p(("t", f"{site} can be checked again after {failures} failed check{'s' if failures != 1 else ''}.")),
        _p(("b", "Page: "), ("url", url)),
    ]
    return Message(f"[watcher] {site} privacy policy: checks work again", tuple(parts), "success")


def digest_message(period: str, items: list[tuple[str, Message]]) -> Message:
    """Several messages as one (items are (outbox kind, message)): each title becomes a heading above its body."""
    changes = sum(1 for kind, _ in items if kind == "change")
    others = len(items) - changes
    what = [f"{changes} policy change{'s' if changes != 1 else ''}"] if changes else []
    if others:
        what.append(f"{others} site alert{'s' if others != 1 else ''}")
    kinds = [m.notify_type for _, m in items]
    worst = next((k for k in ("failure", "warning") if k in kinds), "info")
    parts: list[Part] = []
    for _, m in items:
        parts.append(_p(("t", m.title.removeprefix("[watcher] ")), kind="h"))
        parts += m.parts
    return Message(f"[watcher] {period} digest: {' and '.join(what) or 'nothing new'}", tuple(parts), worst)


def sample_message() -> Message:
    """A realistic message for `watcher notify-test`: the demo's edit of the 'wesgar' sample policy."""
    from . import demo, samples
    from .classify import classify

    change = classify(samples.seed_document("wesgar"), samples.seed_document("wesgar", demo._edited("wesgar")))
    return change_message(
        "wesgar",
        "https://example.com/privacy",
        render.change_json(change),
        commands=[("Full diff", "watcher demo")],
        prefix="[watcher] (test)",
        note=(
            ("t", "A test message from "),
            ("code", "watcher notify-test"),
            ("t", ": the change below is a sample, not one of your sites."),
        ),
    )


# ---------------------------------------------------------------------------------------
# targets


@dataclass(frozen=True)
class Target:
    """One apprise URL and its plugin, instantiated once: its format, masked label, secrets and the send
    itself all come from the same object (instantiating is the costly part of a send)."""

    url: str
    plugin: Any  # an apprise plugin, or None when apprise does not accept the URL

    @classmethod
    def of(cls, url: str) -> Target:
        return cls(url, _instantiate(url))

    @property
    def format(self) -> str:
        """Markdown for chat services that render it, HTML for e-mail, plain text elsewhere; `?format=` wins."""
        import apprise

        asked = parse_qs(urlsplit(self.url).query).get("format")
        if asked and asked[-1].lower() in ("text", "markdown", "html"):
            return asked[-1].lower()
        if self.plugin is None:
            return "text"
        declared = self.plugin.notify_format
        formats = [apprise.NotifyFormat(f) for f in (declared if isinstance(declared, (tuple, list)) else (declared,))]
        scheme = self.url.split("://", 1)[0].lower()
        if scheme in MARKDOWN_SCHEMES or formats[0] == apprise.NotifyFormat.MARKDOWN:
            return "markdown"
        if formats[0] == apprise.NotifyFormat.HTML:
            return "html"
        return "text"

    @property
    def label(self) -> str:
        """How a target is shown anywhere: apprise's privacy form (secrets masked), without the options."""
        if self.plugin is None:
            return self.url.split("://", 1)[0] + "://…" if "://" in self.url else "(not a URL)"
        return self.plugin.url(privacy=True).split("?", 1)[0]

    @property
    def secrets(self) -> set[str]:
        """Parts of the URL that apprise's privacy form hides (passwords, tokens, keys): never to be shown."""
        found: set[str] = set()
        parts = urlsplit(self.url)
        if parts.password:
            found |= {parts.password, unquote(parts.password)}
        shown = unquote(self.plugin.url(privacy=True)) if self.plugin is not None else ""
        for token in re.split(r"[/:@?&=#,;+\s]+", self.url):
            for t in (token, unquote(token)):
                if len(t) >= 4 and t not in shown:
                    found.add(t)
        return found


def _instantiate(url: str) -> Any:
    import apprise

    quiet = logging.getLogger("apprise")
    was, quiet.disabled = quiet.disabled, True  # a rejected URL is logged whole, secrets and all
    try:
        return apprise.Apprise.instantiate(url, asset=_asset(), suppress_exceptions=True)
    finally:
        quiet.disabled = was


@functools.cache
def _asset() -> Any:
    import apprise

    return apprise.AppriseAsset(app_id="watcher", app_desc="watcher privacy-policy alerts")


def target_format(url: str) -> str:
    return Target.of(url).format


def target_label(url: str) -> str:
    return Target.of(url).label


def target_key(url: str) -> str:
    """A stable id for a target, stored instead of the URL so the database holds no secret."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def scrub(text: str, targets: Iterable[str | Target]) -> str:
    """Remove every secret of these targets (URLs or Targets), and anything password-shaped, from a message."""
    secrets: set[str] = set()
    for t in targets:
        secrets |= (t if isinstance(t, Target) else Target.of(t)).secrets
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return redact(text)


class _Capture(logging.Handler):
    """apprise reports why a send failed only in its log; keep those lines, and keep them from the console."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().strip()
        if record.levelno >= logging.WARNING or msg.startswith(("Socket Exception", "Response Details")):
            self.lines.append(" ".join(msg.split()))


def send(target: Target | str, message: Message) -> tuple[bool, str]:
    """Send one message to one target in the format it reads best; (ok, scrubbed error)."""
    import apprise

    if isinstance(target, str):
        target = Target.of(target)
    if target.plugin is None:
        return False, "not a valid apprise URL"
    fmt = target.format
    body = {"text": message.text, "markdown": message.markdown, "html": html_document(message)}[fmt]
    alog = logging.getLogger("apprise")
    capture = _Capture()
    saved = (alog.level, alog.propagate)
    alog.addHandler(capture)
    alog.setLevel(logging.DEBUG)
    alog.propagate = False
    error = ""
    try:
        ap = apprise.Apprise(asset=_asset())
        ap.add(target.plugin)
        ok = bool(
            ap.notify(
                body=body,
                title=message.title,
                body_format=apprise.NotifyFormat(fmt),
                notify_type=apprise.NotifyType(message.notify_type),
            )
        )
    except Exception as exc:  # a plugin bug must not stop delivery to the other targets
        ok, error = False, f"{type(exc).__name__}: {exc}"
    finally:
        alog.removeHandler(capture)
        alog.setLevel(saved[0])
        alog.propagate = saved[1]
    if ok:
        return True, ""
    lines = list(dict.fromkeys(capture.lines))  # unique, in order
    error = "; ".join([*lines, error] if error else lines) or "delivery failed"
    return False, render.excerpt(scrub(error, [target]), 500)


# ---------------------------------------------------------------------------------------
# delivery


@dataclass
class Attempt:
    """One send of one outbox row to one target, for the terminal and --json (secrets masked)."""

    row: int
    kind: str
    subscriber: str
    site: str
    target: str
    ok: bool
    error: str = ""


@dataclass
class DeliveryReport:
    sent: int = 0  # rows fully delivered
    retrying: int = 0  # rows with a target that failed, to be retried later
    failed: int = 0  # rows that used up their attempts
    batched: int = 0  # digests assembled
    attempts: list[Attempt] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "digests": self.batched,
            "attempts": [a.__dict__ for a in self.attempts],
        }


def backoff(attempts: int) -> timedelta:
    """60 s, 2 min, 4 min… capped at 6 h: a target down for a while is not hammered."""
    return timedelta(seconds=min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


def period(ts: datetime, digest: str) -> str:
    """The digest period a moment falls in: its UTC day, or its ISO week for weekly digests."""
    ts = ts.astimezone(UTC)
    if digest == "weekly":
        year, week, _ = ts.isocalendar()
        return f"{year}-W{week:02d}"
    return ts.date().isoformat()


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(row.get("payload") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def waiting_for_digest(row: dict[str, Any], sub: Subscriber | None) -> bool:
    return sub is not None and sub.digest != "off" and row["kind"] != "digest" and row["state"] == "pending"


def batch_digests(config: Config, store: Any, now: datetime) -> int:
    """Fold each digest subscriber's waiting rows into one `digest` row once a new period began."""
    made = 0
    current = {d: period(now, d) for d in ("daily", "weekly")}
    for sub in config.subscribers:
        if sub.digest == "off":
            continue

        def waiting(name: str = sub.name) -> list[dict[str, Any]]:
            return [r for r in store.outbox(("pending",)) if r["subscriber"] == name and r["kind"] != "digest"]

        def due(rows: list[dict[str, Any]], digest: str = sub.digest) -> bool:
            return any(period(times.parse(r["created_at"]), digest) != current[digest] for r in rows)

        if not due(waiting()):
            continue
        with store.transaction():  # read again under the write lock: two senders never batch the same rows
            rows = waiting()
            if not due(rows):
                continue
            ids = [r["id"] for r in rows]
            digest_id = store.queue(
                kind="digest",
                subscriber=sub.name,
                site=", ".join(sorted({r["site"] for r in rows})),
                change_id=None,
                at=times.iso(now),
                payload={"rows": ids, "period": sub.digest},
            )
            for r in rows:
                store.update_outbox(r["id"], state="batched", payload={**_payload(r), "digest": digest_id})
        made += 1
    return made


def deliver(config: Config, store: Any, now: datetime | None = None) -> DeliveryReport:
    """Send every due outbox row; never raises for a target's failure (it is recorded and retried)."""
    now = now or datetime.now(UTC)
    stamp = times.iso(now)
    report = DeliveryReport()
    subs = {s.name: s for s in config.subscribers}
    report.batched = batch_digests(config, store, now)
    for row in store.outbox(("pending",)):
        due = row.get("next_attempt_at") or ""
        sub = subs.get(row["subscriber"])
        if due > stamp or waiting_for_digest(row, sub):
            continue
        if not store.claim_outbox(row["id"], due, times.iso(now + LEASE)):
            continue  # another sender took it
        _attempt(config, store, row, sub, now, report)
    return report


def _attempt(
    config: Config, store: Any, row: dict[str, Any], sub: Subscriber | None, now: datetime, report: DeliveryReport
) -> None:
    stamp = times.iso(now)
    payload = _payload(row)
    attempts = int(row.get("attempts") or 0) + 1
    if sub is None:
        store.update_outbox(
            row["id"],
            state="failed",
            attempts=attempts,
            last_error=f"subscriber {row['subscriber']!r} is no longer in {config.path}; "
            "add it back and run `watcher outbox --retry`",
        )
        report.failed += 1
        return
    errors: list[str] = []
    message: Message | None = None
    try:
        message = build_message(config, store, row)
    except LookupError as exc:  # the change is gone: retrying cannot help
        store.update_outbox(row["id"], state="failed", attempts=attempts, last_error=f"cannot build the message: {exc}")
        report.failed += 1
        return
    except Exception as exc:  # a busy database or a rendering bug: recorded and retried, never raised
        log.exception("outbox #%s: cannot build the message", row["id"])
        errors = [f"cannot build the message: {type(exc).__name__}: {exc}"]
    delivered = set(payload.get("delivered") or [])
    history = list(payload.get("log") or [])
    for url in sub.urls if message is not None else []:
        key = target_key(url)
        if key in delivered:
            continue
        target = Target.of(url)
        label = target.label
        ok, error = send(target, message)
        report.attempts.append(Attempt(row["id"], row["kind"], sub.name, row["site"], label, ok, error))
        history = [*history, {"at": stamp, "target": key, "ok": ok, "error": error or None}][-ATTEMPT_LOG:]
        if ok:
            delivered.add(key)
            log.info("outbox #%s (%s for %s) sent to %s", row["id"], row["kind"], sub.name, label)
            # remember each accepted target at once: a crash now resends to the others only
            store.update_outbox(row["id"], payload={**payload, "delivered": sorted(delivered), "log": history})
        else:
            errors.append(f"{label}: {error}")
            log.warning("outbox #%s (%s for %s) not sent to %s: %s", row["id"], row["kind"], sub.name, label, error)
    payload = {**payload, "delivered": sorted(delivered), "log": history}
    if not errors:
        store.update_outbox(row["id"], state="sent", sent_at=stamp, attempts=attempts, last_error=None, payload=payload)
        report.sent += 1
        return
    fields: dict[str, Any] = {
        "attempts": attempts,
        "last_error": render.excerpt("; ".join(errors), 1000),
        "payload": payload,
    }
    if attempts >= config.settings.max_attempts:
        fields["state"] = "failed"
        report.failed += 1
    else:
        fields["next_attempt_at"] = times.iso(now + backoff(attempts))
        report.retrying += 1
    store.update_outbox(row["id"], **fields)


def build_message(config: Config, store: Any, row: dict[str, Any], sections: int = MAX_SECTIONS) -> Message:
    """The message for an outbox row, rebuilt from the stored change and site at send time (never stored)."""
    site = row["site"]
    payload = _payload(row)
    if row["kind"] == "digest":
        members = store.outbox_rows(list(payload.get("rows") or []))
        items = []
        for m in members:
            try:
                items.append((m["kind"], build_message(config, store, m, DIGEST_SECTIONS)))
            except LookupError as exc:
                log.warning("digest #%s: left out outbox #%s: %s", row["id"], m["id"], exc)
        return digest_message(str(payload.get("period") or "daily"), items)
    url = _site_url(config, store, site)
    if row["kind"] == "failure":
        return failure_message(site, url, payload, [("Check it now", f"watcher check {site}{_config_arg(config)}")])
    if row["kind"] == "recovery":
        return recovery_message(site, url, payload)
    change = store.change(row["change_id"]) if row.get("change_id") is not None else None
    if change is None:
        raise LookupError(f"change #{row.get('change_id')} of {site} is not in the database")
    new = store.version_by_id(change["to_version"])
    lang = (new or {}).get("lang") or "en"
    commands = _commands(config, store, site, change)
    return change_message(site, url, change, commands=commands, lang=lang, sections=sections)


def _site_url(config: Config, store: Any, site: str) -> str:
    row = store.site_row(site)
    if row:
        return row["url"]  # stored redacted
    return next((redact(s.url) for s in config.sites if s.name == site), "")


def _config_arg(config: Config) -> str:
    return "" if config.path == Path("sites.toml") else f" -c {shlex.quote(str(config.path))}"


def _commands(config: Config, store: Any, site: str, change: dict[str, Any]) -> list[tuple[str, str]]:
    """The `watcher` commands that show the whole change: a diff of the two snapshot files, and the history."""
    from .store import snapshot_name

    out = []
    folder = store.snapshot_dir(site)
    old = store.version_by_id(change["from_version"]) if change.get("from_version") else None
    new = store.version_by_id(change["to_version"])
    if folder is not None and old and new:
        a = Path(folder, snapshot_name(old["first_seen"])).absolute()
        b = Path(folder, snapshot_name(new["first_seen"])).absolute()
        out.append(("Full diff", f"watcher diff {shlex.quote(str(a))} {shlex.quote(str(b))}"))
    out.append(("History", f"watcher history {shlex.quote(site)}{_config_arg(config)}"))
    return out


# ---------------------------------------------------------------------------------------
# outbox view and retry (for `watcher outbox`)


def outbox_view(config: Config, store: Any) -> list[dict[str, Any]]:
    """Pending and failed deliveries with their targets (masked) and what each row waits for."""
    subs = {s.name: s for s in config.subscribers}
    out = []
    for row in store.outbox(("pending", "failed")):
        sub = subs.get(row["subscriber"])
        payload = _payload(row)
        delivered = set(payload.get("delivered") or [])
        if sub is None:
            waiting = "subscriber removed from the configuration"
        elif waiting_for_digest(row, sub):
            waiting = f"{sub.digest} digest"
        elif row["state"] == "pending":
            waiting = "retry" if row["attempts"] else "delivery"
        else:
            waiting = "--retry"
        out.append(
            {
                "id": row["id"],
                "kind": row["kind"],
                "subscriber": row["subscriber"],
                "site": row["site"],
                "change_id": row["change_id"],
                "state": row["state"],
                "waiting_for": waiting,
                "attempts": row["attempts"],
                "next_attempt_at": row["next_attempt_at"] if row["state"] == "pending" else None,
                "created_at": row["created_at"],
                "last_error": row["last_error"],
                "targets": [
                    {"target": target_label(u), "delivered": target_key(u) in delivered}
                    for u in (sub.urls if sub else [])
                ],
            }
        )
    return out


def requeue(config: Config, store: Any, now: datetime | None = None) -> int:
    """Make failed and backing-off rows due now (digest rows still wait for their digest)."""
    stamp = times.iso(now or datetime.now(UTC))
    subs = {s.name: s for s in config.subscribers}
    count = 0
    with store.transaction():
        for row in store.outbox(("pending", "failed")):
            if waiting_for_digest({**row, "state": "pending"}, subs.get(row["subscriber"])):
                if row["state"] == "failed":
                    store.update_outbox(row["id"], state="pending", attempts=0)
                    count += 1
                continue
            if row["state"] == "failed" or (row["next_attempt_at"] or "") > stamp:
                store.update_outbox(row["id"], state="pending", attempts=0, next_attempt_at=stamp)
                count += 1
    return count
