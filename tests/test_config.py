"""sites.toml: every mistake is one line naming the file, the entry and the key (exit 2 via the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.config import Settings, load, parse_duration, parse_size
from watcher.errors import ConfigError

GOOD_SITE = '[[site]]\nname = "acme"\nurl = "https://example.org/privacy"\n'


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load(path)
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_valid_config_parses_into_dataclasses(write_config, monkeypatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_TOKEN", "s3cret")
    path = write_config(
        """
        [[site]]
        name = "acme"
        url = "https://example.org/privacy"
        selector = "main article"
        remove = [".toc", "#edit"]
        interval = "1h30m"
        lang = "FR"
        headers = { Accept-Language = "fr-FR", Authorization = "Bearer ${WATCHER_TEST_TOKEN}" }

        [[site]]
        name = "other"
        url = "http://example.com/p"

        [[subscriber]]
        name = "team"
        urls = ["json://localhost:8080/hook"]
        sites = ["ac*"]
        topics = ["sharing", "retention"]
        min_severity = "medium"
        digest = "daily"
        errors = true
        """,
        settings='timeout = 5\nmax_bytes = "2MB"\ninterval = "6h"\nper_host = 1\n',
    )
    config = load(path)
    assert config.settings.timeout == 5.0
    assert config.settings.max_bytes == 2_000_000
    assert config.settings.interval == 6 * 3600
    assert config.settings.per_host == 1
    acme, other = config.sites
    assert acme.selector == "main article"
    assert acme.remove == [".toc", "#edit"]
    assert acme.interval == 5400
    assert acme.lang == "fr"
    assert acme.headers["Authorization"] == "Bearer s3cret"
    assert config.interval(acme) == 5400
    assert config.interval(other) == 6 * 3600
    assert other.selector is None and other.remove == []
    (sub,) = config.subscribers
    assert (sub.name, sub.sites, sub.topics, sub.min_severity, sub.digest, sub.errors) == (
        "team",
        ["ac*"],
        ["sharing", "retention"],
        "medium",
        "daily",
        True,
    )


def test_defaults_when_settings_are_absent(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(GOOD_SITE, encoding="utf-8")
    config = load(path)
    assert config.settings == Settings()
    assert config.sites[0].interval is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30m", 1800), ("6h", 21600), ("1d", 86400), ("1h30m", 5400), ("45s", 45), (90, 90), ("2w", 1_209_600)],
)
def test_parse_duration(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "0m", "6", "-5m", "5m-", "1y", True, 0, -3])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"), [("10MB", 10_000_000), ("500kb", 500_000), ("1MiB", 1 << 20), (500000, 500000)]
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


# Each case: (site/settings body, settings, words the one-line message must contain)
CASES = {
    "unknown-key": (
        '[[site]]\nname = "acme"\nurl = "https://example.org/"\nselecter = "main"\n',
        "",
        ["site 'acme'", "unknown key 'selecter'", "did you mean 'selector'"],
    ),
    "unknown-settings-key": (GOOD_SITE, "timout = 3\n", ["[settings]", "'timout'", "did you mean 'timeout'"]),
    "unknown-table": ('[[sites]]\nname = "acme"\nurl = "https://example.org/"\n', "", ["'sites'", "'site'"]),
    "missing-url": ('[[site]]\nname = "acme"\n', "", ["site 'acme'", "missing key 'url'"]),
    "missing-name": ('[[site]]\nurl = "https://example.org/"\n', "", ["site #1", "missing key 'name'"]),
    "duplicate-name": (GOOD_SITE + GOOD_SITE, "", ["site 'acme'", "duplicate"]),
    "bad-interval": (GOOD_SITE + 'interval = "often"\n', "", ["site 'acme'", "'interval'", "'often'"]),
    "bad-settings-interval": (GOOD_SITE, 'interval = "0h"\n', ["[settings]", "'interval'"]),
    "bad-timeout": (GOOD_SITE, 'timeout = "fast"\n', ["[settings]", "'timeout'"]),
    "bad-scheme": ('[[site]]\nname = "acme"\nurl = "ftp://example.org/p"\n', "", ["site 'acme'", "'url'", "http"]),
    "no-host": ('[[site]]\nname = "acme"\nurl = "https:///p"\n', "", ["site 'acme'", "'url'", "host"]),
    "bad-selector": (GOOD_SITE + 'selector = "div["\n', "", ["site 'acme'", "'selector'", "div["]),
    "bad-remove": (GOOD_SITE + 'remove = [".ok", "##x"]\n', "", ["site 'acme'", "'remove'", "##x"]),
    "bad-lang": (GOOD_SITE + 'lang = "english!"\n', "", ["site 'acme'", "'lang'", "english!"]),
    "bad-headers": (GOOD_SITE + "headers = { X-Num = 3 }\n", "", ["site 'acme'", "'headers'"]),
    "bad-verify": (GOOD_SITE + 'verify_tls = "no"\n', "", ["site 'acme'", "'verify_tls'"]),
    "bad-name": ('[[site]]\nname = "a/b"\nurl = "https://example.org/"\n', "", ["'a/b'", "'name'"]),
    "missing-env": (
        '[[site]]\nname = "acme"\nurl = "https://example.org/?k=${WATCHER_TEST_UNSET_VAR}"\n',
        "",
        ["site 'acme'", "'url'", "${WATCHER_TEST_UNSET_VAR}", "not set"],
    ),
    "bad-apprise": (
        GOOD_SITE + '[[subscriber]]\nname = "team"\nurls = ["json://localhost/x", "nosuchscheme://secret@host"]\n',
        "",
        ["subscriber 'team'", "'urls'", "entry 2", "apprise"],
    ),
    "unknown-topic": (
        GOOD_SITE + '[[subscriber]]\nname = "team"\nurls = "json://localhost/x"\ntopics = ["sharing", "gossip"]\n',
        "",
        ["subscriber 'team'", "'gossip'", "'topics'"],
    ),
    "subscriber-no-urls": (GOOD_SITE + '[[subscriber]]\nname = "team"\n', "", ["subscriber 'team'", "'urls'"]),
    "subscriber-bad-severity": (
        GOOD_SITE + '[[subscriber]]\nname = "team"\nurls = "json://localhost/x"\nmin_severity = "urgent"\n',
        "",
        ["subscriber 'team'", "'min_severity'"],
    ),
    "subscriber-unmatched-site": (
        GOOD_SITE + '[[subscriber]]\nname = "team"\nurls = "json://localhost/x"\nsites = ["zeta*"]\n',
        "",
        ["subscriber 'team'", "'sites'", "'zeta*'"],
    ),
}


@pytest.fixture(autouse=True)
def _no_test_vars(monkeypatch) -> None:
    monkeypatch.delenv("WATCHER_TEST_UNSET_VAR", raising=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error_is_one_line_naming_the_place(case: str, write_config) -> None:
    body, settings, expected = CASES[case]
    message = _error(write_config(body, settings=settings))
    for words in expected:
        assert words in message, (words, message)


def test_bad_apprise_url_does_not_echo_the_secret(write_config) -> None:
    body, settings, _ = CASES["bad-apprise"]
    message = _error(write_config(body, settings=settings))
    assert "secret" not in message


@pytest.mark.parametrize("case", ["unknown-key", "missing-url", "bad-scheme", "missing-env", "bad-apprise"])
def test_check_reports_config_errors_on_stderr_with_status_2(case: str, write_config) -> None:
    body, settings, expected = CASES[case]
    path = write_config(body, settings=settings)
    result = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"watcher: error: {path}")
    for words in expected:
        assert words in lines[0]
    assert result.stdout == ""
    assert not (path.parent / "w.db").exists()  # nothing was opened or written


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text('[[site]]\nname = "acme\nurl = "https://example.org/"\n', encoding="utf-8")
    message = _error(path)
    assert "invalid TOML" in message and "line 2" in message


def test_missing_file(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.toml")
    assert "file not found" in message


def test_env_expansion_and_defaults(write_config, monkeypatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_HOST", "policies.example.net")
    monkeypatch.delenv("WATCHER_TEST_PATH", raising=False)
    monkeypatch.delenv("WATCHER_TEST_PREFIX", raising=False)
    path = write_config(
        """
        [[site]]
        name = "acme"
        url = "https://${WATCHER_TEST_HOST}/${WATCHER_TEST_PATH:-privacy}"
        selector = "${WATCHER_TEST_PREFIX:-}main"
        """
    )
    site = load(path).sites[0]
    assert site.url == "https://policies.example.net/privacy"
    assert site.selector == "main"
    monkeypatch.setenv("WATCHER_TEST_PATH", "legal/privacy")
    assert load(path).sites[0].url == "https://policies.example.net/legal/privacy"


def test_env_expansion_is_checked_after_substitution(write_config, monkeypatch) -> None:
    """A variable that expands to a bad URL is still caught, naming the site."""
    monkeypatch.setenv("WATCHER_TEST_URL", "file:///etc/passwd")
    message = _error(write_config('[[site]]\nname = "acme"\nurl = "${WATCHER_TEST_URL}"\n'))
    assert "site 'acme'" in message and "http" in message


def test_check_config_error_through_the_real_command(write_config) -> None:
    """The installed entry point, not just the click function: one stderr line, exit status 2."""
    body, settings, _ = CASES["unknown-key"]
    path = write_config(body, settings=settings)
    proc = subprocess.run(
        [sys.executable, "-m", "watcher", "check", "-c", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        f"watcher: error: {path}: site 'acme': unknown key 'selecter' (did you mean 'selector'?)"
    )


def test_check_names_a_site_that_is_not_configured(write_config) -> None:
    path = write_config(GOOD_SITE)
    result = CliRunner().invoke(main, ["check", "-c", str(path), "zeta"])
    assert result.exit_code == 2
    assert "no site named 'zeta'" in result.stderr and "acme" in result.stderr


def test_check_missing_or_invalid_file_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = CliRunner().invoke(main, ["check", "-c", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"watcher: error: {missing}: file not found")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[site]\nname = 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "-c", str(bad)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"watcher: error: {bad}: invalid TOML")
