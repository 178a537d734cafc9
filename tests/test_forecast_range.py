"""The forecast as a range (issue 16, point 1): exact quantiles against an independent brute-force
enumeration of every outcome, the simulation past the size limit, targets, and `forecast --json`."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from itertools import product

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from evpipe.models import forecast_range as fr
from evpipe.models import open_db
from evpipe.models.forecast_range import band_text, distribution, range_of, range_sentence
from evpipe.tui.cli import main

OPEN_BP = st.sampled_from([500, 1000, 1250, 2500, 3333, 5000, 8000, 9999])


def brute(won: int, chances: list[tuple[int, int]]):
    """Every one of the 2^n outcomes with its exact probability."""
    outcomes: dict[int, Fraction] = {}
    for picks in product((0, 1), repeat=len(chances)):
        p = Fraction(1)
        total = won
        for (value, bp), yes in zip(chances, picks):
            p *= Fraction(bp, 10_000) if yes else Fraction(10_000 - bp, 10_000)
            total += value if yes else 0
        outcomes[total] = outcomes.get(total, Fraction(0)) + p
    return outcomes


def brute_quantile(outcomes: dict[int, Fraction], q: Fraction) -> int:
    cum = Fraction(0)
    for x in sorted(outcomes):
        cum += outcomes[x]
        if cum >= q:
            return x
    raise AssertionError("probabilities add up to 1")


@settings(max_examples=150, deadline=None)
@given(
    won=st.integers(0, 500_000),
    chances=st.lists(st.tuples(st.integers(1, 2_000_000), OPEN_BP), max_size=9),
    target=st.integers(0, 3_000_000),
)
def test_quantiles_and_target_match_brute_force(won, chances, target):
    prospects = [(won, "won", 10_000)] if won else []
    prospects += [(v, "open", bp) for v, bp in chances]
    r = range_of(prospects, target)
    outcomes = brute(won, chances)
    assert r.method == "exact"
    assert r.p10 == brute_quantile(outcomes, Fraction(1, 10))
    assert r.p50 == brute_quantile(outcomes, Fraction(1, 2))
    assert r.p90 == brute_quantile(outcomes, Fraction(9, 10))
    assert r.p_target == sum((p for x, p in outcomes.items() if x >= target), Fraction(0))
    # monotone, and within [won, won + open]
    assert won <= r.p10 <= r.p50 <= r.p90 <= won + sum(v for v, _ in chances)
    assert r.ev_micros == won * 10_000 + sum(v * bp for v, bp in chances)


def test_ties_are_decided_exactly():
    # one prospect at 50%: P(X <= 0) is exactly 0.5, so P50 is 0, not its value
    r = range_of([(100_00, "open", 5000)], 100_00)
    assert (r.p10, r.p50, r.p90) == (0, 0, 100_00)
    assert r.p_target == Fraction(1, 2)


def test_lost_count_nothing_and_won_is_certain():
    r = range_of([(50_00, "lost", 0), (70_00, "won", 10_000)], 70_00)
    assert (r.won_cents, r.open_cents, r.p10, r.p90, r.p_target) == (70_00, 0, 70_00, 70_00, 1)
    assert range_sentence("2026-12", r) == "Dec: EV 70, 70 for certain, 100% chance of the 70 target"


def test_beyond_the_limit_a_seeded_simulation_says_so(monkeypatch):
    monkeypatch.setattr(fr, "EXACT_POINTS", 50)
    chances = [(1000 + 7 * i, 2500) for i in range(40)]
    a = distribution(0, chances)
    b = distribution(0, chances)
    assert a.method == "simulation" and a.draws == fr.draws_for(40) >= fr.MIN_DRAWS
    assert (a.amounts, a.cumulative) == (b.amounts, b.cumulative)  # seeded: the same every time
    # close to the exact answer computed without the limit
    monkeypatch.setattr(fr, "EXACT_POINTS", 10**9)
    monkeypatch.setattr(fr, "EXACT_WORK", 10**9)
    exact = distribution(0, chances)
    assert exact.method == "exact"
    for q in (10, 50, 90):
        assert abs(a.quantile(q) - exact.quantile(q)) <= 3000  # within about 3 prospects' value
    r = range_of([(v, "open", bp) for v, bp in chances])
    assert r.to_json()["range_method"] == "exact"


def test_very_many_prospects_follow_the_normal_law():
    chances = [(100_00 + 37 * i, (500, 2500, 5000, 8000)[i % 4]) for i in range(fr.SIM_PROSPECTS + 500)]
    r = range_of([(v, "open", bp) for v, bp in chances] + [(1_000_00, "won", 10_000)], 3_000_000_00)
    assert r.method == "normal" and r.draws is None
    won, top = 1_000_00, 1_000_00 + sum(v for v, _ in chances)
    assert won <= r.p10 < r.p50 < r.p90 <= top
    mean = won + sum(v * bp for v, bp in chances) / 10_000
    assert abs(r.p50 - mean) <= 1  # the median of the normal is its mean, the EV
    assert r.p_target is not None and 0 <= r.p_target <= 1


def test_fewer_draws_only_for_very_many_prospects():
    assert fr.draws_for(10) == fr.DRAWS
    assert fr.MIN_DRAWS <= fr.draws_for(1_000_000) < fr.DRAWS


def test_band_reads_without_colour():
    r = range_of([(10_000_00, "open", 5000), (10_000_00, "open", 5000), (5_000_00, "won", 10_000)])
    text = band_text(r, 21)
    assert text.startswith("[") and text.endswith("]") and len(text) == 21
    assert text.count("|") == 2 and "*" in text
    assert text.index("|") < text.index("*") < text.rindex("|")


def _cli(db, *args):
    return CliRunner().invoke(main, ["--db", str(db), *args])


@pytest.fixture
def cli_db(db_path, db_url):
    """A new database with the default ladder, and a runner that checks each command succeeds."""
    open_db(db_url).dispose()

    def run(*args):
        r = _cli(db_path, *args)
        assert r.exit_code == 0, (r.stdout, r.stderr)
        return r.stdout

    return db_path, run


def test_forecast_json_has_the_range_and_target(cli_db):
    db, run = cli_db
    run("add", "Dec gala", "--value", "10000", "--stage", "Date held", "--month", "2026-12")
    run("add", "Dec lunch", "--value", "30000", "--stage", "Quote sent", "--month", "2026-12")
    run("add", "Dec booked", "--value", "5000", "--stage", "Won", "--month", "2026-12")
    out = run("target", "dec 2026", "40,000")
    assert "2026-12" in out
    data = json.loads(run("forecast", "--from", "2026-11", "--to", "2027-01", "--json"))
    dec = next(m for m in data["months"] if m["month"] == "2026-12")
    # 5000 won + {0, 10000} at 50% + {0, 30000} at 25%: 5k .375, 15k .375, 35k .125, 45k .125
    assert (dec["p10"], dec["p50"], dec["p90"]) == ("5000.00", "15000.00", "45000.00")
    assert dec["target"] == "40000.00"
    assert dec["p_target"] == pytest.approx(0.125)
    assert dec["range_method"] == "exact"
    nov = next(m for m in data["months"] if m["month"] == "2026-11")
    assert (nov["p10"], nov["p90"], nov["target"], nov["p_target"]) == ("0.00", "0.00", None, None)
    assert data["period"]["p90"] == "45000.00" and data["period"]["target"] == "40000.00"
    assert Decimal(data["period"]["p50"]) >= Decimal("5000")


def test_target_commands(cli_db):
    db, run = cli_db
    run("target", "2027-03", "40000")
    run("target", "2027-04", "$12,500")
    listed = json.loads(run("target", "list", "--json"))
    assert listed == [{"month": "2027-03", "target": "40000.00"}, {"month": "2027-04", "target": "12500.00"}]
    assert "cleared 1 target" in run("target", "clear", "2027-03")
    assert json.loads(run("target", "list", "--json")) == [{"month": "2027-04", "target": "12500.00"}]
    assert "cleared 1 target" in run("target", "clear", "all")
    bad = _cli(db, "target", "2027-03", "lots")
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.output.strip().startswith("evpipe: ") and len(bad.output.strip().splitlines()) == 1
    assert _cli(db, "target", "2027-03", "0").exit_code == 1
    assert _cli(db, "target", "what").exit_code == 1


def december(engine) -> None:
    """December's three prospects of the forecast screen's tests: EV 17,500, P10-P90 5,000-45,000."""
    from datetime import datetime

    from evpipe.models.store import Store

    s = Store(engine, who="tester")
    s.add("Dec gala", "10000", "Date held", month="2026-12", at=datetime(2026, 10, 1, 9))
    s.add("Dec lunch", "30000", "Quote sent", month="2026-12", at=datetime(2026, 10, 1, 9))
    s.add("Dec booked", "5000", "Won", month="2026-12", at=datetime(2026, 10, 1, 9))


async def test_forecast_screen_shows_the_band_and_sets_a_target(engine):

    from apphelpers import settle, shows
    from textual.widgets import DataTable

    from evpipe.models.targets import targets
    from evpipe.tui.app import EvpipeApp

    december(engine)
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#forecast-table", DataTable)
        assert screen.fc.months[table.cursor_row].month == "2026-11"
        await pilot.press("down")
        text = await shows(app, pilot, "Dec: EV 17,500, 80% between 5,000 and 45,000")
        assert "Dec: EV 17,500, 80% between 5,000 and 45,000" in text
        lines = text.splitlines()
        assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
        band = next(line for line in lines if "P10 5,000 [" in line)
        assert "] P90 45,000" in band and "|" in band and "*" in band
        await pilot.press("t")
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"
        for key in "40000":
            await pilot.press(key)
        await pilot.press("enter")
        text = await shows(app, pilot, "13% chance of the 40,000 target")
        assert "Dec: EV 17,500, 80% between 5,000 and 45,000, 13% chance of the 40,000 target" in text
        assert targets(engine) == {"2026-12": 4_000_000}
        # a bad amount is refused on the dialog, in words, and nothing is saved
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("ctrl+a")
        for key in "lots":
            await pilot.press(key)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"
        await pilot.press("escape")
        await settle(pilot)
        assert targets(engine) == {"2026-12": 4_000_000}
        # a target far beyond the range reads in its own unit; the range keeps its whole amounts
        # (with the range's unit taken from the target, they all read 0.02M)
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("end", *["backspace"] * 12, *"9999999999", "full_stop", "9", "9", "enter")
        text = await shows(app, pilot, "chance of the")
        assert "Dec: EV 17,500, 80% between 5,000 and 45,000, 0% chance of the 10,000M target" in text, text


async def test_a_target_of_0_is_refused_on_the_dialog_that_asks_for_it(engine):
    """The dialog took 0 and closed; the save then failed in a notice ("Not changed"), the amount
    typed gone. It is refused under the input now, in the same words as `evpipe target`."""
    from apphelpers import screen_text, settle
    from textual.widgets import DataTable

    from evpipe.models.targets import set_target, targets
    from evpipe.tui.app import EvpipeApp

    december(engine)
    set_target(engine, "2026-12", "40000")
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#forecast-table", DataTable)
        await pilot.press("down")
        assert screen.fc.months[table.cursor_row].month == "2026-12"
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("end", "ctrl+u", "0", "enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"
        assert "target: an amount above 0" in screen_text(app)
        assert not [n for n in app._notifications if n.title == "Not changed"]
        await pilot.press("escape")
        await settle(pilot)
        assert targets(engine) == {"2026-12": 4_000_000}


async def test_a_target_set_elsewhere_shows_on_the_open_forecast_screen(engine):
    """Targets are settings, not journalled: the live screens did not hear of one set from the
    command line (or another session) until they were left and shown again."""

    from apphelpers import screen_text, settle, shows

    from evpipe.models.targets import clear_target, set_target
    from evpipe.tui.app import EvpipeApp

    december(engine)
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down")
        text = await shows(app, pilot, "Dec: EV 17,500, 80% between 5,000 and 45,000")
        assert "target" not in text
        set_target(engine, "2026-12", "40000")  # as `evpipe target 2026-12 40000` does
        text = await shows(app, pilot, "13% chance of the 40,000 target")
        assert "Dec: EV 17,500, 80% between 5,000 and 45,000, 13% chance of the 40,000 target" in text
        clear_target(engine, "2026-12")
        dec = "Dec: EV 17,500, 80% between 5,000 and 45,000"
        for _ in range(500):  # (read again: the line shows once the read is painted)
            text = screen_text(app)
            if dec in text and "chance of the" not in text:
                break
            await pilot.pause(0.02)
        assert dec in text and "chance of the" not in text, text


def test_undo_after_a_target_change_does_not_reach_behind_it(engine):
    """`target 2027-03 500`, `target clear all`, `undo`: undo passed over the target changes (not
    journalled) and reversed an older, unrelated move of a prospect. It now says so, as after an
    import; a change made after the target is undone as ever."""
    from evpipe.models.errors import NothingToUndo
    from evpipe.models.store import Store
    from evpipe.models.targets import clear_target, set_target, targets

    s = Store(engine, who="tester")
    pid = s.add("Deal", "1000", "Quote sent").prospect.id
    s.move(pid, "won")
    set_target(engine, "2027-03", "500", who="tester")
    clear_target(engine, None, who="tester")
    for attempt in (s.undo, s.skip_undo):
        with pytest.raises(NothingToUndo, match="^undo: your last change was to a monthly target"):
            attempt()
    assert s.get(pid).stage_name == "Won" and targets(engine) == {}
    Store(engine, who="priya").move(pid, "lost", reason="x")  # another user's target change is not theirs
    set_target(engine, "2027-03", "500", who="priya")
    s.move(pid, "reopen")
    assert s.undo().prospect.stage_name == "Lost"


def test_the_exact_program_cannot_finish_beyond_its_bound():
    """The prospects in the fewest amounts there can be (values 1 and -1): past the bound, the exact
    program always gives up, so that beyond SIM_PROSPECTS the normal range is taken without it."""
    bound = fr._EXACT_FAILS_BEYOND
    for values in ([1] * (bound + 1), [1, -1] * ((bound + 2) // 2), [7] * (bound + 1)):
        assert fr._exact([(v, 5_000) for v in values]) is None
    assert fr._exact([(1, 5_000)] * 800) is not None  # and finishes for fewer
    assert bound <= fr.SIM_PROSPECTS


def _range_by_lists(prospects, target):
    """The range as it was built before prospects were added one at a time: lists, then
    `distribution` over them."""
    won = open_ = ev = 0
    chances = []
    for value, kind, bp in prospects:
        if kind == "lost":
            continue
        ev += value * bp
        if kind == "won":
            won += value
            continue
        open_ += value
        chances.append((value, bp))
    d = distribution(won, chances)
    quantiles = tuple(d.quantile(q) for q in fr.QUANTILES)
    return (won, open_, ev, *quantiles, d.method, d.draws, None if target is None else d.at_least(target))


@pytest.mark.parametrize("n", [0, 3, 40, 300, 2_000, 2_001, 6_000])
def test_chances_added_one_at_a_time_give_the_range_of_the_lists(n):
    """`Chances` keeps a month's prospects as sums beyond SIM_PROSPECTS uncertain ones: its range is
    the one of the whole lists, in every method (exact, simulation, normal), with certain, free,
    won and lost prospects among them."""
    import random

    rng = random.Random(n)
    kinds = ["open"] * 6 + ["won", "lost"]
    prospects = [
        (
            rng.choice([0, rng.randint(1, 10**6), rng.randint(1, 10**11)]),
            rng.choice(kinds),
            rng.choice([0, 1, 2_500, 5_000, 9_999, 10_000]),
        )
        for _ in range(n)
    ]
    target = rng.randint(0, 10**9)
    chances = fr.Chances()
    for p in prospects:
        chances.add(*p)
    r = chances.range(target)
    assert (r.won_cents, r.open_cents, r.ev_micros, r.p10, r.p50, r.p90, r.method, r.draws, r.p_target) == (
        _range_by_lists(prospects, target)
    )
    assert range_of(prospects, target) == r
    assert (chances.items is None) == (chances.count > fr.SIM_PROSPECTS)


@pytest.mark.both_databases
def test_month_ranges_from_the_databases_sums_equal_the_ranges_of_the_rows(store, engine):
    """`month_ranges` lets the database add up each month's stages and reads the prospects
    themselves only where a range needs them (at most SIM_PROSPECTS uncertain ones): its ranges
    equal those of the rows taken one by one, in id order, for a month past the limit (normal), a
    month within it (simulated or exact) and the KPI period; values up to the largest allowed."""
    import random

    from sqlalchemy import insert, select

    from evpipe.models.period import current_period
    from evpipe.models.pipeline_view import load_ladder
    from evpipe.models.tables import Prospect, table_of

    store.add("Template", "100", "Enquiry", month="2026-12")
    table = table_of(Prospect)
    with engine.connect() as conn:
        template = dict(conn.execute(select(table)).mappings().one())
    ladder = {s.id: s for s in load_ladder(engine)[0]}
    rng = random.Random(7)
    months = ["2026-12"] * 5 + ["2027-01"] * 2 + [None]
    rows = []
    for i in range(fr.SIM_PROSPECTS * 5 + 300):
        month = rng.choice(months) if i < fr.SIM_PROSPECTS * 5 else "2027-02"
        value = rng.choice([0, rng.randint(1, 10**6), rng.randint(1, 999_999_999_999), 999_999_999_999])
        stage = rng.choice(list(ladder))
        rows.append({**template, "name": f"P{i}", "expected_month": month, "value_cents": value, "stage_id": stage})
    for row in rows:
        del row["id"]  # the database numbers them
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
        listed = conn.execute(
            select(table.c.id, table.c.expected_month, table.c.value_cents, table.c.stage_id)
            .where(table.c.deleted_at.is_(None))
            .order_by(table.c.id)
        ).all()
    wanted = ["2026-12", "2027-01", "2027-02", "2027-03"]
    got = fr.month_ranges(engine, wanted, targets={"2027-01": 10**9})
    period = current_period(engine)

    def oracle(keep) -> list[tuple[int, str, int]]:
        return [
            (v, ladder[sid].kind, ladder[sid].probability_bp)
            for _, m, v, sid in listed
            if ladder[sid].kind != "lost" and keep(m, ladder[sid].kind)
        ]

    for month in wanted:
        expected = range_of(oracle(lambda m, _k, month=month: m == month), {"2027-01": 10**9}.get(month))
        assert got.months[month] == expected, month
    assert got.months["2026-12"].method == "normal" and got.months["2027-02"].method != "normal"
    assert got.period == range_of(oracle(lambda m, k: period.holds(k, m)), got.period.target_cents)
