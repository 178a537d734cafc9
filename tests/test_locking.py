"""Issue 15, points 2 and 3: reads never wait for a writer, a write that cannot get the lock says who
holds it in one line, and an import holds the lock only while it writes.

A helper process holds the write lock (as a long evpipe write that leaves its record, or as a raw
`BEGIN IMMEDIATE` that leaves none) while real `evpipe` processes read and write."""

from __future__ import annotations

import csv
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from apphelpers import settle

from evpipe.models import open_db
from evpipe.models.db import CLI_LOCK_TIMEOUT, lock_wait
from evpipe.models.errors import WriteLocked, unsaved_reason
from evpipe.models.history import kpis_by_journal
from evpipe.models.importer import ImportOptions, commit_import, plan_import
from evpipe.models.kpi import Kpi, kpis
from evpipe.models.rawdb import fetch_all
from evpipe.models.store import Store
from evpipe.models.writing import current_writer, record_path
from evpipe.tui.app import EvpipeApp

ROOT = Path(__file__).resolve().parent.parent
EVPIPE = [sys.executable, "-m", "evpipe.tui.cli"]
cli_main = importlib.import_module("evpipe.tui.cli.main")

#: How long a helper holds the lock: far longer than any read may take.
HOLD = 120

HOLDER = r"""
import sys, time
path, what = sys.argv[1], sys.argv[2]
if what:
    from sqlmodel import Session
    from evpipe.models import open_db
    from evpipe.models.db import writer
    engine = open_db("sqlite:///" + path, create=False)
    with Session(writer(engine, what)) as s, s.begin():
        s.connection()  # BEGIN IMMEDIATE: the lock is held, and the record written
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin
else:
    import sqlite3
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    sys.stdin.read()
    connection.rollback()
"""


class Holder:
    """A process holding the database's write lock until `release()`."""

    def __init__(self, path: Path, what: str = "", who: str = "sam") -> None:
        env = {**os.environ, "EVPIPE_USER": who}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), what],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        line = self.proc.stdout.readline()  # blocks until the lock is held (or the helper died)
        assert line.strip() == "held", self.proc.stderr.read()

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "shared.db"
    engine = open_db(f"sqlite:///{path}")
    store = Store(engine, who="priya")
    store.add("Harbour Events", "6000", "Quote sent", month="2026-12")
    store.add("Kauri Software", "14500", "Enquiry", month="2027-01")
    from evpipe.models.history import record_snapshot

    record_snapshot(engine)
    engine.dispose()
    return path


def evpipe(
    *args: str, wait: float = 30, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, float]:
    """`evpipe ARGS` in a process of its own; returns it and its wall time. `wait` is its lock wait
    (EVPIPE_LOCK_TIMEOUT): a read that waited for the lock would take at least that long."""
    started = time.monotonic()
    proc = subprocess.run(
        [*EVPIPE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "EVPIPE_LOCK_TIMEOUT": str(wait), **(env or {})},
        timeout=HOLD,
    )
    return proc, time.monotonic() - started


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ---------------------------------------------------------------- point 2: reads do not wait


def test_reads_return_at_once_while_a_long_write_holds_the_lock_and_a_write_names_it(database):
    holder = Holder(database, "an import of big.csv", who="sam")
    try:
        # the record names the holder; it is the owner's and the group's to read
        record = record_path(database)
        assert json.loads(record.read_text())["what"] == "an import of big.csv"
        assert record.stat().st_mode & 0o777 == 0o640
        for args in (["kpi"], ["kpi", "--json"], ["list"], ["forecast"], ["review"], ["stages"], ["focus"]):
            proc, took = evpipe("--db", str(database), *args)
            assert proc.returncode == 0, proc.stderr
            assert took < 15, f"{args} took {took:.1f} s behind a write lock (its wait was 30 s)"
        assert "Harbour Events" in evpipe("--db", str(database), "list")[0].stdout

        proc, took = evpipe("--db", str(database), "move", "Harbour Events", "next", wait=1)
        line = one_line(proc)
        assert line == (
            f"evpipe: another evpipe is writing to {database} (an import of big.csv by sam since 10:00) and "
            "kept it locked for more than 1.0 s; nothing was changed: try again, or wait for it to finish "
            "(EVPIPE_LOCK_TIMEOUT sets the wait)"
        )
        assert took < 15
    finally:
        holder.release()
    assert not record_path(database).exists()  # removed when the write ended
    # nothing was written by the move that failed; once the lock is free it goes through
    engine = open_db(f"sqlite:///{database}", create=False)
    assert Store(engine).get("Harbour Events").stage_name == "Quote sent"
    engine.dispose()
    proc, _ = evpipe("--db", str(database), "move", "Harbour Events", "next", wait=1)
    assert proc.returncode == 0, proc.stderr


