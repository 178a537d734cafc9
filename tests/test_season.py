"""This season against last, the review's balance of activity, the frozen band's honesty and the
demo's history (issue 16, points 1 and 3, and the review part of 2)."""

from __future__ import annotations

import json
import random
import time
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from evpipe.models import clock, history, open_db
from evpipe.models.demo import build_demo
from evpipe.models.errors import DomainError
from evpipe.models.forecast import forecast
from evpipe.models.forecast_range import band_record
from evpipe.models.kpi import Kpi
from evpipe.models.review import activity_balance, review
from evpipe.models.season import YearCompare, short_year_change, year_sentence
from evpipe.models.store import Store
from evpipe.tui.cli import main
from tests.conftest import down_and_up

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


def _balance_by_hand(engine, start: datetime, end: datetime, owner: str | None = None) -> dict:
    """What the balance of activity counts, worked out row by row from the stage history and the
    contact points (the rule as the review states it), to check the database's counts against."""
    import statistics

    from evpipe.models.bridge import BridgeCategory, move_category
    from evpipe.models.journal import undone_move
    from evpipe.models.rawdb import fetch_all

    stages = {
        sid: (name, kind, pos)
        for sid, name, kind, pos in fetch_all(
            engine, "SELECT id, name, kind, position FROM stage WHERE archived = :no", {"no": False}
        )
    }
    live = {
        pid
        for pid, who in fetch_all(engine, "SELECT id, owner FROM prospect WHERE deleted_at IS NULL")
        if owner is None or who == owner
    }

    def moment(v):
        return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))

    def week(t: datetime) -> int:
        return -1 if t >= start else int((start - t) / timedelta(weeks=1))

    history = sorted(
        (moment(at), i, pid, a, b)
        for i, pid, at, a, b in fetch_all(
            engine, "SELECT id, prospect_id, changed_at, from_stage_id, to_stage_id FROM stage_change"
        )
    )
    # a move undone and its undo are no advance (the rule's first form, row by row)
    undone = {i for (i,) in fetch_all(engine, f"SELECT id FROM stage_change WHERE {undone_move('stage_change')}")}
    sets: dict = {}

    def note(t: datetime, sid, what: str, pid: int) -> None:
        w = week(t)
        if pid in live and start - timedelta(weeks=13) <= t < end and w < 13 and stages.get(sid, ("", ""))[1] == "open":
            sets.setdefault((w, sid, what), set()).add(pid)

    for t, i, pid, a, b in history:
        if i in undone:
            continue
        if a is None:
            note(t, b, "added", pid)
        elif (
            a in stages
            and b in stages
            and move_category(stages[a][1], stages[a][2], stages[b][1], stages[b][2])
            in (BridgeCategory.ADVANCE, BridgeCategory.WIN)
        ):
            note(t, a, "advanced", pid)
    for pid, at, voided in fetch_all(engine, "SELECT prospect_id, occurred_at, voided_at FROM activity"):
        t = moment(at)
        on = [b for h, i, p, _a, b in history if p == pid and h <= t and i not in undone]
        if voided is None and on:
            note(t, on[-1], "touched", pid)
    out = {}
    for sid, (name, kind, _pos) in stages.items():
        if kind == "open":
            counts = [
                len(sets.get((w, sid, what), ())) for what in ("added", "advanced", "touched") for w in range(-1, 13)
            ]
            out[name] = (
                counts[0],
                counts[14],
                counts[28],
                tuple(float(statistics.median(counts[k * 14 + 1 : k * 14 + 14])) for k in range(3)),
            )
    return out


