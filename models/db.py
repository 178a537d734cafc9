"""The engine factory and the schema upgrade. Nothing here runs at import time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError, ProgrammingError

from .locations import ensure_private_file, sqlite_path
from .rawdb import BEGIN_IMMEDIATE, HEAD, SQLITE_PRAGMAS, fetch_all

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for `url`. For SQLite: foreign keys on, WAL, a busy timeout, and write
    transactions that take the write lock at BEGIN (BEGIN IMMEDIATE) so that two sessions
    writing at once wait for each other instead of failing half-way."""
    path = sqlite_path(url)
    if path is not None and create:
        ensure_private_file(path)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": LOCK_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - exercised by every test
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            if conn.get_execution_options().get("sqlite_write"):
                conn.exec_driver_sql(BEGIN_IMMEDIATE)
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    from . import dialect  # noqa: F401  (gives rawdb's text builders this server's SQL)

    return create_engine(url, pool_pre_ping=True, connect_args=server_options(url))


#: How long a write waits for a lock another writer holds before it gives up (SQLite's timeout too).
LOCK_TIMEOUT_S = 30


def server_options(url: str) -> dict[str, str]:
    """Connection settings for a database server (PostgreSQL): a lock wait ends after
    LOCK_TIMEOUT_S with "canceling statement due to lock timeout" (models.errors words it), and
    timestamps are read and written in UTC, as on SQLite. A URL that sets `options` keeps its own."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("postgresql") or "options" in parsed.query:
        return {}
    return {"options": f"-c lock_timeout={LOCK_TIMEOUT_S}s -c timezone=UTC"}


def writer(engine: Engine) -> Engine:
    """The same engine, for a transaction that will write."""
    return engine.execution_options(sqlite_write=True)


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

    with writer(engine).begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    return revision is None
