"""Generate tests/cases/<name>/{old,new}.* + expected.json from the bundled seed policies.

    python tests/make_cases.py            # rewrite every case (deterministic: same bytes each run)

Each case is one realistic edit of a seed policy (watcher/data/demo/*.txt), rendered as an
HTML page in one of the sample layouts (`samples.page`), as Markdown (`to_markdown`) or as
plain text, in the shared eval format read by /work/shared/eval/score.py:

  material  true when a term changed (subscribers must be alerted)
  topics    topics that must be reported; allowed: topics that may also be reported
  sections  substrings of the heading(s) of the section(s) that changed
  dates     {"before", "after"}: the latest date each version states as its own
            effective / last-updated date, ISO, "YYYY-MM" without a day, null when none

The expectations are what a privacy lawyer would say about the edit, not what watcher says
today; tests/test_cases.py marks the cases watcher currently gets wrong as strict xfails.
The generated files are committed; the tests never run this script.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watcher import samples
from watcher.normalize import normalize, to_markdown

OUT = Path(__file__).resolve().parent / "cases"

WESGAR_DATE = {"before": "2023-07", "after": "2023-07"}
SPI_DATE = {"before": "2024-08-12", "after": "2024-08-12"}
PLANISO_DATE = {"before": "2024-05-29", "after": "2024-05-29"}
CCB_DATE = {"before": "2017-03-30", "after": "2017-03-30"}
NO_DATE = {"before": None, "after": None}


# --------------------------------------------------------------------------------------
# Helpers


def sub(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` replaced by `new` exactly `count` times (fails loudly if the seed moved)."""
    found = text.count(old)
    if found != count:
        raise ValueError(f"expected {count} occurrence(s) of {old[:60]!r}, found {found}")
    return text.replace(old, new)


def seed(name: str) -> str:
    return samples.seed_text(name)


def html(name: str, text: str | None = None, layout: str = "semantic", token: str = "0000", stamp: str = "") -> bytes:
    page = samples.page(name, layout, text=text, token=token, stamp=stamp or "2026-01-01T00:00:00Z")
    return page.encode("utf-8")


def markdown(text: str) -> bytes:
    return to_markdown(normalize(text)).encode("utf-8")


def plain(text: str) -> bytes:
    return text.encode("utf-8")


def move_block(text: str, block: str, before: str) -> str:
    """Cut `block` (exact, once) out of `text` and paste it right before `before`."""
    text = sub(text, block, "")
    return sub(text, before, block + before)


@dataclass
class Case:
    name: str
    old: tuple[str, bytes]  # (extension, content)
    new: tuple[str, bytes]
    material: bool
    topics: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    dates: dict[str, str | None] | None = None
    lang: str = "en"
    note: str = ""


def noise(name: str, old: tuple[str, bytes], new: tuple[str, bytes], dates: dict, note: str, lang: str = "en") -> Case:
    return Case(name, old, new, material=False, dates=dates, lang=lang, note=note)


# --------------------------------------------------------------------------------------
# Cases. Each builder returns one Case; names sort by seed.


