"""A save that fails for a reason other than a rule (here: another process holds the write lock) is
never shown as saved: the row and the header go back, the notice says why in words, and `R` tries
the same change again once the lock is free."""

from __future__ import annotations

import asyncio
import sqlite3

from apphelpers import settle
from sqlalchemy import event

from evpipe.models.db import make_engine
from evpipe.models.errors import unsaved_reason
from evpipe.models.kpi import kpis
from evpipe.models.locations import sqlite_path
from evpipe.models.store import Store
from evpipe.tui.app import FINISHING_SAVE, EvpipeApp
from evpipe.tui.screens.pipeline import PipelineScreen


def impatient_engine(url: str):
    """The app's own engine, but waiting 0.3 s for a held lock instead of 30 s."""
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout=300")

    return engine


async def test_a_save_blocked_by_a_held_lock_is_taken_back_and_R_retries_it(engine):
    store = Store(engine, who="tester")
    pid = store.add("Harbour Events", "6000", "Quote sent", month="2026-12").prospect.id
    store.add("Kauri Software", "14500", "Enquiry", month="2027-01")
    before = kpis(engine)
    url = engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="tester")
    app._engine = impatient_engine(url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert isinstance(screen, PipelineScreen)
        assert screen.table.go_to(pid)
        await settle(pilot)

        # another evpipe (say, a long import) holds the write lock
        holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("greater_than_sign")
            # shown at once, before the save is tried
            assert screen.kpi_all.ev_micros - before.ev_micros == 6000_00 * (5000 - 2500)
            await settle(pilot, rounds=8, until=lambda a: any("Not saved" in n.message for n in a._notifications))
            await settle(pilot, rounds=6)
            said = [n.message for n in app._notifications if "Not saved" in n.message]
            assert said == [
                "Not saved: another evpipe is writing to the database and did not finish in time. "
                "Your change is undone on screen; press R to try again."
            ]
            # nothing was written, and the screen shows what the database has
            assert Store(engine).get(pid).stage_name == "Quote sent"
            assert screen.kpi_all == before
            assert screen.table.view.rows[pid].stage_id == Store(engine).stage("Quote sent").id
        finally:
            holder.rollback()
            holder.close()

        # the lock is free: one key tries the same change again
        await pilot.press("R")
        await settle(pilot, rounds=8, until=lambda a: Store(engine).get(pid).stage_name == "Date held")
        await settle(pilot, rounds=6)
        assert Store(engine).get(pid).stage_name == "Date held"
        assert screen.kpi_all == kpis(engine)
        assert screen.table.view.rows[pid].stage_id == Store(engine).stage("Date held").id
        # and a second R has nothing left to retry
        await pilot.press("R")
        await settle(pilot)
        assert "Nothing to retry: every change so far was saved or refused." in [n.message for n in app._notifications]
    app._engine.dispose()


def two_prospects_and_an_impatient_app(engine) -> tuple[int, int, str, EvpipeApp]:
    """Harbour Events on Quote sent and Kauri Software on Enquiry, and the app on them waiting
    0.3 s for a held lock: (their ids, the database's URL, the app)."""
    store = Store(engine, who="tester")
    first = store.add("Harbour Events", "6000", "Quote sent", month="2026-12").prospect.id
    second = store.add("Kauri Software", "14500", "Enquiry", month="2027-01").prospect.id
    url = engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="tester")
    app._engine = impatient_engine(url)
    return first, second, url, app


async def test_R_retries_every_change_that_failed_in_order(engine):
    """Two moves failed under a held lock; R saved only the last, and a second R said nothing was
    left: the first was lost although the screen had said "press R" for it."""
    first, second, url, app = two_prospects_and_an_impatient_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            for pid in (first, second):
                assert screen.table.go_to(pid)
                await pilot.press("greater_than_sign")
            await settle(pilot, until=lambda a: len(a.saver.failed) == 2 and not a.saver.busy)
            assert len(app.saver.failed) == 2
        finally:
            holder.rollback()
            holder.close()
        await pilot.press("R")
        assert "Trying 2 changes again, in the order they were made." in [n.message for n in app._notifications]
        await settle(pilot, until=lambda a: not a.saver.busy and Store(engine).get(second).stage_name == "Quote sent")
        await settle(pilot, rounds=6)
        assert (Store(engine).get(first).stage_name, Store(engine).get(second).stage_name) == (
            "Date held",
            "Quote sent",
        )
        assert screen.kpi_all == kpis(engine)
        assert app.saver.failed == []
    app._engine.dispose()


