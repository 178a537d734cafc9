"""`evpipe review --format html` (issue 14): one self-contained page with the review's figures,
opened in a real headless Chromium; user text stays text."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

import pytest
from browser import cli, env_for, launch
from playwright.sync_api import sync_playwright

from evpipe.models.report_html import LABEL_CHAR, _axis, history_svg

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("report-home")


@pytest.fixture(scope="module")
def report(home):
    """The demo pipeline plus a prospect with a hostile name (due today, so it is listed), its
    HTML report, and the same review as JSON."""
    env = env_for(home)
    db = home / "report.db"
    cli(env, db, "seed")
    cli(
        env,
        db,
        "add",
        HOSTILE,
        "--value",
        "12345.67",
        "--stage",
        "Enquiry",
        "--follow-up",
        "today",
        "--owner",
        "<b>x</b>",
    )
    page = home / "week.html"
    page.write_text(cli(env, db, "review", "--format", "html", "--since", "7d"), encoding="utf-8")
    return page, json.loads(cli(env, db, "review", "--format", "json", "--since", "7d"))


def shown(amount: str, *, signed: bool = False) -> str:
    """A JSON amount as the page shows it: to the cent, half up, with thousands separators."""
    d = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{abs(d):,.2f}"
    return ("-" if d < 0 else "+" if signed and d > 0 else "") + text


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_file_stands_alone(report):
    page, _ = report
    html = page.read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(html)
    names = [t for t, _ in parser.tags]
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    assert all(not k.startswith("on") for _, attrs in parser.tags for k in attrs)  # no event handlers
    assert not re.search(r"(src|href)\s*=", html) and "url(" not in html and "@import" not in html
    assert names.count("svg") == 2  # the EV history and the forecast, drawn inline
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html  # a phone
    assert "@media print" in html  # paper
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_the_axis_is_round_and_labels_are_exact():
    top, ticks = _axis(18_756_040)  # 187,560.40
    assert top >= 18_756_040 and ticks[0] == 0 and ticks[-1] == top
    assert len({b - a for a, b in zip(ticks, ticks[1:])}) == 1  # evenly spaced
    svg = history_svg([(date(2026, 11, 1), 40_465_050, 187_560_400_000)])
    assert "EV 187,560.40" in svg and ">200,000<" in svg and ">600,000<" in svg  # TV 404,650.50 fits under the top


def test_a_pipeline_of_billions_keeps_its_axis_labels_whole():
    """The plot started 86 units in whatever the labels: '10,000,000,000' showed as ',000,000,000'."""
    svg = history_svg([(date(2026, 11, 1), 999_999_999_999_00, 250_000_000_000_000_000)])
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="end">([\d,]+)</text>', svg)
    assert ("1,000,000,000,000" in [text for _, text in labels]) and len(labels) >= 3
    assert all(float(x) >= len(text) * LABEL_CHAR for x, text in labels)  # each label fits left of its end
    plot_start = re.search(r'<line x1="([\d.]+)"', svg)
    assert plot_start is not None and all(float(plot_start[1]) > float(x) for x, _ in labels)
    small = history_svg([(date(2026, 11, 1), 40_465_050, 187_560_400_000)])
    assert '<line x1="86"' in small  # a small pipeline's charts are as they were


def test_the_browser_shows_the_reviews_figures_and_the_hostile_name_as_text(report, home):
    page_file, data = report
    with sync_playwright() as p:
        context = launch(p, home / "chromium-report")
        try:
            page = context.new_page()
            dialogs, requests = [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            text = page.inner_text("body")
            bridge = data["bridge"]
            for figure in (bridge["ev"]["start"], bridge["ev"]["end"], bridge["tv"]["start"], bridge["tv"]["end"]):
                assert shown(figure) in text, figure
            assert shown(bridge["ev"]["change"], signed=True) in text
            assert shown(bridge["tv"]["change"], signed=True) in text
            for category, ev in bridge["ev"]["terms"].items():
                assert shown(ev, signed=True) in text, category
            for item in data["focus"]:
                assert item["name"] in text
            # the hostile name is shown as text: in the bridge and in the follow-ups due this week
            assert text.count(HOSTILE) >= 2
            assert page.locator("script").count() == 0
            page.wait_for_timeout(300)
            assert dialogs == []  # no alert fired
            assert requests == [page_file.as_uri()]  # nothing else was fetched
            # a phone: nothing wider than the screen but the tables that scroll in their box
            page.set_viewport_size({"width": 375, "height": 700})
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
        finally:
            context.close()
