"""A big import's preparation shared with a fork of the process (models/forked.py) writes exactly
what one process writes: the same prospects, journal and stage history with the same ids, the same
counts; and when the fork gives no answer, the import makes its half itself."""

from __future__ import annotations

import csv
import dataclasses
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from evpipe.models import import_sheet, open_db
from evpipe.models.forked import Forked
from evpipe.models.import_commit import _Commit
from evpipe.models.importer import ImportOptions, import_file, plan_import

STAGES = ["Enquiry", "Suspect", "Quote sent", "Deposit paid", "Won", "Lost"]


def _file(path: Path, rows: int) -> Path:
    """A rep's export: open rows, and won and lost ones with close dates (two history rows each)."""
    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["Name", "Company", "Value", "Stage", "Expected month", "Close date", "Owner", "Notes"])
        for i in range(rows):
            stage = rng.choice(STAGES)
            closed = f"{rng.randrange(1, 28):02d}/{rng.randrange(1, 12):02d}/2026" if stage in ("Won", "Lost") else ""
            value = "" if i % 17 == 0 else f"{rng.randrange(100, 90_000)}.{rng.randrange(100):02d}"
            out.writerow(
                [f"Deal {i}", f"Co {i % 13}", value, stage, "2027-03", closed, rng.choice(["ann", "bob"]), f"n{i}"]
            )
    return path


def _tables(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
            for t in ("prospect", "change_event", "stage_change", "stage")
        }


def _import(url: str, path: Path, monkeypatch, share_rows: int):
    monkeypatch.setenv("EVPIPE_SHARE_ROWS", str(share_rows))
    engine = open_db(url)
    try:
        _, result = import_file(engine, path, ImportOptions(), who="tester")
        return result, _tables(engine)
    finally:
        engine.dispose()


@pytest.mark.both_databases
def test_a_shared_preparation_writes_what_one_process_writes(db_url, new_db_url, tmp_path, monkeypatch, forks):
    path = _file(tmp_path / "deals.csv", 301)
    alone, alone_rows = _import(db_url, path, monkeypatch, share_rows=10**9)
    assert forks == []
    shared, shared_rows = _import(new_db_url(), path, monkeypatch, share_rows=10)
    # a fork read the last rows, and one made them; on SQLite a third planned the KPI history
    assert len(forks) == (3 if db_url.startswith("sqlite") else 2) and None not in forks
    assert shared == alone
    assert shared.created == 301 and shared.events == len(shared_rows["change_event"]) > 301
    assert shared_rows == alone_rows


def test_the_import_makes_the_half_a_fork_did_not_answer_for(db_path, new_db_url, tmp_path, monkeypatch):
    path = _file(tmp_path / "deals.csv", 120)
    alone, alone_rows = _import(f"sqlite:///{db_path}", path, monkeypatch, share_rows=10**9)

    def broken(self, records, split):
        def work():
            raise MemoryError("no room")

        return work

    monkeypatch.setattr(_Commit, "_second_half", broken)
    shared, shared_rows = _import(new_db_url(), path, monkeypatch, share_rows=10)
    assert shared == alone
    assert shared_rows == alone_rows


def test_a_fork_hands_back_its_answer_or_says_why_there_is_none():
    helper = Forked.start(lambda: {"rows": list(range(100_000)), "pid": os.getpid()})
    assert helper is not None
    ok, answer = helper.answer()
    assert ok and answer["rows"] == list(range(100_000)) and answer["pid"] != os.getpid()

    helper = Forked.start(lambda: 1 / 0)
    assert helper is not None
    assert helper.answer() == (False, "ZeroDivisionError: division by zero")

    helper = Forked.start(lambda: os._exit(3))
    assert helper is not None
    ok, why = helper.answer()
    assert not ok and "without an answer" in why


def test_a_fork_whose_answer_is_not_taken_is_stopped():
    helper = Forked.start(lambda: time.sleep(60))
    assert helper is not None
    started = time.monotonic()
    helper.close()
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(helper.pid, 0)


def _plan(engine: Engine, path: Path, options: ImportOptions, monkeypatch, share_rows: int):
    monkeypatch.setenv("EVPIPE_SHARE_ROWS", str(share_rows))
    plan = plan_import(engine, path, options, who="tester")
    return (
        [dataclasses.asdict(r) for r in plan.records],
        [p.text(limit=10_000) for p in plan.problems],
        plan.warnings,
    )


