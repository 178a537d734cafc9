"""The stages screen: every ladder edit by key, checked in the database and on screen."""

from __future__ import annotations

import pytest
from apphelpers import RecordingApp, press, settle, shows
from textual.widgets import DataTable, Input

from evpipe.models.errors import DomainError
from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.tui.dialogs import ChoiceDialog, ConfirmDialog, TextPrompt
from evpipe.tui.screens.stages import StagesScreen, check_stale_days


class Host(RecordingApp):
    """The real app; the stages screen is reached with its number key, 7."""


async def open_stages(app, pilot) -> None:
    await settle(app, pilot)
    await press(app, pilot, "7")
    assert isinstance(app.screen, StagesScreen)


async def answer(app, pilot, text: str) -> None:
    assert isinstance(app.screen, TextPrompt)
    app.screen.query_one("#text", Input).value = text
    await press(app, pilot, "enter")


def names(store: Store) -> list[str]:
    return [s.name for s in store.ladder()]


async def goto(app, pilot, stage_name: str) -> None:
    table = app.screen.query_one("#ladder", DataTable)
    row = [r.stage.name for r in app.screen.rows].index(stage_name)
    table.move_cursor(row=row)
    await pilot.pause()


async def test_ladder_lists_stages_with_prospects_value_and_ev(worked_engine):
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        table = app.screen.query_one("#ladder", DataTable)
        assert table.row_count == 6
        row = [str(c) for c in table.get_row_at(2)]
        assert row == ["3", "Quote sent", "open", "25%", "14d", "1", "10,000", "2,500"]
        lost = [str(c) for c in table.get_row_at(5)]
        assert lost[1:3] == ["Lost", "lost"] and lost[5:] == ["1", "5,000", "0"]
        assert "The ladder rises" in await shows(app, pilot, "The ladder rises")


async def test_probability_change_shows_ev_moved_before_confirming(worked_engine):
    store = Store(worked_engine, who="tester")
    ev0 = kpis(worked_engine).ev_micros
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Quote sent")
        await press(app, pilot, "p")
        await answer(app, pilot, "25")  # the same: refused inline
        assert "already 25%" in str(app.screen.query_one("#error").render())
        await answer(app, pilot, "40")
        assert isinstance(app.screen, ConfirmDialog)
        question = str(app.screen.query_one("#question").render())
        assert "Set Quote sent from 25% to 40%?" in question
        assert "1 prospect on it, worth 10,000: EV +1,500." in question
        await press(app, pilot, "n")  # declined: nothing changes
        assert store.stage("Quote sent").probability_bp == 2500
        assert kpis(worked_engine).ev_micros == ev0
        await press(app, pilot, "p")
        await answer(app, pilot, "40")
        await press(app, pilot, "y")
        assert store.stage("Quote sent").probability_bp == 4000
        assert kpis(worked_engine).ev_micros == ev0 + 1000000 * 1500
        text = await shows(app, pilot, "40%", "4,000")
        assert "40%" in text and "4,000" in text
        assert app.changes[-1].d_ev_micros == 1000000 * 1500


async def test_j_and_k_move_along_the_ladder_as_in_every_list(worked_engine):
    """`jjp` asks the third stage's probability, as `jj>` moves the third prospect on a list: the
    ladder was the one list where j did nothing and k asked for the KPI period, so that `jjp`
    asked Suspect's, and a `y` typed ahead would have set it. The KPI period is `P` here."""
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await press(app, pilot, "j", "j", "p")
        assert isinstance(app.screen, TextPrompt)
        assert "Quote sent" in app.screen.prompt_title
        await press(app, pilot, "escape", "k")
        assert app.screen.query_one("#ladder", DataTable).cursor_row == 1
        await press(app, pilot, "P")
        assert isinstance(app.screen, TextPrompt)
        assert "KPI period" in app.screen.prompt_title


