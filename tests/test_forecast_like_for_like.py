"""Forecast against actual, like for like (issue 9, point 3): A(m) is what the prospects expected in
m were won for, whenever they were won; only months that have ended are judged; an ended month with
prospects still open is provisional, lists them and stays out of WAPE. The expected figures are
computed here independently of models/forecast.py and models/history.py: from the test's own record
of what it did to each prospect, in exact fractions."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest
from click.testing import CliRunner

from evpipe.models import history, open_db
from evpipe.models.forecast import forecast
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from evpipe.tui.cli import main
from tests.conftest import FIXED_NOW, WORKED_LADDER

pytestmark = pytest.mark.both_databases

#: The worked ladder's probabilities, in percent.
PCT = {"Suspect": 5, "Enquiry": 10, "Quote sent": 25, "Deposit paid": 80, "Won": 100, "Lost": 0}
OPEN_STAGES = ["Suspect", "Enquiry", "Quote sent", "Deposit paid"]
TODAY = FIXED_NOW.date()
THIS_MONTH = TODAY.strftime("%Y-%m")


def C(amount: int) -> int:
    return amount * 100


def close(got, want: Fraction) -> bool:
    """A Decimal ratio from the model against the exact fraction (Decimal division keeps 28 digits)."""
    return got is not None and abs(Fraction(got) - want) < Fraction(1, 10**20)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def month_of(day: date | datetime) -> str:
    return day.strftime("%Y-%m")


def month_start(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:7]), 1)


def add_months(month: str, n: int) -> str:
    i = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


@pytest.fixture
def eng(db_url):
    e = open_db(db_url, seed_ladder=False)
    install_ladder(e, WORKED_LADDER)
    yield e
    e.dispose()


# ---------------------------------------------------------------- the founding business, by hand


def test_charters_booked_ahead_are_judged_like_for_like(eng):
    """Today is 27 Nov 2026. October's charters were mostly booked months before October."""
    s = Store(eng, who="tester")
    s.add("Wedding", "20000", "Deposit paid", month="2026-10", at=datetime(2026, 6, 1, 9))
    s.add("Gala", "10000", "Quote sent", month="2026-10", at=datetime(2026, 7, 1, 9))
    s.add("Late", "5000", "Deposit paid", month="2026-09", at=datetime(2026, 8, 1, 9))
    s.move("Gala", "won", at=datetime(2026, 8, 15, 9))  # booked ahead
    s.add("Cruise", "6000", "Quote sent", month="2026-10", at=datetime(2026, 9, 1, 9))
    s.add("Party", "4000", "Enquiry", month="2026-10", at=datetime(2026, 9, 5, 9))
    s.add("Launch", "8000", "Quote sent", month="2026-11", at=datetime(2026, 9, 10, 9))
    s.move("Wedding", "won", at=datetime(2026, 9, 20, 9))  # booked ahead
    s.move("Late", "won", at=datetime(2026, 10, 3, 9))  # won after its month
    s.move("Cruise", "won", at=datetime(2026, 10, 8, 9))  # won in its month
    s.move("Party", "lost", at=datetime(2026, 10, 20, 9))
    s.move("Launch", "won", at=datetime(2026, 10, 25, 9))  # signed in October for November
    history.backfill(eng)
    history.record_snapshot(eng)

    fc = forecast(eng, "2026-07", "2026-12")
    rows = {m.month: m for m in fc.months}
    oct_ = rows["2026-10"]
    # At 1 Oct: Wedding and Gala already won (100%), Cruise 25% of 6,000, Party 10% of 4,000.
    assert oct_.frozen_ev_micros == C(20_000 + 10_000 + 1_500 + 400) * 10_000
    # What October's prospects were won for, whenever: Wedding, Gala, Cruise (Party was lost).
    assert oct_.actual_cents == C(36_000)
    # Signed in October, whatever the month: Late, Cruise, Launch (what the old actual was).
    assert oct_.signed_cents == C(5_000 + 6_000 + 8_000)
    assert close(oct_.accuracy, 1 - Fraction(4_100, 36_000)) and close(oct_.bias, Fraction(-4_100, 36_000))
    sep = rows["2026-09"]
    assert (sep.frozen_ev_micros, sep.actual_cents, sep.signed_cents) == (C(4_000) * 10_000, C(5_000), C(20_000))
    assert close(sep.accuracy, Fraction(4, 5))
    # November has not ended: its figures are shown but not judged.
    nov = rows["2026-11"]
    assert nov.actual_cents == C(8_000) and nov.accuracy is None and nov.bias is None
    # WAPE over the ended months with a frozen forecast: July and August (nothing expected, nothing
    # won), September and October.
    assert fc.wape_months == 4
    assert close(fc.wape, Fraction(1_000 + 4_100, 5_000 + 36_000))
    assert fc.provisional_months == []


