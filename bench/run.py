#!/usr/bin/env python3
"""watcher against urlwatch on N generated policy pages served by nginx on 127.0.0.1 (issue 10).

Not a test and not run by CI: a script anyone can run to see what a check cycle costs.

    .venv/bin/python bench/run.py                      # N = 100, 1,000, 5,000 (about 10 minutes)
    .venv/bin/python bench/run.py --sizes 100 --latency-size 100 --no-urlwatch   # quick look

What it does, in one run:
- renders N policy pages from the bundled seed policies (`watcher.samples`: four layouts,
  chrome, per-page build tokens and timestamps; each page names its own company and has
  its own contact paragraph, so no two pages are alike);
- serves them from nginx (Debian's `nginx-light`, installed with apt-get when missing) run
  as an unprivileged process with its own configuration in the work folder. The server
  sends no validators (no ETag, If-Modified-Since ignored), as most policy pages are
  dynamic: every check downloads every page in full, for both tools;
- for each N runs `watcher check` and urlwatch (installed in a throwaway virtual
  environment, `html2text: pyhtml2text`, `ignore_cached: true`) as subprocesses, each for
  a cold cycle (first check), a warm cycle with nothing changed and a warm cycle with 10 %
  of the pages edited, and measures wall time, CPU time (rusage of the process and its
  children) and peak RSS (the process tree's summed RSS, sampled from /proc, or the
  kernel's high-water mark when larger);
- a latency scenario: the same pages behind a small proxy that waits 200 ms before each
  response, where concurrency, not parsing, decides the cycle time;
- `watcher diff` of two versions of a 20-section policy, in-process after imports and a
  warm-up (CPU time, parsing included);
- storage growth: database bytes per unchanged check and per changed version, and so
  bytes per site per month at a daily schedule.

It prints a table and writes bench/results/<time>.json (the folder is gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

URLWATCH_VERSION = "2.29"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "watcher-bench"
COMPANY = {  # how each seed names its company, replaced by the page's own company
    "wesgar": "Wesgar",
    "spi-sorel-tracy": "SPI Sorel-Tracy",
    "planiso": "PLANISO",
    "canadian-cloud-backup": "Canadian Cloud Backup",
    "cantrex": "Cantrex",
}
FIRST = ["Northwind", "Bluebird", "Granite", "Maple", "Harbour", "Summit", "Cedar", "Aurora", "Lakeside", "Pioneer"]
SECOND = ["Analytics", "Logistics", "Health", "Media", "Software", "Insurance", "Energy", "Travel", "Foods", "Labs"]
CONTACT = "@@CONTACT@@"
TOKEN = "@@TOKEN@@"
STAMP = "@@STAMP@@"


# --------------------------------------------------------------------------------------
# Pages


def _templates() -> dict[tuple[str, str], str]:
    """One page per (seed, layout) with placeholders for what differs from page to page."""
    from watcher import samples
    from watcher.models import Block, Section

    out = {}
    for name in samples.SEEDS:
        doc = samples.seed_document(name)
        contact = Section(heading="Contact", level=2, path=("Contact",), blocks=[Block("p", CONTACT)])
        doc.sections = [*doc.sections, contact]
        for layout in samples.LAYOUTS:
            out[name, layout] = samples.render_page(doc, layout, token=TOKEN, stamp=STAMP)
    return out


def _company(i: int) -> str:
    return f"{FIRST[i % 10]} {SECOND[(i // 10) % 10]} {i // 100 + 1}"


def render(templates: dict[tuple[str, str], str], i: int, edit: int = 0) -> str:
    """Page i; `edit` > 0 is the page after its edit-th revision (new wording, new build token)."""
    from watcher import samples

    seeds = list(samples.SEEDS)
    seed = seeds[i % len(seeds)]
    layout = samples.LAYOUTS[(i // len(seeds)) % len(samples.LAYOUTS)]
    company = _company(i)
    slug = company.lower().replace(" ", "-")
    contact = (
        f"Questions about this policy may be sent to our privacy office at privacy@{slug}.example "
        f"or by telephone at +1 514 555 {i % 10000:04d}; we answer within {10 + i % 20} business days."
    )
    if edit:
        contact += (
            " We keep the records of your requests for seven (7) years and may share them with our auditors"
            f" and our advertising partners (revision {edit})."
        )
    token = f"{(i * 2654435761 + edit * 97) % (1 << 32):08x}{i:05d}"
    stamp = f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{edit % 60:02d}Z"
    page = templates[seed, layout].replace(COMPANY[seed], company)
    return page.replace(CONTACT, contact).replace(TOKEN, token).replace(STAMP, stamp)


def write_pages(www: Path, n: int, templates: dict[tuple[str, str], str]) -> int:
    folder = www / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(n):
        data = render(templates, i).encode("utf-8")
        (folder / f"p{i:05d}.html").write_bytes(data)
        total += len(data)
    return total


def edited_ids(n: int, fraction: float) -> list[int]:
    step = max(1, round(1 / fraction))
    return list(range(3, n, step))


def edit_pages(www: Path, n: int, templates: dict[tuple[str, str], str], ids: list[int], edit: int) -> None:
    for i in ids:
        (www / f"n{n}" / f"p{i:05d}.html").write_bytes(render(templates, i, edit).encode("utf-8"))


# --------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return found
    print("nginx not found: installing Debian's nginx-light with apt-get", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "nginx-light"], check=True, env=env)
    # Debian starts the system service on install where it can; this bench does not use it.
    return shutil.which("nginx") or "/usr/sbin/nginx"


def _unprivileged() -> tuple[int, int] | None:
    """The uid/gid to run servers as when this script runs as root (they never need root)."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _demote(ids: tuple[int, int] | None):  # type: ignore[no-untyped-def]
    if ids is None:
        return None

    def run() -> None:
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])

    return run


