"""Page chrome that comes and goes around a policy never makes a material change.

Real monitors alert on every byte of chrome; watcher must not. Each kind of chrome real policy
pages carry is injected into the seed pages (every layout) at the top of the body and at both
ends of the policy container, and the page is compared with the plain one.
"""

from __future__ import annotations

import pytest
from lxml import etree
from lxml import html as lxhtml

from watcher import samples
from watcher.classify import classify
from watcher.normalize import normalize

CHROME = {
    "cookie banner": '<div id="onetrust-banner-sdk" class="ot-sdk-container"><p>We use cookies and similar '
    "technologies to improve your experience, analyse traffic and personalise ads. You can accept all cookies or "
    'manage your preferences.</p><button>Accept all</button><button>Reject all</button><a href="/c">Settings</a></div>',
    "menu": '<nav class="site-nav"><ul><li><a href="/a">Products</a></li><li><a href="/b">New: Assistant 5.6</a>'
    '</li><li><a href="/c">Pricing</a></li></ul></nav>',
    "footer": '<footer><p>© 2027 Example Corp. All rights reserved.</p><a href="/t">Terms</a></footer>',
    "trace id": '<div class="trace"><p>This is the Trace Id: 00-9f3c2a7b8d1e4f5a6b7c8d9e0f1a2b3c-01</p></div>',
    "related links": '<aside class="related-articles"><h3>Related articles</h3><ul><li><a href="/x">How to delete '
    'your account</a></li><li><a href="/y">Export your data</a></li></ul></aside>',
    "feedback": '<div class="article-feedback"><p>Was this article helpful?</p><button>Yes</button><button>No'
    "</button></div>",
    "breadcrumbs": '<div class="breadcrumbs"><a href="/">Home</a> › <a href="/legal">Legal</a> › <span>Privacy'
    "</span></div>",
    "share bar": '<div class="share-buttons"><a href="#">Share on X</a><a href="#">Copy link</a></div>',
    "hidden modal": '<div class="modal" style="display:none"><h2>Stay in the loop</h2><p>Sign up for our newsletter '
    "to get product news, special offers and early access to new features. We send at most one email per week, and "
    "you can unsubscribe at any time using the link at the bottom of every message.</p></div>",
    "hidden menu": '<div hidden><ul><li><a href="/a">Products</a></li><li><a href="/b">Solutions for enterprise '
    "teams</a></li></ul></div>",
}
WHERE = ("body start", "container start", "container end")


def _container(root: etree._Element) -> etree._Element:
    for xpath in ("//main", "//article", "//*[contains(@class, 'policy-body')]", "//*[@class='content']", "//body"):
        found = root.xpath(xpath)
        if found:
            return found[0]
    raise AssertionError("no container")


def _inject(page: str, fragment: str, where: str) -> str:
    root = lxhtml.document_fromstring(page)
    el = lxhtml.fragment_fromstring(fragment)
    target = root.find("body") if where == "body start" else _container(root)
    if where == "container end":
        target.append(el)
    else:
        target.insert(0, el)
    return etree.tostring(root, encoding="unicode", method="html")


@pytest.mark.parametrize("layout", samples.LAYOUTS)
@pytest.mark.parametrize("name", list(samples.SEEDS))
def test_chrome_never_makes_a_material_change(name: str, layout: str) -> None:
    page = samples.page(name, layout, token="a1")
    base = normalize(page)
    for kind, fragment in CHROME.items():
        for where in WHERE:
            noisy = normalize(_inject(samples.page(name, layout, token="b2"), fragment, where))
            change = classify(base, noisy)
            assert not change.material, f"{kind} at {where}: {change.summary}"
