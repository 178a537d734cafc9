"""This season against last (issue 16, point 3), from the KPI history (models/history.py).

- "The same week last year" of a day D is D - 364 days (52 weeks: the same weekday), and its reading
  is the latest snapshot on or before that day and at most `SLACK_DAYS` before it (the weekly
  backfill leaves a reading every 7 days). Like for like, last year's reading is counted for the KPI
  period as it stood then: today's period moved back 12 months (`year_before`), so that last year's
  sales count as today's do (a rolling 12 months then, as now).
- A year of history exists when there is such a reading for today.
- `compare_trend`: for each point of a trend, the reading of its same week last year (or None).
- `year_sentence`: "EV is 12% above this time last year" (below, or level with), whole percent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import clock
from .kpi import ALL, Kpi, Scope, Snapshot, snapshots
from .values import month_add

YEAR_DAYS = 364
SLACK_DAYS = 6


def same_week_last_year(day: date) -> date:
    return day - timedelta(days=YEAR_DAYS)


def year_before(scope: Scope) -> Scope:
    """The scope a year ago: its KPI period starting 12 months earlier (none: unchanged)."""
    period = scope.period
    if period is None or period.start is None:
        return scope
    return replace(scope, period=replace(period, start=month_add(period.start, -12)))


def _reading(history: list[Snapshot], day: date) -> Snapshot | None:
    """The latest reading on or before `day`, no more than SLACK_DAYS before it."""
    found = None
    for snap in history:
        if snap.taken_on > day:
            break
        found = snap
    if found is None or (day - found.taken_on).days > SLACK_DAYS:
        return None
    return found


def compare_trend(source: Any, points: list[Snapshot], scope: Scope = ALL) -> list[Snapshot | None]:
    """For each point, the reading of its same week last year (None where there is none)."""
    if not points:
        return []
    first = same_week_last_year(points[0].taken_on) - timedelta(days=SLACK_DAYS)
    last = same_week_last_year(points[-1].taken_on)
    history = snapshots(source, year_before(scope), since=first, until=last)
    return [_reading(history, same_week_last_year(p.taken_on)) for p in points]


@dataclass(frozen=True)
class YearCompare:
    now: Kpi
    then: Kpi
    then_on: date

    @staticmethod
    def change(now: int, then: int) -> Decimal | None:
        """now / then - 1 (None when last year had nothing)."""
        if then == 0:
            return None
        return Decimal(now - then) / Decimal(then)

    @property
    def ev_change(self) -> Decimal | None:
        return self.change(self.now.ev_micros, self.then.ev_micros)

    @property
    def tv_change(self) -> Decimal | None:
        return self.change(self.now.tv_cents, self.then.tv_cents)

    def to_json(self) -> dict[str, Any]:
        from .values import money_str

        def num(d: Decimal | None) -> float | None:
            return None if d is None else float(round(d, 6))

        return {
            "then_on": self.then_on.isoformat(),
            "ev_then": money_str(self.then.ev_micros, micros=True),
            "tv_then": money_str(self.then.tv_cents),
            "ev_change": num(self.ev_change),
            "tv_change": num(self.tv_change),
            "sentence": year_sentence(self),
        }


def last_year(source: Any, now: Kpi, scope: Scope = ALL, today: date | None = None) -> YearCompare | None:
    """Today's KPIs against the same week last year (None without a year of history)."""
    day = same_week_last_year(today or clock.today())
    history = snapshots(source, year_before(scope), since=day - timedelta(days=SLACK_DAYS), until=day)
    snap = _reading(history, day)
    return None if snap is None else YearCompare(now, snap.kpi, snap.taken_on)


def reading_last_year(source: Any, scope: Scope = ALL, today: date | None = None) -> Kpi | None:
    """The KPIs of the same week last year (for the header), or None without a year of history."""
    day = same_week_last_year(today or clock.today())
    snap = _reading(snapshots(source, year_before(scope), since=day - timedelta(days=SLACK_DAYS), until=day), day)
    return None if snap is None else snap.kpi


def whole_percent(d: Decimal) -> int:
    return int((abs(d) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def year_sentence(c: YearCompare | None) -> str:
    """'EV is 12% above this time last year', '... below ...', 'EV is level with ...'."""
    if c is None:
        return "EV: no reading from this time last year yet"
    change = c.ev_change
    if change is None:
        return "EV: nothing in the pipeline this time last year to compare with"
    pct = whole_percent(change)
    if pct == 0:
        return "EV is level with this time last year"
    return f"EV is {pct}% {'above' if change > 0 else 'below'} this time last year"


def short_year_change(now: Kpi, then: Kpi | None) -> str:
    """The header's figure: EV against the same week last year, '+12% yr' ('' without a year of
    history or with no EV then)."""
    change = None if then is None else YearCompare.change(now.ev_micros, then.ev_micros)
    if change is None:
        return ""
    pct = whole_percent(change)
    return f"{'+' if change > 0 else '-' if change < 0 and pct else ''}{pct}% yr"


__all__ = [
    "YearCompare",
    "compare_trend",
    "last_year",
    "reading_last_year",
    "same_week_last_year",
    "short_year_change",
    "year_sentence",
]
