"""Did a term change, which topics does it touch, and how much does it matter? (pure)

The decision is made on wording, never on markup: both versions become sequences of
sentence units (numbering stripped, typography folded), the sequences are aligned, and
each hunk that differs is explained, in this order, as
1. the same words cut into different blocks (reflow)                  -> noise
2. sentences that moved elsewhere unchanged                              -> noise
3. a stated date written another way ("8 July 2026" / "July 8, 2026")  -> noise
4. a stated date that changed                                            -> material, low
5. spelling fixes (a word changed by one or two letters, no number,
   negation, modal or quantifier involved) and added/dropped articles    -> noise
6. anything else                                                         -> material
Topics come from the cue tables in data/cues.toml, scored on the words that changed, the
sentence around them and the section heading; facts from data/facts.toml.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import pairwise

from .data import load_table
from .dates import StatedDate, document_lines, find_dates, latest, stated_dates_in
from .diff import diff_documents, strip_enumeration
from .models import SEVERITIES, Change, Cue, Document, Fact, SectionChange, Severity
from .normalize import to_markdown
from .textutil import fold, sentences, words
from .topics import TOPIC_IDS, label


@lru_cache(maxsize=1)
def _cues() -> dict[str, dict[str, tuple[re.Pattern[str] | None, list[str]]]]:
    """Per topic and key ("en", "en_weak", ...): one alternation of the cues (one compile) and the cues."""
    raw = load_table("cues.toml")
    out: dict[str, dict[str, tuple[re.Pattern[str] | None, list[str]]]] = {}
    for topic, groups in raw.items():
        out[topic] = {}
        for key, pats in groups.items():
            rx = (
                re.compile(r"(?<![\w-])(?:" + "|".join(f"(?:{p})" for p in pats) + r")(?![\w-])", re.I)
                if pats
                else None
            )
            out[topic][key] = (rx, pats)
    return out


def _which_cue(pats: list[str], matched: str) -> str:
    """The cue that matched (for --explain); only computed for cues that fired."""
    return next((p for p in pats if re.fullmatch(p, matched, re.I)), pats[0])


@lru_cache(maxsize=1)
def _rules() -> dict:
    raw = load_table("materiality.toml")
    return {
        "protected": set(raw["protected"]),
        "filler": set(raw["filler"]),
        "negations": set(raw["negations"]),
        "recipients": re.compile(r"(?<![\w-])(?:" + "|".join(raw["recipients"]) + r")(?![\w-])", re.I),
        "high_topics": set(raw["high_topics"]),
        "low_topics": set(raw["low_topics"]),
    }


@lru_cache(maxsize=1)
def _facts() -> dict[str, dict]:
    raw = load_table("facts.toml")
    return {
        kind: {
            "topic": spec["topic"],
            "patterns": [re.compile(rf"(?<![\w-]){p}(?![\w-])", re.I) for p in spec["patterns"]],
            "context": re.compile(spec["context"], re.I) if spec.get("context") else None,
        }
        for kind, spec in raw.items()
    }


# --------------------------------------------------------------------------------------
# Units


@dataclass
class Unit:
    """One sentence (or heading) of a version, with where it sits."""

    text: str
    key: tuple[str, ...]
    section: int  # index of its section in the document
    heading: str
    path: tuple[str, ...]
    is_item: bool = False  # a list item or table row: its heading says what it is about
    stated: frozenset[str] = frozenset()  # dates this block states as the policy's (with document context)
    lead: str = ""  # for list items: the paragraph that introduces the list ("We share it with:")


def units(doc: Document, dated: list[StatedDate] | None = None) -> list[Unit]:
    """The sentences of a version; `dated` are its stated dates when the caller has them already."""
    out: list[Unit] = []
    stated: dict[str, set[str]] = {}
    if dated is None:
        dated = stated_dates_in(document_lines(doc), doc.lang)
    for d in dated:
        stated.setdefault(d.text, set()).add(d.iso)  # "Last updated :" + next line: the date line holds it
    for idx, s in enumerate(doc.sections):
        if s.heading:
            isos = frozenset(stated.get(s.heading, ()))
            out.append(Unit(s.heading, _key(s.heading), idx, s.heading, s.path, stated=isos))
        lead = ""
        for b in s.blocks:
            if b.kind == "p":
                lead = b.text
            isos = frozenset(stated.get(b.text, ()))
            item = b.kind != "p"
            # a table row's cells are read one by one: a changed legal-basis cell is not about
            # the retention period in the next cell
            pieces = [c for c in b.cells if c] if b.kind == "row" and b.cells else [b.text]
            for piece in pieces:
                for sent in sentences(piece):
                    k = _key(sent)
                    if k:
                        out.append(
                            Unit(sent, k, idx, s.heading, s.path, is_item=item, stated=isos, lead=lead if item else "")
                        )
    return out


def _key(text: str) -> tuple[str, ...]:
    return tuple(words(strip_enumeration(text)))


# --------------------------------------------------------------------------------------
# Edits


@dataclass
class Edit:
    """A material difference inside one hunk of aligned units."""

    kind: str  # "added", "removed", "modified", "date"
    before: str
    after: str
    section_before: int | None
    section_after: int | None
    heading: str
    path: tuple[str, ...]
    items_only: bool = False  # every sentence involved is a list item or table row
    lead: str = ""  # the sentence introducing the list those items belong to
    deleted: list[str] = field(default_factory=list)  # changed words, old side
    inserted: list[str] = field(default_factory=list)  # changed words, new side
    context: str = ""  # the changed words with up to four neighbours on each side
    topics: list[str] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)


_DATE_TOKEN = "isodate"


_EMAIL = re.compile(r"[\w.+-]+\s*(?:@|\(at\)|\[at\])\s*[\w-]+(?:\s*(?:\.|\(dot\)|\[dot\])\s*[\w-]+)*\.[a-z]{2,}", re.I)


def _emails_as_tokens(text: str) -> str:
    """One token per e-mail address, so its parts ("x", "ai") are not read as words."""
    return _EMAIL.sub(lambda m: " emailaddr_" + re.sub(r"\W+", "_", m.group(0).lower()).strip("_") + " ", text)


def _canon(text: str, lang: str) -> list[str]:
    """Words with each written date replaced by one ISO token (format flips compare equal)."""
    text = _emails_as_tokens(text)
    out, pos = [], 0
    for d in find_dates(text, lang):
        out.append(text[pos : d.start])
        out.append(f" {_DATE_TOKEN}{d.iso.replace('-', '')} ")
        pos = d.end
    out.append(text[pos:])
    return words(strip_enumeration("".join(out)))


def _without_stated_dates(units_: list[Unit], lang: str) -> tuple[list[str], set[str]]:
    """Words with the stated dates removed, and the stated dates (found with document context)."""
    isos: set[str] = set().union(*(u.stated for u in units_)) if units_ else set()
    canon = _canon(" ".join(u.text for u in units_), lang)
    tokens = [t for t in canon if not (t.startswith(_DATE_TOKEN) and _iso_of(t) in isos)]
    return tokens, isos


def _iso_of(token: str) -> str:
    digits = token[len(_DATE_TOKEN) :]
    return f"{digits[:4]}-{digits[4:6]}" + (f"-{digits[6:8]}" if len(digits) > 6 else "")


def _levenshtein(a: str, b: str, limit: int = 3) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def _typo_pair(a: str, b: str) -> bool:
    rules = _rules()
    if a in rules["protected"] or b in rules["protected"]:
        return False
    if any(c.isdigit() for c in a + b) or a.startswith(_DATE_TOKEN) or b.startswith(_DATE_TOKEN):
        return False
    if min(len(a), len(b)) < 3:
        return False
    dist = _levenshtein(a, b)
    return dist <= (1 if min(len(a), len(b)) <= 4 else 2)


def _is_cosmetic(dels: list[str], ins: list[str]) -> bool:
    """Spelling fixes, split or joined words, added or dropped articles."""
    filler = _rules()["filler"]
    if "".join(dels) == "".join(ins):
        return True  # "e-mail" / "email", "web site" / "website"
    if not dels and all(w in filler for w in ins) and len(ins) <= 2:
        return True
    if not ins and all(w in filler for w in dels) and len(dels) <= 2:
        return True
    if len(dels) == len(ins) and len(dels) <= 3:
        return all(_typo_pair(a, b) for a, b in zip(dels, ins, strict=True))
    if len(dels) == 1 and len(ins) == 1:
        return _typo_pair(dels[0], ins[0])
    # a typo fix next to an added/dropped article: "use train out" -> "use to train our"
    if abs(len(dels) - len(ins)) <= 2 and max(len(dels), len(ins)) <= 4:
        sm = SequenceMatcher(None, dels, ins, autojunk=False)
        for tag, a1, a2, b1, b2 in sm.get_opcodes():
            if tag == "equal":
                continue
            if not _is_cosmetic_small(dels[a1:a2], ins[b1:b2]):
                return False
        return True
    return False


def _is_cosmetic_small(dels: list[str], ins: list[str]) -> bool:
    filler = _rules()["filler"]
    if not dels:
        return len(ins) <= 1 and all(w in filler for w in ins)
    if not ins:
        return len(dels) <= 1 and all(w in filler for w in dels)
    if len(dels) == len(ins) == 1:
        return _typo_pair(dels[0], ins[0])
    return False


@dataclass
class _Hunk:
    old: list[Unit]
    new: list[Unit]


def _ngrams(units_: list[Unit]) -> Counter:
    """Bigram and trigram counts of a version, to recognise a restored stock phrase."""
    counts: Counter = Counter()
    for u in units_:
        k = u.key
        counts.update(pairwise(k))
        counts.update(zip(k, k[1:], k[2:], strict=False))
    return counts


def _restores_phrase(tokens: list[str], b1: int, b2: int, grams: Counter) -> bool:
    """A single missing word put back: "vos à caractère personnel" -> "vos données à caractère
    personnel" makes the sentence match a phrase the policy uses again and again, while the
    broken form appears nowhere else."""
    if b2 - b1 != 1 or b1 == 0 or b2 >= len(tokens):
        return False
    word = tokens[b1]
    if word in _rules()["protected"] or any(c.isdigit() for c in word) or word.startswith(_DATE_TOKEN):
        return False
    prev, nxt = tokens[b1 - 1], tokens[b2]
    return grams[(prev, word, nxt)] >= 3 and grams[(prev, nxt)] <= 1


def find_edits(old: list[Unit], new: list[Unit], lang: str) -> tuple[list[Edit], list[str]]:
    """Material edits between two unit sequences, and the kinds of noise dismissed."""
    grams = _ngrams(new)
    sm = SequenceMatcher(None, [u.key for u in old], [u.key for u in new], autojunk=False)
    hunks = [_Hunk(old[i1:i2], new[j1:j2]) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal"]
    noise: list[str] = []
    # sentences that left one place and arrived unchanged at another moved; they are not edits
    moved = Counter(u.key for h in hunks for u in h.old) & Counter(u.key for h in hunks for u in h.new)
    if moved:
        moved_old, moved_new = Counter(moved), Counter(moved)
        for h in hunks:
            h.old = [u for u in h.old if not _take(moved_old, u.key)]
            h.new = [u for u in h.new if not _take(moved_new, u.key)]
        noise.append("moved")
    edits: list[Edit] = []
    for h in hunks:
        if not h.old and not h.new:
            continue
        edits.extend(_explain_hunk(h, lang, noise, grams))
    return edits, noise


def _take(counter: Counter, key: tuple[str, ...]) -> bool:
    if counter[key] > 0:
        counter[key] -= 1
        return True
    return False


def _explain_hunk(h: _Hunk, lang: str, noise: list[str], grams: Counter) -> list[Edit]:
    okey = [w for u in h.old for w in u.key]
    nkey = [w for u in h.new for w in u.key]
    if okey == nkey:
        noise.append("reflow")
        return []
    otext = " ".join(u.text for u in h.old)
    ntext = " ".join(u.text for u in h.new)
    o_nodate, o_stated = _without_stated_dates(h.old, lang)
    n_nodate, n_stated = _without_stated_dates(h.new, lang)
    if o_nodate == n_nodate or _date_lines_only(h):
        if o_stated == n_stated:
            noise.append("date format")
            return []
        return [_edit("date", h, otext, ntext, sorted(o_stated - n_stated), sorted(n_stated - o_stated))]
    ocs = [_canon(u.text, lang) for u in h.old]
    ncs = [_canon(u.text, lang) for u in h.new]
    oc, nc = [w for c in ocs for w in c], [w for c in ncs for w in c]
    if oc == nc:
        noise.append("date format")
        return []
    sm = SequenceMatcher(None, oc, nc, autojunk=False)
    ops = [op for op in sm.get_opcodes() if op[0] != "equal"]
    material = [
        op
        for op in ops
        if not _is_cosmetic(oc[op[1] : op[2]], nc[op[3] : op[4]])
        and not (op[0] == "insert" and _restores_phrase(nc, op[3], op[4], grams))
    ]
    if not material:
        noise.append("spelling")
        return []
    return _sentence_edits(h, ocs, ncs, oc, nc, material)


def _date_lines_only(h: _Hunk) -> bool:
    """Only short lines stating a date were added or removed ("3.4 | Document updated | 16.7.2026")."""
    if h.old and h.new:
        return False
    return all(len(u.key) <= 10 and u.stated for u in h.old + h.new)


def _owners(lengths: list[int]) -> list[int]:
    """Token position -> index of the unit it belongs to."""
    return [i for i, n in enumerate(lengths) for _ in range(n)]


def _touched(owner: list[int], start: int, end: int) -> set[int]:
    """Units a [start, end) token range touches; an empty range inside a unit touches it."""
    if end > start:
        return set(owner[start:end])
    if 0 < start < len(owner) and owner[start - 1] == owner[start]:
        return {owner[start]}
    return set()


def _touched_pair(oown: list[int], nown: list[int], a1: int, a2: int, b1: int, b2: int) -> tuple[set[int], set[int]]:
    """Units touched on each side. Words added at the very end (or start) of a sentence extend
    that sentence: "located in Canada." -> "located in Canada and the United States." is a
    modified sentence, not an added one."""
    old, new = _touched(oown, a1, a2), _touched(nown, b1, b2)
    if not old and new:
        old = _continued(oown, a1, nown, b1, b2)
    elif not new and old:
        new = _continued(nown, b1, oown, a1, a2)
    return old, new


def _continued(empty_owner: list[int], at: int, owner: list[int], start: int, end: int) -> set[int]:
    if start > 0 and owner[start - 1] == owner[start] and 0 < at <= len(empty_owner):
        return {empty_owner[at - 1]}  # the change continues the sentence before it
    if end < len(owner) and owner[end] == owner[end - 1] and at < len(empty_owner):
        return {empty_owner[at]}  # the change starts the sentence after it
    return set()


def _sentence_edits(
    h: _Hunk, ocs: list[list[str]], ncs: list[list[str]], oc: list[str], nc: list[str], ops: list[tuple]
) -> list[Edit]:
    """One edit per group of sentences the material word changes touch, so each changed
    sentence gets its own topics, facts and wording."""
    oown, nown = _owners([len(c) for c in ocs]), _owners([len(c) for c in ncs])
    touched = [_touched_pair(oown, nown, a1, a2, b1, b2) for _, a1, a2, b1, b2 in ops]
    parent = list(range(len(ops)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ops)):
        for j in range(i + 1, len(ops)):
            if touched[i][0] & touched[j][0] or touched[i][1] & touched[j][1]:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(ops)):
        groups.setdefault(find(i), []).append(i)
    edits = []
    for members in sorted(groups.values()):
        olds = sorted(set().union(*(touched[i][0] for i in members)))
        news = sorted(set().union(*(touched[i][1] for i in members)))
        if not olds and not news:
            continue
        sub = _Hunk([h.old[i] for i in olds], [h.new[i] for i in news])
        dels = [w for i in members for w in oc[ops[i][1] : ops[i][2]]]
        ins = [w for i in members for w in nc[ops[i][3] : ops[i][4]]]
        kind = "modified" if sub.old and sub.new else "added" if sub.new else "removed"
        edit = _edit(kind, sub, " ".join(u.text for u in sub.old), " ".join(u.text for u in sub.new), dels, ins)
        edit.context = " ".join(
            " ".join(oc[max(0, ops[i][1] - 4) : ops[i][2] + 4])
            + " "
            + " ".join(nc[max(0, ops[i][3] - 4) : ops[i][4] + 4])
            for i in members
        )
        edits.append(edit)
    return edits


def _edit(kind: str, h: _Hunk, before: str, after: str, dels: list[str], ins: list[str]) -> Edit:
    anchor = h.new[0] if h.new else h.old[0]
    return Edit(
        items_only=all(u.is_item for u in h.old + h.new),
        lead=anchor.lead,
        kind=kind,
        before=before,
        after=after,
        section_before=h.old[0].section if h.old else None,
        section_after=h.new[0].section if h.new else None,
        heading=anchor.heading,
        path=anchor.path,
        deleted=dels,
        inserted=ins,
    )


# --------------------------------------------------------------------------------------
# Topics


def _cue_langs(lang: str) -> tuple[str, ...]:
    return (lang,) if lang in ("en", "fr") else ("en", "fr")


STRONG, WEAK = 3.0, 1.0  # a cue among the words that changed
SENTENCE = 2.0  # a strong cue elsewhere in the changed sentence (at most three count)
HEADING = 1.5  # a strong cue in the section heading (supports a topic, never creates one alone)
FACT = 4.0  # a structured fact of the topic changed (a period, an age...)
MIN_SCORE = 2.0  # evidence a topic needs: a strong cue in the change, or in the sentence's frame
RELATIVE = 0.5  # ... and at least this share of the best topic's score
DIRECT_RELATIVE = 0.3  # a topic named by the changed words themselves needs less
MAX_TOPICS = 3  # per edit (a changed sentence or run of sentences)


def score_topics(edit: Edit, lang: str) -> tuple[list[str], list[Cue]]:
    """Topics of the text that changed: changed words weigh most, then the sentence, then headings.

    A strong cue among the changed words (or a changed fact) makes a topic a candidate on its
    own; other evidence (weak cues, the unchanged frame of the sentence such as "X shares ...
    with partners") must reach MIN_SCORE and half the best score. Headings only reinforce
    topics that have evidence in the edit. When nothing qualifies, the heading decides, then
    the best weak signal, then "other".
    """
    if edit.kind == "date":
        return ["effective_date"], [
            Cue("effective_date", "stated date", f"{edit.before} -> {edit.after}", edit.heading)
        ]
    changed = fold(" ".join(edit.deleted + edit.inserted)).replace(_DATE_TOKEN, " ")
    context = fold(edit.context).replace(_DATE_TOKEN, " ")
    sentence = fold(_emails_as_tokens(edit.before + " " + edit.after))
    heading = fold(edit.heading)
    parents = fold(" ".join(edit.path[:-1]))
    scores: Counter[str] = Counter()
    direct: set[str] = set()  # topics with a strong cue among the changed words, or a changed fact
    head_scores: Counter[str] = Counter()
    near_hits: dict[str, str] = {}
    weak_found = False
    cues: list[Cue] = []
    for topic, groups in _cues().items():
        for lg in _cue_langs(lang):
            strong, pats = groups.get(lg, (None, []))
            weak, wpats = groups.get(f"{lg}_weak", (None, []))
            if strong is not None:
                found = sorted(set(strong.findall(changed)))
                near = sorted(set(strong.findall(context)) - set(found))
                if found:
                    direct.add(topic)
                    scores[topic] += STRONG + min(len(found) - 1, 2)  # variants of one idea add little
                    cues += [Cue(topic, _which_cue(pats, w), w, edit.heading, "change") for w in found[:3]]
                elif near:
                    near_hits[topic] = near[0]
                # the unchanged frame of the sentence ("X shares ... with partners") tells what it is about
                around = {w for w in strong.findall(sentence) if w not in found}
                scores[topic] += SENTENCE * min(len(around), 3)
                m = strong.search(heading)
                if m:
                    head_scores[topic] += HEADING
                    cues.append(Cue(topic, _which_cue(pats, m.group(0)), m.group(0), edit.heading, "heading"))
                elif parents and strong.search(parents):
                    head_scores[topic] += HEADING / 3
            if weak is not None:
                found = sorted(set(weak.findall(changed)))
                if found:
                    weak_found = True
                    scores[topic] += WEAK * (1 + 0.5 * min(len(found) - 1, 1))  # "control", "controls": one idea
                    cues += [Cue(topic, _which_cue(wpats, w), w, edit.heading, "change") for w in found[:2]]
                if not head_scores[topic] and weak.search(heading):
                    head_scores[topic] += HEADING / 3  # "Contact information": enough to file an address change
    for f in edit.facts:
        scores[f.topic] += FACT
        direct.add(f.topic)
    only_protected = all(w in _rules()["protected"] for w in edit.deleted + edit.inserted)
    pure = not edit.deleted or not edit.inserted  # words added or dropped, not a name replaced by another
    if not direct and not weak_found and not only_protected and pure:
        # (a flipped "never" -> "may" changes the whole sentence: its frame decides, not the neighbours)
        # the changed words name nothing ("for [example for] device location [or for health
        # apps]"): the words right next to them do ("Consent (...)")
        for topic, word in near_hits.items():
            direct.add(topic)
            scores[topic] += STRONG
            cues.append(Cue(topic, word, word, edit.heading, "change"))
    if (
        not direct
        and edit.kind in ("added", "removed")
        and edit.items_only
        and len(edit.deleted) + len(edit.inserted) <= 25
    ):
        # a list item added or dropped means what its list says: the sentence that introduces it
        # ("We share your data with:") or else the heading ("Developing and improving AI")
        lead = fold(edit.lead)
        for topic, groups in _cues().items():
            for lg in _cue_langs(lang):
                strong = groups.get(lg, (None, []))[0]
                if lead and strong is not None and strong.search(lead):
                    scores[topic] += STRONG
                    direct.add(topic)
        if not direct:
            for topic, s in head_scores.items():
                if s >= HEADING:
                    scores[topic] += s
                    direct.add(topic)
    total = Counter(
        {t: s + (head_scores[t] if t in direct else 0.0) for t, s in scores.items() if s >= MIN_SCORE or t in direct}
    )
    picked: list[str] = []
    if total:
        top = max(total.values())
        picked = [
            t
            for t, s in total.items()
            if (t in direct and s >= DIRECT_RELATIVE * top) or (s >= MIN_SCORE and s >= RELATIVE * top)
        ]
    # one sentence is about one or two things; more usually means incidental words
    cap = MAX_TOPICS + (len(edit.deleted) + len(edit.inserted)) // 40  # a rewritten paragraph may touch more
    picked = sorted(picked, key=lambda t: (t not in direct, -total[t]))[:cap]
    if not picked and head_scores:
        best = max(head_scores.values())
        picked = [t for t, s in head_scores.items() if s >= best]
    if not picked and scores:
        picked = [max(scores, key=lambda t: scores[t])]
    if not picked:
        return ["other"], []
    picked.sort(key=lambda t: TOPIC_IDS.index(t))
    return picked, [c for c in cues if c.topic in picked]


# --------------------------------------------------------------------------------------
# Facts


def _values(kind: str, folded: str) -> set[str]:
    found: set[str] = set()
    for rx in _facts()[kind]["patterns"]:
        for m in rx.finditer(folded):
            found.add(_SPACES.sub(" ", (m.group(1) if m.groups() else m.group(0)).strip()))
    return found


_SPACES = re.compile(r"\s+")


def _sentence_facts(kind: str, before: str, after: str, heading: str = "") -> Fact | None:
    """`before`, `after` and `heading` are in comparison form (folded once per edit)."""
    spec = _facts()[kind]
    ctx = spec["context"]
    # the context may come from the heading: "a user under 14" under "Children's Privacy"
    if ctx is not None and not any(ctx.search(t) for t in (before, after, heading)):
        return None
    b, a = _drop_contained(_values(kind, before)), _drop_contained(_values(kind, after))
    if b == a:
        return None
    gone, new = sorted(b - a), sorted(a - b)
    return Fact(topic=spec["topic"], kind=kind, before="; ".join(gone) or None, after="; ".join(new) or None)


def _drop_contained(values: set[str]) -> set[str]:
    return {v for v in values if not any(v != w and v in w for w in values)}


def term_facts(edit: Edit) -> list[Fact]:
    """Periods, ages, days of notice, e-mail addresses and places that changed: they need no
    topics, and feed the topic scoring."""
    if edit.kind == "date":
        return []
    before, after, heading = fold(edit.before), fold(edit.after), fold(edit.heading)
    facts = []
    for kind in ("period", "age", "notice", "email", "place"):
        f = _sentence_facts(kind, before, after, heading)
        if f:
            f.section = edit.heading
            facts.append(f)
    return facts


def meaning_facts(edit: Edit) -> list[Fact]:
    """Negation flips and new recipients: read once the edit's topics are known."""
    if edit.kind == "date":
        return []
    rules = _rules()
    facts: list[Fact] = []
    neg = rules["negations"]
    lost = _negations(edit.deleted, edit.before, neg)
    gained = _negations(edit.inserted, edit.after, neg)
    if edit.kind == "modified" and (lost or gained) and Counter(lost) != Counter(gained):
        topic = min(edit.topics, key=_SPECIFIC.index) if edit.topics else "other"
        facts.append(Fact(topic, "negation", _excerpt(edit.before), _excerpt(edit.after), edit.heading))
    if "sharing" in edit.topics:
        gained_r = {m.group(0) for m in rules["recipients"].finditer(" ".join(edit.inserted))}
        lost_r = {m.group(0) for m in rules["recipients"].finditer(" ".join(edit.deleted))}
        if gained_r - lost_r:
            new = "; ".join(sorted(gained_r - lost_r))
            facts.append(Fact("sharing", "recipient", "; ".join(sorted(lost_r)) or None, new, edit.heading))
    return facts


# Most specific first: a flipped "never use your data to train AI models" is about AI, not "use".
_SPECIFIC = [
    "children",
    "automated",
    "transfer",
    "retention",
    "cookies",
    "security",
    "sharing",
    "consent",
    "rights",
    "collection",
    "use",
    "contact",
    "changes",
    "effective_date",
    "other",
]


_NE_QUE = re.compile(r"\b(?:ne|n['’])\b[^.;]*\bqu(?:e\b|['’])")
_NE_WITH = re.compile(r"\b(?:pas|jamais|aucun|aucune|rien|plus|ni|personne|nullement)\b")


def _negations(changed: list[str], sentence: str, neg: set[str]) -> list[str]:
    """Negation words among the changed words. French elides "ne" ("n'utilisons" is one token),
    and "ne ... que" means "only", not a negation."""
    found = ["ne" if w.startswith(("n'", "n’")) and len(w) > 2 else w for w in changed]
    found = [w for w in found if w in neg]
    folded = fold(sentence)
    if "ne" in found and _NE_QUE.search(folded) and not _NE_WITH.search(folded):
        found = [w for w in found if w != "ne"]
    return found


def _excerpt(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------------------
# Severity and summary


def edit_severity(edit: Edit) -> Severity:
    rules = _rules()
    if any(f.kind in ("negation", "recipient") for f in edit.facts):
        return "high"
    added_words = len(edit.inserted)
    if set(edit.topics) & rules["high_topics"] and added_words >= 5:
        return "high"
    if any(f.kind in ("period", "age", "notice", "place") for f in edit.facts):
        return "medium"
    if set(edit.topics) - rules["low_topics"]:
        return "medium"
    return "low"


def human_date(iso: str | None) -> str:
    if not iso:
        return "none"
    import calendar

    parts = iso.split("-")
    month = calendar.month_name[int(parts[1])]
    if len(parts) == 2:
        return f"{month} {parts[0]}"
    return f"{month} {int(parts[2])}, {parts[0]}"


def summarize(edits: list[Edit], dates: dict[str, str | None], noise: list[str], material: bool) -> str:
    if not material:
        if not noise:
            return "No change in the policy text."
        return "No material change: " + ", ".join(sorted(set(noise))) + " only."
    parts: list[str] = []
    for e in edits:
        where = f" in '{_short(e.heading)}'" if e.heading else ""
        for f in e.facts:
            if f.kind == "date":
                continue  # said once, at the end
            name = {
                "period": "Retention period",
                "age": "Age threshold",
                "notice": "Notice period",
                "email": "Contact e-mail",
                "place": "Places named",
                "negation": "A negation",
                "recipient": "Recipients",
            }.get(f.kind, f.kind)
            if f.kind == "negation":
                parts.append(
                    f"{name} flipped{where}: '{_excerpt(f.before or '', 90)}' became '{_excerpt(f.after or '', 90)}'"
                )
            elif f.kind == "recipient":
                parts.append(f"New recipients{where}: {f.after}")
            elif f.before and f.after:
                parts.append(f"{name} changed from '{f.before}' to '{f.after}'{where}")
            elif f.after:
                parts.append(f"{name} added{where}: '{f.after}'")
            else:
                parts.append(f"{name} removed{where}: '{f.before}'")
    for e in edits:
        if e.kind == "date" or e.facts:
            continue
        topics = ", ".join(label(t).lower() for t in e.topics)
        where = f" in '{_short(e.heading)}'" if e.heading else ""
        verb = {"added": "Added", "removed": "Removed", "modified": "Changed"}[e.kind]
        sample = _excerpt(e.after if e.kind != "removed" else e.before, 120)
        parts.append(f"{verb} wording on {topics}{where}: '{sample}'")
    shown = parts[:4]
    if len(parts) > 4:
        shown.append(f"and {len(parts) - 4} more change{'s' if len(parts) > 5 else ''}")
    if dates.get("before") != dates.get("after"):
        shown.append(f"stated date moved from {human_date(dates.get('before'))} to {human_date(dates.get('after'))}")
    text = "; ".join(shown)
    return (text[:1].upper() + text[1:] + ".") if text else "The policy wording changed."


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------------------
# Entry point


def analyze(old: Document, new: Document) -> tuple[list[Edit], list[str], dict[str, str | None]]:
    """The material edits (with topics and facts), the noise dismissed, and the stated dates."""
    lang = new.lang or old.lang or "en"
    old_dated = stated_dates_in(document_lines(old), old.lang)
    new_dated = stated_dates_in(document_lines(new), new.lang)
    dates = {"before": latest(old_dated), "after": latest(new_dated)}
    edits, noise = find_edits(units(old, old_dated), units(new, new_dated), lang)
    if dates["before"] != dates["after"] and not any(e.kind == "date" for e in edits):
        # the stated date moved without a hunk of its own (e.g. a new row in a version table)
        edits.append(Edit("date", dates["before"] or "", dates["after"] or "", None, None, "", ()))
    for e in edits:
        e.facts = term_facts(e)
        e.topics, e.cues = score_topics(e, lang)
        e.facts += meaning_facts(e)
    if dates["before"] != dates["after"]:
        for e in edits:
            if e.kind == "date":
                e.facts.append(Fact("effective_date", "date", dates["before"], dates["after"], e.heading))
                break
    return edits, noise, dates


def classify(
    old: Document, new: Document, sections: list[SectionChange] | None = None, changed: bool | None = None
) -> Change:
    """Compare two versions and decide what changed and whether it matters."""
    if sections is None:
        sections = diff_documents(old, new)
    lang = new.lang or old.lang or "en"
    if changed is None:  # callers that compared text hashes already pass it
        changed = to_markdown(old) != to_markdown(new)
    edits, noise, dates = analyze(old, new)
    material = bool(edits)
    topics = sorted({t for e in edits for t in e.topics}, key=TOPIC_IDS.index)
    severity: Severity = "none"
    for e in edits:
        s = edit_severity(e)
        if SEVERITIES.index(s) > SEVERITIES.index(severity):
            severity = s
    _attach(sections, edits)
    facts = [f for e in edits for f in e.facts]
    return Change(
        changed=changed,
        material=material,
        severity=severity,
        topics=topics,
        effective_date=dates,
        sections=sections,
        facts=facts,
        summary=summarize(edits, dates, noise, material),
        noise=sorted(set(noise)),
        cues=[c for e in edits for c in e.cues],
        lang=lang,
    )


def _attach(sections: list[SectionChange], edits: list[Edit]) -> None:
    """Give each changed section the topics of its own edits; sections without one are noise."""
    for sc in sections:
        mine = [
            e
            for e in edits
            if (e.section_after is not None and e.section_after == sc.index_after)
            or (e.section_before is not None and e.section_before == sc.index_before)
        ]
        sc.topics = sorted({t for e in mine for t in e.topics}, key=TOPIC_IDS.index)
        sc.material = bool(mine)
