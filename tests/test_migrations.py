"""Alembic owns the schema: a fresh database upgrades to head, and the models match the migrations."""

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import evpipe.models.tables  # noqa: F401
from evpipe.models import open_db
from evpipe.models.db import HEAD, alembic_config, current_revision


def test_head_constant_matches_alembic():
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_current_head() == HEAD


def test_fresh_database_upgrades_to_head(db_url):
    engine = open_db(db_url)
    assert current_revision(engine) == HEAD
    tables = set(inspect(engine).get_table_names())
    assert {
        "stage",
        "prospect",
        "activity",
        "stage_change",
        "change_event",
        "kpi_snapshot",
        "kpi_snapshot_month",
        "setting",
        "alembic_version",
    } <= tables


#: SQLite's reflection cannot read an index on an expression, so Alembic's comparison leaves the
#: listing index out (and says so): `test_the_listing_index_is_the_models` compares it.
EXPRESSION_INDEX_WARNINGS = (
    "ignore:Skipped unsupported reflection of expression-based index ix_prospect_listing",
    "ignore:autogenerate skipping metadata-specified expression-based index 'ix_prospect_listing'",
)


@pytest.mark.filterwarnings(*EXPRESSION_INDEX_WARNINGS)
def test_models_match_migrations(db_url):
    engine = open_db(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_the_listing_index_is_the_models(db_path):
    """The index on an expression that Alembic's comparison cannot read on SQLite: the migrated
    file's index is the one the models declare, column for column."""
    import sqlite3

    from sqlalchemy.schema import CreateIndex

    engine = open_db(f"sqlite:///{db_path}")
    (index,) = [ix for ix in SQLModel.metadata.tables["prospect"].indexes if ix.name == "ix_prospect_listing"]
    declared = str(CreateIndex(index).compile(dialect=engine.dialect)).strip()
    engine.dispose()
    (made,) = (
        sqlite3.connect(db_path).execute("SELECT sql FROM sqlite_master WHERE name = 'ix_prospect_listing'").fetchone()
    )
    assert " ".join(made.split()) == " ".join(declared.split())
    assert "lower(name)" in made


@pytest.mark.both_databases
def test_the_undo_index_is_partial_on_every_database(db_url):
    """The models name only SQLite's predicate of ix_change_event_undoes (models/tables.py: naming
    PostgreSQL's would load that dialect in every command); migration 0013 makes it partial on both."""
    engine = open_db(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_change_event_undoes'")
        else:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_change_event_undoes'")
        (made,) = sql.one()
    engine.dispose()
    assert "WHERE" in made and "undoes_id IS NOT NULL" in made, made


def test_the_models_load_no_postgresql_dialect():
    """A command on SQLite does not import SQLAlchemy's PostgreSQL dialect with the models (19 ms)."""
    code = (
        "import sys, evpipe.models.tables, evpipe.models.importer, evpipe.models.history; "
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_reopening_keeps_data_and_does_not_reseed(db_url):
    from evpipe.models.store import Store

    engine = open_db(db_url)
    Store(engine).add("Keep me", "100")
    engine.dispose()
    again = open_db(db_url)
    from evpipe.models.kpi import kpis

    assert kpis(again).count == 1
    assert len(Store(again).ladder()) == 7


def test_pragmas(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_new_database_file_is_private(db_path, db_url):
    open_db(db_url)
    assert (db_path.stat().st_mode & 0o777) == 0o600


@pytest.mark.filterwarnings(*EXPRESSION_INDEX_WARNINGS)
def test_an_older_database_upgrades_itself_on_open_and_keeps_its_data(db_url):
    """A database made by an earlier evpipe (schema 0001) is upgraded when a newer one opens it."""
    from alembic import command

    from evpipe.models.db import make_engine, writer
    from evpipe.models.kpi import kpis
    from evpipe.models.seed import install_ladder
    from evpipe.models.store import Store

    old = make_engine(db_url)
    # Written by today's store, then taken back to 0001 (today's store writes columns 0001 lacks).
    with writer(old).begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    install_ladder(old)
    Store(old).add("From the old days", "1,234.50", "Quote sent")
    with writer(old).begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert current_revision(old) == "0001"
    old.dispose()

    engine = open_db(db_url)
    assert current_revision(engine) == HEAD
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("prospect")}
    assert "ix_prospect_live_stage_value" in indexes and "ix_prospect_live_stage" not in indexes
    assert kpis(engine).tv_cents == 123450
