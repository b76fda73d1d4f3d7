"""Test helpers: an Open Terms Archive versions repository built with real git, and a project filled from it.

The commits come from tests/fixtures/ota/versions/history.json; the watcher history that
report, export and browser tests look at is imported from that repository through
`ota.import_versions`, the code path `watcher import ota-versions` uses.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from watcher import ota
from watcher.config import Config, load
from watcher.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "ota"
VERSIONS = FIXTURES / "versions"
DECLARATIONS = FIXTURES / "declarations"

SITES = """
[[site]]
name = "Acme"
url = "https://acme.example/privacy"

[[site]]
name = "Exemple"
url = "https://exemple.fr/confidentialite"
lang = "fr"

[[site]]
name = "Acme (Terms of Service)"
url = "https://acme.example/terms"
"""


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "PATH": os.environ.get("PATH", ""),
    }
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], env={**base, **(env or {})}, capture_output=True, text=True, check=True
    )
    return proc.stdout


def build_versions_repo(dest: Path) -> Path:
    """Replay history.json into a fresh git repository at `dest`; commits carry OTA messages and fetch dates."""
    dest.mkdir(parents=True)
    git(dest, "init", "-q", "-b", "main")
    for step in json.loads((VERSIONS / "history.json").read_text(encoding="utf-8")):
        target = dest / step["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((VERSIONS / step["file"]).read_text(encoding="utf-8") + step.get("append", ""), "utf-8")
        git(dest, "add", "-A")
        who = {"GIT_AUTHOR_NAME": "OTA-Bot", "GIT_AUTHOR_EMAIL": "bot@opentermsarchive.org"}
        who |= {"GIT_COMMITTER_NAME": "OTA-Bot", "GIT_COMMITTER_EMAIL": "bot@opentermsarchive.org"}
        dates = {"GIT_AUTHOR_DATE": step["date"], "GIT_COMMITTER_DATE": step["date"]}
        git(dest, "-c", "commit.gpgsign=false", "commit", "-q", "-m", step["message"], env=who | dates)
    return dest


def filled_project(tmp_path: Path, write_config: Callable[..., Path]) -> Config:
    """A sites.toml and a database holding the fixture history of Acme (en), Exemple (fr) and Acme's terms."""
    config = load(write_config(SITES))
    repo = build_versions_repo(tmp_path / "versions")
    store = Store(config.settings.database, config.settings.snapshots)
    try:
        for site, service, terms in (
            ("Acme", "Acme", "Privacy Policy"),
            ("Exemple", "Exemple", "Privacy Policy"),
            ("Acme (Terms of Service)", "Acme", "Terms of Service"),
        ):
            ota.import_versions(
                store, repo, service=service, terms=terms, site=config.site(site), now="2025-04-01T00:00:00.000000Z"
            )
    finally:
        store.close()
    return config
