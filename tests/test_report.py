"""The static report, the live server and the Atom feeds, over history imported from an OTA repository."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import httpx
import pytest
from click.testing import CliRunner
from lxml import html as lxhtml
from ota_history import filled_project

from watcher.cli import main
from watcher.config import Config
from watcher.report import slug
from watcher.serve import make_server
from watcher.store import Store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def project(tmp_path: Path, write_config) -> Config:
    config = filled_project(tmp_path, write_config)
    store = Store(config.settings.database)
    try:  # Exemple's last check failed twice: the index must say so
        store.update_state(
            "Exemple",
            last_check="2025-04-02T08:00:00.000000Z",
            last_outcome="error",
            consecutive_failures=2,
            last_error="HTTP 503 Service Unavailable",
        )
        store.update_state("Acme", last_check="2025-04-02T08:00:00.000000Z", last_outcome="unchanged")
    finally:
        store.close()
    return config


@pytest.fixture
def report_dir(project: Config, tmp_path: Path) -> Path:
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", "--out", str(out), "-c", str(project.path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


def page(path: Path) -> lxhtml.HtmlElement:
    raw = path.read_bytes()
    assert raw.startswith(b"<!doctype html>")
    return lxhtml.document_fromstring(raw.decode("utf-8"))


def change_path(out: Path, site: str, n: int) -> Path:
    """The n-th change page (1-based, oldest first) of a site, found through the site page's links."""
    doc = page(out / "sites" / slug(site) / "index.html")
    hrefs = sorted({a.get("href") for a in doc.iter("a") if a.get("href", "").startswith("changes/")})
    hrefs.sort(key=lambda h: int(h.split("/")[1].removesuffix(".html")))
    return out / "sites" / slug(site) / hrefs[n - 1]


def test_every_page_is_self_contained_utf8_and_links_resolve(report_dir: Path) -> None:
    pages = sorted(report_dir.rglob("*.html"))
    assert len(pages) == 1 + 3 + 4  # index, three sites, four changes (3 Acme, 1 Exemple)
    for p in pages:
        doc = page(p)
        assert doc.get("lang") == "en"
        assert doc.find(".//meta[@charset]").get("charset") == "utf-8"
        assert not doc.xpath("//script | //img | //iframe | //link[@rel='stylesheet'] | //*[@src]")
        assert not re.search(r"url\((?!#)|@import|@font-face", "".join(doc.xpath("//style/text()")))
        for href in doc.xpath("//a/@href | //link/@href"):
            if href.startswith(("http://", "https://")):
                assert href in (
                    "https://acme.example/privacy",
                    "https://exemple.fr/confidentialite",
                    "https://acme.example/terms",
                )
                continue
            assert not href.startswith("/") and not href.endswith("/"), href  # file:// needs explicit files
            target = (p.parent / unquote(urlsplit(href).path)).resolve()
            assert target.is_file(), f"{p.relative_to(report_dir)} links to missing {href}"


def test_index_shows_state_last_material_change_and_badges(report_dir: Path) -> None:
    doc = page(report_dir / "index.html")
    rows = {r.xpath("string(th//a)"): r for r in doc.xpath("//tbody/tr")}
    assert set(rows) == {"Acme", "Exemple", "Acme (Terms of Service)"}
    exemple = rows["Exemple"].text_content()
    assert "error" in exemple and "2 failed checks in a row: HTTP 503 Service Unavailable" in exemple
    assert "severity: high" in exemple and "Retention" in exemple
    acme = rows["Acme"]
    assert "ok" in acme.xpath("string(td[1])") and "2025-04-02 08:00 UTC" in acme.text_content()
    # the last material change of Acme is the children/sharing one, not the technical upgrade
    last = acme.xpath("td[3]//a")[0]
    assert last.get("href") == change_path(report_dir, "Acme", 3).relative_to(report_dir).as_posix()
    assert "Age threshold changed from 'under 13' to 'under 16'" in acme.text_content()
    assert "not checked yet" in rows["Acme (Terms of Service)"].text_content()


