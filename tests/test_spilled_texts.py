"""Names and search texts moved to a file past texts.SPILL bytes (issue 13, a million prospects in
200 MiB): they read, change, copy and search exactly as in memory, and a search through the file
does not keep the file's pages in the app's memory."""

from __future__ import annotations

import random
from array import array
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_row_memory import _write

from evpipe.models import filters, texts
from evpipe.models.filters import Hits, parse_filter
from evpipe.models.pipeline_view import Ladder, RowStore, haystack
from evpipe.models.records import StageInfo
from evpipe.models.texts import TextColumn

TODAY = date(2026, 11, 27)
LADDER = Ladder.of([StageInfo(1, "Suspect", 1, 500, "open", 21), StageInfo(2, "Won", 2, 10000, "won", 0)])

words = st.text(alphabet="aäßoō kK\u0130é🙂", min_size=0, max_size=12)


def _spilled() -> TextColumn:
    column = TextColumn()
    column.spill()
    return column


@given(st.lists(st.tuples(st.sampled_from(["append", "insert", "set"]), st.integers(0, 30), words), max_size=40))
def test_a_spilled_column_holds_what_a_list_holds_and_its_copy_changes_apart(ops) -> None:
    column, model = _spilled(), []
    for op, at, text in ops:
        _write(column, model, op, at, text)
    assert list(column) == model
    copy, copied = column.copy(), list(model)
    for op, at, text in ops:
        _write(copy, copied, op, at, text + "!")
        _write(column, model, op, at, text)
    assert list(column) == model and list(copy) == copied
    assert copy.data is column.data and column.spilled


@settings(max_examples=60)
@given(st.lists(words, max_size=30), words, st.data())
def test_holding_is_the_texts_own_substring_test_in_memory_and_on_file(hay, word, data) -> None:
    """Byte for byte on UTF-8 is the str's own `in`: no partial character matches."""
    positions = array("i", sorted(data.draw(st.sets(st.integers(0, max(len(hay) - 1, 0)))) if hay else []))
    want_all = bytes(word in h for h in hay)
    want_some = bytes(word in hay[i] for i in positions)
    for column in (TextColumn(), _spilled()):
        for h in hay:
            column.append(h)
        assert column.holding(word) == want_all
        assert bytes(column.holding_flags(word)) == want_all
        assert column.holding(word, positions) == want_some


def test_a_column_moves_to_a_file_once_past_spill_and_reads_on(monkeypatch) -> None:
    monkeypatch.setattr(texts, "SPILL", 100)
    column = TextColumn()
    for i in range(30):
        column.append(f"name {i}")
    assert column.spilled and [column[i] for i in (0, 29)] == ["name 0", "name 29"]
    column[3] = "renamed"  # written after the bytes already in the file, read from the tail
    assert column[3] == "renamed" and column.holding("renamed") == bytes(i == 3 for i in range(30))


def test_texts_written_after_a_search_map_are_found_by_the_next_search() -> None:
    column = _spilled()
    for i in range(3000):
        column.append(f"prospect {i}")
    assert column.holding("prospect 2999") == bytes(i == 2999 for i in range(3000))
    column[5] = "harbour cruise"
    column.append("harbour dinner")  # past the last map's end: the next search maps again
    assert column.holding("harbour") == bytes(i in (5, 3000) for i in range(3001))


def _store(n: int, seed: int = 7) -> RowStore:
    rng = random.Random(seed)
    places = ["Takapuna", "Devonport", "Harbour", "Ōtaki", "Straße", "Kohimarama"]
    events = ["wedding", "cruise", "christmas party", "awards night"]
    store = RowStore()
    for pid in range(1, n + 1):
        name = f"{rng.choice(places)} {rng.choice(events)} #{pid}"
        company = f"{rng.choice(places)} {rng.choice(['Ltd', 'Club', 'Trust'])}"
        contact, notes = rng.choice(["Tama Tane", "Grace Fong"]), rng.choice(["", "Met at the expo", "wants 50"])
        store.append_raw(
            pid,
            name,
            company,
            1,
            pid,
            "2027-03",
            None,
            "mere",
            "2026-11-01",
            0,
            1,
            haystack(name, company, contact, notes),
        )
        if pid % 500 == 0:
            store.spill()
    return store


