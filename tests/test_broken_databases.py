"""Issue 15, point 7: broken, locked or foreign databases. Every command gives one line naming the
file and the next step (exit code 1, no traceback, the file left as it was), and the app says the
same on screen instead of crashing or showing an empty pipeline.

`BAD_FILES` is the one table of bad files; the command line test, the app test and (for the
permission cases, as the `nobody` account when the tests run as root) the real-process test all
read it. A full disk is simulated with SQLite's own limit, `PRAGMA max_page_count` set to the
file's size on every connection of the evpipe process (a class-wide SQLAlchemy listener in a small
wrapper), which works anywhere, needs no root and no mount: SQLite then fails a write that needs
one more page exactly as on a full disk ("database or disk is full"). Damaged bytes at random
offsets of a real database are fuzzed with hypothesis."""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from apphelpers import screen_text
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpipe.models import locations, open_db
from evpipe.models.demo import load_demo
from evpipe.models.rawdb import HEAD
from evpipe.tui.app import EvpipeApp
from evpipe.tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
CRM = ROOT / "tests" / "fixtures" / "crm"
app_module = importlib.import_module("evpipe.tui.app")


# ---------------------------------------------------------------- a real database to break


@pytest.fixture(scope="module")
def real_bytes(tmp_path_factory) -> bytes:
    """A real evpipe database (the demo pipeline, with its history), closed and checkpointed."""
    path = tmp_path_factory.mktemp("template") / "real.db"
    engine = open_db(f"sqlite:///{path}")
    load_demo(engine)
    engine.dispose()
    gc.collect()
    assert not Path(f"{path}-wal").exists()
    return path.read_bytes()