def wesgar_cases() -> list[Case]:
    w = seed("wesgar")
    h = lambda text=None, layout="semantic", token="w0": ("html", html("wesgar", text, layout, token))  # noqa: E731
    cases: list[Case] = []

    cases.append(
        noise(
            "wesgar-redesign-divs",
            h(),
            h(layout="divs", token="w1"),
            WESGAR_DATE,
            "same text, new markup: headings as styled divs, paragraphs wrapped in spans, bullets as divs",
        )
    )
    cases.append(
        noise(
            "wesgar-refetch-tokens",
            h(token="a81f"),
            ("html", html("wesgar", None, "semantic", "c03e", "2026-02-11T08:15:00Z")),
            WESGAR_DATE,
            "only the build token, CSRF token and render timestamp differ",
        )
    )
    cases.append(
        noise(
            "wesgar-rewrapped-lines",
            h(),
            h(layout="wrapped", token="w2"),
            WESGAR_DATE,
            "paragraphs hard-wrapped at 70 columns in the new page",
        )
    )

    typos = sub(w, "various social medial platforms", "various social media platforms")
    typos = sub(typos, "through social medial accounts", "through social media accounts")
    typos = sub(
        typos,
        "- Publically available database: we may collect information about you that is publically available",
        "- Publicly available database: we may collect information about you that is publicly available",
    )
    cases.append(
        noise(
            "wesgar-typo-fixes",
            h(w),
            h(typos, token="w3"),
            WESGAR_DATE,
            "spelling fixes only: medial -> media (twice), Publically -> Publicly (twice)",
        )
    )

    typo = (
        w.replace("“", '"')
        .replace("”", '"')
        .replace("’", "'")
        .replace(" - ", " \u2013 ")
        .replace("Wesgar Inc.", "Wesgar\u00a0Inc.")
        .replace("Privacy Policy", "Privacy\u00a0Policy")
    )
    cases.append(
        noise(
            "wesgar-typography",
            h(w),
            h(typo, token="w4"),
            WESGAR_DATE,
            "curly quotes become straight, non-breaking spaces in names, en dashes; same words",
        )
    )

    cp = samples.page("wesgar", "semantic", text=w, token="w5").replace(
        '<meta charset="utf-8">', '<meta charset="windows-1252">'
    )
    cases.append(
        noise(
            "wesgar-windows-1252",
            h(w),
            ("html", cp.encode("cp1252")),
            WESGAR_DATE,
            "new page re-encoded as windows-1252 with a matching meta charset; text identical",
        )
    )

    sell = sub(
        w,
        "We will not sell or otherwise disclose the information collected from you to other third parties, except in those limited cases where we are legally required to do so",
        "We may sell or otherwise disclose the information collected from you to other third parties, including in those cases where we are legally required to do so",
    )
    cases.append(
        Case(
            "wesgar-negation-sell",
            h(w),
            h(sell, token="w6"),
            True,
            ["sharing"],
            [],
            ["How we use the personal information"],
            WESGAR_DATE,
            note="'We will not sell or otherwise disclose' becomes 'We may sell or otherwise disclose': a negation flip",
        )
    )

    keep = sub(
        w,
        "We securely keep your information for as long as we reasonably require it,",
        "We securely keep your information for ten (10) years after our last interaction with you,",
    )
    cases.append(
        Case(
            "wesgar-retention-ten-years",
            h(w),
            h(keep, layout="divs", token="w7"),
            True,
            ["retention"],
            ["security"],
            ["How we protect personal information"],
            WESGAR_DATE,
            note="retention goes from 'as long as we reasonably require it' to ten years; the new page also uses another layout",
        )
    )

    brokers = sub(
        w,
        "We will not sell, rent, trade, or otherwise disclose individual customer information",
        "We may also sell your identifiers and internet activity information to data brokers and advertising networks.\n"
        "We will not sell, rent, trade, or otherwise disclose individual customer information",
    )
    cases.append(
        Case(
            "wesgar-new-recipients",
            h(w),
            h(brokers, token="w8"),
            True,
            ["sharing"],
            ["use", "cookies", "collection"],
            ["How we share your personal information"],
            WESGAR_DATE,
            note="a new paragraph: personal information sold to data brokers and advertising networks",
        )
    )

    transfer = sub(
        w,
        "Wesgar’s operational center is located in Canada.",
        "Wesgar’s operational center is located in Canada. Your personal information is also stored on servers located in the United States and India.",
    )
    cases.append(
        Case(
            "wesgar-transfer-new-countries",
            h(w),
            h(transfer, token="w9"),
            True,
            ["transfer"],
            ["sharing"],
            ["Transfer of personal information"],
            WESGAR_DATE,
            note="personal information now stored on servers in the United States and India",
        )
    )

    email = sub(
        w,
        "please contact us at contact@wesgar.com, and we will endeavor",
        "please contact us at privacy@wesgar.com, and we will endeavor",
    )
    cases.append(
        Case(
            "wesgar-complaint-email",
            h(w),
            h(email, token="wa"),
            True,
            ["contact"],
            ["rights"],
            ["Your rights"],
            WESGAR_DATE,
            note="the address for complaints and rights requests changes",
        )
    )

    date = sub(
        w, "This Privacy Policy was last updated July 2023.", "This Privacy Policy was last updated February 2026."
    )
    cases.append(
        Case(
            "wesgar-date-only",
            h(w),
            h(date, token="wb"),
            True,
            ["effective_date"],
            [],
            [],
            {"before": "2023-07", "after": "2026-02"},
            note="only the stated date changes",
        )
    )

    ad_cookies = sub(
        w,
        "- To learn more about cookies, you can visit https://allaboutcookies.org/.",
        "- Allow third-party advertising partners to place advertising cookies and pixels on your device to show you targeted ads on other websites.\n"
        "- To learn more about cookies, you can visit https://allaboutcookies.org/.",
    )
    cases.append(
        Case(
            "wesgar-advertising-cookies",
            h(w),
            h(ad_cookies, token="wc"),
            True,
            ["cookies"],
            ["sharing", "use"],
            ["What personal information we collect"],
            WESGAR_DATE,
            note="a new cookie purpose: third-party advertising cookies and pixels for targeted ads",
        )
    )

    notice = sub(
        w,
        "The updated policy will take effect upon posting to this page.",
        "We will notify you by email at least 30 days before any material change takes effect.",
    )
    cases.append(
        Case(
            "wesgar-changes-clause",
            h(w),
            h(notice, token="wd"),
            True,
            ["changes"],
            [],
            ["Application of this privacy policy"],
            WESGAR_DATE,
            note="changes now notified by email 30 days ahead instead of taking effect upon posting",
        )
    )

    ai = sub(
        w,
        "- To administer Wesgar’s website.",
        "- To administer Wesgar’s website.\n- To train and improve our artificial intelligence models, including machine learning models that score sales leads.",
    )
    cases.append(
        Case(
            "wesgar-ai-training",
            h(w),
            h(ai, token="we"),
            True,
            ["automated"],
            ["use", "collection"],
            ["Why we collect personal information"],
            WESGAR_DATE,
            note="a new purpose bullet: training AI / machine learning models on personal information",
        )
    )

    optout = sub(
        w,
        " All our marketing email messages contain an option to automatically “opt-out” of receiving messages from us.",
        "",
    )
    cases.append(
        Case(
            "wesgar-optout-removed",
            h(w),
            h(optout, token="wf"),
            True,
            ["consent"],
            ["use", "rights"],
            ["Why we collect personal information"],
            WESGAR_DATE,
            note="the promise of an opt-out link in every marketing e-mail is dropped",
        )
    )

    portability = sub(
        w,
        "- The right to data portability. You have the right to request that we provide your personal data to you in a machine-readable format.\n",
        "",
    )
    cases.append(
        Case(
            "wesgar-right-removed",
            h(w),
            h(portability, token="wg"),
            True,
            ["rights"],
            [],
            ["Your rights"],
            WESGAR_DATE,
            note="the right to data portability bullet is deleted",
        )
    )

    links = (
        "Links to a third-party website\n"
        + w.split("Links to a third-party website\n", 1)[1].split("Transfer of personal information outside", 1)[0]
    )
    moved = move_block(w, links, "Contact us\n")
    cases.append(
        noise(
            "wesgar-section-moved",
            h(w),
            h(moved, token="wh"),
            WESGAR_DATE,
            "the 'Links to a third-party website' section moves down, before 'Contact us'; wording unchanged",
        )
    )

    transfer_block = (
        "Transfer of personal information outside"
        + w.split("Transfer of personal information outside", 1)[1].split("Your rights regarding", 1)[0]
    )
    deleted = sub(w, transfer_block, "")
    cases.append(
        Case(
            "wesgar-transfer-section-deleted",
            h(w),
            h(deleted, token="wi"),
            True,
            ["transfer"],
            ["security", "sharing"],
            ["Transfer of personal information"],
            WESGAR_DATE,
            note="the whole section on transfers outside Canada and the EEA (and its safeguards) is deleted",
        )
    )

    both = sub(
        w,
        "We will retain the information that we have collected from you only so long as it is necessary to achieve our stated purposes",
        "We will retain the information that we have collected from you for five (5) years to achieve our stated purposes",
    )
    both = sub(
        both, "This Privacy Policy was last updated July 2023.", "This Privacy Policy was last updated January 2026."
    )
    cases.append(
        Case(
            "wesgar-retention-and-date",
            h(w),
            h(both, token="wj"),
            True,
            ["retention", "effective_date"],
            [],
            ["How we use the personal information"],
            {"before": "2023-07", "after": "2026-01"},
            note="retention becomes five years and the stated date moves",
        )
    )

    modal = sub(
        w,
        "We will obtain your consent prior to the collection, use, or disclosure of your information.",
        "We may obtain your consent prior to the collection, use, or disclosure of your information.",
    )
    cases.append(
        Case(
            "wesgar-consent-will-to-may",
            h(w),
            h(modal, token="wk"),
            True,
            ["consent"],
            ["collection", "use", "sharing"],
            ["Why we collect personal information"],
            WESGAR_DATE,
            note="'We will obtain your consent' becomes 'We may obtain your consent': a modal verb, not a typo",
        )
    )

    hyphen = (
        w.replace("email address", "e-mail address")
        .replace("email messages", "e-mail messages")
        .replace("an email to", "an e-mail to")
    )
    cases.append(
        noise(
            "wesgar-email-hyphenated",
            h(w),
            h(hyphen, token="wl"),
            WESGAR_DATE,
            "'email' spelled 'e-mail' throughout; addresses unchanged",
        )
    )

    first = w.split("\n", 1)[0]
    split = sub(w, first, first.replace(" This online privacy policy", "\n\nThis online privacy policy", 1))
    cases.append(
        noise(
            "wesgar-paragraph-split",
            h(w),
            h(split, token="wm"),
            WESGAR_DATE,
            "the opening paragraph is cut in two; same sentences",
        )
    )

    md_old = markdown(w).decode()
    md_new = sub(md_old, "## How we share your personal information\n", "**How we share your personal information**\n")
    cases.append(
        noise(
            "wesgar-md-heading-to-bold",
            ("md", md_old.encode()),
            ("md", md_new.encode()),
            WESGAR_DATE,
            "Markdown: one '##' heading becomes a bold line; text unchanged",
        )
    )
    return cases