async def test_a_probability_a_colleague_set_while_the_question_was_open_is_not_overwritten(worked_engine):
    """The question said "from 25% to 40%, EV +1,500"; priya set 60% meanwhile, and yes wrote 40%
    over it (EV -2,000, not the +1,500 agreed to). Refused now, naming her; hers stays."""
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Quote sent")
        await press(app, pilot, "p")
        await answer(app, pilot, "40")
        assert isinstance(app.screen, ConfirmDialog)
        Store(worked_engine, who="priya").set_probability("Quote sent", "60")
        ev = kpis(worked_engine).ev_micros
        await press(app, pilot, "y")
        await settle(app, pilot)
        assert Store(worked_engine).stage("Quote sent").probability_bp == 6000
        assert kpis(worked_engine).ev_micros == ev
        assert any("priya set it to 60%" in n and "after you read 25%" in n for n in app.notices), app.notices


def test_set_probability_against_what_was_read(worked_engine):
    """The store's rule behind it: an `expected_bp` other than the stage's is refused; the same
    one is written."""
    from evpipe.models.errors import Conflict

    store = Store(worked_engine, who="tester")
    with pytest.raises(Conflict, match="after you read 30%"):
        store.set_probability("Quote sent", "40", expected_bp=3000)
    assert store.stage("Quote sent").probability_bp == 2500
    store.set_probability("Quote sent", "40", expected_bp=2500)
    assert store.stage("Quote sent").probability_bp == 4000


