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
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from importlib import resources

from .dates import effective_date, find_dates, stated_dates_in
from .diff import diff_documents, strip_enumeration
from .models import SEVERITIES, Change, Cue, Document, Fact, SectionChange, Severity
from .normalize import to_markdown
from .textutil import fold, sentences, words
from .topics import TOPIC_IDS, label


def _load(name: str) -> dict:
    return tomllib.loads(resources.files("watcher.data").joinpath(name).read_text("utf-8"))


@lru_cache(maxsize=1)
def _cues() -> dict[str, dict[str, list[tuple[str, re.Pattern[str]]]]]:
    raw = _load("cues.toml")
    out: dict[str, dict[str, list[tuple[str, re.Pattern[str]]]]] = {}
    for topic, langs in raw.items():
        out[topic] = {
            lang: [(p, re.compile(rf"(?<![\w-])(?:{p})(?![\w-])", re.I)) for p in pats] for lang, pats in langs.items()
        }
    return out


@lru_cache(maxsize=1)
def _rules() -> dict:
    raw = _load("materiality.toml")
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
    raw = _load("facts.toml")
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
    is_heading: bool = False


def units(doc: Document) -> list[Unit]:
    out: list[Unit] = []
    for idx, s in enumerate(doc.sections):
        if s.heading:
            out.append(Unit(s.heading, _key(s.heading), idx, s.heading, s.path, True))
        for b in s.blocks:
            for sent in sentences(b.text):
                k = _key(sent)
                if k:
                    out.append(Unit(sent, k, idx, s.heading, s.path))
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
    deleted: list[str] = field(default_factory=list)  # changed words, old side
    inserted: list[str] = field(default_factory=list)  # changed words, new side
    context: str = ""  # changed words with a few neighbours, both sides
    topics: list[str] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)


_DATE_TOKEN = "isodate"


def _canon(text: str, lang: str) -> list[str]:
    """Words with each written date replaced by one ISO token (format flips compare equal)."""
    out, pos = [], 0
    for d in find_dates(text, lang):
        out.append(text[pos : d.start])
        out.append(f" {_DATE_TOKEN}{d.iso.replace('-', '')} ")
        pos = d.end
    out.append(text[pos:])
    return words(strip_enumeration("".join(out)))


def _without_stated_dates(text: str, lang: str) -> tuple[list[str], set[str]]:
    """Words with stated-date phrases (cue + date) removed, and the stated dates found."""
    stated = stated_dates_in([text], lang)
    if not stated:
        return _canon(text, lang), set()
    isos = {d.iso for d in stated}
    canon = _canon(text, lang)
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


def find_edits(old: list[Unit], new: list[Unit], lang: str) -> tuple[list[Edit], list[str]]:
    """Material edits between two unit sequences, and the kinds of noise dismissed."""
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
        edits.extend(_explain_hunk(h, lang, noise))
    return edits, noise


def _take(counter: Counter, key: tuple[str, ...]) -> bool:
    if counter[key] > 0:
        counter[key] -= 1
        return True
    return False


def _explain_hunk(h: _Hunk, lang: str, noise: list[str]) -> list[Edit]:
    okey = [w for u in h.old for w in u.key]
    nkey = [w for u in h.new for w in u.key]
    if okey == nkey:
        noise.append("reflow")
        return []
    otext = " ".join(u.text for u in h.old)
    ntext = " ".join(u.text for u in h.new)
    o_nodate, o_stated = _without_stated_dates(otext, lang)
    n_nodate, n_stated = _without_stated_dates(ntext, lang)
    if o_nodate == n_nodate:
        if o_stated == n_stated:
            noise.append("date format")
            return []
        return [_edit("date", h, otext, ntext, sorted(o_stated - n_stated), sorted(n_stated - o_stated))]
    oc, nc = _canon(otext, lang), _canon(ntext, lang)
    if oc == nc:
        noise.append("date format")
        return []
    sm = SequenceMatcher(None, oc, nc, autojunk=False)
    ops = [op for op in sm.get_opcodes() if op[0] != "equal"]
    material = [op for op in ops if not _is_cosmetic(oc[op[1] : op[2]], nc[op[3] : op[4]])]
    if not material:
        noise.append("spelling")
        return []
    dels = [w for _, a1, a2, _, _ in material for w in oc[a1:a2]]
    ins = [w for _, _, _, b1, b2 in material for w in nc[b1:b2]]
    context = []
    for _, a1, a2, b1, b2 in material:
        context.append(" ".join(oc[max(0, a1 - 4) : a2 + 4]))
        context.append(" ".join(nc[max(0, b1 - 4) : b2 + 4]))
    kind = "modified" if h.old and h.new else "added" if h.new else "removed"
    edit = _edit(kind, h, otext, ntext, dels, ins)
    edit.context = " ".join(c for c in context if c)
    return [edit]


