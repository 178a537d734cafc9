"""Monthly sales targets (issue 16): the amount the owner aims to win in a month, kept in the
`setting` table (`target:YYYY-MM` = cents), so that no schema change is needed. The forecast's
range (models/forecast_range.py) gives the chance of reaching each one. The target of the KPI
period is the sum of the targets of its months (None when none is set)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .errors import DomainError
from .period import Period
from .rawdb import fetch_all
from .values import parse_money, parse_month

PREFIX = "target:"
T = TypeVar("T")


def targets(engine: Any) -> dict[str, int]:
    """Every month's target in cents, by month ('YYYY-MM'). `engine`: an engine or a SqliteReader
    (read as plain SQL: the forecast reads it without SQLAlchemy)."""
    out = {}
    for key, value in fetch_all(
        engine, "SELECT key, value FROM setting WHERE key LIKE :prefix", {"prefix": PREFIX + "%"}
    ):
        try:
            out[key[len(PREFIX) :]] = int(value)
        except ValueError:
            continue  # written by hand: not a target
    return dict(sorted(out.items()))


def parse_target(amount_text: object) -> int:
    """A target as typed ('40000', '40,000') -> cents: an amount above 0 (none is cleared, not
    set to 0). The forecast screen's dialog checks what is typed with it, before it closes."""
    cents = parse_money(amount_text, field="target")
    if cents <= 0:
        raise DomainError(
            "target: an amount above 0 (to remove one: empty on the forecast screen, `evpipe target clear MONTH`)",
            field="target",
        )
    return cents


def set_target(engine: Any, month_text: object, amount_text: object, *, who: str | None = None) -> tuple[str, int]:
    """Set a month's target from what was typed ('2027-03' or 'mar 2027', '40000' or '40,000');
    returns (month, cents). Raises DomainError on bad input, and NotAllowed unless `who` (else
    whoever this process acts as) may change the settings: targets are the team's, an owner's."""
    month = parse_month(month_text, field="target month")
    cents = parse_target(amount_text)
    from .settings import put_setting

    _write(engine, who, lambda conn: put_setting(conn, PREFIX + month, str(cents)))
    return month, cents


def clear_target(engine: Any, month_text: object | None = None, *, who: str | None = None) -> int:
    """Remove one month's target (or every target when `month_text` is None); how many went.
    The same right as `set_target`."""
    from sqlalchemy import delete

    from .tables import Setting, table_of

    setting = table_of(Setting)
    q = delete(setting)
    if month_text is None:
        q = q.where(setting.c.key.startswith(PREFIX))
    else:
        q = q.where(setting.c.key == PREFIX + parse_month(month_text, field="target month"))
    return _write(engine, who, lambda conn: int(conn.execute(q).rowcount or 0))


#: Under `CHANGED + who`: the journal's highest id when `who` last changed a target. Targets are
#: not journalled, so undo, going back through a user's journalled changes, would otherwise pass
#: over a target change to reverse an older change of a prospect (`changed_after`).
CHANGED = "target-changed:"


def _write(engine: Any, who: str | None, change: Callable[[Any], T]) -> T:
    from sqlalchemy import func, select

    from .db import writer
    from .roles import acting_user, require
    from .settings import put_setting
    from .tables import ChangeEvent, table_of

    with writer(engine).begin() as conn:
        name = who or acting_user(conn).name
        require(conn, name, "settings")
        out = change(conn)
        latest = conn.scalar(select(func.max(table_of(ChangeEvent).c.id))) or 0
        put_setting(conn, CHANGED + name, str(latest))
        return out


def changed_after(conn: Any, who: str, event_id: int) -> bool:
    """Whether `who` changed a target after the journal entry `event_id` (see CHANGED)."""
    found = fetch_all(conn, "SELECT value FROM setting WHERE key = :key", {"key": CHANGED + who})
    try:
        return bool(found) and int(found[0][0]) >= event_id
    except (TypeError, ValueError):
        return False


def period_target(all_targets: dict[str, int], period: Period) -> int | None:
    """The KPI period's target: the sum of the targets of its months (None when none is set)."""
    mine = [cents for month, cents in all_targets.items() if period.in_months(month)]
    return sum(mine) if mine else None