@pytest.mark.both_databases
def test_balance_of_activity_counts_what_the_history_says(engine):
    """Random adds, moves up and down, wins, losses, reopenings, contact points (some voided),
    deletions and two owners over four months: each week's counts per open stage, and the
    medians, are the ones worked out row by row, for everyone and for one owner."""
    rng = random.Random(5)
    s = Store(engine, who="tester")
    start = datetime(2026, 11, 20, 10, 0)
    ids = []
    for n in range(80):
        # a quarter of them in the period, the rest over the four months before it
        days = rng.randint(-6, 0) if n % 4 == 0 else rng.randint(0, 120)
        at = start - timedelta(days=days, hours=rng.randint(0, 23))
        stage = rng.choice(["Suspect", "Enquiry", "Quote sent"])
        p = s.add(f"p{n}", str(rng.randint(1, 9) * 1000), stage, owner=rng.choice(["ana", "bo"]), at=at).prospect
        ids.append(p.id)
        for _ in range(rng.randint(1, 5)):
            at += timedelta(days=rng.randint(0, 9), hours=rng.randint(0, 5))
            if at >= NOW:
                break
            target = rng.choice(["next", "next", "back", "won", "lost", "reopen", "call", "call", "call"])
            try:
                if target == "call":
                    a = s.log_activity(p.id, "call", "hi", when=at, at=at)
                    if rng.random() < 0.2:  # undone: voided, as `evpipe undo` leaves it
                        with engine.begin() as conn:
                            conn.execute(
                                text("UPDATE activity SET voided_at = :at WHERE id = :id"),
                                {"at": at, "id": a.extra["activity_id"]},
                            )
                else:
                    s.move(p.id, target, at=at)
                    if rng.random() < 0.2 and at + timedelta(minutes=5) < NOW:  # by mistake: undone
                        s.undo(at=at + timedelta(minutes=5))
            except DomainError:
                pass  # (back from the first stage, a win twice, reopening an open one...)
    for pid in rng.sample(ids, 5):
        s.delete(pid, at=NOW - timedelta(hours=1))
    # in the period: one prospect called twice and moved on from Suspect twice counts once for each;
    # one added at the period's very start counts in it, one at the quarter's very start does not
    twice = s.add("twice", "1000", "Suspect", owner="ana", at=start).prospect.id
    for hour in (1, 2):
        s.log_activity(twice, "call", "again", when=start + timedelta(hours=hour), at=start + timedelta(hours=hour))
    for target, hour in (("next", 3), ("back", 4), ("next", 5)):
        s.move(twice, target, at=start + timedelta(hours=hour))
    s.add("at the quarter's start", "1000", "Suspect", at=start - timedelta(weeks=13))
    seen = {}
    for owner in (None, "ana"):
        seen[owner] = {
            b.stage: (b.added, b.advanced, b.touched, b.typical)
            for b in activity_balance(engine, start, NOW, owner=owner)
        }
        assert seen[owner] == _balance_by_hand(engine, start, NOW, owner)
    for column in range(3):  # something to count in each column, in the period and the weeks before
        assert any(v[column] for v in seen[None].values())
        assert any(v[3][column] for v in seen[None].values())


@pytest.mark.both_databases
def test_the_weeks_in_sql_are_whole_weeks_before_the_period(engine):
    """`_WEEK_SQL` puts a moment in the week the review's rule says: -1 from the period's start on,
    else the whole weeks between it and the start; checked at each week's edges."""
    from evpipe.models.rawdb import fetch_all
    from evpipe.models.review import _WEEK_SQL, QUARTER_WEEKS

    start = datetime(2026, 11, 20, 10, 0)
    weeks = {f"w{k}": start - timedelta(weeks=k) for k in range(QUARTER_WEEKS + 1)}
    edge = timedelta(microseconds=1)
    for k in range(QUARTER_WEEKS + 2):
        for t in (start - timedelta(weeks=k) - edge, start - timedelta(weeks=k), start - timedelta(weeks=k) + edge):
            ((got,),) = fetch_all(engine, f"SELECT {_WEEK_SQL.format(at=':t')}", {"t": t, **weeks})
            want = -1 if t >= start else min(QUARTER_WEEKS, int((start - t) / timedelta(weeks=1)))
            assert got == want, t


@pytest.mark.both_databases
def test_each_weeks_count_takes_that_weeks_moments_only(engine):
    """`_per_week`'s queries put a moment in the week the review's rule says, and in that one only: -1 from
    the period's start until its end, else the whole weeks between it and the start, up to the
    quarter (13 weeks); checked at each week's edges."""
    from evpipe.models.rawdb import fetch_all
    from evpipe.models.review import QUARTER_WEEKS, _per_week

    start, until = datetime(2026, 11, 20, 10, 0), datetime(2026, 11, 27, 10, 0)
    weeks = {f"w{k}": start - timedelta(weeks=k) for k in range(QUARTER_WEEKS + 1)}
    weekly = _per_week("SELECT {w} AS w WHERE {range}", ":t")
    assert len(weekly) == QUARTER_WEEKS + 1
    edge = timedelta(microseconds=1)
    moments = [until - edge, until]
    for k in range(QUARTER_WEEKS + 2):
        moments += [start - timedelta(weeks=k) - edge, start - timedelta(weeks=k), start - timedelta(weeks=k) + edge]
    for t in moments:
        got = sorted(w for sql in weekly for (w,) in fetch_all(engine, sql, {"t": t, "until": until, **weeks}))
        if t >= until:
            want = []
        elif t >= start:
            want = [-1]
        else:
            k = int((start - t) / timedelta(weeks=1))
            want = [k] if k < QUARTER_WEEKS else []
        assert got == want, t


