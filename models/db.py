"""The engine factory and the schema upgrade. Nothing here runs at import time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError, ProgrammingError

from .locations import ensure_private_file, sqlite_path
from .rawdb import BEGIN_IMMEDIATE, HEAD, SQLITE_PRAGMAS, fetch_all, read_only_connection
from .readonly import is_read_only, refuse_writes

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for `url`. For SQLite: foreign keys on, WAL, a busy timeout, and write
    transactions that take the write lock at BEGIN (BEGIN IMMEDIATE) so that two sessions
    writing at once wait for each other instead of failing half-way. In a read-only process
    (models/readonly.py) an SQLite file is opened read-only by SQLite too."""
    path = sqlite_path(url)
    if path is not None and create and not is_read_only():
        ensure_private_file(path)
    if url.startswith("sqlite"):
        if path is not None and is_read_only():
            engine = create_engine("sqlite://", creator=lambda: read_only_connection(path))
        else:
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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
    return create_engine(url, pool_pre_ping=True)


def writer(engine: Engine) -> Engine:
    """The same engine, for a transaction that will write: every write in evpipe starts here, so
    this is where a read-only process refuses it (models/readonly.py)."""
    refuse_writes()
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


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head. Returns True when the database was new (had no schema)."""
    revision = current_revision(engine)
    if revision == HEAD:
        return False
    from alembic import command

    with writer(engine).begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    return revision is None
