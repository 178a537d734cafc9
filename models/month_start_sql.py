"""Month starts as plain SQL, for both ways of recording them (models/month_starts.py): which are
due (`month_start_days`), and the usual way of writing them (`carry_forward`: nothing was
journalled since the latest reading, so each is that reading again). models/history.py's
`ensure_month_starts` runs them through SQLAlchemy, on either database; `record_month_starts` runs
them through the standard library on an SQLite file. Imports neither SQLAlchemy nor the history."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from typing import Any

from .kpi import ALL
from .rawdb import execute as run_sql
from .rawdb import fetch_all


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
