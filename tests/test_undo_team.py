"""Issue 11, point 3: undo never erases a colleague's work. It reverses your change only while the
fields it touched still hold what it left; otherwise it is refused, naming the later change and its
author, and you can skip it to undo your earlier changes."""

from __future__ import annotations

import pytest
from apphelpers import RecordingApp, settle
from click.testing import CliRunner
from test_import import assert_journal_exact

from evpipe.models.errors import NothingToUndo, UndoBlocked
from evpipe.models.kpi import Scope, kpis
from evpipe.models.store import Store
from evpipe.tui.cli import main as cli


@pytest.fixture
def team(engine):
    alice, bob = Store(engine, who="alice"), Store(engine, who="bob")
    gamma = bob.add("Gamma", "500", "Enquiry").prospect.id
    return engine, alice, bob, gamma


def test_undo_is_refused_when_a_colleague_changed_the_field_since(team):
    engine, alice, bob, gamma = team
    alice.edit(gamma, value="1000")
    bob.edit(gamma, value="5000")
    with pytest.raises(UndoBlocked) as refused:
        alice.undo()
    said = str(refused.value)
    assert "bob changed value 1,000 -> 5,000 at 10:00" in said and "skip" in said
    assert alice.get(gamma).value_cents == 500_000  # bob's change stands


def test_undo_goes_ahead_when_the_fields_still_hold_what_the_change_left(team):
    engine, alice, bob, gamma = team
    alice.edit(gamma, value="1000")
    bob.edit(gamma, notes="bob was here")  # another field
    alice.undo()
    p = alice.get(gamma)
    assert (p.value_cents, p.notes) == (50_000, "bob was here")


def test_skip_leaves_the_blocked_change_and_undoes_the_one_before(team):
    engine, alice, bob, gamma = team
    delta = alice.add("Delta", "2000").prospect.id
    alice.edit(gamma, value="1000")
    bob.edit(gamma, value="5000")
    with pytest.raises(UndoBlocked):
        alice.undo()
    result = alice.undo(skip=True)  # the refused undo no longer blocks the list
    assert "undo add of Delta" in result.summary
    assert alice.get(gamma).value_cents == 500_000
    assert alice.get(delta, include_deleted=True).deleted
    with pytest.raises(NothingToUndo):
        alice.undo()
    assert_journal_exact(engine)  # a skip moves no KPI: the journal still sums to them


def test_the_journal_does_not_call_a_skipped_change_undone(team):
    """`journal`, the Activity screen and the prospect page said "(undone)" of the change
    `undo --skip` passed over, and `journal --json` "undone": true, while it still held."""
    from evpipe.models.journal_read import journal

    engine, alice, bob, gamma = team
    delta = alice.add("Delta", "2000").prospect.id
    alice.edit(gamma, value="1000")
    bob.edit(gamma, value="5000")
    alice.undo(skip=True)
    entries = journal(engine, who="alice")
    by_id = {e.id: e for e in entries}
    skip, undo = (next(e for e in entries if e.action == action) for action in ("skip", "undo"))
    assert (skip.prospect_id, undo.prospect_id) == (gamma, delta)
    assert not by_id[skip.undoes_id].undone  # skipped: it stays as it was
    assert by_id[undo.undoes_id].undone


def test_a_move_undo_is_refused_when_someone_moved_it_again(team):
    engine, alice, bob, gamma = team
    alice.move(gamma, "next")
    bob.move(gamma, "won")
    with pytest.raises(UndoBlocked) as refused:
        alice.undo()
    assert "bob moved it Quote sent -> Won at 10:00" in str(refused.value)
    assert alice.get(gamma).stage_name == "Won"


def test_a_deleted_prospect_names_who_deleted_it(team):
    engine, alice, bob, gamma = team
    alice.move(gamma, "next")
    bob.delete(gamma)
    with pytest.raises(UndoBlocked) as refused:
        alice.undo()
    assert "bob deleted it at 10:00" in str(refused.value)


def test_probability_undo_is_refused_when_a_colleague_set_it_since(team):
    engine, alice, bob, gamma = team
    alice.set_probability("Enquiry", "30")
    bob.set_probability("Enquiry", "40")
    with pytest.raises(UndoBlocked) as refused:
        alice.undo()
    assert "bob set Enquiry 30% -> 40% at 10:00" in str(refused.value)
    assert alice.stage("Enquiry").probability_bp == 4000
    result = alice.undo(skip=True)  # nothing before it: the skip is all there is
    assert "skipped undoing" in result.summary
    assert alice.stage("Enquiry").probability_bp == 4000
    assert_journal_exact(engine)


def test_probability_undo_goes_ahead_when_nobody_changed_it(team):
    engine, alice, bob, gamma = team
    alice.set_probability("Enquiry", "30")
    bob.set_probability("Quote sent", "40")
    alice.undo()
    assert alice.stage("Enquiry").probability_bp == 1000


def test_undo_of_an_add_is_refused_once_a_colleague_worked_on_it(engine):
    alice, bob = Store(engine, who="alice"), Store(engine, who="bob")
    pid = alice.add("Epsilon", "100").prospect.id
    bob.edit(pid, notes="called them")
    with pytest.raises(UndoBlocked, match="bob changed notes"):
        alice.undo()
    assert not alice.get(pid).deleted


def test_undo_of_an_add_is_refused_once_a_colleague_logged_a_contact_on_it(engine):
    """A contact point another user logged counts: undoing the add took their call with it."""
    alice, bob = Store(engine, who="alice"), Store(engine, who="bob")
    pid = alice.add("Zeta", "100").prospect.id
    bob.log_activity(pid, "call", "agreed a date")
    with pytest.raises(UndoBlocked, match="bob") as refused:
        alice.undo()
    assert "someone changed it since" not in str(refused.value)
    assert not alice.get(pid).deleted


def test_the_cli_skips_with_an_option(team, db_url, monkeypatch):
    engine, alice, bob, gamma = team
    monkeypatch.setenv("EVPIPE_USER", "alice")
    alice.edit(gamma, value="1000")
    alice.edit(gamma, notes="mine")
    bob.edit(gamma, notes="bob's")
    runner = CliRunner()
    refused = runner.invoke(cli, ["--db", db_url, "undo"])
    assert refused.exit_code == 1
    assert "bob changed notes" in refused.output and "--skip" in refused.output
    assert "Traceback" not in refused.output
    skipped = runner.invoke(cli, ["--db", db_url, "undo", "--skip"])
    assert skipped.exit_code == 0, skipped.output
    p = alice.get(gamma)
    assert (p.value_cents, p.notes) == (50_000, "bob's")


async def test_u_in_the_app_names_the_later_change_and_shift_u_skips_it(engine):
    tester, bob = Store(engine, who="tester"), Store(engine, who="bob")
    first = tester.add("Alpha", "100").prospect.id
    tester.edit(first, value="300")
    bob.edit(first, value="700")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("u")
        await settle(pilot, until=lambda a: any("bob changed value" in n for n in a.notices))
        said = next(n for n in app.notices if "bob changed value" in n)
        assert "300 -> 700" in said and "press U to skip" in said
        assert tester.get(first).value_cents == 70_000
        # skip it: the add before it cannot be undone either (bob worked on Alpha): it says so
        await pilot.press("U")
        await settle(pilot, until=lambda a: any("skipped undoing" in n for n in a.notices))
        assert tester.get(first).value_cents == 70_000 and not tester.get(first).deleted
        await settle(pilot, until=lambda a: a.pipeline.kpi_all == kpis(engine, Scope(period=a.pipeline.period)))
