"""Normalization: the same policy under any markup or noise gives byte-identical Markdown."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys

import pytest

from watcher import samples
from watcher.models import Document
from watcher.normalize import detect_format, document_to_json, normalize, to_markdown

TOKENS = [("0000", "2026-01-01T00:00:00Z"), ("9f8e7d6c5b", "2026-03-05T12:34:56Z")]

# Section headings a reader of each seed sees as titles (from watcher/data/demo/*.txt),
# with the parent heading of the nested ones.
HEADINGS: dict[str, dict[str, str | None]] = {
    "wesgar": {
        "Application of this privacy policy": None,
        "What personal information we collect": None,
        "How we collect your personal information": None,
        "Why we collect personal information": None,
        "How we use the personal information we collected": None,
        "How we share your personal information": None,
        "How we protect personal information": None,
        "Links to a third-party website": None,
        "Transfer of personal information outside of Canada and the EEA": None,
        "Your rights regarding your personal information": None,
        "Contact us": None,
    },
    "spi-sorel-tracy": {
        "Consent": None,
        "1.1 Commitment to Privacy Protection": "Consent",
        "1.2 Acceptance of Our Policy Terms": "Consent",
        "1.3 Right to Withdraw Consent": "Consent",
        "1.4 Exceptions to the Need for Consent": "Consent",
        "Collection of Personal Information": None,
        "Types of Personal Information Collected": None,
        "3.2 Children’s Privacy": "Types of Personal Information Collected",
        "Use of Personal Information": None,
        "Sharing and Disclosure of Personal Information": None,
        "Links to Other Websites": None,
        "6.1 Our website may contain links to third-party websites": "Links to Other Websites",
        "Security of Personal Information": None,
        "7.1 Security Measures for Personal Information Protection": "Security of Personal Information",
        "7.2 Staff and Board Commitment": "Security of Personal Information",
        "Retention and Destruction of Personal Information": None,
        "Your Rights": None,
        "9.1 Acknowledgment and Respect for Your Rights": "Your Rights",
        "Policy Changes": None,
        "Contact": None,
    },
    "planiso": {
        "1. Consent": None,
        "1.1 Commitment to Privacy Protection": "1. Consent",
        "1.4 Exceptions to the Need for Consent": "1. Consent",
        "2. Collection of Personal Information": None,
        "3. Types of Personal Information Collected": None,
        "4. Use of Personal Information": None,
        "6. Links to Other Websites": None,
        "7. Security of Personal Information": None,
        "7.1 Security Measures for Protecting Personal Information": "7. Security of Personal Information",
        "8. Retention and Destruction of Personal Information": None,
        "9. Your Rights": None,
        "9.1 Recognition and Respect for Your Rights": "9. Your Rights",
        "10. Policy Changes": None,
        "11. Contact": None,
    },
    "canadian-cloud-backup": {
        "1. Introduction.": None,
        "2. Types of Data and Information Canadian Cloud Backup Collects.": None,
        "3. Canadian Cloud Backup’s Role as a Data Processor.": None,
        "4. How Canadian Cloud Backup Collects Customer Data and Personal Information.": None,
        "5. Use of Customer Data and Personal Information.": None,
        "6. Disclosure or Transfer of Customer Data or Personal Information.": None,
        "7. How Canadian Cloud Backup Safeguards Customer Data and Personal Information.": None,
        "8. Accessing Customer Data and Making Changes.": None,
        "9. Contact Information and Resolving Disputes.": None,
    },
    "cantrex": {
        "Politique sur la protection de la vie privée": None,
        "Responsabilité": None,
        "Détermination des fins de la collecte de renseignements": None,
        "Consentement": None,
        "Limitation de la collecte": None,
        "Restrictions sur l'utilisation, la divulgation et la conservation": None,
        "Exactitude": None,
        "Choix/Désabonnement": None,
        "Mesures de sécurité et transparence": None,
        "Accessibilité": None,
        "Demandes": None,
        "Hyperliens": None,
        "Avis de changement": None,
    },
}

# Lines of the seeds that are body text or list items and must never become headings.
NOT_HEADINGS = {
    "wesgar": [
        "This Privacy Policy was last updated July 2023.",
        "Geo-location date and other demographic information",
    ],
    "spi-sorel-tracy": [
        "2.1 We collect personal information through various means, such as:",
        "Personal identifiers (name, mailing address, email, phone number)",
        "By email: administration@spisoreltracy.com",
    ],
    "planiso": ["2.1 We collect personal information through various means, such as :"],
    "canadian-cloud-backup": ["identification;"],
    "cantrex": ["Enregistrement", "Facturation"],
}


def _diff(a: str, b: str) -> str:
    return "".join(list(difflib.unified_diff(a.splitlines(True), b.splitlines(True), n=1))[:40])


def _md(html: str, **kw) -> str:
    return to_markdown(normalize(html, **kw))


def _headings(doc: Document) -> dict[str, tuple[str, ...]]:
    return {s.heading: s.path for s in doc.sections if s.heading}


@pytest.fixture(scope="module")
def reference() -> dict[str, str]:
    """Each seed's Markdown from the semantic layout: what every other rendering must equal."""
    return {name: _md(samples.page(name, "semantic")) for name in samples.SEEDS}


