"""The pipeline's rows kept small (issue 13, memory) and still right: the names in one UTF-8
buffer (TextColumn), the filter's hits as a byte per id (IdMask, a set to its users), and the
unfiltered lines shared with the ids before the filter until a line is added or removed."""

from __future__ import annotations

from array import array
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from evpipe.models.pipeline_view import IdMask, Ladder, PipelineView, Row, RowStore, TextColumn, haystack, pick
from evpipe.models.records import StageInfo

TODAY = date(2026, 11, 27)
STAGES = [
    StageInfo(1, "Suspect", 1, 500, "open", 21),
    StageInfo(2, "Won", 2, 10000, "won", 0),
]
LADDER = Ladder.of(STAGES)


def row(pid: int, name: str, stage: int = 1, version: int = 1) -> Row:
    return Row(pid, name, "Kauri Ltd", stage, 1000 * pid, "2027-03", None, "mere", "2026-11-01", 0, version)


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


def _write(column: TextColumn, model: list[str], op: str, at: int, text: str) -> None:
    """One write to a TextColumn and to the list it should read as."""
    if op == "append" or not model:
        column.append(text)
        model.append(text)
    elif op == "insert":
        column.insert(at % (len(model) + 1), text)
        model.insert(at % (len(model) + 1), text)
    else:
        column[at % len(model)] = text
        model[at % len(model)] = text


@given(st.lists(st.tuples(st.sampled_from(["append", "insert", "set"]), st.integers(0, 30), texts), max_size=40))
def test_a_text_column_holds_what_a_list_holds(ops) -> None:
    column, model = TextColumn(), []
    for op, at, text in ops:
        _write(column, model, op, at, text)
    assert list(column) == model and len(column) == len(model)
    # a copy shares the buffer (texts are only ever written at its end) and changes apart: writes
    # to either, in turn, leave the other as it was
    copy, copied = column.copy(), list(model)
    for op, at, text in ops:
        _write(copy, copied, op, at, text + "!")
        _write(column, model, op, at, text)
    assert list(column) == model and list(copy) == copied


def test_names_come_back_as_they_were_put_edited_and_inserted() -> None:
    store = RowStore()
    for pid, name in ((2, "Te Whare Ōtaki"), (5, "Straße café"), (9, "")):
        store.put(row(pid, name), haystack(name, "Kauri Ltd", "", ""))
    store.put(row(5, "Strasse Cafe", version=2))  # renamed
    store.put(row(3, "Ngā Hau e Whā"))  # inserted between two ids
    assert [store[pid].name for pid in (2, 3, 5, 9)] == ["Te Whare Ōtaki", "Ngā Hau e Whā", "Strasse Cafe", ""]
    board = store.copy()
    board.put(row(2, "Board's own", version=2))
    assert store[2].name == "Te Whare Ōtaki" and board[2].name == "Board's own"


def test_numbers_too_big_for_the_narrow_columns_widen_them_and_read_back_as_they_were() -> None:
    """Indexes into the words, stage ids and versions take 2 bytes, ids, money and the moment of
    the last change 4, until one does not fit: then every number column widens (RowStore.NARROW),
    in a load and in a put alike, and each row reads back as it was written."""
    late, early, rich = 2**40, -(2**40), 3 * 10**11  # moments past 2038 and before 1970; $3bn
    loaded = RowStore()
    for pid in range(1, 70_003):  # more companies than 2 bytes can number
        loaded.append_raw(pid, f"P{pid}", f"Co {pid}", 3, pid, None, None, "mere", "2026-11-01", pid, 1, "")
    big = Row(70_003, "Big", "Co 1", 2**31 - 1, rich, "2027-03", "2026-12-01", "sam", "2026-11-02", late, 70_000)
    loaded.append_raw(*big, "")
    huge = Row(2**40, "Huge id", "Co 2", 3, 5, None, None, "mere", "2026-11-03", early, 1)
    loaded.append_raw(*huge, "")  # the first column, ids, does not fit
    assert {loaded.NARROW[name] == getattr(loaded, name).typecode for name in loaded.NARROW} == {True}
    assert loaded[70_002].company == "Co 70002" and loaded[1].company == "Co 1" and len(loaded) == 70_004
    assert loaded[70_003] == big and loaded[2**40] == huge
    assert {len(getattr(loaded, name)) for name in loaded.NARROW} == {70_004}
    for first in (huge, big):  # one too big for the ids, one for the other columns
        small = RowStore()
        small.put(row(4, "Small"))
        assert small.company.typecode == "H" and small.ids.typecode == "i"
        board = small.copy()
        board.put(first)
        board.put(row(4, "Small", version=2)._replace(updated=late))
        assert board[first.id] == first and board[4].updated == late and board.stage.typecode == "i"
        assert list(board) == sorted({4, first.id})
        assert small[4] == row(4, "Small") and small.stage.typecode == "H"  # the copy widened its own