class Nginx:
    """nginx on 127.0.0.1 with its own prefix, config, pid and logs; no root needed."""

    def __init__(self, binary: str, www: Path, work: Path, validators: bool = False) -> None:
        self.binary, self.www, self.port = binary, www, free_port()
        self.prefix = work / "nginx"
        for sub in ("logs", "tmp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        cache = "" if validators else "etag off;\n    if_modified_since off;"
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(
            f"""worker_processes 1;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/tmp/body;
    proxy_temp_path {self.prefix}/tmp/proxy;
    fastcgi_temp_path {self.prefix}/tmp/fastcgi;
    uwsgi_temp_path {self.prefix}/tmp/uwsgi;
    scgi_temp_path {self.prefix}/tmp/scgi;
    types {{ text/html html; }}
    default_type text/html;
    charset utf-8;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    {cache}
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        root {www};
    }}
}}
"""
        )
        self.ids = _unprivileged()
        if self.ids:
            for path in (self.prefix, *self.prefix.rglob("*")):
                os.chown(path, *self.ids)

    def __enter__(self) -> Nginx:
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.prefix / "logs/error.log")],
            preexec_fn=_demote(self.ids),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_port(self.port, self.proc, "nginx")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"{what} did not start: {err.strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on 127.0.0.1:{port} within 10 s")


