"""`watcher check` over the five seed policies served on 127.0.0.1, with a real SQLite file."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watcher import samples
from watcher.cli import main
from watcher.store import Store, snapshot_name

RETENTION_BEFORE = "only so long as it is necessary to achieve our stated purposes"
RETENTION_AFTER = "for seven (7) years after our last interaction with you"


class Policies:
    """The five seed policies served from a real HTTP server; every response carries fresh noise."""

    LAYOUT = {"wesgar": "semantic", "spi-sorel-tracy": "divs", "planiso": "plain", "cantrex": "wrapped"}

    def __init__(self, web: HTTPServer) -> None:
        self.web = web
        self.texts = {name: samples.seed_text(name) for name in samples.SEEDS}
        self.status: dict[str, int] = {}
        self.counter = itertools.count()
        for name in samples.SEEDS:
            web.expect_request(f"/{name}").respond_with_handler(self._handler(name))

    def _handler(self, name: str):
        def handle(_request: Request) -> Response:
            n = next(self.counter)
            status = self.status.get(name, 200)
            if status != 200:
                return Response(f"<html><body><p>error {status}</p></body></html>", status, content_type="text/html")
            page = samples.page(
                name,
                self.LAYOUT.get(name, "semantic"),
                text=self.texts[name],
                token=f"tok{n:06d}",
                stamp=f"2026-02-{1 + n % 27:02d}T10:{n % 60:02d}:00Z",
            )
            return Response(page, content_type="text/html; charset=utf-8")

        return handle

    def config(self, write_config) -> Path:
        return write_config(
            "".join(f'[[site]]\nname = "{n}"\nurl = "{self.web.url_for("/" + n)}"\n\n' for n in samples.SEEDS),
            settings="per_host = 5\n",
        )


@pytest.fixture
def policies(web: HTTPServer) -> Policies:
    return Policies(web)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def check(config: Path, *extra: str) -> tuple[int, list[dict]]:
    result = cli("check", "-c", str(config), "--json", *extra)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def count(db: Path, table: str, where: str = "1") -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"select count(*) from {table} where {where}").fetchone()[0]


def rows(db: Path, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()


def dated_file(folder: Path, version: sqlite3.Row) -> Path:
    """<first seen>.md; a later version first seen in the same second as an earlier one adds -v<seq>."""
    plain = folder / snapshot_name(version["first_seen"])
    if version["seq"] > 1 and plain.exists() and plain.read_text(encoding="utf-8") != version["markdown"]:
        return plain.with_name(plain.stem + f"-v{version['seq']}.md")
    return plain


def outcomes(results: list[dict]) -> dict[str, str]:
    return {r["site"]: r["outcome"] for r in results}


def test_two_checks_without_change(policies: Policies, write_config, tmp_path: Path) -> None:
    config = policies.config(write_config)
    db = tmp_path / "w.db"
    code, first = check(config)
    assert code == 0
    assert outcomes(first) == dict.fromkeys(samples.SEEDS, "new")
    assert count(db, "versions") == 5 and count(db, "fetches") == 5 and count(db, "changes") == 0

    code, second = check(config)
    assert code == 0
    assert outcomes(second) == dict.fromkeys(samples.SEEDS, "unchanged")
    assert all(r["version"] == 1 for r in second)
    assert count(db, "versions") == 5  # no new version
    assert count(db, "fetches") == 10  # but every attempt is recorded
    assert count(db, "fetches", "outcome = 'unchanged' and version_id is not null") == 5
    assert count(db, "changes") == 0
    assert len(policies.web.log) == 10
    # last_seen moves with every check (derived from the site's last success, see Store.versions)
    store = Store(db)
    try:
        seen = [v for name in samples.SEEDS for v in store.versions(name, text=False)]
    finally:
        store.close()
    assert len(seen) == 5 and all(r["last_seen"] > r["first_seen"] for r in seen)


def test_one_edit_records_exactly_one_change(policies: Policies, write_config, tmp_path: Path) -> None:
    config = policies.config(write_config)
    db = tmp_path / "w.db"
    check(config)
    assert RETENTION_BEFORE in policies.texts["wesgar"]
    policies.texts["wesgar"] = policies.texts["wesgar"].replace(RETENTION_BEFORE, RETENTION_AFTER)
    code, results = check(config)
    assert code == 0  # a change is not an error
    assert outcomes(results) == {**dict.fromkeys(samples.SEEDS, "unchanged"), "wesgar": "changed"}
    (changed,) = [r for r in results if r["outcome"] == "changed"]
    assert changed["version"] == 2 and changed["change_id"] == 1
    assert changed["material"] is True and "retention" in changed["topics"]
    assert count(db, "changes") == 1
    assert count(db, "versions") == 6
    (change,) = rows(db, "select * from changes")
    assert change["site"] == "wesgar"
    sections = json.loads(change["sections"])
    assert [(s["status"], s["heading"]) for s in sections] == [
        ("modified", "How we use the personal information we collected")
    ]
    assert any(op == 1 and "seven (7) years" in text for op, text in sections[0]["diff"])

    # a third check with no further edit: unchanged everywhere, still exactly one change
    code, results = check(config)
    assert outcomes(results) == dict.fromkeys(samples.SEEDS, "unchanged")
    assert count(db, "changes") == 1 and count(db, "versions") == 6


def test_snapshots_written_and_rebuilt(policies: Policies, write_config, tmp_path: Path) -> None:
    config = policies.config(write_config)
    db, snap = tmp_path / "w.db", tmp_path / "snap"
    check(config)
    policies.texts["wesgar"] = policies.texts["wesgar"].replace(RETENTION_BEFORE, RETENTION_AFTER)
    check(config)
    versions = rows(db, "select site, seq, markdown, first_seen from versions order by site, seq")
    for name in samples.SEEDS:
        mine = [v for v in versions if v["site"] == name]
        folder = snap / name
        assert (folder / "latest.md").read_text(encoding="utf-8") == mine[-1]["markdown"]
        dated = sorted(p.name for p in folder.glob("*.md") if p.name != "latest.md")
        assert len(dated) == len(mine), dated  # one readable file per version, even within one second
        assert sorted(dated_file(folder, v).name for v in mine) == dated
        for v in mine:
            assert dated_file(folder, v).read_text(encoding="utf-8") == v["markdown"]
    wesgar = [v for v in versions if v["site"] == "wesgar"]
    assert RETENTION_AFTER in (snap / "wesgar" / "latest.md").read_text(encoding="utf-8")
    assert RETENTION_AFTER not in (snap / "wesgar" / snapshot_name(wesgar[0]["first_seen"])).read_text("utf-8")

    # deleted or damaged files come back from the database on the next check
    first = snap / "wesgar" / snapshot_name(wesgar[0]["first_seen"])
    first.unlink()
    (snap / "wesgar" / "latest.md").write_text("tampered\n", encoding="utf-8")
    (snap / "planiso" / "latest.md").unlink()
    code, results = check(config)
    assert code == 0 and outcomes(results) == dict.fromkeys(samples.SEEDS, "unchanged")
    assert first.read_text(encoding="utf-8") == wesgar[0]["markdown"]
    assert (snap / "wesgar" / "latest.md").read_text(encoding="utf-8") == wesgar[1]["markdown"]
    planiso = [v for v in versions if v["site"] == "planiso"]
    assert (snap / "planiso" / "latest.md").read_text(encoding="utf-8") == planiso[0]["markdown"]
    assert not list(snap.rglob(".tmp-*"))  # atomic writes leave no temp files behind


def test_failed_fetch_records_an_error_and_exit_1(policies: Policies, write_config, tmp_path: Path) -> None:
    config = policies.config(write_config)
    db = tmp_path / "w.db"
    check(config)
    policies.status["planiso"] = 500
    policies.texts["wesgar"] = policies.texts["wesgar"].replace(RETENTION_BEFORE, RETENTION_AFTER)
    code, results = check(config)
    assert code == 1
    assert outcomes(results) == {
        **dict.fromkeys(samples.SEEDS, "unchanged"),
        "planiso": "error",
        "wesgar": "changed",  # one site's failure does not stop the others
    }
    (failed,) = [r for r in results if r["site"] == "planiso"]
    assert failed["status"] == 500 and failed["error_kind"] == "http" and "500" in failed["reason"]
    (row,) = rows(db, "select * from fetches where site = 'planiso' order by id desc limit 1")
    assert row["outcome"] == "error" and row["status"] == 500 and "500" in row["error"]
    assert row["version_id"] is None and row["change_id"] is None
    assert count(db, "versions", "site = 'planiso'") == 1
    assert count(db, "changes", "site = 'planiso'") == 0
    (state,) = rows(db, "select * from site_state where site = 'planiso'")
    assert state["consecutive_failures"] == 1 and "500" in state["last_error"]

    # recovery: the next good fetch is unchanged and resets the failure count
    policies.status.clear()
    code, results = check(config, "planiso")
    assert code == 0 and outcomes(results) == {"planiso": "unchanged"}
    (state,) = rows(db, "select * from site_state where site = 'planiso'")
    assert state["consecutive_failures"] == 0


def test_first_check_of_an_unreachable_site(write_config, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(f'[[site]]\nname = "gone"\nurl = "http://127.0.0.1:{port}/privacy"\n')
    code, results = check(config)
    assert code == 1
    (r,) = results
    assert r["outcome"] == "error" and r["error_kind"] == "refused" and r["status"] is None
    db = tmp_path / "w.db"
    assert count(db, "fetches", "site = 'gone' and outcome = 'error'") == 1
    assert count(db, "versions") == 0
    assert not (tmp_path / "snap" / "gone").exists()


def test_conditional_requests_use_the_stored_validators(web: HTTPServer, write_config, tmp_path: Path) -> None:
    page = samples.page("planiso")
    etag = '"planiso-v1"'

    def handle(request: Request) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(page, content_type="text/html", headers={"ETag": etag})

    web.expect_request("/planiso").respond_with_handler(handle)
    config = write_config(f'[[site]]\nname = "planiso"\nurl = "{web.url_for("/planiso")}"\n')
    assert outcomes(check(config)[1]) == {"planiso": "new"}
    code, results = check(config)
    assert code == 0
    (r,) = results
    assert (r["outcome"], r["status"], r["reason"], r["version"]) == ("unchanged", 304, "304 Not Modified", 1)
    assert web.log[1][0].headers.get("If-None-Match") == etag
    db = tmp_path / "w.db"
    assert count(db, "versions") == 1 and count(db, "fetches") == 2


def test_json_shape(policies: Policies, write_config) -> None:
    config = policies.config(write_config)
    code, results = check(config, "wesgar", "cantrex")
    assert code == 0
    assert [r["site"] for r in results] == ["wesgar", "cantrex"]
    keys = {
        "site",
        "outcome",
        "reason",
        "status",
        "duration_ms",
        "version",
        "change_id",
        "material",
        "severity",
        "topics",
        "summary",
        "error_kind",
    }
    for r in results:
        assert keys <= set(r)
        assert r["outcome"] == "new" and r["status"] == 200 and r["version"] == 1
        assert isinstance(r["topics"], list) and isinstance(r["duration_ms"], int)
