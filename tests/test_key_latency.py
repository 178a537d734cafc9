"""What keeps a key's frame quick at 100,000 prospects: a filter search works in slices with a
pause between them (the UI thread gets the interpreter lock there) and stops when a newer text is
typed, leaving the kept matches as they were; the lines of its hits are picked in the worker and
taken on screen only when they still fit what is shown; the filter box and the table change size
without laying out the whole screen; a stage key's save starts once its frame is painted, in the
order the keys came."""

from __future__ import annotations

from array import array
from itertools import compress

import pytest
from apphelpers import RecordingApp, settle
from test_filter_speed import LADDER, TODAY, fresh, make_store, parse
from textual.app import App, ComposeResult

from evpipe.models.filters import SLICE, Hits
from evpipe.models.pipeline_view import PICK_SLICE, PipelineView, Row, pick
from evpipe.models.store import Store
from evpipe.tui.widgets import LineInput, TextLine

MANY = 3 * SLICE + 17  # rows enough for a few slices


def many_rows():
    names = ["harbour party", "kauri wedding", "tui gala", "kauri cruise"]
    return make_store([(1 + i % 3, None, "sam", f"{names[i % 4]} {i}", "") for i in range(MANY)])


class Stop(Exception):
    pass


def test_a_search_pauses_between_slices_and_finds_the_same():
    store = many_rows()
    calls = []
    hits = Hits()
    found = hits.select(parse("harbour"), store, LADDER, TODAY, pause=lambda: calls.append(1))
    assert found == fresh(store, "harbour")
    assert len(calls) >= MANY // SLICE  # at least one pause a slice of the first pass
    # two words, narrowed: the second word is tested on the last matches only
    assert hits.select(parse("harbour party"), store, LADDER, TODAY, found, lambda: calls.append(1)) == fresh(
        store, "harbour party"
    )
    assert hits.narrowed


def test_a_search_stopped_by_its_pause_leaves_the_kept_matches_as_they_were():
    store = many_rows()
    hits = Hits()
    first = hits.select(parse("harbour"), store, LADDER, TODAY)
    searches = hits.searches

    def stop() -> None:
        raise Stop

    with pytest.raises(Stop):  # another word: every row is searched, and the first pause stops it
        hits.select(parse("kauri"), store, LADDER, TODAY, first, stop)
    assert hits.searches == searches  # a stopped search is not counted as one that ran
    # the next text narrows from the last search that ran to the end, and finds what a fresh one does
    assert hits.select(parse("harbour party"), store, LADDER, TODAY, first) == fresh(store, "harbour party")
    assert hits.narrowed


