"""watcher: watch privacy-policy pages and report material changes to the terms."""

__version__ = "0.1.0"