def spi_cases() -> list[Case]:
    s = seed("spi-sorel-tracy")
    h = lambda text=None, layout="semantic", token="s0": ("html", html("spi-sorel-tracy", text, layout, token))  # noqa: E731
    cases: list[Case] = []

    typo_old = sub(s, "we have inadvertently collected", "we have inadvertantly collected")
    typo_old = sub(typo_old, "We recommend reviewing", "We recomend reviewing")
    typo_old = sub(typo_old, "Regular staff awareness", "Regular staf awareness")
    cases.append(
        noise(
            "spi-typo-fixes",
            h(typo_old),
            h(s, layout="wrapped", token="s1"),
            SPI_DATE,
            "three misspellings fixed (inadvertantly, recomend, staf) and the page re-wrapped",
        )
    )

    kids = sub(
        s,
        "If you are under 14, please do not attempt to send us personal information.",
        "If you are under 14, you may send us personal information with the permission of a parent or guardian.",
    )
    cases.append(
        Case(
            "spi-children-may-send",
            h(s),
            h(kids, token="s2"),
            True,
            ["children"],
            ["consent", "collection"],
            ["Children"],
            SPI_DATE,
            note="children under 14 may now send personal information with parental permission",
        )
    )

    fmt = sub(s, "Last update: August 12, 2024", "Last update: 12 August 2024")
    fmt = sub(fmt, "Effective date of the policy: September 14, 2023", "Effective date of the policy: 2023-09-14")
    cases.append(
        noise(
            "spi-date-format-only",
            h(s),
            h(fmt, token="s3"),
            SPI_DATE,
            "the two stated dates are written another way; same dates",
        )
    )

    enc = sub(s, "- Data encryption: Protecting sensitive data with advanced encryption techniques.\n", "")
    cases.append(
        Case(
            "spi-encryption-bullet-removed",
            h(s),
            h(enc, token="s4"),
            True,
            ["security"],
            [],
            ["Security"],
            SPI_DATE,
            note="the data-encryption safeguard is no longer listed",
        )
    )

    rnd = sub(
        s,
        "- Research and development partners: Access certain data for collaboration on new innovations or product/service improvements.",
        "- Research and development partners: Access certain data for collaboration on new innovations or product/service improvements, and to train their artificial intelligence models.",
    )
    cases.append(
        Case(
            "spi-partners-train-ai",
            h(s),
            h(rnd, token="s5"),
            True,
            ["automated"],
            ["sharing", "use"],
            ["Sharing and Disclosure"],
            SPI_DATE,
            note="R&D partners may now use the data to train their AI models",
        )
    )

    dates = sub(s, "Effective date of the policy: September 14, 2023", "Effective date of the policy: January 1, 2025")
    dates = sub(dates, "Last update: August 12, 2024", "Last update: December 2, 2024")
    cases.append(
        Case(
            "spi-both-dates-moved",
            h(s),
            h(dates, token="s6"),
            True,
            ["effective_date"],
            [],
            [],
            {"before": "2024-08-12", "after": "2025-01-01"},
            note="updated in December, effective in January: the latest stated date is the effective date",
        )
    )

    ck = sub(
        s,
        "- Cookie management: Our website allows you to refuse or customize the use of cookies.",
        "- Cookie management: By continuing to browse our website, you accept the use of all cookies.",
    )
    cases.append(
        Case(
            "spi-cookie-consent-implied",
            h(s),
            h(ck, token="s7"),
            True,
            ["cookies", "consent"],
            ["rights"],
            ["Use of Personal Information"],
            SPI_DATE,
            note="refusing cookies is replaced by consent implied from browsing",
        )
    )

    footer = samples.render_page(samples.seed_document("spi-sorel-tracy", s), "semantic", token="s8", banner=False)
    footer = sub(footer, "© 2026 Example Inc.", "© 2027 Example Inc.")
    footer = sub(footer, ">Careers<", ">Jobs<")
    cases.append(
        noise(
            "spi-chrome-noise",
            h(s),
            ("html", footer.encode()),
            SPI_DATE,
            "cookie banner gone, a menu link renamed, copyright year bumped; policy text identical",
        )
    )

    obf_old = sub(s, "By email: administration@spisoreltracy.com", "By email: administration (at) spisoreltracy.com")
    obf_new = sub(s, "By email: administration@spisoreltracy.com", "By email: privacy (at) spisoreltracy.com")
    cases.append(
        Case(
            "spi-obfuscated-email",
            ("txt", plain(obf_old)),
            ("txt", plain(obf_new)),
            True,
            ["contact"],
            [],
            ["Contact"],
            SPI_DATE,
            note="plain text, obfuscated address: administration (at) ... becomes privacy (at) ...",
        )
    )

    art = sub(
        s,
        "Limiting access to personal data to authorized employees only.",
        "Limiting access to the personal data to the authorized employees only.",
    )
    cases.append(
        noise("spi-articles-added", h(s), h(art, token="s9"), SPI_DATE, "two articles ('the') added; same meaning")
    )

    txt_old = plain(s)
    wrapped = "\n".join(
        "\n".join(_wrap_line(line)) if len(line) > 90 and not line.startswith("-") else line for line in s.split("\n")
    )
    cases.append(
        noise(
            "spi-text-rewrapped",
            ("txt", txt_old),
            ("txt", plain(wrapped)),
            SPI_DATE,
            "plain text: long paragraphs hard-wrapped at 72 columns",
        )
    )
    return cases