@pytest.mark.parametrize("copied", [range(0), range(1, 10_000)], ids=["in place", "excerpt"])
def test_a_pipeline_past_spill_filters_and_narrows_as_one_in_memory(monkeypatch, copied) -> None:
    """Every filter, searched from scratch and narrowed key by key (in the texts where they are,
    or in a copy of the last matches', texts.Excerpt), finds the same prospects in a RowStore
    whose texts moved to a file as in one that kept them in memory, and after edits."""
    monkeypatch.setattr(filters, "EXCERPT", copied)
    kept = _store(4000)
    assert not kept.hay.spilled
    monkeypatch.setattr(texts, "SPILL", 10_000)
    moved = _store(4000)
    assert moved.hay.spilled and moved.names.spilled
    for store in (kept, moved):  # an edit written after the file's bytes
        row = store[17]._replace(name="Harbour christmas party #17")
        store.put(row, haystack(row.name, row.company, "Tama Tane", "notes here"))
    for store in (kept, moved):
        assert store[17].name == "Harbour christmas party #17"
    typed = "harbour christmas"
    for text in (typed[:n] for n in range(1, len(typed) + 1)):
        if not text.strip():
            continue
        wanted = parse_filter(text, LADDER.stages.values(), TODAY)
        assert set(wanted.select(moved, LADDER, TODAY)) == set(wanted.select(kept, LADDER, TODAY)), text
    hits_kept, hits_moved = Hits(), Hits()
    for n in range(1, len(typed) + 1):
        wanted = parse_filter(typed[:n], LADDER.stages.values(), TODAY) if typed[:n].strip() else None
        if wanted is None:
            continue
        assert set(hits_moved.select(wanted, moved, LADDER, TODAY)) == set(
            hits_kept.select(wanted, kept, LADDER, TODAY)
        )
    assert hits_moved.narrowed and hits_kept.narrowed
    assert (hits_moved._excerpt is not None) == bool(copied)


def _resident_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def test_a_search_through_the_file_lets_its_pages_go() -> None:
    """64 MB of texts on file: a search through all of them, and one through every tenth, leave
    the app's resident memory within a few windows of where it was (not 64 MB more)."""
    column = _spilled()
    text = "met at the coromandel expo; wants 50 guests " * 3  # 132 bytes
    for _ in range(64_000_000 // len(text)):
        column.append(text)
    before = _resident_kib()
    assert column.holding("harbour").count(1) == 0
    assert column.holding("guests", array("i", range(0, len(column), 10))).count(1) == len(column) // 10 + 1
    assert bytes(column.holding_flags("coromandel")).count(1) == len(column)
    grown = _resident_kib() - before
    assert grown < 16 * 1024, f"{grown} KiB more resident after searching 64 MB on file"


def test_a_full_disk_keeps_the_texts_in_memory_and_right(monkeypatch) -> None:
    """No file can be written: the column stays in memory. The file fills up later: what could
    not be written waits in memory, every text still reads and is found, and it is written once
    the disk has room again."""
    real_pwrite = texts.os.pwrite

    def full(fd, data, offset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(texts.os, "pwrite", full)
    kept = TextColumn()
    kept.append("harbour cruise")
    kept.spill()
    assert not kept.spilled and kept[0] == "harbour cruise"

    monkeypatch.setattr(texts.os, "pwrite", real_pwrite)
    column = _spilled()
    column.append("first")
    monkeypatch.setattr(texts, "_FLUSH", 16)
    written: list[int] = []

    def half(fd, data, offset):  # one write goes halfway, then the disk is full
        if written:
            raise OSError(28, "No space left on device")
        written.append(real_pwrite(fd, bytes(data[: len(data) // 2]), offset))
        return written[0]

    monkeypatch.setattr(texts.os, "pwrite", half)
    for i in range(10):
        column.append(f"harbour dinner {i}")
    assert [column[i] for i in (0, 1, 10)] == ["first", "harbour dinner 0", "harbour dinner 9"]
    assert column.holding("dinner 9") == bytes(i == 10 for i in range(11))
    monkeypatch.setattr(texts.os, "pwrite", real_pwrite)
    column.append("last")  # the disk has room: the tail goes to the file with it
    assert column.spilled and not column.data.tail
    assert list(column) == ["first", *(f"harbour dinner {i}" for i in range(10)), "last"]
    assert column.holding("dinner") == bytes(0 < i < 11 for i in range(12))


def test_the_last_matches_texts_are_copied_again_once_a_row_changes(monkeypatch) -> None:
    """A narrowing filter searches a copy of the last matches' texts (texts.Excerpt); after a
    prospect is renamed it searches the rows' own texts again: the one renamed away is dropped,
    the one renamed in is found."""
    monkeypatch.setattr(filters, "EXCERPT", range(1, 10_000))
    store = _store(4000)
    hits = Hits()
    for text in ("ha", "har"):
        hits.select(parse_filter(text, LADDER.stages.values(), TODAY), store, LADDER, TODAY)
    assert hits.narrowed and hits._excerpt is not None
    assert hits.ids is not None
    into = next(pid for pid in store if pid not in hits.ids)
    away = next(pid for pid in hits.ids if "cruise" in store[pid].name)
    for pid, name in ((away, "Quiet dinner"), (into, "Harbour cruise lights")):
        row = store[pid]._replace(name=name, company="Kauri Ltd", version=2)
        store.put(row, haystack(name, "Kauri Ltd", "", ""))
    hits.ids.discard(away)  # (as the pipeline view keeps its matches through a change)
    hits.ids.add(into)
    wanted = parse_filter("harbour cr", LADDER.stages.values(), TODAY)  # (most of the last matches dropped)
    got = set(hits.select(wanted, store, LADDER, TODAY))
    assert hits.narrowed and into in got and away not in got
    assert got == set(wanted.select(store, LADDER, TODAY))
