"""Backup (SQLite online backup, safe while someone writes), and dump -> restore -> dump exactly."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from evpipe.models import open_db
from evpipe.models.backup import backup, dump, dump_to_file, read_dump, restore
from evpipe.models.errors import DomainError
from evpipe.models.exporter import export
from evpipe.models.history import record_snapshot
from evpipe.models.kpi import kpis, kpis_by
from evpipe.models.store import Store
from evpipe.models.tables import Prospect


def _figures(engine):
    return kpis(engine), kpis_by(engine, "month"), kpis_by(engine, "stage"), kpis_by(engine, "owner")


def _rich(engine) -> None:
    """A database with something in every table: deleted and undone changes, activities, a ladder
    edit, a probability change, snapshots and a setting."""
    store = Store(engine)
    store.add("Harbour [x]", "12000", "Quote sent", month="2027-01", custom={"Boat": "Aurora"}, follow_up="2026-12-04")
    store.add("Gone", "100", "Suspect")
    store.delete("Gone")
    store.add("Won one", "5000", "Enquiry")
    store.move("Won one", "won")
    store.add("Lost one", "700", "Suspect")
    store.move("Lost one", "lost", reason="price")
    store.log_activity("Harbour [x]", "call", "spoke to Jo, 'keen'")
    store.set_probability("Quote sent", "30")
    store.add_stage("Contract", "90")
    store.edit("Harbour [x]", value="13,000.50")
    store.undo()
    record_snapshot(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO setting (key, value) VALUES ('theme', 'dark')")


@pytest.mark.both_databases
def test_dump_restore_dump_is_identical(engine, tmp_path, new_db_url):
    _rich(engine)
    path = tmp_path / "all.json"
    counts = dump_to_file(engine, path)
    assert counts["prospect"] == 4 and counts["activity"] == 1 and counts["kpi_snapshot"] >= 1
    target = open_db(new_db_url("restored.db"))  # a new database, with the default ladder
    restore(target, read_dump(path))
    assert dump(target) == dump(engine)
    assert _figures(target) == _figures(engine)
    again = tmp_path / "again.json"
    dump_to_file(target, again)
    assert again.read_bytes() == path.read_bytes()
    # ids, deleted prospects and the journal came back as they were
    with target.connect() as conn:
        gone = conn.execute(select(Prospect.id, Prospect.deleted_at).where(Prospect.name == "Gone")).one()
    assert gone.id == 2 and gone.deleted_at is not None
    # and the restored database works: undo continues from where the original was
    assert Store(target).undo().summary == Store(engine).undo().summary  # who: the login, or the role
    # and new rows continue after the restored ids (PostgreSQL's sequences were set past them)
    assert Store(target, who="tester").add("Next", "1", "Suspect").prospect.id == 5
    target.dispose()


def test_restore_refuses_a_database_with_data(engine, tmp_path):
    _rich(engine)
    data = dump(engine)
    other = open_db(f"sqlite:///{tmp_path / 'other.db'}")
    Store(other).add("Mine", "10", "Suspect")
    before = dump(other)
    with pytest.raises(DomainError, match=r"this database is not empty \(1 prospect rows, 1 change event rows"):
        restore(other, data)
    assert dump(other) == before
    restore(other, data, force=True)
    assert dump(other) == data


def test_restore_rejects_bad_dumps(engine, tmp_path):
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DomainError, match="x.json is not valid JSON"):
        read_dump(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"hello": 1}), encoding="utf-8")
    with pytest.raises(DomainError, match="y.json is not an evpipe dump"):
        read_dump(tmp_path / "y.json")
    data = dump(engine)
    data["schema"] = "9999"
    with pytest.raises(DomainError, match="schema '9999'"):
        restore(engine, data)
    # a dump whose rows point at rows that do not exist restores nothing
    _rich(engine)
    broken = dump(engine)
    broken["tables"]["stage"]["rows"] = broken["tables"]["stage"]["rows"][:2]
    target = open_db(f"sqlite:///{tmp_path / 't.db'}")
    before = dump(target)
    with pytest.raises(DomainError, match="inconsistent"):
        restore(target, broken)
    assert dump(target) == before


def _edited(data: dict, table: str, column: str, value: object, row: int = 0) -> dict:
    """A copy of a dump with one value changed by hand (None: the column left out of every row)."""
    copy = json.loads(json.dumps(data))
    spec = copy["tables"][table]
    at = spec["columns"].index(column)
    if value is None:
        spec["columns"].pop(at)
        for r in spec["rows"]:
            r.pop(at)
    else:
        spec["rows"][row][at] = value
    return copy


@pytest.mark.parametrize(
    ("table", "column", "value", "said"),
    [
        ("prospect", "value_cents", "abc", "prospect row 1, value_cents: 'abc' is not a whole number"),
        ("prospect", "value_cents", 10**30, "is not a whole number (at most 19 digits)"),
        ("prospect", "value_cents", 12.5, "is not a whole number"),
        (
            "prospect",
            "created_at",
            "2026-02-30T10:00:00",
            "prospect row 1, created_at: '2026-02-30T10:00:00' is not a moment",
        ),
        ("prospect", "next_follow_up", 20261127, "is not a date"),
        ("prospect", "name", 42, "prospect row 1, name: '42' is not a text"),
        ("prospect", "name", None, "leaves out a value it must have"),
        ("stage", "probability_bp", None, "leaves out a value it must have"),
        # each of these restored, then export, edit, journal or the KPIs stopped with a traceback
        # or showed a figure evpipe never writes
        ("prospect", "name", "\ud800x", r"prospect row 1, name: '\ud800x' is not a text"),
        ("prospect", "custom_json", "{not json", "custom_json: '{not json' is not a JSON object of text fields"),
        ("prospect", "custom_json", "[1, 2]", "is not a JSON object of text fields"),
        ("prospect", "custom_json", '{"a": 1}', "is not a JSON object of text fields"),
        ("change_event", "payload", "[]", "change_event row 1, payload: '[]' is not a JSON object"),
        ("prospect", "value_cents", -100, "prospect row 1, value_cents: -100 is not an amount evpipe takes"),
        ("stage", "probability_bp", 999_999, "stage row 1, probability_bp: 999999 is not a probability"),
        ("prospect", "expected_month", "2027-13", "prospect row 1, expected_month: '2027-13' is not a month"),
        ("prospect", "expected_month", "March", "prospect row 1, expected_month: 'March' is not a month"),
        ("kpi_snapshot_month", "month", "2027-00", "kpi_snapshot_month row 1, month: '2027-00' is not a month"),
        # no way in lets an escape code in; restored, they reached the CSV export as they were
        ("prospect", "name", "Acme \x1b[31mred", r"prospect row 1, name: 'Acme \x1b[31mred' holds an escape code"),
        ("prospect", "notes", "a\x07b", r"prospect row 1, notes: 'a\x07b' holds an escape code or a control"),
        # a name add and edit refuse: no screen could name the prospect
        ("prospect", "name", "   ", "prospect row 1, name: cannot be empty; nothing was restored"),
        ("prospect", "name", "x" * 201, "prospect row 1, name: is 201 characters long; the most is 200"),
    ],
)
def test_a_dump_edited_by_hand_is_checked_value_by_value(engine, tmp_path, table, column, value, said):
    """A hand-edited dump restored "abc" as an amount (list, export and forecast then failed),
    stopped with a traceback on a bad date or a number too large, and a left-out name was
    "rows point at rows that do not exist". Each says which row and column, and nothing is restored."""
    _rich(engine)
    data = _edited(dump(engine), table, column, value)
    target = open_db(f"sqlite:///{tmp_path / 't.db'}")
    before = dump(target)
    with pytest.raises(DomainError, match=re.escape(said)):
        restore(target, data)
    assert dump(target) == before


def test_json_nested_too_deep_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(DomainError, match="deep.json nests its JSON deeper than any dump does"):
        read_dump(tmp_path / "deep.json")


def test_shared_snapshot_months_restore_exactly_and_a_stray_one_is_refused(engine, tmp_path):
    # A rebuilt history writes each repeated set of months once (kpi_snapshot.months_of): a dump
    # restores it as it was, and a hand-edited months_of that names no holder restores nothing.
    from evpipe.models import clock
    from evpipe.models.history import backfill

    Store(engine).add("Old", "1000", "Enquiry", at=clock.now() - timedelta(days=60))
    assert backfill(engine) >= 8
    data = dump(engine)
    spec = data["tables"]["kpi_snapshot"]
    at = spec["columns"].index("months_of")
    sharing = [n for n, r in enumerate(spec["rows"]) if r[at] is not None]
    assert len(sharing) >= 6
    target = open_db(f"sqlite:///{tmp_path / 't.db'}")
    restore(target, data)
    assert dump(target) == data
    for stray in (10**6, spec["rows"][sharing[-1]][0]):  # no such snapshot; one that has another's months
        edited = _edited(data, "kpi_snapshot", "months_of", stray, row=sharing[0])
        other = open_db(f"sqlite:///{tmp_path / f'{stray}.db'}")
        before = dump(other)
        with pytest.raises(DomainError, match="has the months of a snapshot that does not hold its own"):
            restore(other, edited)
        assert dump(other) == before


def test_backup_while_another_connection_writes(engine, db_path, tmp_path):
    _rich(engine)
    stop = threading.Event()
    written = []

    def keep_writing():
        conn = sqlite3.connect(db_path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        i = 0
        while not stop.is_set():
            i += 1
            conn.execute("INSERT INTO setting (key, value) VALUES (?, ?)", (f"k{i}", "x" * 2000))
            conn.commit()
            written.append(i)
        conn.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 50:
            time.sleep(0.01)
        dest = backup(str(engine.url), tmp_path / "copy.db")
    finally:
        stop.set()
        writer.join()
    copy = sqlite3.connect(dest)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    keys = {k for (k,) in copy.execute("SELECT key FROM setting WHERE key LIKE 'k%'")}
    copy.close()
    # a consistent copy: every write up to some point, none half-done
    n = len(keys)
    assert n >= 50 and keys == {f"k{i}" for i in range(1, n + 1)}
    restored = open_db(f"sqlite:///{dest}")
    assert kpis(restored) == kpis(engine)


def test_backup_refuses_to_overwrite(engine, tmp_path):
    dest = tmp_path / "copy.db"
    backup(str(engine.url), dest)
    with pytest.raises(DomainError, match="exists; choose another name or add --force"):
        backup(str(engine.url), dest)
    backup(str(engine.url), dest, force=True)
    with pytest.raises(DomainError, match="is the database itself"):
        backup(str(engine.url), engine.url.database, force=True)


def _targets(db: Path, tmp_path: Path, suffix: str) -> list[Path]:
    """Where no output may go, even with --force, for the database file `db`: itself, its
    working files, a hard link to it, a named pipe, a device."""
    os.link(db, tmp_path / f"link{suffix}")
    os.mkfifo(tmp_path / f"pipe{suffix}")
    named = [Path(f"{db}{s}") for s in ("-wal", "-shm", "-journal")] if not suffix else []
    return [db, *named, tmp_path / f"link{suffix}", tmp_path / f"pipe{suffix}", Path("/dev/null")]


@pytest.mark.parametrize("write", ["backup", "dump", "export"])
def test_no_output_goes_over_the_database_or_a_device(tmp_path, write):
    """`dump` and `export` with --force once wrote over the database itself, and `backup` over its
    -wal file (committed changes lost, the database then damaged); --force also replaced a device
    or a named pipe with a plain file. Each is refused, and the database is as it was."""
    db = tmp_path / ("pipeline.xlsx" if write == "export" else "pipeline.db")
    engine = open_db(f"sqlite:///{db}")
    Store(engine, who="tester").add("Keep me", "100", "Suspect")
    suffix = ".csv" if write == "export" else ""
    for target in _targets(db, tmp_path, suffix):
        if target == Path("/dev/null") and write == "export":
            continue  # (an export's name must end in .csv: said before any of these checks)
        with pytest.raises(DomainError, match="is the database itself|is not a plain file"):
            if write == "backup":
                backup(str(engine.url), target, force=True)
            elif write == "dump":
                dump_to_file(engine, target, force=True)
            else:
                export(engine, target, force=True)
    engine.dispose()
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [name for (name,) in check.execute("SELECT name FROM prospect")] == ["Keep me"]
    check.close()
    assert (tmp_path / f"pipe{suffix}").is_fifo() and Path("/dev/null").is_char_device()


@pytest.mark.parametrize("write", ["backup", "dump"])
def test_no_output_replaces_another_database_in_use(engine, tmp_path, write):
    """`backup OTHER.db --force` moved the copy over another SQLite database someone had open: their
    committed changes in OTHER.db-wal were lost, and SQLite then read that -wal into the new copy,
    which was damaged ("Backed up", but malformed). Refused while a -wal or -journal is beside it."""
    _rich(engine)
    other = tmp_path / "other.db"
    theirs = open_db(f"sqlite:///{other}")
    Store(theirs, who="tester").add("Theirs", "100", "Suspect")
    theirs.dispose()
    held = sqlite3.connect(other)
    held.execute("PRAGMA wal_autocheckpoint=0")
    held.execute("UPDATE prospect SET notes = 'kept'")
    held.commit()
    assert Path(f"{other}-wal").stat().st_size > 0
    with pytest.raises(DomainError, match=r"is an SQLite database in use.*other\.db-wal"):
        if write == "backup":
            backup(str(engine.url), other, force=True)
        else:
            dump_to_file(engine, other, force=True)
    held.close()
    check = sqlite3.connect(other)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert check.execute("SELECT name, notes FROM prospect").fetchall() == [("Theirs", "kept")]
    check.close()
    assert not Path(f"{other}-wal").exists()
    backup(str(engine.url), other, force=True)  # closed by all: --force replaces it
    assert kpis(open_db(f"sqlite:///{other}")) == kpis(engine)


def test_a_failed_restore_into_a_new_file_leaves_no_file(engine, tmp_path):
    """`restore BAD.json` with --db naming a new file said "nothing was restored", but left that
    file behind as an empty evpipe database."""
    from click.testing import CliRunner

    from evpipe.tui.cli import main

    _rich(engine)
    data = dump(engine)
    data["tables"]["prospect"]["rows"][0][data["tables"]["prospect"]["columns"].index("name")] = None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    new = tmp_path / "new.db"
    result = CliRunner().invoke(main, ["--db", str(new), "restore", str(bad)])
    assert result.exit_code == 1 and "nothing was restored" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")] == []


def test_a_dash_is_standard_output_for_dump_and_standard_input_for_restore(engine, tmp_path, monkeypatch):
    """`evpipe dump -` wrote a file named `-` where it ran: `-` is standard output (the JSON alone
    there, what was done said on stderr), and `restore -` reads standard input. backup and import
    take no `-` (they wrote and read a file of that name), and `./-` is still a file named `-`."""
    from click.testing import CliRunner

    from evpipe.tui.cli import main

    _rich(engine)
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.chdir(tmp_path)
    dumped = CliRunner().invoke(main, ["--db", url, "dump", "-"])
    assert dumped.exit_code == 0, dumped.output
    assert not Path("-").exists()
    dump_to_file(engine, tmp_path / "all.json")
    assert dumped.stdout_bytes == (tmp_path / "all.json").read_bytes()
    assert dumped.stderr.startswith("Dumped 4 prospects,") and "to standard output." in dumped.stderr

    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = CliRunner().invoke(main, ["--db", target, "restore", "-"], input=dumped.stdout_bytes)
    assert restored.exit_code == 0, restored.output
    assert "from standard input." in restored.stdout
    again = open_db(target)
    assert dump(again) == dump(engine)
    again.dispose()
    # nothing piped in: said so, in one line
    empty = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'empty.db'}", "restore", "-"], input=b"\n")
    assert empty.exit_code == 1
    assert empty.stderr == "evpipe: restore: standard input is empty; a dump is a file written by `evpipe dump`\n"

    for command in ("backup", "import"):
        refused = CliRunner().invoke(main, ["--db", url, command, "-"])
        assert refused.exit_code == 1 and not Path("-").exists()
        assert len(refused.stderr.strip().splitlines()) == 1 and "standard" in refused.stderr, refused.stderr
    named = CliRunner().invoke(main, ["--db", url, "dump", "./-"])
    assert named.exit_code == 0 and read_dump(tmp_path / "-") == dump(engine)
