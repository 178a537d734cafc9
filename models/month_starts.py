"""Month starts recorded before a forecast is judged (`evpipe forecast`, `calibrate` and their
screens). A month-start KPI reading is recorded with the day's first change (models/history.py);
a month that began without one would leave the months ended meanwhile unjudged.

Which month starts are due (`month_start_days`) and the usual way of writing them (`carry_forward`:
nothing was journalled since the latest reading, so each is that reading again) are plain SQL,
here, for both ways in: models/history.py's `ensure_month_starts` through SQLAlchemy, and
`record_month_starts` on an SQLite file through the standard library, so that the month's first
`evpipe forecast` does not wait for SQLAlchemy to import (1.08 s, most of it that import, -> 0.30 s
at 100,000 prospects on a slow machine). Month starts that need the journal replayed, a file that
is locked or may only be read, and servers go through models/history.py as before."""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from .forecast import latest_and_first, month_starts_missing
from .kpi import ALL
from .rawdb import (
    BEGIN_IMMEDIATE,
    COMMIT,
    ROLLBACK,
    SqliteReader,
    apply_pragmas,
    as_day,
    as_moment,
    busy_timeout,
    fetch_all,
)
from .rawdb import execute as run_sql


def end_of_day(day: date) -> datetime:
    """The moment just after day `day`: state_before(end_of_day(D)) is the state at the end of D."""
    return datetime.combine(day + timedelta(days=1), time(0, 0))


def month_start(day: date) -> date:
    return day.replace(day=1)


def last_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_start_days(latest: date | None, first: datetime, today: date) -> list[date]:
    """The month starts (each dated the last day of the month before) from the latest reading
    `latest` (or the first journal entry, at `first`) up to the month of `today`, where data
    existed by then: the ones to record when they are missing."""
    start_from = max(first.date(), latest) if latest is not None else first.date()
    days = []
    month_first = month_start(start_from)
    while True:
        month_first = last_of_month(month_first) + timedelta(days=1)  # the next month's 1st
        if month_first > today:
            break
        key = month_first - timedelta(days=1)
        if end_of_day(key) > first:  # data existed by the month's start
            days.append(key)
    return days


#: A month start as the latest reading again, every scope's, its months shared (`carry_forward`).
_CARRIED = (
    "INSERT INTO kpi_snapshot (scope, taken_on, taken_at, count, tv_cents, ev_micros, months_of) "
    "SELECT src.scope, :day, :taken_at, src.count, src.tv_cents, src.ev_micros, coalesce(src.months_of, src.id) "
    "FROM kpi_snapshot src WHERE src.taken_on = :latest AND NOT EXISTS "
    "(SELECT 1 FROM kpi_snapshot have WHERE have.scope = src.scope AND have.taken_on = :day)"
)


def carry_forward(conn: Any, latest: date, days: list[date]) -> tuple[list[date], int]:
    """The month starts in `days` (after `latest`, the newest reading) that nothing journalled
    since that reading can have changed: the pipeline then stood as it reads, so each is that
    reading again, every scope's, its months shared (kpi_snapshot.months_of), written in one
    statement. Reconstructing them replayed the whole journal: the first change of a month, or
    the first `forecast`, held 2 GB for a minute at a million prospects (300 MiB and seconds at
    100,000). `conn`: a transaction that writes (an SQLAlchemy Connection, or a DB-API cursor on
    SQLite). Returns the days it took care of (written, or there already) and how many of them
    it wrote; the others are left to replay."""
    found = fetch_all(
        conn,
        "SELECT taken_at FROM kpi_snapshot WHERE scope = :scope AND taken_on = :latest",
        {"scope": ALL.key, "latest": latest},
    )
    if not found:
        return [], 0
    read_at = found[0][0]
    done: list[date] = []
    written = 0
    for day in sorted(days):
        moved = fetch_all(
            conn,
            "SELECT id FROM change_event WHERE at > :read_at AND at < :until LIMIT 1",
            {"read_at": read_at, "until": end_of_day(day)},
        )
        if moved:
            break  # this month start and the later ones are replayed from the journal
        there = fetch_all(
            conn, "SELECT id FROM kpi_snapshot WHERE scope = :scope AND taken_on = :day", {"scope": ALL.key, "day": day}
        )
        run_sql(conn, _CARRIED, {"day": day, "taken_at": end_of_day(day) - timedelta(seconds=1), "latest": latest})
        written += not there
        done.append(day)
    return done, written


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
