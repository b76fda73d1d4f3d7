"""Message rendering (pure): titles, before/after excerpts, what was left out, per-target formats,
and that secrets are masked wherever a target is shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from watcher import demo, notify, render, samples
from watcher.classify import classify
from watcher.models import WordOp
from watcher.normalize import normalize

NAMES = ["Information we collect", "How long we keep it", "Who we share it with", "Security", "Children", "Contact us"]
INTRO = "We describe here, in plain words and with examples, how the company handles the personal information of its customers. "


def policy(template: str) -> str:
    return "# Policy\n\n" + "\n\n".join(f"## {n}\n\n{INTRO}{template.format(i=i)}" for i, n in enumerate(NAMES, 1))


def demo_change(name: str) -> dict:
    change = classify(samples.seed_document(name), samples.seed_document(name, demo._edited(name)))
    return render.change_json(change)


def test_title_names_site_topics_and_severity() -> None:
    row = {"material": True, "severity": "high", "topics": ["sharing", "retention"], "summary": "s", "sections": []}
    msg = notify.change_message("Acme", "https://acme.example/privacy", row)
    assert msg.title == "[watcher] Acme privacy policy: sharing, retention changed (high)"
    assert msg.notify_type == "warning"
    row = {**row, "severity": "low", "topics": ["effective_date"]}
    assert notify.change_message("Acme", "u", row).title == "[watcher] Acme privacy policy: stated date changed (low)"


def test_body_has_summary_before_after_date_page_and_commands() -> None:
    row = demo_change("wesgar")
    cmds = [("Full diff", "watcher diff a.md b.md"), ("History", "watcher history wesgar")]
    msg = notify.change_message("wesgar", "https://wesgar.example/privacy", row, commands=cmds)
    text = msg.text
    assert text.startswith(row["summary"])
    assert "Stated date: 2023-07 → 2026-03" in text
    assert "Before: " in text and "*only so long as it is necessary" in text
    assert "After: " in text and "*for seven (7) years after your last interaction with us*" in text
    assert "Page: https://wesgar.example/privacy" in text
    assert "Full diff: watcher diff a.md b.md" in text and "History: watcher history wesgar" in text
    # the terms that moved come before the section whose only news is the date
    assert text.index("seven (7) years") < text.index("last updated")
    md = msg.markdown
    assert "> **After:** " in md and "**for seven (7) years after your last interaction with us**" in md
    assert "`watcher diff a.md b.md`" in md and not re.search(r"\*\*\s*\*\*", md)
    assert '<ins style="' in msg.html and "for seven (7) years" in msg.html
    doc = notify.html_document(msg)
    assert doc.startswith("<!doctype html>") and "<style" not in doc  # inline styles only, for mail clients


def test_sections_and_edits_left_out_are_counted() -> None:
    old = normalize(policy("We keep your data for {i} months and share it with our partner number {i} only."))
    new = normalize(policy("We keep your data for 1{i} years and share it with advertisers number {i} only."))
    row = render.change_json(classify(old, new))
    msg = notify.change_message("acme", "https://acme.example/privacy", row)
    assert msg.text.count("Before: ") == notify.MAX_SECTIONS
    assert "(3 more changed sections not shown)" in msg.text
    assert "_3 more changed sections not shown_" in msg.markdown
    one = notify.change_message("acme", "https://acme.example/privacy", row, sections=1)
    assert "(5 more changed sections not shown)" in one.text


def test_long_edits_are_trimmed_with_a_count() -> None:
    ops: list[WordOp] = []
    for i in range(30):
        ops += [
            WordOp(0, f"clause {i} says that the company may keep some records "),
            WordOp(-1, "briefly"),
            WordOp(1, "forever"),
        ]
    ops.append(WordOp(0, " and that is all."))
    before, after, left = notify.excerpt(ops, budget=300)
    assert 0 < left < 30
    shown = sum(1 for kind, _ in after if kind == "ins")
    assert shown + left == 30
    assert "".join(t for _, t in before).endswith(" …") and len("".join(t for _, t in after)) < 600

    words = " ".join(f"word{i}" for i in range(200))
    row = {
        "material": True,
        "severity": "medium",
        "topics": ["use"],
        "summary": "A section was added.",
        "sections": [
            {"status": "added", "heading": "New uses", "heading_before": "", "after": words, "topics": ["use"]}
        ],
    }
    text = notify.change_message("acme", "u", row).text
    assert f"word{notify.RUN_WORDS - 1} …" in text and f"word{notify.RUN_WORDS} " not in text
    assert f"({200 - notify.RUN_WORDS} more words not shown)" in text


def test_french_excerpts_stay_french() -> None:
    row = demo_change("cantrex")
    msg = notify.change_message("cantrex", "https://cantrex.example/confidentialite", row)
    assert row["lang"] == "fr"
    assert "partenaires publicitaires" in msg.text and "ne doivent pas" in msg.text
    assert "Before: " in msg.text  # the frame stays English
    assert re.search(r'<p lang="fr"[^>]*><strong>After: </strong>[^<]*<ins[^>]*>peuvent</ins>', msg.html)


def test_failure_recovery_and_digest_messages() -> None:
    fail = notify.failure_message(
        "acme",
        "https://acme.example/p",
        {"failures": 3, "error": "HTTP 503 Service Unavailable", "since": "2026-03-01"},
    )
    assert fail.title == "[watcher] acme privacy policy: check failing (3 times in a row)"
    assert "HTTP 503" in fail.text and "2026-03-01" in fail.text and fail.notify_type == "failure"
    ok = notify.recovery_message("acme", "https://acme.example/p", {"failures": 3})
    assert "after 3 failed checks" in ok.text and ok.notify_type == "success"
    change = notify.change_message("wesgar", "https://w.example", demo_change("wesgar"))
    digest = notify.digest_message("weekly", [("change", change), ("failure", fail), ("recovery", ok)])
    assert digest.title == "[watcher] weekly digest: 1 policy change and 2 site alerts"
    assert digest.notify_type == "failure"
    for item in (change, fail, ok):
        assert item.title.removeprefix("[watcher] ") in digest.text


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("mailto://user:pw@smtp.example.org?to=a@example.org", "html"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7", "markdown"),
        ("discord://1234567/abcdefgTOKEN", "markdown"),
        ("mmost://chat.example.org/abcdefTOKEN123", "markdown"),
        ("json://hooks.example.org/path", "text"),
        ("ntfy://ntfy.example.org/topic", "text"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7?format=text", "text"),
    ],
)
def test_each_target_gets_its_format(url: str, fmt: str) -> None:
    assert notify.target_format(url) == fmt


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("mailtos://alice:Sup3r-secret@smtp.example.org?to=legal@example.org", ["Sup3r-secret"]),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7", ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7"]),
        ("json://bot:h00k%2Fpass@hooks.example.org/in", ["h00k/pass", "h00k%2Fpass"]),
        ("mmost://chat.example.org/abcdefTOKEN123", ["abcdefTOKEN123"]),
    ],
)
def test_targets_are_shown_and_errors_stored_without_secrets(url: str, secrets: list[str]) -> None:
    label = notify.target_label(url)
    error = notify.scrub(f"could not post to {url} (token {secrets[-1]} refused)", [url])
    for s in secrets:
        assert s not in label and s not in error
    assert label.split("://")[0] == url.split("://")[0] and "***" in error


def test_backoff_and_digest_periods() -> None:
    assert [notify.backoff(n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert notify.backoff(30) == timedelta(seconds=notify.BACKOFF_MAX)
    sunday = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
    monday = sunday + timedelta(minutes=2)
    assert notify.period(sunday, "daily") != notify.period(monday, "daily")
    assert notify.period(sunday, "weekly") != notify.period(monday, "weekly")
    assert notify.period(monday, "weekly") == notify.period(monday + timedelta(days=6), "weekly")


def test_sample_message_is_a_real_change() -> None:
    msg = notify.sample_message()
    assert msg.title.startswith("[watcher] (test) wesgar privacy policy: ")
    assert "seven (7) years" in msg.text and "notify-test" in msg.text