def test_a_raw_lock_holder_is_not_named_and_a_dead_writers_record_is_ignored(database):
    # a record left by a process that has ended (killed during an import) names nobody
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record_path(database).write_text(
        json.dumps(
            {
                "pid": int(ended.stdout),
                "host": os.uname().nodename,
                "who": "ghost",
                "what": "an import of old.csv",
                "since": "2026-11-27T09:00:00",
            }
        )
    )
    assert current_writer(database) is None
    holder = Holder(database)  # a raw BEGIN IMMEDIATE: no record of its own
    try:
        line = one_line(evpipe("--db", str(database), "add", "New one", "--value", "5", wait=0.5)[0])
        assert line.startswith(f"evpipe: another evpipe is writing to {database} and kept it locked for more than ")
        assert "ghost" not in line and "nothing was changed" in line
        assert evpipe("--db", str(database), "kpi")[0].returncode == 0
    finally:
        holder.release()


def test_a_record_that_cannot_be_read_is_ignored(database):
    record_path(database).write_text("{not json")
    assert current_writer(database) is None
    record_path(database).write_text(json.dumps({"pid": os.getpid(), "host": "elsewhere", "who": "x\x1b[31m"}))
    assert current_writer(database) is None  # no "what", no "since": not a record


def test_the_lock_wait_of_a_command_and_its_setting(database, monkeypatch):
    monkeypatch.delenv("EVPIPE_LOCK_TIMEOUT", raising=False)
    assert lock_wait(CLI_LOCK_TIMEOUT) == 10 and lock_wait() == 30
    ctx = cli_main.Ctx(str(database), "kpi")
    with ctx.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    ctx.engine.dispose()
    monkeypatch.setenv("EVPIPE_LOCK_TIMEOUT", "2.5")
    assert lock_wait(CLI_LOCK_TIMEOUT) == 2.5
    line = one_line(evpipe("--db", str(database), "add", "X", "--value", "1", env={"EVPIPE_LOCK_TIMEOUT": "soon"})[0])
    assert line == "evpipe: EVPIPE_LOCK_TIMEOUT: 'soon' is not a number of seconds from 0 to 3600 (e.g. 10)"


def test_opening_a_current_database_takes_no_lock(database):
    """The ladder install and the schema upgrade are written only when a read finds them missing."""
    holder = Holder(database)
    try:
        engine = open_db(f"sqlite:///{database}", create=False, lock_timeout=0.2)
        assert [s.name for s in Store(engine).ladder()][:2] == ["Suspect", "Enquiry"]
        with pytest.raises(WriteLocked):
            Store(engine).add("Blocked", "1")
        engine.dispose()
    finally:
        holder.release()