def _wrap_line(line: str, width: int = 72) -> list[str]:
    import textwrap

    return textwrap.wrap(line, width, break_on_hyphens=False, break_long_words=False)


def planiso_cases() -> list[Case]:
    p = seed("planiso")
    h = lambda text=None, layout="semantic", token="p0": ("html", html("planiso", text, layout, token))  # noqa: E731
    cases: list[Case] = []

    age = sub(
        p,
        "children under 14 years of age. By using our website, you represent that you are at least 14 years old. If you are under 14,",
        "children under 16 years of age. By using our website, you represent that you are at least 16 years old. If you are under 16,",
    )
    age = sub(age, "from a user under 14,", "from a user under 16,")
    age = sub(age, "users under the age of 14", "users under the age of 16")
    age = sub(age, "a child under 14 has provided", "a child under 16 has provided")
    cases.append(
        Case(
            "planiso-children-age-16",
            h(p),
            h(age, token="p1"),
            True,
            ["children"],
            ["collection"],
            ["Children", "Types of Personal Information"],
            PLANISO_DATE,
            note="the age threshold rises from 14 to 16",
        )
    )

    renum = p
    for a, b in (
        ("6. Links", "5. Links"),
        ("6.1 Our website", "5.1 Our website"),
        ("7. Security", "6. Security"),
        ("7.1 Security", "6.1 Security"),
        ("7.2 Commitment", "6.2 Commitment"),
        ("8. Retention", "7. Retention"),
        ("9. Your Rights", "8. Your Rights"),
        ("9.1 Recognition", "8.1 Recognition"),
        ("10. Policy", "9. Policy"),
        ("11. Contact", "10. Contact"),
    ):
        renum = sub(renum, a, b)
    cases.append(
        noise(
            "planiso-renumbered",
            h(p),
            h(renum, token="p2"),
            PLANISO_DATE,
            "sections 6 to 11 renumbered 5 to 10; no wording changes",
        )
    )

    ads = sub(
        p,
        "- Delivery partners : Receive addresses for order delivery;",
        "- Delivery partners : Receive addresses for order delivery;\n- Advertising networks : Receive your browsing data and device identifiers to show you targeted ads on other websites;",
    )
    cases.append(
        Case(
            "planiso-new-recipient-bullet",
            h(p),
            h(ads, token="p3"),
            True,
            ["sharing"],
            ["cookies", "use", "collection"],
            ["Use of Personal Information"],
            PLANISO_DATE,
            note="a new recipient in the list of who accesses personal information: advertising networks",
        )
    )

    fmt = sub(p, "May 29, 2024", "2024-05-29")
    fmt = sub(fmt, "September 14, 2023", "14 September 2023")
    cases.append(
        noise(
            "planiso-date-format-only",
            h(p),
            h(fmt, token="p4"),
            PLANISO_DATE,
            "the stated dates, each on the line after its label, change format only",
        )
    )

    date = sub(p, "Last updated :\nMay 29, 2024", "Last updated :\nMarch 3, 2026")
    cases.append(
        Case(
            "planiso-date-only-next-line",
            h(p),
            h(date, token="p5"),
            True,
            ["effective_date"],
            [],
            [],
            {"before": "2024-05-29", "after": "2026-03-03"},
            note="'Last updated :' with the date on the next line; only the date changes",
        )
    )

    tr = sub(
        p,
        "Data transfers outside Québec are conducted as part of international collaborations, while ensuring adequate protection of information in accordance with applicable laws.",
        "Personal information is hosted on servers in the United States and may be transferred to our support team in India, while ensuring adequate protection of information in accordance with applicable laws.",
    )
    cases.append(
        Case(
            "planiso-transfer-us-india",
            h(p),
            h(tr, token="p6"),
            True,
            ["transfer"],
            ["sharing", "security"],
            ["Use of Personal Information"],
            PLANISO_DATE,
            note="data now hosted in the United States and transferred to India",
        )
    )

    ret = sub(
        p,
        "This data is typically retained for a shorter period unless used",
        "This data is retained for five (5) years unless used",
    )
    cases.append(
        Case(
            "planiso-usage-data-five-years",
            h(p),
            h(ret, token="p7"),
            True,
            ["retention"],
            [],
            ["Retention and Destruction"],
            PLANISO_DATE,
            note="usage data kept five years instead of 'a shorter period'",
        )
    )

    chg = sub(
        p,
        "This policy may be updated without notice to reflect changes in our practices or legal requirements.",
        "We will notify you by email at least 30 days before this policy is updated to reflect changes in our practices or legal requirements.",
    )
    cases.append(
        Case(
            "planiso-changes-notice",
            h(p),
            h(chg, token="p8"),
            True,
            ["changes"],
            [],
            ["Policy Changes"],
            PLANISO_DATE,
            note="updates now announced by e-mail 30 days ahead instead of 'without notice'",
        )
    )

    dflt = sub(
        p,
        "By default, these functions are disabled to protect data privacy. Our clients always have the choice to enable or disable these features",
        "By default, these functions are enabled. Our clients always have the choice to disable these features",
    )
    cases.append(
        Case(
            "planiso-profiling-on-by-default",
            h(p),
            h(dflt, token="p9"),
            True,
            ["consent"],
            ["automated", "collection"],
            ["Collection of Personal Information"],
            PLANISO_DATE,
            note="profiling features switch from opt-in (disabled by default) to opt-out (enabled by default)",
        )
    )

    mail = sub(p, "- By email : normand.gagnon@planiso.com;", "- By email : privacy@planiso.com;")
    cases.append(
        Case(
            "planiso-contact-email",
            ("md", markdown(p)),
            ("md", markdown(mail)),
            True,
            ["contact"],
            [],
            ["Contact"],
            PLANISO_DATE,
            note="Markdown versions: the privacy officer's e-mail changes",
        )
    )

    cases.append(
        noise(
            "planiso-plain-layout",
            h(p),
            h(p, layout="plain", token="pa"),
            PLANISO_DATE,
            "new layout: headings become bold paragraphs, a help sidebar appears",
        )
    )
    return cases