_STORE_OPS = st.lists(
    st.tuples(
        st.sampled_from(["copy", "put", "remove"]),
        st.integers(0, 3),  # which store (of those made so far)
        st.integers(1, 40),  # the prospect
        st.sampled_from(["Kauri", "Ōtaki café", "Acme"]),
    ),
    max_size=40,
)


@given(_STORE_OPS)
def test_copies_of_the_rows_change_apart(ops) -> None:
    """A copy (the board's) shares the columns until one of the stores changes a row, which then
    copies them first: whatever each does after, each reads as its own rows."""
    first = RowStore()
    for pid in (2, 5, 9):
        first.put(row(pid, f"P{pid}"), haystack(f"P{pid}", "Kauri Ltd", "", ""))
    stores, models = [first], [{pid: first[pid] for pid in first}]
    for op, which, pid, name in ops:
        which %= len(stores)
        store, model = stores[which], models[which]
        if op == "copy":
            stores.append(store.copy())
            models.append(dict(model))
        elif op == "put":
            changed = Row(pid, name, name, 1 + pid % 2, 100 * pid, "2027-03", None, name, "2026-11-01", 0, 2)
            store.put(changed, haystack(name, name, "", ""))
            model[pid] = changed
        else:
            store.remove(pid)
            model.pop(pid, None)
        for each, want in zip(stores, models):
            assert dict(each.items()) == want and len(each) == len(want)
            assert all(each.hay_of(pid) == haystack(r.name, r.company, "", "") for pid, r in want.items())


@given(st.sets(st.integers(1, 300)), st.sets(st.integers(1, 300)))
def test_an_id_mask_is_a_set_to_its_users(ids, more) -> None:
    mask = IdMask(ids, 300)
    assert mask == ids and len(mask) == len(ids) and sorted(mask) == sorted(ids)
    for pid in more:
        mask.add(pid)
    mask.add(1000)  # past the top: it grows
    assert mask == ids | more | {1000}
    for pid in ids:
        mask.discard(pid)
    mask.discard(5000)
    assert mask == (more - ids) | {1000}
    assert all((pid in mask) == (pid in (more - ids) | {1000}) for pid in range(0, 1100))
    source = array("q", range(1, 1001))
    assert list(pick(source, mask)) == [pid for pid in source if pid in mask]


def test_unfiltered_lines_are_shared_until_a_line_comes_or_goes() -> None:
    store = RowStore()
    for pid in range(1, 11):
        store.put(row(pid, f"Prospect {pid:02d}"), haystack(f"Prospect {pid:02d}", "", "", ""))
    view = PipelineView(LADDER, today=TODAY)
    view.load(store)
    order, before = view._order, list(view.lines)
    assert order is not None
    base = view._unfiltered(order)
    assert view.lines is base  # no copy of every id while nothing is filtered
    view.put(row(11, "Prospect 11"))  # a new line
    assert list(base) == before  # the ids before the filter did not change under it
    assert view.lines is not base and 11 in list(view.lines)
    view.rebuild()
    assert view._order is not None
    base = view._unfiltered(view._order)
    assert view.lines is base
    view.remove(3)  # a line goes
    assert 3 in list(base) and 3 not in list(view.lines)


def test_a_prospect_won_takes_its_place_after_the_open_ones_when_the_lines_are_made_again() -> None:
    """Its line stays where it is (the rep sees what happened); the order the lines are next made
    from puts it among the won, after every open prospect: with won and lost shown (`c`), a
    prospect won in another session stood above the open ones."""
    store = RowStore()
    for pid in range(1, 6):
        store.put(row(pid, f"Prospect {pid}"), haystack(f"Prospect {pid}", "", "", ""))
    view = PipelineView(LADDER, today=TODAY)
    view.load(store)
    view.closed = True
    view.rebuild()
    assert list(view.lines) == [1, 2, 3, 4, 5]
    view.put(row(2, "Prospect 2", stage=2, version=2), stay=False)  # won elsewhere
    assert list(view.lines) == [1, 2, 3, 4, 5]  # on its line until the lines are made again
    view.rebuild()
    assert list(view.lines) == [1, 3, 4, 5, 2]
