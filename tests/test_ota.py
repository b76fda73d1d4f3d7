"""Open Terms Archive interop: declarations become [[site]] entries, a versions repository becomes history."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from ota_history import DECLARATIONS, SITES, build_versions_repo, git

from watcher import ota
from watcher.cli import main
from watcher.config import load
from watcher.normalize import normalize
from watcher.store import Store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# ----------------------------------------------------------------------------------------
# declarations


def test_declarations_folder_becomes_sites_and_every_unsupported_feature_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "sites.toml"
    config.write_text('[settings]\ninterval = "1d"\n\n[[site]]\nname = "kept"\nurl = "https://kept.example/"\n')
    code, _, err = run("import", "ota-declarations", str(DECLARATIONS), "-c", str(config))

    assert code == 1  # Broken.json is invalid: reported, the others still imported
    loaded = load(config)
    sites = {s.name: s for s in loaded.sites}
    assert set(sites) == {"kept", "Acme", "Exemple", "Legacy"}
    acme = sites["Acme"]
    assert (acme.url, acme.selector, acme.remove) == (
        "https://acme.example/privacy",
        "main .policy",
        [".cookie-banner", "nav"],
    )
    # the range selector became sibling selectors next to the plain one
    assert (
        sites["Exemple"].selector
        == ".intro, #politique:not(#pied):not(#pied ~ *), #politique ~ *:not(#pied):not(#pied ~ *)"
    )
    assert sites["Exemple"].remove == ["#banniere ~ *:not(#fin-banniere ~ *)"]
    # a range that cannot be expressed drops the whole select: half a selector would lose text
    assert sites["Legacy"].selector is None and sites["Legacy"].remove == [".ads"]

    assert "Broken.json: error: invalid JSON" in err
    assert "Exemple: note: filter functions not applied: removeTrackingLinks" in err
    assert "Exemple: note: executeClientScripts" in err
    assert "Combo: note: Privacy Policy: 'combine' of 2 pages is not supported" in err
    assert "https://combo.example/privacy/eu" in err
    assert "Legacy: note: range selector in 'select'" in err and "not supported" in err
    assert "Paper: note: Privacy Policy: https://paper.example/privacy.pdf is a PDF" in err
    assert "Acme: note: not imported (other terms types; use --terms-type): Terms of Service" in err
    assert "Acme.history" not in err  # history files are not declarations
    text = config.read_text()
    assert "# note: filter functions not applied: removeTrackingLinks" in text  # the notes stay with the entry

    # a second import adds nothing and says why
    code, _, err = run("import", "ota-declarations", str(DECLARATIONS / "Acme.json"), "-c", str(config))
    assert code == 0
    assert "a site named 'Acme' is already in" in err
    assert len(load(config).sites) == 4


def test_other_terms_types_on_request_and_dry_run(tmp_path: Path) -> None:
    config = tmp_path / "sites.toml"
    code, out, err = run(
        "import",
        "ota-declarations",
        str(DECLARATIONS / "Acme.json"),
        "--terms-type",
        "Terms of Service",
        "--dry-run",
        "-c",
        str(config),
    )
    assert code == 0, err
    assert not config.exists()  # dry run writes nothing
    sites = tomllib.loads(out)["site"]
    assert sites == [{"name": "Acme (Terms of Service)", "url": "https://acme.example/terms", "selector": "main"}]
    assert "Acme: note: not imported (other terms types; use --terms-type): Privacy Policy" in err


def test_range_selector_picks_the_range_of_siblings() -> None:
    page = """<html><body><div id="banniere">Bandeau</div><p>cookies ?</p><div id="fin-banniere">ok</div>
    <main><p class="intro">Introduction générale.</p><h2 id="politique">Politique</h2>
    <p>Nous conservons vos données pendant trois ans.</p><p>Nous ne vendons pas vos données.</p>
    <div id="pied">Mentions légales et plan du site</div><p>Après le pied.</p></main></body></html>"""
    css = ota.range_to_css({"startBefore": "#politique", "endBefore": "#pied"})
    text = normalize(page, selector=f".intro, {css}").text
    assert "Introduction générale." in text and "trois ans" in text and "ne vendons pas" in text
    assert "Mentions légales" not in text and "Après le pied" not in text and "Bandeau" not in text
    with pytest.raises(ValueError):
        ota.range_to_css({"startBefore": "#a"})


def test_site_names_round_trip() -> None:
    assert ota.site_name("Acme", "Privacy Policy") == "Acme"
    assert ota.split_site_name(ota.site_name("Acme", "Terms of Service")) == ("Acme", "Terms of Service")
    assert ota.split_site_name("Shop (EU)") == ("Shop (EU)", "Privacy Policy")


# ----------------------------------------------------------------------------------------
# versions


def test_versions_repository_backfills_history_and_keeps_technical_upgrades_out_of_changes(
    tmp_path: Path, write_config
) -> None:
    repo = build_versions_repo(tmp_path / "versions")
    config = write_config(SITES)
    code, out, err = run("import", "ota-versions", str(repo), "--service", "Acme", "-c", str(config))
    assert code == 0, err
    assert "Acme: 4 version(s), 3 change(s) (2 material, 1 technical upgrade(s)); 1 commit(s) without new text" in out

    store = Store(tmp_path / "w.db")
    try:
        versions = store.versions("Acme")
        changes = store.changes("Acme")
    finally:
        store.close()
    # dated by the commits, in UTC (the first commit was made at 08:00 +01:00)
    assert [v["first_seen"] for v in versions] == [
        "2024-01-10T07:00:00.000000Z",
        "2024-06-03T10:00:00.000000Z",
        "2024-07-01T12:00:00.000000Z",
        "2025-02-14T15:45:00.000000Z",
    ]
    assert versions[2]["last_seen"] == "2024-11-02T06:00:00.000000Z"  # the refilter found the same text
    assert [v["effective_date"] for v in versions] == ["2024-01-10", "2024-06-03", "2024-06-03", "2025-02-14"]
    retention, technical, children = changes
    assert retention["material"] and "retention" in retention["topics"]
    assert any(f["before"] == "as long as necessary" and f["after"] == "for five (5) years" for f in retention["facts"])
    # the upgrade added a contact e-mail: material if it were classified, which it must not be
    assert not technical["material"] and technical["severity"] == "none" and technical["topics"] == []
    assert technical["summary"] == ota.TECHNICAL_SUMMARY
    # the next real change is compared with the upgraded text: the contact section is not in it again
    assert children["material"] and "children" in children["topics"]
    assert all(s["heading"] != "Contact" for s in children["sections"])
    assert (tmp_path / "snap" / "Acme" / "2024-01-10T07-00-00Z.md").is_file()

    # running it again only looks for newer commits
    code, out, _ = run("import", "ota-versions", str(repo), "--service", "Acme", "-c", str(config))
    assert code == 0 and "Acme: 0 version(s), 0 change(s)" in out and "5 already imported" in out


def test_versions_import_other_terms_and_french(tmp_path: Path, write_config) -> None:
    repo = build_versions_repo(tmp_path / "versions")
    config = write_config(SITES)
    code, out, err = run(
        "import", "ota-versions", str(repo), "--service", "Acme", "--terms", "Terms of Service", "-c", str(config)
    )
    assert code == 0, err
    assert out.startswith("Acme (Terms of Service): 1 version(s), 0 change(s)")
    code, out, err = run("import", "ota-versions", str(repo), "--service", "Exemple", "-c", str(config))
    assert code == 0, err
    store = Store(tmp_path / "w.db")
    try:
        (change,) = store.changes("Exemple")
        assert store.latest_version("Exemple")["lang"] == "fr"
    finally:
        store.close()
    assert change["material"] and {"retention", "sharing"} <= set(change["topics"])


def test_versions_import_errors_are_one_line(tmp_path: Path, write_config) -> None:
    repo = build_versions_repo(tmp_path / "versions")
    config = write_config(SITES)
    code, _, err = run("import", "ota-versions", str(repo), "--service", "Acm", "--site", "Acme", "-c", str(config))
    assert code == 1
    assert err.count("\n") == 1
    assert "no commit touches 'Acm/Privacy Policy.md'" in err and "similar services: Acme" in err
    code, _, err = run("import", "ota-versions", str(tmp_path), "--service", "Acme", "-c", str(config))
    assert code == 1 and "not a git repository" in err
    code, _, err = run("import", "ota-versions", str(repo), "--service", "Nobody", "-c", str(config))
    assert code == 2 and "no site named 'Nobody'" in err


def test_versions_import_stores_the_site_url_without_credentials(tmp_path: Path, write_config) -> None:
    repo = build_versions_repo(tmp_path / "versions")
    config = write_config('[[site]]\nname = "Acme"\nurl = "https://bot:hunter22@acme.example/privacy?token=abc123"\n')
    code, _, err = run("import", "ota-versions", str(repo), "--service", "Acme", "-c", str(config))
    assert code == 0, err
    store = Store(tmp_path / "w.db")
    try:
        url = store.site_row("Acme")["url"]
    finally:
        store.close()
    assert "hunter22" not in url and "abc123" not in url and url.startswith("https://***:***@acme.example/")
    assert b"hunter22" not in (tmp_path / "w.db").read_bytes()


def test_unreadable_commit_stops_the_import_in_one_line_naming_repo_and_commit(tmp_path: Path, write_config) -> None:
    repo = build_versions_repo(tmp_path / "versions")
    # a commit whose Markdown nests lists thousands of levels deep: normalize cannot read it
    deep = "# Privacy\n\n" + "\n".join("  " * i + f"- item {i}" for i in range(3000)) + "\n"
    (repo / "Acme" / "Privacy Policy.md").write_text(deep, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "Record new changes")
    sha = git(repo, "rev-parse", "HEAD").strip()
    config = write_config(SITES)
    code, _, err = run("import", "ota-versions", str(repo), "--service", "Acme", "-c", str(config))
    assert code == 1 and err.count("\n") == 1, err
    assert str(repo) in err and sha[:12] in err and "nests its lists too deeply" in err
    store = Store(tmp_path / "w.db")
    try:
        assert store.versions("Acme") == []  # one transaction: nothing half-imported
    finally:
        store.close()


def test_git_timeout_is_one_line(tmp_path: Path, write_config, monkeypatch) -> None:
    repo = build_versions_repo(tmp_path / "versions")
    config = write_config(SITES)
    monkeypatch.setattr(ota, "GIT_TIMEOUT", 1e-6)  # real git, which cannot answer within a microsecond
    code, _, err = run("import", "ota-versions", str(repo), "--service", "Acme", "-c", str(config))
    assert code == 1 and err.count("\n") == 1, err
    assert str(repo) in err and "took over" in err
