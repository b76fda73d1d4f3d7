"""Notifications end to end: real policy changes (sample pages on 127.0.0.1) recorded by real
cycles, delivered through apprise to a real SMTP server (aiosmtpd) and real HTTP receivers,
with the faults that happen in production: a receiver down, SMTP refusing, a killed process."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from email.message import Message as MailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner
from werkzeug import Request, Response

from watcher import notify, render, samples, times
from watcher.cli import main
from watcher.config import load
from watcher.cycle import run_cycle
from watcher.store import Store

RETENTION_OLD = (
    "only so long as it is necessary to achieve our stated purposes or if it is legally required that we "
    "retain such information."
)
RETENTION_NEW = "for seven (7) years after your last interaction with us."
SHARING_OLD = "ne doivent pas être utilisés ou communiqués par Cantrex à des fins autres"
SHARING_NEW = "peuvent être utilisés ou communiqués par Cantrex à ses partenaires publicitaires et à des fins autres"
DATE_OLD, DATE_NEW = "last updated July 2023.", "last updated March 2026."
SMTP_PASSWORD = "s3cr3t-Pa55word"
HOOK_PASSWORD = "hook-Pa55word-77"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pages:
    """The sample policies, served by the shared loopback server; edit them between checks."""

    def __init__(self, web) -> None:  # type: ignore[no-untyped-def]
        self.web = web
        self.texts = {name: samples.seed_text(name) for name in samples.SEEDS}
        self.failing: set[str] = set()
        self.count = 0
        web.expect_request(re.compile(r"^/policy/.+")).respond_with_handler(self._serve)

    def _serve(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[1]
        if name in self.failing:
            return Response("upstream broke", status=500)
        self.count += 1  # fresh tokens on every request, as real pages have
        body = samples.page(name, text=self.texts[name], token=f"{self.count:06x}")
        return Response(body, content_type="text/html; charset=utf-8")

    def url(self, name: str) -> str:
        return self.web.url_for(f"/policy/{name}")

    def edit(self, name: str, old: str, new: str) -> None:
        assert old in self.texts[name], f"the {name} seed no longer contains {old!r}"
        self.texts[name] = self.texts[name].replace(old, new)

    def sites(self, *names: str) -> str:
        return "".join(f'[[site]]\nname = "{n}"\nurl = "{self.url(n)}"\n\n' for n in names)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records every POST; `status` is what it answers."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.requests: list[tuple[str, dict, bytes]] = []
        self.status = 200
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append((self.path, dict(self.headers), body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def json(self, path: str | None = None) -> list[dict]:
        return [json.loads(b) for p, _, b in self.requests if path is None or p == path]

    def hook(self, path: str, auth: str = "") -> str:
        return f"json://{auth}127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


class Mailbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd) that checks a password and can refuse recipients."""

    def __init__(self) -> None:
        self.messages: list[MailMessage] = []
        self.refuse = False
        owner = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
                if owner.refuse:
                    return "550 5.7.1 relaying denied for this sender"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
                owner.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
            ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator, auth_require_tls=False
        )

    def url(self, to: str = "legal@example.org") -> str:
        return f"mailto://alice:{SMTP_PASSWORD}@127.0.0.1:{self.port}?to={to}&from=watcher@example.org"


@pytest.fixture
def mailbox():
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture
def pages(web) -> Pages:  # type: ignore[no-untyped-def]
    return Pages(web)


def check(config_path: Path) -> list:
    config = load(config_path)
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        return run_cycle(config, store)
    finally:
        store.close()


def deliver(config_path: Path, now: datetime | None = None) -> notify.DeliveryReport:
    config = load(config_path)
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        return notify.deliver(config, store, now=now)
    finally:
        store.close()


def outbox_rows(config_path: Path) -> list[dict]:
    config = load(config_path)
    store = Store(config.settings.database)
    try:
        return list(store.db.query("select * from outbox order by id"))
    finally:
        store.close()


def stored_change(config_path: Path, site: str) -> dict:
    config = load(config_path)
    store = Store(config.settings.database)
    try:
        change = store.last_change(site)
        assert change is not None, f"no material change of {site} was recorded"
        return change
    finally:
        store.close()