def _rows_file(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def test_a_shared_reading_keys_and_checks_rows_as_one_process_does(engine, tmp_path, monkeypatch, forks):
    """Names repeated on both sides of the split ('#2', '#3'), bad cells, products missing from the
    lookup, created dates after today: the records, their keys, the problems and the warnings are
    the ones read alone."""
    lookup = _rows_file(tmp_path / "prices.csv", ["product", "price"], [["Boat", "900"], ["Bus", "50"]])
    rows = []
    for i in range(200):
        value = "" if i % 5 == 0 else ("abc" if i % 37 == 0 else str(100 + i))
        product = ["Boat", "Bus", "Jet", "Kite"][i % 4]
        created = "2027-06-01" if i % 7 == 0 else "2026-01-01"
        rows.append(
            [f"Deal {i % 10}", f"Co {i % 5}", value, STAGES[i % 4], product, "2027-0" + str(1 + i % 9), created]
        )
    headers = ["Name", "Company", "Value", "Stage", "Product", "Expected month", "Created"]
    path = _rows_file(tmp_path / "deals.csv", headers, rows)
    options = ImportOptions(values_file=lookup, values_key="product")
    alone = _plan(engine, path, options, monkeypatch, share_rows=10**9)
    assert forks == []
    shared = _plan(engine, path, options, monkeypatch, share_rows=10)
    assert len(forks) == 1 and forks[0] is not None
    assert any(r["key"].endswith("#15") for r in alone[0])  # repeats on both sides of the split
    assert any("abc" in p for p in alone[1]) and any("'Jet' is not in" in w for w in alone[2])
    assert any(w.startswith("rows 2, 9, 16,") and "the date is after today" in w for w in alone[2])
    assert shared == alone


def test_a_shared_reading_finds_an_id_repeated_across_the_split(engine, tmp_path, monkeypatch):
    rows = [[f"A{i % 70}" if i % 11 else "", f"Deal {i}", "100", "Suspect"] for i in range(150)]
    path = _rows_file(tmp_path / "ids.csv", ["Id", "Name", "Value", "Stage"], rows)
    alone = _plan(engine, path, ImportOptions(), monkeypatch, share_rows=10**9)
    shared = _plan(engine, path, ImportOptions(), monkeypatch, share_rows=10)
    assert any("row 143: id 'A1' is on row 3 already" in p for p in alone[1])  # and on row 73
    assert any("has no Id" in p for p in alone[1])
    assert shared == alone


def test_a_reading_the_fork_did_not_answer_for_is_done_here(engine, tmp_path, monkeypatch):
    path = _file(tmp_path / "deals.csv", 90)
    alone = _plan(engine, path, ImportOptions(), monkeypatch, share_rows=10**9)

    def broken(reader, rows, start):
        raise OSError("no room")

    monkeypatch.setattr(import_sheet, "_parse_rows", broken)
    assert _plan(engine, path, ImportOptions(), monkeypatch, share_rows=10) == alone


def test_a_fork_that_does_not_answer_in_time_is_stopped_and_its_share_done_here(db_path, tmp_path, monkeypatch):
    helper = Forked.start(lambda: time.sleep(60))
    assert helper is not None
    started = time.monotonic()
    ok, why = helper.answer(timeout=0.3)
    assert not ok and "no answer within 0.3 s" in why and time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(helper.pid, 0)

    path = _file(tmp_path / "deals.csv", 60)
    alone, alone_rows = _import(f"sqlite:///{db_path}", path, monkeypatch, share_rows=10**9)

    def stuck(self, records, split):
        return lambda: time.sleep(60)

    monkeypatch.setattr(_Commit, "_second_half", stuck)
    monkeypatch.setattr(Forked, "patience", staticmethod(lambda own: 0.3))
    started = time.monotonic()
    shared, shared_rows = _import(f"sqlite:///{tmp_path / 'other.db'}", path, monkeypatch, share_rows=10)
    assert time.monotonic() - started < 20
    assert (shared, shared_rows) == (alone, alone_rows)


def _history_tables(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2"))]
            for t in ("kpi_snapshot", "kpi_snapshot_month")
        }


def _pipeline_with_a_past(url: str) -> None:
    """A pipeline in use before the import: prospects of two owners, an owner handed over, a
    month moved, a probability changed, a win, a deletion, and its KPI readings."""
    from datetime import datetime

    from evpipe.models import history
    from evpipe.models.store import Store

    engine = open_db(url)
    try:
        s = Store(engine, who="tester")
        s.add("Old A", "4000", "Suspect", month="2027-02", owner="ann", at=datetime(2026, 6, 3, 10))
        s.add("Old B", "9000", "Enquiry", month="2027-03", owner="bob", at=datetime(2026, 6, 20, 10))
        s.add("Old C", "1500", "Suspect", owner="bob", at=datetime(2026, 7, 2, 10))
        s.edit("Old B", owner="ann", at=datetime(2026, 7, 9, 10))
        s.edit("Old A", month="2027-04", at=datetime(2026, 8, 1, 10))
        s.set_probability("Enquiry", "15", at=datetime(2026, 8, 14, 10))
        s.move("Old B", "won", at=datetime(2026, 9, 1, 10))
        s.delete("Old C", at=datetime(2026, 9, 5, 10))
        history.backfill(engine)
        history.record_snapshot(engine)
    finally:
        engine.dispose()


def test_the_kpi_history_a_fork_plans_while_the_import_writes_is_the_one_rebuilt_after(
    db_path, new_db_url, tmp_path, monkeypatch, forks
):
    """An import of new prospects into SQLite has its KPI history planned by a fork while it
    writes (models/import_commit.py `_Commit.history_ahead`), from the journal as it was and the
    rows being written: every snapshot and month row is the one `backfill` makes reading the
    committed database, into an empty pipeline and into one with a past (edits of owners and
    months, a probability change, a win, a deletion); and when the fork gives no answer, the
    import rebuilds it itself, the same. The fork hands its rows over in a file of their own, which
    SQLite copies in (history.write_handed_over); where they no longer fit (other snapshots took
    their ids meanwhile), its ids move on together; where another evpipe wrote one of its snapshots
    meanwhile, or its file cannot be read, nothing of it is written and the import rebuilds, the
    same. No file is left behind."""
    from evpipe.models import history

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    handed_over: list[bool] = []
    write = history.write_handed_over

    def noted(engine, handed):
        handed_over.append(write(engine, handed))
        return handed_over[-1]

    def clashing(engine, handed):  # as if another evpipe had written one of its snapshots meanwhile
        with sqlite3.connect(handed.path) as file:
            row = dict(zip(handed.snapshot_columns, file.execute("SELECT * FROM s LIMIT 1").fetchone()))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO kpi_snapshot (id, scope, taken_on, taken_at, count, tv_cents, ev_micros) "
                    "VALUES (100000, :scope, :taken_on, :taken_at, :count, :tv_cents, :ev_micros)"
                ),
                row,
            )
        return noted(engine, handed)

    def gone(engine, handed):  # the temporary folder emptied meanwhile
        Path(handed.path).write_bytes(b"")
        return noted(engine, handed)

    monkeypatch.setattr(history, "write_handed_over", noted)
    path = _file(tmp_path / "deals.csv", 150)
    for past in (False, True):
        urls = [f"sqlite:///{tmp_path / f'{past}-{n}.db'}" for n in range(5)]
        for url in urls:
            if past:
                _pipeline_with_a_past(url)
        forks.clear()
        handed_over.clear()
        alone, _ = _import(urls[0], path, monkeypatch, share_rows=10**9)
        assert forks == [] and alone.history is None
        planned, _ = _import(urls[1], path, monkeypatch, share_rows=10)
        assert len(forks) == 3 and None not in forks  # the reading, the rows, the history
        assert handed_over == [True]
        with monkeypatch.context() as m:  # the history's fork fails: rebuilt after, as ever
            m.setattr(history, "plan_backfill", lambda *a, **k: 1 / 0)
            broken, _ = _import(urls[2], path, monkeypatch, share_rows=10)
        with monkeypatch.context() as m:
            m.setattr(history, "write_handed_over", clashing)
            _import(urls[3], path, monkeypatch, share_rows=10)
        with monkeypatch.context() as m:
            m.setattr(history, "write_handed_over", gone)
            _import(urls[4], path, monkeypatch, share_rows=10)
        assert handed_over == [True, False, False]
        engines = [open_db(url) for url in urls]
        try:
            tables = [_history_tables(e) for e in engines]
        finally:
            for e in engines:
                e.dispose()
        assert len(tables[0]["kpi_snapshot"]) > 50 and tables[0]["kpi_snapshot_month"]
        assert tables[1] == tables[0], past
        assert tables[2] == tables[0], past
        # (the rebuild keeps the snapshot the other evpipe wrote: the same figures, another id)
        assert {r[1:7] for r in tables[3]["kpi_snapshot"]} == {r[1:7] for r in tables[0]["kpi_snapshot"]}, past
        assert tables[4] == tables[0], past
        assert list(scratch.iterdir()) == []


def test_an_import_that_fails_as_it_writes_stops_the_fork_planning_its_history(db_path, tmp_path, monkeypatch, forks):
    """The fork planning the KPI history starts before the rows are written: when the writing then
    fails (a full disk, say), nothing is written, and the fork is stopped and reaped, not left
    waiting for ever to hand back a plan nobody takes."""
    path = _file(tmp_path / "deals.csv", 60)

    def full(self, conn, chunk, progress):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_Commit, "write", full)
    monkeypatch.setenv("EVPIPE_SHARE_ROWS", "10")
    engine = open_db(f"sqlite:///{db_path}")
    try:
        with pytest.raises(OSError):
            import_file(engine, path, ImportOptions(), who="tester")
        assert _tables(engine)["prospect"] == []
    finally:
        engine.dispose()
    assert len(forks) == 3 and None not in forks  # the reading, the rows, the history
    history = forks[-1]
    assert history is not None and history.done
    with pytest.raises(ChildProcessError):  # reaped: no process left behind
        os.waitpid(history.pid, 0)
