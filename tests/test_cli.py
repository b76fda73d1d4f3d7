"""The command line: history, show, check output and exit codes, diff and normalize on files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watcher import samples
from watcher.cli import main
from watcher.normalize import normalize, to_markdown

BEFORE = "only so long as it is necessary to achieve our stated purposes"
AFTER = "for seven (7) years after our last interaction with you"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def two_versions(web: HTTPServer, write_config) -> Path:
    """wesgar and planiso checked twice; wesgar's retention clause edited in between."""
    texts = {"wesgar": samples.seed_text("wesgar"), "planiso": samples.seed_text("planiso")}

    def handler(name: str):
        return lambda _req: Response(samples.page(name, text=texts[name]), content_type="text/html")

    for name in texts:
        web.expect_request(f"/{name}").respond_with_handler(handler(name))
    config = write_config("".join(f'[[site]]\nname = "{n}"\nurl = "{web.url_for("/" + n)}"\n' for n in texts))
    assert cli("check", "-c", str(config)).exit_code == 0
    texts["wesgar"] = texts["wesgar"].replace(BEFORE, AFTER)
    assert cli("check", "-c", str(config)).exit_code == 0
    return config


def test_check_table_output(web: HTTPServer, write_config) -> None:
    web.expect_request("/p").respond_with_handler(
        lambda _r: Response(samples.page("planiso"), content_type="text/html")
    )
    web.expect_request("/missing").respond_with_data("nope", status=404)
    config = write_config(
        f'[[site]]\nname = "planiso"\nurl = "{web.url_for("/p")}"\n'
        f'[[site]]\nname = "broken"\nurl = "{web.url_for("/missing")}"\n'
    )
    result = cli("check", "-c", str(config))
    assert result.exit_code == 1  # one site failed
    out = result.stdout
    assert "planiso" in out and "new" in out and "first version" in out
    assert "broken" in out and "error" in out and "HTTP 404" in out
    assert "checked 2 sites: 1 new, 1 error" in out
    result = cli("check", "-c", str(config), "planiso")
    assert result.exit_code == 0
    assert result.stdout.strip() == "checked 1 site: 1 unchanged"  # counted, not listed
    result = cli("check", "-c", str(config), "planiso", "--all")
    assert "same bytes as last time" in result.stdout and "checked 1 site: 1 unchanged" in result.stdout


def test_check_lists_what_needs_a_look_and_counts_the_rest(web: HTTPServer, write_config) -> None:
    """Only the edited site gets a row: a thousand rows of "unchanged" would bury it."""
    texts = {"wesgar": samples.seed_text("wesgar"), "planiso": samples.seed_text("planiso")}
    for name in texts:
        web.expect_request(f"/{name}").respond_with_handler(
            lambda _req, name=name: Response(samples.page(name, text=texts[name]), content_type="text/html")
        )
    config = write_config("".join(f'[[site]]\nname = "{n}"\nurl = "{web.url_for("/" + n)}"\n' for n in texts))
    assert cli("check", "-c", str(config)).exit_code == 0
    texts["wesgar"] = texts["wesgar"].replace(BEFORE, AFTER)
    out = cli("check", "-c", str(config)).stdout
    assert "wesgar" in out and "changed (" in out and "retention" in out
    assert "planiso" not in out
    assert "checked 2 sites: 1 changed (1 material), 1 unchanged" in out


def test_history(two_versions: Path) -> None:
    result = cli("history", "-c", str(two_versions), "wesgar", "--json")
    assert result.exit_code == 0, result.output
    versions = json.loads(result.stdout)
    assert [v["version"] for v in versions] == [1, 2]
    first, second = versions
    assert first["summary"] == "first version" and first["material"] is None
    assert second["material"] is True and "retention" in second["topics"]
    assert second["summary"]
    for v in versions:
        assert set(v) >= {"version", "first_seen", "last_seen", "effective_date", "severity", "topics", "summary"}
        assert v["first_seen"] <= v["last_seen"]
    table = cli("history", "-c", str(two_versions), "wesgar")
    assert table.exit_code == 0
    assert "first version" in table.stdout and "retention" in table.stdout
    planiso = json.loads(cli("history", "-c", str(two_versions), "planiso", "--json").stdout)
    assert [v["version"] for v in planiso] == [1]


