"""What a hostile or careless command line got as a Python traceback, or silently did elsewhere:
each is now one line on stderr (`evpipe: ...`), exit code 1, and nothing written."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evpipe.models.store import Store
from evpipe.tui.cli import main


def one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evpipe: "), result.stderr
    return lines[0]


def names_and_stages(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT p.name, s.name FROM prospect p JOIN stage s ON s.id = p.stage_id WHERE p.deleted_at IS NULL"
        ).fetchall()


@pytest.fixture
def seeded(engine, db_path) -> Path:
    Store(engine, who="tester").add("Harbour Events", "6000", "Quote sent")
    return db_path


@pytest.mark.parametrize("ref", ["99999999999999999999999", "#99999999999999999999", "¹", "①", "²³"])
@pytest.mark.parametrize(
    "command",
    [
        ["move", "{ref}", "next"],
        ["delete", "{ref}"],
        ["edit", "{ref}", "--value", "5"],
        ["journal", "--prospect", "{ref}"],
    ],
)
def test_an_id_too_large_or_in_superscript_names_no_prospect(seeded, ref, command):
    """A number beyond a database integer stopped with OverflowError; `¹` and `①`, digits to
    str.isdigit but not to int(), with ValueError."""
    args = ["--db", str(seeded), *(a.format(ref=ref) for a in command)]
    line = one_line_error(args)
    assert "no prospect" in line
    assert names_and_stages(seeded) == [("Harbour Events", "Quote sent")]


def test_arabic_indic_digits_still_name_an_id(seeded):
    result = CliRunner().invoke(main, ["--db", str(seeded), "move", "١", "next"])
    assert result.exit_code == 0, result.stderr
    assert "Harbour Events" in result.stdout


def test_bytes_that_are_not_utf8_are_said_before_anything_is_done(seeded):
    """A name, an owner or EVPIPE_USER in another encoding (Latin-1 over an old terminal) reached
    SQLite as lone surrogates: UnicodeEncodeError."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cli = [sys.executable, "-m", "evpipe.tui.cli", "--db", str(seeded)]
    for args in ([b"add", b"Caf\xe9 party", b"--value", b"100"], [b"move", b"\xff", b"next"]):
        done = subprocess.run([*cli, *args], env=env, capture_output=True)
        err = done.stderr.decode()
        assert done.returncode == 1 and "Traceback" not in err, err
        assert err.startswith("evpipe: b'") and "is not UTF-8 text" in err and err.count("\n") == 1, err
    garbled = subprocess.run(
        [*cli, b"list"],
        env={**{k.encode(): v.encode() for k, v in env.items()}, b"EVPIPE_USER": b"\xff"},
        capture_output=True,
    )
    assert garbled.returncode == 1 and b"is not UTF-8 text" in garbled.stderr
    assert names_and_stages(seeded) == [("Harbour Events", "Quote sent")]


def test_an_empty_db_is_refused_not_the_data_directory(tmp_path):
    """`--db ''` (a script's unset variable) and `init ''` used the user's own pipeline in the data
    directory."""
    data = Path(os.environ["XDG_DATA_HOME"])
    assert "--db is empty" in one_line_error(["--db", "", "add", "Z", "--value", "5"])
    assert "--db is empty" in one_line_error(["--db", " ", "list"])
    assert "the path is empty" in one_line_error(["init", ""])
    assert not any(data.rglob("*.db")) if data.exists() else True


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://x/y", "mysql:// is neither"),
        ("oracle://a", "oracle:// is neither"),
        ("mssql+pyodbc://a", "mssql+pyodbc:// is neither"),
        ("http://x", "http:// is neither"),
        ("postgresql+asyncpg://x/y", "needs the Python module asyncpg"),
    ],
)
def test_a_database_url_evpipe_cannot_use_is_one_line(url, said):
    """A driver that is not installed stopped with ModuleNotFoundError."""
    assert said in one_line_error(["--db", url, "list"])


@pytest.mark.parametrize(("encoding", "hint"), [("utf-16", "utf-16-le"), ("utf-32", "utf-32-le"), ("idna", "cp1252")])
def test_an_encoding_that_refuses_the_whole_file_is_one_line(seeded, tmp_path, encoding, hint):
    """UTF-16 and UTF-32 read only a file that starts with its byte order, and idna no file at all:
    UnicodeError, not UnicodeDecodeError, went through as a traceback."""
    path = tmp_path / "latin.csv"
    path.write_bytes("Name,Value\nCafé,100\n".encode("latin-1"))
    line = one_line_error(["--db", str(seeded), "import", str(path), "--encoding", encoding, "--commit"])
    assert "is not" in line and f"--encoding {hint}" in line


def test_a_full_disk_is_said_as_full_not_as_a_damaged_database(tmp_path, monkeypatch):
    """SQLite says "disk I/O error" when its -wal or -shm file cannot grow on a full disk; that was
    read as a damaged file, with the advice to restore a backup over an intact database."""
    import shutil
    from collections import namedtuple

    from evpipe.models.errors import database_failure

    db = tmp_path / "live.db"
    db.touch()
    error = sqlite3.OperationalError("disk I/O error")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(400_000, 400_000, 0))
    line = database_failure(error, db)
    assert line is not None and "is full" in line and "damaged" not in line
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**12, 10**9, 10**12 - 10**9))
    line = database_failure(error, db)
    assert line is not None and "is damaged" in line


