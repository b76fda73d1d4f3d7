"""Read and validate sites.toml into plain dataclasses.

Every mistake stops with one line that names the file, the entry and the key, so a user
never has to guess which of three hundred sites is wrong. `${VAR}` (or `${VAR:-default}`)
in any string is replaced from the environment, so tokens and passwords stay out of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .logs import redact
from .topics import TOPIC_IDS

DEFAULT_USER_AGENT = "watcher/0.1 (privacy-policy change monitor; +https://github.com/watcher-policy/watcher)"
SEVERITY_NAMES = ("low", "medium", "high")
DIGESTS = ("off", "daily", "weekly")


@dataclass
class Settings:
    database: str = "watcher.db"
    snapshots: str = "snapshots"
    user_agent: str = DEFAULT_USER_AGENT
    # seconds: connect (capped at 15 s) and each read; the whole body must arrive within 2x,
    # and a watchdog closes a fetch that outlives 3x in all (headers trickled byte by byte)
    timeout: float = 30.0
    max_bytes: int = 10_000_000  # decoded body size cap
    concurrency: int = 8  # pages fetched at once
    per_host: int = 2  # pages fetched at once from one host
    interval: int = 86_400  # seconds between checks of a site, unless the site says otherwise
    jitter: float = 0.1  # +/- share of the interval, so sites do not all fire together
    allow_private: bool = True  # fetch private and loopback addresses (intranet policies)
    failure_alert_after: int = 3  # consecutive failed checks before subscribers with errors=true hear
    hold_drop_ratio: float = 0.5  # a new version losing more than this share of the text is held
    confirm_after: int = 600  # seconds before a held version is refetched for confirmation
    normalize_budget: float = 20.0  # seconds of CPU a page may take to normalize
    notify_every: int = 60  # seconds between outbox delivery rounds in `watcher run`
    max_attempts: int = 8  # delivery attempts before an outbox row is marked failed
    # processes that parse new bodies (normalize, guard, date, classify): 0 = automatic (one per
    # usable core, when there is more than one core and a cycle has enough pages to pay for the
    # fork), N = N processes. The WATCHER_WORKERS environment variable overrides it; there 0
    # means no processes at all (parse in the fetch threads).
    workers: int = 0


@dataclass
class Site:
    name: str
    url: str
    selector: str | None = None
    remove: list[str] = field(default_factory=list)
    interval: int | None = None  # seconds; None = settings.interval
    lang: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    verify_tls: bool = True

    def settings_hash(self) -> str:
        """What decides which part of the page is the policy (`selector`, `remove`): text extracted
        under other settings is a new baseline, not a change. The URL is left out on purpose: a
        policy that moved, or a rotated ?token=, is still the same policy, compared as usual."""
        key = json.dumps([self.selector, self.remove], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class Subscriber:
    name: str
    urls: list[str]
    sites: list[str] = field(default_factory=lambda: ["*"])
    topics: list[str] = field(default_factory=list)  # empty = all topics
    min_severity: str = "low"
    digest: str = "off"
    errors: bool = False


@dataclass
class Config:
    path: Path
    settings: Settings
    sites: list[Site]
    subscribers: list[Subscriber]

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        names = ", ".join(s.name for s in self.sites[:10])
        raise ConfigError(f"{self.path}: no site named {name!r} (sites: {names})")

    def interval(self, site: Site) -> int:
        return site.interval or self.settings.interval


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.I)
_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.I)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1_000_000, "mib": 1 << 20, "gb": 1_000_000_000, "gib": 1 << 30}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: Any) -> int:
    """ "6h", "1d", "1h30m", "45s" or a number of seconds (at least 1); raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if value < 1:  # 0.5 would become 0 seconds: a site checked in a busy loop
            raise ValueError("must be at least one second")
        return int(value)
    text = str(value).strip().replace(" ", "")
    if not text:
        raise ValueError("empty")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            raise ValueError(text)
        total += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos != len(text) or total < 1:
        raise ValueError(text)
    return int(total)


def parse_size(value: Any) -> int:
    """10000000, "10MB", "512 KiB"... in bytes (at least 1); raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(str(value))
    size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    if size < 1:  # a cap of 0 bytes would refuse every page
        raise ValueError(str(value))
    return size


def expand_env(value: str, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable ${{{name}}} is not set (export it or give a default: ${{{name}:-value}})"
        )

    return _ENV.sub(sub, value)


def _expand(value: Any, where: str, key: str = "") -> Any:
    """Expand ${VAR} everywhere; a missing variable names the entry and the top-level key."""
    if isinstance(value, str):
        return expand_env(value, f"{where}: {key!r}" if key else where)
    if isinstance(value, list):
        return [_expand(v, where, key) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, where, key or k) for k, v in value.items()}
    return value


def _label(raw: Any, kind: str, index: int) -> str:
    """How an entry is named in messages: its name when it has one, else its position."""
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{kind} {name!r}" if isinstance(name, str) and "${" not in name else f"{kind} #{index + 1}"


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            import difflib  # only for a typo's suggestion

            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(sorted(allowed))})"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _want(value: Any, kind: type | tuple[type, ...], where: str, key: str, what: str) -> Any:
    if isinstance(value, bool) and kind is not bool and (kind is int or kind == (int, float)):
        raise ConfigError(f"{where}: {key!r} must be {what}, not {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {key!r} must be {what}, not {value!r}")
    return value


def check_url(url: str, where: str, key: str = "url") -> str:
    """`url` if it is http(s) with a host; the error quotes it redacted (it is already ${VAR}-expanded)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(f"{where}: {key!r} must be an http:// or https:// URL, not {redact(url)!r}")
    if not parts.hostname:
        raise ConfigError(f"{where}: {key!r} has no host name: {redact(url)!r}")
    return url


