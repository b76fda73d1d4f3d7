"""Section diff: added, removed, modified (with a word diff), moved, renumbered, renamed."""

from __future__ import annotations

import re

import pytest

from watcher import samples
from watcher.diff import diff_documents, heading_key, strip_enumeration, word_diff
from watcher.models import Block, Document, Section, WordOp
from watcher.normalize import normalize, to_markdown

BODIES = {
    "Information we collect": "We collect your name, e-mail address and billing details when you sign up.",
    "How we use it": "We use your information to provide the service and to send you invoices.",
    "Sharing": "We share data with payment processors and hosting providers under contract.",
    "Retention": "We keep account data for 30 days after you close your account.",
    "Your rights": "You may ask for a copy of your data, or ask us to correct or delete it.",
}


def doc(*sections: tuple[str, str]) -> Document:
    return Document(
        title="Privacy",
        lang="en",
        sections=[Section(heading=h, level=2, path=(h,), blocks=[Block("p", t)]) for h, t in sections],
    )


def base() -> Document:
    return doc(*BODIES.items())


def statuses(old: Document, new: Document) -> list[tuple[str, str, str]]:
    return [(c.status, c.heading_before, c.heading) for c in diff_documents(old, new)]


def _sides(ops: list[WordOp]) -> tuple[str, str]:
    before = "".join(o.text for o in ops if o.op in (0, -1))
    after = "".join(o.text for o in ops if o.op in (0, 1))
    return before, after


def test_identical_documents_have_no_changes() -> None:
    assert diff_documents(base(), base()) == []
    for name in samples.SEEDS:
        d = samples.seed_document(name)
        assert diff_documents(d, d) == []
        # the stored form (canonical Markdown) read back is the same document to the diff
        assert diff_documents(d, normalize(to_markdown(d), fmt="markdown")) == []


def test_added_section() -> None:
    new = list(BODIES.items())
    new.insert(2, ("Cookies", "We use cookies to remember your preferences and to measure traffic."))
    changes = diff_documents(base(), doc(*new))
    assert [(c.status, c.heading) for c in changes] == [("added", "Cookies")]
    (c,) = changes
    assert c.before == "" and c.heading_before == ""
    assert c.after.startswith("We use cookies")
    assert c.index_before is None and c.index_after == 2


def test_removed_section() -> None:
    new = [(h, t) for h, t in BODIES.items() if h != "Sharing"]
    changes = diff_documents(base(), doc(*new))
    assert [(c.status, c.heading_before) for c in changes] == [("removed", "Sharing")]
    (c,) = changes
    assert c.after == "" and c.heading == ""
    assert c.before == BODIES["Sharing"]
    assert c.path == ("Sharing",)


def test_modified_section_has_a_word_diff() -> None:
    new = dict(BODIES)
    new["Retention"] = "We keep account data for 7 years after you close your account."
    changes = diff_documents(base(), doc(*new.items()))
    assert [(c.status, c.heading) for c in changes] == [("modified", "Retention")]
    (c,) = changes
    assert (c.before, c.after) == (BODIES["Retention"], new["Retention"])
    assert _sides(c.words) == (c.before, c.after)
    deleted = "".join(o.text for o in c.words if o.op == -1)
    inserted = "".join(o.text for o in c.words if o.op == 1)
    assert deleted.strip() == "30 days" and inserted.strip() == "7 years"
    assert c.words[0] == WordOp(0, "We keep account data for ")


def test_word_diff_is_on_whole_words() -> None:
    ops = word_diff("We may share data with partners.", "We will not share data with partners.")
    assert _sides(ops) == ("We may share data with partners.", "We will not share data with partners.")
    for o in ops:
        if o.op:
            assert re.fullmatch(r"[\w\s]+", o.text) and not o.text.startswith(("ay", "ill"))
    assert word_diff("same text", "same text") == [WordOp(0, "same text")]


def test_moved_section_is_not_modified() -> None:
    items = list(BODIES.items())
    moved = [items[0], items[1], items[3], items[4], items[2]]  # "Sharing" goes to the end
    assert statuses(base(), doc(*moved)) == [("moved", "Sharing", "Sharing")]
    (c,) = diff_documents(base(), doc(*moved))
    assert c.before == c.after and c.words == []


def test_moved_and_edited_section_is_modified() -> None:
    items = list(BODIES.items())
    edited = ("Sharing", "We share data with payment processors, advertisers and hosting providers under contract.")
    new = [items[0], items[1], items[3], items[4], edited]
    changes = diff_documents(base(), doc(*new))
    assert [(c.status, c.heading) for c in changes] == [("modified", "Sharing")]
    assert "advertisers" in "".join(o.text for o in changes[0].words if o.op == 1)


def test_renumbered_sections_after_an_insertion() -> None:
    numbered = [(f"{i}. {h}", t) for i, (h, t) in enumerate(BODIES.items(), 1)]
    items = list(BODIES.items())
    inserted = [
        (f"{i}. {h}", t) for i, (h, t) in enumerate([*items[:2], ("Cookies", "We use cookies."), *items[2:]], 1)
    ]
    assert statuses(doc(*numbered), doc(*inserted)) == [
        ("added", "", "3. Cookies"),
        ("renumbered", "3. Sharing", "4. Sharing"),
        ("renumbered", "4. Retention", "5. Retention"),
        ("renumbered", "5. Your rights", "6. Your rights"),
    ]