def test_what_the_balance_counts_as_moving_on_is_move_category(engine):
    """`advancing_pairs` (the moves the balance counts as advancing from a stage) are the moves from
    an open stage that `move_category` calls an advance or a win: up the ladder or won, never down,
    lost or from a closed stage."""
    from evpipe.models.bridge import advancing_pairs
    from evpipe.models.rawdb import fetch_all

    stages = fetch_all(engine, "SELECT id, kind, position FROM stage")
    name = dict(fetch_all(engine, "SELECT id, name FROM stage"))
    got = {(name[a], name[b]) for a, b in advancing_pairs(stages)}
    assert ("Suspect", "Enquiry") in got and ("Suspect", "Deposit paid") in got and ("Date held", "Won") in got
    assert not {("Enquiry", "Suspect"), ("Enquiry", "Lost"), ("Won", "Enquiry"), ("Lost", "Suspect")} & got
    opens = sorted((p, n) for i, k, p in stages if k == "open" for n in [name[i]])
    up = {(a, b) for i, (_, a) in enumerate(opens) for _, b in opens[i + 1 :]}
    assert got == up | {(a, "Won") for _, a in opens}


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


def test_the_bands_record_holds_only_each_months_own_prospects(engine, monkeypatch):
    """The replay for the band's record keeps, at each month's start, only the prospects expected
    in that month: it made every live prospect's row at every start and left most of them out after
    (a year of month starts at 100,000 prospects: 1.2 million rows, some 100 MiB on the sighting-in
    screen). The record is the same."""
    s = Store(engine, who="tester")
    s.add("Gala", "10000", "Date held", month="2026-10", at=datetime(2026, 9, 10, 9))
    s.move("Gala", "won", at=datetime(2026, 10, 12, 9))
    s.add("Cruise", "6000", "Suspect", month="2026-09", at=datetime(2026, 8, 10, 9))
    s.move("Cruise", "won", at=datetime(2026, 9, 20, 9))
    for i in range(30):  # expected later: at every start, in no judged month
        s.add(f"Later {i}", "500", "Suspect", month="2027-03", at=datetime(2026, 7, 10, 9))
    history.backfill(engine)
    history.record_snapshot(engine)
    replayed = history.prospects_at
    held: list[int] = []

    def counted(*args, **kwargs):
        then = replayed(*args, **kwargs)
        held.extend(len(rows) for rows in then)
        return then

    monkeypatch.setattr(history, "prospects_at", counted)
    rec = band_record(engine, forecast(engine, "2026-08", "2026-10"))
    assert [c.month for c in rec.checks] == ["2026-09", "2026-10"]
    assert held and sum(held) == 2, held  # Cruise at 1 September, Gala at 1 October; none of the 30


def test_a_month_with_nothing_uncertain_expected_is_not_judged(engine):
    """An ended month with no prospect expected at its start had the band [0, 0] and an actual of
    0: "inside", so 12 empty months read as "12 of 12 (100%)". A month whose only prospect was won
    already tests nothing either. They are left out, and said to be."""
    s = Store(engine, who="tester")
    s.add("Later", "500", "Suspect", month="2026-12", at=datetime(2026, 7, 10, 9))  # history from July
    s.add("Gala", "10000", "Date held", month="2026-10", at=datetime(2026, 8, 10, 9))
    s.move("Gala", "won", at=datetime(2026, 10, 12, 9))
    s.add("Early", "3000", "Date held", month="2026-09", at=datetime(2026, 8, 10, 9))
    s.move("Early", "won", at=datetime(2026, 8, 20, 9))  # won before September began
    history.backfill(engine)
    history.record_snapshot(engine)
    rec = band_record(engine, forecast(engine, "2026-08", "2026-10"))
    assert [c.month for c in rec.checks] == ["2026-10"] and rec.inside == 1
    assert rec.certain == 2  # August: nothing expected; September: only a prospect won already
    assert "in 1 of 1 ended month (100%" in rec.summary() and "2 months with nothing uncertain" in rec.summary()


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


def assert_contact_points_keep_their_stage(engine) -> int:
    """Each contact point's stage, as kept while it and the stage changes were written
    (`Activity.stage_id`), is the one its prospect's history had at its moment, worked out row by
    row: the latest change at or before it (on a tie, the later written); None before the first.
    Returns how many contact points happened on a stage their prospect had left since."""
    from evpipe.models.rawdb import fetch_all

    def moment(v):
        return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))

    history: dict[int, list] = {}
    for cid, pid, at, to in fetch_all(engine, "SELECT id, prospect_id, changed_at, to_stage_id FROM stage_change"):
        history.setdefault(pid, []).append((moment(at), cid, to))
    current = dict(fetch_all(engine, "SELECT id, stage_id FROM prospect"))
    earlier = 0
    contacts = fetch_all(engine, "SELECT id, prospect_id, occurred_at, stage_id FROM activity")
    assert contacts
    for aid, pid, at, kept in contacts:
        on = [to for t, _cid, to in sorted(history.get(pid, [])) if t <= moment(at)]
        want = on[-1] if on else None
        assert kept == want, (aid, pid, at)
        earlier += want is not None and want != current[pid]
    return earlier