@pytest.mark.parametrize(
    "command",
    [
        ["init", "{new}"],
        ["--db", "{new}", "seed"],
        ["--db", "{new}", "restore", "{dump}"],
        ["migrate", "--to", "{new}"],
    ],
    ids=["init", "seed", "restore", "migrate"],
)
def test_a_new_database_the_disk_had_no_room_for_is_named_and_not_left(seeded, tmp_path, monkeypatch, command):
    """The disk filled while a new file was made (SQLite's "disk I/O error" as its -wal or -shm
    cannot grow): `init PATH` called the database of EVPIPE_DB damaged and to be restored from a
    backup, and init, seed, restore and migrate (whose copy is "all or nothing") left the half-made
    file, which then passed for a database."""
    import shutil
    from collections import namedtuple

    from evpipe.models import db as db_module

    dump = tmp_path / "d.json"
    CliRunner().invoke(main, ["--db", str(seeded), "dump", str(dump)], catch_exceptions=False)
    new = tmp_path / "new" / "made.db"
    new.parent.mkdir()
    monkeypatch.setenv("EVPIPE_DB", str(seeded))

    def no_room(engine):
        raise sqlite3.OperationalError("disk I/O error")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(db_module, "upgrade", no_room)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(400_000, 400_000, 0))
    line = one_line_error([a.format(new=new, dump=dump) for a in command])
    assert str(new) in line and "is full" in line, line
    assert str(seeded) not in line and "damaged" not in line, line
    assert sorted(p.name for p in new.parent.iterdir()) == []


def test_an_empty_follow_up_date_is_refused_not_taken_for_none(seeded):
    """`evpipe follow P "$DATE"` with DATE unset cleared the follow-up, its time and its note, and
    said so as if asked; `none` is the word for that."""
    args = ["--db", str(seeded)]
    CliRunner().invoke(main, [*args, "follow", "Harbour", "fri", "--time", "2pm", "--note", "call back"])
    for empty in ("", "  "):
        line = one_line_error([*args, "follow", "Harbour", empty])
        assert "the date is empty" in line and "none" in line
    with sqlite3.connect(seeded) as conn:
        assert conn.execute("SELECT next_follow_up IS NOT NULL FROM prospect").fetchone() == (1,)
    result = CliRunner().invoke(main, [*args, "follow", "Harbour", "none"])
    assert result.exit_code == 0 and "next follow-up none" in result.stdout


def test_an_in_memory_database_is_refused_not_written_and_lost():
    """`--db sqlite://` said "#1 Vanish: added", and the prospect was gone with the command."""
    for url in ("sqlite://", "sqlite:///:memory:"):
        assert "is a database in memory" in one_line_error(["--db", url, "add", "Vanish", "--value", "5"])


def test_a_line_break_in_a_one_line_field_parts_the_words(seeded):
    """A name with a newline (pasted, or a CSV cell) lost it with nothing between: "a\\nb" -> "ab"."""
    from evpipe.models.values import clean_text

    assert clean_text("Harbour\nEvents\r\nparty", field="name", max_len=200) == "Harbour Events party"
    assert clean_text("first line\nsecond", field="notes", max_len=5000) == "first line\nsecond"
    result = CliRunner().invoke(main, ["--db", str(seeded), "add", "Kauri\nSoftware", "--value", "100"])
    assert result.exit_code == 0, result.stderr
    assert ("Kauri Software", "Suspect") in names_and_stages(seeded)


def test_none_clears_an_expected_month_as_it_clears_a_follow_up(engine, db_path):
    """`edit --month none` was refused ("'none' is not a month"); only --month "" cleared it,
    which edit --help did not say. The words that clear a follow-up clear a month too."""
    from click.testing import CliRunner

    from evpipe.models.store import Store
    from evpipe.tui.cli import main

    store = Store(engine, who="tester")
    store.add("Kauri", "1000", "Suspect")
    for word in ("none", "clear", "-", ""):
        store.edit("Kauri", month="2027-03")
        done = CliRunner().invoke(main, ["--db", str(db_path), "edit", "Kauri", "--month", word])
        assert done.exit_code == 0, done.output
        assert store.get("Kauri").expected_month is None, word
    assert "none to clear it" in CliRunner().invoke(main, ["edit", "--help"]).output


def test_a_time_or_note_with_a_follow_up_cleared_is_refused_not_dropped(engine, db_path):
    """`follow X none --time 2pm` cleared the follow-up and dropped the time without a word."""
    from click.testing import CliRunner

    from evpipe.models.store import Store
    from evpipe.tui.cli import main

    store = Store(engine, who="tester")
    store.add("Kauri", "1000", "Suspect", follow_up="2026-12-24")
    for extra in (["--time", "2pm"], ["--note", "call back"]):
        done = CliRunner().invoke(main, ["--db", str(db_path), "follow", "Kauri", "none", *extra])
        assert done.exit_code == 1 and "give a date for --time or --note" in done.output + done.stderr, done.output
        assert "Traceback" not in done.output
    assert store.get("Kauri").next_follow_up is not None  # nothing changed
    done = CliRunner().invoke(main, ["--db", str(db_path), "follow", "Kauri", "none"])
    assert done.exit_code == 0 and store.get("Kauri").next_follow_up is None
