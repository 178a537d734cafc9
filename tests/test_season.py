"""This season against last, the review's balance of activity, the frozen band's honesty and the
demo's history (issue 16, points 1 and 3, and the review part of 2)."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta

from click.testing import CliRunner

from evpipe.models import clock, history, open_db
from evpipe.models.demo import build_demo
from evpipe.models.forecast import forecast
from evpipe.models.forecast_range import band_record
from evpipe.models.kpi import Kpi
from evpipe.models.review import activity_balance, review
from evpipe.models.season import YearCompare, short_year_change, year_sentence
from evpipe.models.store import Store
from evpipe.tui.cli import main

NOW = datetime(2026, 11, 27, 10, 0)


def _run(db, *args):
    r = CliRunner().invoke(main, ["--db", str(db), *args])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return r.stdout


def test_sentences():
    now = Kpi(1, 100_00, 112 * 10**6 * 10_000)
    assert year_sentence(YearCompare(now, Kpi(1, 100_00, 100 * 10**6 * 10_000), date(2025, 11, 28))) == (
        "EV is 12% above this time last year"
    )
    assert year_sentence(YearCompare(Kpi(), Kpi(1, 1, 50), date(2025, 11, 28))) == (
        "EV is 100% below this time last year"
    )
    assert year_sentence(YearCompare(now, now, date(2025, 11, 28))) == "EV is level with this time last year"
    assert year_sentence(None).startswith("EV: no reading")
    assert short_year_change(now, Kpi(1, 1, 100 * 10**6 * 10_000)) == "+12% yr"
    assert short_year_change(now, None) == ""


def test_trend_compares_the_same_week_last_year(engine, db_path):
    s = Store(engine, who="tester")
    # a year ago: 10,000 at 25%; today: that one won and a new one
    s.add("Old", "10000", "Quote sent", month="2026-01", at=datetime(2025, 11, 1, 9))
    s.move("Old", "won", at=datetime(2026, 1, 10, 9))
    s.add("New", "8000", "Quote sent", month="2027-01", at=datetime(2026, 11, 1, 9))
    history.backfill(engine)
    history.record_snapshot(engine)
    data = json.loads(_run(db_path, "trend", "--weeks", "4", "--compare", "last-year", "--json"))
    last = data[-1]
    assert last["date"] == "2026-11-27" and last["ev"] == "12000.00"  # 10,000 won + 8,000 x 25%
    # 364 days before: the weekly reading of 2025-11-28 (the backfill steps 7 days back from today)
    assert last["last_year"]["date"] == "2025-11-28"
    assert last["last_year"]["ev"] == "2500.00"
    plain = json.loads(_run(db_path, "trend", "--weeks", "4", "--json"))
    assert "last_year" not in plain[-1]  # unchanged without --compare
    text = _run(db_path, "trend", "--weeks", "4", "--compare", "last-year")
    assert "EV last year" in text and "2,500" in text
    r = review(engine)
    assert r.season == "EV is 380% above this time last year"


def test_no_year_of_history_says_so(engine, db_path):
    Store(engine, who="tester").add("New", "8000", "Quote sent", at=datetime(2026, 11, 1, 9))
    history.backfill(engine)
    data = json.loads(_run(db_path, "trend", "--compare", "last-year", "--json"))
    assert all(p["last_year"] is None for p in data)
    assert review(engine).season == "EV: no reading from this time last year yet"


def test_balance_of_activity_against_a_typical_week(engine):
    s = Store(engine, who="tester")
    # every week of the last quarter: one new Suspect, moved on to Enquiry three days later
    for w in range(1, 14):
        day = datetime(2026, 11, 21, 9) - timedelta(weeks=w)
        p = s.add(f"weekly {w}", "1000", "Suspect", at=day).prospect
        s.move(p.id, "next", at=day + timedelta(days=3))
    # this week: three new ones on Suspect, one touched, none moved
    this_week = [s.add(f"new {i}", "1000", "Suspect", at=datetime(2026, 11, 23, 9)).prospect for i in range(3)]
    s.log_activity(this_week[0].id, "call", "hello", when=datetime(2026, 11, 24, 9), at=datetime(2026, 11, 24, 9))
    start = datetime(2026, 11, 21, 0, 0)
    rows = {b.stage: b for b in activity_balance(engine, start, NOW)}
    sus = rows["Suspect"]
    assert (sus.added, sus.advanced, sus.touched) == (3, 0, 1)
    assert sus.typical == (1.0, 1.0, 0.0)
    enq = rows["Enquiry"]
    assert enq.untouched == 13 and enq.added == 0  # the weekly ones wait on Enquiry, untouched this week
    assert "Won" not in rows  # open stages only
    data = review(engine, "7d").to_json()
    assert data["balance"][0]["stage"] == "Suspect"


def test_actual_inside_the_frozen_band(engine):
    s = Store(engine, who="tester")
    # At 1 October: a 10,000 Date held (50%) and a 4,000 Quote sent (25%) for October
    s.add("Gala", "10000", "Date held", month="2026-10", at=datetime(2026, 9, 10, 9))
    s.add("Lunch", "4000", "Quote sent", month="2026-10", at=datetime(2026, 9, 10, 9))
    s.move("Gala", "won", at=datetime(2026, 10, 12, 9))
    s.move("Lunch", "lost", at=datetime(2026, 10, 20, 9))
    # At 1 September: a 6,000 Suspect (5%) for September, then moved to Deposit paid and won
    s.add("Cruise", "6000", "Suspect", month="2026-09", at=datetime(2026, 8, 10, 9))
    s.move("Cruise", "Deposit paid", at=datetime(2026, 9, 2, 9))
    s.move("Cruise", "won", at=datetime(2026, 9, 20, 9))
    history.backfill(engine)
    history.record_snapshot(engine)
    rec = band_record(engine, forecast(engine, "2026-08", "2026-10"))
    by_month = {c.month: c for c in rec.checks}
    # October's frozen band: outcomes 0 (.375), 4,000 (.125), 10,000 (.375), 14,000 (.125): P10 0, P90 14,000
    assert (by_month["2026-10"].p10, by_month["2026-10"].p90) == (0, 14_000_00)
    assert by_month["2026-10"].inside  # 10,000 won
    # September's: one at 5%, so P(0) = 95% and P90 is 0: the 6,000 won fell outside
    assert (by_month["2026-09"].p10, by_month["2026-09"].p90) == (0, 0)
    assert not by_month["2026-09"].inside
    assert rec.inside == 1 and len(rec.checks) == 2
    assert "inside the band frozen at the month's start in 1 of 2 ended months (50%" in rec.summary()


def test_no_month_to_judge_reads_no_history(engine, monkeypatch):
    """Without an ended month that has a frozen forecast and sales, the band's record is empty,
    and the journal is not replayed for nothing (8 s at a million prospects)."""
    s = Store(engine, who="tester")
    s.add("Gala", "10000", "Date held", month="2027-01", at=datetime(2026, 9, 10, 9))

    def no_replay(*_args, **_kwargs):
        raise AssertionError("replayed the journal with no month to judge")

    monkeypatch.setattr(history, "prospects_at", no_replay)
    rec = band_record(engine)
    assert rec.checks == [] and "no ended month" in rec.summary()


def test_calibrate_shows_the_band(engine, db_path):
    s = Store(engine, who="tester")
    s.add("Gala", "10000", "Date held", month="2026-10", at=datetime(2026, 9, 10, 9))
    s.move("Gala", "won", at=datetime(2026, 10, 12, 9))
    history.backfill(engine)
    history.record_snapshot(engine)
    data = json.loads(_run(db_path, "calibrate", "--json"))
    assert data["band"]["judged"] == 1 and data["band"]["inside"] == 1
    assert data["band"]["months"][0] == {
        "month": "2026-10",
        "frozen_p10": "0.00",
        "frozen_p90": "10000.00",
        "actual": "10000.00",
        "inside": True,
        "method": "exact",
    }
    assert "P10-P90 band: the actual fell inside" in _run(db_path, "calibrate")


def test_demo_has_fifteen_months_of_seasonal_history(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    started = time.perf_counter()
    build_demo(url, own=True)
    took = time.perf_counter() - started
    assert took < 15, took  # about 3 s on an idle machine; the bound leaves room for a loaded one
    eng = open_db(url)
    try:
        from evpipe.models.pace import load_pace

        fc = forecast(eng, "2025-08", "2026-10")
        won = {m.month: m.actual_cents for m in fc.months}
        from sqlalchemy import text

        with eng.connect() as conn:
            per_month = dict(conn.execute(text("SELECT expected_month, count(*) FROM prospect GROUP BY 1")).all())
        summer = per_month["2025-12"] + per_month["2026-01"] + per_month["2026-02"]
        winter = per_month["2026-06"] + per_month["2026-07"] + per_month["2026-08"]
        assert summer > 3 * winter > 0  # a summer peak, a lean winter
        assert sum(won.values()) > 0
        pace = load_pace(eng)
        assert all(st.learnt for st in pace.stages.values() if st.kind == "open")
        assert "above this time last year" in review(eng).season or "below" in review(eng).season
        rec = band_record(eng)
        assert len(rec.checks) >= 10
        # the same every time (fixed seed): a second build gives the same figures
        build_demo(url, own=True)
        assert {m.month: m.actual_cents for m in forecast(eng, "2025-08", "2026-10").months} == won
    finally:
        eng.dispose()
    assert clock.today() == date(2026, 11, 27)


async def test_trend_overlay_and_header_year_figure(engine):
    from apphelpers import settle, shows

    from evpipe.tui.app import EvpipeApp

    s = Store(engine, who="tester")
    s.add("Old", "10000", "Quote sent", month="2026-01", at=datetime(2025, 11, 1, 9))
    s.move("Old", "won", at=datetime(2026, 1, 10, 9))
    s.add("New", "8000", "Quote sent", month="2027-01", at=datetime(2026, 11, 1, 9))
    history.backfill(engine)
    history.record_snapshot(engine)
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(110, 24)) as pilot:
        await settle(pilot)
        # wide enough: EV's box says how EV compares with the same week last year (12,000 vs 2,500)
        text = await shows(app, pilot, "+380% yr")
        assert "+380% yr" in text
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("l")
        text = await shows(app, pilot, "EV last yr", "EV is 380% above this time")
        assert "TV last yr" in text and "EV is 380% above this time" in text  # the panel wraps "last year"
        assert app.screen.last_year is not None and app.screen.last_year[-1].kpi.ev_micros == 2500 * 100 * 10_000
        await pilot.press("l")
        text = await shows(app, pilot)
        for _ in range(100):
            if app.screen.last_year is None:
                break
            await pilot.pause(0.05)
        assert app.screen.last_year is None
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = await shows(app, pilot, "EV 12,000")
        assert "EV 12,000" in text
        # 80 columns: a small 7-day change leaves room in EV's box, and nothing spills over
        assert "+0 7d +380% yr" in text
        assert all(len(line) <= 80 for line in text.splitlines())
