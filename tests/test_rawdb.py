"""The app's first screen reads SQLite with the standard library; the numbers must be the same."""

import subprocess
import sys
from datetime import date
from pathlib import Path

from evpipe.models.kpi import Scope, kpis, kpis_by, snapshots, stage_table
from evpipe.models.rawdb import SqliteReader, fetch_all, schema_ready

ROOT = Path(__file__).resolve().parent.parent


def test_reader_and_engine_give_the_same_figures(demo_engine, db_path, db_url):
    from evpipe.models.history import record_snapshot

    record_snapshot(demo_engine)
    reader = SqliteReader(db_path)
    for scope in (Scope(), Scope(owner="sam"), Scope(month_from="2027-01", month_to="2027-03")):
        assert kpis(reader, scope) == kpis(demo_engine, scope)
        for by in ("month", "stage", "owner"):
            assert kpis_by(reader, by, scope) == kpis_by(demo_engine, by, scope)
    assert stage_table(reader) == stage_table(demo_engine)
    got = snapshots(reader, since=date(2026, 11, 1))
    assert got == snapshots(demo_engine, since=date(2026, 11, 1))
    assert got and got[-1].taken_on == date(2026, 11, 27)
    with demo_engine.connect() as conn:
        assert kpis(conn) == kpis(reader)
    assert fetch_all(reader, "SELECT count(*) FROM prospect WHERE owner = :o", {"o": "sam"})[0][0] > 0


def test_schema_ready_only_for_a_current_sqlite_file(tmp_path, engine, db_url):
    assert schema_ready(db_url)
    assert not schema_ready(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not schema_ready("postgresql://localhost/evpipe")
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    assert not schema_ready(f"sqlite:///{tmp_path / 'junk.db'}")


def test_opening_the_app_does_not_wait_for_sqlalchemy():
    """The pipeline's first screen is built without SQLAlchemy (about 200 ms to import); the
    engine opens in a worker afterwards. Importing the app must not pull it in."""
    code = (
        "import sys, evpipe.tui.app, evpipe.tui.screens.pipeline, evpipe.tui.widgets.prospect_table, evpipe.tui.widgets.kpi_header\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'alembic'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