class DelayProxy:
    """A small HTTP/1.1 proxy in front of nginx that waits `delay` seconds before each response."""

    def __init__(self, upstream: int, delay: float) -> None:
        self.upstream, self.delay, self.port = upstream, delay, free_port()

    def __enter__(self) -> DelayProxy:
        cmd = [sys.executable, __file__, "_proxy", str(self.port), str(self.upstream), str(self.delay)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_port(self.port, self.proc, "the delay proxy")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def serve_proxy(port: int, upstream: int, delay: float) -> None:
    """The proxy process: GET requests only (what both tools send), Content-Length bodies (nginx static)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r = up_w = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(delay)
                if up_w is None:
                    up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream)
                up_w.write(head)
                await up_w.drain()
                assert up_r is not None
                rhead = await up_r.readuntil(b"\r\n\r\n")
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", rhead, re.I)
                body = await up_r.readexactly(int(m.group(1))) if m else b""
                writer.write(rhead + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (writer, up_w):
                if w is not None:
                    w.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------------------
# Measuring a subprocess


@dataclass
class Run:
    tool: str
    n: int
    scenario: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    outcomes: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def pages_per_s(self) -> float:
        return self.n / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "pages_per_s": round(self.pages_per_s, 1)}


def _tree_rss_kb(pid: int) -> int:
    """Memory of a process tree: the process's RSS plus what each descendant holds privately.

    Forked parse workers share most of their pages with the parent; summing plain RSS
    would count those twice. For a single process (urlwatch) this is just its RSS.
    """
    total, todo, first = 0, [pid], True
    while todo:
        p = todo.pop()
        try:
            if first:
                with open(f"/proc/{p}/status") as fh:
                    total += next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
            else:
                with open(f"/proc/{p}/smaps_rollup") as fh:
                    total += sum(int(ln.split()[1]) for ln in fh if ln.startswith(("Private_Clean:", "Private_Dirty:")))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError, StopIteration):
            pass
        first = False
    return total


def measure(cmd: list[str], *, cwd: Path, env: dict[str, str], stdout: Path) -> tuple[float, float, float, int]:
    """(wall s, CPU s of the process and its children, peak RSS MB, exit status)."""
    peak = 0
    done = threading.Event()
    with open(stdout, "wb") as out, open(stdout.with_suffix(".err"), "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_kb(proc.pid))
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, max(peak, usage.ru_maxrss) / 1024, proc.returncode


# --------------------------------------------------------------------------------------
# The two tools


# Folders to delete once every measurement is done. Deleting thousands of files just before a
# timed cycle slows the files it creates: ext4 without a journal (this benchmark's VMs) skips
# inodes freed in the last minutes when it allocates one, scanning past each of them; creating
# a cold cycle's 3,000 snapshot files after deleting the previous run's took ~1 s more CPU.
# A user's first check does not follow such a deletion, so the benchmark must not either.
_TRASH: list[Path] = []


def _discard(path: Path) -> None:
    """Delete `path` after the measurements (a rename now: no inode is freed)."""
    if path.exists():
        aside = path.with_name(f".discarded-{path.name}-{time.time_ns()}")
        path.rename(aside)
        _TRASH.append(aside)


def _empty_trash() -> None:
    for path in _TRASH:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    _TRASH.clear()


def _fresh(work: Path, *state: str) -> None:
    """A tool's folder without what an earlier run left (a reused --workdir): the cold cycle
    must start from an empty database, or it is a warm cycle under another name."""
    work.mkdir(parents=True, exist_ok=True)
    for name in state:
        _discard(work / name)


class WatcherTool:
    name = "watcher"

    def __init__(self, work: Path, urls: list[str], concurrency: int) -> None:
        self.work = work
        _fresh(work, "watcher.db", "watcher.db-wal", "watcher.db-shm", "snapshots")
        self.config = work / "sites.toml"
        lines = [
            "[settings]",
            f'database = "{work / "watcher.db"}"',
            f'snapshots = "{work / "snapshots"}"',
            f"concurrency = {concurrency}",
            f"per_host = {concurrency}  # every page is on one server here; real sites are on many hosts",
            "timeout = 60",
            "",
        ]
        for i, url in enumerate(urls):
            lines += ["[[site]]", f'name = "p{i:05d}"', f'url = "{url}"', ""]
        self.config.write_text("\n".join(lines))
        self.runs = 0
        self.sizes: dict[str, int] = {}

    def run(self, n: int, scenario: str) -> Run:
        self.runs += 1
        out = self.work / f"run{self.runs}-{scenario}.json"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [sys.executable, "-m", "watcher", "check", "-c", str(self.config), "--json"]
        wall, cpu, rss, rc = measure(cmd, cwd=self.work, env=env, stdout=out)
        outcomes: dict[str, int] = {}
        try:
            for r in json.loads(out.read_text()):
                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        except (OSError, ValueError):
            outcomes["unreadable"] = 1
        return Run(self.name, n, scenario, wall, cpu, rss, rc, outcomes)

    def db_bytes(self) -> int:
        db = self.work / "watcher.db"
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages, size, free = (
                conn.execute("PRAGMA page_count").fetchone()[0],
                conn.execute("PRAGMA page_size").fetchone()[0],
                conn.execute("PRAGMA freelist_count").fetchone()[0],
            )
        return (pages - free) * size

    def table_bytes(self) -> dict[str, int]:
        """Bytes per table (dbstat), so growth can be told apart from page allocation."""
        with sqlite3.connect(self.work / "watcher.db") as conn:
            try:
                rows = conn.execute("select name, sum(pgsize) from dbstat group by name").fetchall()
            except sqlite3.Error:
                return {}
        return {name: int(size) for name, size in rows}

    def payload_bytes(self) -> dict[str, int]:
        with sqlite3.connect(self.work / "watcher.db") as conn:
            q = {
                "fetches": "select count(*), coalesce(sum(length(site)+length(at)+length(coalesce(body_hash,''))"
                "+length(coalesce(outcome,''))+24),0) from fetches",
                "bodies": "select count(*), coalesce(sum(length(data)+length(hash)+24),0) from bodies",
                "versions": "select count(*), coalesce(sum(length(markdown)+length(text_hash)+120),0) from versions",
                "changes": "select count(*), coalesce(sum(length(sections)+length(facts)+length(summary)+80),0)"
                " from changes",
            }
            return {k: conn.execute(sql).fetchone()[1] for k, sql in q.items()}

    def snapshot_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.work / "snapshots").rglob("*.md"))


class UrlwatchTool:
    name = "urlwatch"

    def __init__(self, work: Path, urls: list[str], venv: Path) -> None:
        self.work, self.venv = work, venv
        _fresh(work, "cache.db")
        docs = [
            f"name: p{i:05d}\nurl: {url}\nignore_cached: true\nfilter:\n  - html2text: pyhtml2text\n"
            for i, url in enumerate(urls)
        ]
        (work / "urls.yaml").write_text("---\n".join(docs))
        (work / "hooks.py").write_text("")
        self.runs = 0

    def run(self, n: int, scenario: str) -> Run:
        self.runs += 1
        out = self.work / f"run{self.runs}-{scenario}.txt"
        env = {**os.environ, "HOME": str(self.work), "XDG_CONFIG_HOME": str(self.work), "NO_COLOR": "1"}
        env.pop("VIRTUAL_ENV", None)
        w = self.work
        cmd = [
            str(self.venv / "bin" / "urlwatch"),
            *("--urls", str(w / "urls.yaml"), "--config", str(w / "urlwatch.yaml")),
            *("--hooks", str(w / "hooks.py"), "--cache", str(w / "cache.db")),
        ]
        wall, cpu, rss, rc = measure(cmd, cwd=w, env=env, stdout=out)
        text = out.read_text(errors="replace")
        outcomes = {k: len(re.findall(rf"^\s*\d+\. {k.upper()}: ", text, re.M)) for k in ("new", "changed", "error")}
        return Run(self.name, n, scenario, wall, cpu, rss, rc, {k: v for k, v in outcomes.items() if v})


def compile_watcher() -> None:
    """Byte-compile watcher's modules, as `pip install` does for urlwatch's venv. An editable
    install compiles them on first import, unless PYTHONDONTWRITEBYTECODE is set (as on these
    VMs): then every `watcher check` compiled 14 modules again, ~30 ms of each measured run."""
    import compileall

    import watcher

    for folder in watcher.__path__:
        compileall.compile_dir(folder, quiet=1)


def ensure_urlwatch(fresh: bool) -> Path:
    venv = CACHE / f"urlwatch-{URLWATCH_VERSION}"
    if fresh and venv.exists():
        shutil.rmtree(venv)
    if not (venv / "bin" / "urlwatch").exists():
        print(f"installing urlwatch {URLWATCH_VERSION} into a throwaway venv at {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"urlwatch=={URLWATCH_VERSION}", "html2text"],
            check=True,
            capture_output=True,
        )
    return venv


# --------------------------------------------------------------------------------------
# In-process measurements


def diff_cpu(repeats: int = 30) -> dict[str, Any]:
    """`watcher diff` of two versions of a 20-section policy: CPU ms, in-process, after imports and warm-up."""
    from watcher import render, samples
    from watcher.classify import classify
    from watcher.cli import load_source

    doc = samples.seed_document("spi-sorel-tracy")
    doc.sections = doc.sections[:20]
    old = samples.render_page(doc, "semantic", token="a1b2c3", stamp="2026-01-01T00:00:00Z")
    new = old.replace("a1b2c3", "d4e5f6").replace("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z")
    new = re.sub(
        r"(<p>[^<]{80,}?\.)", r"\1 We may also share this information with our advertising partners.", new, count=1
    )
    new = re.sub(r"(<p>)([^<]{60,})(</p>)", r"\1\2 Personal information is kept for seven (7) years.\3", new, count=2)
    assert new != old
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "old.html"), Path(tmp, "new.html")
        a.write_text(old)
        b.write_text(new)

        def once() -> tuple[int, bool]:
            change = classify(load_source(str(a)), load_source(str(b)))
            json.dumps(render.change_json(change))
            return len(change.sections), change.material

        once()
        once()
        times = []
        for _ in range(repeats):
            t = time.process_time()
            sections, material = once()
            times.append((time.process_time() - t) * 1000)
    return {
        "sections": len(doc.sections),
        "changed_sections": sections,
        "material": material,
        "cpu_ms_median": round(statistics.median(times), 2),
        "cpu_ms_max": round(max(times), 2),
        "how": "in-process, after imports and two warm-up runs: read both files, normalize, classify, render JSON",
    }


# --------------------------------------------------------------------------------------
# The run


def storage(tool: WatcherTool, n: int, edited: int, sizes: dict[str, int]) -> dict[str, Any]:
    per_check = (sizes["warm"] - sizes["cold"]) / n
    per_version = (sizes["edited"] - sizes["warm"] - (n - edited) * per_check) / max(1, edited)
    return {
        "n": n,
        "db_bytes_after_cold": sizes["cold"],
        "db_bytes_per_site_first_version": round(sizes["cold"] / n),
        "db_bytes_per_unchanged_check": round(per_check),
        "db_bytes_per_changed_version": round(per_version),
        "bytes_per_site_per_month_daily_unchanged": round(30 * per_check),
        "bytes_per_site_per_month_daily_one_change": round(30 * per_check + per_version),
        "snapshot_bytes_per_site": round(tool.snapshot_bytes() / n),
        "tables_after": tool.table_bytes(),
    }


def fmt_table(runs: list[Run]) -> str:
    """Markdown table: each watcher row followed by the urlwatch row it is compared with."""
    rows = [("N", "scenario", "tool", "wall s", "pages/s", "CPU s", "CPU ms/site", "peak RSS MB", "urlwatch/watcher")]
    by = {(r.tool, r.n, r.scenario): r for r in runs if r.tool == "urlwatch"}
    shown: set[tuple[str, int, str]] = set()
    for r in runs:
        if r.tool != "watcher":
            continue
        other = by.get(("urlwatch", r.n, r.scenario))
        pair = [r] if other is None or ("urlwatch", r.n, r.scenario) in shown else [r, other]
        if other is not None:
            shown.add(("urlwatch", r.n, r.scenario))
        for x in pair:
            ratio = f"{other.wall_s / r.wall_s:.1f}x" if (other and x is r) else ""
            rows.append(
                (
                    f"{x.n:,}",
                    x.scenario,
                    x.tool + (f" ({x.note})" if x.note else ""),
                    f"{x.wall_s:.2f}",
                    f"{x.pages_per_s:,.0f}",
                    f"{x.cpu_s:.2f}",
                    f"{x.cpu_s / x.n * 1000:.2f}",
                    f"{x.peak_rss_mb:.0f}",
                    ratio,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _say(run: Run, verbose: bool) -> None:
    if verbose:
        print(
            f"  {run.tool:8s} N={run.n:<5d} {run.scenario:15s} {run.wall_s:7.2f} s {run.cpu_s:6.2f} s CPU "
            f"{run.peak_rss_mb:5.0f} MB  {run.outcomes} {run.note}",
            file=sys.stderr,
        )


def _best(runs: list[Run]) -> Run:
    """The fastest of repeated runs: other load on the machine only ever slows a run down."""
    return min(runs, key=lambda r: r.wall_s)


def three_cycles(tool: Any, n: int, www: Path, templates: dict, ids: list[int]) -> dict[str, Run]:
    """Cold, warm and 10 %-edited cycles; the edited pages are put back afterwards."""
    out = {}
    for scenario in ("cold", "warm", "edited"):
        if scenario == "edited":
            edit_pages(www, n, templates, ids, 1)
        try:
            out[scenario] = tool.run(n, scenario)
        finally:
            if scenario == "edited":
                edit_pages(www, n, templates, ids, 0)
        if isinstance(tool, WatcherTool):
            tool.sizes[scenario] = tool.db_bytes()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="comma-separated numbers of pages (default %(default)s)")
    ap.add_argument("--latency-size", type=int, default=1000, help="pages in the 200 ms latency scenario (0: skip)")
    ap.add_argument("--delay", type=float, default=0.2, help="seconds the latency proxy waits per response")
    ap.add_argument("--concurrency", type=int, default=10, help="watcher's concurrency (urlwatch uses 10 workers)")
    ap.add_argument(
        "--latency-concurrency", default="10,32", help="watcher concurrency levels tried in the latency scenario"
    )
    ap.add_argument("--edit-fraction", type=float, default=0.1, help="share of pages edited for the third cycle")
    ap.add_argument("--repeat", type=int, default=1, help="run each measurement this many times, keep the fastest")
    ap.add_argument("--no-urlwatch", action="store_true", help="measure watcher only")
    ap.add_argument("--fresh-urlwatch", action="store_true", help="reinstall urlwatch's throwaway venv")
    ap.add_argument("--validators", action="store_true", help="let nginx send ETag/Last-Modified (304s when warm)")
    ap.add_argument("--workdir", help="keep pages, databases and outputs here (default: a temporary folder)")
    ap.add_argument("--out", help="JSON results file (default bench/results/<time>.json)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    verbose = not args.quiet

    nginx_bin = ensure_nginx()
    venv = None if args.no_urlwatch else ensure_urlwatch(args.fresh_urlwatch)
    compile_watcher()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="watcher-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # the unprivileged nginx must be able to read the pages
    www = work / "www"
    www.mkdir(exist_ok=True)
    templates = _templates()
    runs: list[Run] = []
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "nginx": subprocess.run([nginx_bin, "-v"], capture_output=True, text=True).stderr.strip(),
            "loadavg_at_start": os.getloadavg(),
        },
        "settings": {
            "concurrency": args.concurrency,
            "edit_fraction": args.edit_fraction,
            "repeat": args.repeat,
            "validators": args.validators,
            "urlwatch": None if args.no_urlwatch else URLWATCH_VERSION,
        },
        "pages": {},
        "storage": [],
    }
    try:
        with Nginx(nginx_bin, www, work, validators=args.validators) as server:
            for n in sizes:
                total = write_pages(www, n, templates)
                results["pages"][n] = {"pages": n, "bytes": total, "mean_bytes": round(total / n)}
                urls = [f"http://127.0.0.1:{server.port}/n{n}/p{i:05d}.html" for i in range(n)]
                ids = edited_ids(n, args.edit_fraction)
                tries: dict[tuple[str, str], list[Run]] = {}
                for attempt in range(args.repeat):
                    tools: list[Any] = [WatcherTool(work / f"watcher-{n}-{attempt}", urls, args.concurrency)]
                    if venv is not None:
                        tools.append(UrlwatchTool(work / f"urlwatch-{n}-{attempt}", urls, venv))
                    for tool in tools:
                        for scenario, run in three_cycles(tool, n, www, templates, ids).items():
                            tries.setdefault((tool.name, scenario), []).append(run)
                            _say(run, verbose)
                        if isinstance(tool, WatcherTool) and attempt == 0:
                            results["storage"].append(storage(tool, n, len(ids), tool.sizes))
                        if not args.workdir:
                            _TRASH.append(tool.work)  # deleted after the measurements, see _TRASH
                runs.extend(_best(v) for v in tries.values())
            if args.latency_size:
                n = args.latency_size
                if n not in sizes:
                    write_pages(www, n, templates)
                label = f"latency {args.delay * 1000:.0f} ms"
                with DelayProxy(server.port, args.delay) as proxy:
                    urls = [f"http://127.0.0.1:{proxy.port}/n{n}/p{i:05d}.html" for i in range(n)]
                    for c in [int(x) for x in args.latency_concurrency.split(",") if x.strip()]:
                        run = WatcherTool(work / f"latency-watcher-{n}-c{c}", urls, c).run(n, label)
                        run.note = f"concurrency {c}"
                        runs.append(run)
                        _say(run, verbose)
                    if venv is not None:
                        run = UrlwatchTool(work / f"latency-urlwatch-{n}", urls, venv).run(n, label)
                        run.note = "10 workers"
                        runs.append(run)
                        _say(run, verbose)
        results["diff"] = diff_cpu()
    finally:
        _empty_trash()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["runs"] = [r.as_dict() for r in runs]
    by = {(r.tool, r.n, r.scenario): r for r in runs}
    results["ratios"] = {
        f"{n}/{s}": round(by[("urlwatch", n, s)].wall_s / by[("watcher", n, s)].wall_s, 2)
        for (tool, n, s) in by
        if tool == "watcher" and ("urlwatch", n, s) in by
    }
    table = fmt_table(runs)
    results["table"] = table
    print(table)
    print()
    d = results["diff"]
    print(
        f"watcher diff, {d['sections']}-section policy: {d['cpu_ms_median']} ms CPU median "
        f"(max {d['cpu_ms_max']} ms), {d['how']}"
    )
    for s in results["storage"]:
        print(
            f"storage N={s['n']:,}: {s['db_bytes_per_site_first_version']:,} B/site first version, "
            f"{s['db_bytes_per_unchanged_check']:,} B per unchanged check, "
            f"{s['db_bytes_per_changed_version']:,} B per changed version -> "
            f"{s['bytes_per_site_per_month_daily_unchanged']:,} B/site/month daily (unchanged), "
            f"{s['bytes_per_site_per_month_daily_one_change']:,} with one change; "
            f"snapshots {s['snapshot_bytes_per_site']:,} B/site"
        )
    load = results["machine"]
    print(f"load average at start {load['loadavg_at_start'][0]:.1f}, at end {load['loadavg_at_end'][0]:.1f} (2 cores)")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_proxy":
        serve_proxy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
