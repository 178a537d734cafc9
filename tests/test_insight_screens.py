"""The insight screens (2 Focus, 3 Forecast, 4 Trend, 5 Sighting-in, 6 Review), driven by their keys
at 80x24 against a temporary database; the database and the screen are both checked."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from apphelpers import notices_shown as notices
from apphelpers import screen_text, settle, until
from textual.widgets import DataTable

from evpipe.models import history
from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.values import format_money
from evpipe.tui.app import EvpipeApp
from evpipe.tui.dialogs import ConfirmDialog, TextPrompt

HOSTILE = ["Acme [Beta]", "[/x]", "x [/", "[@click=app.quit]hi[/]"]


@pytest.fixture
def data(engine):
    """The default ladder (Suspect 5, Enquiry 10, Quote sent 25, Date held 50, Deposit paid 80).
    Twelve closed deals from Quote sent (9 won, 3 lost) for sighting in; open ones with hostile names;
    a week of work."""
    s = Store(engine, who="tester")
    for i in range(12):
        p = s.add(f"closed {i}", "1000", "Quote sent", month="2026-11", at=datetime(2026, 10, 1, 9)).prospect
        s.move(p.id, "won" if i < 9 else "lost", at=datetime(2026, 11, 10, 9))
    s.add(
        "[@click=app.quit]hi[/]",
        "10000",
        "Quote sent",
        month="2026-12",
        follow_up="2026-11-20",
        at=datetime(2026, 10, 5, 9),
    )
    s.add("Acme [Beta]", "4000", "Enquiry", month="2027-01", follow_up="2026-11-30", at=datetime(2026, 11, 24, 9))
    s.add("[/x]", "2000", "Suspect", month="2027-01", at=datetime(2026, 10, 1, 9))
    s.add("x [/", "6000", "Date held", month="2026-12", at=datetime(2026, 11, 26, 9))
    s.move("x [/", "Deposit paid", at=datetime(2026, 11, 26, 10))
    history.backfill(engine)
    history.record_snapshot(engine)
    return engine


def held(monkeypatch, where, name: str):
    """Hold the read `where.name` (as a worker makes it) until the event returned is set: a
    million prospects' read, made slow on purpose."""
    import threading

    gate = threading.Event()
    read = getattr(where, name)

    def late(*args, **kwargs):
        gate.wait(10)
        return read(*args, **kwargs)

    monkeypatch.setattr(where, name, late)
    return gate