def test_pick_keeps_the_order_of_the_lines():
    source = array("q", [9, 3, 7, 1, 8, 2] * (PICK_SLICE // 3))
    matches = {3, 8, 2}
    pauses = []
    picked = pick(source, matches, pause=lambda: pauses.append(1))
    assert picked == array("q", compress(source, map(matches.__contains__, source)))
    assert pauses  # more lines than a slice: it paused between slices
    whole = pick(source, set(source), whole=True)
    assert whole == source and whole is not source


def test_hits_picked_in_a_worker_are_taken_only_while_they_fit_the_lines_shown():
    store = make_store([(1, None, "sam", f"harbour {i}", "") for i in range(30)] + [(1, None, "sam", "kauri", "")] * 70)
    view = PipelineView(LADDER, today=TODAY)
    view.load(store)
    # a first search, every row: picked from the lines before any filter
    shown, base = view.filter_sources(view.closed)
    assert shown is view.lines and base is not None
    ids = fresh(store, "harbour")
    lines = pick(base, ids)
    assert view.take_hits(ids, lines, False, shown, base)
    expected = PipelineView(LADDER, today=TODAY)
    expected.load(store)
    expected.matches = set(ids)
    expected.rebuild()
    assert list(view.lines) == list(expected.lines)
    # a narrowing: picked from the lines shown, as `narrow` would
    shown, base = view.filter_sources(view.closed)
    narrower = fresh(store, "harbour 2")
    lines = pick(shown, narrower)
    expected.narrow(narrower)
    assert view.take_hits(narrower, lines, True, shown, base)
    assert list(view.lines) == list(expected.lines) == sorted(expected.lines, key=list(view.lines).index)
    # the worker reads the lines shown themselves (no copy on each keystroke): a line removed
    # meanwhile leaves what it reads as it was, and its hits are not taken
    shown, base = view.filter_sources(view.closed)
    held = list(shown)
    view.remove(view.lines[1])
    assert list(shown) == held and len(view.lines) == len(held) - 1
    assert not view.take_hits(narrower, pick(shown, narrower), True, shown, base)
    view.load(store)
    view.matches = set(narrower)
    view.rebuild()
    # the lines changed since they were taken (a toggle rebuilt them): not taken, nothing changed
    shown, base = view.filter_sources(view.closed)
    view.closed = True
    view.rebuild()
    before = list(view.lines)
    assert not view.take_hits(set(), array("q"), True, shown, base)
    assert not view.take_hits(set(), array("q"), False, shown, base)
    assert list(view.lines) == before
    # grouped by month, the lines hold headings: nothing to pick from
    view.grouped = True
    view.rebuild()
    assert view.filter_sources(view.closed) == (None, None)


@pytest.mark.parametrize("owner", [None, "sam"])
def test_the_lines_before_any_filter_are_kept_across_changes(owner):
    """A filter typed after a few stage keys starts from the lines before any filter kept from
    before them (remade, they cost half a second at a million prospects on the UI thread): after
    each change they are what they would be made again, and the same object while no row came
    in or left (a move between open stages, a new value, another owner's change)."""
    data = [(1 + i % 3, "2026-12", "sam" if i % 2 else "mere", f"harbour {i}", "") for i in range(60)]
    store = make_store(data)
    view = PipelineView(LADDER, today=TODAY)
    view.owner = owner
    view.load(store)

    def made_again() -> list[int]:
        kept = view._base
        view._base = None
        try:
            return list(view._unfiltered(view._order))
        finally:
            view._base = kept

    def changed(pid: int, **fields) -> Row:
        row = view.rows.get(pid)
        assert row is not None
        return row._replace(**fields)

    _, base = view.filter_sources(view.closed)
    assert base is not None and list(base) == made_again()
    steps = [
        ("move", lambda: view.put(changed(2, stage_id=3)), True),  # open to open
        ("value", lambda: view.update_in_place(changed(4, value_cents=5)), True),
        ("won", lambda: view.put(changed(6, stage_id=4)), False),  # leaves: closed ones are hidden
        ("owner", lambda: view.put(changed(8, owner="mere" if owner else "ann")), owner is None),
        ("reopen", lambda: view.put(changed(6, stage_id=1)), False),  # comes back: made again
        ("delete", lambda: view.remove(10), False),
        ("new", lambda: view.put(Row(999, "harbour new", "", 1, 1, None, None, "sam", "2026-11-01", 0, 1)), False),
    ]
    for name, step, same in steps:
        before = view.filter_sources(view.closed)[1]
        step()
        after = view.filter_sources(view.closed)[1]
        assert after is not None and list(after) == made_again(), name
        assert (after is before) == same, name


async def test_typing_in_a_line_input_lays_nothing_out():
    class One(App):
        def compose(self) -> ComposeResult:
            yield LineInput(id="box")

    app = One()
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        box = app.query_one(LineInput)
        box.focus()
        await pilot.pause()
        changed = []
        box.post_message = lambda m, post=box.post_message: changed.append(m) or post(m)  # type: ignore[method-assign]
        box.insert_text_at_cursor("harbour")
        assert not app.screen._layout_required and not box._layout_required
        assert box.virtual_size.width == box.content_width  # its own scrolling still knows the width
        await pilot.pause()
        assert box.value == "harbour"
        assert any(type(m).__name__ == "Changed" for m in changed)  # Input's own watcher still ran


@pytest.mark.both_databases
async def test_filter_results_and_a_stage_key_need_no_layout_and_save_in_key_order(engine):
    s = Store(engine, who="tester")
    for i in range(30):
        s.add(f"Harbour party {i}" if i % 3 else f"Kauri wedding {i}", "1000", "Enquiry", month="2027-03")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        table = screen.table
        await pilot.press("slash", "h", "a", "r")
        await settle(pilot, until=lambda a: a.pipeline.filter_text == "har")
        assert len(screen.view.lines) == 20
        # fewer lines, taken without a layout of the screen; the scrollbar knows the new height
        view = screen.view
        view.matches = {pid for pid in view.matches or set() if pid % 2}
        view.rebuild()
        table.reset(table.current_id)
        assert not screen._layout_required and not table._layout_required
        assert table.virtual_size.height == len(view.lines)
        assert table.vertical_scrollbar.window_virtual_size == len(view.lines)
        # a text narrowing a few last matches is searched as the key is handled: no worker, and the
        # rows and the count are there once the key is
        await pilot.press(*"bour party 1")
        await settle(pilot, until=lambda a: a.pipeline.filter_text == "harbour party 1")
        assert screen._hits.ids is not None and len(screen._hits.ids) <= len(screen.view.rows) // 2
        workers = []
        screen.search_filter = lambda *a, **k: workers.append(a)  # type: ignore[method-assign]
        await pilot.press("0")
        assert not workers
        assert screen.filter_text == "harbour party 10"
        assert [screen.view.rows[pid].name for pid in screen.view.lines] == ["Harbour party 10"]
        assert "1 shown" in screen.query_one("#status").content.plain
        del screen.search_filter
        await pilot.press("escape")
        await settle(pilot)
        # two stage keys and an undo, at once: saved in that order (the first waits for its frame)
        first = table.current_row
        assert isinstance(first, Row)
        await pilot.press("greater_than_sign", "greater_than_sign", "u")
        await settle(pilot, until=lambda a: not a.pipeline._pending and not a.saver._running)
        await settle(pilot)
        now = Store(engine, who="tester").get(first.id)
        assert now.stage_name == "Quote sent"  # Enquiry -> Quote sent -> Date held, then one undone


@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("owner", [None, "sam"])
@pytest.mark.parametrize("changed_meanwhile", [False, True])
def test_rows_primed_in_the_worker_give_the_lines_a_load_would(owner, closed, changed_meanwhile):
    """What `prime` works out in the loading worker (a million rows: 0.6 s the UI thread would
    stand still) is taken by `load` only while it holds: the lines are those of a load without it,
    also when the rep toggled a setting between the read and the rows' arrival."""
    data = [
        (1 + i % 5, "2026-12" if i % 3 else None, "sam" if i % 2 else "mere", f"harbour {i}", "") for i in range(90)
    ]

    def loaded(primed_view: bool) -> PipelineView:
        store = make_store(data)
        reference = PipelineView(LADDER, today=TODAY)
        reference.load(make_store(data))
        order = reference._order
        view = PipelineView(LADDER, today=TODAY, owner=owner, closed=closed)
        primed = view.prime(store, LADDER, order, "month", scope=None) if primed_view else None
        if changed_meanwhile:
            view.closed = not closed
        view.load(store, order=order, primed=primed)
        if primed is not None and not changed_meanwhile:
            assert view._base is primed.base and view.open_ids() is primed.open_ids
        return view

    plain, primed = loaded(False), loaded(True)
    assert list(primed.lines) == list(plain.lines)
    assert set(primed.open_ids()) == set(plain.open_ids())
    expected = [
        r.id
        for r in sorted(plain.rows.get(pid) for pid in plain.rows)  # type: ignore[type-var]
        if (plain.closed or r.stage_id <= 3) and (owner is None or r.owner == owner)
    ]
    assert sorted(primed.lines) == sorted(expected)


def test_rows_primed_for_another_scope_are_not_taken():
    """Rows read for everyone but shown to a rep limited to their own: `load` drops the others'
    rows, so what was primed over all of them is not used."""
    data = [(1 + i % 3, "2026-12", "sam" if i % 2 else "mere", f"harbour {i}", "") for i in range(40)]
    store = make_store(data)
    view = PipelineView(LADDER, today=TODAY, scope="sam")
    primed = view.prime(store, LADDER, None, "month", scope=None)
    view.load(store, primed=primed)
    assert view.open_ids() is not primed.open_ids
    assert sorted(view.lines) == sorted(pid for pid in store if store.get(pid).owner == "sam")  # type: ignore[union-attr]


async def _frames_while_typing(
    engine, monkeypatch, hold: float, search_takes: float, inline: bool = False
) -> list[tuple[str, str, bool, bool]]:
    """(the filter box's text, the text whose results are shown, whether the table and the status
    line are painted) at each frame the app paints while 'har' is typed and searched, each search
    taking `search_takes` s; in the worker, or (`inline`) those that narrow a few last matches
    where the key is handled."""
    import asyncio
    import time

    from evpipe.tui.screens import pipeline as pipeline_screen

    s = Store(engine, who="tester")
    for i in range(12):
        s.add(f"Harbour party {i}" if i % 4 == 1 else f"Kauri wedding {i}", "1000", "Enquiry", month="2027-03")
    monkeypatch.setattr(pipeline_screen, "FILTER_FRAME_HOLD", hold)
    if not inline:
        monkeypatch.setattr(pipeline_screen, "INLINE_NARROWING", 0)  # every search in the worker
    app = RecordingApp(engine)
    frames: list[tuple[str, str, bool, bool]] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        select = screen._hits.select

        def slow_select(*args, **kwargs):
            time.sleep(search_takes)
            return select(*args, **kwargs)

        screen._hits.select = slow_select  # type: ignore[method-assign]
        await pilot.press("slash")
        await settle(pilot)
        box = screen.query_one("#filter", LineInput)
        status = screen.query_one("#status", TextLine)
        if inline:
            # the status line slow to tell the screen it changed (its task busy 50 ms first), as
            # the order the widgets' tasks run in can make it: the frame must wait for it
            show = status.show

            def slow_show(content):
                status.call_later(asyncio.sleep, 0.05)
                show(content)

            status.show = slow_show  # type: ignore[method-assign]
        display = app._display

        def recording(on_screen, renderable):
            dirty = on_screen._dirty_widgets
            frames.append((box.value, screen._last_filter_applied, screen.table in dirty, status in dirty))
            return display(on_screen, renderable)

        app._display = recording  # type: ignore[method-assign]
        for key in "har":
            await pilot.press(key)
            await settle(pilot, until=lambda a, key=key: a.pipeline._last_filter_applied.endswith(key))
        await settle(pilot)
        del app._display
        assert [screen.view.rows[pid].name for pid in screen.view.lines][:1] == ["Harbour party 1"]
    return frames


@pytest.mark.both_databases
async def test_the_text_typed_and_its_results_come_in_one_frame(engine, monkeypatch):
    # the text typed is held back while its search runs in the worker, so the frame that shows it
    # shows its results too (painted at once, it was a 60th of a second ahead of them, and the
    # results waited for the next frame's turn)
    frames = await _frames_while_typing(engine, monkeypatch, hold=5.0, search_takes=0.1)
    assert [typed for typed, *_ in frames if typed], "nothing was painted while typing"
    assert all(typed == shown for typed, shown, *_ in frames if typed), frames
    # and the table's new lines and the count are in that frame (not waiting for the next one)
    for typed in ("h", "ha", "har"):
        assert [painted for text, _, *painted in frames if text == typed][0] == [True, True], (typed, frames)


@pytest.mark.both_databases
async def test_a_search_where_the_key_is_handled_paints_its_rows_and_count_in_one_frame(engine, monkeypatch):
    # 'ha' and 'har' narrow three last matches where the key is handled (no worker): the widgets
    # tell the screen what changed one by one, and a frame begun between two left the count of
    # matches to the next frame
    frames = await _frames_while_typing(engine, monkeypatch, hold=5.0, search_takes=0.0, inline=True)
    for typed in ("h", "ha", "har"):
        first = [(shown, painted) for text, shown, *painted in frames if text == typed][0]
        assert first == (typed, [True, True]), (typed, frames)


@pytest.mark.both_databases
async def test_a_slow_search_holds_the_text_typed_back_only_so_long(engine, monkeypatch):
    frames = await _frames_while_typing(engine, monkeypatch, hold=0.05, search_takes=0.5)
    # each letter shows before its results: the hold ended after 0.05 s, not at the results
    for typed in ("h", "ha", "har"):
        before = [shown for text, shown, *_ in frames if text == typed]
        assert before and before[0] == typed[:-1], (typed, frames)


async def test_the_prospects_details_come_in_the_cursors_own_frame(engine):
    # the line under the table (contact person, phone, email) is set as the cursor moves, inside
    # the key's handling: no frame shows the highlight on one prospect and another's details
    s = Store(engine, who="tester")
    for i in range(8):
        s.add(f"Party {i}", "1000", "Enquiry", month="2027-03", contact_name=f"Person {i}")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        table = screen.table
        detail = screen.query_one("#detail")
        await settle(pilot, until=lambda a: "Person" in detail.plain)
        frames: list[tuple[str, str, bool]] = []
        display = app._display

        def recording(on_screen, renderable):
            row = screen.view.rows.get(table.current_id)
            frames.append((row.name if row else "", detail.plain, detail in on_screen._dirty_widgets))
            return display(on_screen, renderable)

        app._display = recording  # type: ignore[method-assign]
        for _ in range(5):
            await pilot.press("down")
            await pilot.pause(0.05)
        del app._display
    firsts = [frame for n, frame in enumerate(frames) if frame[0] and (n == 0 or frames[n - 1][0] != frame[0])]
    assert len(firsts) == 5, frames
    # the frame that first shows the cursor on a prospect paints that prospect's details
    assert all(f"Person {name.split()[-1]}" in text and painted for name, text, painted in firsts), frames


@pytest.mark.both_databases
async def test_a_narrowing_in_the_worker_shows_exactly_its_matches(engine, monkeypatch):
    # 'ha' and 'har' keep every match of 'h' (the lines shown are taken as they are, no pick);
    # 'harb' drops the Harvest rows (their lines picked out)
    from evpipe.tui.screens import pipeline as pipeline_screen

    s = Store(engine, who="tester")
    names = ("Harbour party", "Harvest fair", "Kauri wedding", "Kauri gala", "Kauri cruise")
    for i in range(20):  # fewer than half match 'h': the next letters narrow them
        s.add(f"{names[i % 5]} {i}", "1000", "Enquiry", month="2027-03")
    monkeypatch.setattr(pipeline_screen, "INLINE_NARROWING", 0)  # every search in the worker
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        await pilot.press("slash")
        for typed in ("h", "ha", "har", "harb", "harbo"):
            await pilot.press(typed[-1])
            await settle(pilot, until=lambda a, typed=typed: a.pipeline._last_filter_applied == typed)
            shown = sorted(screen.view.rows[pid].name for pid in screen.view.lines)
            want = sorted(f"{names[i % 5]} {i}" for i in range(20) if typed in names[i % 5].lower())
            assert shown == want, typed
            assert f"{len(want)} shown" in screen.query_one("#status", TextLine).plain


async def test_a_pipeline_key_runs_its_binding_as_the_app_reads_it(engine):
    """On the pipeline (BINDINGS_FIRST) a key's binding runs while the app handles the key: the row
    and the header have changed when the app's handler returns, with no round trip through the
    table's queue and back up (half a millisecond a key). A key no binding takes still reaches
    the focused table."""
    from textual import events

    s = Store(engine, who="tester")
    s.add("Kauri wedding", "1000", "Enquiry", month="2027-03")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        row = screen.table.current_row
        assert isinstance(row, Row)
        before = screen.header.kpi.ev_micros
        await app.on_event(events.Key("greater_than_sign", ">"))
        moved = screen.view.rows[row.id]
        assert moved.stage_id != row.stage_id and screen.header.kpi.ev_micros > before
        seen = []
        screen.table.post_message = lambda message: seen.append(message) or True  # type: ignore[method-assign]
        await app.on_event(events.Key("ctrl+f9", None))  # bound to nothing
        assert [type(m).__name__ for m in seen] == ["Key"]
        del screen.table.post_message
        await settle(pilot, until=lambda a: not a.pipeline._pending and not a.saver._running)
