"""The filter as you type, kept fast: a growing text searches only the last matches (and finds
exactly what a fresh search finds), a row changed under a filter is tested again, keys typed
faster than a search are one search of the latest text, and the loaded rows are frozen out of
the garbage collector's full passes."""

from __future__ import annotations

import gc
import json
from datetime import date
from pathlib import Path

import pytest
from apphelpers import RecordingApp, settle, shows, until
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_tmux import Tmux, cli
from test_tmux import shows as on_screen
from textual import events

from evpipe.models import filters
from evpipe.models.errors import DomainError
from evpipe.models.filters import Hits, parse_filter
from evpipe.models.pipeline_view import Ladder, PipelineView, Row, RowStore, haystack
from evpipe.models.records import StageInfo
from evpipe.models.store import Store

TODAY = date(2026, 11, 27)  # conftest pins the clock here
STAGES = [
    StageInfo(1, "Suspect", 1, 500, "open", 21),
    StageInfo(2, "Enquiry", 2, 1000, "open", 14),
    StageInfo(3, "Quote sent", 3, 2500, "open", 10),
    StageInfo(4, "Won", 4, 10000, "won", 0),
    StageInfo(5, "Lost", 5, 0, "lost", 0),
]
LADDER = Ladder.of(STAGES)
BIG = 60_000  # rows added for the burst of keys


def parse(text: str):
    return parse_filter(text, STAGES, TODAY)


# names made of few letters, so that short texts match some rows and not others
letters = st.text(alphabet="abch ", min_size=0, max_size=12)
row_data = st.tuples(
    st.sampled_from([1, 2, 3, 4, 5]),
    st.sampled_from([None, "2026-12", "2027-03"]),
    st.sampled_from(["sam", "mere", "aroha"]),
    letters,
    letters,
)
rows_strategy = st.lists(row_data, min_size=0, max_size=40)
prefix = st.sampled_from(["", "stage:quote ", "owner:m ", "stage:s owner:sam ", "month:2027-03 "])


def make_store(data) -> RowStore:
    store = RowStore()
    for i, (stage, month, owner, name, notes) in enumerate(data, start=1):
        row = Row(i, name, "", stage, 1000 * i, month, None, owner, "2026-11-01", 0, 1)
        store.put(row, haystack(name, "", "", notes))
    return store


def fresh(store: RowStore, text: str) -> set[int]:
    return parse(text).select(store, LADDER, TODAY)


@settings(max_examples=150, deadline=None)
@given(rows_strategy, prefix, letters)
def test_typing_a_text_narrows_to_exactly_what_a_fresh_search_finds(data, fields, typed):
    """Each keystroke of `typed` (after some fields): the kept matches, narrowed or searched again
    (a backspace, a field changed), are the fresh search's every time."""
    store = make_store(data)
    hits = Hits()
    text = fields
    for ch in typed + "\b\b" + typed[:3]:
        text = text[:-1] if ch == "\b" else text + ch
        try:
            f = parse(text)
        except DomainError:  # a field cut short (`owner:`): the screen keeps the last results
            continue
        if f.empty:
            hits.clear()
            continue
        assert hits.select(f, store, LADDER, TODAY) == fresh(store, text), text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows_strategy, letters, st.lists(st.tuples(st.integers(1, 45), letters, st.booleans()), max_size=6))
def test_rows_changed_between_keystrokes_keep_the_matches_right(data, typed, changes):
    """Rows changed, added and removed while a filter is on (through the view, as the screen does)
    are tested again, so the next keystroke's narrowed search is still the fresh one."""
    store = make_store(data)
    view = PipelineView(LADDER, today=TODAY)
    view.load(store)
    hits = Hits()
    text = "a"
    f = parse(text)
    view.matches, view.rule = hits.select(f, store, LADDER, TODAY), f
    view.rebuild()
    for pid, name, gone in changes:
        if gone:
            view.remove(pid)
        else:
            view.put(Row(pid, name, "", 1, 500, None, None, "sam", "2026-11-01", 0, 2), haystack(name, "", "", ""))
        assert view.matches == fresh(store, text)
        for ch in typed:  # the filter grows: narrowed from the kept matches
            text += ch
            f = parse(text)
            if f.empty:
                continue
            view.matches, view.rule = hits.select(f, store, LADDER, TODAY), f
            view.rebuild()
            assert view.matches == fresh(store, text), text
        text = "a"  # the box cleared and `a` typed again
        f = parse(text)
        view.matches, view.rule = hits.select(f, store, LADDER, TODAY), f
        view.rebuild()