def _real(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _page_of(data: bytes, table: str) -> int:
    """The root page (1-based) of `table` in the database `data`."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        copy.write_bytes(data)
        connection = sqlite3.connect(copy.as_uri() + "?mode=ro&immutable=1", uri=True)
        try:
            (root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        finally:
            connection.close()
    return int(root)


# ---------------------------------------------------------------- the table of bad files


def random_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(random.Random(15).randbytes(8192))


def cut_in_half(path: Path, data: bytes) -> None:
    path.write_bytes(data[: len(data) // 2])


def damaged_pages(path: Path, data: bytes) -> None:
    """The pages of the prospects' table overwritten with noise (a disk that failed under them)."""
    page = 4096
    root = _page_of(data, "prospect")
    broken = bytearray(data)
    broken[(root - 1) * page : root * page] = random.Random(7).randbytes(page)
    path.write_bytes(bytes(broken))


def bad_header(path: Path, data: bytes) -> None:
    """The right first 16 bytes, then a page size that cannot be."""
    broken = bytearray(data)
    broken[16:18] = (3).to_bytes(2, "big")
    path.write_bytes(bytes(broken))


def text_file(path: Path, data: bytes) -> None:
    path.write_text("name,value\nHarbour,9500\n", encoding="utf-8")


def zero_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(b"")


def newer_schema(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = '0099'")
    connection.commit()
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()


def another_application(path: Path, data: bytes) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO photos (name) VALUES ('beach.jpg')")
    connection.commit()
    connection.close()


def a_directory(path: Path, data: bytes) -> None:
    path.mkdir()


def a_named_pipe(path: Path, data: bytes) -> None:
    """A FIFO (a typo'd --db on one, or a device such as /dev/null): reading its head waited for a
    writer forever; /dev/null read as an empty file, which `evpipe init` was offered to make."""
    os.mkfifo(path)


@dataclass(frozen=True)
class Bad:
    make: Callable[[Path, bytes], None]
    says: tuple[str, ...]  # each in the line, `{p}` standing for the file
    #: who may not do what: ("file" | "folder", "r" | "w") for the permission cases
    denied: tuple[str, str] | None = None
    #: a damaged page may lie where a command does not read: then it works; otherwise one line
    may_work: bool = False


DAMAGED = ("{p} is damaged", "PRAGMA integrity_check", "restore it from a backup")

BAD_FILES: dict[str, Bad] = {
    "random bytes": Bad(random_bytes, ("{p} is not a database (not an SQLite file)", "check the path")),
    "cut in half": Bad(cut_in_half, (*DAMAGED, "cut short")),
    "damaged pages": Bad(damaged_pages, DAMAGED, may_work=True),
    "bad header": Bad(bad_header, (*DAMAGED, "file is not a database")),
    "a text file": Bad(text_file, ("{p} is not a database (not an SQLite file)",)),
    "0 bytes": Bad(zero_bytes, ("{p} is an empty file, not an evpipe database", "evpipe init")),
    "a newer schema": Bad(newer_schema, ("{p} was written by a newer evpipe (schema 0099", HEAD, "upgrade evpipe")),
    "another application's database": Bad(another_application, ("{p} is an SQLite database but not evpipe's",)),
    "a directory": Bad(a_directory, ("{p} is a folder, not a database file", "evpipe init")),
    "a named pipe": Bad(a_named_pipe, ("{p} is not a file but a device, a named pipe or a socket",)),
    "a read-only file": Bad(_real, ("{p} is read-only", "chmod u+w"), denied=("file", "w")),
    "a read-only folder": Bad(_real, ("cannot write in the folder", "{p.name}"), denied=("folder", "w")),
    "an unreadable file": Bad(_real, ("cannot read {p} (permission denied)", "chmod u+rw"), denied=("file", "r")),
}

COMMANDS = [
    ["check"],
    ["kpi"],
    ["kpi", "--json"],
    ["list"],
    ["forecast"],
    ["review"],
    ["stages"],
    ["add", "X", "--value", "5"],
    ["move", "1", "next"],
    ["undo"],
    ["export", "out.csv"],
    ["backup", "copy.db"],
    ["seed"],
]


def says(bad: Bad, path: Path) -> list[str]:
    return [s.format(p=path) for s in bad.says]


def state(path: Path) -> object:
    """What is at the path and beside it, to check that nothing was changed."""
    if path.is_dir():
        return ("folder", sorted(p.name for p in path.iterdir()))
    folder = path.parent
    # an engine still open in this process keeps its (empty) -wal and -shm files until it is closed
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "something was written"
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def deny(monkeypatch, path: Path, denied: tuple[str, str]) -> None:
    """This process (root, in CI) may do anything: os.access is made to say no, as it would for an
    ordinary account. The real-process test below does it for real, as `nobody`."""
    target = path if denied[0] == "file" else path.parent
    mode = os.R_OK if denied[1] == "r" else os.W_OK
    real_access = os.access

    def access(where, asked, *args, **kwargs):
        if Path(where) == target and asked & mode:
            return False
        return real_access(where, asked, *args, **kwargs)

    monkeypatch.setattr(locations.os, "access", access)


def one_line(result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("evpipe: ")
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_every_command_gives_one_line_naming_the_file_and_the_next_step(tmp_path, monkeypatch, real_bytes, name, args):
    bad = BAD_FILES[name]
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "pipeline.db"
    bad.make(path, real_bytes)
    if bad.denied:
        deny(monkeypatch, path, bad.denied)
    monkeypatch.chdir(tmp_path)
    before = state(path)
    result = CliRunner().invoke(main, ["--db", str(path), *args], catch_exceptions=False)
    if bad.may_work and result.exit_code == 0:
        assert "Traceback" not in result.stderr
    else:
        line = one_line(result)
        # where the damage is not read, the command answers as it would ("nothing to undo"); where
        # it is read, it says what is wrong and what to do
        if not bad.may_work or "malformed" in line or "damaged" in line:
            for words in says(bad, path):
                assert words in line, line
    if args[0] != "seed" or result.exit_code:
        gc.collect()
        assert state(path) == before


def test_a_full_disk_during_a_write_is_one_line_and_writes_nothing(tmp_path, real_bytes):
    """The database cannot grow by one page (SQLite's max_page_count, as on a full disk): an
    import fails in one line, and everything is as it was."""
    path = tmp_path / "pipeline.db"
    path.write_bytes(real_bytes)
    full = (
        "import sys; from sqlalchemy import Engine, event\n"
        "def full(connection, _record):\n"
        "    pages = connection.execute('PRAGMA page_count').fetchone()[0]\n"
        "    connection.execute(f'PRAGMA max_page_count={pages}')\n"
        "event.listen(Engine, 'connect', full)\n"
        "from evpipe.tui.cli import main\n"
        "main(sys.argv[1:], prog_name='evpipe')\n"
    )
    before = json.loads(_run(["--db", str(path), "kpi", "--json"]).stdout)
    for args in (
        ["import", str(CRM / "sales_pipeline.csv"), "--add-stage", "Prospecting=10", "--add-stage", "Engaging=30"],
        ["import", str(CRM / "sales_pipeline.csv"), "--add-stage", "Prospecting=10", "--add-stage", "Engaging=30"],
    ):
        proc = subprocess.run(
            [sys.executable, "-c", full, "--db", str(path), *args, "--commit"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1] == (
            f"evpipe: the disk holding {path} is full; nothing was saved: free some space, then try again"
        ), proc.stderr
    assert json.loads(_run(["--db", str(path), "kpi", "--json"]).stdout) == before


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "evpipe.tui.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc


# ---------------------------------------------------------------- permissions, for real


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """`evpipe ARGS` in a process of its own as an ordinary account (`nobody` when the tests run as
    root, since root may read and write anything)."""
    command = [sys.executable, "-m", "evpipe.tui.cli", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "HOME": "/tmp", "XDG_DATA_HOME": "/tmp", "XDG_CONFIG_HOME": "/tmp"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=120)


@pytest.mark.parametrize("name", [n for n, bad in BAD_FILES.items() if bad.denied])
def test_permission_cases_as_another_account(real_bytes, name):
    bad = BAD_FILES[name]
    folder = Path(tempfile.mkdtemp(prefix="evpipe-perm-", dir="/tmp"))
    try:
        path = folder / "pipeline.db"
        path.write_bytes(real_bytes)
        if os.geteuid() == 0:
            os.chown(folder, 65534, 65534)
            os.chown(path, 65534, 65534)
        kind, what = bad.denied
        if kind == "file":
            path.chmod(0o200 if what == "r" else 0o400)
        else:
            folder.chmod(0o555)
        before = path.read_bytes() if what != "r" else None
        for args in (["kpi"], ["list", "--json"], ["add", "X", "--value", "5"]):
            proc = _as_nobody("--db", str(path), *args)
            assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1, proc.stderr
            for words in says(bad, path):
                assert words in lines[0], lines[0]
        folder.chmod(0o755)
        path.chmod(0o600)
        if before is not None:
            assert path.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["pipeline.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the app


def watched_app(path: Path) -> tuple[EvpipeApp, list[str]]:
    """The real app on the file at `path`, as tester, and the notices it gives as they come."""
    notices: list[str] = []

    class Watched(EvpipeApp):
        CSS_PATH = str(Path(app_module.__file__).parent / EvpipeApp.CSS_PATH)

        def notify(self, message, *args, **kwargs):
            notices.append(str(message))
            return super().notify(message, *args, **kwargs)

    return Watched(f"sqlite:///{path}", who="tester"), notices


@pytest.mark.parametrize("name", list(BAD_FILES))
async def test_the_app_says_what_is_wrong_on_screen(tmp_path, monkeypatch, real_bytes, name):
    """Opened directly on each bad file (the command line would have refused most of them before
    the screen opened): a notice naming the file and the next step, and the app still running."""
    bad = BAD_FILES[name]
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "pipeline.db"
    bad.make(path, real_bytes)
    if bad.denied:
        deny(monkeypatch, path, bad.denied)
    app, notices = watched_app(path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        for _ in range(300):  # up to 15 s on a loaded machine
            await pilot.pause(0.05)
            if any(all(w in n for w in says(bad, path)) for n in notices):
                break
        await pilot.pause(0.2)
        assert app.is_running
        shown = [n for n in notices if all(w in n for w in says(bad, path))]
        assert shown, notices
        assert shown[0].startswith(("The database cannot be opened: ", "The database has a problem: "))
        # on the screen, not only in the list of notices
        for _ in range(100):
            await pilot.pause(0.05)
            if "The database" in screen_text(app):
                break
        assert "The database" in screen_text(app), screen_text(app)
        # a prospect added with no stages read opened a form with an empty stage list: a crash
        await pilot.press("a")
        await pilot.pause(0.3)
        assert app.is_running and app.return_code is None
        assert any(n.startswith("A prospect can be added once the list is read") for n in notices), notices
    if app._engine is not None:
        app._engine.dispose()


# ---------------------------------------------------------------- damaged bytes anywhere


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damage=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.binary(min_size=1, max_size=64)),
        min_size=1,
        max_size=6,
    )
)
def test_damaged_bytes_anywhere_either_work_or_give_one_line(tmp_path_factory, real_bytes, damage):
    """Bytes overwritten at random places of a real database: `kpi` works (valid JSON), or it says
    in one line what is wrong with the file, never a traceback."""
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "pipeline.db"
    broken = bytearray(real_bytes)
    for where, noise in damage:
        at = int(where * len(broken))
        broken[at : at + len(noise)] = noise
    path.write_bytes(bytes(broken[: len(real_bytes)]))
    result = CliRunner().invoke(main, ["--db", str(path), "kpi", "--json"], catch_exceptions=False)
    if result.exit_code == 0:
        assert isinstance(json.loads(result.stdout)["count"], int)
    else:
        line = one_line(result)
        assert str(path) in line, line
    gc.collect()


def test_a_companion_file_gone_between_two_looks_is_no_refusal(tmp_path, monkeypatch):
    """SQLite deletes the -shm and -wal files when its last connection closes, which another thread
    or session may do while a database is being checked: a file seen, then gone when its access is
    tested, is not "not writable" (CI's snapshot of the prospect page once showed that toast). One
    that stays unwritable is still refused."""
    path = tmp_path / "pipeline.db"
    open_db(f"sqlite:///{path}").dispose()
    shm = Path(f"{path}-shm")
    real_access = os.access

    def vanishing(where, asked, *args, **kwargs):
        if Path(where) == shm and shm.exists():
            shm.unlink()  # the last connection elsewhere closed just now
            return False
        return real_access(where, asked, *args, **kwargs)

    shm.write_bytes(b"")
    monkeypatch.setattr(locations.os, "access", vanishing)
    assert locations.check_database(f"sqlite:///{path}") is not None
    assert not shm.exists()

    shm.write_bytes(b"")
    deny(monkeypatch, shm, ("file", "w"))
    with pytest.raises(locations.DatabaseProblem, match="file beside the database"):
        locations.check_database(f"sqlite:///{path}")


def test_a_write_ahead_log_folded_in_while_it_is_looked_at_is_no_error(tmp_path, monkeypatch):
    """The check for a file cut short looks at the -wal file first; SQLite's last connection may
    fold it into the database and delete it at that moment (a worker failed with FileNotFoundError
    in CI): the file is then checked as it is."""
    path = tmp_path / "pipeline.db"
    open_db(f"sqlite:///{path}").dispose()
    wal = Path(f"{path}-wal")
    wal.write_bytes(b"x" * 10)  # there when looked for...
    real_stat = Path.stat

    def gone(self, *args, **kwargs):
        if self == wal:
            raise FileNotFoundError(2, "No such file or directory", str(wal))  # ...gone when measured
        return real_stat(self, *args, **kwargs)

    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self, *a, **k: self == wal or real_exists(self, *a, **k))
    monkeypatch.setattr(Path, "stat", gone)
    assert locations._cut_short(path) is None


def test_a_failed_migration_into_a_new_file_leaves_no_file(tmp_path, real_bytes):
    """`migrate --to NEW.db` from a database damaged in a table it copies failed in one line, but
    left NEW.db behind as an empty evpipe database: all or nothing leaves nothing there."""
    path = tmp_path / "pipeline.db"
    page = _page_of(real_bytes, "prospect") - 1
    size = 4096
    _real(path, real_bytes[: page * size + 8] + b"\xff" * 200 + real_bytes[page * size + 208 :])
    target = tmp_path / "copy.db"
    result = CliRunner().invoke(main, ["--db", str(path), "migrate", "--to", str(target)], catch_exceptions=False)
    assert result.exit_code == 1 and "is damaged" in one_line(result)
    gc.collect()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("copy.db")] == []


def test_a_database_on_a_read_only_mount_is_not_told_to_chmod(tmp_path, monkeypatch, real_bytes):
    """A database on a file system mounted read-only (a snapshot, a CD) was told "run chmod u+w on
    it", which no chmod can do there; it is told to copy it somewhere writable."""
    path = tmp_path / "pipeline.db"
    _real(path, real_bytes)
    deny(monkeypatch, path, ("file", "w"))
    real_statvfs = os.statvfs

    class ReadOnlyMount:
        def __init__(self, where):
            self.f_flag = real_statvfs(where).f_flag | os.ST_RDONLY

    monkeypatch.setattr(locations.os, "statvfs", ReadOnlyMount)
    before = state(path)
    line = one_line(CliRunner().invoke(main, ["--db", str(path), "kpi"], catch_exceptions=False))
    assert f"{path} is on a file system mounted read-only" in line and "copy it" in line
    assert "chmod" not in line
    assert state(path) == before


async def test_nothing_more_is_saved_into_a_database_found_damaged(tmp_path, real_bytes):
    """The app said the file was damaged, then saved a stage's new probability into it (the
    stages' pages were sound): a save after the damage is found is refused, in words."""
    from evpipe.tui.saving import Change

    path = tmp_path / "pipeline.db"
    damaged_pages(path, real_bytes)
    app, notices = watched_app(path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        for _ in range(300):
            await pilot.pause(0.05)
            if any("is damaged" in n for n in notices):
                break
        before = sqlite3.connect(path).execute("SELECT probability_bp FROM stage WHERE name = 'Enquiry'").fetchone()
        app.saver.save(Change(lambda: app.store.set_probability("Enquiry", "12"), app.pipeline))
        for _ in range(100):
            await pilot.pause(0.05)
            if not app.saver.busy:
                break
        await pilot.pause(0.2)
        after = sqlite3.connect(path).execute("SELECT probability_bp FROM stage WHERE name = 'Enquiry'").fetchone()
        assert after == before
        said = [n for n in notices if n.startswith("Not saved: ")]
        assert said and "is damaged" in said[0] and said[0].endswith("Nothing more is saved into a damaged database.")
    if app._engine is not None:
        app._engine.dispose()


def test_check_reads_every_page_and_finds_damage_the_other_commands_may_not_read(tmp_path, real_bytes):
    sound = tmp_path / "sound.db"
    sound.write_bytes(real_bytes)
    result = CliRunner().invoke(main, ["--db", str(sound), "check"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, f"{sound}: every page reads back sound.\n")
    damaged = tmp_path / "damaged.db"
    damaged_pages(damaged, real_bytes)
    before = state(damaged)
    result = CliRunner().invoke(main, ["--db", str(damaged), "check"], catch_exceptions=False)
    assert result.exit_code == 1
    line = one_line(result)
    for words in says(BAD_FILES["damaged pages"], damaged):
        assert words in line, line
    assert state(damaged) == before