def secrets_absent(config_path: Path, *secrets: str) -> None:
    """No secret in the database file, its WAL, or the outbox as JSON."""
    folder = config_path.parent
    for f in folder.glob("w.db*"):
        data = f.read_bytes()
        for s in secrets:
            assert s.encode() not in data, f"{s!r} leaked into {f.name}"


def plain_and_html(msg: MailMessage) -> tuple[str, str]:
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
        for p in msg.walk()
        if not p.is_multipart()
    }
    return parts["text/plain"], parts["text/html"]


# ---------------------------------------------------------------------------------------


def test_email_arrives_with_subject_html_and_plain_parts(pages, mailbox, write_config, tmp_path) -> None:
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "legal"
urls = ["{mailbox.url()}"]
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    [result] = check(cfg)
    assert result.outcome == "changed" and result.material
    report = deliver(cfg)
    assert report.sent == 1 and not report.retrying, report.attempts

    assert len(mailbox.messages) == 1
    msg = mailbox.messages[0]
    change = stored_change(cfg, "wesgar")
    subject = str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    assert subject == notify.change_title("wesgar", render.change_from_row(change))
    assert subject.startswith("[watcher] wesgar privacy policy: ") and "retention" in subject
    assert subject.endswith(f"changed ({change['severity']})")
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = plain_and_html(msg)
    for body in (plain, html):
        assert "for seven (7) years after your last interaction with us" in body
        assert "only so long as it is necessary" in body
        assert pages.url("wesgar") in body
        assert "watcher diff " in body and "watcher history wesgar" in body
    assert "<ins" in html and "<del" in html and "Before:" in plain and "After:" in plain
    assert "<" not in plain  # a real plain-text alternative, not HTML
    # the diff command names the two snapshot files, which exist
    diff_cmd = re.search(r"watcher diff (\S+) (\S+)", plain)
    assert diff_cmd and Path(diff_cmd.group(1)).is_file() and Path(diff_cmd.group(2)).is_file()

    assert deliver(cfg).sent == 0 and len(mailbox.messages) == 1  # sent once
    assert [r["state"] for r in outbox_rows(cfg)] == ["sent"]
    secrets_absent(cfg, SMTP_PASSWORD)


def test_json_and_mattermost_webhooks_get_text_and_markdown(pages, receiver, write_config) -> None:
    token = "mm0hooktoken0secret0abc"
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "hooks"
urls = ["{receiver.hook("/hook", f"bot:{HOOK_PASSWORD}@")}", "mmost://127.0.0.1:{receiver.port}/{token}"]
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    check(cfg)
    assert deliver(cfg).sent == 1
    change = stored_change(cfg, "wesgar")
    title = notify.change_title("wesgar", render.change_from_row(change))

    [plain] = receiver.json("/hook")
    assert plain["title"] == title
    assert plain["type"] == ("warning" if change["severity"] == "high" else "info")
    assert "Before:" in plain["message"] and "After:" in plain["message"]
    assert "*for seven (7) years after your last interaction with us*" in plain["message"]
    assert "**" not in plain["message"]  # plain text, not Markdown
    headers = next(h for p, h, _ in receiver.requests if p == "/hook")
    assert headers["Authorization"].startswith("Basic ")

    [mm] = receiver.json(f"/hooks/{token}")
    assert mm["text"].startswith(title)  # Mattermost has no title field: apprise puts it first
    assert "> **After:** " in mm["text"]
    assert "**for seven (7) years after your last interaction with us**" in mm["text"]
    assert f"**Page:** {pages.url('wesgar')}" in mm["text"]
    secrets_absent(cfg, HOOK_PASSWORD, token)


