"""Sighting in: observed probabilities, Wilson intervals, conversion, suggestions, Brier; and the
real CRM data set against an independent computation from the CSV."""

from __future__ import annotations

import csv
import math
from collections import Counter
from datetime import date, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from evpipe.models import open_db
from evpipe.models.calibration import apply_suggestions, calibrate, changes_text, wilson_interval
from evpipe.models.errors import DomainError
from evpipe.models.forecast import forecast, signed_by_month
from evpipe.models.journal import ev_phrase
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent, Prospect, Stage, StageChange
from tests.conftest import WORKED_LADDER

pytestmark = pytest.mark.both_databases

DATA = Path(__file__).parent / "fixtures" / "crm"  # the real CRM practice data (README there)


# ---------------------------------------------------------------- Wilson


def wilson_by_quadratic(k: int, n: int, z: float) -> tuple[float, float]:
    """Independently: the Wilson interval is where |p_hat - p| = z sqrt(p (1 - p) / n), i.e. the roots
    of (1 + z^2/n) p^2 - (2 p_hat + z^2/n) p + p_hat^2 = 0."""
    ph = k / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


def test_wilson_known_values():
    low, high = wilson_interval(81, 263)
    assert round(low, 4) == 0.2553 and round(high, 4) == 0.3662  # the textbook example
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.975)
    for k, n in [(81, 263), (0, 10), (10, 10), (3, 7), (1, 1), (50, 100), (4238, 6711)]:
        got = wilson_interval(k, n)
        want = wilson_by_quadratic(k, n, z)
        assert got == pytest.approx(want, abs=1e-12), (k, n)
    assert wilson_interval(0, 10)[0] == 0.0 and round(wilson_interval(0, 10)[1], 4) == 0.2775
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


# ---------------------------------------------------------------- a hand-computed ladder


