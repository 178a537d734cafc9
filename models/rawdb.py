"""Reading an SQLite database with the standard library alone.

The app paints its first screen (ladder, KPIs, the first rows, the KPI history) from here, so that
starting evpipe never waits for SQLAlchemy to import (about 200 ms); the SQLAlchemy engine opens
in a worker once the screen is up. Queries are plain SQL with named parameters, run either on a
DB-API connection or through SQLAlchemy (`fetch_all`), so each one exists once and the same text
serves SQLite and other databases alike.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

#: The newest migration. A test checks it against Alembic's own head.
HEAD = "0002"

SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
)


def sqlite_file(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):])
    return None


def apply_pragmas(connection: sqlite3.Connection) -> None:
    cursor = connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


class SqliteReader:
    """What the read paths need of an engine (`raw_connection()`), for one SQLite file, without
    SQLAlchemy. Each call opens a connection; callers close it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def raw_connection(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        apply_pragmas(connection)
        return connection


def schema_ready(url: str) -> bool:
    """True when `url` is an SQLite file already at the newest schema with a ladder in it: then
    it can be read as it is, and nothing needs creating or upgrading first."""
    path = sqlite_file(url)
    if path is None or not path.exists():
        return False
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            stages = connection.execute("SELECT count(*) FROM stage").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return revision is not None and revision[0] == HEAD and stages[0] > 0


def as_date(value: Any) -> date | None:
    """A date column read by plain SQL: SQLite gives text, other databases a date."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def _sqlite_param(value: Any) -> Any:
    """Dates and times as SQLAlchemy writes them into SQLite, so comparisons agree."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def fetch_all(source: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Run one read query (named `:parameters`) on whatever `source` is: an SQLAlchemy Engine or
    Connection, a SqliteReader, or a DB-API connection."""
    params = params or {}
    through_sqlalchemy = type(source).__module__.startswith("sqlalchemy")
    if not through_sqlalchemy or source.dialect.name == "sqlite":  # other databases take dates as they are
        params = {k: _sqlite_param(v) for k, v in params.items()}
    if through_sqlalchemy:
        from sqlalchemy import text

        if hasattr(source, "connect") and not hasattr(source, "in_transaction"):  # an Engine
            with source.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), params)]
        return [tuple(r) for r in source.execute(text(sql), params)]
    if isinstance(source, SqliteReader):
        connection = source.raw_connection()
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()
    cursor = source.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()
