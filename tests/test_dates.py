"""Stated effective / last-updated dates, English and French (watcher.dates).

A table of phrasings seen on real policies (most lines come from the Open Terms Archive
versions in /work/shared/eval/cases-real-md and cases-real, a few from other policies),
each with the ISO date a reader takes as the policy's own date: `YYYY-MM-DD`, or
`YYYY-MM` when no day is given. Negatives are dates that are not the policy's: copyright
years, dates in prose, a regional date inside a paragraph, the date of a law.

Rows watcher gets wrong today are strict xfails with a diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from watcher import samples
from watcher.dates import effective_date, find_dates, stated_dates_in
from watcher.normalize import normalize


@dataclass(frozen=True)
class Phrase:
    id: str
    lang: str
    text: str  # blocks separated by "\n" ("Last updated :" then the date on the next line)
    iso: str | None  # None: no stated date
    xfail: str = ""


P = Phrase
PHRASES: list[Phrase] = [
    # --- English ---------------------------------------------------------------------
    P("en-last-updated-colon", "en", "Last updated: May 29, 2024", "2024-05-29"),
    P("en-was-last-updated-month", "en", "This Privacy Policy was last updated July 2023.", "2023-07"),
    P("en-updated-no-colon", "en", "Updated March 30, 2017", "2017-03-30"),
    P("en-last-updated-next-line", "en", "Last updated :\nMay 29, 2024", "2024-05-29"),
    P("en-effective-as-of-dmy", "en", "Effective as of 1 March 2024", "2024-03-01"),
    P("en-effective-as-of-spotify", "en", "Effective as of 27 June 2024", "2024-06-27"),
    P("en-last-revised-dd-mon-yyyy", "en", "Last revised 16-OCT-2023", "2023-10-16"),
    P("en-last-revised-month-yyyy", "en", "Last revised APRIL-2024", "2024-04"),
    P("en-numeric-dotted", "en", "| 3.4 | Document updated | 16.7.2026 |", "2026-07-16"),
    P("en-ordinal", "en", "**Last Modified:** April 15th, 2024", "2024-04-15"),
    P("en-ordinal-no-comma", "en", "Effective April 2nd 2024", "2024-04-02"),
    P("en-effective-date-colon", "en", "Effective Date: January 1, 2025", "2025-01-01"),
    P(
        "en-effective-date-region-label",
        "en",
        "Effective Date in EEA, UK, and Switzerland: April 30, 2024",
        "2024-04-30",
    ),
    P("en-last-update-dmy-comma", "en", "Last update: 25 October, 2021", "2021-10-25"),
    P("en-abbrev-month", "en", "Last Updated: Jul 24, 2023", "2023-07-24"),
    P("en-abbrev-month-dot", "en", "Last updated Sept. 3, 2024", "2024-09-03"),
    P("en-revised-colon", "en", "Revised: July 1, 2023", "2023-07-01"),
    P("en-effective-colon", "en", "Effective: July 10, 2025", "2025-07-10"),
    P("en-updated-month-only", "en", "Updated June 2026", "2026-06"),
    P("en-italic-last-update", "en", "_Last Update: March 7, 2024_", "2024-03-07"),
    P(
        "en-last-modified-then-prose",
        "en",
        "Last modified 28 August 2023. You can find previous versions of this notice.",
        "2023-08-28",
    ),
    P("en-was-last-modified-on", "en", "This Privacy Policy was last modified on December 21, 2022.", "2022-12-21"),
    P(
        "en-published-with-version",
        "en",
        "This Privacy Policy was published on 21 October 2021 (version 1.0).",
        "2021-10-21",
    ),
    P("en-date-then-version", "en", "Donkey Republic, February 2024, version 1.2", "2024-02"),
    P("en-iso", "en", "Last updated 2024-05-29", "2024-05-29"),
    P("en-iso-slashes", "en", "Last updated: 2024/05/29", "2024-05-29"),
    P("en-us-numeric", "en", "Effective Date: 1/15/2024", "2024-01-15"),
    P("en-effective-notice-sentence", "en", "This Privacy Notice is effective as of February 1, 2024.", "2024-02-01"),
    P("en-takes-effect", "en", "This notice takes effect on 1 January 2026.", "2026-01-01"),
    P("en-effective-from-parenthesis", "en", "Privacy Policy (effective from June 1, 2025)", "2025-06-01"),
    P("en-date-of-last-revision", "en", "Date of last revision: 2 May 2023", "2023-05-02"),
    P("en-upper-case", "en", "LAST UPDATED: JANUARY 1, 2024", "2024-01-01"),
    P("en-table-cell", "en", "Effective Date | 1 March 2024", "2024-03-01"),
    P(
        "en-us-numeric-day-over-19",
        "en",
        "Last updated on 12/31/2023",
        "2023-12-31",
    ),
    P(
        "en-ordinal-of-month",
        "en",
        "Last reviewed: 3rd of March 2024",
        "2024-03-03",
    ),
    P(
        "en-revised-on-the-ordinal-of",
        "en",
        "This policy was last revised on the 3rd of May 2023.",
        "2023-05-03",
    ),
    P(
        "en-version-number-then-date",
        "en",
        "Version 3.2 – 15 March 2024",
        "2024-03-15",
    ),
    P(
        "en-effective-date-of-the-policy-next-line",
        "en",
        "Effective date of the policy :\nSeptember 14, 2023",
        "2023-09-14",
    ),
    # --- French ----------------------------------------------------------------------
    P("fr-derniere-mise-a-jour", "fr", "Dernière mise à jour : 12 août 2024", "2024-08-12"),
    P("fr-derniere-mise-a-jour-next-line", "fr", "Dernière mise à jour :\n12 août 2024", "2024-08-12"),
    P("fr-en-vigueur-le-1er", "fr", "En vigueur le 1er janvier 2025", "2025-01-01"),
    P("fr-version-en-date-du", "fr", "_Version en date du 02 octobre 2023_", "2023-10-02"),
    P("fr-date-entree-en-vigueur", "fr", "Date d'entrée en vigueur : 1er janvier 2025", "2025-01-01"),
    P("fr-date-entree-en-vigueur-curly", "fr", "Date d’entrée en vigueur : 1er janvier 2025", "2025-01-01"),
    P("fr-mise-a-jour-le-numeric", "fr", "mise à jour le 29/09/2023", "2023-09-29"),
    P("fr-derniere-mise-a-jour-le", "fr", "Dernière mise à jour le 11/09/2023", "2023-09-11"),
    P("fr-mise-a-jour-dotted", "fr", "Mise à jour : 01.04.2021", "2021-04-01"),
    P("fr-version-a-la-date-du", "fr", "Version à la date du : 28.11.2023", "2023-11-28"),
    P("fr-date-de-derniere-mise-a-jour", "fr", "Date de dernière mise à jour: 22/10/2025", "2025-10-22"),
    P("fr-mise-a-jour-du-parenthesis", "fr", "(Mise à jour du 17 mai 2024 )", "2024-05-17"),
    P("fr-month-only-bold", "fr", "**Dernière mise à jour : décembre 2024**", "2024-12"),
    P("fr-en-vigueur-a-compter-du", "fr", "Politique en vigueur à compter du 1er février 2024", "2024-02-01"),
    P("fr-entree-en-vigueur-colon", "fr", "Entrée en vigueur : 25 mai 2018", "2018-05-25"),
    P("fr-abbrev-month", "fr", "Mise à jour le 3 févr. 2025", "2025-02-03"),
    P("fr-derniere-modification", "fr", "Dernière modification : 15 septembre 2023", "2023-09-15"),
    P("fr-date-de-mise-a-jour", "fr", "Date de mise à jour : 1er mars 2024", "2024-03-01"),
    P("fr-publiee-le", "fr", "Publiée le 5 juin 2023", "2023-06-05"),
    P("fr-a-ete-mise-a-jour-le", "fr", "Cette politique a été mise à jour le 14 juin 2024.", "2024-06-14"),
    P("fr-derniere-revision", "fr", "Dernière révision : 1er juillet 2022", "2022-07-01"),
    P("fr-month-only", "fr", "Mise à jour : juin 2024", "2024-06"),
    P("fr-no-accent", "fr", "Dernière mise à jour : 12 aout 2024", "2024-08-12"),
    P("fr-upper-case-month", "fr", "Dernière mise à jour : 12 AOÛT 2024", "2024-08-12"),
    P(
        "fr-entre-en-vigueur-sentence",
        "fr",
        "La présente politique entre en vigueur le 1er janvier 2025.",
        "2025-01-01",
    ),
    P("fr-version-du", "fr", "Version du 15 mars 2024", "2024-03-15"),
    P("fr-en-vigueur-depuis", "fr", "En vigueur depuis le 25 mai 2018", "2018-05-25"),
    P(
        "fr-a-jour-au",
        "fr",
        "Politique à jour au 1er janvier 2024",
        "2024-01-01",
    ),
    P(
        "fr-derniere-actualisation",
        "fr",
        "Dernière actualisation : 10/01/2024",
        "2024-01-10",
    ),
    P(
        "fr-date-d-effet",
        "fr",
        "Date d'effet : 1er juillet 2024",
        "2024-07-01",
    ),
    # --- not the policy's date -------------------------------------------------------
    P("neg-copyright", "en", "© 2026 Example Inc. All rights reserved.", None),
    P("neg-copyright-range", "en", "Copyright © 2019-2026 Example", None),
    P("neg-copyright-fr", "fr", "© 2026 Cantrex. Tous droits réservés.", None),
    P("neg-prose-after", "en", "After March 1, 2023 we began collecting location data for all users of the app.", None),
    P("neg-prose-on", "en", "On March 1, 2023 we updated our cookie banner to offer a reject button.", None),
    P(
        "neg-regional-date-in-paragraph",
        "en",
        "This section applies to users in Latin America and is effective for Colombia on September 13, 2023, when the new "
        "regulation on personal data processing entered into force for all of our customers in that country, and we "
        "will update it as other countries adopt similar rules.",
        None,
    ),
    P("neg-law-in-force", "en", "The GDPR came into force in May 2018 and applies to you.", None),
    P("neg-retention-until", "en", "We will keep your invoices until December 31, 2030.", None),
    P(
        "neg-statistics-period",
        "en",
        "In the 12 months before January 1, 2024, we did not sell personal information.",
        None,
    ),
    P("neg-relative-date", "en", "Updated over a week ago", None),
    P("neg-cue-without-date", "en", "Last updated:", None),
    P(
        "neg-fr-rgpd-date",
        "fr",
        "Conformément à la règlementation en vigueur, notamment au RGPD du 27 avril 2016, vous disposez du droit d’obtenir",
        None,
    ),
    P(
        "neg-fr-prose-depuis",
        "fr",
        "Depuis le 1er janvier 2023, nous utilisons un nouveau prestataire de paiement pour traiter vos transactions.",
        None,
    ),
    P("neg-fr-retention-until", "fr", "Les données sont conservées jusqu'au 31 décembre 2030.", None),
    P(
        "neg-fr-systems-updated",
        "fr",
        "Nous avons mis à jour nos systèmes le 3 mars 2023 pour améliorer la sécurité de vos données et de nos serveurs, comme annoncé.",
        None,
    ),
    P(
        "neg-law-effective-on",
        "en",
        "The Maine Broadband Internet Access Service Customer Privacy Act, effective on July 1, 2020, gives you additional privacy rights.",
        None,
    ),
]


def _params(rows: list[Phrase]) -> list:
    return [
        pytest.param(r, id=r.id, marks=[pytest.mark.xfail(strict=True, reason=r.xfail)] if r.xfail else [])
        for r in rows
    ]


def test_table_covers_both_languages() -> None:
    positives = [p for p in PHRASES if p.iso]
    assert len(positives) >= 40
    assert sum(p.lang == "fr" for p in positives) >= 15
    assert sum(p.iso is None for p in PHRASES) >= 10
    assert len({p.id for p in PHRASES}) == len(PHRASES)


@pytest.mark.parametrize("row", _params(PHRASES))
def test_stated_date(row: Phrase) -> None:
    found = {d.iso for d in stated_dates_in(row.text.split("\n"), row.lang)}
    assert found == ({row.iso} if row.iso else set())


@pytest.mark.parametrize("row", _params([p for p in PHRASES if p.iso]))
def test_stated_date_inside_a_policy(row: Phrase) -> None:
    """The same line in a small policy page, through normalize: its date is the policy's date."""
    if row.lang == "fr":
        body = "Politique de confidentialité\n\nNous recueillons votre adresse de courriel pour vous envoyer notre bulletin.\n\n"
    else:
        body = "Privacy Policy\n\nWe collect your e-mail address to send you our newsletter.\n\n"
    doc = normalize(body + row.text.replace("\n", "\n\n") + "\n", lang=row.lang)
    assert effective_date(doc) == row.iso


