"""Every labelled case in tests/cases (made by tests/make_cases.py) through watcher.classify.

The same checks as /work/shared/eval/score.py, per case and in-process: material exactly,
required topics present and nothing outside required + allowed, a changed section whose
heading contains one of the expected substrings, and the stated dates.

Cases watcher currently gets wrong are strict xfails with a diagnosis: once the classifier
is fixed they turn into failures, and the mark must be removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watcher.classify import classify
from watcher.cli import load_source
from watcher.models import Change

CASES = Path(__file__).resolve().parent / "cases"

# case name -> why watcher gets it wrong today (each one a classifier failure, see the report)
KNOWN_FAILURES: dict[str, str] = {}


def _case_dirs() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "expected.json").is_file())


def _params() -> list:
    out = []
    for d in _case_dirs():
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[d.name])] if d.name in KNOWN_FAILURES else []
        out.append(pytest.param(d, id=d.name, marks=marks))
    return out


def _run(case: Path) -> Change:
    (old,) = case.glob("old.*")
    (new,) = case.glob("new.*")
    return classify(load_source(str(old)), load_source(str(new)))


def test_there_are_enough_cases_in_both_languages() -> None:
    langs = [json.loads((d / "expected.json").read_text("utf-8"))["lang"] for d in _case_dirs()]
    assert len(langs) >= 40
    assert langs.count("fr") >= 10
    noise = [d for d in _case_dirs() if not json.loads((d / "expected.json").read_text("utf-8"))["material"]]
    assert len(noise) >= 15


def test_known_failures_name_existing_cases() -> None:
    names = {d.name for d in _case_dirs()}
    assert set(KNOWN_FAILURES) <= names


@pytest.mark.parametrize("case", _params())
def test_case(case: Path) -> None:
    exp = json.loads((case / "expected.json").read_text("utf-8"))
    change = _run(case)
    problems: list[str] = []
    if change.material != exp["material"]:
        problems.append(f"material {change.material}, want {exp['material']} (noise: {change.noise}; {change.summary})")
    if exp["material"]:
        got, req, allowed = set(change.topics), set(exp["topics"]), set(exp["allowed"])
        if not req <= got:
            problems.append(f"topics {sorted(got)} miss {sorted(req - got)}")
        if got - req - allowed:
            problems.append(f"topics {sorted(got)} include unexpected {sorted(got - req - allowed)}")
        if exp["sections"]:
            heads = [
                f"{s.heading or ''} || {s.heading_before or ''}".lower() for s in change.sections if s.status != "moved"
            ]
            if not any(want.lower() in head for want in exp["sections"] for head in heads):
                problems.append(f"sections {heads[:4]} want one of {exp['sections']}")
    if exp["dates"] is not None:
        got_dates = {"before": change.effective_date.get("before"), "after": change.effective_date.get("after")}
        if got_dates != exp["dates"]:
            problems.append(f"dates {got_dates} want {exp['dates']}")
    assert not problems, f"{case.name}: " + "; ".join(problems)
