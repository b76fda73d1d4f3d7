"""render.py: one section JSON for the store and `diff --json`, one way to pick a section's ops, language tags."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import html as lxhtml

from watcher import demo, render, samples
from watcher.classify import classify
from watcher.models import Change, SectionChange, WordOp
from watcher.store import Store


def sample_change(name: str) -> Change:
    return classify(samples.seed_document(name), samples.seed_document(name, demo._edited(name)))


def shown(sections: list[SectionChange]) -> list[dict]:
    """What a stored section keeps (alignment indexes are not stored)."""
    return [render.section_json(s) for s in sections]


def test_stored_sections_are_the_diff_json_and_old_rows_still_read(tmp_path: Path) -> None:
    change = sample_change("wesgar")
    store = Store(tmp_path / "w.db")
    try:
        with store.transaction():
            store.upsert_site("wesgar", "https://example.org/p", "h", "2026-01-01T00:00:00.000000Z")
            v1 = store.add_version(
                "wesgar", markdown="a\n", title="", lang="en", effective_date=None, body_hash=None, at="2026-01-01"
            )
            v2 = store.add_version(
                "wesgar", markdown="b\n", title="", lang="en", effective_date=None, body_hash=None, at="2026-01-02"
            )
            cid = store.add_change("wesgar", v1["id"], v2["id"], change, "2026-01-02T00:00:00.000000Z")
        row = store.change(cid)
        assert row["sections"] == render.change_json(change)["sections"]  # one JSON shape, key "diff"
        back = render.change_from_row(row)
        assert shown(back.sections) == shown(change.sections)
        assert (back.topics, back.facts, back.summary) == (change.topics, change.facts, change.summary)
        # rows written before the store used render.section_json kept the word diff under "words"
        old = [{**s, "words": s.pop("diff")} for s in json.loads(json.dumps(row["sections"]))]
        assert shown(render.sections_from_json(old)) == shown(change.sections)
    finally:
        store.close()


def test_added_and_removed_sections_are_marked_whole_in_every_format() -> None:
    added = SectionChange("added", "New", "", ("New",), "", "First line.\nSecond line.")
    removed = SectionChange("removed", "", "Old", ("Old",), "Gone.", "")
    assert render.section_ops(added) == [WordOp(1, "First line.\nSecond line.")]
    assert render.section_ops(removed) == [WordOp(-1, "Gone.")]
    change = Change(True, True, "low", ["other"], {"before": None, "after": None}, [added, removed], summary="s")
    text = render.to_text(change)
    assert "{+First line.+}\n{+Second line.+}" in text and "[-Gone.-]" in text
    md = render.to_markdown(change)
    assert "> **First line.**\n> **Second line.**" in md and "> ~~Gone.~~" in md
    page = lxhtml.document_fromstring(render.to_html(change))
    assert [i.text_content() for i in page.xpath("//blockquote/ins")] == ["inserted: First line.\nSecond line."]
    assert [d.text_content() for d in page.xpath("//blockquote/del")] == ["deleted: Gone."]


def test_html_frame_is_english_and_quotes_carry_the_policy_language() -> None:
    change = sample_change("cantrex")
    assert change.lang == "fr" and change.material
    page = lxhtml.document_fromstring(render.to_html(change, title="cantrex"))
    assert page.get("lang") == "en"
    quotes = page.xpath("//blockquote")
    assert quotes and all(q.get("lang") == "fr" for q in quotes)
    assert "partenaires publicitaires" in " ".join(q.text_content() for q in quotes)
    badges = [b.text_content() for b in page.xpath("//h2/span[@class='badge']")]
    assert "Sharing and recipients" in badges  # labels, not topic ids
    assert not set(badges) & {"sharing", "retention", "other"}


def test_excerpt_is_one_line_within_the_limit() -> None:
    assert render.excerpt("  a\n b  ", 10) == "a b"
    cut = render.excerpt("word " * 50, 20)
    assert len(cut) == 20 and cut.endswith("…") and "\n" not in cut
    assert render.excerpt(None, 5) == ""
