"""The forecast by month, judged like for like against what was won (docs/domain.md, "Forecast").

For each month m:

- count, TV, EV: today's pipeline expected in m (EV is today's forecast F(m); won prospects count at
  the won stage's probability, lost ones not at all), as `models.kpi` computes them, in SQL;
- frozen forecast: the EV expected in m in the KPI snapshot at m's start (models/history.py: the
  snapshot dated the last day of m-1); None when there is no such snapshot;
- actual A(m): the value of the live won prospects whose expected month is m, whenever they were
  won (before m, during it or after it), summed in SQL: the same prospects the forecast priced;
- signed: the value of the live won prospects whose `closed_on` falls in m, whatever their expected
  month (the orders signed that month; not compared with the forecast);
- still open: for a month that has ended, its live prospects still on an open stage. While there
  are any, the month's figures are provisional: those prospects may yet be won.
- accuracy = max(0, 1 - |A - F| / A) and bias = (F - A) / A with F the frozen forecast, only for a
  month that has ended; None for the current and later months, when A is 0 or when there is no
  frozen forecast.

Totals add up the months; WAPE = sum |A - F| / sum A over the months that have ended, have a frozen
forecast and are not provisional (their figures are final). The default range is the last 12 months
and the next 12 (this month first among the next).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from . import clock
from .errors import DomainError
from .kpi import ALL, Kpi, Scope, kpis_by, months_holder
from .ladder import OPEN, WON, ev_sql, kind_rank_sql
from .queries import ProspectRow
from .rawdb import as_date, as_day, dialect_name, fetch_all, fetch_chunks, month_of, raw_cursor
from .values import MICROS_PER_CENT, money_str, month_add

MAX_MONTHS = 120


@dataclass(frozen=True)
class MonthForecast:
    month: str
    kpi: Kpi  # today's pipeline expected in the month: count, TV, EV (the forecast)
    frozen_ev_micros: int | None
    actual_cents: int  # A(m): won of the prospects expected in the month, whenever won
    complete: bool  # the month has ended
    signed_cents: int = 0  # won during the month (by close date), whatever month they were expected in
    still_open: tuple[ProspectRow, ...] = ()  # a month that has ended: its prospects still open (see `named`)
    still_open_count: int = -1  # how many there are (-1: as many as `still_open` holds)

    @property
    def open_count(self) -> int:
        """How many of the month's prospects are still open (`still_open` may name only the biggest)."""
        return len(self.still_open) if self.still_open_count < 0 else self.still_open_count

    @property
    def provisional(self) -> bool:
        """The month has ended but some of its prospects are still open: A may still grow."""
        return self.complete and self.open_count > 0

    @property
    def judged(self) -> bool:
        """Accuracy and bias apply: the month has ended and a forecast was frozen at its start."""
        return self.complete and self.frozen_ev_micros is not None

    @property
    def accuracy(self) -> Decimal | None:
        if not self.judged or self.actual_cents == 0:
            return None
        assert self.frozen_ev_micros is not None
        a = self.actual_cents * MICROS_PER_CENT
        return max(Decimal(0), 1 - Decimal(abs(a - self.frozen_ev_micros)) / Decimal(a))

    @property
    def bias(self) -> Decimal | None:
        if not self.judged or self.actual_cents == 0:
            return None
        assert self.frozen_ev_micros is not None
        a = self.actual_cents * MICROS_PER_CENT
        return Decimal(self.frozen_ev_micros - a) / Decimal(a)

    def to_json(self, rows: Callable[[Iterator[dict[str, Any]]], Any] = list) -> dict[str, Any]:
        """`rows`: what the prospects still open become (a list; the command line writes them as
        they are made)."""
        return {
            "month": self.month,
            "count": self.kpi.count,
            "tv": money_str(self.kpi.tv_cents),
            "ev": money_str(self.kpi.ev_micros, micros=True),
            "frozen_forecast": None if self.frozen_ev_micros is None else money_str(self.frozen_ev_micros, micros=True),
            "actual": money_str(self.actual_cents),
            "signed": money_str(self.signed_cents),
            "accuracy": _num(self.accuracy),
            "bias": _num(self.bias),
            "complete": self.complete,
            "provisional": self.provisional,
            "still_open_count": self.open_count,
            "still_open": rows(open_json(r) for r in self.still_open),
        }