def test_exact_slack_payload(pages, receiver, write_config, monkeypatch) -> None:
    """Slack's plugin always posts to https://hooks.slack.com and apprise has no host override
    for it, so the request is intercepted at the HTTP layer: a requests transport adapter
    rewrites that one host to the local receiver. apprise still builds, serialises and posts
    exactly the payload it would send to Slack; only the socket's destination changes."""
    slack_url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    original = requests.Session.get_adapter

    class ToLoopback(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            parts = urlsplit(request.url)
            request.url = f"http://127.0.0.1:{receiver.port}{parts.path}"
            kwargs["proxies"] = {}
            return super().send(request, **kwargs)

    loopback = ToLoopback()
    monkeypatch.setattr(
        requests.Session,
        "get_adapter",
        lambda self, url: loopback if urlsplit(url).hostname == "hooks.slack.com" else original(self, url),
    )
    cfg = write_config(
        pages.sites("wesgar", "cantrex")
        + f"""
[[subscriber]]
name = "privacy-team"
urls = ["{slack_url}"]
"""
    )
    check(cfg)
    pages.edit("cantrex", SHARING_OLD, SHARING_NEW)
    check(cfg)
    assert deliver(cfg).sent == 1
    [(path, headers, body)] = receiver.requests
    assert path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    assert headers["Content-Type"].startswith("application/json")
    payload = json.loads(body)
    config = load(cfg)
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        [row] = outbox_rows(cfg)
        message = notify.build_message(config, store, row)
    finally:
        store.close()
    assert "cantrex privacy policy: " in message.title and message.title.endswith("(high)")
    assert not re.search(r"[&<]|(?<!\n)>", message.markdown)  # nothing Slack would need to escape
    # the exact payload, but for the timestamp: legacy webhook attachment, CommonMark turned into
    # Slack mrkdwn (single-asterisk bold), French wording kept, high severity as a warning
    icon = payload["icon_url"]
    assert payload == {
        "mrkdwn": True,
        "attachments": [
            {
                "title": message.title,
                "text": message.markdown.strip().replace("**", "*"),
                "color": "#CACF29",
                "footer_icon": icon,
                "footer": "watcher",
                "ts": payload["attachments"][0]["ts"],
            }
        ],
        "icon_url": icon,
    }
    text = payload["attachments"][0]["text"]
    assert "> *After:* Les renseignements personnels *peuvent* être utilisés" in text
    assert "*ses partenaires publicitaires et à*" in text
    assert f"*Page:* {pages.url('cantrex')}" in text
    assert "warning" in icon


def test_receiver_down_then_up_delivers_once_later(pages, write_config) -> None:
    port = free_port()  # nothing listens here yet
    down = Receiver(port)
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "ops"
urls = ["{down.hook("/hook", f"bot:{HOOK_PASSWORD}@")}"]
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    check(cfg)
    t0 = datetime.now(UTC)
    report = deliver(cfg, now=t0)
    assert (report.sent, report.retrying) == (0, 1)
    [row] = outbox_rows(cfg)
    assert row["state"] == "pending" and row["attempts"] == 1
    assert "Connection" in row["last_error"] and HOOK_PASSWORD not in row["last_error"]
    assert row["next_attempt_at"] == times.iso(t0 + notify.backoff(1))

    up = down.start()
    try:
        assert deliver(cfg, now=t0 + timedelta(seconds=30)).sent == 0  # backing off
        assert up.requests == []
        assert deliver(cfg, now=t0 + timedelta(seconds=61)).sent == 1
        assert deliver(cfg, now=t0 + timedelta(hours=2)).sent == 0
        assert len(up.requests) == 1
        assert "for seven (7) years" in up.json()[0]["message"]
    finally:
        up.stop()
    [row] = outbox_rows(cfg)
    assert row["state"] == "sent" and row["attempts"] == 2
    secrets_absent(cfg, HOOK_PASSWORD)


def test_smtp_refusing_is_retried_and_never_blocks_other_targets(pages, mailbox, receiver, write_config) -> None:
    mailbox.refuse = True
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "legal"
urls = ["{mailbox.url()}", "{receiver.hook("/legal")}"]

[[subscriber]]
name = "ops"
urls = ["{receiver.hook("/ops")}"]
""",
        settings="max_attempts = 2\n",
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    check(cfg)
    t0 = datetime.now(UTC)
    report = deliver(cfg, now=t0)
    assert (report.sent, report.retrying) == (1, 1)
    assert len(receiver.json("/legal")) == 1 and len(receiver.json("/ops")) == 1
    legal = next(r for r in outbox_rows(cfg) if r["subscriber"] == "legal")
    assert "550" in legal["last_error"] and "relaying denied" in legal["last_error"]
    assert SMTP_PASSWORD not in legal["last_error"] and "mailto://alice:****@127.0.0.1" in legal["last_error"]

    # second and last attempt: only the refusing target is tried again
    report = deliver(cfg, now=t0 + timedelta(minutes=5))
    assert (report.sent, report.failed) == (0, 1)
    assert [a.target.split("://")[0] for a in report.attempts] == ["mailto"]
    assert len(receiver.json("/legal")) == 1

    runner = CliRunner()
    listed = runner.invoke(main, ["outbox", "--json", "-c", str(cfg)])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)["outbox"]
    assert row["state"] == "failed" and row["attempts"] == 2 and "550" in row["last_error"]
    assert {t["target"].split("://")[0]: t["delivered"] for t in row["targets"]} == {"mailto": False, "json": True}
    assert SMTP_PASSWORD not in listed.output

    mailbox.refuse = False
    retried = runner.invoke(main, ["outbox", "--retry", "-c", str(cfg)])
    assert retried.exit_code == 0, retried.output
    assert "nothing pending or failed" in retried.output and SMTP_PASSWORD not in retried.output
    assert len(mailbox.messages) == 1 and len(receiver.json("/legal")) == 1
    secrets_absent(cfg, SMTP_PASSWORD)


KILLED_CHECK = textwrap.dedent(
    """
    import sys
    from watcher.config import load
    from watcher.cycle import run_cycle
    from watcher.store import Store

    config = load(sys.argv[1])
    store = Store(config.settings.database, config.settings.snapshots)
    results = run_cycle(config, store)
    print("recorded", [r.outcome for r in results], flush=True)
    sys.stdin.read()  # the moment before sending: the test kills the process here
    """
)


def test_process_killed_after_recording_delivers_on_next_run(pages, receiver, write_config, tmp_path) -> None:
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "ops"
urls = ["{receiver.hook("/ops")}"]
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHECK, str(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("recorded") and "changed" in line, line + proc.stderr.read()  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert receiver.requests == []
    assert [r["state"] for r in outbox_rows(cfg)] == ["pending"]

    # the next one-shot run (a cron `watcher check`) sends it, once
    cmd = [sys.executable, "-m", "watcher", "check", "-c", str(cfg)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert len(receiver.requests) == 1
    assert deliver(cfg, now=datetime.now(UTC) + timedelta(days=1)).attempts == []
    assert len(receiver.requests) == 1
    assert "for seven (7) years" in receiver.json("/ops")[0]["message"]
    assert [r["state"] for r in outbox_rows(cfg)] == ["sent"]


def test_daily_digest_is_one_message_for_three_changes(pages, receiver, write_config) -> None:
    cfg = write_config(
        pages.sites("wesgar", "cantrex")
        + f"""
[[subscriber]]
name = "now"
urls = ["{receiver.hook("/now")}"]

[[subscriber]]
name = "digest"
urls = ["{receiver.hook("/digest")}"]
digest = "daily"
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    check(cfg)
    pages.edit("wesgar", DATE_OLD, DATE_NEW)
    pages.edit("cantrex", SHARING_OLD, SHARING_NEW)
    check(cfg)
    now = datetime.now(UTC)
    assert deliver(cfg, now=now).sent == 3
    assert len(receiver.json("/now")) == 3 and receiver.json("/digest") == []

    # the day is over: the three changes go out as one message, once
    report = deliver(cfg, now=now + timedelta(days=1))
    assert (report.batched, report.sent) == (1, 1)
    [digest] = receiver.json("/digest")
    assert digest["title"] == "[watcher] daily digest: 3 policy changes"
    titles = [m["title"].removeprefix("[watcher] ") for m in receiver.json("/now")]
    for t in titles:
        assert t in digest["message"]
    assert "for seven (7) years" in digest["message"] and "partenaires publicitaires" in digest["message"]
    assert deliver(cfg, now=now + timedelta(days=2)).sent == 0
    assert len(receiver.json("/digest")) == 1
    states = sorted(r["state"] for r in outbox_rows(cfg) if r["subscriber"] == "digest")
    assert states == ["batched", "batched", "batched", "sent"]


def test_topic_site_and_severity_filters_route_correctly(pages, receiver, write_config) -> None:
    cfg = write_config(
        pages.sites("wesgar", "cantrex")
        + "".join(
            f'[[subscriber]]\nname = "{name}"\nurls = ["{receiver.hook("/" + name)}"]\n{extra}\n\n'
            for name, extra in [
                ("all", ""),
                ("retention", 'topics = ["retention"]'),
                ("sharing", 'topics = ["sharing", "children"]'),
                ("cantrex-only", 'sites = ["cant*"]'),
                ("high", 'min_severity = "high"'),
            ]
        )
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    pages.edit("cantrex", SHARING_OLD, SHARING_NEW)
    check(cfg)
    wesgar, cantrex = stored_change(cfg, "wesgar"), stored_change(cfg, "cantrex")
    # what the routing below relies on (set by the classifier)
    assert "retention" in wesgar["topics"] and "sharing" not in wesgar["topics"] and wesgar["severity"] != "high"
    assert "sharing" in cantrex["topics"] and "retention" not in cantrex["topics"] and cantrex["severity"] == "high"
    assert deliver(cfg).sent == 6

    def sites_heard(path: str) -> list[str]:
        return sorted(m["title"].split()[1] for m in receiver.json(path))

    assert sites_heard("/all") == ["cantrex", "wesgar"]
    assert sites_heard("/retention") == ["wesgar"]
    assert sites_heard("/sharing") == ["cantrex"]
    assert sites_heard("/cantrex-only") == ["cantrex"]
    assert sites_heard("/high") == ["cantrex"]


def test_cosmetic_change_sends_nothing(pages, receiver, mailbox, write_config) -> None:
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "everything"
urls = ["{receiver.hook("/all")}", "{mailbox.url()}"]
errors = true
"""
    )
    check(cfg)
    pages.edit("wesgar", "website analytics", "web site analytics")
    [result] = check(cfg)
    assert result.outcome == "changed" and not result.material
    assert outbox_rows(cfg) == []
    assert deliver(cfg, now=datetime.now(UTC) + timedelta(days=8)).attempts == []
    assert receiver.requests == [] and mailbox.messages == []


def test_failure_alert_once_then_recovery(pages, receiver, write_config) -> None:
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "ops"
urls = ["{receiver.hook("/ops")}"]
errors = true

[[subscriber]]
name = "quiet"
urls = ["{receiver.hook("/quiet")}"]
""",
        settings="failure_alert_after = 2\n",
    )
    check(cfg)
    pages.failing.add("wesgar")
    config = load(cfg)
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        for _ in range(4):
            store.update_state("wesgar", next_due=None, retry_not_before=None)
            [r] = run_cycle(config, store)
            assert r.outcome == "error"
        pages.failing.clear()
        [r] = run_cycle(config, store)
        assert r.outcome == "unchanged"
        assert notify.deliver(config, store).sent == 2
    finally:
        store.close()
    titles = [m["title"] for m in receiver.json("/ops")]
    assert titles == [
        "[watcher] wesgar privacy policy: check failing (2 times in a row)",
        "[watcher] wesgar privacy policy: checks work again",
    ]
    failure = receiver.json("/ops")[0]["message"]
    assert "HTTP 500" in failure and pages.url("wesgar") in failure and "watcher check wesgar" in failure
    assert "after 4 failed checks" in receiver.json("/ops")[1]["message"]
    assert receiver.json("/quiet") == []


def test_notify_test_sends_a_sample_and_masks_secrets(receiver, mailbox, write_config, pages) -> None:
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "legal"
urls = ["{mailbox.url()}", "{receiver.hook("/legal", f"bot:{HOOK_PASSWORD}@")}"]

[[subscriber]]
name = "other"
urls = ["{receiver.hook("/other")}"]
"""
    )
    result = CliRunner().invoke(main, ["notify-test", "legal", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert SMTP_PASSWORD not in result.output and HOOK_PASSWORD not in result.output
    assert "legal: mailto://alice:****@127.0.0.1" in result.output
    assert "legal: json://bot:****@127.0.0.1" in result.output
    assert result.output.count(": sent") == 2
    [mail] = mailbox.messages
    assert "(test) wesgar privacy policy" in str(mail["Subject"]) or "test" in str(mail["Subject"])
    [sample] = receiver.json("/legal")
    assert sample["title"].startswith("[watcher] (test) wesgar privacy policy")
    assert "for seven (7) years" in sample["message"]
    assert receiver.json("/other") == []

    receiver.status = 500
    failed = CliRunner().invoke(main, ["notify-test", "other", "-c", str(cfg)])
    assert failed.exit_code == 1 and "failed: " in failed.output and "500" in failed.output
    unknown = CliRunner().invoke(main, ["notify-test", "nobody", "-c", str(cfg)])
    assert unknown.exit_code == 2 and "no subscriber named 'nobody'" in unknown.output


def test_check_no_notify_leaves_the_outbox_for_later(pages, receiver, write_config) -> None:
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "ops"
urls = ["{receiver.hook("/ops")}"]
"""
    )
    runner = CliRunner()
    assert runner.invoke(main, ["check", "-c", str(cfg)]).exit_code == 0
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    first = runner.invoke(main, ["check", "--no-notify", "--json", "-c", str(cfg)])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)[0]["outcome"] == "changed"
    assert receiver.requests == []
    listed = runner.invoke(main, ["outbox", "-c", str(cfg)])
    assert listed.exit_code == 0 and "change wesgar -> ops: pending, waiting for delivery" in listed.output
    assert "json://127.0.0.1" in listed.output and "not yet" in listed.output
    assert runner.invoke(main, ["check", "-c", str(cfg)]).exit_code == 0
    assert len(receiver.requests) == 1


