"""The KPI period (issue 9, point 2): open prospects whatever their month, plus won and lost ones
expected in the period; the same figures in the header, `evpipe kpi`, `trend` and the history."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from apphelpers import save_lands_before_the_sums, settle, shows
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from evpipe.models import history, open_db
from evpipe.models.db import writer
from evpipe.models.errors import DomainError
from evpipe.models.kpi import Kpi, Scope, kpis, kpis_by, snapshots
from evpipe.models.ladder import kpi_part
from evpipe.models.period import ALL_TIME, Period, current_period, parse_setting, period_of
from evpipe.models.rawdb import fetch_all
from evpipe.models.settings import get_setting, kpi_period
from evpipe.models.store import Store
from evpipe.models.tables import KpiSnapshotMonth, Prospect, Stage, table_of
from evpipe.models.values import format_money
from evpipe.tui.cli import main

TODAY = date(2026, 11, 27)  # tests/conftest.py pins the clock here
DEFAULT = Period("2025-12", "12m")  # the 12 months up to and including November 2026


def run(db: Path, *args: str, code: int = 0):
    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


# ---------------------------------------------------------------- the rule


def test_the_default_period_is_the_last_12_months_and_every_month_after():
    p = period_of(None, TODAY)
    assert p == DEFAULT and p.restricts
    assert p.holds("open", "2014-01") and p.holds("open", None)  # open: whatever the month
    assert p.holds("won", "2025-12") and p.holds("won", "2031-06") and p.holds("lost", "2026-11")
    assert not p.holds("won", "2025-11") and not p.holds("lost", "2016-03")
    assert p.holds("won", None)  # nothing dates it before the period
    assert p.short == "Dec 2025→" and p.label == "Dec 2025 on"
    assert period_of("12m", date(2027, 1, 1)).start == "2026-02"  # rolling: moves with the month
    assert period_of("1m", TODAY).start == "2026-11"
    assert period_of("2026-01", TODAY) == Period("2026-01", "2026-01")
    assert period_of("all", TODAY) == ALL_TIME and ALL_TIME.holds("won", "1999-01")
    assert period_of("nonsense", TODAY) == DEFAULT  # an unreadable setting: the default


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("12", "12m"),
        ("24m", "24m"),
        ("36 months", "36m"),
        ("ALL", "all"),
        ("2026-01", "2026-01"),
        ("jan 2025", "2025-01"),
    ],
)
def test_period_settings_as_typed(typed, stored):
    assert parse_setting(typed) == stored


@pytest.mark.parametrize("typed", ["0", "601m", "soon", ""])
def test_a_bad_period_setting_says_how_to_type_one(typed):
    with pytest.raises(DomainError, match="12m"):
        parse_setting(typed)


MONTHS = [None, "2014-03", "2025-11", "2025-12", "2026-06", "2026-11", "2027-02"]
STARTS = [None, "2025-12", "2026-06", "2014-01", "2027-03"]
KINDS = ["Suspect", "Quote sent", "Deposit paid", "Won", "Lost"]


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory):
    eng = open_db(f"sqlite:///{tmp_path_factory.mktemp('period')}/p.db")
    yield eng
    eng.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=99_999_999_999),
            st.sampled_from(KINDS),
            st.sampled_from(MONTHS),
            st.booleans(),  # deleted
            st.sampled_from(["sam", "priya"]),
        ),
        max_size=30,
    ),
    start=st.sampled_from(STARTS),
    owner=st.sampled_from([None, "sam"]),
)
def test_the_sql_and_python_forms_of_the_period_agree(shared_engine, rows, start, owner):
    """`Period.holds` (Python), `Period.sql` (on a stage kind) and `Period.sql_on_stage` (the KPI
    sums' form) pick the same prospects, and the KPI sums of a period are the Python rule's."""
    period = Period(start, "test")
    now = datetime(2026, 11, 27, 9)
    with writer(shared_engine).begin() as conn:
        conn.execute(delete(Prospect))
        stages = {
            name: (sid, kind, bp)
            for sid, name, kind, bp in conn.execute(select(Stage.id, Stage.name, Stage.kind, Stage.probability_bp))
        }
        values = [
            dict(
                name=f"P{i}",
                value_cents=cents,
                stage_id=stages[stage][0],
                expected_month=month,
                owner=who,
                created_at=now,
                updated_at=now,
                last_touch_at=now,
                deleted_at=now if deleted else None,
            )
            for i, (cents, stage, month, deleted, who) in enumerate(rows)
        ]
        if values:
            conn.execute(insert(Prospect), values)
    live = [r for r in rows if not r[3]]
    held = {f"P{i}" for i, r in enumerate(rows) if not r[3] and period.holds(stages[r[1]][1], r[2])}
    by_kind, params = period.sql("s.kind", "p.expected_month")
    assert {
        n
        for (n,) in fetch_all(
            shared_engine,
            f"SELECT p.name FROM prospect p JOIN stage s ON s.id = p.stage_id WHERE p.deleted_at IS NULL AND {by_kind}",
            params,
        )
    } == held
    by_stage, params = period.sql_on_stage("p.stage_id", "p.expected_month")
    assert {
        n
        for (n,) in fetch_all(
            shared_engine, f"SELECT p.name FROM prospect p WHERE p.deleted_at IS NULL AND {by_stage}", params
        )
    } == held
    expected = Kpi()
    for cents, stage, month, _deleted, who in live:
        _sid, kind, bp = stages[stage]
        if period.holds(kind, month) and (owner is None or who == owner):
            expected = expected + Kpi(*kpi_part(cents, kind, bp))
    scope = Scope(owner=owner, period=period)
    assert kpis(shared_engine, scope) == expected
    total = Kpi()
    for _month, k in kpis_by(shared_engine, "month", scope):
        total = total + k
    assert total == expected
    with shared_engine.connect() as conn:  # the SQLAlchemy form (Scope.where) agrees too
        names = {n for (n,) in conn.execute(select(Prospect.name).where(*Scope(period=period).where()))}
    assert names == held


def test_the_period_sums_read_only_the_covering_index(engine):
    """The header's sums of a period never read the prospect table (migration 0004)."""
    for scope in (Scope(period=DEFAULT), Scope(owner="sam", period=DEFAULT)):
        where, params = scope.sql()
        plan = " ".join(
            str(row[-1])
            for row in fetch_all(
                engine,
                f"EXPLAIN QUERY PLAN SELECT p.stage_id, count(*), sum(p.value_cents) FROM prospect p "
                f"WHERE {where} GROUP BY p.stage_id",
                params,
            )
        )
        assert "COVERING INDEX" in plan, plan


# ---------------------------------------------------------------- a pipeline with old wins


def _old_wins(engine) -> dict[str, Decimal]:
    """Wins from 2016-17 (as a CRM import brings), a recent win, a recent loss, open prospects
    (one expected years ago, one with no month); returns the TV of each part."""
    s = Store(engine, who="tester")
    old = datetime(2017, 3, 1, 9)
    for i, month in enumerate(["2016-11", "2017-02", "2017-03"]):
        p = s.add(f"Old win {i}", "100000", "Quote sent", month=month, at=old).prospect
        s.move(p.id, "won", at=old + timedelta(days=i))
    p = s.add("Old loss", "5000", "Enquiry", month="2017-01", at=old).prospect
    s.move(p.id, "lost", reason="gone", at=old)
    s.add("Harbour Events", "6000", "Quote sent", month="2026-12", at=datetime(2026, 10, 2, 9))
    s.add("Stuck since 2020", "3000", "Enquiry", month="2020-05", at=datetime(2026, 10, 2, 9))
    s.add("No month yet", "1000", "Suspect", at=datetime(2026, 10, 2, 9))
    p = s.add("Recent win", "8000", "Deposit paid", month="2026-10", at=datetime(2026, 10, 2, 9)).prospect
    s.move(p.id, "won", at=datetime(2026, 11, 20, 9))
    history.backfill(engine)
    history.record_snapshot(engine)
    return {"old": Decimal("300000"), "period": Decimal("6000") + 3000 + 1000 + 8000}


@pytest.fixture
def old_wins(engine):
    parts = _old_wins(engine)
    return engine, parts


def test_old_wins_are_left_out_of_the_kpis(old_wins):
    engine, parts = old_wins
    period = current_period(engine)
    assert period == DEFAULT
    k = kpis(engine, Scope(period=period))
    assert k.tv == parts["period"] and k.count == 4
    assert k.ev == Decimal("6000") * Decimal("0.25") + Decimal("3000") * Decimal("0.10") + 50 + 8000
    assert kpis(engine).tv == parts["period"] + parts["old"]  # all of history, as before


@pytest.mark.both_databases
def test_kpi_json_counts_the_period_and_says_which(old_wins, db_url):
    engine, parts = old_wins
    data = json.loads(run(db_url, "kpi", "--json").stdout)
    assert Decimal(data["tv"]) == parts["period"] and data["count"] == 4
    assert data["period"] == {"from": "2025-12", "to": None, "setting": "12m"}
    text = run(db_url, "kpi").stdout
    assert "period: Dec 2025 on, the last 12 months rolling" in text
    # an explicit range of months works as before: no period on top
    old = json.loads(run(db_url, "kpi", "--from", "2016-01", "--to", "2017-12", "--json").stdout)
    assert Decimal(old["tv"]) == parts["old"] and old["period"] is None
    everything = json.loads(run(db_url, "kpi", "--period", "all", "--json").stdout)
    assert Decimal(everything["tv"]) == parts["period"] + parts["old"]
    by_month = json.loads(run(db_url, "kpi", "--by", "month", "--json").stdout)
    assert sum(Decimal(r["tv"]) for r in by_month["rows"]) == parts["period"]
    assert "2017-03" not in {r["month"] for r in by_month["rows"]}
    run(db_url, "kpi", "--from", "2016-01", "--period", "all", code=1)


@pytest.mark.both_databases
def test_settings_command_sets_the_period_for_the_database(old_wins, db_url):
    engine, parts = old_wins
    assert "kpi-period  12m" in run(db_url, "settings").stdout
    out = run(db_url, "settings", "kpi-period", "all").stdout
    assert "KPI period set to all" in out
    assert get_setting(engine, "kpi_period") == "all"
    assert Decimal(json.loads(run(db_url, "kpi", "--json").stdout)["tv"]) == parts["period"] + parts["old"]
    run(db_url, "settings", "kpi-period", "2017-03")
    data = json.loads(run(db_url, "kpi", "--json").stdout)
    assert Decimal(data["tv"]) == parts["period"] + 100000 and data["period"]["setting"] == "2017-03"
    assert json.loads(run(db_url, "settings", "--json").stdout)["kpi_period"]["from"] == "2017-03"
    bad = run(db_url, "settings", "kpi-period", "soon", code=1)
    assert "12m" in bad.stderr
    assert kpi_period(engine).start == "2017-03"  # unchanged by the bad one


# ---------------------------------------------------------------- the history of the period


@pytest.mark.both_databases
def test_every_reading_of_the_history_counts_todays_period(old_wins, db_url):
    engine, parts = old_wins
    scope = Scope(period=DEFAULT)
    points = history.trend(engine, None, scope)
    assert len(points) > 10
    for point in points[::25] + points[-12:]:
        # the same reading reconstructed from the journal, for today's period
        moment = history.end_of_day(point.taken_on)
        assert point.kpi == history.kpis_before(engine, moment, scope), point.taken_on
        if point.taken_on >= date(2017, 3, 3):  # after the old wins: all of history holds them too
            everyone = history.kpis_before(engine, moment)
            assert everyone.tv_cents - point.kpi.tv_cents == int(parts["old"] * 100)
    assert points[-1].kpi == kpis(engine, scope)
    data = json.loads(run(db_url, "trend", "--weeks", "2", "--json").stdout)
    assert Decimal(data[-1]["tv"]) == parts["period"]
    assert "period: Dec 2025 on" in run(db_url, "trend").stdout


def test_snapshots_from_before_the_won_part_are_completed_from_the_journal(old_wins):
    engine, _parts = old_wins
    scope = Scope(period=DEFAULT)
    before = snapshots(engine, scope)
    months = table_of(KpiSnapshotMonth)
    with writer(engine).begin() as conn:  # as migration 0004 leaves a database's older snapshots
        conn.execute(update(months).values(won_count=None, won_tv_cents=None, won_ev_micros=None))
    assert len(snapshots(engine, scope)) < len(before)  # unknown won part: left out, never all history
    assert snapshots(engine) == snapshots(engine, Scope(period=ALL_TIME))
    done = history.complete_won_parts(engine, limit=5)
    assert done == 5
    while history.complete_won_parts(engine):
        pass
    assert snapshots(engine, scope) == before


def test_week_history_and_the_sparkline_count_the_period(old_wins):
    from evpipe.models.week_history import week_history

    engine, parts = old_wins
    week_ago, _label, weekly = week_history(engine, Scope(period=DEFAULT))
    assert week_ago is not None and week_ago.tv == parts["period"]  # 20 Nov: the same prospects
    everyone_ago, _label, all_weekly = week_history(engine, Scope())
    assert everyone_ago is not None and everyone_ago.tv == week_ago.tv + parts["old"]
    assert len(weekly) == len(all_weekly)


# ---------------------------------------------------------------- the header


async def test_the_header_shows_the_period_and_its_figures(old_wins, db_path):
    from apphelpers import screen_text

    from evpipe.tui.app import EvpipeApp

    engine, parts = old_wins
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        k = kpis(engine, Scope(period=DEFAULT))
        text = await shows(app, pilot, "Dec 2025→")
        assert f"TV {format_money(k.tv_cents)}" in text
        assert f"EV {format_money(k.ev_micros, micros=True)}" in text
        assert "Dec 2025→ · EV" in text
        data = json.loads(run(db_path, "kpi", "--json").stdout)
        assert Decimal(data["tv"]) * 100 == app.pipeline.kpi_all.tv_cents == k.tv_cents
        # winning an open prospect expected in 2020 takes it out of the period: the header follows
        screen = app.pipeline
        pid = next(r.id for r in screen.view.rows.values() if r.name == "Stuck since 2020")
        assert screen.table.go_to(pid)
        await settle(pilot)
        await pilot.press("w")
        await settle(app, pilot, until=lambda a: a.pipeline.kpi_all == kpis(engine, Scope(period=DEFAULT)))
        assert screen.kpi_all == kpis(engine, Scope(period=DEFAULT))
        assert screen.kpi_all.tv == parts["period"] - 3000
        assert f"TV {format_money(screen.kpi_all.tv_cents)}" in screen_text(app)


@pytest.mark.parametrize("order", ["as it comes", "saved before the sums land"])
async def test_a_move_shown_while_the_header_sums_again_stays_in_it(old_wins, monkeypatch, order):
    """`>j>` in one burst, the first a win: the win sums the header again from the database (it
    may leave the period) while the second move is shown but not saved yet. The sums replaced the
    header without it, and its save added only its correction: the header stayed short of the
    second move's EV until the app restarted. Then, in the order forced here, the sums replaced a
    header that its save had already corrected (models/header_sums.py)."""
    from textual import events

    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.screens import pipeline

    engine, _ = old_wins
    s = Store(engine, who="tester")
    last = s.add("Zz last step", "5000", "Deposit paid", month="2027-06").prospect
    nxt = s.add("Zz next one", "4000", "Suspect", month="2027-06").prospect
    screens: list = []
    read = save_lands_before_the_sums(monkeypatch, pipeline, nxt.id, screens) if order != "as it comes" else None
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert screen.table.go_to(last.id)
        await settle(pilot)
        screens.append(screen)
        for key, char in (("greater_than_sign", ">"), ("j", "j"), ("greater_than_sign", ">")):
            app.post_message(events.Key(key, char))  # (one write: all queued before any is read)
        await settle(
            app,
            pilot,
            until=lambda a: s.get("Zz next one").stage_name == "Enquiry" and not a.pipeline._pending,
        )
        await settle(pilot)
        assert read is None or read.is_set()
        assert s.get("Zz last step").stage_kind == "won"
        assert screen.kpi_all == kpis(engine, Scope(period=DEFAULT))
        assert screen.kpi_mine == kpis(engine, Scope(owner="tester", period=DEFAULT))


async def test_the_stages_screen_sets_the_period_and_the_header_follows(old_wins):
    from evpipe.tui.app import EvpipeApp

    engine, parts = old_wins
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("P")
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"
        await pilot.press(*"soon", "enter")  # typing replaces the setting shown; refused, with the hint
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"
        for _ in range(6):
            await pilot.press("backspace")
        await pilot.press(*"all", "enter")
        await settle(pilot)
        assert get_setting(engine, "kpi_period") == "all"
        await pilot.press("1")
        await settle(app, pilot, until=lambda a: a.pipeline.kpi_all == kpis(engine))
        assert app.pipeline.kpi_all.tv == parts["period"] + parts["old"]
        await shows(app, pilot, "all time · EV")


async def test_the_period_set_in_another_session_reaches_the_open_headers(old_wins):
    """The KPI period set elsewhere (another rep's stages screen, `evpipe settings kpi-period`)
    while the app is open: the pipeline's header sums again in it and says it, and the board shows
    it when next shown, as `evpipe kpi` does. The pipeline kept the old period's figures until the
    app was started again, while the board, read anew, showed the new one."""
    from evpipe.models.settings import set_kpi_period
    from evpipe.tui.app import EvpipeApp

    engine, parts = old_wins
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("8")  # the board, read in the period in force, then hidden again
        await settle(pilot)
        await pilot.press("1")
        await shows(app, pilot, "Dec 2025→ · EV")
        assert app.pipeline.kpi_all.tv == parts["period"]
        set_kpi_period(engine, "all", who="other")  # (another session: this app's live look finds it)
        await settle(app, pilot, until=lambda a: a.pipeline.kpi_all == kpis(engine))
        assert app.pipeline.kpi_all.tv == parts["period"] + parts["old"]
        await shows(app, pilot, "all time · EV")
        await pilot.press("8")
        await shows(app, pilot, "all time · EV")
        assert app.screen.kpi == kpis(engine)


# ---------------------------------------------------------------- exports


def test_the_xlsx_kpi_sheet_counts_the_period(old_wins, tmp_path):
    from openpyxl import load_workbook

    from evpipe.models.exporter import export

    engine, parts = old_wins
    path = tmp_path / "out.xlsx"
    export(engine, path)
    wb = load_workbook(path)
    sheet = wb["KPIs by month"]
    assert sheet["F1"].value == "KPI period: Dec 2025 on"
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert sum(Decimal(str(r[2])) for r in rows) == parts["period"]
    assert len(list(wb["Prospects"].iter_rows(min_row=2))) == 8  # every prospect is exported


def test_a_database_from_before_the_period_upgrades_and_completes_its_history(db_url, db_path):
    """Migration 0004 on a database with snapshots: they get their won part from the journal."""
    import sqlite3

    from alembic import command

    from evpipe.models.db import alembic_config, make_engine

    old = make_engine(db_url)
    # Written by today's store (which writes columns 0003 lacks), then taken back to 0003.
    with writer(old).begin() as conn:
        command.upgrade(alembic_config(conn), "head")  # the store writes today's schema (roles: 0005)
    from evpipe.models.seed import install_ladder

    install_ladder(old)
    s = Store(old, who="tester")
    p = s.add("Old win", "100000", "Quote sent", month="2017-03", at=datetime(2017, 3, 1, 9)).prospect
    s.move(p.id, "won", at=datetime(2017, 3, 2, 9))
    s.add("Open", "1000", "Suspect", month="2026-12", at=datetime(2026, 11, 1, 9))
    with writer(old).begin() as conn:  # then back to schema 0003, as evpipe 0003 left it
        command.downgrade(alembic_config(conn), "0003")
    old.dispose()
    with sqlite3.connect(db_path) as raw:  # a snapshot as evpipe 0003 wrote it: no won part
        raw.execute(
            "INSERT INTO kpi_snapshot (id, scope, taken_on, taken_at, count, tv_cents, ev_micros) "
            "VALUES (1, 'all', '2026-11-20', '2026-11-20 18:00:00', 2, 10100000, 100050000000)"
        )
        raw.execute(
            "INSERT INTO kpi_snapshot_month (snapshot_id, month, count, tv_cents, ev_micros) VALUES "
            "(1, '2017-03', 1, 10000000, 100000000000), (1, '2026-12', 1, 100000, 50000000)"
        )
    engine = open_db(db_url)
    scope = Scope(period=DEFAULT)
    assert snapshots(engine, scope) == []  # its won part is unknown: left out, not shown for all time
    history.record_snapshot(engine)  # completes it, then records today's
    points = snapshots(engine, scope)
    assert [p.taken_on for p in points][:1] == [date(2026, 11, 20)]
    assert points[0].kpi == Kpi(1, 100000, 50000000)
    assert snapshots(engine)[0].kpi == Kpi(2, 10100000, 100050000000)  # all of history: as recorded
