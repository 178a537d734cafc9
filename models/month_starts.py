"""Month starts recorded before a forecast is judged (`evpipe forecast`, `calibrate` and their
screens). A month-start KPI reading is recorded with the day's first change (models/history.py);
a month that began without one would leave the months ended meanwhile unjudged.

On an SQLite file whose write lock is free at once, the missing month starts are carried forward
here, through the standard library (models/month_start_sql.py), when nothing was journalled since
the latest reading: the month's first `evpipe forecast` does not wait for SQLAlchemy to import
(1.08 s, most of it that import, -> 0.30 s at 100,000 prospects on a slow machine). Month starts
that need the journal replayed, a file that is locked or may only be read, and servers go through
models/history.py, imported only then."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from typing import Any

from .forecast import latest_and_first, month_starts_missing
from .month_start_sql import carry_forward, month_start_days
from .rawdb import BEGIN_IMMEDIATE, COMMIT, ROLLBACK, SqliteReader, apply_pragmas, as_day, as_moment, busy_timeout


def record_month_starts(source: Any, writer: Callable[[], Any], today: date) -> str | None:
    """Before a forecast is judged (`evpipe forecast`, `calibrate` and their screens): record the
    month starts no change has recorded yet (a month that began without a write), so that the
    months ended meanwhile are judged against their frozen forecast. `source` reads (the look
    takes no SQLAlchemy); `writer()` gives the engine that writes, asked for only when the month
    starts cannot all be carried forward here (`_carried_here`). Returns why they could not be
    recorded when the forecast can read on without them (a held lock, a full disk, a file or
    role that may only read), else None; any other failure (a damaged file) is raised, for the
    command or screen to say in its own words."""
    if not month_starts_missing(source, today):
        return None
    if isinstance(source, SqliteReader) and not source.read_only and _carried_here(source, today):
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


def _carried_here(reader: SqliteReader, today: date) -> bool:
    """The missing month starts of an SQLite file carried forward through the standard library,
    if that is all they need; whether every one of them now is there. Only if the write lock is
    free at once: a held lock (or a file that may only be read, or a write that fails) leaves them
    to models/history.py, which waits for the lock as every write does and says why it could not."""
    try:
        connection = sqlite3.connect(reader.path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return False
    try:
        try:
            apply_pragmas(connection)
            connection.execute(busy_timeout(0))
            cursor = connection.cursor()
            cursor.execute(BEGIN_IMMEDIATE)
        except sqlite3.Error:
            return False
        try:
            latest, first = latest_and_first(cursor)
            if latest is None or first is None:
                cursor.execute(ROLLBACK)
                return False  # (no reading to carry: the journal is replayed)
            days = month_start_days(as_day(latest), as_moment(first), today)
            done, _ = carry_forward(cursor, as_day(latest), days)
            cursor.execute(COMMIT)
        except sqlite3.Error:
            if connection.in_transaction:
                cursor.execute(ROLLBACK)
            return False
        return len(done) == len(days)
    finally:
        connection.close()