@pytest.fixture
def outcomes(db_url):
    """Worked ladder. Won: 6 from Quote sent, 2 from Deposit paid (closed in Jan 2026).
    Lost: 3 from Suspect, 2 from Enquiry, 4 from Quote sent, 1 from Deposit paid, 1 created lost,
    1 won then lost (a bounced payment). Plus open prospects, which never count."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    t0 = datetime(2026, 10, 1, 9)
    n = 0

    def add(stage, at=t0):
        nonlocal n
        n += 1
        return s.add(f"p{n}", "1000", stage, at=at).prospect.id

    for _ in range(6):
        s.move(add("Quote sent"), "won", at=datetime(2026, 11, 2, 9))
    for _ in range(2):
        s.move(add("Deposit paid", datetime(2025, 12, 1)), "won", at=datetime(2026, 1, 15, 9))
    for stage, k in (("Suspect", 3), ("Enquiry", 2), ("Quote sent", 4), ("Deposit paid", 1)):
        for _ in range(k):
            s.move(add(stage), "lost", at=datetime(2026, 11, 3, 9))
    s.add("imported loss", "500", "Lost", at=t0)
    bounced = add("Deposit paid")
    s.move(bounced, "won", at=datetime(2026, 11, 4, 9))
    s.move(bounced, "lost", at=datetime(2026, 11, 6, 9))
    # A prospect advanced, regressed and then lost counts where it was when lost (Enquiry).
    wobbly = add("Enquiry")
    s.move(wobbly, "Quote sent", at=datetime(2026, 10, 5))
    s.move(wobbly, "Enquiry", at=datetime(2026, 10, 6))
    s.move(wobbly, "lost", at=datetime(2026, 10, 7))
    for stage in ("Suspect", "Quote sent", "Deposit paid"):
        add(stage)  # still open
    deleted = add("Quote sent")
    s.move(deleted, "won", at=datetime(2026, 11, 2, 9))
    s.delete(deleted, at=datetime(2026, 11, 2, 10))  # deleted prospects never count
    yield eng
    eng.dispose()


def test_observed_by_hand(outcomes):
    cal = calibrate(outcomes)
    rows = {r.stage: r for r in cal.stages}
    assert [r.stage for r in cal.stages] == ["Suspect", "Enquiry", "Quote sent", "Deposit paid"]
    # Won by rung: Quote sent 6, Deposit paid 2; a deal won from Quote sent did not pass Deposit paid
    # (issue 9, point 4). Lost by rung: Suspect 3, Enquiry 2 + 1 wobbly, Quote 4, Deposit 1 + 1 won
    # there, then lost. The one created lost has no rung: evidence for no stage. W(s) and L(s) count
    # s and later rungs.
    assert [(r.won, r.lost, r.n) for r in cal.stages] == [(8, 12, 20), (8, 9, 17), (8, 6, 14), (2, 2, 4)]
    assert rows["Suspect"].observed == pytest.approx(8 / 20)
    assert rows["Deposit paid"].observed == pytest.approx(0.5)
    assert (rows["Quote sent"].low, rows["Quote sent"].high) == wilson_interval(8, 14)
    # Next step: the share that got past s (a later rung, or won from s); from the top open rung W / n.
    assert [r.conversion_next for r in cal.stages] == pytest.approx([17 / 20, 14 / 17, 10 / 14, 2 / 4])
    assert cal.won == 8 and cal.lost == 13 and cal.inferred == 1


def test_an_undone_move_is_no_evidence(outcomes):
    """A move undone, and the undo that put the prospect back, are no outcome's evidence: a won
    prospect reopened by mistake and put back by undo still closed from the rung it was won from,
    and was last on it (the undo's move out of the reopened stage is neither)."""
    s = Store(outcomes, who="tester")
    before = calibrate(outcomes)
    won_from_deposit = s.get("p7")  # won from Deposit paid in January
    assert (won_from_deposit.stage_name, won_from_deposit.closed_on) == ("Won", date(2026, 1, 15))
    s.move(won_from_deposit.id, "Suspect", at=datetime(2026, 11, 20, 9))
    assert calibrate(outcomes) != before  # (reopened: it is no outcome now)
    s.undo(at=datetime(2026, 11, 20, 10))
    assert s.get(won_from_deposit.id).closed_on == date(2026, 1, 15)
    assert calibrate(outcomes) == before


def test_suggestions_by_hand(outcomes):
    rows = {r.stage: r for r in calibrate(outcomes).stages}
    # Suspect 5% is outside the interval of 8/20: (8 + 10 x 0.05) / 30 = 28.3% -> 28%.
    assert rows["Suspect"].suggested_bp == 2800
    # Enquiry 10%: (8 + 1) / 27 = 33.3% -> 33%.
    assert rows["Enquiry"].suggested_bp == 3300
    # Quote sent 25%: (8 + 2.5) / 24 = 43.75% -> 44%.
    assert rows["Quote sent"].suggested_bp == 4400
    # Deposit paid: 2 won, 2 lost are too few.
    assert rows["Deposit paid"].suggested_bp is None and rows["Deposit paid"].note == "too few"
    assert [r.note for r in rows.values()] == ["", "", "", "too few"]


def test_no_suggestion_below_ten_outcomes(outcomes):
    cal = calibrate(outcomes, months=6)  # the two January wins fall out of the window
    rows = {r.stage: r for r in cal.stages}
    assert cal.since == date(2026, 5, 27)
    assert (rows["Deposit paid"].won, rows["Deposit paid"].lost) == (0, 2)
    assert rows["Deposit paid"].n == 2 and rows["Deposit paid"].suggested_bp is None
    assert rows["Deposit paid"].note == "no wins"
    assert rows["Suspect"].n == 18


def test_brier_by_hand(outcomes):
    cal = calibrate(outcomes)
    # Predicted at the last stage's probability: 6 won at 25%, 2 won at 80%; lost: 3 at 5%, 3 at 10%
    # (the wobbly one was on Enquiry), 4 at 25%, 1 at 80%, 1 at 100% (won, then lost). The prospect
    # created lost was never predicted.
    terms = 6 * 0.75**2 + 2 * 0.2**2 + 3 * 0.05**2 + 3 * 0.1**2 + 4 * 0.25**2 + 0.8**2 + 1.0
    assert cal.brier_n == 20
    assert cal.brier == pytest.approx(terms / 20)
    with_suggested = 6 * 0.56**2 + 2 * 0.2**2 + 3 * 0.28**2 + 3 * 0.33**2 + 4 * 0.44**2 + 0.8**2 + 1.0
    assert cal.brier_suggested == pytest.approx(with_suggested / 20)
    assert cal.brier_suggested < cal.brier


def test_apply_records_probability_changes(outcomes):
    store = Store(outcomes, who="tester")
    results = apply_suggestions(store, ["Quote sent"])
    assert [r.summary.split(":")[0] for r in results] == ["Quote sent"]
    assert store.stage("Quote sent").probability_bp == 4400
    assert store.stage("Suspect").probability_bp == 500  # not asked for: unchanged
    results = apply_suggestions(store)
    assert {store.stage(x).probability_bp for x in ("Suspect", "Enquiry")} == {2800, 3300}
    with outcomes.connect() as conn:
        probs = conn.execute(
            select(ChangeEvent.category, ChangeEvent.payload).where(ChangeEvent.action == "probability")
        ).all()
    assert len(probs) == 3 and {c for c, _ in probs} == {"prob"}
    # Each is an ordinary change: undo reverses the last.
    store.undo()
    assert store.stage("Enquiry").probability_bp == 1000


def test_nothing_changes_without_the_user(outcomes):
    store = Store(outcomes, who="tester")
    before = [s.probability_bp for s in store.ladder()]
    calibrate(outcomes)
    calibrate(outcomes, months=3)
    assert [s.probability_bp for s in store.ladder()] == before


def test_empty_evidence(store):
    cal = calibrate(store.engine)
    assert all(r.n == 0 and r.observed is None and r.low is None and r.suggested_bp is None for r in cal.stages)
    assert cal.brier is None
    with pytest.raises(DomainError):
        calibrate(store.engine, months=0)


# ---------------------------------------------------------------- evidence (issue 9, point 4)


def _closed(store, stage, won, lost, at=datetime(2026, 11, 2, 9)):
    for i in range(won + lost):
        p = store.add(f"{stage} {i}", "1000", stage, at=datetime(2026, 10, 1, 9)).prospect
        store.move(p.id, "won" if i < won else "lost", at=at)


def test_one_sided_stages_say_so_and_get_no_suggestion(engine):
    s = Store(engine, who="tester")  # the default ladder: Suspect, Enquiry, Quote sent, Date held, Deposit paid
    _closed(s, "Deposit paid", 12, 0)  # wins only
    _closed(s, "Suspect", 0, 12)  # losses only; for Suspect, the 12 wins from a later rung count too
    rows = {r.stage: r for r in calibrate(engine).stages}
    for stage in ("Enquiry", "Quote sent", "Date held", "Deposit paid"):
        assert (rows[stage].won, rows[stage].lost) == (12, 0)
        assert rows[stage].suggested_bp is None and rows[stage].note == "no losses"
    # Suspect: 12 of 24, 5% far outside: (12 + 0.5) / 34 = 36.8% -> 37%
    assert (rows["Suspect"].won, rows["Suspect"].lost) == (12, 12) and rows["Suspect"].suggested_bp == 3700


def _bulk_closed(engine, from_stage: str, outcome: str, count: int) -> None:
    """`count` prospects created on `from_stage` and moved to `outcome`, inserted in bulk."""
    store = Store(engine, who="tester")
    a, b = store.stage(from_stage), store.stage(outcome)
    with engine.connect() as conn:
        first = (conn.execute(select(Prospect.id).order_by(Prospect.id.desc())).scalars().first() or 0) + 1
    t0, t1 = datetime(2026, 10, 1, 9), datetime(2026, 11, 2, 9)
    prospects, changes = [], []
    for pid in range(first, first + count):
        prospects.append(
            dict(
                id=pid,
                name=f"bulk {pid}",
                value_cents=100_000,
                stage_id=b.id,
                owner="tester",
                created_at=t0,
                updated_at=t1,
                last_touch_at=t1,
                closed_on=t1.date(),
                version=1,
            )
        )
        changes.append(
            dict(
                prospect_id=pid,
                changed_at=t0,
                from_stage_id=None,
                to_stage_id=a.id,
                value_cents=100_000,
                to_probability_bp=0,
            )
        )
        changes.append(
            dict(
                prospect_id=pid,
                changed_at=t1,
                from_stage_id=a.id,
                to_stage_id=b.id,
                value_cents=100_000,
                to_probability_bp=0,
            )
        )
    with engine.begin() as conn:
        conn.execute(insert(Prospect.__table__), prospects)
        conn.execute(insert(StageChange.__table__), changes)


def test_no_open_suggestion_reaches_the_won_stage(worked_engine):
    _bulk_closed(worked_engine, "Deposit paid", "Won", 3000)
    _bulk_closed(worked_engine, "Deposit paid", "Lost", 1)
    # (3000 + 10 x 0.8) / 3011 = 99.9%: 100% before the cap, and a payment can still bounce
    rows = {r.stage: r for r in calibrate(worked_engine).stages}
    assert rows["Deposit paid"].suggested_bp == 9900 and rows["Deposit paid"].note == "below won"
    store = Store(worked_engine, who="tester")
    store.set_probability("Won", "95")  # a won stage below 100% holds every open stage under it
    cal = calibrate(worked_engine)
    assert all(r.suggested_bp is None or r.suggested_bp < 9500 for r in cal.stages)
    assert [r.suggested_bp for r in cal.stages] == [9400, 9400, 9400, 9400]


def test_the_ev_a_suggestion_moves_is_the_ev_it_moves(outcomes):
    cal = calibrate(outcomes)
    store = Store(outcomes, who="tester")
    suggested = cal.suggestions
    assert [r.stage for r in suggested] == ["Suspect", "Enquiry", "Quote sent"]
    # open on Suspect: one prospect of 1,000 (5% -> 28%: EV +230); Enquiry has none; Quote sent one of
    # 1,000 (25% -> 44%: EV +190)
    assert [r.ev_move_micros for r in suggested] == [230 * 10**6, 0, 190 * 10**6]
    assert cal.ev_move_micros == 420 * 10**6
    assert changes_text(cal) == [
        f"Suspect 5% → 28%, {ev_phrase(230 * 10**6)}",
        f"Enquiry 10% → 33%, {ev_phrase(0)}",
        f"Quote sent 25% → 44%, {ev_phrase(190 * 10**6)}",
        f"in all: {ev_phrase(420 * 10**6)}",
    ]
    results = apply_suggestions(store, calibration=cal)
    assert [r.d_ev_micros for r in results] == [r.ev_move_micros for r in suggested]


# ---------------------------------------------------------------- the real data set


def _day(text: str) -> date | None:
    """'20-10-16' is 20 October 2016 (day first, two-digit year)."""
    if not text:
        return None
    d, m, y = (int(x) for x in text.split("-"))
    return date(2000 + y, m, d)


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    """sales_pipeline.csv loaded straight into the tables (this test's own loader, not the importer):
    ladder Prospecting, Engaging, Won, Lost; each deal created on Prospecting, moved to Engaging on its
    engage date and to Won or Lost on its close date; value = close_value when won, else the product's
    list price (a lost deal's value is unknown)."""
    path = tmp_path_factory.mktemp("crm") / "crm.db"
    eng = open_db(f"sqlite:///{path}", seed_ladder=False)
    install_ladder(
        eng,
        [
            {"name": "Prospecting", "probability": "10"},
            {"name": "Engaging", "probability": "40"},
            {"name": "Won", "probability": "100", "kind": "won"},
            {"name": "Lost", "probability": "0", "kind": "lost"},
        ],
    )
    with (DATA / "products.csv").open(newline="") as f:
        prices = {r["product"].replace(" ", ""): int(r["sales_price"]) * 100 for r in csv.DictReader(f)}
    with eng.connect() as conn:
        stage = {name: sid for sid, name in conn.execute(select(Stage.id, Stage.name))}
    prospects, changes = [], []
    with (DATA / "sales_pipeline.csv").open(newline="") as f:
        for pid, row in enumerate(csv.DictReader(f), start=1):
            engaged, closed = _day(row["engage_date"]), _day(row["close_date"])
            deal = row["deal_stage"]
            value = int(row["close_value"]) * 100 if deal == "Won" else prices[row["product"].replace(" ", "")]
            created = datetime.combine(engaged or date(2017, 1, 1), time(9))
            prospects.append(
                dict(
                    id=pid,
                    name=row["opportunity_id"],
                    company=row["account"],
                    contact_name="",
                    email="",
                    phone="",
                    notes="",
                    custom_json="{}",
                    value_cents=value,
                    stage_id=stage[deal],
                    expected_month=None,
                    owner=row["sales_agent"],
                    created_at=created,
                    updated_at=created,
                    last_touch_at=created,
                    closed_on=closed,
                    needs_review=False,
                    version=1,
                )
            )
            path_ = ["Prospecting"] + (["Engaging"] if engaged else []) + ([deal] if closed else [])
            moments = [
                created,
                datetime.combine(engaged, time(10)) if engaged else None,
                datetime.combine(closed, time(11)) if closed else None,
            ]
            moments = [m for m in moments if m is not None]
            prev = None
            for name, when in zip(path_, moments):
                changes.append(
                    dict(
                        prospect_id=pid,
                        changed_at=when,
                        who="import",
                        from_stage_id=prev,
                        to_stage_id=stage[name],
                        value_cents=value,
                        to_probability_bp=0,
                    )
                )
                prev = stage[name]
    with eng.begin() as conn:
        conn.execute(insert(Prospect.__table__), prospects)
        conn.execute(insert(StageChange.__table__), changes)
    yield eng
    eng.dispose()


def _csv_rows():
    with (DATA / "sales_pipeline.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_real_data_observed_probabilities(crm):
    rows = _csv_rows()
    won = sum(1 for r in rows if r["deal_stage"] == "Won")
    lost_prospecting = sum(1 for r in rows if r["deal_stage"] == "Lost" and not r["engage_date"])
    lost_engaging = sum(1 for r in rows if r["deal_stage"] == "Lost" and r["engage_date"])
    cal = calibrate(crm)
    by = {r.stage: r for r in cal.stages}
    assert (by["Prospecting"].won, by["Prospecting"].lost) == (won, lost_prospecting + lost_engaging)
    assert (by["Engaging"].won, by["Engaging"].lost) == (won, lost_engaging)
    assert won == 4238 and lost_prospecting + lost_engaging == 2473
    assert by["Engaging"].observed == pytest.approx(won / (won + lost_engaging))
    assert by["Prospecting"].observed == pytest.approx(4238 / 6711)
    low, high = wilson_by_quadratic(won, won + lost_engaging, 1.959963984540054)
    assert (by["Engaging"].low, by["Engaging"].high) == pytest.approx((low, high))
    # 40% is far outside: suggested (W + 10 x 0.4) / (n + 10), to a whole percent.
    assert by["Engaging"].suggested_bp == round((won + 4) / (won + lost_engaging + 10) * 100) * 100


def test_real_data_window(crm, monkeypatch):
    monkeypatch.setenv("EVPIPE_NOW", "2017-12-31T12:00")
    rows = _csv_rows()
    since = date(2017, 9, 30)
    won = sum(1 for r in rows if r["deal_stage"] == "Won" and _day(r["close_date"]) >= since)
    lost = sum(1 for r in rows if r["deal_stage"] == "Lost" and _day(r["close_date"]) >= since)
    cal = calibrate(crm, months=3)
    assert cal.since == since
    assert (cal.stages[0].won, cal.stages[0].lost) == (won, lost)


def test_real_data_monthly_actuals(crm, monkeypatch):
    totals: Counter[str] = Counter()
    for r in _csv_rows():
        if r["deal_stage"] == "Won":
            d = _day(r["close_date"])
            totals[f"{d.year:04d}-{d.month:02d}"] += int(r["close_value"]) * 100
    assert len(totals) == 10 and sum(totals.values()) > 0
    assert signed_by_month(crm, "2016-01", "2018-12") == dict(totals)
    monkeypatch.setenv("EVPIPE_NOW", "2018-03-15T12:00")
    fc = forecast(crm)  # last 12 and next 12 from March 2018: March 2017 to February 2019
    got = {m.month: m.signed_cents for m in fc.months if m.signed_cents}  # won by close date
    assert got == {m: v for m, v in totals.items() if m >= "2017-03"}
