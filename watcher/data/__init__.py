"""Tables that live in data, not in code: cue words, chrome patterns, topics, demo policies."""

from __future__ import annotations

import tomllib
from pathlib import Path

DIR = Path(__file__).parent


def load_table(name: str) -> dict:
    """One of the TOML tables here.

    A plain read beside this module, not importlib.resources: that import pulled in tempfile,
    shutil, zipfile and three compressors, ~7 ms of every command's start-up (issue 10), for
    files a pip install always unpacks here.
    """
    return tomllib.loads((DIR / name).read_text("utf-8"))
