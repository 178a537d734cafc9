"""The stage board (`8`): columns per open stage with their figures, cards by expected month,
arrow keys, the stage keys through the saver (the header at once, a failed save taken back), won
and lost as totals, sideways scrolling at 80x24, Enter to the prospect page, only the cards in
view looked at, and snapshots at 80x24 and 120x40."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest
from apphelpers import RecordingApp, save_lands_before_the_sums, settle, shows
from test_save_failures import impatient_engine
from textual import events
from textual.worker import WorkerCancelled

from evpipe.models import clock, history
from evpipe.models.board import BoardView, card_key
from evpipe.models.kpi import Scope, kpis
from evpipe.models.locations import sqlite_path
from evpipe.models.period import current_period
from evpipe.models.pipeline_view import Ladder, load_ladder, load_rows, ordered_ids
from evpipe.models.seed import load_demo
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp
from evpipe.tui.screens.board import BoardScreen


def board_of(engine) -> BoardView:
    stages, archived = load_ladder(engine)
    ladder = Ladder.of(stages, extra=archived)
    rows, order = load_rows(engine, "month", ladder)
    return BoardView(stages, ladder, rows, order, today=clock.today(), period=current_period(engine))


def names(view: BoardView, column: int) -> list[str]:
    return [view.rows[pid].name for pid in view.columns[column].ids]


# ---------------------------------------------------------------- the model


def test_cards_are_the_live_rows_in_the_order_given_whatever_ids_it_names():
    """The columns are built through each id's place in the rows (not a dict of every id): ids
    with gaps, rows deleted since, and ids the order names that the rows do not hold (read
    after them) give the cards a column per stage would have, in the order's order."""
    from evpipe.models.pipeline_view import Row, RowStore
    from evpipe.models.records import StageInfo

    stages = [StageInfo(1, "Suspect", 1, 1000, "open", 21), StageInfo(2, "Quote", 2, 5000, "open", 14)]
    rows = RowStore()
    for pid in (3, 4, 9, 40, 41, 1000):
        rows.put(Row(pid, f"P{pid}", "Co", 1 + pid % 2, 100, "2027-01", None, "sam", "2026-11-01", 0, 1))
    rows.remove(40)
    order = [1000, 2000, 41, 40, 9, 1, 4, 3, 0, -5]
    view = BoardView(stages, Ladder.of(stages), rows, order, today=clock.today())
    assert list(view.columns[0].ids) == [1000, 4]  # even ids: stage 1
    assert list(view.columns[1].ids) == [41, 9, 3]
    empty = BoardView(stages, Ladder.of(stages), RowStore(), [7, 8], today=clock.today())
    assert [list(c.ids) for c in empty.columns] == [[], []]


def test_columns_hold_the_open_stages_in_order_with_their_figures(worked_engine):
    view = board_of(worked_engine)
    assert [c.stage.name for c in view.columns] == ["Suspect", "Enquiry", "Quote sent", "Deposit paid"]
    by = {c.stage.name: c for c in view.columns}
    assert (by["Quote sent"].count, by["Quote sent"].tv_cents, by["Quote sent"].ev_micros) == (
        1,
        1_000_000,
        1_000_000 * 2500,
    )
    assert (by["Suspect"].count, by["Suspect"].tv_cents) == (1, 400_000)  # B; E is lost
    assert by["Enquiry"].count == 0
    # won and lost: totals, not columns
    assert (view.won.count, view.won.value_cents) == (1, 200_000)
    assert (view.lost.count, view.lost.value_cents) == (1, 500_000)
    # the columns' EV and the won total add up to the header's EV
    header = kpis(worked_engine, Scope(period=current_period(worked_engine)))
    assert sum(c.ev_micros for c in view.columns) + view.won.value_cents * 10_000 == header.ev_micros