def test_a_narrowed_search_tests_only_the_last_matches():
    store = make_store([(1, None, "sam", f"harbour {i}", "") for i in range(30)] + [(1, None, "sam", "kauri", "")] * 70)
    hits = Hits()
    hits.select(parse("har"), store, LADDER, TODAY)
    assert not hits.narrowed
    assert hits.select(parse("harbour 2"), store, LADDER, TODAY) == fresh(store, "harbour 2")
    assert hits.narrowed
    # another field: searched afresh
    assert hits.select(parse("owner:sam harbour 2"), store, LADDER, TODAY) == fresh(store, "owner:sam harbour 2")
    assert not hits.narrowed
    # a shorter text (backspace) is not a narrowing either
    assert hits.select(parse("owner:sam harbour"), store, LADDER, TODAY) == fresh(store, "owner:sam harbour")
    assert not hits.narrowed


def test_a_narrowing_that_keeps_every_match_says_so_unless_a_row_changed_since():
    # kept_all: the lines shown for the last matches are the new ones' lines as they are (the
    # worker then picks none); never when one was dropped or a row changed since the last search
    store = make_store([(1, None, "sam", f"harbour {i}", "") for i in range(30)] + [(1, None, "sam", "kauri", "")] * 70)
    hits = Hits()
    ids = hits.select(parse("harb"), store, LADDER, TODAY)
    ids = hits.select(parse("harbo"), store, LADDER, TODAY, ids)
    assert hits.narrowed and hits.kept_all and ids == fresh(store, "harbo")
    ids = hits.select(parse("harbour 1"), store, LADDER, TODAY, ids)
    assert hits.narrowed and not hits.kept_all and ids == fresh(store, "harbour 1")
    store.put(
        Row(500, "harbour 1 new", "", 1, 10, None, None, "sam", "2026-11-01", 0, 1),
        haystack("harbour 1 new", "", "", ""),
    )
    ids.add(500)  # (as the view does: the new row is tested again and kept)
    # nothing dropped, but a row changed since the last search (its line may not be shown yet)
    ids = hits.select(parse("harbour 1"), store, LADDER, TODAY, ids)
    assert hits.narrowed and not hits.kept_all and ids == fresh(store, "harbour 1") and 500 in ids
    ids = hits.select(parse("harbour 1"), store, LADDER, TODAY, ids)  # no change since: it holds
    assert hits.narrowed and hits.kept_all


def test_a_row_changed_under_a_filter_comes_in_or_keeps_its_line_until_the_next_search():
    store = make_store([(1, None, "sam", "harbour party", ""), (1, None, "sam", "kauri wedding", "")])
    view = PipelineView(LADDER, today=TODAY)
    view.load(store)
    hits = Hits()
    f = parse("harbour")
    view.matches, view.rule = hits.select(f, store, LADDER, TODAY), f
    view.rebuild()
    assert list(view.lines) == [1]
    # renamed to match: it comes into the filter's results
    kauri = Row(2, "Harbour wedding", "", 1, 2000, None, None, "sam", "2026-11-01", 0, 2)
    assert view.put(kauri, haystack(kauri.name, "", "", "")) is not None
    assert set(view.lines) == {1, 2} and view.matches == {1, 2}
    # renamed away: out of the matches (the next keystroke narrows without it), its line stays
    # until then, as a won prospect's does, so the rep sees what the change did
    party = Row(1, "Tui party", "", 1, 1000, None, None, "sam", "2026-11-01", 0, 2)
    assert view.put(party, haystack(party.name, "", "", ""), hint=view.index_of(1)) is not None
    assert view.matches == {2}
    f = parse("harbour w")
    view.narrow(hits.select(f, store, LADDER, TODAY))
    view.rule = f
    assert list(view.lines) == [2]


