"""The one way to run a raw (text) SQL read, and every piece of SQLite-only SQL.

The app paints its first screen (ladder, KPIs, the first rows, the KPI history) from here, so that
starting evpipe never waits for SQLAlchemy to import (about 200 ms); the SQLAlchemy engine opens
in a worker once the screen is up. Queries are plain SQL with named parameters, run either on a
DB-API connection or through SQLAlchemy (`fetch_all`), so each one exists once; large reads stream
from a DB-API cursor (`raw_cursor`, `fetch_chunks`). Typed reads and writes use SQLAlchemy where
they are made; no other module opens a raw DB-API connection or runs text SQL of its own.

SQL that only SQLite understands (dates stored as text, strftime, julianday, json_type and
json_extract, PRAGMAs, an explicit BEGIN on an autocommit connection) is built by the functions and
constants below marked `# SQLite-only:`, so that making evpipe run on PostgreSQL means changing this
module. This module imports nothing but the standard library.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

#: The largest integer a database column holds (a signed 64-bit one, SQLite's and PostgreSQL's BIGINT).
LARGEST_INTEGER = 2**63 - 1

#: The newest migration. A test checks it against Alembic's own head.
HEAD = "0013"

# SQLite-only: each row's references checked as it is written (on), or not (a bulk write that
# checks them after, `FOREIGN_KEY_CHECK`). Set outside a transaction only: SQLite ignores it inside.
FOREIGN_KEYS_ON = "PRAGMA foreign_keys=ON"
FOREIGN_KEYS_OFF = "PRAGMA foreign_keys=OFF"

# SQLite-only: the connection settings every SQLite connection gets (foreign keys, WAL, waits).
SQLITE_PRAGMAS = (
    FOREIGN_KEYS_ON,
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
)


def sqlite_file(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///") :])
    return None


def apply_pragmas(connection: sqlite3.Connection) -> None:
    cursor = connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


# SQLite-only: a URI connection with mode=ro.
def read_only_uri(path: Path) -> str:
    """The URI that opens `path` read-only (a read-only evpipe: models/readonly.py)."""
    return path.resolve().as_uri() + "?mode=ro"


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection to `path` that SQLite itself refuses to write through (the same settings as
    any other connection; WAL is only read)."""
    connection = sqlite3.connect(
        read_only_uri(path), uri=True, timeout=30, check_same_thread=False, isolation_level=None
    )
    apply_pragmas(connection)
    return connection


# SQLite-only: the page cache of a connection that reads and is closed after (SqliteReader), in KiB.
# Its reads go through a table or an index once (every row, a covering index's sums, the first
# page): pages read again within one connection are few, and the system's file cache holds them
# anyway. SQLite's default, 2 MiB, was filled by the app's read of every row and freed when the
# connection closed, between Python's objects: 1.6 MiB of the app's peak at 100,000 prospects
# (the real app in a pty, VmHWM, median of 3: 108.5 -> 106.9 MiB), no read slower (every row
# read, in id or EV order, the pace, the KPIs: the same times at 100,000 and a million).
READ_CACHE_KIB = 128
READ_CACHE = f"PRAGMA cache_size=-{READ_CACHE_KIB}"