async def test_the_app_says_who_holds_the_lock_when_a_save_fails(database, monkeypatch):
    monkeypatch.setenv("EVPIPE_LOCK_TIMEOUT", "0.5")
    app = EvpipeApp(f"sqlite:///{database}", who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        holder = Holder(database, "an import of big.csv", who="sam")
        try:
            assert app.pipeline is not None and app.pipeline.table.go_to(Store(app.engine).get("Harbour Events").id)
            await pilot.press("greater_than_sign")
            await settle(pilot, rounds=20, until=lambda a: any("Not saved" in n.message for n in a._notifications))
            said = [n.message for n in app._notifications if "Not saved" in n.message]
            assert said == [
                "Not saved: another evpipe is writing to the database (an import of big.csv by sam since 10:00) "
                "and did not finish in time. Your change is undone on screen; press R to try again."
            ]
        finally:
            holder.release()


def test_unsaved_reason_of_a_held_lock():
    exc = WriteLocked("another evpipe is writing to the database (x) and did not finish in time", "line")
    assert unsaved_reason(exc) == exc.reason and str(exc) == "line"


# ---------------------------------------------------------------- point 3: an import's lock


def _rows_csv(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Name", "Value", "Stage", "Expected month", "Owner"])
        for i in range(n):
            stage = ["Suspect", "Enquiry", "Quote sent", "Won", "Lost"][i % 5]
            w.writerow([f"R{i:05d}", f"Event {i}", f"{100 + i % 900}.50", stage, f"2027-{i % 12 + 1:02d}", "jo"])


@pytest.mark.parametrize(
    "phase, meanwhile",
    [
        ("check", ["move", "Harbour Events", "next"]),
        ("write", ["move", "Harbour Events", "next"]),  # other writes: the prepared rows take new ids
        ("write", ["stages", "set", "Enquiry", "12"]),  # the ladder changed: prepared again, under the lock
    ],
)
def test_commands_carry_on_while_an_import_plans_and_prepares(database, tmp_path, phase, meanwhile):
    """Stopped in its planning ("check": reading and checking rows) or preparing ("write": building
    the rows to insert) phase, an import holds no lock: `kpi` and a write in other processes go
    through at once, and the import then writes its rows on the database as it is by then."""
    source = tmp_path / "rows.csv"
    _rows_csv(source, 3000)
    engine = open_db(f"sqlite:///{database}", create=False)
    reached, go_on = threading.Event(), threading.Event()

    def progress(name: str, done: int, total: int) -> None:
        if name == phase and not reached.is_set():
            reached.set()
            assert go_on.wait(HOLD)

    outcome: dict[str, object] = {}

    def run_import() -> None:
        try:
            plan = plan_import(engine, source, ImportOptions(), who="sam", progress=progress)
            outcome["result"] = commit_import(engine, plan, who="sam", progress=progress, chunk=500)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    worker = threading.Thread(target=run_import)
    worker.start()
    try:
        assert reached.wait(HOLD)
        proc, took = evpipe("--db", str(database), "kpi", "--json")
        assert proc.returncode == 0 and json.loads(proc.stdout)["count"] == 2, proc.stderr
        assert took < 15
        proc, took = evpipe("--db", str(database), *meanwhile)
        assert proc.returncode == 0, proc.stderr
        assert took < 15
    finally:
        go_on.set()
        worker.join(HOLD)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].created == 3000
    store = Store(engine)
    if meanwhile[0] == "move":
        assert store.get("Harbour Events").stage_name == "Date held"  # the move made meanwhile is kept
    else:
        assert store.stage("Enquiry").probability_bp == 1200
    assert kpis(engine).count == 2 + 3000 - 600  # the lost ones leave the count
    # the journal is whole: its deltas add up to today's figures, at today's probabilities, and every
    # stage change belongs to its own journal entry's prospect
    assert kpis_by_journal(engine, datetime(1900, 1, 1)) == Kpi()
    with engine.connect() as conn:
        assert fetch_all(
            conn,
            "SELECT count(*) FROM stage_change s JOIN change_event e ON e.id = s.event_id "
            "WHERE e.prospect_id IS NOT s.prospect_id",
        ) == [(0,)]
        assert fetch_all(conn, "SELECT count(*) FROM stage_change WHERE event_id IS NULL") == [(0,)]
    assert not record_path(database).exists()
    engine.dispose()