def _edit(kind: str, h: _Hunk, before: str, after: str, dels: list[str], ins: list[str]) -> Edit:
    anchor = h.new[0] if h.new else h.old[0]
    return Edit(
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


def score_topics(edit: Edit, lang: str) -> tuple[list[str], list[Cue]]:
    """Topics of the text that changed: changed words weigh most, then the sentence, then headings."""
    if edit.kind == "date":
        return ["effective_date"], [
            Cue("effective_date", "stated date", f"{edit.before} -> {edit.after}", edit.heading)
        ]
    changed = fold(" ".join(edit.deleted + edit.inserted)).replace(_DATE_TOKEN, " ")
    context = fold(edit.context).replace(_DATE_TOKEN, " ")
    sentence = fold(edit.before + " " + edit.after)
    heading = fold(edit.heading)
    parents = fold(" ".join(edit.path[:-1]))
    scores: Counter[str] = Counter()
    cues: list[Cue] = []
    for topic, by_lang in _cues().items():
        for lg in _cue_langs(lang):
            for pat, rx in by_lang.get(lg, ()):
                hits = 0.0
                m = rx.search(changed)
                if m:
                    hits += 3.0
                    cues.append(Cue(topic, pat, m.group(0), edit.heading, "change"))
                elif rx.search(context):
                    hits += 1.5
                elif rx.search(sentence):
                    hits += 0.75
                if rx.search(heading):
                    hits += 1.5
                    cues.append(Cue(topic, pat, rx.search(heading).group(0), edit.heading, "heading"))  # type: ignore[union-attr]
                elif parents and rx.search(parents):
                    hits += 0.5
                scores[topic] += hits
    if not scores:
        return ["other"], cues
    top = max(scores.values())
    if top < 2.0:
        return ["other"], cues
    picked = [t for t, s in scores.items() if s >= max(2.5, 0.45 * top)]
    picked.sort(key=lambda t: TOPIC_IDS.index(t))
    cues = [c for c in cues if c.topic in picked]
    return picked, cues


# --------------------------------------------------------------------------------------
# Facts


def _values(kind: str, text: str) -> set[str]:
    spec = _facts()[kind]
    found: set[str] = set()
    folded = fold(text)
    for rx in spec["patterns"]:
        for m in rx.finditer(folded):
            found.add(re.sub(r"\s+", " ", (m.group(1) if m.groups() else m.group(0)).strip()))
    return found


def _sentence_facts(kind: str, before: str, after: str, topics: list[str]) -> Fact | None:
    spec = _facts()[kind]
    ctx = spec["context"]
    if ctx is not None and not (ctx.search(fold(before)) or ctx.search(fold(after))):
        return None
    b, a = _values(kind, before), _values(kind, after)
    b, a = _drop_contained(b), _drop_contained(a)
    if b == a or (not b and not a):
        return None
    gone, new = sorted(b - a), sorted(a - b)
    topic = spec["topic"]
    if kind == "place" and "transfer" not in topics:
        return None
    return Fact(topic=topic, kind=kind, before="; ".join(gone) or None, after="; ".join(new) or None)


def _drop_contained(values: set[str]) -> set[str]:
    return {v for v in values if not any(v != w and v in w for w in values)}


def extract_facts(edit: Edit, lang: str) -> list[Fact]:
    rules = _rules()
    facts: list[Fact] = []
    if edit.kind == "date":
        return facts
    for kind in ("period", "age", "notice", "email", "place"):
        f = _sentence_facts(kind, edit.before, edit.after, edit.topics)
        if f:
            f.section = edit.heading
            facts.append(f)
    neg = rules["negations"]
    lost = [w for w in edit.deleted if w in neg]
    gained = [w for w in edit.inserted if w in neg]
    if edit.kind == "modified" and (lost or gained) and Counter(lost) != Counter(gained):
        topic = next((t for t in edit.topics if t != "other"), "other")
        facts.append(Fact(topic, "negation", _excerpt(edit.before), _excerpt(edit.after), edit.heading))
    if "sharing" in edit.topics:
        ins_text = " ".join(edit.inserted)
        del_text = " ".join(edit.deleted)
        gained_r = {m.group(0) for m in rules["recipients"].finditer(ins_text)}
        lost_r = {m.group(0) for m in rules["recipients"].finditer(del_text)}
        if gained_r - lost_r:
            facts.append(
                Fact(
                    "sharing",
                    "recipient",
                    "; ".join(sorted(lost_r)) or None,
                    "; ".join(sorted(gained_r - lost_r)),
                    edit.heading,
                )
            )
    return facts


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


def classify(old: Document, new: Document, sections: list[SectionChange] | None = None) -> Change:
    """Compare two versions and decide what changed and whether it matters."""
    if sections is None:
        sections = diff_documents(old, new)
    lang = new.lang or old.lang or "en"
    changed = to_markdown(old) != to_markdown(new) or old.title != new.title
    dates = {"before": effective_date(old), "after": effective_date(new)}
    edits, noise = find_edits(units(old), units(new), lang)
    if dates["before"] != dates["after"] and not any(e.kind == "date" for e in edits):
        # the stated date moved without a hunk of its own (e.g. a new row in a version table)
        edits.append(Edit("date", dates["before"] or "", dates["after"] or "", None, None, "", ()))
    for e in edits:
        e.topics, e.cues = score_topics(e, lang)
        e.facts = extract_facts(e, lang)
    if dates["before"] != dates["after"]:
        for e in edits:
            if e.kind == "date":
                e.facts.append(Fact("effective_date", "date", dates["before"], dates["after"], e.heading))
                break
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