@pytest.mark.parametrize("seed", list(samples.SEEDS))
def test_same_markdown_across_layouts_and_refetches(seed: str, reference: dict[str, str]) -> None:
    want = reference[seed]
    assert len(want) > 2000
    for layout in samples.LAYOUTS:
        for token, stamp in TOKENS:
            page = samples.page(seed, layout, token=token, stamp=stamp)
            got = _md(page)
            assert got == want, f"{seed}/{layout}/{token}:\n{_diff(want, got)}"
            assert token not in got and stamp[:10] not in got


@pytest.mark.parametrize("seed", list(samples.SEEDS))
def test_same_markdown_under_markup_noise(seed: str, reference: dict[str, str]) -> None:
    """Line endings, character references, indentation and a missing cookie banner change nothing."""
    page = samples.page(seed, "divs", token="77aa")
    variants = {
        "crlf": page.replace("\n", "\r\n"),
        "char-refs": page.encode("ascii", "xmlcharrefreplace").decode("ascii"),
        "indented": re.sub(r">\s*<", ">\n      <", page),
        "no-banner": samples.render_page(samples.seed_document(seed), "plain", token="x1", banner=False),
        "nbsp": page.replace("</strong></div>", "&nbsp;</strong></div>").replace(". ", ".&nbsp; "),
    }
    for name, html in variants.items():
        got = _md(html)
        assert got == reference[seed], f"{seed}/{name}:\n{_diff(reference[seed], got)}"


@pytest.mark.parametrize("seed", list(samples.SEEDS))
def test_chrome_is_dropped(seed: str, reference: dict[str, str]) -> None:
    md = reference[seed]
    for chrome in ("Accept all", "We use cookies to improve", "All rights reserved", "Build ", "Pricing", "Careers"):
        assert chrome not in md
    plain = _md(samples.page(seed, "plain"))
    assert "Help topic" not in plain