# ------------------------------------------------------------------------------------
# Calendar dates (no cue): the same date written in every format, and day-first rules


@pytest.mark.parametrize(
    ("text", "lang", "iso"),
    [
        ("16.7.2026", "en", "2026-07-16"),
        ("16-OCT-2023", "en", "2023-10-16"),
        ("APRIL-2024", "en", "2024-04"),
        ("1er janvier 2025", "fr", "2025-01-01"),
        ("02 octobre 2023", "fr", "2023-10-02"),
        ("3 févr. 2025", "fr", "2025-02-03"),
        ("Sept. 3, 2024", "en", "2024-09-03"),
        ("April 15th, 2024", "en", "2024-04-15"),
        ("25 October, 2021", "en", "2021-10-25"),
        ("2024-05-29", "en", "2024-05-29"),
        ("29/09/2023", "en", "2023-09-29"),  # day > 12: day first whatever the language
        ("05/06/2024", "en", "2024-05-06"),  # English: month first
        ("05/06/2024", "fr", "2024-06-05"),  # French: day first
        ("28.11.2023", "fr", "2023-11-28"),
    ],
)
def test_find_dates_formats(text: str, lang: str, iso: str) -> None:
    assert [d.iso for d in find_dates(f"x {text} x", lang)] == [iso]