async def test_R_runs_a_failed_undo_before_the_failed_changes_it_was_pressed_after(engine):
    """A move failed under a held lock and was taken back on screen; u then meant "undo my last
    saved change" and failed too. Retried in the order made, the undo undid the move just saved
    again instead: the saved change the rep wanted gone stayed, and the move was lost."""
    first, second, url, app = two_prospects_and_an_impatient_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert screen.table.go_to(first)
        await pilot.press("greater_than_sign")  # saved: the change to undo
        await settle(pilot, until=lambda a: Store(engine).get(first).stage_name == "Date held")
        holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            assert screen.table.go_to(second)
            await pilot.press("greater_than_sign")  # fails
            await settle(pilot, until=lambda a: len(a.saver.failed) == 1 and not a.saver.busy)
            await pilot.press("u")  # fails: meant the first move
            await settle(pilot, until=lambda a: len(a.saver.failed) == 2 and not a.saver.busy)
        finally:
            holder.rollback()
            holder.close()
        await pilot.press("R")
        await settle(pilot, until=lambda a: not a.saver.busy and Store(engine).get(second).stage_name == "Quote sent")
        await settle(pilot, rounds=6)
        assert (Store(engine).get(first).stage_name, Store(engine).get(second).stage_name) == (
            "Quote sent",
            "Quote sent",
        )
        assert screen.kpi_all == kpis(engine)
    app._engine.dispose()


async def test_a_failed_save_takes_back_its_own_row_only(engine):
    """When one save failed, the screen read every row again and showed another row's move, still
    on its way, as the database had it (while the header kept counting it) until that save landed."""
    from evpipe.tui.messages import ChangeFailed

    store = Store(engine, who="tester")
    first = store.add("Harbour Events", "6000", "Quote sent", month="2026-12").prospect.id
    second = store.add("Kauri Software", "14500", "Enquiry", month="2027-01").prospect.id
    before = kpis(engine)
    url = engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        on_their_way = []
        app.saver.save = lambda change, after_frame=False: on_their_way.append(change)  # (never saved)
        for pid in (first, second):
            assert screen.table.go_to(pid)
            await pilot.press("greater_than_sign")
        await settle(pilot)
        failed, waiting = on_their_way
        screen.post_message(ChangeFailed("Not saved: the disk is full.", first, failed.optimistic, retryable=True))
        await settle(pilot, rounds=8)
        quote_sent, enquiry = Store(engine).stage("Quote sent").id, Store(engine).stage("Enquiry").id
        assert screen.table.view.rows[first].stage_id == quote_sent  # its own move taken back
        assert screen.table.view.rows[second].stage_id == Store(engine).stage("Quote sent").id != enquiry
        assert screen.kpi_all == before.moved(*waiting.optimistic)  # the header agrees with the rows


def test_unsaved_reasons_are_words():
    assert unsaved_reason(sqlite3.OperationalError("database is locked")).startswith("another evpipe is writing")
    assert unsaved_reason(sqlite3.OperationalError("database or disk is full")) == "the disk is full"
    assert unsaved_reason(sqlite3.OperationalError("attempt to write a readonly database")) == (
        "the database is read-only for you"
    )
    assert unsaved_reason(OSError("boom\nsecond line")).startswith("the database refused it (boom")
    # the server stopped: it refused nothing (the rep saw "the database refused it (connection is
    # bad: connection to server on socket ... Is the )", cut off in the middle)
    for said in (
        'connection is bad: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file',
        "consuming input failed: server closed the connection unexpectedly",
        "terminating connection due to administrator command",
    ):
        assert unsaved_reason(_server_gone(said)) == (
            "the database server could not be reached (stopped or restarting, or the network is down)"
        )


async def test_q_waits_for_a_change_on_its_way_and_says_so(engine):
    """q while a change waited for a held lock blanked the screen and quit whenever the wait ended,
    the change saved or not, without a word. It says it is saving first, and quits once saved."""
    import asyncio

    store = Store(engine, who="tester")
    pid = store.add("Harbour Events", "6000", "Quote sent", month="2026-12").prospect.id
    url = engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="tester")
    app._engine = make_engine(url, lock_timeout=5.0)
    holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.pipeline.table.go_to(pid)
        await settle(pilot)
        holder.execute("BEGIN IMMEDIATE")
        await pilot.press("greater_than_sign")
        await pilot.press("q")
        await pilot.pause(0.3)  # (not `settle`, which waits for the save's worker)
        assert app.is_running and app.saver.busy, [n.message for n in app._notifications]
        assert "Saving your last change before quitting; q again quits now." in [n.message for n in app._notifications]
        holder.rollback()
        for _ in range(300):
            if app.return_code is not None:
                break
            await asyncio.sleep(0.01)
        assert app.return_code == 0
    holder.close()
    assert Store(engine).get(pid).stage_name == "Date held" and app.saver.lost == []
    app._engine.dispose()


