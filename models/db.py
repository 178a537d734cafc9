"""The engine factory and the schema upgrade. Nothing here runs at import time."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import QueuePool

from .errors import DomainError, WriteLocked
from .locations import ensure_private_file, sqlite_path
from .rawdb import (
    BEGIN_IMMEDIATE,
    FOREIGN_KEYS_OFF,
    FOREIGN_KEYS_ON,
    HEAD,
    SQLITE_PRAGMAS,
    busy_timeout,
    fetch_all,
    read_only_connection,
)
from .readonly import is_read_only, refuse_writes
from .share import use_shared_umask
from .writing import announce, current_writer, withdraw

MIGRATIONS = Path(__file__).parent / "migrations"

#: How long a write waits for another's write lock (seconds): the app's saves (in a worker; the
#: screen never waits) and, shorter, a command's (`CLI_LOCK_TIMEOUT`). EVPIPE_LOCK_TIMEOUT sets both.
APP_LOCK_TIMEOUT = 30.0
CLI_LOCK_TIMEOUT = 10.0


def lock_wait(default: float = APP_LOCK_TIMEOUT) -> float:
    """The write-lock wait: EVPIPE_LOCK_TIMEOUT (seconds, 0 to 3600) when set, else `default`."""
    raw = os.environ.get("EVPIPE_LOCK_TIMEOUT", "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise DomainError(
            f"EVPIPE_LOCK_TIMEOUT: {raw[:20]!r} is not a number of seconds from 0 to 3600 (e.g. 10)",
            field="EVPIPE_LOCK_TIMEOUT",
        )
    return seconds


def make_engine(url: str, *, create: bool = True, lock_timeout: float | None = None) -> Engine:
    """An engine for `url`. For SQLite: foreign keys on, WAL, and transactions that read take no
    lock, while those that write (`writer`) take the write lock at BEGIN (`begin_write`), waiting
    up to `lock_timeout` seconds for another writer (see `lock_wait`). In a read-only process
    (models/readonly.py) an SQLite file is opened read-only by SQLite too."""
    path = sqlite_path(url)
    if path is not None:
        use_shared_umask(path)  # a folder shared with a group: what SQLite makes there stays the group's
    if path is not None and create and not is_read_only():
        ensure_private_file(path)
    wait = lock_timeout if lock_timeout is not None else lock_wait()
    if url.startswith("sqlite"):
        if path is not None and is_read_only():
            # a pool by count, as for any file: "sqlite://" alone would mean SingletonThreadPool,
            # which closes other threads' connections, even one mid-query, past five threads
            engine = create_engine("sqlite://", creator=lambda: read_only_connection(path), poolclass=QueuePool)
        else:
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": wait})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - exercised by every test
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            for pragma in (*SQLITE_PRAGMAS, busy_timeout(wait)):
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            options = conn.get_execution_options()
            if options.get("evpipe_write"):
                if options.get("sqlite_references_after"):  # (`writer`; before BEGIN, or SQLite ignores it)
                    conn.exec_driver_sql(FOREIGN_KEYS_OFF)
                    conn.connection.info["references_after"] = True
                begin_write(conn)
            else:
                conn.exec_driver_sql("BEGIN")  # a read: WAL readers take no lock and never wait

        @event.listens_for(engine, "checkin")
        def _references_again(dbapi_connection, record):  # the pooled connection checks them again
            if record.info.pop("references_after", False) and dbapi_connection is not None:
                dbapi_connection.execute(FOREIGN_KEYS_ON)

        @event.listens_for(engine, "commit")
        def _commit(conn):
            _write_over(conn)

        @event.listens_for(engine, "rollback")
        def _rollback(conn):
            _write_over(conn)

        return engine
    from . import dialect  # noqa: F401  (gives rawdb's text builders this server's SQL)

    scheme = url.partition("://")[0]
    if not scheme.startswith("postgresql"):
        raise DomainError(
            f"evpipe keeps its data in an SQLite file or in PostgreSQL (postgresql+psycopg://...); "
            f"{scheme}:// is neither",
            field="db",
        )
    try:
        engine = create_engine(url, pool_pre_ping=True, connect_args=server_options(url, wait))
    except ImportError as exc:  # a driver named in the URL that is not installed
        raise DomainError(
            f"{scheme}:// needs the Python module {exc.name or 'its driver'}, which is not installed here; "
            f"use postgresql+psycopg://",
            field="db",
        ) from None

    @event.listens_for(engine, "begin")
    def _begin_server(conn):
        if conn.get_execution_options().get("evpipe_write"):
            begin_write(conn)

    return engine


def server_options(url: str, wait: float) -> dict[str, str]:
    """Connection settings for a database server (PostgreSQL): a lock wait ends after `wait`
    seconds (the same wait as SQLite's, `lock_wait`) with "canceling statement due to lock
    timeout" (models.errors words it), and timestamps are read and written in UTC, as on SQLite.
    A URL that sets `options` keeps its own."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("postgresql") or "options" in parsed.query:
        return {}
    return {"options": f"-c lock_timeout={max(1, round(wait * 1000))}ms -c timezone=UTC"}


def writer(engine: Engine, what: str | None = None, *, references_after: bool = False) -> Engine:
    """The same engine, for a transaction that will write. `what` names a long write ("an import
    of big.csv"): while it holds the lock, a write that waits for it in vain names it. Every write
    in evpipe starts here, so this is where a read-only process refuses it (models/readonly.py).

    `references_after` (SQLite): the rows' references are not checked one by one as they are
    written; the transaction checks them itself before it ends (`dialect.references_broken`).
    A bulk import's 100,000 new rows went in 0.6-1.2 s faster so, and a check of whole tables
    afterwards takes a fifth of that."""
    refuse_writes()
    options: dict[str, Any] = {"evpipe_write": True}
    if what:
        options["evpipe_writing"] = what
    if references_after:
        options["sqlite_references_after"] = True
    return engine.execution_options(**options)


def driver_rows(table: Table, rows: list[dict[str, Any]], dialect: Any) -> tuple[str, list[str], list[tuple]] | None:
    """An INSERT of `rows` (each naming every column of `table`) made ready for the driver: its
    SQL, its columns and each row's values converted as SQLAlchemy would bind them. Made before a
    write takes the lock, so that under it only the driver runs (`insert_rows`). None when the
    rows do not fit that (a column missing, or a driver that takes named parameters)."""
    compiled = insert(table).compile(dialect=dialect)
    names = list(compiled.positiontup or [])
    # every row names exactly these columns: as many keys as columns, and each column's key (a
    # missing one stops `itemgetter` with a KeyError)
    if not rows or not dialect.positional or set(map(len, rows)) != {len(names)}:
        return None
    try:
        tuples = list(map(itemgetter(*names), rows)) if len(names) > 1 else [(r[names[0]],) for r in rows]
    except KeyError:
        return None
    convert = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    if all(f is None for f in convert):
        return str(compiled), names, tuples
    return str(compiled), names, _converted_rows(list(zip(*tuples)), convert)


def driver_columns(
    table: Table, columns: dict[str, Sequence[Any]], dialect: Any
) -> tuple[str, list[str], list[tuple]] | None:
    """`driver_rows` for rows given column by column (`columns`: every column of `table`, each
    its values in row order), with no dict a row made first. None when they do not fit that."""
    compiled = insert(table).compile(dialect=dialect)
    names = list(compiled.positiontup or [])
    if not dialect.positional or set(columns) != set(names) or len(set(map(len, columns.values()))) > 1:
        return None
    convert = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    return str(compiled), names, _converted_rows([tuple(columns[n]) for n in names], convert)


def _converted_rows(values: list[tuple[Any, ...]], convert: list[Any]) -> list[tuple]:
    """Rows from their columns' values, each column through its bind processor (None: as it is):
    column by column, each distinct value converted once (an import's rows share a few moments
    and dates), the same values as converting every cell, in a fraction of the time."""
    for i, f in enumerate(convert):
        if f is not None:
            values[i] = tuple(_converted(list(values[i]), f))
    return list(zip(*values))


def _converted(column: list[Any], f: Any) -> list[Any]:
    """`f` applied to each value of a column, once per distinct value (of the same type: a date
    and a datetime, 1 and True, stay apart)."""
    try:
        if len(set(map(type, column))) == 1:  # one type: equal values are the same value
            done = {v: f(v) for v in set(column)}
            return list(map(done.__getitem__, column))
        keys = list(zip(map(type, column), column))
        done = {key: f(key[1]) for key in set(keys)}
    except TypeError:  # a value that cannot be hashed (a dict for a JSON column)
        return [f(v) for v in column]
    return list(map(done.__getitem__, keys))


def _database_file(conn: Connection) -> Path | None:
    return sqlite_path(conn.engine.url.render_as_string(hide_password=False))


def begin_write(conn: Connection) -> None:
    """Begin a transaction that writes: the one place evpipe takes a database's write lock.

    SQLite: BEGIN IMMEDIATE, so that two writers wait for each other at the start instead of
    failing half-way; the wait is the connection's busy timeout. A lock still held after it raises
    `WriteLocked`, naming the holder when a long write left its record (models/writing.py), and a
    long write (`writer(engine, what)`) leaves its own record once it holds the lock.

    PostgreSQL: the writers' lock (models/dialect.py `lock_writes`), waiting at most the lock
    timeout, which ends in the same words (models/errors.py)."""
    if conn.dialect.name != "sqlite":
        from .dialect import lock_writes

        lock_writes(conn)
        return
    started = time.monotonic()
    try:
        conn.exec_driver_sql(BEGIN_IMMEDIATE)
    except OperationalError as exc:
        if "database is locked" not in str(exc.orig):
            raise
        raise _locked(_database_file(conn), time.monotonic() - started) from None
    what = conn.get_execution_options().get("evpipe_writing")
    path = _database_file(conn)
    if what and path is not None:
        announce(path, str(what))


def _write_over(conn: Connection) -> None:
    path = _database_file(conn)
    if conn.get_execution_options().get("evpipe_writing") and path is not None:
        withdraw(path)


def _locked(path: Path | None, waited: float) -> WriteLocked:
    holder = current_writer(path) if path is not None else None
    held = f" ({holder.words()})" if holder is not None else ""
    seconds = f"{waited:.0f}" if waited >= 2 else f"{waited:.1f}"
    reason = f"another evpipe is writing to the database{held} and did not finish in time"
    line = (
        f"another evpipe is writing to {path if path is not None else 'the database'}{held} and kept it "
        f"locked for more than {seconds} s; nothing was changed: try again, or wait for it to finish "
        "(EVPIPE_LOCK_TIMEOUT sets the wait)"
    )
    return WriteLocked(reason, line)


def alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            rows = fetch_all(conn, "SELECT version_num FROM alembic_version")
            return rows[0][0] if rows else None
    except (OperationalError, ProgrammingError):
        return None


def connection_problem(url: str, exc: BaseException) -> str:
    """Why a database server refused the connection, in one line with what to do next."""
    from .locations import db_label

    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    reason = reason.removeprefix("connection failed: ")
    low = reason.lower()
    if "password" in low or "authentication" in low:
        hint = "check the user, and the password in ~/.pgpass or PGPASSWORD (never in the URL)"
    elif "role" in low and "does not exist" in low:
        hint = "check the user name in the URL (or PGUSER); the server's administrator creates roles"
    elif "database" in low and "does not exist" in low:
        hint = "check the database name, or create it (createdb NAME) and run: evpipe --db URL init"
    elif "permission denied" in low or "not permitted" in low:
        hint = "ask the server's administrator for access (CONNECT, and the evpipe tables)"
    else:
        hint = "check that the server is running and the host, port and socket in the URL"
    return f"cannot connect to {db_label(url)}: {reason[:200]}; {hint}"


def _check_connection(engine: Engine) -> None:
    """A server database: connect once, so a refusal is one clear line (DatabaseProblem)."""
    if engine.dialect.name == "sqlite":
        return
    from .locations import DatabaseProblem

    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise DatabaseProblem(connection_problem(str(engine.url), exc)) from None


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head. Returns True when the database was new (had no schema)."""
    _check_connection(engine)
    revision = current_revision(engine)
    if revision == HEAD:
        return False
    from alembic import command

    with writer(engine, "a schema upgrade").begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    return revision is None