async def test_each_screen_opens_by_its_number(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key, cls, words in (
            ("2", "FocusScreen", "Focus"),
            ("3", "ForecastScreen", "Forecast"),
            ("4", "TrendScreen", "TV, EV and EV/TV"),
            ("5", "CalibrateScreen", "Sighting in"),
            ("6", "ReviewScreen", "Review"),
        ):
            await pilot.press(key)
            await settle(pilot)
            assert type(app.screen).__name__ == cls
            assert words in screen_text(app)
            # at 80 columns the tabs close up, and the other tabs' titles are cut, to leave room for
            # the database's name (issue 9); every number stays, and the current tab's whole title
            top = screen_text(app).splitlines()[0]
            assert all(f"{spec.key} " in top for spec in app.screen_specs)
            assert f"{key} {next(s.title for s in app.screen_specs if s.key == key)}" in top
            assert screen_text(app).splitlines()[0].rstrip().endswith((" pipeline", " pipeline.db"))  # the name stays


async def test_a_screen_reads_once_as_it_opens_and_again_when_shown_again(data, monkeypatch):
    """Each of these screens read twice as it opened (once as it mounted, once as it was first
    shown): two whole reads side by side, as a thread worker is not stopped (a million prospects'
    review took twice as long). It reads once, and again each time it is shown again."""
    from evpipe.tui.screens import activity, calibrate, focus, forecast, review, trend

    reads: list[str] = []
    for module, cls in (
        (focus, "FocusScreen"),
        (forecast, "ForecastScreen"),
        (trend, "TrendScreen"),
        (calibrate, "CalibrateScreen"),
        (review, "ReviewScreen"),
        (activity, "ActivityScreen"),
    ):
        screen_cls = getattr(module, cls)
        real = screen_cls.load

        def counted(self, _real=real, _name=cls):
            reads.append(_name)
            return _real(self)

        monkeypatch.setattr(screen_cls, "load", counted)
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key in "234569":
            await pilot.press(key)
            await settle(pilot)
        assert sorted(reads) == sorted(
            ["FocusScreen", "ForecastScreen", "TrendScreen", "CalibrateScreen", "ReviewScreen", "ActivityScreen"]
        )
        reads.clear()
        await pilot.press("6")  # shown again: read again
        await settle(pilot)
        assert reads == ["ReviewScreen"]


async def test_the_stages_screen_reads_once_as_it_opens(data, monkeypatch):
    """The stages screen read three times as it opened (its mount, then each of the two
    "resumed" of its first showing); once now, and again when it is shown again."""
    from evpipe.tui.screens.stages import StagesScreen

    reads: list[int] = []
    real = StagesScreen._load

    def counted(self, generation):
        reads.append(generation)
        return real(self, generation)

    monkeypatch.setattr(StagesScreen, "_load", counted)
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        assert type(app.screen).__name__ == "StagesScreen" and len(reads) == 1
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        assert len(reads) == 2


# ---------------------------------------------------------------- focus


async def test_focus_list_reasons_and_stage_keys(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert [i.name for i in screen.items] == ["[@click=app.quit]hi[/]", "Acme [Beta]", "[/x]", "x [/"]
        text = screen_text(app)
        for name in HOSTILE:
            assert name in text
        assert "overdue 7 days" in text and "due Mon 30 Nov" in text and "stale 57 days" in text
        assert "1 overdue · 1 due this week · 2 stale" in text  # the overdue one is stale too
        before = kpis(data)
        # > advances the top one: Quote sent -> Date held, EV + 10,000 x 25%
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert Store(data).get("[@click=app.quit]hi[/]").stage_name == "Date held"
        after = kpis(data)
        assert after.ev_micros - before.ev_micros == 10_000_00 * 2500
        assert screen.header.texts["kpi-ev"].startswith(f"EV {format_money(after.ev_micros, micros=True)}")
        assert "[@click=app.quit]hi[/]: Quote sent -> Date held, EV +2,500" in notices(app)
        # the pipeline screen's header heard about it too
        assert app.pipeline.kpi_all == after
        # u undoes it; , moves back
        await pilot.press("u")
        await settle(pilot)
        assert Store(data).get("[@click=app.quit]hi[/]").stage_name == "Quote sent"
        assert screen.kpi == before
        await pilot.press("comma")
        await settle(pilot)
        assert Store(data).get("[@click=app.quit]hi[/]").stage_name == "Enquiry"
        # w wins the one under the cursor (the cursor stays on the same prospect)
        assert screen.items[screen.table.cursor_row].name == "[@click=app.quit]hi[/]"
        await pilot.press("w")
        await settle(pilot)
        assert Store(data).get("[@click=app.quit]hi[/]").stage_kind == "won"
        assert "[@click=app.quit]hi[/]" not in [i.name for i in screen.items]
        # l asks why, then loses it
        name = screen.items[screen.table.cursor_row].name
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"budget")
        await pilot.press("enter")
        await settle(pilot)
        lost = Store(data).get(name)
        assert lost.stage_kind == "lost" and lost.lost_reason == "budget"
        assert screen.kpi == kpis(data)


# ---------------------------------------------------------------- forecast


async def test_forecast_table_and_a_months_prospects(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#forecast-table", DataTable)
        assert table.row_count == 25  # 24 months and the total
        nov = screen.fc.months[12]
        assert nov.month == "2026-11" and nov.actual_cents == 9 * 1000_00
        assert nov.frozen_ev_micros == 12 * 1000_00 * 2500  # 12 x 1,000 at 25% on 1 Nov
        assert table.cursor_row == 12  # the current month
        text = screen_text(app)
        assert "Nov 2026" in text and "9,000" in text and "WAPE" in text
        await pilot.press("down")  # December
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "MonthProspects"
        text = screen_text(app)
        assert "Dec 2026" in text and "[@click=app.quit]hi[/]" in text and "x [/" in text
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "ForecastScreen"
        await pilot.press("c")
        assert not screen.query_one("#forecast-chart").display


# ---------------------------------------------------------------- trend


async def test_trend_ranges(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert screen.period == "12w"
        assert screen.points[-1].taken_on == date(2026, 11, 27) and screen.points[-1].kpi == kpis(data)
        assert all(p.taken_on >= date(2026, 9, 4) for p in screen.points)
        text = screen_text(app)
        assert "TV and EV" in text and "EV/TV %" in text
        assert "EV/TV " in text and "readings" in text
        await pilot.press("e")
        await settle(pilot)
        assert screen.period == "all" and screen.points[0].taken_on == date(2026, 10, 2)  # the first weekly point
        await pilot.press("y")
        await settle(pilot)
        assert "over 1 year" in screen_text(app)


# ---------------------------------------------------------------- sighting in


async def test_sighting_in_accept_one_with_confirmation(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        rows = {r.stage: r for r in screen.cal.stages}
        # Quote sent: 9 won, 3 lost: 25% is outside the interval; (9 + 2.5) / 22 -> 52%.
        assert (rows["Quote sent"].won, rows["Quote sent"].lost) == (9, 3)
        assert rows["Quote sent"].suggested_bp == 5200
        text = screen_text(app)
        assert "Quote sent" in text and "52%" in text and "Brier" in text
        await pilot.press("down", "down")  # Quote sent
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # no: nothing changes
        await settle(pilot)
        assert Store(data).stage("Quote sent").probability_bp == 2500
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert Store(data).stage("Quote sent").probability_bp == 5200
        assert app.pipeline.kpi_all == kpis(data)
        # the window: outcomes of the last 24 months (still all of them here)
        await pilot.press("m")
        await settle(pilot)
        assert screen.window == 24 and screen.cal.months == 24


async def test_sighting_in_keeps_its_figures_on_screen_beside_a_long_stage_name(data):
    """A stage name of 43 characters (80 are allowed) pushed the 95% interval, Next and Suggest
    columns off an 80-column screen, and the column stayed that wide after a shorter rename."""
    long = "Quote sent to the decision maker's office"
    Store(data).update_stage("Quote sent", name=long)
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        lines = screen_text(app).splitlines()
        assert any("95% interval" in line and "Suggest" in line for line in lines)
        row = next(line for line in lines if "Quote sent to" in line)
        assert row.rstrip().endswith("52%")  # its suggestion, in full
        Store(data).update_stage(long, name="Quote")
        app.screen.load()
        await settle(pilot)
        row = next(line for line in screen_text(app).splitlines() if " Quote " in line)
        assert row.startswith("  Quote         25%")  # as wide as Deposit paid, the longest name


async def test_sighting_in_does_not_overwrite_a_probability_a_colleague_set_meanwhile(data):
    """The suggestion was read against 25%; priya set 30% while the question was open, and yes
    wrote 52% over hers. Refused now; hers stays."""
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("down", "down", "a")  # Quote sent: 25% -> 52%
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        Store(data, who="priya").set_probability("Quote sent", "30")
        await pilot.press("y")
        await settle(pilot)
        assert Store(data).stage("Quote sent").probability_bp == 3000
        assert any("priya set it to 30%" in n for n in notices(app)), notices(app)


async def test_sighting_in_accept_all(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        suggested = {r.stage: r.suggested_bp for r in app.screen.cal.stages if r.suggested_bp is not None}
        assert len(suggested) >= 2
        await pilot.press("A")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        store = Store(data)
        assert {name: store.stage(name).probability_bp for name in suggested} == suggested
        await pilot.press("u")  # undo reverses the last one
        await settle(pilot)
        last = list(suggested)[-1]
        assert store.stage(last).probability_bp != suggested[last]


# ---------------------------------------------------------------- review


async def test_review_bridge_terms_add_up_as_shown(engine):
    """Two terms of 0.125 (1 at 12.5%, then 1 more) read +0.13 and +0.13 under a change of +0.25
    on the Review screen, while `evpipe review` read +0.13 and +0.12: the screen's terms now add up
    to the change as shown, the same as the command's."""
    s = Store(engine, who="tester")
    s.set_probability("Suspect", "12.5", at=datetime(2026, 11, 24, 9))
    s.add("Small", "1", "Suspect", month="2027-01", at=datetime(2026, 11, 24, 9))
    s.edit("Small", value="2", at=datetime(2026, 11, 24, 10))
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        rows = {line.split()[0]: line.split() for line in screen_text(app).splitlines() if line.strip()}
        assert rows["New"][2] == "+0.13" and rows["Value"][2] == "+0.12", rows
        assert rows["Change"][1] == "+0.25"


async def test_review_bridge_terms_and_period(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        screen = app.screen
        r = screen.review
        assert [t.category for t in r.terms] == ["new", "advance"]
        assert sum(t.d_ev_micros for t in r.terms) == r.end.ev_micros - r.start.ev_micros
        text = screen_text(app)
        assert "New prospects" in text and "Advances" in text and "Change" in text
        assert "Overdue" in text and "[@click=app.quit]hi[/]" in text
        # enter on a term lists the prospects behind it
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "TermProspects"
        assert "Acme [Beta]" in screen_text(app) and "x [/" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        # s chooses the period
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("end", "backspace", "backspace", *"2026-11-01", "enter")
        await settle(pilot)
        assert screen.since == "2026-11-01"
        assert [t.category for t in screen.review.terms] == ["new", "advance", "win", "lose"]
        assert "Sun 01 Nov – Fri 27 Nov 2026" in screen_text(app)
        # a period from another year says both years: "Fri 24 Oct – Fri 27 Nov 2026" read as five
        # weeks, not thirteen months
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("end", *["backspace"] * 10, *"400d", "enter")
        await settle(pilot)
        assert "Fri 24 Oct 2025 – Fri 27 Nov 2026" in screen_text(app)
        # and its title still fits the line, keys and all (it lost "(s: period, r: rep)" off its end)
        title = next(line for line in screen_text(app).splitlines() if " Review  " in line)
        assert "(s: period, r: rep)" in title, title
        # a bad period is refused in the prompt, with the reason
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("end", *["backspace"] * 10, *"someday", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TextPrompt)
        assert "since" in str(app.screen.query_one("#error").render())


async def test_review_keeps_ev_tv_whole_at_80_columns(tmp_path):
    """The demo's review line (EV in the hundreds of thousands, to the cent) is too long for 80
    columns: EV/TV goes on a line of its own, not split between its two figures; at 130 it fits."""
    import re

    from evpipe.models import open_db
    from evpipe.models.demo import seed_demo

    engine = open_db(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_demo(engine)
    app = EvpipeApp(str(engine.url), who="tester")
    whole = re.compile(r"EV/TV [\d.]+% → [\d.]+%")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        assert await until(app, pilot, lambda: "What moved EV" in screen_text(app))
        kpi_lines = [line for line in screen_text(app).splitlines() if "EV/TV" in line or " → " in line]
        assert any(whole.search(line) for line in kpi_lines), kpi_lines
        await pilot.resize_terminal(130, 30)
        await settle(pilot)
        line = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("EV "))
        assert whole.search(line) and "TV " in line, line


async def test_a_wider_terminal_widens_the_lists_and_shrinking_back_works(data):
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        assert "overdue follow-up (7 days)" in screen_text(app)
        await pilot.press("6")
        await settle(pilot)
        assert "overdue follow-up (7 days)" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert "Change" in screen_text(app) and "overdue follow-up (7 days)" in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        text = screen_text(app)
        assert "overdue 7 days" in text and "overdue follow-up" not in text


async def test_focus_keys_are_in_the_command_palette(tmp_path):
    """ctrl+p on the focus list finds its stage keys by name and runs them on the cursor's row."""
    from apphelpers import RecordingApp, press
    from apphelpers import settle as settle_app

    from evpipe.models import open_db
    from evpipe.models.store import Store
    from evpipe.tui.dialogs import TextPrompt
    from evpipe.tui.screens.focus import FocusScreen

    engine = open_db(f"sqlite:///{tmp_path / 'palette.db'}")
    Store(engine, who="tester").add("Overdue charter", "5000", "Enquiry", follow_up="2026-11-20")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle_app(app, pilot)
        await press(app, pilot, "2")
        assert isinstance(app.screen, FocusScreen)
        await press(app, pilot, "ctrl+p")
        for ch in "lost":
            await pilot.press(ch)
        await settle_app(app, pilot)
        await pilot.pause(0.3)
        await press(app, pilot, "enter")
        assert isinstance(app.screen, TextPrompt)  # the palette ran focus.lost: it asks why
    engine.dispose()


async def test_forecast_of_a_big_pipeline_shows_the_normal_range_and_counts_what_is_still_open(engine):
    """More than SIM_PROSPECTS uncertain prospects in a month: its range is the normal one, which the
    band under the table says in words (it once failed on the missing number of draws); a month
    that has ended with many still open names its biggest and counts the rest."""
    from sqlalchemy import insert, select

    from evpipe.models.forecast import STILL_OPEN_NAMED
    from evpipe.models.forecast_range import SIM_PROSPECTS
    from evpipe.models.tables import Prospect, table_of

    s = Store(engine, who="tester")
    s.add("Template", "100", "Enquiry", month="2026-12", at=datetime(2026, 11, 2, 9))
    table = table_of(Prospect)
    with engine.connect() as conn:
        template = dict(conn.execute(select(table)).mappings().one())
    del template["id"]
    many = [
        {**template, "name": f"Dec {i}", "value_cents": 1000 + i, "expected_month": "2026-12"}
        for i in range(SIM_PROSPECTS + 50)
    ]
    many += [
        {**template, "name": f"Oct {i:02d}", "value_cents": 10_000 * (i + 1), "expected_month": "2026-10"}
        for i in range(STILL_OPEN_NAMED + 5)
    ]
    with engine.begin() as conn:
        conn.execute(insert(table), many)
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot, rounds=20, until=lambda a: getattr(a.screen, "ranges", None) is not None)
        screen = app.screen
        assert type(screen).__name__ == "ForecastScreen" and screen.ranges is not None
        dec = screen.fc.months[13]
        assert dec.month == "2026-12" and screen.ranges.months["2026-12"].method == "normal"
        await pilot.press("down")  # December
        await settle(pilot)
        text = screen_text(app)
        assert "normal approximation" in text
        assert "? Oct 2026: 15 still open, not a miss yet: Oct 14, Oct 13" in text
        oct_ = screen.fc.months[11]
        assert oct_.open_count == STILL_OPEN_NAMED + 5 and len(oct_.still_open) == STILL_OPEN_NAMED


# ---------------------------------------------------------------- a header read late


async def test_a_focus_header_whose_figures_come_after_its_history_never_shows_a_made_up_zero(data, monkeypatch):
    """The focus list and its KPI sums are read in one worker, the week's history in another; at
    a million prospects the history comes first. The boxes say they are reading until the sums
    come, and never show 0.00 (or a change from nothing)."""
    import time

    from evpipe.tui.screens import focus as focus_screen

    gate = held(monkeypatch, focus_screen, "kpis")
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(app, pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("2")
        screen = app.screen
        assert await until(app, pilot, lambda: screen.header.week_ago is not None)  # the history is read
        start = time.monotonic()
        while time.monotonic() - start < 0.3:
            boxes = [str(screen.header.query_one(f"#{box}").render()) for box in ("kpi-tv", "kpi-ev", "kpi-ratio")]
            assert all("…" in box and "0.00" not in box and "7d" not in box for box in boxes), boxes
            await pilot.pause(0.05)
        gate.set()
        after = kpis(data)
        ev = f"EV {format_money(after.ev_micros, micros=True)}"
        assert await until(app, pilot, lambda: screen.header.texts.get("kpi-ev", "").startswith(ev))
        assert " 7d" in screen.header.texts["kpi-ev"]  # with the history read before


@pytest.mark.parametrize(
    "key, module, read, words",
    [
        ("2", "evpipe.tui.screens.focus", "focus", "Focus  loading the list…"),
        ("3", "evpipe.tui.screens.forecast", "forecast", "Loading the forecast…"),
        ("4", "evpipe.tui.screens.trend", "trend", "Trend  loading the KPI history…"),
        ("5", "evpipe.tui.screens.calibrate", "calibrate", "Loading every closed deal…"),
        ("6", "evpipe.tui.screens.review", "review", "Review  loading the week…"),
        ("9", "evpipe.models.journal_read", "journal", "newest first (loading…)"),
    ],
)
async def test_a_screen_says_it_is_loading_until_its_first_read_ends(data, monkeypatch, key, module, read, words):
    """A million prospects take seconds to read: meanwhile the screen says so, rather than show
    an empty table (or 'newest first (0)') that reads as nothing to show."""
    import importlib

    gate = held(monkeypatch, importlib.import_module(module), read)
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(app, pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press(key)
        await pilot.pause(0.3)
        assert words in screen_text(app), screen_text(app)
        gate.set()
        assert await until(app, pilot, lambda: "loading" not in screen_text(app).lower()), screen_text(app)


async def test_sighting_in_shows_its_table_before_the_bands_record(data, monkeypatch):
    """The band's record replays the journal (seconds at a million prospects): the stages and
    the evidence come first, the band's line says it is loading until its record comes."""
    from evpipe.tui.screens import calibrate as calibrate_screen

    gate = held(monkeypatch, calibrate_screen, "band_record")
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(app, pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("5")
        assert await until(app, pilot, lambda: "Evidence: 9 won, 3 lost" in screen_text(app))
        text = screen_text(app)
        assert "Quote sent" in text and "P10-P90 band: loading" in text, text
        gate.set()
        assert await until(app, pilot, lambda: "P10-P90 band: no ended month" in screen_text(app)), screen_text(app)


@pytest.mark.parametrize(
    "error, notice, line",
    [
        (
            "damaged",
            "The database has a problem: ",
            "Could not load the forecast: ",
        ),
        ("bug", "Could not finish 'load the forecast': KeyError: 'month'", "Could not load the forecast: KeyError"),
    ],
)
async def test_a_read_that_fails_is_said_on_screen_not_left_loading(data, monkeypatch, error, notice, line):
    """A worker's read that fails (a damaged page met by a raw SQLite read, a bug) used to leave
    the screen saying it was loading, for good, with no word of why."""
    import sqlite3

    from evpipe.tui.screens import forecast as forecast_screen

    def broken(*_args, **_kwargs):
        if error == "damaged":
            raise sqlite3.DatabaseError("database disk image is malformed")
        raise KeyError("month")

    monkeypatch.setattr(forecast_screen, "forecast", broken)
    app = EvpipeApp(str(data.url), who="tester")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        assert await until(app, pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("3")
        assert await until(app, pilot, lambda: line in screen_text(app)), screen_text(app)
        assert "Loading the forecast" not in screen_text(app)
        said = notices(app)
        assert any(n.startswith(notice) for n in said), said
        if error == "damaged":
            assert any("is damaged (SQLite: database disk image is malformed); restore it" in n for n in said), said


async def test_focus_and_forecast_show_emoji_sequences_as_terminals_draw_them(engine):
    """A family emoji or a skin tone in a name: the focus list's and the forecast's tables leave
    the joiners, skin tones and emoji selectors out for display (models.names.display_name), as the
    pipeline list does, so the columns after the name stay where the terminal draws them."""
    family = "Ana \U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f469\U0001f3fd Ltd"
    Store(engine, who="tester").add(family, "1000", "Enquiry", month="2026-12", follow_up="2026-11-20")
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key in ("2", "3"):  # focus, forecast
            await pilot.press(key)
            await settle(pilot)
            if key == "3":  # December's prospects
                await pilot.press("down", "enter")
                await settle(pilot)
            text = screen_text(app)
            assert "Ana \U0001f468\U0001f469\U0001f467 \U0001f469 Ltd" in text, text
            assert not {"\u200d", "\U0001f3fd"} & set(text)


async def test_focus_forecast_and_review_read_through_connections_of_their_own(tmp_path, monkeypatch):
    """On SQLite the focus list, the forecast and the review read as the pipeline and the board do:
    through the app's reader, whose connections keep a small page cache and are closed after
    (models/rawdb.py READ_CACHE). Through the engine, each read left a pooled connection holding up
    to 2 MiB of pages, and the app at 100,000 prospects went from 100 to 109 MiB on the focus list."""
    from evpipe.models import open_db
    from evpipe.models.demo import seed_demo
    from evpipe.models.rawdb import SqliteReader
    from evpipe.tui.screens import focus as focus_screen
    from evpipe.tui.screens import forecast as forecast_screen
    from evpipe.tui.screens import review as review_screen

    engine = open_db(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_demo(engine)
    sources: dict[str, list[type]] = {}

    def recorded(module, name: str) -> None:
        read = getattr(module, name)

        def seen(source, *args, **kwargs):
            sources.setdefault(name, []).append(type(source))
            return read(source, *args, **kwargs)

        monkeypatch.setattr(module, name, seen)

    for module, name in (
        (focus_screen, "focus"),
        (focus_screen, "count_follow_ups"),
        (focus_screen, "kpis"),
        (focus_screen, "week_history"),
        (forecast_screen, "forecast"),
        (forecast_screen, "month_ranges"),
        (review_screen, "review"),
    ):
        recorded(module, name)
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        assert await until(app, pilot, lambda: "Focus" in screen_text(app) and "week_history" in sources)
        await pilot.press("3")
        assert await until(app, pilot, lambda: "month_ranges" in sources)
        await pilot.press("6")
        assert await until(app, pilot, lambda: "What moved EV" in screen_text(app))
    assert set(sources) == {"focus", "count_follow_ups", "kpis", "week_history", "forecast", "month_ranges", "review"}
    assert all(kinds == [SqliteReader] * len(kinds) for kinds in sources.values()), sources


async def test_activity_stages_and_sighting_in_show_emoji_sequences_as_terminals_draw_them(engine):
    """Who did what (9), the ladder (7) and sighting in (5) leave a name's and a stage's joiners,
    skin tones and emoji selectors out for display (models.names.display_name), as the list does:
    the TV and EV columns after "what", and the columns after a stage's name, stayed put in rich's
    count while the terminal drew the name a cell or two wider or narrower."""
    heart, thumb = "\u2764\ufe0f", "\U0001f44d\U0001f3fd"
    s = Store(engine, who="tester")
    s.update_stage("Enquiry", name=f"Enquiry {heart}")
    s.add(f"Ana {thumb} Ltd", "1000", f"Enquiry {heart}", month="2026-12")
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for key, shown in (("9", "Ana \U0001f44d Ltd"), ("7", "Enquiry \u2764"), ("5", "Enquiry \u2764")):
            await pilot.press(key)
            assert await until(app, pilot, lambda shown=shown: shown in screen_text(app)), (key, screen_text(app))
            text = screen_text(app)
            assert not {"\U0001f3fd", "\ufe0f"} & set(text), (key, text)