def ccb_cases() -> list[Case]:
    c = seed("canadian-cloud-backup")
    h = lambda text=None, layout="semantic", token="c0": ("html", html("canadian-cloud-backup", text, layout, token))  # noqa: E731
    cases: list[Case] = []

    sell = sub(
        c,
        "We do not sell or rent customer data or personal information to anyone.",
        "We may sell or rent customer data or personal information to our marketing partners.",
    )
    cases.append(
        Case(
            "ccb-negation-sell",
            h(c),
            h(sell, token="c1"),
            True,
            ["sharing"],
            [],
            ["Disclosure or Transfer"],
            CCB_DATE,
            note="'We do not sell or rent' becomes 'We may sell or rent ... to our marketing partners'",
        )
    )

    keep = sub(
        c,
        "We may keep any and all of your personal information on hand for as long as permitted by law",
        "We may keep any and all of your personal information on hand for two (2) years after the end of our relationship",
    )
    cases.append(
        Case(
            "ccb-retention-two-years",
            h(c),
            h(keep, token="c2"),
            True,
            ["retention"],
            ["use"],
            ["Use of Customer Data"],
            CCB_DATE,
            note="retention goes from 'as long as permitted by law' to two years",
        )
    )

    date = sub(c, "Updated March 30, 2017", "Updated January 15, 2026")
    cases.append(
        Case(
            "ccb-date-only",
            h(c),
            h(date, layout="divs", token="c3"),
            True,
            ["effective_date"],
            [],
            [],
            {"before": "2017-03-30", "after": "2026-01-15"},
            note="only the date changes (the new page also uses another layout)",
        )
    )

    intl = sub(
        c,
        "9. Contact Information and Resolving Disputes.",
        "9. International Transfers.\n\nCustomer data and personal information may be stored and processed on servers located in the United States and in the European Union.\n\n"
        "10. Contact Information and Resolving Disputes.",
    )
    cases.append(
        Case(
            "ccb-new-transfer-section",
            h(c),
            h(intl, token="c4"),
            True,
            ["transfer"],
            ["sharing"],
            ["International Transfers"],
            CCB_DATE,
            note="a new section on storage in the United States and the EU; the next section is renumbered",
        )
    )

    phone = sub(c, "1-613-877-4423", "1-613-555-0147")
    cases.append(
        Case(
            "ccb-phone-number",
            h(c),
            h(phone, token="c5"),
            True,
            ["contact"],
            ["rights"],
            ["Accessing Customer Data"],
            CCB_DATE,
            note="the phone number for access requests changes",
        )
    )

    s7 = (
        "7. How Canadian Cloud Backup Safeguards"
        + c.split("7. How Canadian Cloud Backup Safeguards", 1)[1].split("8. Accessing", 1)[0]
    )
    s8 = "8. Accessing" + c.split("8. Accessing", 1)[1].split("9. Contact Information", 1)[0]
    swapped = sub(c, s7 + s8, s8.replace("8. Accessing", "7. Accessing", 1) + s7.replace("7. How", "8. How", 1))
    cases.append(
        noise(
            "ccb-sections-swapped",
            h(c),
            h(swapped, token="c6"),
            CCB_DATE,
            "sections 7 and 8 trade places and numbers; wording unchanged",
        )
    )

    cases.append(
        noise(
            "ccb-plain-layout",
            h(c),
            h(c, layout="plain", token="c7"),
            CCB_DATE,
            "new layout: headings become bold paragraphs, sidebar links",
        )
    )

    ck = sub(
        c,
        "If you decide not to accept cookies, however, some of the websites’ features or functions may not be available to you.",
        "If you decide not to accept cookies, however, some of the websites’ features or functions may not be available to you. "
        "We also use third-party analytics cookies that keep a record of your visits for up to 13 months.",
    )
    cases.append(
        Case(
            "ccb-analytics-cookies",
            h(c),
            h(ck, token="c8"),
            True,
            ["cookies"],
            ["retention", "collection", "sharing"],
            ["How Canadian Cloud Backup Collects"],
            CCB_DATE,
            note="third-party analytics cookies with a 13-month lifetime are added",
        )
    )
    return cases


