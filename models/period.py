"""The KPI period: which prospects the KPIs count (docs/domain.md, "The KPI period"). Defined once,
in Python (`Period.holds`) and as SQL (`Period.sql`, `Period.sql_on_stage`, `Period.months_sql`),
like models/ladder.py does for what a prospect adds to TV and EV.

    An open prospect counts whatever its expected month (or none).
    A won or lost prospect counts when its expected month lies in the period, or when it has no
    expected month (nothing dates it before the period; give it a month to date it).

A period has a first month and no last one: every month after the first is in it, so a deal won
early for next year still counts. Which first month is a setting of the database (`kpi_period`):

- `12m` (the default): rolling, the 12 months up to and including the current month, so the
  first month moves on when the month does (`Nm` for N months, 1 to 600);
- `2026-01`: fixed, from that month on;
- `all`: no period, every won prospect whatever its month (what evpipe did before the period).

The header, `evpipe kpi`, `trend`, exports and the KPI history all read the period here. This
module imports the standard library and models.rawdb only (the app's first paint reads it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from .ladder import OPEN
from .rawdb import fetch_all

#: The key of the setting in the `setting` table.
SETTING_KEY = "kpi_period"
#: The setting of a database that has none.
DEFAULT_SETTING = "12m"
#: The most months a rolling period may span (50 years).
MAX_MONTHS = 600

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def months_back(today: date, months: int) -> str:
    """The first month ('YYYY-MM') of the `months` months up to and including today's."""
    index = today.year * 12 + (today.month - 1) - (months - 1)
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True)
class Period:
    """The prospects the KPIs count: open ones whatever their month, won and lost ones expected in
    `start` ('YYYY-MM') or later or with no expected month. `start` None: no period (every
    prospect counts)."""

    start: str | None = None
    setting: str = "all"  # how it was chosen: '12m', '2026-01' or 'all'

    @property
    def restricts(self) -> bool:
        return self.start is not None

    # ------------------------------------------------------------ the rule, in Python

    def in_months(self, month: str | None) -> bool:
        """Whether a closed prospect expected in `month` counts: the month lies in the period, or
        there is no month (nothing dates it before the period)."""
        return self.start is None or month is None or month >= self.start

    def holds(self, kind: str, month: str | None) -> bool:
        """Whether a prospect on a stage of this kind, expected in `month`, is in the period."""
        return kind == OPEN or self.in_months(month)

    # ------------------------------------------------------------ the rule, as SQL

    def months_sql(self, month: str) -> tuple[str, dict[str, Any]]:
        """`in_months` as a SQL condition on a month expression (always true or false, never NULL)."""
        if self.start is None:
            return "1 = 1", {}
        return f"({month} IS NULL OR {month} >= :period_start)", {"period_start": self.start}

    def sql(self, kind: str, month: str) -> tuple[str, dict[str, Any]]:
        """`holds` as a SQL condition on a stage-kind expression and a month expression."""
        if self.start is None:
            return "1 = 1", {}
        months, params = self.months_sql(month)
        return f"({kind} = '{OPEN}' OR {months})", params

    def sql_on_stage(self, stage_id: str, month: str) -> tuple[str, dict[str, Any]]:
        """`holds` as a SQL condition on a stage-id expression (the prospect table alone, so that
        the KPI sums stay on their covering index): the stage's kind is looked up once."""
        if self.start is None:
            return "1 = 1", {}
        months, params = self.months_sql(month)
        return f"({stage_id} IN (SELECT s.id FROM stage s WHERE s.kind = '{OPEN}') OR {months})", params

    # ------------------------------------------------------------ how it reads

    @property
    def label(self) -> str:
        """The period in a few words: 'Jan 2026 on', 'all time'."""
        if self.start is None:
            return "all time"
        return f"{month_name(self.start)} on"

    @property
    def short(self) -> str:
        """The period as the header shows it (9 characters at most): 'Jan 2026→', 'all time'."""
        if self.start is None:
            return "all time"
        return f"{month_name(self.start)}→"

    def to_json(self) -> dict[str, Any]:
        return {"from": self.start, "to": None, "setting": self.setting}


ALL_TIME = Period()


def month_name(month: str) -> str:
    """'2026-01' as 'Jan 2026'."""
    return f"{_MONTH_NAMES[int(month[5:7]) - 1]} {month[:4]}"


def parse_setting(text: object) -> str:
    """A period setting as typed ('12', '12m', '12 months', 'all', '2026-01', 'jan 2026') in its
    stored form ('12m', 'all', '2026-01'). Raises DomainError with a hint."""
    from .errors import DomainError
    from .values import parse_month

    raw = str(text if text is not None else "").strip().lower()
    hint = "type 12m (the last 12 months, rolling), 2026-01 (from that month on) or all"
    if raw in ("all", "all time", "everything"):
        return "all"
    if m := re.fullmatch(r"(\d+)\s*(m|mo|months?)?", raw):
        n = int(m[1])
        if not 1 <= n <= MAX_MONTHS:
            raise DomainError(f"KPI period: {n} months is not from 1 to {MAX_MONTHS}; {hint}", field="period")
        return f"{n}m"
    if not raw:
        raise DomainError(f"KPI period: nothing typed; {hint}", field="period")
    try:
        return parse_month(raw, field="KPI period")
    except DomainError:
        shown = raw if len(raw) <= 30 else raw[:27] + "..."
        raise DomainError(f"KPI period: {shown!r} is not a period; {hint}", field="period") from None


def period_of(setting: str | None, today: date) -> Period:
    """The period a stored setting means on `today` (None or unreadable: the default)."""
    value = (setting or DEFAULT_SETTING).strip()
    if value == "all":
        return Period(None, "all")
    if m := re.fullmatch(r"(\d+)m", value):
        n = int(m[1])
        if 1 <= n <= MAX_MONTHS:
            return Period(months_back(today, n), value)
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        return Period(value, value)
    return period_of(DEFAULT_SETTING, today)


def read_setting(source: Any) -> str | None:
    """The stored period setting (None when there is none). `source`: what rawdb.fetch_all reads."""
    rows = fetch_all(source, "SELECT value FROM setting WHERE key = :key", {"key": SETTING_KEY})
    return str(rows[0][0]) if rows else None


def current_period(source: Any, today: date | None = None) -> Period:
    """The database's KPI period today."""
    from . import clock

    return period_of(read_setting(source), today or clock.today())