def open_json(r: ProspectRow) -> dict[str, Any]:
    """One prospect still open for a month that has ended, for JSON."""
    return {
        "id": r.id,
        "name": r.name,
        "stage": r.stage,
        "value": money_str(r.value_cents),
        "ev": money_str(r.ev_micros, micros=True),
        "owner": r.owner,
        "follow_up": None if r.next_follow_up is None else r.next_follow_up.isoformat(),
    }


@dataclass(frozen=True)
class Forecast:
    months: list[MonthForecast]
    total: Kpi
    #: The frozen forecast and the actual, like for like: summed over the same months, those WAPE
    #: judges (ended, with a forecast frozen at their start, none of their prospects still open).
    #: (Summed apart, the frozen total took in the month not yet over, and the actual the future
    #: months' early wins.)
    frozen_ev_micros: int
    actual_cents: int
    wape: Decimal | None
    wape_months: int
    signed_cents: int = 0

    @property
    def provisional_months(self) -> list[MonthForecast]:
        """The months that have ended with prospects still open, left out of WAPE."""
        return [m for m in self.months if m.provisional]

    def to_json(self, rows: Callable[[Iterator[dict[str, Any]]], Any] = list) -> dict[str, Any]:
        return {
            "months": [m.to_json(rows) for m in self.months],
            "totals": {
                "count": self.total.count,
                "tv": money_str(self.total.tv_cents),
                "ev": money_str(self.total.ev_micros, micros=True),
                "frozen_forecast": money_str(self.frozen_ev_micros, micros=True),
                "actual": money_str(self.actual_cents),
                "signed": money_str(self.signed_cents),
                "wape": _num(self.wape),
                "wape_months": self.wape_months,
                "provisional_months": [m.month for m in self.provisional_months],
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


# The reads below go from the stage (won or open) to its live prospects, by the index on
# (deleted_at, stage_id, expected_month): only the prospects of those stages are read, not every
# live prospect with a look at its stage (issue 13: the sales by month took 4.6 s at 1,000,000).
_BY_STAGE = "FROM stage s CROSS JOIN prospect p WHERE p.stage_id = s.id AND s.kind = :kind"


def actuals_by_month(engine: Any, first: str, last: str, scope: Scope = ALL) -> dict[str, int]:
    """A(m): the value of the live won prospects expected in each month, whenever they were won, in SQL."""
    where, params = Scope(owner=scope.owner, month_from=first, month_to=last).sql()
    sql = (
        f"SELECT p.expected_month, sum(p.value_cents) {_BY_STAGE} AND p.expected_month IS NOT NULL AND {where} "
        "GROUP BY p.expected_month"
    )
    return {str(m): int(v) for m, v in fetch_all(engine, sql, {"kind": WON, **params})}


def signed_by_month(engine: Any, first: str, last: str, scope: Scope = ALL) -> dict[str, int]:
    """Value won during each month (closed_on's month), whatever month it was expected in, in SQL."""
    where, params = Scope(owner=scope.owner).sql()
    month = month_of("p.closed_on", dialect_name(engine))
    sql = (
        f"SELECT {month}, sum(p.value_cents) {_BY_STAGE} AND p.closed_on IS NOT NULL AND {where} "
        f"AND p.closed_on >= :from_day AND p.closed_on < :to_day GROUP BY {month}"
    )
    days = {"from_day": _first_day(first), "to_day": _first_day(month_add(last, 1))}
    return {m: int(v) for m, v in fetch_all(engine, sql, {"kind": WON, **params, **days})}


def month_start_key(month: str) -> date:
    """The date of the snapshot that holds the state at the start of `month` ('YYYY-MM'):
    the last day of the month before (models/history.py)."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    return first - timedelta(days=1)


def latest_and_first(source: Any) -> tuple[Any, Any]:
    """(the day of the latest reading of the whole pipeline, the moment of the first journal
    entry), as plain SQL reads them (None where there is none). Two lookups by the indexes."""
    (latest, first), *_ = fetch_all(
        source,
        "SELECT (SELECT max(taken_on) FROM kpi_snapshot WHERE scope = :scope), (SELECT min(at) FROM change_event)",
        {"scope": ALL.key},
    )
    return latest, first


def month_starts_missing(source: Any, today: date) -> bool:
    """Whether a month-start snapshot (this month's or an earlier one's, since the latest reading)
    is not recorded yet though data existed by then: a month that began with no change made, or
    none since. Month starts are recorded with the day's first change (models/history.py); a
    forecast read before one would leave the months that ended meanwhile unjudged. Without
    SQLAlchemy."""
    latest, first = latest_and_first(source)
    this_start = today.replace(day=1)
    first_day = as_date(first)
    if first_day is None or first_day >= this_start:
        return False  # no data before this month began: no month start to record
    return latest is None or as_day(latest) < this_start - timedelta(days=1)


def frozen_forecasts(source: Any, months: list[str], scope: Scope = ALL) -> dict[str, Kpi | None]:
    """For each month, the forecast for it in the snapshot at the month's start (None when there is
    no such snapshot; a zero Kpi when the snapshot had nothing expected in that month). `source`:
    an engine or connection, a SqliteReader or a `raw_cursor`."""
    keys = {month_start_key(m): m for m in months}
    out: dict[str, Kpi | None] = {m: None for m in months}
    if not keys:
        return out
    days = {f"d{i}": day for i, day in enumerate(keys)}
    snaps = fetch_all(
        source,
        f"SELECT s.taken_on, {months_holder('s')} FROM kpi_snapshot s WHERE s.scope = :scope "
        f"AND s.taken_on IN ({', '.join(':' + k for k in days)})",
        {"scope": scope.key, **days},
    )
    if not snaps:
        return out
    wanted: dict[int, set[str]] = {}  # the snapshot holding the month rows -> the months read there
    for day, holder in snaps:
        wanted.setdefault(int(holder), set()).add(keys[as_day(day)])
        out[keys[as_day(day)]] = Kpi()
    rows = fetch_all(
        source,
        "SELECT kpi_snapshot_month.snapshot_id, kpi_snapshot_month.month, kpi_snapshot_month.count, "
        "kpi_snapshot_month.tv_cents, kpi_snapshot_month.ev_micros FROM kpi_snapshot_month "
        f"WHERE kpi_snapshot_month.snapshot_id IN ({', '.join(str(i) for i in wanted)})",
    )
    for holder, month, count, tv, ev in rows:
        if month in wanted[int(holder)]:
            out[month] = Kpi(int(count), int(tv), int(ev))
    return out


def _row_query():
    from sqlalchemy import select
    from sqlmodel import col

    from .tables import Prospect, Stage, pk

    return select(
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
    ).join(Stage, col(Stage.id) == col(Prospect.stage_id))


#: How many of a provisional month's prospects still open the forecast's text and screen name (the
#: biggest EV first); the rest are counted ("and 56,115 more"), as a big pipeline has hundreds of
#: thousands of them. `forecast --json` lists them all.
STILL_OPEN_NAMED = 10


def still_open_counts(engine: Any, first: str, last: str, *, owner: str | None = None) -> dict[str, int]:
    """How many live prospects on an open stage each month from `first` to `last` has (one query)."""
    where, params = Scope(owner=owner, month_from=first, month_to=last).sql()
    sql = f"SELECT p.expected_month, COUNT(*) {_BY_STAGE} AND {where} GROUP BY p.expected_month"
    with raw_cursor(engine) as cursor:
        return {str(m): int(n) for m, n in fetch_all(cursor, sql, {"kind": OPEN, **params})}


def still_open(
    engine: Any,
    first: str,
    last: str,
    *,
    owner: str | None = None,
    named: int | None = None,
    months: Iterable[str] = (),
) -> list[ProspectRow]:
    """The live prospects on an open stage expected in a month from `first` to `last` (the months
    that have ended, for the forecast): by month, then biggest EV first. `named`: only that many
    of each of `months` (the biggest; the months that have any, `still_open_counts`)."""
    columns = (
        "p.id, p.name, p.company, p.stage_id, s.name, s.kind, s.probability_bp, p.value_cents, "
        "p.expected_month, p.next_follow_up, p.owner"
    )
    biggest = f"{ev_sql('p.value_cents', 's.kind', 's.probability_bp')} DESC, p.name, p.id"
    if named is None:
        where, params = Scope(owner=owner, month_from=first, month_to=last).sql()
        queries = [(f"SELECT {columns} {_BY_STAGE} AND {where} ORDER BY p.expected_month, {biggest}", params)]
    else:  # each month's first `named` in that order, one query a month: the database keeps only those while it sorts
        queries = []
        for month in sorted(months):
            where, params = Scope(owner=owner, month_from=month, month_to=month).sql()
            sql = f"SELECT {columns} {_BY_STAGE} AND {where} ORDER BY {biggest} LIMIT :named"
            queries.append((sql, {**params, "named": named}))
    out = []
    # a big pipeline has hundreds of thousands: a stage's, an owner's, a month's and a day's text
    # (or date) is kept once, not once a prospect
    texts: dict[Any, Any] = {}
    once = texts.setdefault
    days: dict[Any, date | None] = {}
    with raw_cursor(engine) as cursor:
        for sql, params in queries:
            for chunk in fetch_chunks(cursor, sql, {"kind": OPEN, **params}):
                for pid, name, company, sid, stage, kind, bp, value, month, day, who in chunk:
                    follow_up = days[day] if day in days else days.setdefault(day, as_date(day))
                    row = (pid, name, company, sid, once(stage, stage), once(kind, kind), bp, value, once(month, month))
                    out.append(ProspectRow(*row, follow_up, once(who, who)))
    return out


def forecast(
    engine: Any,
    month_from: str | None = None,
    month_to: str | None = None,
    *,
    owner: str | None = None,
    named: int | None = None,
) -> Forecast:
    """The forecast table for the months from `month_from` to `month_to` (default: last 12, next 12).
    `named`: how many of each provisional month's prospects still open to name (the biggest; all
    when None), the others only counted."""
    this = clock.this_month()
    d_from, d_to = default_range(this)
    first, last = month_from or d_from, month_to or d_to
    months = months_between(first, last)
    scope = Scope(owner=owner, month_from=first, month_to=last)
    with raw_cursor(engine, transaction=True) as cur:  # an engine or a SqliteReader: no SQLAlchemy needed
        live = dict(kpis_by(cur, "month", scope))
        frozen = frozen_forecasts(cur, months, Scope(owner=owner))
    actual = actuals_by_month(engine, first, last, scope)
    signed = signed_by_month(engine, first, last, scope)
    ended = [m for m in months if m < this]
    open_rows: dict[str, list[ProspectRow]] = {}
    open_counts: dict[str, int] = {}
    if ended:
        if named is not None:
            open_counts = still_open_counts(engine, ended[0], ended[-1], owner=owner)
        for p in still_open(engine, ended[0], ended[-1], owner=owner, named=named, months=open_counts):
            open_rows.setdefault(p.month or "", []).append(p)
    rows = [
        MonthForecast(
            m,
            live.get(m, Kpi()),
            None if (f := frozen[m]) is None else f.ev_micros,
            actual.get(m, 0),
            m < this,
            signed.get(m, 0),
            tuple(open_rows.get(m, ())),
            -1 if named is None else open_counts.get(m, 0),
        )
        for m in months
    ]
    total = Kpi()
    for r in rows:
        total = total + r.kpi
    judged = [
        (r.actual_cents * MICROS_PER_CENT, r.frozen_ev_micros)
        for r in rows
        if r.judged and not r.provisional and r.frozen_ev_micros is not None
    ]
    err = sum(abs(actual - frozen_ev) for actual, frozen_ev in judged)
    denom = sum(actual for actual, _ in judged)
    wape = Decimal(err) / Decimal(denom) if denom else None
    return Forecast(
        months=rows,
        total=total,
        frozen_ev_micros=sum(frozen_ev for _, frozen_ev in judged),
        actual_cents=denom // MICROS_PER_CENT,
        wape=wape,
        wape_months=len(judged),
        signed_cents=sum(r.signed_cents for r in rows),
    )


def month_prospects(engine: Any, month: str, *, owner: str | None = None) -> list[ProspectRow]:
    """The live prospects of `month`, to follow up at the right time: those expected in it (open
    first, then won, then lost) and those won in it though expected in another month; each a
    `models.queries.ProspectRow`, biggest EV first within its kind."""
    from sqlalchemy import ColumnClause, literal_column, or_
    from sqlmodel import col

    from .dialect import month_of as month_of_column
    from .tables import Prospect, Stage

    kind_order: ColumnClause[int] = literal_column(kind_rank_sql("stage.kind"))
    ev: ColumnClause[int] = literal_column(ev_sql("prospect.value_cents", "stage.kind", "stage.probability_bp"))
    won_in = (col(Stage.kind) == WON) & (month_of_column(col(Prospect.closed_on)) == month)
    q = (
        _row_query()
        .where(*Scope(owner=owner).where(), or_(col(Prospect.expected_month) == month, won_in))
        .order_by(kind_order, ev.desc(), col(Prospect.name), col(Prospect.id))
    )
    with engine.connect() as conn:
        return [ProspectRow(*row) for row in conn.execute(q)]