def cantrex_cases() -> list[Case]:
    t = seed("cantrex")
    h = lambda text=None, layout="semantic", token="f0": ("html", html("cantrex", text, layout, token))  # noqa: E731
    cases: list[Case] = []

    ret = sub(
        t,
        "Cantrex ne conservera les renseignements personnels qu'aussi longtemps que cela sera nécessaire pour la réalisation des fins déterminées ou lorsque la loi l'exigera.",
        "Cantrex conservera les renseignements personnels pendant sept (7) ans après la dernière transaction du Client.",
    )
    cases.append(
        Case(
            "cantrex-retention-seven-years",
            h(t),
            h(ret, token="f1"),
            True,
            ["retention"],
            [],
            ["Restrictions sur l'utilisation"],
            NO_DATE,
            lang="fr",
            note="conservation 'aussi longtemps que nécessaire' devient sept ans",
        )
    )

    neg = sub(
        t,
        "Ces partenaires ne gardent, ne partagent et n'utilisent l'information qui leur est transmise pour aucune autre raison.",
        "Ces partenaires peuvent garder, partager et utiliser l'information qui leur est transmise à leurs propres fins commerciales.",
    )
    cases.append(
        Case(
            "cantrex-partners-may-share",
            h(t),
            h(neg, token="f2"),
            True,
            ["sharing"],
            ["use", "retention"],
            ["Détermination des fins"],
            NO_DATE,
            lang="fr",
            note="negation flip: partners 'ne gardent, ne partagent et n'utilisent' becomes 'peuvent garder, partager et utiliser'",
        )
    )

    srv = sub(
        t,
        "Enfin, les serveurs qui hébergent l'information sont situés dans un environnement sécuritaire",
        "Enfin, les serveurs qui hébergent l'information sont situés aux États-Unis et en Irlande, dans un environnement sécuritaire",
    )
    cases.append(
        Case(
            "cantrex-servers-abroad",
            h(t),
            h(srv, token="f3"),
            True,
            ["transfer"],
            ["security"],
            ["Mesures de sécurité"],
            NO_DATE,
            lang="fr",
            note="servers now located in the United States and Ireland",
        )
    )

    ck = sub(
        t,
        "Une fois que l'utilisateur ferme son navigateur, le témoin vient à échéance.",
        "Le témoin est conservé pendant 13 mois sur l'ordinateur de l'utilisateur, même après la fermeture de son navigateur.",
    )
    cases.append(
        Case(
            "cantrex-cookie-lifetime",
            h(t),
            h(ck, token="f4"),
            True,
            ["cookies"],
            ["retention"],
            ["Détermination des fins"],
            NO_DATE,
            lang="fr",
            note="session cookie becomes a 13-month persistent cookie",
        )
    )

    mail = sub(
        t,
        "contactez-nous en tous temps, en cliquant sur zoneimage@imacom.qc.ca.",
        "contactez-nous en tous temps, en cliquant sur vieprivee@cantrex.com.",
    )
    cases.append(
        Case(
            "cantrex-contact-email",
            h(t),
            h(mail, token="f5"),
            True,
            ["contact"],
            [],
            ["Demandes"],
            NO_DATE,
            lang="fr",
            note="the contact address for questions changes",
        )
    )

    unsub = sub(
        t,
        "Les Clients et Utilisateurs qui ne voudront plus recevoir ces communications pourront se désabonner en cliquant sur l'hyperlien au bas de leur courriel.",
        "Les Clients et Utilisateurs ne pourront pas se désabonner de ces communications.",
    )
    cases.append(
        Case(
            "cantrex-no-unsubscribe",
            h(t),
            h(unsub, token="f6"),
            True,
            ["consent"],
            ["use"],
            ["Choix"],
            NO_DATE,
            lang="fr",
            note="clients can no longer unsubscribe from the newsletter and daily report",
        )
    )

    chg = sub(
        t,
        "ceux-ci seraient publiés sur la page d'accueil du site web afin que",
        "ceux-ci seraient publiés sur la page d'accueil du site web et annoncés par courriel 30 jours à l'avance afin que",
    )
    cases.append(
        Case(
            "cantrex-changes-30-days",
            h(t),
            h(chg, token="f7"),
            True,
            ["changes"],
            [],
            ["Avis de changement"],
            NO_DATE,
            lang="fr",
            note="policy changes now also announced by e-mail 30 days ahead",
        )
    )

    dated = t.rstrip("\n") + "\n\nDernière mise à jour : 12 août 2024\n"
    cases.append(
        Case(
            "cantrex-date-added",
            h(t),
            h(dated, token="f8"),
            True,
            ["effective_date"],
            [],
            [],
            {"before": None, "after": "2024-08-12"},
            lang="fr",
            note="a 'Dernière mise à jour' line appears; the policy had no date",
        )
    )

    cp = samples.page("cantrex", "divs", text=t, token="f9").replace(
        '<meta charset="utf-8">', '<meta charset="windows-1252">'
    )
    cases.append(
        noise(
            "cantrex-windows-1252-divs",
            h(t, layout="divs"),
            ("html", cp.encode("cp1252")),
            NO_DATE,
            "same page served as windows-1252 with a meta charset",
            lang="fr",
        )
    )

    typo_new = sub(t, "De temps à autres", "De temps à autre")
    typo_new = sub(typo_new, "recevront de temps à autres", "recevront de temps à autre")
    typo_new = sub(typo_new, "ceux-ci seraient publiés", "ceux-ci seraient publiées")
    cases.append(
        noise(
            "cantrex-typo-fixes",
            h(t),
            h(typo_new, token="fa"),
            NO_DATE,
            "agreement fixes only: 'de temps à autres' -> 'autre' (twice), 'publiés' -> 'publiées'",
            lang="fr",
        )
    )

    hyper = "Hyperliens\n\n" + t.split("\nHyperliens\n\n", 1)[1].split("\nAvis de changement", 1)[0]
    moved = move_block(t, hyper, "Demandes\n\n")
    cases.append(
        noise(
            "cantrex-section-moved",
            h(t),
            h(moved, token="fb"),
            NO_DATE,
            "the 'Hyperliens' section moves before 'Demandes'; wording unchanged",
            lang="fr",
        )
    )

    ai = sub(
        t,
        "Avis de changement\n",
        "Intelligence artificielle\n\nCantrex peut utiliser les renseignements de ses Clients pour entraîner ses modèles d'intelligence artificielle "
        "et prendre des décisions automatisées concernant l'approbation des commandes.\n\nAvis de changement\n",
    )
    cases.append(
        Case(
            "cantrex-ai-section",
            h(t),
            h(ai, token="fc"),
            True,
            ["automated"],
            ["use"],
            ["Intelligence artificielle"],
            NO_DATE,
            lang="fr",
            note="a new section: AI training on client data and automated order decisions",
        )
    )

    kid = "Cantrex ne recueille pas sciemment de renseignements concernant des enfants de moins de {} ans."
    base = sub(
        t,
        "doit, à cet égard, procéder de façon honnête et licite.",
        "doit, à cet égard, procéder de façon honnête et licite. " + kid.format(14),
    )
    older = sub(base, kid.format(14), kid.format(16))
    cases.append(
        Case(
            "cantrex-children-age",
            h(base),
            h(older, token="fd"),
            True,
            ["children"],
            ["collection"],
            ["Limitation de la collecte"],
            NO_DATE,
            lang="fr",
            note="l'âge des enfants protégés passe de moins de 14 ans à moins de 16 ans",
        )
    )

    typo = t.replace(" :", "\u00a0:").replace("« ", "«\u00a0").replace(" »", "\u00a0»").replace("'", "’")
    cases.append(
        noise(
            "cantrex-typography",
            h(t),
            h(typo, token="fe"),
            NO_DATE,
            "French typography: non-breaking spaces before colons and inside guillemets, curly apostrophes",
            lang="fr",
        )
    )

    dated_fr = t.rstrip("\n") + "\n\nDernière mise à jour : 12 août 2024\n"
    numeric_fr = t.rstrip("\n") + "\n\nDernière mise à jour : 12/08/2024\n"
    cases.append(
        noise(
            "cantrex-date-format-only",
            h(dated_fr),
            h(numeric_fr, token="fg"),
            {"before": "2024-08-12", "after": "2024-08-12"},
            "'12 août 2024' written '12/08/2024' (day first, French); same date",
            lang="fr",
        )
    )

    top = "Politique sur la protection de la vie privée\n\n"
    v1 = sub(t, top, top + "En vigueur le 1er janvier 2025\n\n")
    v2 = sub(t, top, top + "En vigueur le 1er juillet 2025\n\n")
    cases.append(
        Case(
            "cantrex-effective-date-moved",
            ("md", markdown(v1)),
            ("md", markdown(v2)),
            True,
            ["effective_date"],
            [],
            [],
            {"before": "2025-01-01", "after": "2025-07-01"},
            lang="fr",
            note="Markdown: only 'En vigueur le' date changes",
        )
    )

    md_old = markdown(t).decode()
    md_new = sub(md_old, "## Exactitude\n", "**Exactitude**\n")
    cases.append(
        noise(
            "cantrex-md-heading-to-bold",
            ("md", md_old.encode()),
            ("md", md_new.encode()),
            NO_DATE,
            "Markdown: a heading becomes a bold line",
            lang="fr",
        )
    )

    sell = sub(
        t,
        "Cantrex partage de l'information démographique agrégée avec ses partenaires. En aucun temps cette information ne permet-elle d'identifier une personne.",
        "Cantrex partage de l'information démographique agrégée avec ses partenaires. Cantrex peut également vendre les adresses de courrier électronique de ses Clients à des courtiers en données.",
    )
    cases.append(
        Case(
            "cantrex-sold-to-brokers",
            ("md", markdown(t)),
            ("md", markdown(sell)),
            True,
            ["sharing"],
            ["use"],
            ["Détermination des fins"],
            NO_DATE,
            lang="fr",
            note="Markdown: clients' e-mail addresses may now be sold to data brokers, and the anonymity promise is dropped",
        )
    )
    return cases


BUILDERS: list[Callable[[], list[Case]]] = [wesgar_cases, spi_cases, planiso_cases, ccb_cases, cantrex_cases]


def build() -> list[Case]:
    cases = [c for b in BUILDERS for c in b()]
    names = [c.name for c in cases]
    if len(names) != len(set(names)):
        raise ValueError("duplicate case names")
    return cases


def write(cases: list[Case], out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    keep = {c.name for c in cases}
    for d in out.iterdir():  # drop cases this script no longer makes (only our own folders)
        if d.is_dir() and d.name not in keep and (d / "expected.json").exists():
            shutil.rmtree(d)
    for c in cases:
        d = out / c.name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        (d / f"old.{c.old[0]}").write_bytes(c.old[1])
        (d / f"new.{c.new[0]}").write_bytes(c.new[1])
        expected = {
            "material": c.material,
            "topics": sorted(c.topics),
            "allowed": sorted(c.allowed),
            "sections": c.sections,
            "dates": c.dates,
            "lang": c.lang,
            "note": c.note,
        }
        (d / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    cases = build()
    write(cases)
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
