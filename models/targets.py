"""Monthly sales targets (issue 16): the amount the owner aims to win in a month, kept in the
`setting` table (`target:YYYY-MM` = cents), so that no schema change is needed. The forecast's
range (models/forecast_range.py) gives the chance of reaching each one. The target of the KPI
period is the sum of the targets of its months (None when none is set)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from .db import writer
from .errors import DomainError
from .period import Period
from .settings import set_setting
from .tables import Setting, table_of
from .values import parse_money, parse_month

PREFIX = "target:"
_SETTING = table_of(Setting)


def targets(engine: Engine) -> dict[str, int]:
    """Every month's target in cents, by month ('YYYY-MM')."""
    with engine.connect() as conn:
        rows = conn.execute(select(_SETTING.c.key, _SETTING.c.value).where(_SETTING.c.key.startswith(PREFIX)))
        out = {}
        for key, value in rows:
            try:
                out[key[len(PREFIX) :]] = int(value)
            except ValueError:
                continue  # written by hand: not a target
        return dict(sorted(out.items()))


def set_target(engine: Engine, month_text: object, amount_text: object) -> tuple[str, int]:
    """Set a month's target from what was typed ('2027-03' or 'mar 2027', '40000' or '40,000');
    returns (month, cents). Raises DomainError on bad input."""
    month = parse_month(month_text, field="target month")
    cents = parse_money(amount_text, field="target")
    if cents <= 0:
        raise DomainError("target: an amount above 0 (use `evpipe target clear MONTH` to remove one)", field="target")
    set_setting(engine, PREFIX + month, str(cents))
    return month, cents


def clear_target(engine: Engine, month_text: object | None = None) -> int:
    """Remove one month's target (or every target when `month_text` is None); how many went."""
    with writer(engine).begin() as conn:
        q = delete(_SETTING)
        if month_text is None:
            q = q.where(_SETTING.c.key.startswith(PREFIX))
        else:
            q = q.where(_SETTING.c.key == PREFIX + parse_month(month_text, field="target month"))
        return int(conn.execute(q).rowcount or 0)


def period_target(all_targets: dict[str, int], period: Period) -> int | None:
    """The KPI period's target: the sum of the targets of its months (None when none is set)."""
    mine = [cents for month, cents in all_targets.items() if period.in_months(month)]
    return sum(mine) if mine else None
