"""The README's first command: `watcher demo` runs end to end and shows real changes."""

from __future__ import annotations

import subprocess
import sys


def test_demo_reports_material_and_cosmetic_changes() -> None:
    proc = subprocess.run([sys.executable, "-m", "watcher", "demo"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "changed (medium)" in out or "changed (high)" in out
    assert "seven (7) years" in out
    assert "partenaires" in out  # the French policy keeps its French wording
    # the redesigned page and the token-only refetches are not changes
    assert out.count("unchanged") >= 3
