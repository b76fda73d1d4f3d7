"""Exports: JSON Lines and CSV that load back with the standard library, and the OTA-style Markdown tree."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from ota_history import filled_project

from watcher.cli import main
from watcher.config import Config
from watcher.store import Store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def project(tmp_path: Path, write_config) -> Config:
    return filled_project(tmp_path, write_config)


def export(config: Config, *args: str) -> str:
    result = CliRunner().invoke(main, ["export", *args, "-c", str(config.path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_jsonl_and_csv_round_trip(project: Config, tmp_path: Path) -> None:
    export(project, "--format", "jsonl", str(tmp_path / "h.jsonl"))
    export(project, "--format", "csv", str(tmp_path / "h.csv"))
    records = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text(encoding="utf-8").splitlines()]
    with (tmp_path / "h.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))

    assert len(records) == len(rows) == 4 + 3 + 2 + 1 + 1  # Acme 4 versions + 3 changes, Exemple 2 + 1, terms 1
    for rec, row in zip(records, rows, strict=True):
        assert row["record"] == rec["record"] and row["site"] == rec["site"] and row["at"] == rec["at"]
        assert int(row["id"]) == rec["id"] and int(row["version"]) == rec["version"]
        if rec["record"] == "change":
            assert [t for t in row["topics"].split(";") if t] == rec["topics"]
            assert json.loads(row["facts"]) == rec["facts"]
            assert json.loads(row["sections"]) == rec["sections"]
            assert row["material"] == ("true" if rec["material"] else "false")
            assert (row["severity"], row["summary"]) == (rec["severity"], rec["summary"])
            assert int(row["from_version"]) == rec["from_version"] == rec["version"] - 1
        else:
            assert row["effective_date"] == (rec["effective_date"] or "") and row["lang"] == rec["lang"]

    exemple = [r for r in records if r["site"] == "Exemple"]
    assert [r["record"] for r in exemple] == ["version", "version", "change"]
    change = exemple[2]
    assert change["at"] == "2024-09-12T06:00:00.000000Z" and change["severity"] == "high"
    assert {"retention", "sharing"} <= set(change["topics"])
    assert {"kind": "period", "before": "trois (3) ans", "after": "cinq (5) ans"}.items() <= next(
        f for f in change["facts"] if f["kind"] == "period"
    ).items()
    assert (change["effective_before"], change["effective_after"]) == ("2024-03-05", "2024-09-12")


def test_site_and_since_filters_and_text(project: Config) -> None:
    out = export(project, "--format", "jsonl", "--site", "Acme", "--since", "2024-06-03T10:00:00Z", "--with-text")
    records = [json.loads(line) for line in out.splitlines()]
    assert {r["site"] for r in records} == {"Acme"}
    assert [(r["record"], r["version"]) for r in records] == [
        ("version", 2),
        ("change", 2),
        ("version", 3),
        ("change", 3),
        ("version", 4),
        ("change", 4),
    ]
    assert "under 16" in records[-2]["markdown"]
    assert export(project, "--format", "csv", "--since", "2026-01-01").strip() == (
        "record,site,id,version,from_version,at,last_seen,effective_date,effective_before,effective_after,"
        "material,severity,topics,facts,summary,sections,title,lang,text_hash"
    )


def test_bad_arguments_fail_in_one_line(project: Config) -> None:
    runner = CliRunner()
    for args, words in (
        (["--since", "last tuesday"], "--since 'last tuesday': not a date"),
        (["--site", "Nobody"], "no site named 'Nobody'"),
        (["--format", "markdown-tree"], "needs a destination folder"),
    ):
        result = runner.invoke(main, ["export", *args, "-c", str(project.path)])
        assert result.exit_code == 2 and words in result.stderr and result.stderr.count("\n") == 1  # usage errors


def test_mistyped_site_leaves_an_existing_output_file_alone(project: Config, tmp_path: Path) -> None:
    dest = tmp_path / "history.jsonl"
    dest.write_text("yesterday's export\n", encoding="utf-8")
    for fmt in ("jsonl", "csv"):
        result = CliRunner().invoke(
            main, ["export", "--format", fmt, "--site", "Acne", str(dest), "-c", str(project.path)]
        )
        assert result.exit_code == 2 and "no site named 'Acne'" in result.stderr
        assert dest.read_text(encoding="utf-8") == "yesterday's export\n"


def test_last_seen_is_the_last_successful_check_and_text_only_on_request(project: Config) -> None:
    store = Store(project.settings.database)
    try:  # an unchanged check updates site_state, not the version row
        store.update_state("Acme", last_success="2025-04-02T08:00:00.000000Z")
    finally:
        store.close()
    records = [json.loads(line) for line in export(project, "--site", "Acme").splitlines()]
    versions = [r for r in records if r["record"] == "version"]
    assert versions[-1]["last_seen"] == "2025-04-02T08:00:00.000000Z"
    assert versions[0]["last_seen"] < "2025-04-02"
    assert all("markdown" not in r for r in records)


def test_write_and_database_errors_are_one_line(project: Config, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    runner = CliRunner()
    for args in (
        ["--format", "markdown-tree", str(blocker / "dataset")],
        ["--format", "jsonl", str(blocker / "h.jsonl")],
    ):
        result = runner.invoke(main, ["export", *args, "-c", str(project.path)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
        assert str(blocker) in result.stderr and "cannot" in result.stderr
    store = Store(project.settings.database)
    try:
        store.db.execute("drop table changes")  # the schema version stays: only reading fails
    finally:
        store.close()
    result = runner.invoke(main, ["export", "--format", "csv", "-c", str(project.path)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot read the database" in result.stderr and "no such table" in result.stderr


def test_markdown_tree_has_the_open_terms_archive_layout(project: Config, tmp_path: Path) -> None:
    export(project, "--format", "markdown-tree", str(tmp_path / "dataset"))
    files = sorted(p.relative_to(tmp_path / "dataset").as_posix() for p in (tmp_path / "dataset").rglob("*.md"))
    assert files == [
        "Acme/Privacy Policy/2024-01-10T07-00-00Z.md",
        "Acme/Privacy Policy/2024-06-03T10-00-00Z.md",
        "Acme/Privacy Policy/2024-07-01T12-00-00Z.md",
        "Acme/Privacy Policy/2025-02-14T15-45-00Z.md",
        "Acme/Terms of Service/2025-03-01T00-00-00Z.md",
        "Exemple/Privacy Policy/2024-03-05T09-30-00Z.md",
        "Exemple/Privacy Policy/2024-09-12T06-00-00Z.md",
    ]
    store = Store(project.settings.database)
    try:
        want = store.version("Exemple", 2)["markdown"]
    finally:
        store.close()
    got = (tmp_path / "dataset" / "Exemple" / "Privacy Policy" / "2024-09-12T06-00-00Z.md").read_text(encoding="utf-8")
    assert got == want and "Nous partageons vos données" in got
