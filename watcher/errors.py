"""The user-facing error tree: each message is one line that names the file, site or setting."""

from __future__ import annotations


class WatcherError(Exception):
    """Base of errors shown to the user as a single line."""

    exit_code = 1


class ConfigError(WatcherError):
    """sites.toml is missing, malformed or inconsistent."""

    exit_code = 2


class StoreError(WatcherError):
    """The database or snapshot folder cannot be used (locked, full disk, corrupt...)."""

    exit_code = 1


class LockedError(StoreError):
    """Another `watcher run` already holds this database."""