def test_a_sender_that_died_mid_send_is_retried_after_its_lease(pages, receiver, write_config) -> None:
    """A sender leases a row before sending; if it dies before marking it (the crash window the
    README documents), no one else sends that row until the lease ends, then it goes out once."""
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "ops"
urls = ["{receiver.hook("/ops")}"]
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    check(cfg)
    now = datetime.now(UTC)
    [row] = outbox_rows(cfg)
    config = load(cfg)
    store = Store(config.settings.database)
    try:  # what the dead sender did before it died: the lease
        assert store.claim_outbox(row["id"], row["next_attempt_at"], times.iso(now + notify.LEASE))
        assert not store.claim_outbox(row["id"], row["next_attempt_at"], times.iso(now + notify.LEASE))
    finally:
        store.close()
    assert deliver(cfg, now=now + timedelta(minutes=1)).attempts == []
    assert receiver.requests == []
    assert deliver(cfg, now=now + notify.LEASE + timedelta(seconds=1)).sent == 1
    assert deliver(cfg, now=now + notify.LEASE + timedelta(hours=1)).attempts == []
    assert len(receiver.requests) == 1


def test_each_target_is_instantiated_once_per_send(pages, receiver, write_config, monkeypatch) -> None:
    import apprise

    token = "mm0hooktoken0secret0xyz"
    cfg = write_config(
        pages.sites("wesgar")
        + f"""
[[subscriber]]
name = "hooks"
urls = ["{receiver.hook("/hook")}", "mmost://127.0.0.1:{receiver.port}/{token}"]
"""
    )
    check(cfg)
    pages.edit("wesgar", RETENTION_OLD, RETENTION_NEW)
    check(cfg)
    config = load(cfg)  # loading checks the URLs with apprise too: not part of a send
    made: list[str] = []
    real = apprise.Apprise.instantiate

    def counted(url, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(str(url).split("://", 1)[0])
        return real(url, *args, **kwargs)

    monkeypatch.setattr(apprise.Apprise, "instantiate", staticmethod(counted))
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        report = notify.deliver(config, store)
    finally:
        store.close()
    assert report.sent == 1 and len(receiver.requests) == 2
    assert sorted(made) == ["json", "mmost"]  # format, label, send and secrets share one plugin per target


def test_page_url_from_the_configuration_is_redacted(write_config, tmp_path) -> None:
    config = load(write_config('[[site]]\nname = "acme"\nurl = "https://bot:hunter22@acme.example/p?token=abc123"\n'))
    store = Store(config.settings.database)
    try:  # no check has stored the site yet: the URL comes from sites.toml
        row = {"id": 1, "kind": "failure", "site": "acme", "payload": json.dumps({"failures": 3, "error": "HTTP 503"})}
        text = notify.build_message(config, store, row).text
    finally:
        store.close()
    assert "acme.example/p" in text and "hunter22" not in text and "abc123" not in text