def test_same_input_gives_identical_output_in_a_fresh_process(reference: dict[str, str]) -> None:
    """No dependence on hash seeds, caches or state left by earlier calls."""
    code = (
        "import json,sys\n"
        "from watcher import samples\n"
        "from watcher.normalize import normalize, to_markdown\n"
        "out = {n: to_markdown(normalize(samples.page(n, 'wrapped'))) for n in samples.SEEDS}\n"
        "sys.stdout.write(json.dumps(out))\n"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == reference
    for name in samples.SEEDS:  # and again in this process, after everything above
        assert _md(samples.page(name, "semantic")) == reference[name]


@pytest.mark.parametrize("seed", list(samples.SEEDS))
def test_headings_found_on_every_seed(seed: str) -> None:
    from_text = samples.seed_document(seed)
    from_html = normalize(samples.page(seed, "plain"))  # no heading tags at all
    for doc in (from_text, from_html):
        found = _headings(doc)
        for heading, parent in HEADINGS[seed].items():
            assert heading in found, f"{seed}: {heading!r} not found among {list(found)}"
            path = found[heading]
            assert path[-1] == heading
            if parent is None:
                assert len(path) == 1, (heading, path)
            else:
                assert path[:-1] == (parent,), (heading, path)
        for line in NOT_HEADINGS[seed]:
            assert line not in found, f"{seed}: {line!r} taken for a heading"
            assert line in doc.text  # still there, as text


@pytest.mark.parametrize("seed", list(samples.SEEDS))
def test_lang_and_title(seed: str) -> None:
    doc = normalize(samples.page(seed, "divs"))
    assert doc.lang == ("fr" if seed == "cantrex" else "en")
    assert doc.title  # from <title>
    assert samples.seed_document(seed).lang == doc.lang


@pytest.mark.parametrize("seed", list(samples.SEEDS))
def test_markdown_round_trip(seed: str, reference: dict[str, str]) -> None:
    md = reference[seed]
    assert detect_format(md) == "markdown"
    again = to_markdown(normalize(md, fmt="markdown"))
    assert again == md, _diff(md, again)
    assert to_markdown(normalize(md)) == md  # detected as Markdown too
    text_md = to_markdown(samples.seed_document(seed))
    assert to_markdown(normalize(text_md, fmt="markdown")) == text_md


def test_markdown_escapes_survive_the_round_trip() -> None:
    page = (
        "<html><body><main><h2>1. Scope *and* [terms]</h2>"
        "<p>3. This line starts like a list item.</p><p># not a heading</p><p>- not an item</p>"
        "<p>Use a_b and _emphasis_ and `code` and &lt;b&gt; literally; 5 &gt; 3 &amp; 2 | 4.</p>"
        "<ul><li>first</li><li>second <b>bold</b></li></ul>"
        "<table><tr><th>Data</th><th>Period</th></tr><tr><td>logs | raw</td><td>30 days</td></tr></table>"
        "<p>After the table, a closing sentence with enough words to be body text.</p>"
        "</main></body></html>"
    )
    doc = normalize(page)
    md = to_markdown(doc)
    back = normalize(md, fmt="markdown")
    assert document_to_json(back)["sections"] == document_to_json(doc)["sections"]
    assert to_markdown(back) == md


def test_headings_without_heading_tags() -> None:
    body = "We collect the data you give us when you create an account and when you contact us."
    page = (
        "<html><body><div class='c'>"
        f"<p><b>Data we collect</b></p><p>{body}</p>"
        f"<p>2. Sharing</p><p>{body}</p>"
        f"<p>2.1 Service providers</p><p>{body}</p>"
        f"<p>Article 3</p><p>{body}</p>"
        f"<div class='title-h2'>Retention</div><p>{body}</p>"
        "</div></body></html>"
    )
    doc = normalize(page)
    paths = {s.heading: s.path for s in doc.sections if s.heading}
    assert paths == {
        "Data we collect": ("Data we collect",),
        "2. Sharing": ("2. Sharing",),
        "2.1 Service providers": ("2. Sharing", "2.1 Service providers"),
        "Article 3": ("Article 3",),
        "Retention": ("Retention",),
    }
    assert all(s.blocks == [s.blocks[0]] and s.blocks[0].text == body for s in doc.sections if s.heading)


def test_title_lines_on_a_page_with_no_heading_markup() -> None:
    body = "We collect the data you give us when you create an account and when you contact us."
    page = (
        "<html><body><div class='c'>"
        f"<p>Information We Collect</p><p>{body}</p>"
        f"<p>How Long We Keep It</p><p>{body}</p>"
        f"<p>We collect, including but not limited to:</p><p>Names and addresses</p><p>3. Contact</p><p>{body}</p>"
        "<p>By email: privacy@example.org</p><p>Or write to us at the address given on the home page, please.</p>"
        "</div></body></html>"
    )
    doc = normalize(page)
    assert [s.heading for s in doc.sections if s.heading] == [
        "Information We Collect",
        "How Long We Keep It",
        "3. Contact",
    ]


def test_whitespace_nbsp_and_wrapping_are_normalized() -> None:
    a = "<html><body><main><h1>Privacy</h1><p>We keep your data for 30 days.</p></main></body></html>"
    b = (
        "<html><body><main>\n  <h1>\n    Privacy\n  </h1>\n  <p>We&nbsp;keep   your\n     data\tfor"
        "&#160;30\u00a0days.\u200b</p>\n</main></body></html>"
    )
    assert _md(a) == _md(b) == "# Privacy\n\nWe keep your data for 30 days.\n"


def test_hidden_elements_scripts_and_banners_are_dropped() -> None:
    page = (
        "<html><head><style>p{}</style></head><body>"
        "<div class='cookie-banner'>We use cookies. <button>OK</button></div>"
        "<nav><a href='/'>Home</a> <a href='/a'>About</a></nav>"
        "<main><h1>Privacy</h1><p>Visible policy text that users read on this page.</p>"
        "<p style='display:none'>Hidden text nobody sees.</p><p hidden>Also hidden.</p>"
        "<script>var secret = 'x';</script><noscript>Enable JS</noscript>"
        "<form><label>Email</label><input name='e'><button>Subscribe</button></form></main>"
        "<footer>© 2026 Example</footer></body></html>"
    )
    md = _md(page)
    assert md == "# Privacy\n\nVisible policy text that users read on this page.\n"


def test_selector_and_remove() -> None:
    page = (
        "<html><body><div id='a'><p>Not this block of perfectly ordinary text, which is long.</p></div>"
        "<div id='policy'><h2>Rights</h2><p>You may ask for a copy of your data at any time.</p>"
        "<p class='edit'>[edit this section]</p></div></body></html>"
    )
    md = _md(page, selector="#policy", remove=[".edit"])
    assert md == "## Rights\n\nYou may ask for a copy of your data at any time.\n"


def test_detect_format() -> None:
    assert detect_format(samples.page("wesgar")) == "html"
    assert detect_format("# Title\n\n## Part\n\nText with [a link](https://x.org).\n") == "markdown"
    assert detect_format("Privacy Policy\n\nWe collect data.\n") == "text"


def test_collapsed_accordion_panels_are_policy_text_but_hidden_modals_are_not() -> None:
    """Panels hidden until a toggle opens them hold the policy; a hidden newsletter modal does not."""
    body = (
        "We keep your personal information only as long as we need it to provide the service, "
        "and we delete it within thirty days after you close your account, unless the law requires "
        "us to keep it longer for tax or accounting purposes."
    )
    page = f"""<html><body><main>
      <h1>Privacy Policy</h1>
      <p>This policy explains what we collect, why we collect it and the choices you have about it.</p>
      <h2><button aria-expanded="false" aria-controls="p1">Retention</button></h2>
      <div id="p1" style="display:none"><p>{body}</p></div>
      <h2><button aria-expanded="false">Sharing</button></h2>
      <div class="accordion-panel" hidden><p>We never sell your personal information to anyone, and we share it
      only with the service providers that host our servers, under contracts that forbid any other use.</p></div>
      <div class="modal" style="display:none"><p>Sign up for our newsletter to get product news, special offers
      and early access to new features; we send at most one email a week and you can unsubscribe at any time,
      and by signing up you agree to receive marketing messages from us.</p></div>
    </main></body></html>"""
    text = to_markdown(normalize(page))
    assert "thirty days after you close your account" in text
    assert "We never sell your personal information" in text
    assert "newsletter" not in text