def test_show(two_versions: Path) -> None:
    v1 = cli("show", "-c", str(two_versions), "wesgar", "--version", "1")
    assert v1.exit_code == 0
    assert v1.stdout == to_markdown(normalize(samples.page("wesgar")))
    assert BEFORE in v1.stdout and AFTER not in v1.stdout
    latest = cli("show", "-c", str(two_versions), "wesgar")
    assert latest.exit_code == 0 and AFTER in latest.stdout
    assert latest.stdout == cli("show", "-c", str(two_versions), "wesgar", "--version", "2").stdout
    snap = two_versions.parent / "snap" / "wesgar" / "latest.md"
    assert snap.read_text(encoding="utf-8") == latest.stdout


def test_show_and_history_errors(two_versions: Path, write_config) -> None:
    missing = cli("show", "-c", str(two_versions), "wesgar", "--version", "9")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "watcher: error: wesgar: no version 9"
    unknown = cli("history", "-c", str(two_versions), "acme")
    assert unknown.exit_code == 2
    assert "no site named 'acme'" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1
    unknown = cli("show", "-c", str(two_versions), "acme")
    assert unknown.exit_code == 2


def test_show_before_any_check(write_config) -> None:
    config = write_config('[[site]]\nname = "acme"\nurl = "https://example.org/privacy"\n')
    result = cli("show", "-c", str(config), "acme")
    assert result.exit_code == 1
    assert "no versions yet" in result.stderr and "watcher check acme" in result.stderr
    result = cli("history", "-c", str(config), "acme", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_config_from_the_environment(two_versions: Path, monkeypatch) -> None:
    monkeypatch.setenv("WATCHER_CONFIG", str(two_versions))
    result = cli("show", "wesgar", "--version", "1")
    assert result.exit_code == 0 and BEFORE in result.stdout


def test_check_without_sites(write_config) -> None:
    result = cli("check", "-c", str(write_config("")))
    assert result.exit_code == 2
    assert "no [[site]] entries" in result.stderr


def test_diff_json_on_files(tmp_path: Path) -> None:
    old, new = tmp_path / "old.html", tmp_path / "new.md"
    old.write_text(samples.page("wesgar", "divs"), encoding="utf-8")
    edited = samples.seed_text("wesgar").replace(BEFORE, AFTER)
    new.write_text(to_markdown(samples.seed_document("wesgar", edited)), encoding="utf-8")  # another format
    result = cli("diff", str(old), str(new), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"changed", "material", "topics", "effective_date", "sections"} <= set(out)
    assert out["changed"] is True
    assert set(out["effective_date"]) == {"before", "after"}
    assert [(s["status"], s["heading"]) for s in out["sections"]] == [
        ("modified", "How we use the personal information we collected")
    ]
    for s in out["sections"]:
        assert {"status", "heading", "heading_before", "topics", "before", "after"} <= set(s)
    same = json.loads(cli("diff", str(old), str(old), "--json").stdout)
    assert same["changed"] is False and same["sections"] == []


def test_diff_missing_file(tmp_path: Path) -> None:
    result = cli("diff", str(tmp_path / "a.html"), str(tmp_path / "b.html"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"watcher: error: {tmp_path / 'a.html'}: file not found"


def test_normalize_file_and_url(tmp_path: Path, web: HTTPServer) -> None:
    page = tmp_path / "p.html"
    page.write_text(samples.page("cantrex", "plain"), encoding="utf-8")
    want = to_markdown(normalize(samples.page("cantrex")))
    result = cli("normalize", str(page))
    assert result.exit_code == 0 and result.stdout == want

    def serve(_req: Request) -> Response:
        return Response(samples.page("cantrex").encode("cp1252"), content_type="text/html; charset=windows-1252")

    web.expect_request("/fr").respond_with_handler(serve)
    result = cli("normalize", web.url_for("/fr"), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["lang"] == "fr"
    headings = [s["heading"] for s in doc["sections"]]
    assert "Détermination des fins de la collecte de renseignements" in headings
    sel = cli("normalize", str(page), "--selector", "#nothing-here")
    assert sel.exit_code == 1 and "matches nothing" in sel.stderr


@pytest.mark.parametrize("command", ["check", "diff", "normalize", "history", "show", "demo"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout


@pytest.mark.parametrize("selector", ["p::first-line", "a:foo", "*:first-of-type", "main >> p"])
def test_invalid_selectors_fail_in_one_line(tmp_path: Path, selector: str) -> None:
    page = tmp_path / "p.html"
    page.write_text(samples.page("wesgar"), encoding="utf-8")
    result = cli("normalize", str(page), "--selector", selector)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "invalid CSS selector" in result.stderr and repr(selector) in result.stderr