class SqliteReader:
    """What the read paths need of an engine (`raw_connection()`), for one SQLite file, without
    SQLAlchemy. Each call opens a connection (with a small page cache, READ_CACHE); callers close
    it. `read_only`: SQLite opens the file read-only (a read-only evpipe)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only

    def raw_connection(self) -> sqlite3.Connection:
        if self.read_only:
            connection = read_only_connection(self.path)
        else:
            connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            apply_pragmas(connection)
        connection.execute(READ_CACHE)
        return connection


def schema_ready(url: str) -> bool:
    """True when `url` is an SQLite file already at the newest schema with a ladder in it: then
    it can be read as it is, and nothing needs creating or upgrading first."""
    path = sqlite_file(url)
    if path is None or not path.exists():
        return False
    try:
        # SQLite-only: a read-only URI connection to the file
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            stages = connection.execute("SELECT count(*) FROM stage").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return revision is not None and revision[0] == HEAD and stages[0] > 0


@dataclass(frozen=True)
class FileLook:
    """What a read-only look inside an SQLite file found (`look_inside`)."""

    tables: frozenset[str]
    revision: str | None  # evpipe's schema revision (Alembic's), None when there is none
    settings: dict[str, str]  # the `setting` table, empty when there is none
    last_change: int  # the id of the journal's last entry, 0 when there is none


def quick_check(path: Path) -> list[str]:
    """What SQLite finds wrong with the pages of the file at `path`, read without changing it (an
    empty list: nothing). Reads every page: for a background check, never on a key press."""
    # SQLite-only: PRAGMA quick_check on a read-only connection.
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        found = [str(r[0]) for r in connection.execute(QUICK_CHECK)]
    finally:
        connection.close()
    return [] if found == ["ok"] else found


def look_inside(path: Path) -> FileLook:
    """Look inside the SQLite file at `path` without changing it: its tables, schema revision,
    settings and last journal entry. Raises sqlite3.Error when SQLite cannot read it (not a
    database, damaged, locked)."""
    # SQLite-only: a read-only URI connection, and sqlite_master listing the tables. With no -wal
    # file beside it nobody has the file open, so it is read as immutable: no -wal or -shm file is
    # left beside a file evpipe then refuses.
    unused = not Path(f"{path}-wal").exists()
    uri = path.resolve().as_uri() + ("?mode=ro&immutable=1" if unused else "?mode=ro")
    connection = sqlite3.connect(uri, uri=True, timeout=5)
    connection.text_factory = lambda raw: raw.decode("utf-8", "replace")  # damaged text is still read
    try:
        tables = frozenset(r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        revision = None
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        settings: dict[str, str] = {}
        if "setting" in tables:
            settings = {str(k): str(v) for k, v in connection.execute("SELECT key, value FROM setting")}
        last_change = 0
        if "change_event" in tables:
            last_change = connection.execute("SELECT coalesce(max(id), 0) FROM change_event").fetchone()[0]
    finally:
        connection.close()
    return FileLook(tables, revision, settings, int(last_change))


def as_date(value: Any) -> date | None:
    """A date column read by plain SQL: SQLite gives text, other databases a date."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def as_day(value: Any) -> date:
    """A NOT NULL date column read by plain SQL (`as_date`, which gives None only for NULL)."""
    day = as_date(value)
    if day is None:
        raise ValueError("a NOT NULL date column read NULL")
    return day


def as_moment(value: Any) -> datetime:
    """A NOT NULL timestamp column read by plain SQL: SQLite gives the text SQLAlchemy wrote
    ('2026-11-27 10:00:00.000000'), other databases a datetime."""
    if isinstance(value, datetime):
        return value
    if value is None:
        raise ValueError("a NOT NULL timestamp column read NULL")
    return datetime.fromisoformat(str(value))


def bulk_reader(conn: Any) -> Any:
    """What `fetch_all` reads many rows from fastest in the transaction of `conn` (an SQLAlchemy
    Connection): on SQLite, the DB-API connection under it (plain tuples, about half SQLAlchemy's
    time for 100,000 rows), its transaction begun first so that every read sees the same data;
    anything else as it is."""
    if not _is_sqlalchemy(conn) or conn.dialect.name != "sqlite" or not hasattr(conn, "in_transaction"):
        return conn
    if not conn.in_transaction():
        conn.begin()  # SQLAlchemy's BEGIN, as its first statement would have begun it
    return conn.connection.driver_connection