# ---------------------------------------------------------------- provisional months


def test_an_ended_month_with_open_prospects_is_provisional_until_they_close(eng):
    s = Store(eng, who="tester")
    s.add("Done", "10000", "Deposit paid", month="2026-10", at=datetime(2026, 8, 1, 9))
    s.add("[b]Pending[/b]", "4000", "Quote sent", month="2026-10", at=datetime(2026, 8, 2, 9))
    s.add("Sep sale", "2000", "Quote sent", month="2026-09", at=datetime(2026, 8, 3, 9))
    s.move("Done", "won", at=datetime(2026, 9, 1, 9))
    s.add("Open now", "3000", "Enquiry", month="2026-11", at=datetime(2026, 9, 3, 9))
    s.move("Sep sale", "won", at=datetime(2026, 9, 9, 9))
    history.backfill(eng)
    history.record_snapshot(eng)

    fc = forecast(eng, "2026-09", "2026-12")
    sep, oct_, nov = fc.months[0], fc.months[1], fc.months[2]
    # October has ended but Pending is still open: shown, marked, listed, left out of WAPE.
    assert oct_.complete and oct_.provisional
    assert [r.name for r in oct_.still_open] == ["[b]Pending[/b]"]
    assert oct_.frozen_ev_micros == C(10_000 + 1_000) * 10_000 and oct_.actual_cents == C(10_000)
    assert close(oct_.accuracy, Fraction(9, 10))  # provisional: Pending may yet be won
    assert not sep.provisional and not nov.provisional and nov.still_open == ()  # November is running
    assert [m.month for m in fc.provisional_months] == ["2026-10"]
    # WAPE: September only (500 forecast against 2,000 won).
    assert fc.wape_months == 1 and close(fc.wape, Fraction(1_500, 2_000))
    data = fc.to_json()
    assert data["months"][1]["provisional"] is True
    assert data["months"][1]["still_open"] == [
        {
            "id": oct_.still_open[0].id,
            "name": "[b]Pending[/b]",
            "stage": "Quote sent",
            "value": "4000.00",
            "ev": "1000.00",
            "owner": "tester",
            "follow_up": None,
        }
    ]
    assert data["totals"]["provisional_months"] == ["2026-10"]

    # Won late: October is final, exact, and counts in WAPE.
    s.move("[b]Pending[/b]", "won", at=datetime(2026, 11, 20, 9))
    fc = forecast(eng, "2026-09", "2026-12")
    oct_ = fc.months[1]
    assert not oct_.provisional and oct_.actual_cents == C(14_000)
    assert close(oct_.accuracy, 1 - Fraction(3_000, 14_000))
    assert fc.wape_months == 2 and close(fc.wape, Fraction(1_500 + 3_000, 2_000 + 14_000))


def test_moving_an_open_prospect_to_a_later_month_settles_the_month_as_a_miss(eng):
    s = Store(eng, who="tester")
    s.add("Slipped", "8000", "Deposit paid", month="2026-10", at=datetime(2026, 9, 1, 9))
    history.backfill(eng)
    assert forecast(eng, "2026-10", "2026-10").months[0].provisional
    s.edit("Slipped", month="2027-01", at=datetime(2026, 11, 2, 9))
    fc = forecast(eng, "2026-10", "2026-10")
    oct_ = fc.months[0]
    assert not oct_.provisional and oct_.frozen_ev_micros == C(6_400) * 10_000 and oct_.actual_cents == 0
    assert oct_.accuracy is None and fc.wape is None and fc.wape_months == 1


# ---------------------------------------------------------------- a hidden pipeline


@dataclass
class Tracked:
    """What the test did to one prospect, in time order: (when, field, value)."""

    name: str
    steps: list[tuple[datetime, str, object]] = field(default_factory=list)

    def state_before(self, moment: datetime) -> dict[str, object] | None:
        state: dict[str, object] = {}
        for at, what, value in self.steps:
            if at < moment:
                state[what] = value
        return state or None

    @property
    def final(self) -> dict[str, object]:
        return self.state_before(datetime.max) or {}


