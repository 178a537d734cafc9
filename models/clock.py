"""The one place evpipe asks what time it is.

`EVPIPE_NOW` (an ISO date or datetime) pins the clock: tests, snapshots and demos use it so that
screens and figures are reproducible. Times are the machine's local wall-clock time, naive; a
sales team shares one office server and one time zone.
"""

from __future__ import annotations

import os
from datetime import date, datetime

from .errors import DomainError

#: Dates and months evpipe takes (follow-ups, contact points, expected months, imported dates, the
#: pinned clock): kept here, below models/values.py, which reads the clock.
FIRST_YEAR, LAST_YEAR = 1990, 2100

_fixed: datetime | None = None


def set_fixed(moment: datetime | None) -> None:
    """Pin the clock (tests) or release it (None)."""
    global _fixed
    _fixed = moment


def now() -> datetime:
    if _fixed is not None:
        return _fixed
    pinned = os.environ.get("EVPIPE_NOW")
    if pinned:
        try:
            value = datetime.fromisoformat(pinned)
        except ValueError:
            raise DomainError(f"EVPIPE_NOW is not a date or a date and time (YYYY-MM-DD[THH:MM]): {pinned!r}") from None
        if not FIRST_YEAR <= value.year <= LAST_YEAR:  # the months a year around it must be months evpipe takes
            raise DomainError(
                f"EVPIPE_NOW is in the year {value.year}; evpipe takes dates from {FIRST_YEAR} to {LAST_YEAR}: {pinned!r}"
            )
        return value.replace(tzinfo=None)
    return datetime.now().replace(microsecond=0)


def today() -> date:
    return now().date()


def this_month() -> str:
    return today().strftime("%Y-%m")
