"""A big import's preparation shared with a fork of the process (models/forked.py) writes exactly
what one process writes: the same prospects, journal and stage history with the same ids, the same
counts; and when the fork gives no answer, the import makes its half itself."""

from __future__ import annotations

import csv
import os
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from evpipe.models import open_db
from evpipe.models.forked import Forked
from evpipe.models.import_commit import _Commit
from evpipe.models.importer import ImportOptions, import_file

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
def test_a_shared_preparation_writes_what_one_process_writes(db_url, new_db_url, tmp_path, monkeypatch):
    path = _file(tmp_path / "deals.csv", 301)
    forks = []
    started = Forked.start

    def counted(work):
        forks.append(started(work))
        return forks[-1]

    monkeypatch.setattr(Forked, "start", staticmethod(counted))
    alone, alone_rows = _import(db_url, path, monkeypatch, share_rows=10**9)
    assert forks == []
    shared, shared_rows = _import(new_db_url(), path, monkeypatch, share_rows=10)
    assert len(forks) == 1 and forks[0] is not None  # the fork did make the second half
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
