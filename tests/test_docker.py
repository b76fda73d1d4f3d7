"""The container image, without a Docker engine: its Dockerfile and compose.yaml say what the
issue asks, and the image's exact command line, run with the image's environment (its /data
and /config mapped into a temporary folder), watches a local server and passes its health check.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from daemon_support import Daemon, PolicyServer, wait_for

from watcher import samples

ROOT = Path(__file__).resolve().parents[1]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def one(stage: list[tuple[str, str]], word: str) -> str:
    found = [a for w, a in stage if w == word]
    assert found, f"the runtime stage has no {word}"
    return found[-1]


@pytest.fixture(scope="module")
def runtime() -> list[tuple[str, str]]:
    return stages(ROOT / "Dockerfile")[-1]


def test_dockerfile_builds_a_slim_non_root_image_with_a_data_volume_and_a_health_check(runtime) -> None:
    all_stages = stages(ROOT / "Dockerfile")
    assert len(all_stages) >= 2  # the build tools stay in the build stage
    assert all("-slim" in s[0][1] for s in all_stages)
    assert any(w == "COPY" and a.startswith("--from=") for w, a in runtime)

    user = one(runtime, "USER").split(":")[0]
    assert user not in ("root", "0")
    assert [w for w, _ in runtime].index("USER") > max(i for i, (w, _) in enumerate(runtime) if w == "RUN")

    assert json.loads(one(runtime, "VOLUME")) == ["/data"]
    env = env_of(runtime)
    assert env["WATCHER_CONFIG"].startswith("/config/")
    assert env["WATCHER_DATABASE"].startswith("/data/") and env["WATCHER_SNAPSHOTS"].startswith("/data/")

    health = one(runtime, "HEALTHCHECK")
    assert json.loads(health.split(" CMD ", 1)[1]) == ["watcher", "health"]
    assert json.loads(one(runtime, "ENTRYPOINT")) == ["watcher"]
    assert json.loads(one(runtime, "CMD")) == ["run"]
    assert one(runtime, "STOPSIGNAL") == "SIGTERM"

    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "secrets.env"} <= set(ignored)


def test_compose_mounts_the_config_read_only_and_reads_secrets_from_an_env_file(runtime) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["watcher"]
    config_path = env_of(runtime)["WATCHER_CONFIG"]
    mounts = [v.split(":") for v in service["volumes"]]
    assert [config_path, "ro"] in [m[1:] for m in mounts]
    data = [m for m in mounts if m[1] == "/data"]
    assert data and data[0][0] in compose.get("volumes", {})
    assert service["env_file"] and all(not str(f).startswith("/") for f in service["env_file"])
    assert (ROOT / (str(service["env_file"][0]) + ".example")).is_file()
    # stopping waits longer than the daemon's own grace period, so SIGKILL never cuts a write short
    assert int(service["stop_grace_period"].rstrip("s")) > 8


def test_the_image_command_line_watches_a_local_site_and_reports_healthy(tmp_path: Path, runtime) -> None:
    """ENTRYPOINT + CMD, with the image's ENV, /data and /config mapped under tmp_path."""
    mapping = {"/data": str(tmp_path / "data"), "/config": str(tmp_path / "config")}

    def remap(value: str) -> str:
        for inside, outside in mapping.items():
            if value == inside or value.startswith(inside + "/"):
                return outside + value[len(inside) :]
        return value

    image_env = {k: remap(v) for k, v in env_of(runtime).items() if k != "PATH"}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")},
        **image_env,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),  # /opt/watcher/bin
    }
    for folder in mapping.values():
        Path(folder).mkdir(parents=True)

    server = PolicyServer()
    server.texts["wesgar"] = samples.seed_text("wesgar")
    config = Path(image_env["WATCHER_CONFIG"])
    config.write_text(
        f'[settings]\ninterval = "1s"\n\n[[site]]\nname = "wesgar"\nurl = "{server.url("wesgar")}"\n', encoding="utf-8"
    )
    argv = json.loads(one(runtime, "ENTRYPOINT")) + json.loads(one(runtime, "CMD"))
    workdir = Path(remap(one(runtime, "WORKDIR")))
    d = Daemon(config, env=env, argv=argv, cwd=workdir)  # no --config: it comes from WATCHER_CONFIG
    try:
        wait_for("two checks", lambda: len(d.checks("wesgar")) >= 2, daemon=d)  # JSON logs, from WATCHER_LOG_FORMAT
        health_cmd = json.loads(one(runtime, "HEALTHCHECK").split(" CMD ", 1)[1])
        health = subprocess.run(health_cmd, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stderr
        rc, _ = d.terminate()
        assert rc == 0, d.log()
    finally:
        d.close()
        server.stop()
    assert Path(image_env["WATCHER_DATABASE"]).is_file()
    assert (Path(image_env["WATCHER_SNAPSHOTS"]) / "wesgar" / "latest.md").is_file()
