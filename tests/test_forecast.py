"""Forecast by month: live forecast, frozen forecast at the month's start, actuals like for like
(won of the prospects expected in the month, whenever won), signed by close date, accuracy, WAPE,
provisional months."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from evpipe.models import history, open_db
from evpipe.models.errors import DomainError
from evpipe.models.forecast import MonthForecast, default_range, forecast, month_prospects
from evpipe.models.kpi import Kpi
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from tests.conftest import WORKED_LADDER

pytestmark = pytest.mark.both_databases


def C(amount: int) -> int:
    return amount * 100


def M(amount: float) -> int:
    return round(amount * 1_000_000)


@pytest.fixture
def sales(db_url):
    """P1 10,000 Quote sent (25%) for Oct; P2 4,000 Deposit paid (80%) for Nov, won 10 Oct;
    P3 8,000 Enquiry (10%) for Nov, won 5 Nov; P1 lost 20 Oct; P4 5,000 Suspect for Feb, added 20 Nov."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    s.add("P1", "10000", "Quote sent", month="2026-10", at=datetime(2026, 9, 15, 9))
    s.add("P2", "4000", "Deposit paid", month="2026-11", at=datetime(2026, 9, 15, 9))
    s.add("P3", "8000", "Enquiry", month="2026-11", at=datetime(2026, 9, 15, 9))
    s.move("P2", "won", at=datetime(2026, 10, 10, 12))
    s.move("P1", "lost", at=datetime(2026, 10, 20, 12))
    s.move("P3", "won", at=datetime(2026, 11, 5, 12))
    s.add("P4", "5000", "Suspect", month="2027-02", at=datetime(2026, 11, 20, 9))
    history.record_snapshot(eng)  # reconstructs the starts of October and November
    yield eng
    eng.dispose()


def test_default_range_is_last_12_and_next_12():
    assert default_range("2026-11") == ("2025-11", "2027-10")
    months = forecast.__globals__["months_between"](*default_range("2026-11"))
    assert len(months) == 24 and months[12] == "2026-11"


def test_forecast_by_hand(sales):
    fc = forecast(sales)
    rows = {m.month: m for m in fc.months}
    assert len(fc.months) == 24
    # September started before any data: no frozen forecast.
    assert rows["2026-09"].frozen_ev_micros is None and rows["2026-09"].accuracy is None
    # October: frozen at 30 Sep = P1's 2,500; P1, the one prospect expected in October, was lost:
    # nothing won for October. P2 (for November) was signed in October.
    oct_ = rows["2026-10"]
    assert oct_.kpi == Kpi()
    assert oct_.frozen_ev_micros == M(2_500)
    assert oct_.actual_cents == 0 and oct_.signed_cents == C(4_000)
    assert oct_.accuracy is None and oct_.bias is None  # nothing won: no ratio to take
    assert oct_.complete and not oct_.provisional
    # November: frozen at 31 Oct = P2 won (4,000 at 100%) + P3 800 = 4,800; its prospects won
    # 12,000 (P2 in October, P3 in November); signed in November: P3's 8,000. Not over: not judged.
    nov = rows["2026-11"]
    assert nov.kpi == Kpi(2, C(12_000), M(12_000))
    assert nov.frozen_ev_micros == M(4_800)
    assert nov.actual_cents == C(12_000) and nov.signed_cents == C(8_000)
    assert nov.accuracy is None and nov.bias is None
    assert not nov.complete and not nov.provisional
    # February: today's forecast only.
    feb = rows["2027-02"]
    assert feb.kpi == Kpi(1, C(5_000), M(250)) and feb.frozen_ev_micros is None and feb.actual_cents == 0
    # Totals; WAPE over ended months with a frozen forecast: October only, and it sold nothing.
    # Frozen and actual are totalled like for like, over the same (WAPE's) months: they took in
    # November's frozen 4,800 (not over) and its 12,000 won, each on one side only.
    assert fc.total == Kpi(3, C(17_000), M(12_250))
    assert fc.frozen_ev_micros == M(2_500)
    assert fc.actual_cents == 0 and fc.signed_cents == C(12_000)
    assert fc.wape is None and fc.wape_months == 1
    assert fc.provisional_months == []