@pytest.mark.both_databases
def test_contact_points_keep_the_stage_they_happened_on(engine, tmp_path):
    """Every writer of contact points and stage changes keeps each contact point's stage: the
    store's contact points (at moments before and after the prospect's latest change, and before
    its first), its moves (some dated before contact points already logged), an import that
    moves prospects with contact points, and moves after it."""
    from evpipe.models.importer import commit_import, plan_import

    rng = random.Random(11)
    s = Store(engine, who="tester")
    t0 = datetime(2026, 6, 1, 9)
    ids = []
    for n in range(25):
        at = t0 + timedelta(hours=rng.randint(0, 2000))
        ids.append(s.add(f"p{n}", "1000", rng.choice(["Suspect", "Enquiry"]), at=at).prospect.id)
    csv = tmp_path / "deals.csv"
    csv.write_text(
        "id,name,value,stage,created\n" + "".join(f"{i},imp {i},1000,Suspect,2026-05-{i:02d}\n" for i in range(1, 9))
    )
    commit_import(engine, plan_import(engine, csv, who="tester"), who="tester")
    with engine.connect() as conn:
        imported = [int(i) for (i,) in conn.execute(text("SELECT id FROM prospect WHERE name LIKE 'imp %'"))]
    everyone = ids + imported
    for _ in range(160):
        pid = rng.choice(everyone)
        at = t0 + timedelta(hours=rng.randint(-800, 4000))  # some before the prospect existed
        try:
            if rng.random() < 0.55:
                s.log_activity(pid, rng.choice(["call", "email"]), "hi", when=at, at=max(at, t0 + timedelta(days=200)))
            else:
                s.move(pid, rng.choice(["next", "next", "back", "won", "lost", "reopen"]), at=at)
        except DomainError:
            pass
    # the file moves its prospects again, with contact points on them already (one logged on a
    # clock a day ahead of this one: after the import's moves)
    ahead = clock.now() + timedelta(days=1)
    for pid in imported:
        s.log_activity(pid, "email", "from a clock ahead", when=ahead, at=ahead)
    csv.write_text(
        "id,name,value,stage,created\n"
        + "".join(
            f"{i},imp {i},1000,{rng.choice(['Quote sent', 'Won', 'Enquiry'])},2026-05-{i:02d}\n" for i in range(1, 9)
        )
    )
    commit_import(engine, plan_import(engine, csv, who="tester"), who="tester")
    for pid in imported[:4]:
        s.log_activity(pid, "call", "after the import", at=clock.now())
        try:  # dated before its contact points
            s.move(pid, "next", at=datetime(2026, 5, 20))
        except DomainError:  # (won or lost by the file)
            s.move(pid, "reopen", at=datetime(2026, 5, 20))
    assert assert_contact_points_keep_their_stage(engine) > 10


def test_the_demo_keeps_its_contact_points_stage(demo_engine):
    assert assert_contact_points_keep_their_stage(demo_engine) > 0


@pytest.mark.both_databases
def test_a_database_from_before_the_contact_points_stage_gets_it_on_upgrade(engine):
    """Revision 0010 gives every contact point already recorded its stage by the journal's rule:
    taken back to 0009 (none) and upgraded again, each has the one it was written with."""

    s = Store(engine, who="tester")
    p = s.add("A", "1000", "Suspect", at=datetime(2026, 10, 1, 9)).prospect.id
    s.log_activity(p, "call", "first", when=datetime(2026, 10, 2, 9), at=datetime(2026, 10, 2, 9))
    s.move(p, "next", at=datetime(2026, 10, 5, 9))
    s.log_activity(p, "call", "second", when=datetime(2026, 10, 6, 9), at=datetime(2026, 10, 6, 9))
    s.log_activity(p, "call", "before it", when=datetime(2026, 9, 1, 9), at=datetime(2026, 10, 6, 9))
    query = text("SELECT id, stage_id FROM activity ORDER BY id")
    with engine.connect() as conn:
        kept = conn.execute(query).all()
    assert [sid is None for _, sid in kept] == [False, False, True] and kept[0][1] != kept[1][1]
    down_and_up(engine, "0009")
    with engine.connect() as conn:
        assert conn.execute(query).all() == kept
    assert assert_contact_points_keep_their_stage(engine) == 1
