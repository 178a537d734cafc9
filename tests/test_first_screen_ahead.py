"""The pipeline's first screen, read while the app is still being imported (tui/first_screen_ahead.py):
what it reads is what the pipeline's own first read gives, the pipeline paints it without reading
it again, and it is left alone where it would not be the same (another user, a rep limited to
their own, a file with a problem, a read made before the first look for others' changes)."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

import pytest
from apphelpers import settle
from sqlalchemy import text

import evpipe.models.first_screen as first_screen_module
import evpipe.tui.screens.pipeline as pipeline_module
from evpipe.models.first_screen import read_first_screen
from evpipe.models.kpi import Scope, kpis
from evpipe.models.members import add_member, set_reps_see
from evpipe.models.rawdb import SqliteReader
from evpipe.models.store import Store
from evpipe.tui import app as tui_app
from evpipe.tui import first_screen_ahead
from evpipe.tui.app import EvpipeApp

ROOT = Path(__file__).resolve().parent.parent


def _answered() -> None:
    """Wait until the fork begun by `begin` has answered (the app never waits for it)."""
    helper = first_screen_ahead._ahead.helper if first_screen_ahead._ahead is not None else None
    if helper is not None:
        assert select.select([helper.fd], [], [], 30)[0], "the fork gave no answer"


@pytest.fixture
def office(engine, monkeypatch):
    """Eight prospects with a month (more than a first page of 3), as user tester."""
    monkeypatch.setenv("EVPIPE_USER", "tester")
    monkeypatch.setattr(first_screen_module, "FIRST_PAGE", 3)
    me, sam = Store(engine, who="tester"), Store(engine, who="sam")
    for i in range(8):
        (me if i % 2 else sam).add(f"Prospect {i}", str(1000 * (i + 1)), "Enquiry", month=f"2027-0{1 + i % 3}")
    yield engine
    first_screen_ahead.discard()


def test_the_read_ahead_is_the_pipelines_own_first_read(office, db_url, db_path):
    first_screen_ahead.begin(db_url)
    _answered()
    assert first_screen_ahead.take(db_url, "somebody else") is None  # another user's "mine"
    got = first_screen_ahead.take(db_url, "tester")
    assert got == read_first_screen(SqliteReader(db_path), owner=None, who="tester", with_history=True)
    assert got.history is not None and got.history.scope_key == Scope(period=got.period).key
    assert [r.name for r in got.rows] == ["Prospect 0", "Prospect 3", "Prospect 6"] and not got.complete
    assert got.kpi_all == kpis(office, Scope(period=got.period))
    assert got.kpi_mine == kpis(office, Scope(owner="tester", period=got.period))
    assert first_screen_ahead.take(db_url, "tester") is None  # taken once


def test_nothing_is_read_ahead_for_a_rep_limited_to_their_own(office, db_url):
    add_member(office, "tester", "tester", "owner")
    add_member(office, "tester", "priya", "rep")
    set_reps_see(office, "tester", "own")
    first_screen_ahead.begin(db_url)
    _answered()
    assert first_screen_ahead.take(db_url, "tester") is None
    assert first_screen_ahead.opening(db_url).readable  # (the file is fine: the app decides the scope)


def test_a_file_with_a_problem_is_not_read_and_the_app_is_told(tmp_path):
    bad = tmp_path / "not-a-database.db"
    bad.write_bytes(b"this is not an SQLite file, just some text" * 20)
    url = f"sqlite:///{bad}"
    first_screen_ahead.begin(url)
    _answered()
    assert first_screen_ahead.take(url, "tester") is None
    told = first_screen_ahead.opening(url)
    assert told.problem is not None and not told.readable
    assert first_screen_ahead.opening(url) == told  # (checked again: the same)


async def test_the_pipeline_paints_the_read_ahead_without_reading_it_again(office, db_url, monkeypatch):
    first_reads = []
    real = pipeline_module.read_first_screen
    monkeypatch.setattr(pipeline_module, "read_first_screen", lambda *a, **k: first_reads.append(1) or real(*a, **k))
    first_screen_ahead.begin(db_url)
    _answered()
    app = EvpipeApp(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        page = app.pipeline
        await settle(pilot, until=lambda a: a.pipeline.loaded)
        assert page.header.texts["kpi-tv"].startswith("TV 36,000.00")
        await settle(pilot, until=lambda a: a.pipeline.complete)
        assert page.view.shown == 8
        assert page.kpi_all == kpis(office, Scope(period=page.period))
    assert first_reads == []


async def test_the_looks_for_changes_start_once_a_first_screen_read_ahead_is_shown(office, db_url, monkeypatch):
    """A first screen read ahead can be shown before the app's own mount: the looks for other
    sessions' changes still start right after it (they waited for the fallback, seconds later,
    and a change made meanwhile did not show)."""
    monkeypatch.setattr(tui_app, "FIRST_SCREEN_WAIT", 60.0)
    first_screen_ahead.begin(db_url)
    _answered()
    app = EvpipeApp(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.live._check is not None)
        assert app.live._check is not None
        Store(office, who="sam").edit(app.pipeline.view.lines[0], value="99")
        for _ in range(100):
            await pilot.pause(0.05)
            if app.pipeline.kpi_all == kpis(office, Scope(period=app.pipeline.period)):
                break
        assert app.pipeline.kpi_all == kpis(office, Scope(period=app.pipeline.period))


async def test_a_read_ahead_is_not_taken_after_the_first_look_for_changes(office, db_url, monkeypatch):
    """The app opened on another screen: by the time the pipeline is shown, others may have
    changed what was read ahead, and the looks for changes took their start after it."""
    first_reads = []
    real = pipeline_module.read_first_screen
    monkeypatch.setattr(pipeline_module, "read_first_screen", lambda *a, **k: first_reads.append(1) or real(*a, **k))
    first_screen_ahead.begin(db_url)
    _answered()
    app = EvpipeApp(db_url, screen="review")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.live._check is not None)
        Store(office, who="sam").add("Newcomer", "500", "Enquiry", month="2027-01")
        with office.connect() as conn:
            added = conn.execute(text("SELECT max(id) FROM change_event")).scalar()
        # the looks have seen it (on the review screen) before the pipeline opens: else it could come
        # in while the pipeline reads, and be read again with it (a second read, rightly)
        await settle(pilot, until=lambda a: a.live.after >= added)
        app.switch_mode("pipeline")
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        assert first_reads == [1]
        assert app.pipeline.view.shown == 9
        assert app.pipeline.kpi_all == kpis(office, Scope(period=app.pipeline.period))


def test_reading_ahead_loads_neither_textual_nor_sqlalchemy():
    """It runs while they are being imported: importing it must not pull them in first."""
    code = (
        "import sys, evpipe.tui.first_screen_ahead, evpipe.models.first_screen\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel', 'textual', 'rich'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