def test_forecast_json_shape(sales):
    data = forecast(sales, "2026-10", "2026-11").to_json()
    assert [m["month"] for m in data["months"]] == ["2026-10", "2026-11"]
    oct_ = data["months"][0]
    assert oct_ == {
        "month": "2026-10",
        "count": 0,
        "tv": "0.00",
        "ev": "0.00",
        "frozen_forecast": "2500.00",
        "actual": "0.00",
        "signed": "4000.00",
        "accuracy": None,
        "bias": None,
        "complete": True,
        "provisional": False,
        "still_open_count": 0,
        "still_open": [],
    }
    assert data["months"][1]["actual"] == "12000.00" and data["months"][1]["signed"] == "8000.00"
    assert data["totals"]["wape"] is None and data["totals"]["wape_months"] == 1
    assert data["totals"]["actual"] == "0.00" and data["totals"]["signed"] == "12000.00"
    assert data["totals"]["frozen_forecast"] == "2500.00"  # October's, like for like
    assert data["totals"]["provisional_months"] == []


def test_accuracy_is_clamped_and_undefined_without_actuals():
    over = MonthForecast("2026-01", Kpi(), M(2_500), C(1_000), True)
    assert over.accuracy == 0 and over.bias == Decimal("1.5")
    none_won = MonthForecast("2026-01", Kpi(), M(2_500), 0, True)
    assert none_won.accuracy is None and none_won.bias is None
    exact = MonthForecast("2026-01", Kpi(), M(1_000), C(1_000), True)
    assert exact.accuracy == 1 and exact.bias == 0


def test_wape_counts_months_with_a_frozen_forecast_and_no_sales(sales):
    s = Store(sales, who="tester")
    # Something expected in September at its start: add it back-dated to August, then lose it.
    s.add("Early", "2000", "Deposit paid", month="2026-09", at=datetime(2026, 8, 20, 9))
    s.move("Early", "lost", at=datetime(2026, 9, 25, 9))
    # And a sale for October, quoted in September and won in October.
    s.add("Oct sale", "4000", "Quote sent", month="2026-10", at=datetime(2026, 9, 1, 9))
    s.move("Oct sale", "won", at=datetime(2026, 10, 12, 9))
    from sqlalchemy import delete

    from evpipe.models.tables import KpiSnapshot, KpiSnapshotMonth

    with sales.begin() as conn:  # rebuild the history with the new past
        conn.execute(delete(KpiSnapshotMonth))
        conn.execute(delete(KpiSnapshot))
    history.backfill(sales)
    fc = forecast(sales, "2026-09", "2026-11")
    sep, oct_ = fc.months[0], fc.months[1]
    assert sep.frozen_ev_micros == M(1_600) and sep.actual_cents == 0 and sep.accuracy is None
    assert oct_.frozen_ev_micros == M(2_500 + 1_000) and oct_.actual_cents == C(4_000)
    # WAPE = (|0 - 1600| + |4000 - 3500|) / (0 + 4000)
    assert fc.wape == Decimal(2_100) / Decimal(4_000) and fc.wape_months == 2


def test_bad_ranges_are_refused(sales):
    with pytest.raises(DomainError, match="after"):
        forecast(sales, "2027-01", "2026-01")
    with pytest.raises(DomainError, match="at most"):
        forecast(sales, "2000-01", "2026-01")


def test_month_prospects(sales):
    names = [r.name for r in month_prospects(sales, "2026-11")]
    assert names == ["P3", "P2"]  # both won, expected in November; the bigger first
    assert [r.name for r in month_prospects(sales, "2026-10")] == ["P2", "P1"]  # P2 won in October, P1 expected
    assert [r.name for r in month_prospects(sales, "2027-02")] == ["P4"]
