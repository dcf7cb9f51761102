"""report.html: escaped, self-contained, and working in a real (headless) Chromium.

The browser test needs Playwright's Python package and a Chromium (Debian's, from
``scripts/setup_browser.sh``; $PERSAM_CHROMIUM names another). Without them it is skipped locally and
FAILS under CI (``$CI`` set), so that CI never passes without having looked at the page.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image

from persam.exports import write_exports
from persam.exports.report import Card, render_page

from ..browser import launch_chromium, unavailable
from .conftest import WEIRD

REPO = Path(__file__).resolve().parents[2]
BY_SCORE = ["cat/00", "shoes/02", f"cat/{WEIRD}", "duck/01", "old/00", "duck/02"]
BY_NAME = ["cat/00", f"cat/{WEIRD}", "duck/01", "duck/02", "old/00", "shoes/02"]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.cards: list[dict[str, str | None]] = []
        self.srcs: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "article":
            self.cards.append(a)
        if tag in ("img", "script", "link") and (a.get("src") or a.get("href")):
            self.srcs.append(a.get("src") or a.get("href"))

    def handle_data(self, data):
        self.texts.append(data)


def test_strings_are_escaped(fake_run):
    page = write_exports(fake_run.out, ["report"])["report"].read_text(encoding="utf-8")
    assert "<ird>" not in page and "we&lt;ird&gt; &amp; &quot;q&quot; &#x27;x&#x27;.jpg" in page
    parsed = _Collect()
    parsed.feed(page)
    assert "ird" not in parsed.tags
    assert [c["data-stem"] for c in parsed.cards].count(f"cat/{WEIRD}") == 1
    assert f"{WEIRD}.jpg" in "".join(parsed.texts)
    assert all(not s.startswith(("http:", "https:", "//")) for s in parsed.srcs)  # nothing from the internet
    assert "loading=\"lazy\"" in page


def test_hostile_values_cannot_break_out():
    evil = '</script><script>alert(1)</script>{{cards}}"><img src=x onerror=alert(2)>'
    card = Card(name=evil, stem=f"a/{evil}", present=True, score=0.5, concepts=[evil], thumb="t.jpg",
                thumb_size=(4, 3), full="f.jpg", links=[(evil, "x.png")], n_instances=1)
    page = render_page([card], [evil], title=evil)
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.tags.count("script") == 1  # the page's own
    assert parsed.tags.count("img") == 2  # the thumbnail and the viewer's
    assert parsed.tags.count("article") == 1  # "{{cards}}" in a name is not substituted again
    assert [c["data-name"] for c in parsed.cards] == [evil]


def test_a_photo_rejected_by_a_negative_example_says_why():
    from persam.exports.report import _rejected_note

    assert _rejected_note({"present": False, "rejected_by": "IMG_7.jpg"}) == "looks like IMG_7.jpg, marked not yours"
    several = {"present": False, "concepts": {"rex": {"rejected_by": "a.jpg"}, "tom": {"present": False}}}
    assert _rejected_note(several) == "looks like a.jpg, marked not yours"
    assert _rejected_note({"present": False, "score": 0.2}) == ""
    card = Card(name="x.jpg", stem="x", present=False, score=0.8, concepts=[], thumb=None, thumb_size=(4, 3),
                full="f.jpg", note="looks like <b>.jpg, marked not yours")
    page = render_page([card], [])
    assert '<div class="why">looks like &lt;b&gt;.jpg, marked not yours</div>' in page
    assert 'class="why"' not in render_page([Card(name="y.jpg", stem="y", present=False, score=0.1, concepts=[],
                                                   thumb=None, thumb_size=(4, 3), full="f.jpg")], [])


def test_thumbnails_are_small_and_reused(fake_run):
    write_exports(fake_run.out, ["report"])
    thumbs = sorted((fake_run.out / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == len(fake_run.labels)
    for t in thumbs:
        with Image.open(t) as im:
            assert max(im.size) <= 320
    before = {t: t.stat().st_mtime_ns for t in thumbs}
    write_exports(fake_run.out, ["report"])
    assert {t: t.stat().st_mtime_ns for t in thumbs} == before


# ------------------------------------------------------------------------------------------ browser
def _unavailable(reason: str):
    unavailable(reason, "report's browser test")


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium("report's browser test")


def test_no_browser_fails_under_ci_and_skips_locally(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI"):
        _unavailable("testing")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no headless browser"):
        _unavailable("testing")


def _visible(page) -> list[str]:
    return page.eval_on_selector_all(".card:not([hidden])", "cs => cs.map(c => c.dataset.stem)")


def test_report_in_chromium(fake_run, browser):
    path = write_exports(fake_run.out, ["cutouts", "report"])["report"]
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")

    # every card is there, and every thumbnail really loads (scroll to each: they are lazy)
    assert page.locator(".card").count() == 6
    for card in page.locator(".card").all():
        card.scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('.card img')].every(i => i.complete)")
    widths = page.eval_on_selector_all(".card img", "is => is.map(i => i.naturalWidth)")
    assert len(widths) == 6 and all(w > 0 for w in widths), widths
    assert page.locator("#n-all").inner_text() == "6" and page.locator("#n-found").inner_text() == "5"
    assert page.locator("#n-missing").inner_text() == "1" and page.locator("#n-concepts").inner_text() == "5"
    weird = page.locator(".card", has_text=f"{WEIRD}.jpg")
    assert weird.count() == 1 and page.locator("ird").count() == 0

    # sorting
    assert _visible(page) == BY_SCORE  # best score first, by default
    page.select_option("#sort", "name-asc")
    assert _visible(page) == BY_NAME
    page.select_option("#sort", "name-desc")
    assert _visible(page) == BY_NAME[::-1]
    page.select_option("#sort", "score-asc")
    assert _visible(page) == BY_SCORE[::-1]
    page.select_option("#sort", "score-desc")

    # filtering
    page.click("button[data-show=missing]")
    assert _visible(page) == ["duck/02"]
    assert page.locator(".card[data-stem='duck/02'] .badge").inner_text() == "Not found"
    page.click("button[data-show=found]")
    assert _visible(page) == [s for s in BY_SCORE if s != "duck/02"]
    page.click("button[data-show=all]")
    page.select_option("#concept", "cat")
    assert _visible(page) == ["cat/00", f"cat/{WEIRD}"]
    page.select_option("#concept", "ball")
    assert _visible(page) == ["shoes/02"]
    page.select_option("#concept", "")
    page.fill("#search", "DUCK")
    assert _visible(page) == ["duck/01", "duck/02"]
    page.fill("#search", "nothing like this")
    assert _visible(page) == [] and page.locator("#empty").is_visible()
    page.fill("#search", "")
    assert page.locator("#shown").inner_text() == "Showing 6 of 6"

    # a click shows the full overlay, with working links; Escape closes it
    weird.locator(".thumb").click()
    assert page.locator("#viewer").is_visible()
    page.wait_for_function("document.getElementById('v-img').complete")
    assert page.eval_on_selector("#v-img", "i => i.naturalWidth") > 0
    assert page.locator("#v-name").inner_text() == f"{WEIRD}.jpg"
    hrefs = page.eval_on_selector_all("#v-links a", "as => as.map(a => a.href)")
    assert any("_overlay.jpg" in h for h in hrefs) and any("/cutouts/" in h for h in hrefs)
    for href in hrefs:  # every link points at a file that exists
        assert Path(unquote(urlparse(href).path)).is_file(), href
    page.keyboard.press("Escape")
    assert not page.locator("#viewer").is_visible()
    if os.environ.get("PERSAM_SCREENSHOTS") == "1":
        page.mouse.move(1, 1)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(REPO / "docs" / "report.png"))
    assert errors == []
    page.close()
