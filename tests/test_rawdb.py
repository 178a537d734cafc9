"""The app's first screen reads SQLite with the standard library; the numbers must be the same."""

import subprocess
import sys
from datetime import date
from pathlib import Path

from evpipe.models.kpi import Scope, kpis, kpis_by, snapshots, stage_table
from evpipe.models.rawdb import SqliteReader, fetch_all, schema_ready
from tests.test_history import story as story  # (the fixture: two months of work, journalled)

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


def test_the_month_starts_a_forecast_records_on_a_file_are_carried_without_sqlalchemy(story, db_path, monkeypatch):
    """A forecast on an SQLite file records the missing month starts itself when nothing was
    journalled since the newest reading (models/month_starts.py): no engine is asked for (the
    month's first `evpipe forecast` waited a second for SQLAlchemy to import), no journal is
    replayed, and the readings are what a replay gives. Something journalled since the reading:
    the engine records them (replaying), as before."""
    from datetime import datetime

    from evpipe.models import history
    from evpipe.models.month_starts import record_month_starts
    from evpipe.models.store import Store
    from tests.test_history import _replays
    from tests.test_snapshot_deltas import kept

    history.record_snapshot(story, at=datetime(2026, 11, 20, 18))  # the day's reading, after its last change
    want = _replays(story)
    asked: list[str] = []
    monkeypatch.setenv("EVPIPE_NOW", "2027-01-03T10:00:00")  # (the day the engine's way records up to)

    def no_replay(*_a, **_k):
        raise AssertionError("the journal was replayed")

    def engine():
        asked.append("engine")
        return story

    with monkeypatch.context() as m:
        m.setattr(history.Replay, "states", no_replay)
        assert record_month_starts(SqliteReader(db_path), engine, date(2027, 1, 3)) is None
        assert record_month_starts(SqliteReader(db_path), engine, date(2027, 1, 3)) is None  # (there already)
    assert asked == []
    for (day, scope), figures in want.items():
        if figures[1] or scope == "all":
            assert kept(story, day)[scope] == figures, (day, scope)
    held = fetch_all(SqliteReader(db_path), "SELECT months_of FROM kpi_snapshot WHERE taken_on = '2026-12-31'")
    assert held and all(months_of is not None for (months_of,) in held)  # no month rows written again

    # a change after the newest reading that no reading counted: the engine replays the journal
    with story.begin() as conn:
        conn.exec_driver_sql("DELETE FROM kpi_snapshot_month")
        conn.exec_driver_sql("DELETE FROM kpi_snapshot")
    history.record_snapshot(story, at=datetime(2026, 11, 20, 18))
    Store(story, who="tester").edit("B", value="7000", at=datetime(2026, 11, 25, 9))
    assert record_month_starts(SqliteReader(db_path), engine, date(2027, 1, 3)) is None
    assert asked == ["engine"]
    for (day, scope), figures in _replays(story).items():
        if figures[1] or scope == "all":
            assert kept(story, day)[scope] == figures, (day, scope)