# ---------------------------------------------------------------- the app


@pytest.mark.both_databases
async def test_a_burst_of_keys_ends_with_the_full_texts_results_in_fewer_searches(engine):
    s = Store(engine, who="tester")
    for i in range(40):
        s.add(f"Harbour party {i}" if i % 3 else f"Kauri wedding {i}", "1000", "Enquiry", month="2027-03")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        # the loaded rows are frozen out of full collections: at once on a process's first load,
        # at the app's next quiet second where an earlier app in this process froze its own
        # (to the collector, this load is then a reload: pipeline._freeze_loaded_rows)
        assert await until(app, pilot, lambda: gc.get_freeze_count() > 0)
        # a big pipeline, so that a search takes longer than a key: rows come in as live changes do
        view = screen.view
        for pid in range(100_000, 100_000 + BIG):
            view.put(
                Row(pid, f"Tui cruise {pid}", "", view.rows[1].stage_id, 100, None, None, "sam", "2026-11-01", 0, 1)
            )
        await pilot.press("slash")
        await settle(pilot)
        before = screen._hits.searches
        text = "harbour party 1"
        # every key posted at once, as a fast typist's keys arrive while a search runs
        for ch in text:
            app.post_message(events.Key("space" if ch == " " else ch, ch))
        await settle(pilot)
        assert screen.filter_text == text
        # every word of the whole text, in the name (the filter's words are ANDed)
        want = {
            pid for pid, row in screen.view.rows.items() if "harbour party" in row.name.casefold() and "1" in row.name
        }
        assert len(want) == len([i for i in range(40) if i % 3 and "1" in str(i)])
        assert set(screen.view.lines) == want
        typed = {text[:n].strip() for n in range(1, len(text) + 1)}  # each key's text, once
        assert screen._hits.searches - before < len(typed)  # keys that came during a search were merged
        await shows(app, pilot, f"{len(want)} shown")
        assert f"{len(want)} shown · " in await shows(app, pilot, f"{len(want)} shown")


# ---------------------------------------------------------------- a real terminal


@pytest.fixture
def demo_db(tmp_path) -> Path:
    db = tmp_path / "tmux.db"
    cli(db, "seed")
    return db


def test_typing_fast_in_a_real_terminal_shows_the_whole_texts_results_and_count(demo_db):
    """The filter typed in one burst (tmux sends the keys at once): the screen ends on the whole
    text's results, and the count beside them is theirs; a backspaced word comes back wider."""
    for i in range(12):
        cli(demo_db, "add", f"Harbour cruise {i}", "--value", "1000", "--stage", "Enquiry", "--month", "2027-03")
    listed = json.loads(cli(demo_db, "list", "--filter", "harbour cruise 1", "--json"))
    want = sorted(p["name"] for p in listed if p["kind"] == "open")
    assert want == ["Harbour cruise 1", "Harbour cruise 10", "Harbour cruise 11"]
    wider = [p for p in json.loads(cli(demo_db, "list", "--filter", "harbour cruise", "--json")) if p["kind"] == "open"]
    t = Tmux(demo_db)
    try:
        t.wait_for(on_screen("shown"))
        t.keys("/")
        t.wait_for(on_screen("fields:"))
        t.keys("harbour cruise 1", literal=True)
        screen = t.wait_for(on_screen("filter: harbour", f" {len(want)} shown", *want))
        assert "Harbour cruise 2 " not in screen
        t.keys("BSpace", "BSpace")
        screen = t.wait_for(on_screen(f" {len(wider)} shown", "Harbour cruise 2 "))
    finally:
        t.kill()