def test_site_page_has_timeline_and_chart(report_dir: Path) -> None:
    doc = page(report_dir / "sites" / "Acme" / "index.html")
    versions = [r.xpath("string(th)") for r in doc.xpath("//tbody/tr")]
    assert versions == ["4", "3", "2", "1"]  # newest first
    svg = doc.xpath("//svg")[0]
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "3 changes (2 material) between 2024-01 and 2025-02, per month"
    titles = [t.text for t in doc.xpath("//svg/rect/title")]
    assert titles == ["2024-06: 1 material", "2024-07: 1 not material", "2025-02: 1 material"]
    assert "Open Terms Archive technical or declaration upgrade" in doc.text_content()


def test_change_page_has_summary_facts_and_both_diffs_marked_beyond_colour(report_dir: Path) -> None:
    doc = page(change_path(report_dir, "Acme", 3))
    assert "Age threshold changed from 'under 13' to 'under 16'" in doc.xpath("string(//p[@class='summary'])")
    facts = [[c.text_content() for c in r.xpath("td")] for r in doc.xpath("//table[@class='facts']/tbody/tr")]
    assert any(f[1] == "age" and "under 13" in f[2] and "under 16" in f[3] for f in facts)
    children = next(s for s in doc.xpath("//section[@class='change']") if "Children" in s.xpath("string(h3)"))
    before, after = children.xpath(".//table[@class='sbs']//td")
    assert [d.text_content() for d in before.xpath(".//del")] == ["deleted: 13"]
    assert after.xpath(".//del") == [] and [i.text_content() for i in after.xpath(".//ins")] == ["inserted: 16"]
    inline = children.xpath(".//blockquote[@class='inline']")[0]
    assert [d.text_content() for d in inline.xpath(".//del")] == ["deleted: 13"]
    assert [i.text_content() for i in inline.xpath(".//ins")] == ["inserted: 16"]
    # not colour alone: every mark carries words for screen readers, and the CSS adds visible brackets
    assert all(m.xpath("span[@class='sr']") for m in doc.xpath("//section//del | //section//ins"))
    css = "".join(doc.xpath("//style/text()"))
    assert 'del::before{content:"[−"' in css and "text-decoration:line-through" in css and "@media print" in css


def test_french_change_page_marks_policy_text_as_french(report_dir: Path) -> None:
    doc = page(change_path(report_dir, "Exemple", 1))
    assert doc.get("lang") == "en"  # the interface
    french = doc.xpath("//*[@lang='fr']")
    assert french
    texts = " ".join(e.text_content() for e in french)
    assert "Conservation des données" in texts and "cinq (5) ans" in texts and "partenaires publicitaires" in texts
    heading = doc.xpath("//section[@class='change']/h3/span[@lang='fr']")
    assert {h.text for h in heading} >= {"Conservation des données", "Partage des données"}


