"""Month starts recorded before a forecast is judged (`evpipe forecast`, `calibrate` and their
screens). A month-start KPI reading is recorded with the day's first change (models/history.py);
a month that began without one would leave the months ended meanwhile unjudged. The look takes no
SQLAlchemy (`forecast.month_starts_missing`); the history that writes them is imported only when
one is missing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from .forecast import month_starts_missing


def record_month_starts(source: Any, writer: Callable[[], Any], today: date) -> str | None:
    """Before a forecast is judged (`evpipe forecast`, `calibrate` and their screens): record the
    month starts no change has recorded yet (a month that began without a write), so that the
    months ended meanwhile are judged against their frozen forecast. `source` reads (the look
    takes no SQLAlchemy); `writer()` gives the engine that writes, asked for only when one is
    missing. Returns why they could not be recorded when the forecast can read on without them
    (a held lock, a full disk, a file or role that may only read), else None; any other failure
    (a damaged file) is raised, for the command or screen to say in its own words."""
    if not month_starts_missing(source, today):
        return None
    from .errors import reads_on, unsaved_reason
    from .history import keep_month_starts

    try:
        keep_month_starts(writer())
    except Exception as exc:
        if not reads_on(exc):
            raise
        return unsaved_reason(exc)
    return None