async def test_q_twice_quits_at_once_and_a_change_that_then_fails_is_kept_to_print(engine):
    import asyncio

    store = Store(engine, who="tester")
    pid = store.add("Harbour Events", "6000", "Quote sent", month="2026-12").prospect.id
    url = engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="tester")
    app._engine = make_engine(url, lock_timeout=0.5)
    said_on_exit: list[object] = []
    real_exit = app.exit
    app.exit = lambda *args, **kwargs: (said_on_exit.append(kwargs.get("message")), real_exit(*args, **kwargs))[1]
    holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.pipeline.table.go_to(pid)
            await settle(pilot)
            await pilot.press("greater_than_sign")
            await pilot.press("q")
            await pilot.press("q")
            # the terminal is given back at once, and blank while the save waits: it says why
            assert [str(m) for m in said_on_exit] == [FINISHING_SAVE]
            for _ in range(300):
                if app.return_code is not None and not app.saver.busy:
                    break
                await asyncio.sleep(0.01)
    finally:
        holder.rollback()
        holder.close()
    assert app.saver.lost == [unsaved_reason(sqlite3.OperationalError("database is locked"))]
    assert Store(engine).get(pid).stage_name == "Quote sent"
    app._engine.dispose()


async def test_an_edit_form_that_cannot_save_keeps_what_was_typed_and_only_its_own_retry_saves_it(engine):
    """The edit form under a held lock said "Not saved: Not saved: ... Your change is undone on
    screen; press R" while it still showed what was typed; and esc, then "discard", while the save
    waited for the lock, still saved it (then, or with a later R)."""
    from textual.widgets import Input

    from evpipe.tui.screens.prospect_form import ProspectForm

    first, _second, url, app = two_prospects_and_an_impatient_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.pipeline is not None and app.pipeline.table.go_to(first)
        await pilot.press("e")
        await settle(pilot, until=lambda a: isinstance(a.screen, ProspectForm))
        form = app.screen
        assert isinstance(form, ProspectForm)
        form.query_one("#value", Input).value = "4321"
        holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("ctrl+s")
            await pilot.press("escape")  # while it waits for the lock: not offered to discard
            await settle(pilot)
            assert app.screen is form
            assert any("Saving what you typed" in n.message for n in app._notifications)
            await settle(
                pilot, rounds=8, until=lambda a: "Not saved" in str(form.query_one("#conflict-error").render())
            )
            said = str(form.query_one("#conflict-error").render())
            assert said == (
                "Not saved: another evpipe is writing to the database and did not finish in time. "
                "What you typed is still here: ctrl+s tries again, esc leaves it."
            )
            assert form.query_one("#value", Input).value == "4321"
        finally:
            holder.rollback()
            holder.close()
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("y")  # discard what was typed
        await settle(pilot, until=lambda a: not isinstance(a.screen, ProspectForm))
        await pilot.press("R")
        await settle(pilot)
        assert "Nothing to retry: every change so far was saved or refused." in [n.message for n in app._notifications]
        assert Store(engine).get(first).value_cents == 600_000
    app._engine.dispose()


def _server_gone(said: str = "connection is bad: connection to server on socket failed") -> Exception:
    """What SQLAlchemy raises for a query once the PostgreSQL server has gone away."""
    from sqlalchemy.exc import OperationalError

    return OperationalError("SELECT 1", {}, Exception(said))


async def _through_outage(pilot, *, rounds: int, until=None) -> None:
    """As apphelpers.settle, while the server is gone: the screen's reads fail then (it tries
    again every READ_AGAIN_AFTER), and a worker failing so is the outage's, not the test's."""
    app = pilot.app
    for _ in range(50 if until is not None else rounds):
        await asyncio.gather(*[worker.wait() for worker in list(app.workers)], return_exceptions=True)
        await pilot.pause()
        if until is not None and until(app):
            break
    await pilot.pause(0.02)