@pytest.mark.parametrize("text", ["31/02/2024", "© 2026", "version 1.2", "13/13/2024"])
def test_find_dates_rejects_non_dates(text: str) -> None:
    assert find_dates(text, "en") == []


# ------------------------------------------------------------------------------------
# Documents: effective_date is the latest date the policy states about itself

DOCS: list[tuple[str, str, str, str | None]] = [
    (
        "planiso-footer",
        "en",
        "Privacy Policy\n\nWe collect your name.\n\nEffective date of the policy :\n\nSeptember 14, 2023\n\nLast updated :\n\n"
        "May 29, 2024\n\n393 Racine East Street, Suite 200\n\nChicoutimi (Quebec) G7H 1T2\n",
        "2024-05-29",
    ),
    (
        "updated-then-modified",
        "en",
        "# Privacy Policy\n\nUpdated December 30, 2022\n\nWe collect your e-mail address.\n\n"
        "This Privacy Policy was last modified on December 21, 2022.\n",
        "2022-12-30",
    ),
    (
        "effective-after-updated",
        "en",
        "# Privacy Policy\n\nLast updated: March 1, 2025\n\nEffective date: April 1, 2025\n\nWe collect your e-mail address.\n",
        "2025-04-01",
    ),
    (
        "version-table",
        "en",
        "# Privacy Policy\n\nWe collect your e-mail address.\n\nThis Privacy Policy was published on 21 October 2021 (version 1.0).\n\n"
        "| Version | Change | Date |\n|---|---|---|\n| 2.8. | Document updated | 25.6.2025 |\n"
        "| 3.3 | Document updated | 20.4.2026 |\n| 2.9. | Document updated | 18.7.2025 |\n",
        "2026-04-20",
    ),
    (
        "copyright-and-prose-ignored",
        "en",
        "# Privacy Policy\n\nLast updated: May 29, 2024\n\nAfter March 1, 2025 we began collecting location data.\n\n"
        "We will keep invoices until December 31, 2030.\n\n© 2026 Example Inc. All rights reserved.\n",
        "2024-05-29",
    ),
    (
        "month-beats-earlier-day",
        "en",
        "# Privacy Policy\n\nEffective: May 29, 2026\n\nWe collect your e-mail address.\n\nUpdated June 2026\n",
        "2026-06",
    ),
    (
        "french-next-line-and-en-vigueur",
        "fr",
        "# Politique de confidentialité\n\nDernière mise à jour :\n\n12 août 2024\n\nNous recueillons votre adresse de courriel.\n\n"
        "En vigueur le 1er janvier 2025\n",
        "2025-01-01",
    ),
    (
        "french-no-stated-date",
        "fr",
        "# Politique de confidentialité\n\nConformément au RGPD du 27 avril 2016, vous disposez de droits.\n\n"
        "© 2026 Cantrex. Tous droits réservés.\n",
        None,
    ),
]


@pytest.mark.parametrize(("name", "lang", "text", "iso"), DOCS, ids=[d[0] for d in DOCS])
def test_effective_date_is_the_latest_stated(name: str, lang: str, text: str, iso: str | None) -> None:
    assert effective_date(normalize(text, lang=lang)) == iso


@pytest.mark.parametrize(
    ("seed", "iso"),
    [
        ("wesgar", "2023-07"),
        ("canadian-cloud-backup", "2017-03-30"),
        ("planiso", "2024-05-29"),
        ("spi-sorel-tracy", "2024-08-12"),
        ("cantrex", None),
    ],
)
def test_seed_policies(seed: str, iso: str | None) -> None:
    assert effective_date(samples.seed_document(seed)) == iso
    # the same policy served as an HTML page in another layout states the same date
    assert effective_date(normalize(samples.page(seed, "divs", token="t1"))) == iso
