"""The command line, run as a user runs it: a real `evpipe` process per command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

EVPIPE = [sys.executable, "-m", "evpipe.tui.cli"]
ROOT = Path(__file__).resolve().parent.parent


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(db: Path, *args: str, ok: bool = True) -> Ran:
    """`evpipe --db DB ARGS...` in-process (Click's runner), as fast as a test can go."""
    from click.testing import CliRunner

    from evpipe.tui.cli import main

    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    proc = Ran(result.exit_code, result.stdout, result.stderr)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def kpi(db: Path, *args: str) -> dict:
    return json.loads(run(db, "kpi", "--json", *args).stdout)


def test_real_process_exit_code_and_stderr(tmp_path):
    """One real process, to prove the console entry point's exit code and streams."""
    run(tmp_path / "x.db", "init")  # a named database is made on purpose (issue 9)
    proc = subprocess.run(
        [*EVPIPE, "--db", str(tmp_path / "x.db"), "add", "X", "--value", "abc"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("evpipe: value: 'abc' is not an amount")


def test_a_command_ends_with_its_database_closed_and_its_output_whole(tmp_path):
    """`evpipe` ends without Python's teardown (tui/cli/main.py `run`, 70 ms a command): what that
    teardown did that matters is still done. The database is closed (SQLite folds its write-ahead
    log back, no -wal file is left beside it), output through a pipe arrives whole, the exit status
    is the command's, and a reader that stops early (`| head`) is no error."""
    db = tmp_path / "x.db"
    run(db, "init")
    for n in range(30):
        run(db, "add", f"Prospect {n}", "--value", "5")
    added = subprocess.run(
        [*EVPIPE, "--db", str(db), "add", "Last", "--value", "7"], capture_output=True, text=True, cwd=ROOT
    )
    assert added.returncode == 0, added.stderr
    assert not (tmp_path / "x.db-wal").exists()
    listed = subprocess.run([*EVPIPE, "--db", str(db), "list", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 31
    missing = subprocess.run([*EVPIPE, "--db", str(tmp_path / "none.db"), "kpi"], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("evpipe: there is no database at")
    head = subprocess.run(
        f"{subprocess.list2cmdline(EVPIPE)} --db {db} list | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert head.returncode == 0 and head.stderr == "" and head.stdout.split()[:2] == ["id", "name"]


def test_a_command_run_with_its_output_closed_ends_as_ever(tmp_path):
    """`evpipe kpi >&-` (a script that closes what it does not read): Python has no stdout then,
    and the end of `run` skips it, as Python's own exit did: the command's status, no traceback."""
    db = tmp_path / "x.db"
    run(db, "init")
    cmd = subprocess.list2cmdline([*EVPIPE, "--db", str(db)])
    for args, closed, status in (
        ("kpi", ">&-", 0),
        ("add X --value 5", ">&-", 0),
        ("nosuch", ">&-", 2),
        ("kpi", "2>&-", 0),
    ):
        proc = subprocess.run(
            f"{cmd} {args} {closed}", shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=ROOT
        )
        assert proc.returncode == status, (args, closed, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout


#: `evpipe ARGS` stopped by ctrl+c while SQLite is in the middle of an import's insert.
_STOPPED_MID_INSERT = """
import sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "do_executemany")
def stop(cursor, statement, parameters, context):
    def rows():
        yield from parameters[:2]
        raise KeyboardInterrupt
    cursor.executemany(statement, rows())

from evpipe.tui.cli import run
sys.argv[0] = "evpipe"
run()
"""


def test_a_command_stopped_by_ctrl_c_in_a_statement_leaves_no_write_ahead_log(tmp_path):
    """ctrl+c in the middle of SQLite's insert: the statement stays open in the traceback (a
    reference cycle), and SQLite closes the connection, folding its -wal file back into the
    database, only once it is freed. Nothing written, and nothing left beside the file."""
    db = tmp_path / "x.db"
    run(db, "init")
    csv = tmp_path / "p.csv"
    csv.write_text("name,value\n" + "".join(f"P{n},{n + 1}\n" for n in range(20)))
    proc = subprocess.run(
        [sys.executable, "-c", _STOPPED_MID_INSERT, "--db", str(db), "import", str(csv), "--commit"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1 and proc.stderr.strip().endswith("Aborted!"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "x.db"]
    assert json.loads(run(db, "list", "--json").stdout) == []


def test_output_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path):
    """What click writes itself (`--version`, `--help`) to a full disk, and a JSON listing started
    with its output closed (`>&-`): one line in words and status 1, as any command's write
    error is; `--help` into a reader that stops at once is no error."""
    db = tmp_path / "x.db"
    run(db, "init")
    cli = subprocess.list2cmdline(EVPIPE)
    for shell, status, said in (
        (f"{cli} --version > /dev/full", 1, "evpipe: No space left on device"),
        (f"{cli} --help > /dev/full", 1, "evpipe: No space left on device"),
        (f"{cli} --db {db} list --json >&-", 1, "evpipe: standard output is closed"),
        (f"{cli} --help | head -c 5 > /dev/null; exit ${{PIPESTATUS[0]}}", 0, ""),
    ):
        proc = subprocess.run(shell, shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == status, (shell, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith(said), (shell, proc.stderr)
        assert len(proc.stderr.splitlines()) == (1 if said else 0), (shell, proc.stderr)


def test_worked_example_through_the_cli(tmp_path):
    db = tmp_path / "w.db"
    run(db, "init")  # creates the database with the default ladder
    run(db, "stages", "add", "Deposit paid 2", "80")
    # Reshape the default ladder into DOMAIN.md's: remove Date held, set the probabilities.
    run(db, "stages", "remove", "Date held")
    run(db, "stages", "remove", "Deposit paid")
    run(db, "stages", "rename", "Deposit paid 2", "Deposit paid")
    names = [s["name"] for s in json.loads(run(db, "stages", "--json").stdout)]
    assert names == ["Suspect", "Enquiry", "Quote sent", "Deposit paid", "Won", "Lost"]
    for name, value, stage in [
        ("A", "10,000", "Quote sent"),
        ("B", "4000", "Suspect"),
        ("C", "6000", "Deposit paid"),
        ("D", "2000", "Won"),
        ("E", "5000", "Enquiry"),
    ]:
        run(db, "add", name, "--value", value, "--stage", stage)
    run(db, "move", "E", "lost", "--reason", "chose a bus")
    data = kpi(db)
    assert data["tv"] == "22000.00"
    assert data["ev"] == "9500.00"
    assert data["ev_tv"] == pytest.approx(0.4318, abs=5e-5)
    assert data["count"] == 4


def test_pipeline_through_add_move_and_stages_set_agrees_with_independent_computation(tmp_path):
    db = tmp_path / "p.db"
    run(db, "init")
    entries = [
        ("Harbour Events", "9,500", "Quote sent", "2027-01"),
        ("Kiwi Kids [Charity]", "2,345.67", "Suspect", "jan 2027"),
        ("Smith & Ngata", "18000", "Date held", "2027-03"),
        ("Café Réunion", "4,999.99", "Enquiry", "2026-12"),
        ("Big shuttle", "45000", "Deposit paid", "2027-02"),
    ]
    for name, value, stage, month in entries:
        run(db, "add", name, "--value", value, "--stage", stage, "--month", month)
    run(db, "move", "Harbour Events", "next")
    run(db, "move", "Café Réunion", "won")
    run(db, "move", "Smith & Ngata", "lost", "--reason", "date clash")
    run(db, "stages", "set", "Suspect", "7.5")
    p = {
        "Suspect": Decimal("0.075"),
        "Enquiry": Decimal("0.10"),
        "Quote sent": Decimal("0.25"),
        "Date held": Decimal("0.50"),
        "Deposit paid": Decimal("0.80"),
        "Won": Decimal(1),
    }
    state = {
        "Harbour Events": (Decimal("9500"), "Date held"),
        "Kiwi Kids [Charity]": (Decimal("2345.67"), "Suspect"),
        "Café Réunion": (Decimal("4999.99"), "Won"),
        "Big shuttle": (Decimal("45000"), "Deposit paid"),
    }
    tv = sum(v for v, _ in state.values())
    ev = sum(v * p[s] for v, s in state.values()).quantize(Decimal("0.01"))
    data = kpi(db)
    assert Decimal(data["tv"]) == tv and Decimal(data["ev"]) == ev
    rows = json.loads(run(db, "list", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(state) | {"Smith & Ngata"}
    assert by_name["Kiwi Kids [Charity]"]["ev"] == "175.93"  # 2345.67 x 7.5 % = 175.92525
    assert by_name["Kiwi Kids [Charity]"]["month"] == "2027-01"
    for key in ("id", "name", "stage", "value", "ev", "month", "owner"):
        assert key in rows[0]
    jan = kpi(db, "--from", "2027-01", "--to", "2027-01")
    assert Decimal(jan["tv"]) == Decimal("9500") + Decimal("2345.67")
    stages = json.loads(run(db, "stages", "--json").stdout)
    assert {"name": "Suspect", "position": 1, "probability": 0.075, "kind": "open"}.items() <= stages[0].items()
    assert [s["kind"] for s in stages][-2:] == ["won", "lost"]
    by_owner = kpi(db, "--by", "owner")
    assert by_owner["rows"][0]["owner"] == "tester" and by_owner["rows"][0]["tv"] == data["tv"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "X", "--value", "-5"], "negative"),
        (["add", "X", "--value", "abc"], "not an amount"),
        (["add", "X", "--value", "10", "--stage", "Nowhere"], "'Nowhere' is not on the ladder"),
        (["add", "X", "--value", "10", "--month", "2027-13"], "no month 13"),
        (["add", "", "--value", "10"], "name: cannot be empty"),
        (["stages", "set", "Enquiry", "150"], "outside 0-100"),
        (["stages", "set", "Nowhere", "10"], "not on the ladder"),
        (["move", "Ghost", "next"], "no prospect is named 'Ghost'"),
        (["move", "Keep", "Nowhere"], "not on the ladder"),
        (["kpi", "--from", "2027-13"], "no month 13"),
        (["follow", "Keep", "31/02/2027"], "February 2027 has 28 days"),
        (["add", "X", "--value", "10", "--owner", " "], "owner: cannot be empty"),
        (["edit", "Keep", "--email", "not an email"], "is not an email address such as name@example.com"),
        # a word starting with a dash is the argument it looks like ("No such option '-1'" before)
        (["stages", "set", "Enquiry", "-1"], "-1% is outside 0-100"),
        (["stages", "add", "Hot", "-1", "--after", "Enquiry"], "-1% is outside 0-100"),
        (["target", "2027-03", "-5"], "'-5' is negative"),
        (["follow", "Keep", "-3d"], "'-3d' is not a date"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message_and_changes_nothing(tmp_path, args, message):
    db = tmp_path / "b.db"
    run(db, "init")
    run(db, "add", "Keep", "--value", "1000", "--stage", "Enquiry")
    before_list = run(db, "list", "--json").stdout
    before_stages = run(db, "stages", "--json").stdout
    proc = run(db, *args, ok=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stderr.startswith("evpipe: ")
    assert "Traceback" not in proc.stderr
    assert run(db, "list", "--json").stdout == before_list
    assert run(db, "stages", "--json").stdout == before_stages


def test_a_note_may_start_with_a_dash_and_a_misspelt_option_is_still_refused(tmp_path):
    db = tmp_path / "n.db"
    run(db, "init")
    run(db, "add", "Keep", "--value", "1000")
    assert "note logged" in run(db, "log", "Keep", "note", "-5% agreed").stdout
    assert "note logged" in run(db, "log", "Keep", "note", "- left a voicemail", "--when", "yesterday").stdout
    with sqlite3.connect(db) as conn:
        texts = {text for (text,) in conn.execute("SELECT text FROM activity")}
    assert texts == {"-5% agreed", "- left a voicemail"}
    proc = run(db, "target", "2027-03", "--jsn", ok=False)
    assert proc.returncode == 2 and "No such option '--jsn'" in proc.stderr
    assert run(db, "target", "--json").stdout.strip() == "[]"


def test_undo_through_the_cli(tmp_path):
    db = tmp_path / "u.db"
    run(db, "init")
    run(db, "add", "A", "--value", "10000", "--stage", "Quote sent")
    before = kpi(db)
    out = run(db, "move", "A", "next").stdout
    assert "Quote sent -> Date held, EV +2,500" in out
    assert kpi(db)["ev"] == "5000.00"
    assert "undo" in run(db, "undo").stdout
    assert kpi(db) == before
    run(db, "undo")  # the add
    assert kpi(db)["count"] == 0
    proc = run(db, "undo", ok=False)
    assert proc.returncode == 1 and "no change left to undo" in proc.stderr


def test_seed_loads_the_demo_and_refuses_a_second_time(tmp_path):
    db = tmp_path / "d.db"
    assert "40 prospects" in run(db, "seed").stdout
    data = kpi(db)
    assert data["count"] == 37  # 40 less the 3 lost
    proc = run(db, "seed", ok=False)
    assert proc.returncode == 1 and "has prospects already" in proc.stderr
    rows = json.loads(run(db, "list", "--json").stdout)
    names = {r["name"] for r in rows}
    assert any("[" in n for n in names) and any("&" in n for n in names) and any("é" in n for n in names)
    won = [r for r in rows if r["kind"] == "won"]
    lost = [r for r in rows if r["kind"] == "lost"]
    assert len(won) == 5 and len(lost) == 3


def test_demo_months_are_relative_to_today(tmp_path, monkeypatch):
    db1, db2 = tmp_path / "1.db", tmp_path / "2.db"
    run(db1, "seed")
    monkeypatch.setenv("EVPIPE_NOW", "2027-06-10T09:00:00")
    run(db2, "seed")
    m1 = sorted(r["month"] for r in json.loads(run(db1, "list", "--json").stdout) if r["kind"] == "open")
    m2 = sorted(r["month"] for r in json.loads(run(db2, "list", "--json").stdout) if r["kind"] == "open")
    assert m1[0] >= "2026-11" and m2[0] >= "2027-06"
    assert len(m1) == len(m2)


def test_a_pinned_clock_that_is_no_date_is_one_line(tmp_path, monkeypatch):
    """EVPIPE_NOW pins the clock (demos, reproducible figures); a value that is no date is said in one line."""
    db = tmp_path / "c.db"
    run(db, "init")
    monkeypatch.setenv("EVPIPE_NOW", "next tuesday")
    proc = run(db, "kpi", ok=False)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "evpipe: EVPIPE_NOW is not a date or a date and time (YYYY-MM-DD[THH:MM]): 'next tuesday'"
    )


@pytest.mark.parametrize("pinned", ["1900-01-01", "9999-12-31T23:59:59"])
def test_a_pinned_clock_outside_the_years_evpipe_takes_is_one_line(tmp_path, monkeypatch, pinned):
    """A year evpipe takes no date in (1990 to 2100) stopped focus, review, forecast and a move with a
    traceback (the months around it overflow or are refused deep inside); it is said in one line."""
    db = tmp_path / "c.db"
    run(db, "init")
    run(db, "add", "Harbour Events", "--value", "6000")
    monkeypatch.setenv("EVPIPE_NOW", pinned)
    for command in (["focus"], ["review"], ["forecast"], ["move", "Harbour", "next"]):
        proc = run(db, *command, ok=False)
        assert proc.returncode == 1, (command, proc.stderr)
        year = int(pinned[:4])
        assert proc.stderr.strip() == (
            f"evpipe: EVPIPE_NOW is in the year {year}; evpipe takes dates from 1990 to 2100: {pinned!r}"
        ), command


def test_env_var_selects_the_database(tmp_path):
    db = tmp_path / "env.db"
    env = dict(os.environ, EVPIPE_DB=str(db))
    subprocess.run([*EVPIPE, "init"], check=True, env=env, cwd=ROOT, capture_output=True)
    subprocess.run([*EVPIPE, "add", "Via env", "--value", "5"], check=True, env=env, cwd=ROOT, capture_output=True)
    assert kpi(db)["tv"] == "5.00"


def test_default_database_lives_in_the_data_directory_and_is_private(tmp_path):
    proc = subprocess.run([*EVPIPE, "add", "Default", "--value", "5"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    path = Path(os.environ["XDG_DATA_HOME"]) / "evpipe" / "evpipe.db"
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_app_without_a_terminal_says_so_instead_of_hanging(tmp_path):
    proc = subprocess.run(
        [*EVPIPE, "--db", str(tmp_path / "t.db")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "the app needs a terminal" in proc.stderr