def test_renamed_heading_with_the_same_body_is_paired() -> None:
    new = [("Data retention periods" if h == "Retention" else h, t) for h, t in BODIES.items()]
    changes = diff_documents(base(), doc(*new))
    assert len(changes) == 1  # one section renamed, not one removed and one added
    (c,) = changes
    assert (c.status, c.heading_before, c.heading) == ("modified", "Retention", "Data retention periods")
    assert c.before == c.after == BODIES["Retention"]
    assert all(o.op == 0 for o in c.words)


def test_heading_case_and_typography_are_not_changes() -> None:
    new = [(h.upper() if h == "Sharing" else h, t) for h, t in BODIES.items()]
    assert diff_documents(base(), doc(*new)) == []
    assert heading_key("3.2 Children’s  Privacy") == heading_key("Children's privacy")
    assert strip_enumeration("Article 12 Cookies") == "Cookies"


def test_headless_preamble_and_empty_sections() -> None:
    old = Document("t", "en", [Section("", 0, (), [Block("p", "Intro text.")]), Section("A", 2, ("A",), [])])
    new = Document("t", "en", [Section("", 0, (), [Block("p", "Intro text, revised.")]), Section("A", 2, ("A",), [])])
    assert statuses(old, new) == [("modified", "", "")]


# --- real seed policies, edited the way policies change --------------------------------


WESGAR_RETENTION_BEFORE = "only so long as it is necessary to achieve our stated purposes"
WESGAR_RETENTION_AFTER = "for seven (7) years after our last interaction with you"


@pytest.mark.parametrize("layout", ["text", "semantic", "plain"])
def test_seed_edit_is_one_modified_section(layout: str) -> None:
    text = samples.seed_text("wesgar")
    assert WESGAR_RETENTION_BEFORE in text
    edited = text.replace(WESGAR_RETENTION_BEFORE, WESGAR_RETENTION_AFTER)
    if layout == "text":
        old, new = samples.seed_document("wesgar"), samples.seed_document("wesgar", edited)
    else:
        old = normalize(samples.page("wesgar", layout, token="a1"))
        new = normalize(samples.page("wesgar", layout, text=edited, token="b2"))
    changes = diff_documents(old, new)
    assert [(c.status, c.heading) for c in changes] == [
        ("modified", "How we use the personal information we collected")
    ]
    (c,) = changes
    inserted = "".join(o.text for o in c.words if o.op == 1)
    deleted = "".join(o.text for o in c.words if o.op == -1)
    assert "seven (7) years" in inserted and "necessary" in deleted
    assert "Wesgar" not in inserted + deleted  # only the changed words, not the whole section
    assert _sides(c.words) == (c.before, c.after)


def _bump_numbers(text: str) -> str:
    """Renumber every numbered line from 2 upwards (2. -> 3., 2.1 -> 3.1), as after an insertion."""

    def bump(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"{n + 1 if n >= 2 else n}{m.group(2)}"

    return "\n".join(re.sub(r"^(\d+)(\.\d*\s|\.?\s)", bump, ln, count=1) for ln in text.split("\n"))


def test_seed_renumbered_by_an_inserted_section() -> None:
    text = samples.seed_text("planiso")
    new_text = _bump_numbers(text).replace(
        "3. Collection of Personal Information",
        "2. Data Minimisation\nWe collect only the personal information that we need for the purposes described in"
        " this policy, and nothing more.\n3. Collection of Personal Information",
    )
    old = normalize(samples.page("planiso", "semantic"))
    new = normalize(samples.page("planiso", "divs", text=new_text))
    changes = diff_documents(old, new)
    by_status: dict[str, list[str]] = {}
    for c in changes:
        by_status.setdefault(c.status, []).append(c.path[-1])  # the section's own heading
    assert by_status.pop("added") == ["2. Data Minimisation"]
    renumbered = by_status.pop("renumbered")
    assert by_status == {}  # nothing modified, moved or removed
    assert "3. Collection of Personal Information" in renumbered
    assert "10.1 Recognition and Respect for Your Rights" in renumbered
    assert "12. Contact" in renumbered
    for c in changes[1:]:
        before = old.sections[c.index_before].heading
        after = new.sections[c.index_after].heading
        assert before != after and strip_enumeration(before) == strip_enumeration(after)


def test_seed_section_moved_and_removed() -> None:
    text = samples.seed_text("wesgar")
    links = "Links to a third-party website\n"
    start = text.index(links)
    end = text.index("Transfer of personal information outside of Canada")
    block = text[start:end]
    moved = text[:start] + text[end:]
    moved = moved.replace("Contact us\n", block + "Contact us\n")
    old, new = samples.seed_document("wesgar"), samples.seed_document("wesgar", moved)
    assert statuses(old, new) == [("moved", "Links to a third-party website", "Links to a third-party website")]
    removed = text[:start] + text[end:]
    assert statuses(old, samples.seed_document("wesgar", removed)) == [
        ("removed", "Links to a third-party website", "")
    ]


def test_french_seed_added_section() -> None:
    text = samples.seed_text("cantrex")
    extra = (
        "Transferts hors du Québec\n\nCantrex peut communiquer des renseignements personnels à des fournisseurs situés"
        " à l'extérieur du Québec, après une évaluation des facteurs relatifs à la vie privée.\n\n"
    )
    edited = text.replace("Hyperliens\n", extra + "Hyperliens\n")
    changes = diff_documents(samples.seed_document("cantrex"), samples.seed_document("cantrex", edited))
    assert [(c.status, c.heading) for c in changes] == [("added", "Transferts hors du Québec")]
