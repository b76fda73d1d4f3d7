"""kill -9 at any point of a cycle never corrupts the store nor loses an acknowledged version.

A real cycle runs in a child process (tests/crashchild.py) against a real server on
127.0.0.1 and a real SQLite file; the parent SIGKILLs it during a fetch, inside the
transaction that writes a version, between recording a change and queuing its alerts,
while a snapshot file is being replaced, and at a series of arbitrary moments. The child
prints `ACK site outcome version` after each site's transaction has committed: every
acknowledged version must survive, `PRAGMA integrity_check` must pass, and the next run
must carry on as if the killed one had never started.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultserver import FaultServer, page, stall_headers

from watcher import samples
from watcher.normalize import normalize

CHILD = Path(__file__).resolve().parent / "crashchild.py"
SITES = ("alpha", "beta", "gamma")


def policy(round_no: int) -> str:
    """The seed policy; from round 1 on, with a material edit that differs every round."""
    text = samples.seed_text("wesgar")
    if round_no:
        text += (
            f"\n\nAdvertising partners (round {round_no})\n\n"
            f"We now sell your personal information to {round_no} advertising partners and data brokers.\n"
        )
    return samples.render_page(normalize(text), "semantic", token="t", stamp="2026-01-01T00:00:00Z")


def write_config(root: Path, port: int, sites: tuple[str, ...] = SITES) -> Path:
    lines = [
        "[settings]",
        f'database = "{(root / "w.db").as_posix()}"',
        f'snapshots = "{(root / "snap").as_posix()}"',
        "timeout = 20",
        "concurrency = 1",  # sites are fetched (and acknowledged) in order
    ]
    for name in sites:
        lines += ["", "[[site]]", f'name = "{name}"', f'url = "http://127.0.0.1:{port}/{name}"']
    lines += ["", "[[subscriber]]", 'name = "team"', 'urls = ["json://127.0.0.1:9/hook"]']
    path = root / "sites.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spawn(config: Path, crash_at: str = "none") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(config), crash_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(config: Path, crash_at: str = "none") -> tuple[int, list[str]]:
    """A cycle in a child process, killed at `crash_at`; returns its exit status and output."""
    proc = spawn(config, crash_at)
    out, err = proc.communicate(timeout=120)
    if crash_at == "none":
        assert proc.returncode == 0, err
    return proc.returncode, out.splitlines()


def resume(config: Path) -> list[str]:
    """The next run, in this process (the crash is over; what matters is the state it left)."""
    from watcher.config import load
    from watcher.cycle import run_cycle
    from watcher.store import Store

    cfg = load(config)
    store = Store(cfg.settings.database, cfg.settings.snapshots)
    try:
        results = run_cycle(cfg, store)
    finally:
        store.close()
    return [f"ACK {r.site} {r.outcome} {r.version}" for r in results]


def acks(lines: list[str]) -> list[tuple[str, str, int | None]]:
    out = []
    for line in lines:
        if line.startswith("ACK "):
            _, site, outcome, version = line.split()
            out.append((site, outcome, None if version == "None" else int(version)))
    return out


# --------------------------------------------------------------------------------------
# checks on the store after a crash


def db(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "w.db")
    conn.row_factory = sqlite3.Row
    return conn


def assert_sound(root: Path, acknowledged: list[tuple[str, str, int | None]]) -> None:
    """Integrity, every acknowledged version present, and no half-written check anywhere."""
    with db(root) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        have = {(r["site"], r["seq"]) for r in conn.execute("select site, seq from versions")}
        for site, outcome, version in acknowledged:
            if outcome in ("new", "changed", "unchanged"):
                assert (site, version) in have, f"acknowledged version {site} #{version} was lost"
        for site in {s for s, _ in have}:
            seqs = sorted(seq for s, seq in have if s == site)
            assert seqs == list(range(1, len(seqs) + 1)), f"{site}: gap in versions {seqs}"
        # every change points at stored versions, every version after the first has its change,
        # every fetch that claims a version or a change has it
        orphans = conn.execute(
            "select count(*) from changes c left join versions v on v.id = c.to_version where v.id is null"
        ).fetchone()[0]
        assert orphans == 0
        missing = conn.execute(
            "select count(*) from versions v where v.seq > 1 and not exists (select 1 from changes c where c.to_version = v.id)"
        ).fetchone()[0]
        assert missing == 0
        dangling = conn.execute(
            "select count(*) from fetches f where (f.version_id is not null and not exists (select 1 from versions v where v.id = f.version_id))"
            " or (f.change_id is not null and not exists (select 1 from changes c where c.id = f.change_id))"
        ).fetchone()[0]
        assert dangling == 0
        # a material change always has its alert queued, exactly once
        rows = conn.execute(
            "select c.id, (select count(*) from outbox o where o.change_id = c.id) n from changes c where c.material = 1"
        ).fetchall()
        assert all(r["n"] == 1 for r in rows), [dict(r) for r in rows]


def assert_snapshots_match(root: Path) -> None:
    with db(root) as conn:
        for site in SITES:
            versions = conn.execute("select markdown from versions where site = ? order by seq", [site]).fetchall()
            if not versions:
                continue
            latest = root / "snap" / site / "latest.md"
            assert latest.read_text(encoding="utf-8") == versions[-1]["markdown"]
            assert len([p for p in (root / "snap" / site).glob("*.md") if p.name != "latest.md"]) == len(versions)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        for name in SITES:
            srv.route(f"/{name}", page(policy(0)))
        yield srv


# --------------------------------------------------------------------------------------
# the tests


def test_kill_during_a_fetch(tmp_path: Path, server: FaultServer) -> None:
    config = write_config(tmp_path, server.port)
    requested = threading.Event()

    def hang(h):  # type: ignore[no-untyped-def]
        requested.set()
        stall_headers(60)(h)

    server.route("/gamma", hang)  # the last site hangs in its fetch
    proc = spawn(config)
    seen: list[str] = []
    assert proc.stdout is not None
    while len(acks(seen)) < 2:
        line = proc.stdout.readline()
        assert line, f"the child ended early: {proc.communicate()[1]}"
        seen.append(line.strip())
    assert requested.wait(60), "the child never asked for the slow page"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert acks(seen) == [("alpha", "new", 1), ("beta", "new", 1)]
    assert_sound(tmp_path, acks(seen))
    server.route("/gamma", page(policy(0)))
    lines = resume(config)
    assert acks(lines) == [("alpha", "unchanged", 1), ("beta", "unchanged", 1), ("gamma", "new", 1)]
    assert_sound(tmp_path, acks(lines))
    assert_snapshots_match(tmp_path)


@pytest.mark.parametrize("crash_at", ["add_version", "queue"])
def test_kill_inside_the_write_of_a_change(tmp_path: Path, server: FaultServer, crash_at: str) -> None:
    """Killed after the version row (or the change row) is written but before the commit."""
    config = write_config(tmp_path, server.port)
    resume(config)
    for name in SITES:
        server.route(f"/{name}", page(policy(1)))
    code, lines = run(config, crash_at)
    assert code == -signal.SIGKILL and acks(lines) == []
    assert_sound(tmp_path, [])
    with db(tmp_path) as conn:
        assert conn.execute("select count(*) from versions").fetchone()[0] == 3  # the first versions only
        assert conn.execute("select count(*) from changes").fetchone()[0] == 0
        assert conn.execute("select count(*) from outbox").fetchone()[0] == 0
    lines = resume(config)  # the next run records the change and queues its alert, once
    assert acks(lines) == [(s, "changed", 2) for s in SITES]
    assert_sound(tmp_path, acks(lines))
    with db(tmp_path) as conn:
        assert conn.execute("select count(*) from outbox where kind = 'change'").fetchone()[0] == 3
    assert_snapshots_match(tmp_path)


def test_kill_while_a_snapshot_file_is_replaced(tmp_path: Path, server: FaultServer) -> None:
    config = write_config(tmp_path, server.port, ("alpha",))
    resume(config)
    before = (tmp_path / "snap" / "alpha" / "latest.md").read_text(encoding="utf-8")
    server.route("/alpha", page(policy(1)))
    code, lines = run(config, "snapshot")
    assert code == -signal.SIGKILL and acks(lines) == [("alpha", "changed", 2)]
    # the old latest.md is still whole (never a partial file), the store has the new version
    assert (tmp_path / "snap" / "alpha" / "latest.md").read_text(encoding="utf-8") == before
    assert_sound(tmp_path, acks(lines))
    (leftover,) = (tmp_path / "snap" / "alpha").glob(".tmp-*")  # the killed write's temp file
    assert leftover.read_text(encoding="utf-8") != before
    old = time.time() - 3600
    os.utime(leftover, (old, old))  # as if the crash were an hour ago
    lines = resume(config)
    assert acks(lines) == [("alpha", "unchanged", 2)]
    with db(tmp_path) as conn:
        want = conn.execute("select markdown from versions where seq = 2").fetchone()[0]
    assert (tmp_path / "snap" / "alpha" / "latest.md").read_text(encoding="utf-8") == want
    assert not leftover.exists()


def test_kill_at_arbitrary_moments_then_resume(tmp_path: Path, server: FaultServer) -> None:
    config = write_config(tmp_path, server.port)
    acknowledged: list[tuple[str, str, int | None]] = []
    for round_no, delay in enumerate((0.0, 0.1, 0.25, 0.4), start=1):
        for name in SITES:
            server.route(f"/{name}", page(policy(round_no)))
        proc = spawn(config)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acknowledged += acks(out.splitlines())
        assert_sound(tmp_path, acknowledged)
    lines = resume(config)
    assert {site for site, _, _ in acks(lines)} == set(SITES)
    assert all(outcome in ("new", "changed", "unchanged") for _, outcome, _ in acks(lines))
    assert_sound(tmp_path, acknowledged + acks(lines))
    assert_snapshots_match(tmp_path)
    lines = resume(config)  # and once more: nothing left to do
    assert [outcome for _, outcome, _ in acks(lines)] == ["unchanged"] * 3


def test_deleted_or_edited_snapshots_are_rebuilt_from_the_database(tmp_path: Path, server: FaultServer) -> None:
    config = write_config(tmp_path, server.port)
    resume(config)
    for name in SITES:
        server.route(f"/{name}", page(policy(1)))
    resume(config)
    shutil.rmtree(tmp_path / "snap" / "alpha")
    (tmp_path / "snap" / "beta" / "latest.md").write_text("someone edited this\n", encoding="utf-8")
    for p in (tmp_path / "snap" / "gamma").glob("2*.md"):
        p.unlink()
        break
    lines = resume(config)
    assert [outcome for _, outcome, _ in acks(lines)] == ["unchanged"] * 3
    assert_snapshots_match(tmp_path)  # the database wins, never the other way round


# --------------------------------------------------------------------------------------
# a full disk


def _big_policy() -> str:
    """A policy page whose new version cannot fit in the room left (words that do not compress)."""
    import random

    rng = random.Random(7)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10))) for _ in range(15_000)
    ]
    paras = [" ".join(words[i : i + 60]) + "." for i in range(0, len(words), 60)]
    return policy(0).replace("</article>", "".join(f"<p>{p}</p>" for p in paras) + "</article>")


def _check_cli(config: Path, preexec=None, wrap: list[str] | None = None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    cmd = [*(wrap or []), sys.executable, "-m", "watcher", "check", "--config", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=preexec)


def _assert_full_disk_outcome(proc: subprocess.CompletedProcess[str], root: Path) -> None:
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(err) == 1 and err[0].startswith("watcher: error: ") and "w.db" in err[0], proc.stderr
    assert "Traceback" not in proc.stderr
    with db(root) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select count(*) from versions").fetchone()[0] == 1


def test_file_size_limit_gives_a_clear_error_and_an_intact_store(tmp_path: Path, server: FaultServer) -> None:
    """RLIMIT_FSIZE makes every write past the limit fail with EFBIG, like a disk that filled up."""
    config = write_config(tmp_path, server.port, ("alpha",))
    resume(config)
    server.route("/alpha", page(_big_policy()))
    limit = (tmp_path / "w.db").stat().st_size + 32 * 1024

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = _check_cli(config, preexec=small_files)
    _assert_full_disk_outcome(proc, tmp_path)
    print(proc.stderr)
    assert "disk" in proc.stderr or "space" in proc.stderr
    assert acks(resume(config)) == [("alpha", "changed", 2)]  # room again: the change is recorded
    with db(tmp_path) as conn:
        assert conn.execute("select count(*) from versions").fetchone()[0] == 2


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=10
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root and mount namespaces (unshare -m) for a tiny tmpfs")
def test_full_tmpfs_gives_a_clear_error_and_an_intact_store(tmp_path: Path, server: FaultServer) -> None:
    """A real ENOSPC: the database lives on a tmpfs with little room, in a private mount namespace."""
    config = write_config(tmp_path, server.port, ("alpha",))
    resume(config)
    server.route("/alpha", page(_big_policy()))
    disk = tmp_path / "disk"
    disk.mkdir()
    size_kb = (tmp_path / "w.db").stat().st_size // 1024 + 64
    cfg = config.read_text().replace(str(tmp_path / "w.db"), str(disk / "w.db"))
    cfg = cfg.replace(str(tmp_path / "snap"), str(disk / "snap"))
    out = tmp_path / "after"
    out.mkdir()
    script = (
        f"mount -t tmpfs -o size={size_kb}k tmpfs {disk} && cp {tmp_path / 'w.db'} {disk}/w.db && "
        f"{sys.executable} -m watcher check --config {tmp_path / 'disk.toml'}; rc=$?; "
        f"cp {disk}/w.db* {out}/; exit $rc"
    )
    (tmp_path / "disk.toml").write_text(cfg, encoding="utf-8")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    print(proc.stderr)
    _assert_full_disk_outcome(proc, out)
    assert "disk is full" in proc.stderr