def _sqlite_param(value: Any) -> Any:
    """Dates and times as SQLAlchemy writes them into SQLite, so comparisons agree."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def fetch_all(source: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Run one read query (named `:parameters`) on whatever `source` is: an SQLAlchemy Engine or
    Connection, a SqliteReader, or a DB-API connection or cursor (see `raw_cursor`)."""
    params = _driver_params(source, params)
    if _is_sqlalchemy(source):
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
    if hasattr(source, "fetchall"):  # a DB-API cursor
        source.execute(sql, params)
        return source.fetchall()
    cursor = source.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def execute(source: Any, sql: str, params: dict[str, Any] | None = None) -> None:
    """Run one statement that returns no rows (an INSERT, an UPDATE) with named `:parameters`,
    on an SQLAlchemy Connection or a DB-API cursor, in the transaction it is in."""
    params = _driver_params(source, params)
    if _is_sqlalchemy(source):
        from sqlalchemy import text

        source.execute(text(sql), params)
        return
    source.execute(sql, params)


def _driver_params(source: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """`params` as `source` takes them: on SQLite, dates and times as SQLAlchemy writes them
    (`_sqlite_param`); other databases take them as they are."""
    params = params or {}
    if _is_sqlalchemy(source) and source.dialect.name != "sqlite":
        return params
    return {k: _sqlite_param(v) for k, v in params.items()}


def _is_sqlalchemy(source: Any) -> bool:
    return type(source).__module__.startswith("sqlalchemy.engine")


def dialect_name(source: Any) -> str:
    """The database a source reads ('sqlite', 'postgresql'): what the SQL text builders below take."""
    if _is_sqlalchemy(source):
        return str(source.dialect.name)
    return "sqlite"  # a SqliteReader, or a sqlite3 connection or cursor


@contextmanager
def raw_cursor(source: Any, *, transaction: bool = False) -> Iterator[Any]:
    """A DB-API cursor on a fresh connection of `source` (an SQLAlchemy Engine or a SqliteReader:
    anything with `raw_connection()`), closed afterwards. For reads of many rows (no SQLAlchemy
    rows are made) and for reads that must run on one connection. `transaction`: run them in one
    read transaction, so that every query sees the same data. On a database other than SQLite
    (whose driver takes other parameter marks) it is an SQLAlchemy Connection instead, which
    `fetch_all` and `fetch_chunks` read the same way."""
    if _is_sqlalchemy(source) and source.dialect.name != "sqlite":
        with source.connect() as conn:
            if transaction:
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn
            conn.rollback()
        return
    connection = source.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            if transaction:
                cursor.execute(BEGIN)
            yield cursor
            if transaction:
                cursor.execute(COMMIT)
        finally:
            cursor.close()
    finally:
        connection.close()


def fetch_chunks(
    cursor: Any, sql: str, params: dict[str, Any] | None = None, size: int = 2000
) -> Iterator[list[tuple]]:
    """Run one read query on a `raw_cursor` and give its rows `size` at a time."""
    if _is_sqlalchemy(cursor):
        from sqlalchemy import text

        result = cursor.execution_options(stream_results=True, max_row_buffer=size).execute(text(sql), params or {})
        while chunk := result.fetchmany(size):
            yield [tuple(r) for r in chunk]
        return
    cursor.execute(sql, {k: _sqlite_param(v) for k, v in (params or {}).items()})
    while chunk := cursor.fetchmany(size):
        yield chunk


# ---------------------------------------------------------------- SQLite-only SQL
# Each builds SQL text over the column expressions it is given (trusted names, never user text).

# SQLite-only: an explicit transaction on a DB-API connection in autocommit mode (sqlite3's
# isolation_level=None, as SqliteReader opens it).
BEGIN = "BEGIN"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"

# SQLite-only: a counter of the connection that moves when another connection commits (microseconds
# to read; the live screens' first check, models/changes_feed.py).
DATA_VERSION = "PRAGMA data_version"


def sqlite_data_version(connection: Any) -> int:
    """SQLite's data version as seen by this DB-API connection (kept open between calls)."""
    cursor = connection.cursor()
    try:
        cursor.execute(DATA_VERSION)
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


#: Builds a need's text for a database other than SQLite: models/dialect.py's `render_need`, set
#: here when that module loads (models/db.py loads it with every server engine), so that this
#: module imports nothing of models.
OTHER_DIALECTS: dict[str, Any] = {}


def _elsewhere(need: str, dialect: str, *args: object) -> str:
    """The text of a need on a database other than SQLite: models/dialect.py builds it."""
    return str(OTHER_DIALECTS["render_need"](need, dialect, *args))


def day_of(timestamp: str, dialect: str = "sqlite") -> str:
    """The day ('YYYY-MM-DD') of a stored date or timestamp."""
    if dialect != "sqlite":
        return _elsewhere("day_of", dialect, timestamp)
    # SQLite-only: dates and timestamps are stored as ISO text, so the day is its first 10 characters.
    return f"substr({timestamp}, 1, 10)"


def epoch_of(timestamp: str, dialect: str = "sqlite") -> str:
    """A stored timestamp as whole seconds since 1970 (read as UTC)."""
    if dialect != "sqlite":
        return _elsewhere("epoch_of", dialect, timestamp)
    # SQLite-only: strftime('%s') of the stored text.
    return f"CAST(strftime('%s', {timestamp}) AS INTEGER)"


def before_moment(timestamp: str, seconds: int, dialect: str = "sqlite") -> str:
    """A stored timestamp before the moment `seconds` after 1970 (UTC): what
    `epoch_of(timestamp) < seconds` says, the stored value compared as it is instead of converted
    a row at a time (a million prospects' stage entries: 0.3 s)."""
    if dialect != "sqlite":
        return _elsewhere("before_moment", dialect, timestamp, seconds)
    # SQLite-only: a timestamp is stored as SQLAlchemy writes it ('2026-11-27 10:00:00.000000',
    # `_sqlite_param`), whose text sorts as its moments do.
    return f"({timestamp} < '{moment_text(seconds)}')"


def moment_text(seconds: int) -> str:
    """The moment `seconds` after 1970 (UTC) as a timestamp's text ('2026-11-27 10:00:00.000000');
    the first or last one there is when it lies beyond them."""
    try:
        moment = _EPOCH + timedelta(seconds=int(seconds))
    except OverflowError:
        moment = datetime.min if seconds < 0 else datetime.max
    return moment.isoformat(sep=" ", timespec="microseconds")


_EPOCH = datetime(1970, 1, 1)


def text_list(expression: str, dialect: str = "sqlite") -> str:
    """An aggregate: the group's values of `expression` but NULL as one text, with a comma between
    each two ('17,4,17'), in no set order; NULL when there are none."""
    if dialect != "sqlite":
        return _elsewhere("text_list", dialect, expression)
    # SQLite-only: group_concat, whose separator is a comma.
    return f"group_concat({expression})"


def month_of(day: str, dialect: str = "sqlite") -> str:
    """The month ('YYYY-MM') of a stored date."""
    if dialect != "sqlite":
        return _elsewhere("month_of", dialect, day)
    # SQLite-only: strftime('%Y-%m') of the stored text.
    return f"strftime('%Y-%m', {day})"


def money_text(expression: str, *, micros: bool = False) -> str:
    """SQLite-only: models.values.money_str as SQL over an integer expression of cents (EV micros
    when `micros`, rounded half-up away from zero to the cent): '9500.00', '-0.05'."""
    template, arguments = money_printf(expression, micros=micros)
    return f"printf('{template}', {', '.join(arguments)})"


def money_printf(expression: str, *, micros: bool = False) -> tuple[str, list[str]]:
    """SQLite-only: `money_text` as a piece of a larger printf: its template ('%s%d.%02d') and the
    SQL of its arguments. A record written by one printf formats its amounts in the same call
    (a printf of its own for each amount, and quoting its text, took a listing of a million
    prospects about 1 s)."""
    from .values import MICROS_PER_CENT

    half = MICROS_PER_CENT // 2
    cents = f"((abs({expression}) + {half}) / {MICROS_PER_CENT})" if micros else f"abs({expression})"
    # SQLite-only: printf, and / of integers dividing whole.
    return "%s%d.%02d", [f"CASE WHEN {expression} < 0 THEN '-' ELSE '' END", f"{cents} / 100", f"{cents} % 100"]


def json_quote(expression: str) -> str:
    """SQLite-only: the JSON text of a value, as Python's json.dumps(value, ensure_ascii=False)
    writes a text, a whole number or None: '"Ōtāhuhu \\"A\\""', '42', 'null'."""
    # SQLite-only: json_quote (the JSON1 functions, built into SQLite since 3.38).
    return f"json_quote({expression})"


def as_bytes(expression: str) -> str:
    """SQLite-only: a text value read as its UTF-8 bytes (no text object made of it)."""
    # SQLite-only: a BLOB reaches Python's sqlite3 as bytes, not decoded.
    return f"CAST({expression} AS BLOB)"


def text_literal(text: str) -> str:
    """SQLite-only: a trusted text (made by the program, never a user's) as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def no_index(expression: str, dialect: str = "sqlite") -> str:
    """The expression, kept from its index (so SQLite walks the index the query wants instead)."""
    if dialect != "sqlite":
        return _elsewhere("no_index", dialect, expression)
    # SQLite-only: a unary + hides a column from the planner's index choice.
    return f"+{expression}"


def days_since(today: date, timestamp: str, dialect: str = "sqlite") -> str:
    """Whole days from the day of a stored timestamp to `today` (a date, written into the SQL)."""
    if dialect != "sqlite":
        return _elsewhere("days_between", dialect, today, timestamp)
    # SQLite-only: julianday() of ISO text; the day of the timestamp by `day_of`.
    return f"CAST((julianday('{today.isoformat()}') - julianday({day_of(timestamp)})) AS INTEGER)"


def _json_path(keys: tuple[str, ...]) -> str:
    return "$." + ".".join(keys)


def json_has(document: str, keys: tuple[str, ...], dialect: str = "sqlite") -> str:
    """True when the key path (('before', 'owner')) is in a JSON text column, null included."""
    if dialect != "sqlite":
        return _elsewhere("json_has", dialect, document, keys)
    # SQLite-only: the JSON1 json_type() function, NULL when the path is absent.
    return f"(json_type({document}, '{_json_path(keys)}') IS NOT NULL)"


def json_text(document: str, keys: tuple[str, ...], dialect: str = "sqlite") -> str:
    """The value at the key path of a JSON text column; NULL when absent or JSON null."""
    if dialect != "sqlite":
        return _elsewhere("json_text", dialect, document, keys)
    # SQLite-only: the JSON1 json_extract() function.
    return f"json_extract({document}, '{_json_path(keys)}')"


# SQLite-only: a write transaction that takes the write lock at once (db.begin_write).
BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"


def cache_size(megabytes: int) -> str:
    """The page cache of one connection: a big write that fits in it is not spilled to the log
    half-way through."""
    # SQLite-only: PRAGMA cache_size, negative for kibibytes.
    return f"PRAGMA cache_size=-{megabytes * 1024}"


def busy_timeout(seconds: float) -> str:
    """How long a connection waits for another's write lock before giving up."""
    # SQLite-only: PRAGMA busy_timeout, in whole milliseconds.
    return f"PRAGMA busy_timeout={max(0, round(seconds * 1000))}"


# SQLite-only: a backup copy leaves WAL mode (one self-contained file) and checks itself.
BACKUP_JOURNAL_MODE = "PRAGMA journal_mode=DELETE"
INTEGRITY_CHECK = "PRAGMA integrity_check"
# SQLite-only: the faster check (every page readable and well formed; no index contents compared).
QUICK_CHECK = "PRAGMA quick_check(5)"

# SQLite-only: restore checks foreign keys once at the end, not row by row, then lists what is broken.
DEFER_FOREIGN_KEYS = "PRAGMA defer_foreign_keys=ON"
FOREIGN_KEY_CHECK = "PRAGMA foreign_key_check"