def _settings(raw: dict[str, Any], path: Path) -> Settings:
    where = f"{path}: [settings]"
    fields = {f for f in Settings.__dataclass_fields__}
    _check_keys(raw, fields, where)
    s = Settings()
    env_over = {
        "database": os.environ.get("WATCHER_DATABASE"),
        "snapshots": os.environ.get("WATCHER_SNAPSHOTS"),
    }
    for key, value in raw.items():
        try:
            if key in ("database", "snapshots", "user_agent"):
                setattr(s, key, _want(value, str, where, key, "a string"))
            elif key in ("interval", "confirm_after", "notify_every"):
                setattr(s, key, parse_duration(value))
            elif key == "max_bytes":
                setattr(s, key, parse_size(value))
            elif key in ("timeout", "normalize_budget", "jitter", "hold_drop_ratio"):
                v = float(_want(value, (int, float), where, key, "a number"))
                if v < 0 or (key in ("timeout", "normalize_budget") and v == 0):
                    raise ValueError(value)
                if key in ("jitter", "hold_drop_ratio") and v > 1:
                    raise ValueError(value)
                setattr(s, key, v)
            elif key in ("concurrency", "per_host", "failure_alert_after", "max_attempts", "workers"):
                v = _want(value, int, where, key, "a whole number")
                if v < (0 if key == "workers" else 1):
                    raise ValueError(value)
                setattr(s, key, v)
            elif key == "allow_private":
                setattr(s, key, _want(value, bool, where, key, "true or false"))
        except ValueError:
            raise ConfigError(f"{where}: invalid value for {key!r}: {value!r}") from None
    for key, value in env_over.items():
        if value:
            setattr(s, key, value)
    return s


_SITE_KEYS = {"name", "url", "selector", "remove", "interval", "lang", "headers", "verify_tls"}
_SUB_KEYS = {"name", "urls", "url", "sites", "topics", "min_severity", "digest", "errors"}


def _site(raw: dict[str, Any], index: int, path: Path) -> Site:
    label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{index + 1}"
    where = f"{path}: site {label!r}"
    _check_keys(raw, _SITE_KEYS, where)
    if "name" not in raw:
        raise ConfigError(f"{path}: site #{index + 1}: missing key 'name'")
    name = _want(raw["name"], str, where, "name", "a string").strip()
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"{where}: 'name' must be non-empty and must not contain '/' or start with '.'")
    if "url" not in raw:
        raise ConfigError(f"{where}: missing key 'url'")
    url = check_url(_want(raw["url"], str, where, "url", "a string"), where)
    site = Site(name=name, url=url)
    if "selector" in raw:
        site.selector = _want(raw["selector"], str, where, "selector", "a CSS selector string") or None
        if site.selector:
            _check_selector(site.selector, where, "selector")
    if "remove" in raw:
        rm = raw["remove"]
        rm = [rm] if isinstance(rm, str) else rm
        if not isinstance(rm, list) or not all(isinstance(x, str) for x in rm):
            raise ConfigError(f"{where}: 'remove' must be a CSS selector or a list of them")
        for sel in rm:
            _check_selector(sel, where, "remove")
        site.remove = rm
    if "interval" in raw:
        try:
            site.interval = parse_duration(raw["interval"])
        except ValueError:
            raise ConfigError(
                f'{where}: invalid \'interval\' {raw["interval"]!r} (use e.g. "30m", "6h", "1d")'
            ) from None
    if "lang" in raw:
        lang = _want(raw["lang"], str, where, "lang", 'a language code such as "en" or "fr"')
        if not re.fullmatch(r"[a-zA-Z]{2,3}(-[A-Za-z0-9]+)*", lang):
            raise ConfigError(f'{where}: invalid \'lang\' {lang!r} (use a code such as "en" or "fr")')
        site.lang = lang.lower()
    if "headers" in raw:
        headers = raw["headers"]
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(
                f"{where}: 'headers' must be a table of strings, e.g. headers = {{ Accept-Language = \"fr\" }}"
            )
        site.headers = dict(headers)
    if "verify_tls" in raw:
        site.verify_tls = _want(raw["verify_tls"], bool, where, "verify_tls", "true or false")
    return site


