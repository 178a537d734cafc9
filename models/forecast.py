"""The forecast by month, judged against what was won (docs/domain.md, "Forecast by month").

For each month m:

- count, TV, EV: today's pipeline expected in m (EV is today's forecast F(m); won prospects count at
  the won stage's probability, lost ones not at all), as `models.kpi` computes them, in SQL;
- frozen forecast: the EV expected in m in the KPI snapshot at m's start (models/history.py: the
  snapshot dated the last day of m-1); None when there is no such snapshot;
- actual A(m): the value of the live prospects on the won stage whose `closed_on` falls in m,
  summed in SQL;
- accuracy = max(0, 1 - |A - F| / A) and bias = (F - A) / A with F the frozen forecast; None when A
  is 0 or there is no frozen forecast.

Totals add up the months; WAPE = sum |A - F| / sum A over the months that are over (before the
current one) and have a frozen forecast (a month still running has no final actual yet).
The default range is the last 12 months and the next 12 (this month first among the next).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnClause, Engine, func, literal_column, select
from sqlmodel import col

from . import clock
from .errors import DomainError
from .history import frozen_forecasts
from .kpi import ALL, Kpi, Scope, kpis_by
from .ladder import WON, ev_sql, kind_rank_sql
from .rawdb import month_of
from .tables import Prospect, Stage, pk
from .values import MICROS_PER_CENT, money_str, month_add

MAX_MONTHS = 120


@dataclass(frozen=True)
class MonthForecast:
    month: str
    kpi: Kpi  # today's pipeline expected in the month: count, TV, EV (the forecast)
    frozen_ev_micros: int | None
    actual_cents: int
    complete: bool  # the month is over

    @property
    def accuracy(self) -> Decimal | None:
        if self.frozen_ev_micros is None or self.actual_cents == 0:
            return None
        a = self.actual_cents * MICROS_PER_CENT
        return max(Decimal(0), 1 - Decimal(abs(a - self.frozen_ev_micros)) / Decimal(a))

    @property
    def bias(self) -> Decimal | None:
        if self.frozen_ev_micros is None or self.actual_cents == 0:
            return None
        a = self.actual_cents * MICROS_PER_CENT
        return Decimal(self.frozen_ev_micros - a) / Decimal(a)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "count": self.kpi.count,
            "tv": money_str(self.kpi.tv_cents),
            "ev": money_str(self.kpi.ev_micros, micros=True),
            "frozen_forecast": None if self.frozen_ev_micros is None else money_str(self.frozen_ev_micros, micros=True),
            "actual": money_str(self.actual_cents),
            "accuracy": _num(self.accuracy),
            "bias": _num(self.bias),
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Forecast:
    months: list[MonthForecast]
    total: Kpi
    frozen_ev_micros: int  # sum over the months that have a frozen forecast
    actual_cents: int
    wape: Decimal | None
    wape_months: int

    def to_json(self) -> dict[str, Any]:
        return {
            "months": [m.to_json() for m in self.months],
            "totals": {
                "count": self.total.count,
                "tv": money_str(self.total.tv_cents),
                "ev": money_str(self.total.ev_micros, micros=True),
                "frozen_forecast": money_str(self.frozen_ev_micros, micros=True),
                "actual": money_str(self.actual_cents),
                "wape": _num(self.wape),
                "wape_months": self.wape_months,
            },
        }


def _num(d: Decimal | None) -> float | None:
    return None if d is None else float(round(d, 6))


def default_range(this_month: str | None = None) -> tuple[str, str]:
    m = this_month or clock.this_month()
    return month_add(m, -12), month_add(m, 11)


def months_between(first: str, last: str) -> list[str]:
    if first > last:
        raise DomainError(f"forecast: {first} is after {last}; --from must not be after --to")
    out = [first]
    while out[-1] < last:
        out.append(month_add(out[-1], 1))
        if len(out) > MAX_MONTHS:
            raise DomainError(f"forecast: at most {MAX_MONTHS} months at once")
    return out


def _first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def actuals_by_month(engine: Engine, first: str, last: str, scope: Scope = ALL) -> dict[str, int]:
    """Value won per month (closed_on's month), in SQL."""
    month: ColumnClause[str] = literal_column(month_of("prospect.closed_on"))
    q = (
        select(month, func.sum(col(Prospect.value_cents)))
        .join(Stage, col(Stage.id) == col(Prospect.stage_id))
        .where(col(Stage.kind) == WON, col(Prospect.closed_on).is_not(None), *Scope(owner=scope.owner).where())
        .where(col(Prospect.closed_on) >= _first_day(first), col(Prospect.closed_on) < _first_day(month_add(last, 1)))
        .group_by(month)
    )
    with engine.connect() as conn:
        return {m: int(v) for m, v in conn.execute(q)}


def forecast(
    engine: Engine, month_from: str | None = None, month_to: str | None = None, *, owner: str | None = None
) -> Forecast:
    """The forecast table for the months from `month_from` to `month_to` (default: last 12, next 12)."""
    this = clock.this_month()
    d_from, d_to = default_range(this)
    first, last = month_from or d_from, month_to or d_to
    months = months_between(first, last)
    scope = Scope(owner=owner, month_from=first, month_to=last)
    with engine.connect() as conn:
        live = dict(kpis_by(conn, "month", scope))
        frozen = frozen_forecasts(conn, months, Scope(owner=owner))
    actual = actuals_by_month(engine, first, last, scope)
    rows = [
        MonthForecast(
            m, live.get(m, Kpi()), None if (f := frozen[m]) is None else f.ev_micros, actual.get(m, 0), m < this
        )
        for m in months
    ]
    total = Kpi()
    for r in rows:
        total = total + r.kpi
    judged = [
        (r.actual_cents * MICROS_PER_CENT, r.frozen_ev_micros)
        for r in rows
        if r.complete and r.frozen_ev_micros is not None
    ]
    err = sum(abs(actual - frozen_ev) for actual, frozen_ev in judged)
    denom = sum(actual for actual, _ in judged)
    wape = Decimal(err) / Decimal(denom) if denom else None
    return Forecast(
        months=rows,
        total=total,
        frozen_ev_micros=sum(r.frozen_ev_micros for r in rows if r.frozen_ev_micros is not None),
        actual_cents=sum(r.actual_cents for r in rows),
        wape=wape,
        wape_months=len(judged),
    )


def month_prospects(engine: Engine, month: str, *, owner: str | None = None) -> list[Any]:
    """The live prospects of `month`, to follow up at the right time: those expected in it (open
    first, then won, then lost) and those won in it though expected in another month; each a
    `models.queries.ProspectRow`, biggest EV first within its kind."""
    from sqlalchemy import literal_column, or_

    from .queries import ProspectRow

    kind_order: ColumnClause[int] = literal_column(kind_rank_sql("stage.kind"))
    ev: ColumnClause[int] = literal_column(ev_sql("prospect.value_cents", "stage.kind", "stage.probability_bp"))
    won_in = (col(Stage.kind) == WON) & (literal_column(month_of("prospect.closed_on")) == month)
    q = (
        select(
            pk(Prospect.id),
            col(Prospect.name),
            col(Prospect.company),
            col(Prospect.stage_id),
            col(Stage.name),
            col(Stage.kind),
            col(Stage.probability_bp),
            col(Prospect.value_cents),
            col(Prospect.expected_month),
            col(Prospect.next_follow_up),
            col(Prospect.owner),
        )
        .join(Stage, col(Stage.id) == col(Prospect.stage_id))
        .where(*Scope(owner=owner).where(), or_(col(Prospect.expected_month) == month, won_in))
        .order_by(kind_order, ev.desc(), col(Prospect.name), col(Prospect.id))
    )
    with engine.connect() as conn:
        return [ProspectRow(*row) for row in conn.execute(q)]