async def test_non_rising_ladder_is_warned_visibly(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Enquiry")
        await press(app, pilot, "p")
        await answer(app, pilot, "30")
        question = str(app.screen.query_one("#question").render())
        assert "No prospects are on it now" in question
        await press(app, pilot, "enter")
        assert store.stage("Enquiry").probability_bp == 3000
        text = await shows(app, pilot, "Quote sent (25%) is not above Enquiry (30%)")
        assert "Quote sent (25%) is not above Enquiry (30%)" in text
        assert any("is not above Enquiry" in n for n in app.notices)
        assert app.screen.query_one("#ladder-warnings").has_class("-warn")
        await press(app, pilot, "u")
        assert store.stage("Enquiry").probability_bp == 1000
        assert "The ladder rises" in await shows(app, pilot, "The ladder rises")


async def test_lost_stage_probability_is_refused(worked_engine):
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Lost")
        await press(app, pilot, "p")
        assert isinstance(app.screen, StagesScreen)
        assert any("always 0%" in n for n in app.notices)


async def test_rename_with_a_hostile_name(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Suspect")
        await press(app, pilot, "r")
        await answer(app, pilot, "enquiry")  # clashes (case-insensitively): refused inline
        assert "is on the ladder already" in str(app.screen.query_one("#error").render())
        await answer(app, pilot, "[@click=app.quit]hi[/]")
        assert names(store)[0] == "[@click=app.quit]hi[/]"
        assert "[@click=app.quit]hi[/]" in await shows(app, pilot, "[@click=app.quit]hi[/]")
        assert app.is_running


async def test_reorder_with_keys(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Quote sent")
        await press(app, pilot, "K")
        assert names(store)[:4] == ["Suspect", "Quote sent", "Enquiry", "Deposit paid"]
        assert "Quote sent now comes before Enquiry" in app.notices
        # the cursor stays on the moved stage
        assert app.screen.rows[app.screen.query_one("#ladder", DataTable).cursor_row].stage.name == "Quote sent"
        await press(app, pilot, "shift+down")
        assert names(store)[:4] == ["Suspect", "Enquiry", "Quote sent", "Deposit paid"]
        await press(app, pilot, "J")
        assert names(store)[:4] == ["Suspect", "Enquiry", "Deposit paid", "Quote sent"]
        assert any("Quote sent (25%) is not above Deposit paid (80%)" in n for n in app.notices)
        await press(app, pilot, "J")  # the last open rung: refused, nothing written
        assert any("last open stage already" in n for n in app.notices)
        await goto(app, pilot, "Won")
        await press(app, pilot, "K")
        assert any("only open stages move" in n for n in app.notices)
        assert names(store)[-2:] == ["Won", "Lost"]


async def test_add_a_stage_after_the_cursor(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Quote sent")
        await press(app, pilot, "a")
        await answer(app, pilot, "Date held")
        await answer(app, pilot, "abc")  # not a percentage: refused inline
        assert "is not a percentage" in str(app.screen.query_one("#error").render())
        await answer(app, pilot, "50")
        assert names(store)[:5] == ["Suspect", "Enquiry", "Quote sent", "Date held", "Deposit paid"]
        assert store.stage("Date held").probability_bp == 5000
        table = app.screen.query_one("#ladder", DataTable)
        assert app.screen.rows[table.cursor_row].stage.name == "Date held"  # the cursor is on the new stage
        assert "Date held" in await shows(app, pilot, "Date held")


async def test_remove_a_stage_asks_where_its_prospects_go(worked_engine):
    store = Store(worked_engine, who="tester")
    ev0 = kpis(worked_engine).ev_micros
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Quote sent")
        await press(app, pilot, "d")
        assert isinstance(app.screen, ChoiceDialog)
        await press(app, pilot, "escape")  # cancelled: nothing changes
        assert "Quote sent" in names(store)
        await press(app, pilot, "d")
        await press(app, pilot, "down", "enter")  # Suspect, Enquiry, Deposit paid: choose Enquiry
        assert isinstance(app.screen, ConfirmDialog)
        question = str(app.screen.query_one("#question").render())
        assert "move its 1 prospects to Enquiry (10%)? EV -1,500" in question
        await press(app, pilot, "y")
        assert "Quote sent" not in names(store)
        assert store.get("A").stage_name == "Enquiry"
        assert kpis(worked_engine).ev_micros == ev0 - 1000000 * 1500
        await press(app, pilot, "u")
        assert "Quote sent" in names(store) and store.get("A").stage_name == "Quote sent"


async def test_remove_an_empty_stage_and_refuse_won(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Enquiry")
        await press(app, pilot, "delete")
        assert isinstance(app.screen, ConfirmDialog)
        assert "No prospects are on it" in str(app.screen.query_one("#question").render())
        await press(app, pilot, "enter")
        assert "Enquiry" not in names(store)
        await goto(app, pilot, "Won")
        await press(app, pilot, "d")
        assert isinstance(app.screen, StagesScreen)
        assert any("won and lost stages cannot be removed" in n for n in app.notices)
        assert "Won" in names(store)


async def test_set_stale_days(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Suspect")
        await press(app, pilot, "s")
        assert app.screen.query_one("#text", Input).value == "14"
        await answer(app, pilot, "two weeks")
        assert "not a number of days" in str(app.screen.query_one("#error").render())
        await answer(app, pilot, "30")
        assert store.stage("Suspect").stale_days == 30
        assert "30d" in await shows(app, pilot, "30d")


def test_stale_days_parsing():
    assert check_stale_days(" 21 ") == 21
    assert check_stale_days("7d") == 7
    assert check_stale_days("0") == 0
    for bad in ("-1", "3651", "x", ""):
        with pytest.raises(DomainError):
            check_stale_days(bad)


def test_every_binding_has_an_id_a_description_and_an_action():
    for binding in StagesScreen.BINDINGS:
        assert binding.id and binding.id.startswith("stages.") and binding.description
        assert callable(getattr(StagesScreen, "action_" + binding.action.partition("(")[0], None)), binding.action


async def test_command_palette_lists_and_runs_the_screens_actions(worked_engine):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        await goto(app, pilot, "Suspect")
        await press(app, pilot, "ctrl+p")
        for ch in "stale days":
            await pilot.press(ch if ch != " " else "space")
        await settle(app, pilot)
        await pilot.pause(0.3)
        await press(app, pilot, "enter")
        assert isinstance(app.screen, TextPrompt)  # the palette ran stages.stale_days
        await answer(app, pilot, "9")
        assert store.stage("Suspect").stale_days == 9


async def test_a_long_stage_name_leaves_the_value_and_ev_columns_on_an_80_column_screen(worked_engine):
    """A 70-character stage name took its 40 cells and pushed Value and EV off the right edge."""
    Store(worked_engine).add_stage("Contract signed by both parties and the deposit invoice has been sent", "85")
    app = Host(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_stages(app, pilot)
        table = app.screen.query_one("#ladder", DataTable)
        assert sum(c.width + 2 for c in table.columns.values()) <= 80 - 2 - 4
        text = await shows(app, pilot, "Contract signed")
        header = next(line for line in text.splitlines() if "Stage" in line and "Prob" in line)
        assert header.rstrip().endswith("EV"), header
        assert "Contract signed" in text and "…" in text