def _check_selector(selector: str, where: str, key: str) -> None:
    from lxml.cssselect import CSSSelector, SelectorSyntaxError

    try:
        CSSSelector(selector, translator="html")
    except (SelectorSyntaxError, Exception) as exc:  # cssselect raises several kinds
        raise ConfigError(f"{where}: invalid CSS selector in {key!r}: {selector!r} ({exc})") from None


def _subscriber(raw: dict[str, Any], index: int, path: Path, site_names: set[str]) -> Subscriber:
    label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{index + 1}"
    where = f"{path}: subscriber {label!r}"
    _check_keys(raw, _SUB_KEYS, where)
    if "name" not in raw:
        raise ConfigError(f"{path}: subscriber #{index + 1}: missing key 'name'")
    name = _want(raw["name"], str, where, "name", "a string")
    urls = raw.get("urls", raw.get("url"))
    if urls is None:
        raise ConfigError(f"{where}: missing key 'urls' (one or more apprise URLs)")
    urls = [urls] if isinstance(urls, str) else urls
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        raise ConfigError(f"{where}: 'urls' must be an apprise URL or a list of them")
    sub = Subscriber(name=name, urls=list(urls))
    if "sites" in raw:
        sites = raw["sites"]
        sites = [sites] if isinstance(sites, str) else sites
        if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
            raise ConfigError(f"{where}: 'sites' must be a list of site names or glob patterns")
        import fnmatch

        for pat in sites:
            if not any(fnmatch.fnmatchcase(n, pat) for n in site_names):
                raise ConfigError(f"{where}: 'sites' entry {pat!r} matches no site")
        sub.sites = sites
    if "topics" in raw:
        topics = raw["topics"]
        topics = [topics] if isinstance(topics, str) else topics
        if not isinstance(topics, list):
            raise ConfigError(f"{where}: 'topics' must be a list of topic ids")
        for t in topics:
            if t not in TOPIC_IDS:
                raise ConfigError(f"{where}: unknown topic {t!r} in 'topics' (topics: {', '.join(TOPIC_IDS)})")
        sub.topics = topics
    if "min_severity" in raw:
        if raw["min_severity"] not in SEVERITY_NAMES:
            raise ConfigError(f"{where}: 'min_severity' must be one of {', '.join(SEVERITY_NAMES)}")
        sub.min_severity = raw["min_severity"]
    if "digest" in raw:
        if raw["digest"] not in DIGESTS:
            raise ConfigError(f"{where}: 'digest' must be one of {', '.join(DIGESTS)}")
        sub.digest = raw["digest"]
    if "errors" in raw:
        sub.errors = _want(raw["errors"], bool, where, "errors", "true or false")
    _check_apprise(sub, where)
    return sub


def _check_apprise(sub: Subscriber, where: str) -> None:
    import logging

    import apprise

    # apprise logs the whole rejected URL (token and all) at ERROR; our one line replaces it.
    apprise_log = logging.getLogger("apprise")
    for i, url in enumerate(sub.urls):
        was_disabled, apprise_log.disabled = apprise_log.disabled, True
        try:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        finally:
            apprise_log.disabled = was_disabled
        if plugin is None:
            shown = url.split("://", 1)[0] + "://…" if "://" in url else "(not a URL)"
            raise ConfigError(f"{where}: 'urls' entry {i + 1} ({shown}) is not a valid apprise URL")


def load(path: str | os.PathLike[str]) -> Config:
    """Read, expand and validate a sites.toml; raises ConfigError with a one-line message."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (create it, or pass --config / set WATCHER_CONFIG)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Config:
    _check_keys(raw, {"settings", "site", "subscriber"}, str(path))
    settings_raw = raw.get("settings", {})
    if not isinstance(settings_raw, dict):
        raise ConfigError(f"{path}: [settings] must be a table")
    settings = _settings(_expand(settings_raw, f"{path}: [settings]"), path)
    sites_raw = raw.get("site", [])
    if not isinstance(sites_raw, list):
        raise ConfigError(f"{path}: sites must be written as [[site]] tables")
    sites: list[Site] = []
    seen: set[str] = set()
    for i, item in enumerate(sites_raw):
        site = _site(_expand(item, f"{path}: {_label(item, 'site', i)}"), i, path)
        if site.name in seen:
            raise ConfigError(f"{path}: site {site.name!r}: duplicate name (site names must be unique)")
        seen.add(site.name)
        sites.append(site)
    subs_raw = raw.get("subscriber", [])
    if not isinstance(subs_raw, list):
        raise ConfigError(f"{path}: subscribers must be written as [[subscriber]] tables")
    subscribers: list[Subscriber] = []
    sub_names: set[str] = set()
    for i, item in enumerate(subs_raw):
        sub = _subscriber(_expand(item, f"{path}: {_label(item, 'subscriber', i)}"), i, path, seen)
        if sub.name in sub_names:
            raise ConfigError(f"{path}: subscriber {sub.name!r}: duplicate name")
        sub_names.add(sub.name)
        subscribers.append(sub)
    return Config(path=path, settings=settings, sites=sites, subscribers=subscribers)