async def test_a_save_that_fails_while_the_server_is_gone_is_taken_back_and_read_again_once_it_is_back(
    engine, monkeypatch
):
    """With the server stopped, `>` failed ("Your change is undone on screen; press R") but the
    row and the header kept showing it as saved: the take-back read the database again, and that
    read failed too. They showed it until evpipe was started again, the server long back."""
    from evpipe.tui.screens import pipeline

    store = Store(engine, who="tester")
    pid = store.add("Harbour Events", "6000", "Quote sent", month="2026-12").prospect.id
    other = store.add("Kauri Software", "14500", "Enquiry", month="2027-01").prospect.id
    before = kpis(engine)
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setattr(pipeline, "READ_AGAIN_AFTER", 0.05, raising=False)
    app = EvpipeApp(url, who="tester", live_every=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert isinstance(screen, PipelineScreen)
        quote_sent = Store(engine).stage("Quote sent").id

        def gone(*_args, **_kwargs):
            raise _server_gone()

        # the server goes away: the save fails, and so does every read
        reads = {name: getattr(pipeline, name) for name in ("load_ladder", "kpis_as_of_journal")}
        for name in reads:
            monkeypatch.setattr(pipeline, name, gone)
        monkeypatch.setattr(app.store, "move", gone)
        assert screen.table.go_to(pid)
        await pilot.press("greater_than_sign")
        await _through_outage(pilot, rounds=8, until=lambda a: any("Not saved" in n.message for n in a._notifications))
        await _through_outage(pilot, rounds=4)
        assert screen.table.view.rows[pid].stage_id == quote_sent  # undone on screen, as the notice says
        assert screen.kpi_all == before
        assert screen.table.view.rows[other].value_cents == 14500_00

        # meanwhile another session changes a prospect (this app does not look: live_every=None)
        Store(engine, who="sam").edit(other, value="20000")

        # the server is back: the screen reads again by itself, without a key
        for name, read in reads.items():
            monkeypatch.setattr(pipeline, name, read)
        # a read begun while it was gone (the screen tries again every READ_AGAIN_AFTER) may still
        # be failing: the outage's failure, which the screen meets as it meets the others
        await _through_outage(pilot, rounds=1)
        await settle(pilot, rounds=8, until=lambda a: screen.table.view.rows[other].value_cents == 20000_00)
        await settle(pilot, rounds=4)
        assert screen.table.view.rows[other].value_cents == 20000_00
        assert screen.table.view.rows[pid].stage_id == quote_sent
        assert screen.kpi_all == kpis(engine)
        assert not screen._loading


async def test_the_database_back_after_an_outage_is_said_and_a_second_outage_is_said_again(engine, monkeypatch):
    """The "database has a problem" notice was said once per text, ever: after the server came back
    nothing said so, and the same outage later was not said at all. Now a read that succeeds after
    failed ones says the database answers again, and the next outage is said again. The problem's
    notice goes once the database answers: it stayed up for its two minutes, saying a problem that
    was over, beside the notice saying the database answered."""
    from evpipe.tui.screens import pipeline

    Store(engine, who="tester").add("Harbour Events", "6000", "Quote sent", month="2026-12")
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setattr(pipeline, "READ_AGAIN_AFTER", 0.05, raising=False)
    app = EvpipeApp(url, who="tester", live_every=None)

    def said(text: str) -> int:
        return sum(1 for n in app._notifications if n.message.startswith(text))

    told: list[str] = []  # every notice given, whether or not it replaced the same one on screen
    notify = app.notify

    def recorded(message, **kwargs):
        told.append(str(message))
        return notify(message, **kwargs)

    app.notify = recorded  # type: ignore[method-assign]

    def told_again(text: str) -> int:
        return sum(1 for t in told if t.startswith(text))

    def gone(*_args, **_kwargs):
        raise _server_gone()

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert isinstance(screen, PipelineScreen)
        reads = {name: getattr(pipeline, name) for name in ("load_ladder", "kpis_as_of_journal")}
        for outage in (1, 2):
            for name in reads:
                monkeypatch.setattr(pipeline, name, gone)
            screen.load()
            for _ in range(200):  # (not `settle`: it fails the test on the failed reads meant here)
                if said("The database has a problem") == 1:
                    break
                await pilot.pause(0.02)
            assert said("The database has a problem") == 1
            for name, read in reads.items():
                monkeypatch.setattr(pipeline, name, read)
            for _ in range(200):
                if told_again("The database answers again") == outage:
                    break
                await pilot.pause(0.02)
            assert told_again("The database answers again") == outage
            assert said("The database answers again") == 1  # said again, not stacked beside the last
            # the problem's notice goes with it (taken off the screen, not left up for two minutes)
            for _ in range(50):
                if not said("The database has a problem"):
                    break
                await pilot.pause(0.02)
            assert not said("The database has a problem")