def random_day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def hidden_pipeline(rng: random.Random, n: int) -> tuple[list[Tracked], list[tuple[datetime, str, str, dict]]]:
    """Charters booked months before their expected month: each prospect is added some day from
    March to November 2026 for a month 0-6 months later, may advance, have its value changed,
    slip a month, and then be won (often long before its month), lost, or left open."""
    tracked, actions = [], []
    last_day = TODAY - timedelta(days=1)
    for i in range(n):
        name = f"P{i:02d}"
        t = Tracked(name)
        created = random_day(rng, date(2026, 3, 1), date(2026, 11, 20))
        at = datetime.combine(created, datetime.min.time()) + timedelta(hours=rng.randrange(8, 18))
        month = add_months(month_of(created), rng.randrange(0, 7))
        stage = rng.choice(OPEN_STAGES)
        value = rng.randrange(5, 500) * 100 + rng.choice([0, 50])  # whole dollars and some cents
        t.steps += [(at, "month", month), (at, "stage", stage), (at, "value", value)]
        actions.append((at, name, "add", {"value": value, "stage": stage, "month": month}))
        for _ in range(rng.randrange(0, 4)):
            at = at + timedelta(days=rng.randrange(1, 40), hours=rng.randrange(0, 3))
            if at.date() > last_day:
                break
            kind = rng.choice(["advance", "value", "slip", "close", "close"])
            if kind == "advance" and OPEN_STAGES.index(stage) < len(OPEN_STAGES) - 1:
                stage = OPEN_STAGES[OPEN_STAGES.index(stage) + 1]
                t.steps.append((at, "stage", stage))
                actions.append((at, name, "move", {"stage": stage}))
            elif kind == "value":
                value = next(v for v in iter(lambda: rng.randrange(5, 500) * 100, None) if v != value)
                t.steps.append((at, "value", value))
                actions.append((at, name, "edit", {"value": value}))
            elif kind == "slip":
                month = add_months(month, rng.choice([-1, 1, 2]))
                t.steps.append((at, "month", month))
                actions.append((at, name, "edit", {"month": month}))
            elif kind == "close":
                stage = "Won" if rng.random() < 0.7 else "Lost"
                t.steps += [(at, "stage", stage), (at, "closed", at.date())]
                actions.append((at, name, "move", {"stage": stage}))
                break
        if stage in OPEN_STAGES and month < THIS_MONTH and rng.random() < 0.85 and at.date() < last_day:
            # Most reps close out a month's prospects in the end, some of them late.
            at = datetime.combine(random_day(rng, at.date() + timedelta(days=1), last_day), datetime.min.time())
            at += timedelta(hours=rng.randrange(8, 18))
            stage = "Won" if rng.random() < 0.6 else "Lost"
            t.steps += [(at, "stage", stage), (at, "closed", at.date())]
            actions.append((at, name, "move", {"stage": stage}))
        tracked.append(t)
    actions.sort(key=lambda a: a[0])
    return tracked, actions


def expected_frozen(tracked: list[Tracked], month: str) -> int:
    """EV micros expected in `month` at its first moment, from the test's own record."""
    total = 0
    for t in tracked:
        state = t.state_before(month_start(month))
        if state is not None and state["month"] == month:
            total += int(state["value"]) * PCT[str(state["stage"])] * 100  # cents x basis points
    return total


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_hidden_pipeline_of_bookings_made_months_ahead(eng, seed):
    rng = random.Random(seed)
    tracked, actions = hidden_pipeline(rng, 60)
    s = Store(eng, who="tester")
    for at, name, what, args in actions:
        if what == "add":
            s.add(name, money(args["value"]), args["stage"], month=args["month"], at=at)
        elif what == "move":
            s.move(name, args["stage"], at=at)
        elif args.get("value") is not None:
            s.edit(name, value=money(args["value"]), at=at)
        else:
            s.edit(name, month=args["month"], at=at)
    history.backfill(eng)
    history.record_snapshot(eng)
    first_event = min(a[0] for a in actions)

    fc = forecast(eng)
    finals = [t.final for t in tracked]
    booked_ahead = sum(1 for f in finals if f["stage"] == "Won" and month_of(f["closed"]) < f["month"])
    assert booked_ahead >= 3  # the case the issue is about is really in the data

    err, denom, judged = Fraction(0), Fraction(0), 0
    provisional = []
    for m in fc.months:
        ended = m.month < THIS_MONTH
        # A(m): the final value of what is won for m, whenever it was won.
        actual = sum(int(f["value"]) for f in finals if f["stage"] == "Won" and f["month"] == m.month)
        signed = sum(int(f["value"]) for f in finals if f["stage"] == "Won" and month_of(f["closed"]) == m.month)
        still_open = sorted(
            t.name for t, f in zip(tracked, finals) if f["stage"] in OPEN_STAGES and f["month"] == m.month
        )
        assert m.actual_cents == actual, m.month
        assert m.signed_cents == signed, m.month
        has_frozen = first_event < month_start(m.month) and m.month <= THIS_MONTH
        if not has_frozen:
            assert m.frozen_ev_micros is None, m.month
        else:
            assert m.frozen_ev_micros == expected_frozen(tracked, m.month), m.month
        assert m.complete == ended
        assert m.provisional == (ended and bool(still_open)), m.month
        assert sorted(r.name for r in m.still_open) == (still_open if ended else []), m.month
        if ended and has_frozen and actual:
            f_ = Fraction(m.frozen_ev_micros or 0, 10_000)  # cents
            assert close(m.accuracy, max(Fraction(0), 1 - abs(actual - f_) / actual)), m.month
            assert close(m.bias, (f_ - actual) / actual), m.month
        else:
            assert m.accuracy is None and m.bias is None, m.month
        if ended and has_frozen and not still_open:
            judged += 1
            err += abs(actual - Fraction(m.frozen_ev_micros or 0, 10_000))
            denom += actual
        if ended and still_open:
            provisional.append(m.month)
    assert fc.wape_months == judged and judged >= 3
    assert [m.month for m in fc.provisional_months] == provisional
    if denom:
        assert close(fc.wape, err / denom)
    else:
        assert fc.wape is None