def test_cards_are_ordered_by_expected_month_and_a_move_lands_in_its_place(store, engine):
    store.add("Late", "1000", "Enquiry", month="2027-06")
    store.add("Early", "1000", "Enquiry", month="2026-12")
    store.add("No month", "1000", "Enquiry")
    store.add("middle", "1000", "Enquiry", month="2027-02")
    store.add("Mover", "5000", "Suspect", month="2027-01")
    view = board_of(engine)
    enquiry = view.column_index(store.stage("Enquiry").id)
    assert names(view, enquiry) == ["Early", "middle", "Late", "No month"]
    mover = next(view.rows[p] for p in view.columns[0].ids if view.rows[p].name == "Mover")
    at = view.put(mover._replace(stage_id=store.stage("Enquiry").id))
    assert at == (enquiry, 1)
    assert names(view, enquiry) == ["Early", "Mover", "middle", "Late", "No month"]
    assert names(view, 0) == []
    assert view.columns[0].count == 0 and view.columns[enquiry].count == 5
    assert view.columns[enquiry].tv_cents == 900_000
    # the same order as SQLite's, which the board is read in
    ids = [p for p in ordered_ids(engine, "month", view.ladder) if p in set(view.columns[enquiry].ids)]
    assert sorted(ids, key=lambda p: card_key(view.rows[p])) == ids


# ---------------------------------------------------------------- the screen


async def calm(pilot, until=None) -> None:
    """settle(), but a worker cancelled by a newer one of its group (the pipeline's contact
    look-ups, say, on a loaded machine) is not a failure: wait again."""
    for _ in range(20):
        try:
            await settle(pilot, until=until)
            return
        except WorkerCancelled:
            await pilot.pause(0.05)