@settings(max_examples=60, deadline=None)
@given(
    start=st.sets(st.integers(1, 300), max_size=60),
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 2_000)), max_size=40),
)
def test_the_open_rows_mask_holds_what_a_set_would(start, steps):
    """The open rows are kept as one byte per id (IdMask, a megabyte at a million prospects, where
    a set of ids took sixty): adding past its end, dropping twice, and picking an array's ids in
    order give what a set gives."""
    from array import array
    from itertools import compress

    from evpipe.models.pipeline_view import IdMask

    mask, oracle = IdMask(sorted(start), max(start, default=0)), set(start)
    for add, pid in steps:
        (mask.add if add else mask.discard)(pid)
        (oracle.add if add else oracle.discard)(pid)
    assert len(mask) == len(oracle) and all((i in mask) == (i in oracle) for i in range(-2, 2_100))
    ids = array("q", range(1, 2_500))
    assert list(compress(ids, mask.flags(ids, ids[-1]))) == [i for i in ids if i in oracle]


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(st.integers(1, 5_000), unique=True, max_size=300),
    matches=st.sets(st.integers(1, 6_000), max_size=300),
    whole=st.booleans(),
)
def test_pick_keeps_the_lines_of_the_matches_in_order(lines, matches, whole):
    """`pick` (the lines a filter's hits are on, picked in its worker) through its one-byte-per-id
    mask: the lines whose id matched, in their order; all of them when the filter lets all through."""
    from array import array

    from evpipe.models.pipeline_view import pick

    source = array("q", lines)
    want = lines if whole else [i for i in lines if i in matches]
    assert list(pick(source, matches, whole=whole)) == want
    assert list(pick(source, matches, whole=whole, pause=lambda: None)) == want


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.integers(1, 400), unique=True, max_size=120),
    matches=st.sets(st.integers(1, 450), max_size=120),
    data=rows_strategy,
    picked=st.sets(st.integers(0, 39), max_size=40),
)
@example(lines=list(range(1, 9)), matches=set(), data=[], picked=set())  # no match: no slice at all
def test_pick_and_mask_at_in_slices_give_what_one_pass_gives(lines, matches, data, picked):
    """A million lines are picked, and a quarter of a million hits made a mask, a slice at a time
    in the filter's worker (one call into C over them all held the interpreter lock 20-30 ms): with
    slices of 7 here, the same lines and ids as one pass, and a pause between every two slices."""
    from array import array
    from unittest import mock

    import evpipe.models.pipeline_view as pv

    pauses = []
    source = array("q", lines)
    with mock.patch.object(pv, "PICK_SLICE", 7):
        assert list(pv.pick(source, matches, pause=lambda: pauses.append(1))) == [i for i in lines if i in matches]
        # (no match, or no line: nothing to pick, no slice, no pause)
        assert len(pauses) >= len(lines) // 7 if matches and len(lines) > 7 else not pauses
        store = make_store(data)
        positions = array("i", sorted(p for p in picked if p < len(store.ids)))
        pauses.clear()
        mask = store.mask_at(positions, lambda: pauses.append(1))
        assert set(mask) == {store.ids[p] for p in positions} == set(store.mask_at(positions))
        assert len(mask) == len(positions)
        assert bool(pauses) == (len(positions) > 7)
        # a mask less some ids (the filter's narrowing: 140,000 at a million held the lock 13 ms)
        pauses.clear()
        gone = [store.ids[p] for p in positions[::2]]
        less = mask.without(gone, lambda: pauses.append(1))
        assert set(less) == set(mask) - set(gone) == set(mask.without(gone)) and len(less) == len(mask) - len(gone)
        assert len(pauses) == -(-len(gone) // 7)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=60).map(lambda b: bytes(x & 1 for x in b)))
def test_a_masks_positions_in_slices_are_those_of_one_pass(mask):
    """The positions a mask lets through are taken a slice of rows at a time, a pause between
    (a million rows' mask in one call into C held the interpreter lock 25-30 ms, the app's
    longest pause while the filter's worker searched): with slices of 7 here, the same."""
    from unittest import mock

    import evpipe.models.filters as filters

    pauses = []
    with mock.patch.object(filters, "WHERE_SLICE", 7):
        got = filters._where(mask, lambda: pauses.append(1))
    assert list(got) == [i for i, flag in enumerate(mask) if flag]
    assert len(pauses) == (-(-len(mask) // 7) if len(mask) > 7 else 0)


@settings(max_examples=150, deadline=None)
@given(
    rows_strategy,
    st.integers(1, 5),  # the first id
    st.lists(st.integers(0, 39), max_size=5),  # rows deleted (their ids gone)
    st.lists(st.integers(0, 39), max_size=5),  # rows removed on screen (marked, kept in place)
    prefix,
    st.text(alphabet="abch", min_size=1, max_size=3),
)
def test_the_search_finds_what_the_rule_lets_through_with_or_without_gaps_in_the_ids(
    data, first, deleted, removed, fields, word
):
    """A search of every row (Filter.select, Hits.select) finds exactly the live rows `holds` lets
    through: ids that run without a gap (the hits' mask copied at once), ids with gaps (a prospect
    deleted before the load), rows removed since (marked dead in place)."""
    store = RowStore()
    gone = set(deleted)
    for i, (stage, month, owner, name, notes) in enumerate(data):
        if i in gone:
            continue
        row = Row(first + i, name, "", stage, 1000 * (i + 1), month, None, owner, "2026-11-01", 0, 1)
        store.put(row, haystack(name, "", "", notes))
    for i in removed:
        store.remove(first + i)
    for text in (fields + word, fields + word + " " + word[::-1]):
        f = parse(text)
        want = {pid for pid in store if f.holds(store[pid], LADDER, store.hay_of(pid), TODAY)}
        assert set(f.select(store, LADDER, TODAY)) == want, text
        assert set(Hits().select(f, store, LADDER, TODAY)) == want, text


@pytest.mark.parametrize("owner", [None, "sam"])
def test_a_worker_priming_the_view_in_slices_works_out_the_same(monkeypatch, owner):
    """The loading worker's passes over every row (which rows are open, the lines before any
    filter) run in slices with a pause between them, the UI thread's turn (a million rows in one
    call held the interpreter lock some 100 ms each): the same result as one pass."""
    from array import array

    from evpipe.models import pipeline_view

    store = make_store([(1 + i % 5, None, ("sam", "mere")[i % 2], f"n{i}", "") for i in range(500)])
    order = array("q", reversed(store.ids))
    whole = PipelineView(LADDER, owner=owner).prime(store, LADDER, order, "month", scope=None)
    pauses: list[int] = []
    monkeypatch.setattr(pipeline_view, "PICK_SLICE", 7)
    sliced = PipelineView(LADDER, owner=owner).prime(
        store, LADDER, order, "month", scope=None, pause=lambda: pauses.append(1)
    )
    assert whole.base is not None and sliced.base is not None
    assert list(sliced.base[1]) == list(whole.base[1]) and len(whole.base[1]) == (150 if owner else 300)
    assert set(sliced.open_ids) == set(whole.open_ids) and len(whole.open_ids) == 300
    assert len(pauses) >= 500 // 7


def test_a_one_word_search_of_every_row_lets_the_ui_thread_in_after_each_slice(monkeypatch):
    """The first letters typed search every row for one word: the flags come straight from the
    texts' search (TextColumn.holding), a slice of rows a call into C, with a pause after each (the
    filter's worker lets the UI thread in, and a newer text typed stops it there)."""
    monkeypatch.setattr(filters, "SLICE", 7)
    data = [(1 + i % 5, None, "sam", ("ha" if i % 3 else "hb") + "c" * (i % 4), "") for i in range(50)]
    store = make_store(data)
    pauses: list[int] = []
    ids = Hits().select(parse("ha"), store, LADDER, TODAY, pause=lambda: pauses.append(1))
    assert set(ids) == {i for i in range(1, 51) if (i - 1) % 3}
    assert len(pauses) == -(-50 // 7)

    def typed_meanwhile() -> None:
        raise KeyboardInterrupt  # (stands for the worker's _Superseded)

    hits = Hits()
    with pytest.raises(KeyboardInterrupt):
        hits.select(parse("hb"), store, LADDER, TODAY, pause=typed_meanwhile)
    assert hits.filter is None  # stopped: nothing kept as found
