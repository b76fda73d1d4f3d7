"""The child process of tests/test_crash.py: one cycle, optionally SIGKILLed at a chosen point.

Usage: python tests/crashchild.py SITES_TOML none|add_version|queue|snapshot

Prints READY once the store is open, then `ACK site outcome version` after each site's
transaction has committed, then DONE. Kept apart from the tests so it imports only watcher.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def child(config_path: str, crash_at: str) -> None:
    """One cycle; SIGKILL ourselves at `crash_at` (or never, with "none")."""
    from watcher import store as store_mod
    from watcher.config import load
    from watcher.cycle import run_cycle
    from watcher.store import Store

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    if crash_at == "add_version":  # the version row is written, its transaction not committed
        add_version = Store.add_version

        def dying_add_version(self, *a, **k):  # type: ignore[no-untyped-def]
            add_version(self, *a, **k)
            die()

        Store.add_version = dying_add_version  # type: ignore[method-assign]
    elif crash_at == "queue":  # the change is recorded, its alerts not yet queued
        Store.queue = lambda self, **k: die()  # type: ignore[method-assign]
    elif crash_at == "snapshot":  # the new latest.md is fully written to a temp file, not renamed
        replace = os.replace

        def dying_replace(src, dst):  # type: ignore[no-untyped-def]
            if str(dst).endswith("latest.md") and Path(dst).exists():
                die()
            replace(src, dst)

        store_mod.os.replace = dying_replace  # type: ignore[attr-defined]
    elif crash_at != "none":
        raise SystemExit(f"crashchild: unknown crash point {crash_at!r}")

    config = load(config_path)
    store = Store(config.settings.database, config.settings.snapshots)
    print("READY", flush=True)
    run_cycle(config, store, on_result=lambda r: print(f"ACK {r.site} {r.outcome} {r.version}", flush=True))
    store.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])