def test_feeds_are_valid_atom_of_material_changes_only(report_dir: Path) -> None:
    feed = feedparser.parse((report_dir / "feed.atom").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert len(feed.entries) == 3  # the technical upgrade is not news
    assert feed.entries[0].title.startswith("Acme: high change")  # newest first
    for e in feed.entries:
        assert e.summary and e.id.startswith("urn:uuid:")
        assert (report_dir / e.link).is_file()
    french = next(e for e in feed.entries if e.title.startswith("Exemple"))
    assert "cinq (5) ans" in french.summary
    site = feedparser.parse((report_dir / "sites" / "Acme" / "feed.atom").read_bytes())
    assert not site.bozo and len(site.entries) == 2
    assert all((report_dir / "sites" / "Acme" / e.link).is_file() for e in site.entries)
    terms = feedparser.parse((report_dir / "sites" / slug("Acme (Terms of Service)") / "feed.atom").read_bytes())
    assert not terms.bozo and terms.entries == []


def test_base_url_makes_feed_links_absolute(project: Config, tmp_path: Path) -> None:
    out = tmp_path / "public"
    args = ["report", "--out", str(out), "--base-url", "https://policies.example.org/watch", "-c", str(project.path)]
    assert CliRunner().invoke(main, args).exit_code == 0
    feed = feedparser.parse((out / "feed.atom").read_bytes())
    assert all(e.link.startswith("https://policies.example.org/watch/sites/") for e in feed.entries)
    assert feed.feed.links[0].href == "https://policies.example.org/watch/feed.atom"


@pytest.fixture
def server(project: Config) -> Iterator[str]:
    srv = make_server(project.settings.database, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


def test_serve_answers_the_same_pages_and_feeds_read_only(server: str, report_dir: Path, project: Config) -> None:
    db = Path(project.settings.database)
    before = db.read_bytes()
    with httpx.Client(base_url=server) as client:
        index = client.get("/")
        assert index.status_code == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
        served = lxhtml.document_fromstring(index.text)
        static = page(report_dir / "index.html")
        assert served.xpath("//tbody")[0].text_content() == static.xpath("//tbody")[0].text_content()
        change = change_path(report_dir, "Exemple", 1).relative_to(report_dir).as_posix()
        r = client.get("/" + change)
        assert r.status_code == 200 and "cinq (5) ans" in r.text
        assert client.get("/sites/Acme/").status_code == 200
        feed_resp = client.get("/feed.atom")
        assert feed_resp.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(feed_resp.content)
        assert not feed.bozo and len(feed.entries) == 3
        for e in feed.entries:  # absolute links that the server answers
            assert e.link.startswith(server)
            assert client.get(e.link).status_code == 200
        site_feed = feedparser.parse(client.get("/sites/Acme/feed.atom").content)
        assert not site_feed.bozo and len(site_feed.entries) == 2
        assert urljoin(server, "sites/Acme/") in site_feed.entries[0].link
        assert client.get("/sites/Acme/changes/999.html").status_code == 404
        assert client.get("/sites/nobody/index.html").status_code == 404
        assert client.post("/").status_code == 501
    assert db.read_bytes() == before
    ro = Store.open_readonly(db)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.db.execute("insert into meta (key, value) values ('x', 'y')")
    finally:
        ro.close()


def test_report_and_serve_without_database_fail_in_one_line(tmp_path: Path, write_config) -> None:
    config = write_config('[[site]]\nname = "a"\nurl = "https://a.example/"\n')
    for args in (["report", "--out", str(tmp_path / "r")], ["serve", "--port", "0"]):
        result = CliRunner().invoke(main, [*args, "-c", str(config)])
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "no database yet" in result.stderr


def test_last_seen_comes_from_the_last_successful_check(project: Config, tmp_path: Path) -> None:
    store = Store(project.settings.database)
    try:  # an unchanged check records its time on site_state, not on the version row
        store.update_state("Acme", last_success="2025-04-02T08:00:00.000000Z")
    finally:
        store.close()
    out = tmp_path / "report"
    assert CliRunner().invoke(main, ["report", "--out", str(out), "-c", str(project.path)]).exit_code == 0
    doc = page(out / "sites" / "Acme" / "index.html")
    latest = doc.xpath("//tbody/tr")[0]  # newest first
    assert latest.xpath("string(th)") == "4"
    assert latest.xpath("td[2]/time/@datetime") == ["2025-04-02T08:00:00.000000Z"]


def test_only_policy_text_is_tagged_with_the_policy_language(report_dir: Path) -> None:
    index = page(report_dir / "index.html")
    assert "Retention" in index.text_content() and not index.xpath("//body//*[@lang]")  # summaries are English
    feed = ET.fromstring((report_dir / "feed.atom").read_bytes())
    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    assert feed.get(xml_lang) == "en" and not [e for e in feed.iter() if e is not feed and e.get(xml_lang)]
    change = page(change_path(report_dir, "Exemple", 1))
    assert not change.xpath("//p[@class='summary']/ancestor-or-self::*[@lang='fr']")


def test_report_write_and_database_errors_are_one_line(project: Config, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(main, ["report", "--out", str(blocker / "report"), "-c", str(project.path)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert str(blocker) in result.stderr and "cannot create the folder" in result.stderr
    store = Store(project.settings.database)
    try:
        store.db.execute("drop table site_state")  # the schema version stays: only reading fails
    finally:
        store.close()
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "r"), "-c", str(project.path)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot read the database" in result.stderr


def test_serve_answers_a_damaged_row_with_a_500_page_and_keeps_serving(project: Config, server: str) -> None:
    store = Store(project.settings.database)
    try:
        cid = next(c["id"] for c in store.changes("Acme") if not c["material"])  # the index does not read it
        store.db.execute("update changes set sections = '{not json' where id = ?", [cid])
    finally:
        store.close()
    with httpx.Client(base_url=server) as client:
        broken = client.get(f"/sites/Acme/changes/{cid}.html")
        assert broken.status_code == 500
        assert "cannot build" in broken.text and "JSONDecodeError" in broken.text and broken.text.count("\n") == 0
        assert client.get("/").status_code == 200  # the server is still up