# ---------------------------------------------------------------- the command line


def test_cli_lists_the_prospects_that_keep_a_month_provisional(eng, db_url):
    s = Store(eng, who="tester")
    s.add("Done", "10000", "Won", month="2026-10", at=datetime(2026, 8, 1, 9))
    s.add("[@click=app.quit]hi[/] | pipe", "4000", "Quote sent", month="2026-10", at=datetime(2026, 8, 2, 9))
    history.backfill(eng)
    history.record_snapshot(eng)

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["--db", db_url, "forecast", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    data = json.loads(run("--from", "2026-09", "--to", "2026-11", "--json"))
    oct_ = data["months"][1]
    assert oct_["provisional"] is True and [p["name"] for p in oct_["still_open"]] == ["[@click=app.quit]hi[/] | pipe"]
    assert oct_["actual"] == "10000.00" and oct_["signed"] == "0.00"
    assert data["totals"]["provisional_months"] == ["2026-10"]
    out = run("--from", "2026-09", "--to", "2026-11")
    lines = out.splitlines()
    assert any(line.startswith("2026-10 ?") for line in lines)
    assert any(line.startswith("2026-11 *") for line in lines)
    listed = next(line for line in lines if "[@click=app.quit]hi[/] | pipe" in line)
    assert listed.split()[0] == "2026-10" and "Quote sent" in listed and "4,000" in listed
    assert "1 provisional month(s) left out" in out
    assert "actual: what the month's prospects were won for" in out and "signed:" in out


def test_a_month_with_many_still_open_names_its_biggest_and_counts_the_rest(eng, db_url):
    """A big pipeline has tens of thousands of prospects still open per ended month: the text and
    the screen name each month's biggest (by EV, name, id) and count the rest; the JSON lists all."""
    s = Store(eng, who="tester")
    rng = random.Random(13)
    made = []  # (EV in cents x 100, name) of October's open prospects
    for i in range(25):
        stage = rng.choice(OPEN_STAGES)
        value = rng.choice([1_000, 2_000, 5_000])  # ties in EV, broken by name
        name = f"Oct {i:02d}"
        s.add(name, str(value), stage, month="2026-10", at=datetime(2026, 8, 1, 9))
        made.append((value * PCT[stage], name))
    s.add("Sep one", "700", "Enquiry", month="2026-09", at=datetime(2026, 8, 1, 9))
    s.add("Lost one", "90000", "Lost", month="2026-10", at=datetime(2026, 8, 1, 9))
    biggest = [name for _, name in sorted(made, key=lambda m: (-m[0], m[1]))]

    fc = forecast(eng, "2026-09", "2026-11", named=4)
    sep, oct_ = fc.months[0], fc.months[1]
    assert [r.name for r in oct_.still_open] == biggest[:4] and oct_.open_count == 25 and oct_.provisional
    assert [r.name for r in sep.still_open] == ["Sep one"] and sep.open_count == 1
    assert [r.name for r in forecast(eng, "2026-09", "2026-11").months[1].still_open] == biggest

    result = CliRunner().invoke(main, ["--db", db_url, "forecast", "--from", "2026-09", "--to", "2026-11"])
    assert result.exit_code == 0, result.stderr
    named = [line.split()[1:3] for line in result.stdout.splitlines() if line.startswith("2026-10  ")]
    assert [" ".join(n) for n in named[:-1]] == biggest[:10]
    assert "… and 15 more (evpipe list --filter month:2026-10)" in result.stdout
    data = json.loads(
        CliRunner().invoke(main, ["--db", db_url, "forecast", "--from", "2026-09", "--to", "2026-11", "--json"]).stdout
    )
    assert data["months"][1]["still_open_count"] == 25
    assert [p["name"] for p in data["months"][1]["still_open"]] == biggest