async def open_board(app, pilot) -> BoardScreen:
    await calm(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
    await pilot.press("8")
    await calm(pilot, until=lambda a: isinstance(a.screen, BoardScreen) and a.screen.view is not None)
    screen = app.screen
    assert isinstance(screen, BoardScreen)
    return screen


async def test_board_shows_stage_figures_and_cards_and_the_number_key_opens_it(worked_engine):
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_board(app, pilot)
        text = await shows(app, pilot, "Quote sent      25%", "Won 1 · 2,000", "Lost 1 · 5,000")
        assert "8 Board" in text.splitlines()[0]
        assert "TV 10,000" in text and "EV 2,500" in text  # the Quote sent column: A
        assert "Deposit paid    80%" in text
        for card in ("A", "B", "C"):
            assert f"  {card} " in text
        assert "(none)" in text  # Enquiry is empty
        # the header: the KPIs of the KPI period, as everywhere
        assert "TV 22,000" in text and "EV 9,500" in text and "EV/TV 43.18%" in text


async def test_arrows_move_and_stage_keys_move_the_card_and_the_header_at_once(worked_engine):
    store = Store(worked_engine, who="tester")
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        board = screen.board
        assert board.current_row.name == "B"  # Suspect, first card
        await pilot.press("right", "right")
        assert board.current_row.name == "A"
        await pilot.press("right")
        assert board.current_row.name == "C"
        await pilot.press("left")
        assert board.current_row.name == "A"
        ev_before = screen.kpi.ev_micros
        await pilot.press("greater_than_sign")
        # at once, before the save: the card is in Deposit paid with the cursor on it, the header moved
        assert screen.kpi.ev_micros - ev_before == 1_000_000 * (8000 - 2500)
        assert board.current_row.name == "A" and board.column == 3
        assert screen.header.texts["kpi-ev"].startswith("EV 15,000")
        assert names(screen.view, 3) == ["A", "C"] and names(screen.view, 2) == []
        await settle(pilot, rounds=8, until=lambda a: store.get("A").stage_name == "Deposit paid")
        assert store.get("A").stage_name == "Deposit paid"
        assert screen.kpi == kpis(worked_engine, Scope(period=current_period(worked_engine)))
        # < moves it back; w wins it: the card leaves for the won total
        await pilot.press("less_than_sign")
        await settle(pilot, rounds=8, until=lambda a: store.get("A").stage_name == "Quote sent")
        assert board.column == 2 and board.current_row.name == "A"
        await pilot.press("w")
        assert names(screen.view, 2) == [] and screen.view.won.count == 2
        await settle(pilot, rounds=8, until=lambda a: store.get("A").stage_kind == "won")
        text = await shows(app, pilot, "Won 2 · 12,000")
        assert store.get("A").stage_kind == "won"
        # u undoes it: the card comes back
        await pilot.press("u")
        await settle(pilot, rounds=8, until=lambda a: store.get("A").stage_name == "Quote sent")
        await settle(pilot)
        assert names(screen.view, 2) == ["A"] and screen.view.won.count == 1
        assert screen.kpi == kpis(worked_engine, Scope(period=current_period(worked_engine)))
        # l asks why, then loses it
        await pilot.press("right", "left")
        assert board.current_row.name == "A"
        await pilot.press("l")
        await settle(pilot)
        await pilot.press(*"no budget", "enter")
        await settle(pilot, rounds=8, until=lambda a: store.get("A").stage_kind == "lost")
        text = await shows(app, pilot, "Lost 2 · 15,000")
        assert "Lost 2 · 15,000" in text


async def test_a_burst_that_wins_a_card_does_not_move_the_card_that_takes_its_place(worked_engine):
    """`>` held down on a card in the last open stage: the first wins it and the card leaves the
    board; the cursor stays on no card, so the rest of the burst moves nothing (they won the next
    card in the column, and the next, each a deal nobody meant to close). An arrow puts the cursor
    back on a card; undo brings the card back under the cursor."""
    store = Store(worked_engine, who="tester")
    store.add("F", "3000", "Deposit paid")  # after C in the column (no month, by name)
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        board = screen.board
        await pilot.press("right", "right", "right")
        assert board.current_row.name == "C" and names(screen.view, 3) == ["C", "F"]
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign")
        await settle(pilot, rounds=8, until=lambda a: store.get("C").stage_kind == "won")
        await settle(pilot)
        assert store.get("C").stage_kind == "won"
        assert store.get("F").stage_name == "Deposit paid"  # untouched
        assert names(screen.view, 3) == ["F"] and board.current_row is None
        assert any("No prospect here" in n for n in app.notices), app.notices
        await pilot.press("u")
        await settle(pilot, rounds=8, until=lambda a: store.get("C").stage_name == "Deposit paid")
        await settle(pilot)
        assert board.current_row is not None and board.current_row.name == "C"  # back under the cursor
        await pilot.press("w")
        await settle(pilot, rounds=8, until=lambda a: store.get("C").stage_kind == "won")
        await settle(pilot)
        await pilot.press("down")  # the card that took its place
        assert board.current_row.name == "F"


async def test_a_failed_save_puts_the_card_and_header_back_and_says_why(engine):
    store = Store(engine, who="tester")
    store.add("Harbour Events", "6000", "Quote sent", month="2026-12")
    url = engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="tester")
    app._engine = impatient_engine(url)
    before = kpis(engine, Scope(period=current_period(engine)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        await pilot.press("right", "right")
        assert screen.board.current_row.name == "Harbour Events"
        holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("greater_than_sign")
            assert screen.kpi != before and screen.board.column == 3  # shown at once
            await settle(pilot, rounds=8, until=lambda a: any("Not saved" in n.message for n in a._notifications))
            await settle(pilot, rounds=8, until=lambda a: screen.kpi == before)
            assert any("Not saved" in n.message and "press R" in n.message for n in app._notifications)
            assert screen.kpi == before
            assert names(screen.view, 2) == ["Harbour Events"] and names(screen.view, 3) == []
            assert store.get("Harbour Events").stage_name == "Quote sent"
        finally:
            holder.rollback()
            holder.close()
    app._engine.dispose()


async def test_a_move_saved_while_the_header_sums_again_stays_in_it(worked_engine, monkeypatch):
    """`>` wins C, `left` `>` moves A on, in one burst: the win's sums are read before A's move is
    saved and land after its save has. They replaced the header without A's move (the pipeline's
    race, tests/test_kpi_period.py); a read of the board's own landed with no journal id at all."""
    from evpipe.tui.screens import board as board_screen

    store = Store(worked_engine, who="tester")
    screens: list = []
    read = save_lands_before_the_sums(monkeypatch, board_screen, store.get("A").id, screens)
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        await pilot.press("right", "right", "right")
        assert screen.board.current_row.name == "C"
        screens.append(screen)
        for key, char in (("greater_than_sign", ">"), ("left", None), ("greater_than_sign", ">")):
            app.post_message(events.Key(key, char))  # (one write: all queued before any is read)
        await calm(pilot, until=lambda a: store.get("A").stage_name == "Deposit paid" and not screen._pending)
        await calm(pilot)
        assert read.is_set()
        assert store.get("C").stage_kind == "won"
        assert screen.kpi == kpis(worked_engine, Scope(period=current_period(worked_engine)))


async def test_enter_opens_the_prospect_page(worked_engine):
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_board(app, pilot)
        await pilot.press("right", "right", "enter")
        await settle(pilot)
        from evpipe.tui.screens.prospect_page import ProspectPage

        assert isinstance(app.screen, ProspectPage)
        assert "A" in await shows(app, pilot, "Quote sent")


def six_stages(engine) -> Store:
    store = Store(engine, who="tester")
    store.add_stage("Proposal", "60", after="Date held")
    store.add_stage("Contract", "70", after="Proposal")
    for i, stage in enumerate(
        ("Suspect", "Enquiry", "Quote sent", "Date held", "Proposal", "Contract", "Deposit paid")
    ):
        store.add(f"deal {i + 1}", str(1000 * (i + 1)), stage, month="2027-01")
    return store


async def test_seven_open_stages_at_80x24_scroll_sideways_keeping_the_cursor_in_view(engine):
    six_stages(engine)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        text = await shows(app, pilot, "Suspect", "2 more ▶")
        assert "Contract" not in text
        for _ in range(6):
            await pilot.press("right")
        text = await shows(app, pilot, "Deposit paid", "◀ 2 more")
        assert screen.board.current_row.name == "deal 7"  # on Deposit paid
        assert "deal 1" not in text and "deal 2" not in text and "deal 6" in text and "deal 7" in text
        assert list(screen.board.visible_columns) == [2, 3, 4, 5, 6]
        for _ in range(6):
            await pilot.press("left")
        text = await shows(app, pilot, "deal 1", "2 more ▶")
        assert "◀" not in text


async def test_only_the_cards_in_view_are_looked_at(engine, monkeypatch):
    """At any pipeline size a key paints the same few cards: the board reads a window of each
    column, never every card, and mounts no widget per card."""
    store = Store(engine, who="tester")
    for i in range(600):
        store.add(f"P{i:04d}", "1000", "Enquiry" if i % 3 else "Suspect", month=f"2027-{1 + i % 12:02d}")
    app = RecordingApp(engine)
    looked: list[tuple[int, int]] = []
    card = BoardView.card

    def counting(self, column, index):
        looked.append((column, index))
        return card(self, column, index)

    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        assert not list(screen.board.children)
        monkeypatch.setattr(BoardView, "card", counting)
        await pilot.press("right")
        for _ in range(30):
            await pilot.press("down")
        await settle(pilot)
        assert screen.board.index[1] == 30
        per_key = len(looked) / 31
        # at most the cards in view (7 a column x 5 columns, 2 lines each) when the column scrolls,
        # and a handful when it does not: never the column's 400 cards
        assert per_key <= 7 * 5 * 2, per_key
        assert max(i for _, i in looked) < 40


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_board_snapshot(snap_compare, engine, db_url, size):
    load_demo(engine)
    Store(engine, who="tester").add(
        "[@click=app.quit]hi[/]", "4000", "Enquiry", month="2026-12", at=datetime(2026, 11, 20, 9, 0)
    )
    history.backfill(engine)
    history.record_snapshot(engine)

    async def run_before(pilot) -> None:
        await open_board(pilot.app, pilot)
        await pilot.press("right", "down")
        await settle(pilot, last_pause=0)

    assert snap_compare(EvpipeApp(db_url, who="tester"), terminal_size=size, run_before=run_before)


def test_the_board_is_screen_8():
    from evpipe.tui.screens.registry import available

    spec = next(s for s in available() if s.key == "8")
    assert (spec.name, spec.factory) == ("board", "evpipe.tui.screens.board:BoardScreen")
    assert "app.screen_8" in {b.id for b in EvpipeApp.BINDINGS}


async def test_another_sessions_change_moves_the_card_and_the_header(worked_engine):
    """priya won a prospect while sam looked at the board: the notice came, but the card stayed on
    its stage and the header's EV stayed behind, also after leaving the board and coming back."""
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        quote = next(i for i, c in enumerate(screen.view.columns) if c.stage.name == "Quote sent")
        pid = screen.view.columns[quote].ids[0]
        won_before = screen.view.won.count
        Store(worked_engine, who="priya").move(pid, "won")
        await calm(pilot, until=lambda a: screen.view is not None and screen.view.won.count == won_before + 1)
        assert pid not in screen.view.columns[quote].ids
        want = kpis(worked_engine, Scope(period=current_period(worked_engine)))
        await calm(pilot, until=lambda a: screen.kpi == want)
        # and when it is not showing, it reads everything again once shown
        await pilot.press("1")
        await calm(pilot)
        Store(worked_engine, who="priya").move(pid, "reopen")
        await calm(
            pilot,
            until=lambda a: (
                a.pipeline is not None and any(n for n in a.notices if "reopen" in n.lower() or "Quote sent" in n)
            ),
        )
        await pilot.press("8")
        await calm(
            pilot,
            until=lambda a: a.screen is screen and screen.view is not None and pid in screen.view.columns[quote].ids,
        )


async def test_at_40_columns_the_status_still_names_the_columns_out_of_view(engine):
    """At 40x15 two columns fit; the status line (won, lost, the KPI period, then "N more ▶") was
    cut at the width inside "(Jan 2026→)", so nothing said that three more stages were to the
    right. The columns out of view come first; the totals are what a narrow line drops, whole."""
    six_stages(engine)
    app = RecordingApp(engine)
    async with app.run_test(size=(40, 15)) as pilot:
        screen = await open_board(app, pilot)
        await calm(pilot)
        status = screen.query_one("#board-status")
        shown = "".join(seg.text for seg in status.render_line(0)).rstrip()
        after = len(screen.view.columns) - screen.board.visible_columns.stop
        assert after > 0
        assert shown.startswith(f"{after} more ▶"), shown
        assert "Won" in shown and not shown.endswith("…")


async def test_a_burst_that_meets_the_same_refusal_says_it_once(worked_engine):
    """The keys of a burst left over after its card was won each met "No prospect here": each
    stacked a copy of it over the screen. A notice already on screen is not shown again."""
    store = Store(worked_engine, who="tester")
    store.add("F", "3000", "Deposit paid")
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_board(app, pilot)
        board = screen.board
        await pilot.press("right", "right", "right")
        assert board.current_row.name == "C"
        await pilot.press(*["greater_than_sign"] * 5)
        await settle(pilot, rounds=8, until=lambda a: store.get("C").stage_kind == "won")
        await settle(pilot)
        assert app.notices.count("No prospect here: move onto a card") == 4  # each key said it
        shown = [n.message for n in app._notifications]
        assert shown.count("No prospect here: move onto a card") == 1, shown
        # keys that come in one read are each handled before any of their notices is on screen
        for _ in range(3):
            app.notify("No prospect here: move onto a card", severity="warning", markup=False)
        await settle(pilot)
        shown = [n.message for n in app._notifications]
        assert shown.count("No prospect here: move onto a card") == 1, shown
