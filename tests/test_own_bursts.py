"""A rep's own keys in one burst are the rep's, not someone else's: a change made on the screen's
view of a prospect that this same session's earlier saves (an undo, which the screen does not show
ahead) moved on since is saved on top of them. When a save fails, the changes made on top of it
fail with it, and an undo pressed while a change was on its way undoes that change, not one saved
before it."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
from apphelpers import RecordingApp, settle

from evpipe.models.kpi import kpis
from evpipe.models.locations import sqlite_path
from evpipe.models.store import Store


@contextmanager
def saves_held(engine):
    """The saves wait (another process holds the write lock) while the keys are pressed, as over a
    slow link a burst arrives before its first change is saved; they go on once it is let go."""
    holder = sqlite3.connect(sqlite_path(engine.url.render_as_string(hide_password=False)), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def someone_else(notices: list[str]) -> list[str]:
    return [n for n in notices if "someone else" in n]


async def on_one_prospect(engine, stage: str = "Enquiry") -> tuple[Store, int, RecordingApp]:
    """Kelly-Tane wedding (its id) and Kauri Software, both on Enquiry, and the app on them."""
    store = Store(engine, who="tester")
    pid = store.add("Kelly-Tane wedding", "8000", stage, month="2027-01").prospect.id
    store.add("Kauri Software", "14500", "Enquiry", month="2027-02")
    return store, pid, RecordingApp(engine)


@pytest.mark.parametrize(
    ("stage", "keys", "lands_on"),
    [
        ("Enquiry", ("greater_than_sign", "u", "greater_than_sign"), "Quote sent"),
        ("Quote sent", ("w", "u", "less_than_sign"), "Enquiry"),
    ],
    ids=["> u >", "w u <"],
)
async def test_a_key_after_an_undo_in_one_burst_is_made_on_it(engine, stage, keys, lands_on):
    """`>` `u` `>` sent at once: the second `>` was refused as "changed by someone else: tester
    moved it Quote sent -> Enquiry" (the rep's own undo) and dropped; `w` `u` `<` the same."""
    store, pid, app = await on_one_prospect(engine, stage=stage)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert screen.table.go_to(pid)
        with saves_held(engine):
            await pilot.press(*keys)
            await pilot.pause(0.1)
        await settle(pilot, until=lambda a: not a.saver.busy)
        await settle(pilot, rounds=6)
        assert someone_else(app.notices) == []
        assert store.get(pid).stage_name == lands_on
        assert screen.table.view.rows[pid].stage_id == store.stage(lands_on).id
        assert screen.kpi_all == kpis(engine)


def impatient(app: RecordingApp) -> RecordingApp:
    """The app waiting 0.3 s for a held lock instead of 30 s."""
    from test_save_failures import impatient_engine

    app._engine = impatient_engine(app.url)
    return app


async def test_a_second_move_made_on_a_move_that_failed_fails_with_it_and_R_saves_both(engine):
    """`>` `>` under a held lock: the first failed and was taken back, while the header kept
    counting the second; once the lock was let go the second was refused as "changed by someone
    else (now version 1)", and R tried only the first."""
    store, pid, app = await on_one_prospect(engine)
    before = kpis(engine)
    async with impatient(app).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert screen.table.go_to(pid)
        with saves_held(engine):
            await pilot.press("greater_than_sign", "greater_than_sign")
            await settle(pilot, until=lambda a: len(a.saver.failed) == 2 and not a.saver.busy)
            await settle(pilot, rounds=6)
            said = [n for n in app.notices if n.startswith("Not saved")]
            assert len(said) == 2 and "made on your change just before, which was not saved" in said[1], said
            assert store.get(pid).stage_name == "Enquiry"
            assert screen.table.view.rows[pid].stage_id == store.stage("Enquiry").id
            assert screen.kpi_all == before  # neither move counted
        await pilot.press("R")
        await settle(pilot, until=lambda a: not a.saver.busy and store.get(pid).stage_name == "Date held")
        await settle(pilot, rounds=6)
        assert store.get(pid).stage_name == "Date held"  # both, in the order made
        assert someone_else(app.notices) == [] and app.saver.failed == []
        assert screen.kpi_all == kpis(engine)


async def test_undo_pressed_while_a_move_waits_undoes_that_move_not_the_one_saved_before(engine):
    """Bayview moved and saved; then, under a held lock, `>` on Cruise and `u`. The Cruise move
    failed, and the undo, run once the lock was let go, undid the Bayview move instead; R later
    saved the Cruise move the rep had undone."""
    store, pid, app = await on_one_prospect(engine)
    other = store.get("Kauri Software").id
    async with impatient(app).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert screen.table.go_to(other)
        await pilot.press("greater_than_sign")  # saved
        await settle(pilot, until=lambda a: store.get(other).stage_name == "Quote sent")
        assert screen.table.go_to(pid)
        with saves_held(engine):
            await pilot.press("greater_than_sign", "u")
            await settle(pilot, until=lambda a: not a.saver.busy)
            await settle(pilot, rounds=6)
        assert "Nothing undone: your last change was not saved, and R will not try it again." in app.notices
        await settle(pilot, until=lambda a: not a.saver.busy)
        assert (store.get(other).stage_name, store.get(pid).stage_name) == ("Quote sent", "Enquiry")
        assert app.saver.failed == []
        assert screen.kpi_all == kpis(engine)


async def test_undo_pressed_while_a_move_is_on_its_way_undoes_it_once_saved(engine):
    store, pid, app = await on_one_prospect(engine)
    other = store.get("Kauri Software").id
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert screen.table.go_to(other)
        await pilot.press("greater_than_sign")
        await settle(pilot, until=lambda a: store.get(other).stage_name == "Quote sent")
        assert screen.table.go_to(pid)
        with saves_held(engine):
            await pilot.press("greater_than_sign", "u")
            await pilot.pause(0.1)
        await settle(pilot, until=lambda a: not a.saver.busy)
        await settle(pilot, rounds=6)
        assert (store.get(other).stage_name, store.get(pid).stage_name) == ("Quote sent", "Enquiry")
        assert [n for n in app.notices if "undo" in n.lower() and "nothing" in n.lower()] == []
        assert screen.table.view.rows[pid].stage_id == store.stage("Enquiry").id
        assert screen.kpi_all == kpis(engine)
