"""Which database evpipe opens, and what it does with a path or a file that is not right.

Issue 9, point 1: the demo never touches the user's data (its own database, whatever EVPIPE_DB
says; `--db` on `demo` only for a new file or a demo database; nothing is rebuilt or seeded over
data the demo did not make). Point 6: a wrong path or a broken file never looks like an empty
pipeline and never shows a traceback; `--db` works before or after the command's name."""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from apphelpers import screen_text, settle
from click.testing import CliRunner

from evpipe.models import locations, open_db
from evpipe.models.demo import DEMO_MARKER
from evpipe.models.locations import DatabaseProblem, NoDatabase, check_database, known_revisions
from evpipe.models.rawdb import HEAD
from evpipe.models.settings import get_setting
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp
from evpipe.tui.cli import main

#: The module (the package exports the group under the same name).
cli_main = importlib.import_module("evpipe.tui.cli.main")
app_module = importlib.import_module("evpipe.tui.app")
EVPIPE = [sys.executable, "-m", "evpipe.tui.cli"]
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, code: int | None = 0, stdin: str | None = None):
    """`evpipe ARGS...` in process, with the environment as the test set it."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def one_line_error(result) -> str:
    """The error a command gave: one line on stderr, `evpipe: ...`, exit code 1, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("evpipe: ") and "Traceback" not in result.stderr
    return lines[0]


def content(path: Path) -> list[str]:
    """Everything in an SQLite database, read without changing it."""
    gc.collect()  # engines of earlier in-process commands let go of the file first
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def app_runs(monkeypatch):
    """The app as `make run` opens it, in this process: the real app, headless, which quits at
    once (q). Returns the list of database URLs it was opened on."""
    opened: list[str] = []

    def run_and_quit(url: str) -> None:
        opened.append(url)

        async def quit_at_once(pilot) -> None:
            await pilot.pause()
            await pilot.press("q")

        EvpipeApp(url, who="tester").run(headless=True, size=(80, 24), auto_pilot=quit_at_once)

    monkeypatch.setattr(cli_main, "has_terminal", lambda: True)
    monkeypatch.setattr(app_module, "run", run_and_quit)
    return opened


# ---------------------------------------------------------------- point 1: the demo


def test_the_issues_sequence_leaves_the_real_database_as_it_was(tmp_path, monkeypatch, app_runs):
    """`export EVPIPE_DB=real.db`, `make run` (evpipe demo), q, add a real prospect, `make run`
    again: the demo lives in its own database and real.db is exactly as the rep left it."""
    real = tmp_path / "real.db"
    monkeypatch.setenv("EVPIPE_DB", str(real))
    demo_db = locations.demo_db_path().resolve()

    cli("demo")
    assert app_runs == [f"sqlite:///{demo_db}"]
    assert not real.exists()  # the demo wrote nothing there, not even an empty file
    demo_rows = json_list(demo_db)  # the ten weeks of seeds/demo.json and the generated past (issue 16)
    assert len(demo_rows) > 40 and sum(1 for r in demo_rows if r["kind"] == "open") == 32

    # The rep's own pipeline: named by EVPIPE_DB, so made on purpose with `evpipe init`.
    line = one_line_error(cli("add", "Real deal", "--value", "5000", code=None))
    assert f"there is no database at {real}" in line and f"evpipe init {real}" in line
    cli("init")
    cli("add", "Real deal", "--value", "5000", "--stage", "Quote sent")
    before = content(real)
    listed = cli("list", "--json").stdout

    cli("demo")
    cli("demo", "--keep")
    assert app_runs == [f"sqlite:///{demo_db}"] * 3
    # Pointing the demo at it, or seeding it, is refused in one line.
    for args in (["--db", real, "demo"], ["demo", "--db", real], ["demo", "--keep", "--db", real], ["seed"]):
        line = one_line_error(cli(*args, code=None))
        assert str(real) in line or "has prospects already" in line
    assert len(app_runs) == 3
    assert content(real) == before
    assert cli("list", "--json").stdout == listed
    assert "Real deal" in listed and "Harbour" not in listed


def test_the_demo_in_a_named_file_is_rebuilt_only_while_nobody_changed_it(tmp_path, app_runs):
    path = tmp_path / "try.db"
    cli("--db", path, "demo")
    assert get_setting(engine := open_db(f"sqlite:///{path}"), DEMO_MARKER).startswith("built:")
    engine.dispose()
    cli("demo", "--db", path)  # untouched: rebuilt
    cli("--db", path, "add", "Mine now", "--value", "700")
    before = content(path)
    line = one_line_error(cli("--db", path, "demo", code=None))
    assert f"{path} is a demo database with changes made in it since it was built" in line
    assert "evpipe demo --keep" in line
    assert content(path) == before
    cli("--db", path, "demo", "--keep")  # reopened as it is
    assert content(path) == before
    assert len(app_runs) == 3


def test_the_demos_own_database_is_its_sandbox(app_runs):
    """What is tried in the demo is the demo's: its own file is rebuilt every time."""
    cli("demo")
    own = locations.demo_db_path()
    cli("--db", own, "add", "Tried in the demo", "--value", "1")
    cli("demo")
    assert "Tried in the demo" not in cli("--db", own, "list").stdout
    assert len(cli("--db", own, "list", "--json").stdout) > 1000


def test_the_demos_own_file_is_not_rebuilt_when_it_is_not_a_demo(app_runs):
    """Someone made a real database where the demo's goes: the demo refuses rather than delete it."""
    own = locations.demo_db_path()
    cli("init", own)
    cli("--db", own, "add", "Real", "--value", "1")
    before = content(own)
    line = one_line_error(cli("demo", code=None))
    assert f"{own.resolve()} is not a demo database" in line
    assert content(own) == before and app_runs == []


@pytest.mark.parametrize("kind", ["empty file", "new database", "text"])
def test_demo_with_db_refuses_anything_but_a_new_file_or_a_demo(tmp_path, kind, app_runs):
    path = tmp_path / "x.db"
    if kind == "empty file":
        path.write_bytes(b"")
    elif kind == "new database":
        cli("init", path)
    else:
        path.write_text("my notes\n")
    before = files_in(tmp_path)
    one_line_error(cli("demo", "--db", path, code=None))
    assert files_in(tmp_path) == before and app_runs == []


def test_an_interrupted_demo_build_is_still_the_demos(tmp_path, app_runs):
    path = tmp_path / "half.db"
    engine = open_db(f"sqlite:///{path}")
    from evpipe.models.settings import set_setting

    set_setting(engine, DEMO_MARKER, "building")
    Store(engine).add("Half loaded", "10")
    engine.dispose()
    cli("--db", path, "demo")
    names = cli("--db", path, "list").stdout
    assert "Half loaded" not in names and "Harbour Events" in names


def test_seed_refuses_a_database_whose_ladder_was_edited(tmp_path):
    db = tmp_path / "mine.db"
    cli("init", db)
    cli("--db", db, "stages", "set", "Enquiry", "12")
    before = content(db)
    line = one_line_error(cli("--db", db, "seed", code=None))
    assert "has a history of changes already" in line
    assert content(db) == before


# ---------------------------------------------------------------- point 6: a wrong path


@pytest.mark.parametrize(
    "args",
    [
        ["kpi"],
        ["kpi", "--json"],
        ["list"],
        ["stages"],
        ["add", "X", "--value", "5"],
        ["move", "X", "next"],
        ["review"],
        ["export", "out.csv"],
        ["backup", "copy.db"],
        ["dump", "all.json"],
        ["undo"],
    ],
)
@pytest.mark.parametrize("how", ["--db before", "--db after", "EVPIPE_DB"])
def test_a_named_database_that_does_not_exist_is_never_created(tmp_path, monkeypatch, args, how):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "typo" / "pipline.db"
    if how == "--db before":
        argv = ["--db", path, *args]
    elif how == "--db after":
        argv = [*args, "--db", path]
    else:
        monkeypatch.setenv("EVPIPE_DB", str(path))
        argv = args
    line = one_line_error(cli(*argv, code=None))
    assert line == (
        f"evpipe: there is no database at {path} (nor the folder {path.parent}); check the path, "
        f"or create one there with: evpipe init {path}"
    )
    assert list(tmp_path.iterdir()) == []  # no folder, no file, no export


def test_seed_and_restore_make_a_new_file_but_no_folder(tmp_path):
    cli("--db", tmp_path / "new.db", "seed")
    cli("--db", tmp_path / "new.db", "dump", tmp_path / "all.json")
    cli("restore", tmp_path / "all.json", "--db", tmp_path / "copy.db")
    assert len(json_list(tmp_path / "copy.db")) == 40
    for args in (["seed"], ["restore", tmp_path / "all.json"]):
        line = one_line_error(cli("--db", tmp_path / "typo" / "x.db", *args, code=None))
        assert line.startswith(f"evpipe: there is no database at {tmp_path / 'typo' / 'x.db'} (nor the folder")
    assert not (tmp_path / "typo").exists()


def test_a_missing_file_in_an_existing_folder(tmp_path):
    path = tmp_path / "pipline.db"
    line = one_line_error(cli("kpi", "--db", path, code=None))
    assert line == (
        f"evpipe: there is no database at {path}; check the path, or create one there with: evpipe init {path}"
    )
    assert not path.exists()


def test_init_creates_a_private_database_with_the_ladder_then_leaves_it_alone(tmp_path):
    path = tmp_path / "new folder" / "real.db"
    out = cli("init", path).stdout
    assert f"Created a new evpipe database at {path} (and the folder {path.parent})" in out
    assert f"evpipe --db '{path}'" in out
    assert path.stat().st_mode & 0o777 == 0o600
    assert "Quote sent" in cli("--db", path, "stages").stdout
    cli("--db", path, "add", "Kept", "--value", "10")
    before = content(path)
    assert "already an evpipe database (with prospects in it); nothing to do" in cli("init", path).stdout
    assert "already an evpipe database" in cli("--db", path, "init").stdout
    assert content(path) == before


def test_init_of_the_default_location(tmp_path):
    out = cli("init").stdout
    assert str(locations.default_db_path().resolve()) in out and "plain `evpipe` uses it" in out


def test_db_after_the_command_name(tmp_path):
    db = tmp_path / "after.db"
    cli("init", db)
    cli("add", "After", "--value", "1,000", "--db", db)
    cli("stages", "set", "Suspect", "7.5", "--db", str(db))
    cli("stages", "--db", db, "set", "Enquiry", "11")
    cli("kpi", f"--db={db}")
    import json

    data = json.loads(cli("kpi", "--db", db, "--json").stdout)
    assert data["tv"] == "1000.00" and data["ev"] == "75.00"
    assert "--db PATH_OR_URL" in cli("kpi", "--help").stdout
    # after the name wins over before it, as a later option does
    other = tmp_path / "other.db"
    cli("init", other)
    assert json.loads(cli("--db", other, "kpi", "--json", "--db", db).stdout)["count"] == 1


def json_list(db: Path) -> list[dict]:
    import json

    return json.loads(cli("--db", db, "list", "--json").stdout)


# ---------------------------------------------------------------- point 6: a broken file


def _folder(path: Path) -> None:
    path.mkdir()


def _text(path: Path) -> None:
    path.write_text("name,value\nHarbour,9500\n", encoding="utf-8")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _empty_sqlite(path: Path) -> None:
    sqlite3.connect(path).execute("PRAGMA user_version=1").connection.close()


def _foreign(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    connection.commit()
    connection.close()


def _newer(path: Path) -> None:
    open_db(f"sqlite:///{path}").dispose()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = '0099'")
    connection.commit()
    connection.close()


def _damaged(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)


BROKEN = {
    "a folder": (_folder, "{p} is a folder, not a database file; give a file in it, e.g. {p}/evpipe.db"),
    "a text file": (_text, "{p} is not a database (not an SQLite file); check the path given by --db or EVPIPE_DB"),
    "an empty file": (_empty, "{p} is an empty file, not an evpipe database; check the path, or make it one with"),
    "an empty SQLite file": (_empty_sqlite, "{p} is an empty SQLite database, not yet evpipe's"),
    "another program's database": (_foreign, "{p} is an SQLite database but not evpipe's"),
    "a newer evpipe's database": (
        _newer,
        "{p} was written by a newer evpipe (schema 0099; this one knows up to " + HEAD + "); upgrade evpipe to open it",
    ),
    "a damaged file": (_damaged, "{p} is damaged (SQLite: "),
}


def _snapshot(path: Path):
    return files_in(path) if path.is_dir() else files_in(path.parent)


@pytest.mark.parametrize("broken", list(BROKEN))
@pytest.mark.parametrize("args", [["kpi", "--json"], ["add", "X", "--value", "5"], ["list"], ["seed"], ["init"]])
def test_a_broken_file_gives_one_line_and_changes_nothing(tmp_path, broken, args):
    make, message = BROKEN[broken]
    path = tmp_path / "real.db"
    make(path)
    if args == ["init"] and broken in ("an empty file", "an empty SQLite file"):
        return  # init is how a user asks for an empty file to become a database (tested below)
    before = _snapshot(path)
    line = one_line_error(cli("--db", path, *args, code=None))
    assert line.startswith("evpipe: " + message.format(p=path)), line
    assert _snapshot(path) == before


def test_init_makes_an_empty_file_a_database_when_asked(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    assert "Created a new evpipe database" in cli("init", path).stdout
    assert json_list(path) == []


def test_a_broken_file_in_a_real_process_gives_no_traceback(tmp_path):
    path = tmp_path / "newer.db"
    _newer(path)
    proc = subprocess.run([*EVPIPE, "kpi", "--db", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"evpipe: {path} was written by a newer evpipe") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "denied, message", [(os.R_OK, "cannot read {p} (permission denied)"), (os.W_OK, "{p} is read-only")]
)
def test_unreadable_and_read_only_files(tmp_path, monkeypatch, denied, message):
    """os.access says what this user may do (root may do anything, so it is made to say no)."""
    path = tmp_path / "real.db"
    open_db(f"sqlite:///{path}").dispose()
    before = _snapshot(path)
    real_access = os.access

    def access(target, mode, *args, **kwargs):
        if Path(target) == path and mode & denied:
            return False
        return real_access(target, mode, *args, **kwargs)

    monkeypatch.setattr(locations.os, "access", access)
    line = one_line_error(cli("--db", path, "kpi", code=None))
    assert line.startswith("evpipe: " + message.format(p=path)) and "chmod" in line
    assert _snapshot(path) == before


def _as_someone_else(*args: str) -> subprocess.CompletedProcess[str]:
    """`evpipe ARGS...` in a process of its own, as an ordinary account: root reads and writes any
    file, so as root (CI) the command runs as `nobody`, as another rep would."""
    command = [sys.executable, "-m", "evpipe.tui.cli", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "HOME": "/tmp", "XDG_DATA_HOME": "/tmp", "XDG_CONFIG_HOME": "/tmp"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=60)


def test_a_read_only_or_unreadable_file_for_real():
    folder = Path(tempfile.mkdtemp(prefix="evpipe-perm-", dir="/tmp"))
    try:
        folder.chmod(0o777)
        path = folder / "real.db"
        open_db(f"sqlite:///{path}").dispose()
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)
        path.chmod(0o400)
        proc = _as_someone_else("--db", str(path), "kpi")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        assert f"{path} is read-only" in proc.stderr
        path.chmod(0o000)
        proc = _as_someone_else("--db", str(path), "kpi")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"cannot read {path}" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_known_revisions_are_alembics():
    from alembic.script import ScriptDirectory

    from evpipe.models.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert known_revisions() == {rev.revision for rev in script.walk_revisions()}


def test_check_database_changes_nothing_and_says_what_it_found(tmp_path):
    path = tmp_path / "x.db"
    with pytest.raises(NoDatabase):
        check_database(f"sqlite:///{path}")
    assert check_database(f"sqlite:///{path}", create=True) is None and not path.exists()
    _foreign(path)
    with pytest.raises(DatabaseProblem):
        open_db(f"sqlite:///{path}")  # open_db checks first: another program's tables stay untouched
    with sqlite3.connect(path) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"photos"}


# ---------------------------------------------------------------- point 6: the app


@pytest.fixture
def no_app(monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr(cli_main, "has_terminal", lambda: True)
    monkeypatch.setattr(app_module, "run", opened.append)
    return opened


def test_the_app_asks_before_creating_a_named_database(tmp_path, no_app):
    path = tmp_path / "new.db"
    result = cli("--db", path, stdin="n\n", code=None)
    assert f"There is no database at {path}. Create a new one there? [y/N]" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"evpipe: there is no database at {path}; check the path, or create one there with: evpipe init {path}"
    )
    assert result.exit_code == 1 and not path.exists() and no_app == []
    result = cli("--db", path, stdin="y\n")
    assert no_app == [f"sqlite:///{path}"]
    assert "Quote sent" in cli("--db", path, "stages").stdout


def test_the_app_asks_before_making_an_empty_file_a_database(tmp_path, no_app):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    result = cli("--db", path, stdin="\n", code=1)
    assert f"{path} is empty. Make it a new evpipe database? [y/N]" in result.stderr
    assert path.read_bytes() == b"" and no_app == []


def test_the_app_opens_the_default_database_without_asking(no_app):
    cli()
    assert no_app == [f"sqlite:///{locations.default_db_path().resolve()}"]


def test_the_app_refuses_a_read_only_database_before_it_opens(tmp_path, monkeypatch, no_app):
    path = tmp_path / "real.db"
    open_db(f"sqlite:///{path}").dispose()
    real_access = os.access
    monkeypatch.setattr(
        locations.os, "access", lambda t, m, *a, **k: False if Path(t) == path and m & os.W_OK else real_access(t, m)
    )
    line = one_line_error(cli("--db", path, code=None))
    assert f"{path} is read-only" in line and no_app == []


def test_the_app_refuses_a_broken_file_before_it_opens(tmp_path, no_app):
    path = tmp_path / "newer.db"
    _newer(path)
    line = one_line_error(cli("--db", path, code=None))
    assert "was written by a newer evpipe" in line and no_app == []


@pytest.mark.parametrize("size, shown", [((80, 24), " pipeline.db"), ((120, 40), " pipeline.db")])
async def test_the_app_shows_which_database_is_open(engine, size, shown):
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        top = screen_text(app).splitlines()[0]
        # at 80 columns the other tabs' titles give way to the name first (`7 Sta…`)
        assert top.rstrip().endswith(shown) and "1 Pipeline" in top and "7 Sta" in top
        await pilot.press("7")
        await settle(app, pilot)
        assert screen_text(app).splitlines()[0].rstrip().endswith(shown)


async def test_the_app_cut_s_a_long_database_name_last(tmp_path):
    engine = open_db(f"sqlite:///{tmp_path / 'a-very-long-name-for-a-pipeline.db'}")
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        top = screen_text(app).splitlines()[0]
        assert len(top.rstrip()) == 80 and top.rstrip().endswith("…") and " a-very-l" in top
        assert all(f"{n} " in top for n in "1234567")
    engine.dispose()


async def test_the_app_says_when_its_database_cannot_be_opened(tmp_path):
    """The app opened directly on a file the CLI would have refused: a clear notice, no traceback."""
    path = tmp_path / "newer.db"
    _newer(path)
    from test_broken_databases import watched_app

    app, notices = watched_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        # the workers that need the database end in error (they are told it cannot be opened), so
        # wait for the notice rather than for every worker to succeed
        for _ in range(100):
            await pilot.pause(0.02)
            if notices:
                break
        await pilot.pause(0.2)
        assert app.is_running
    assert any(n.startswith(f"The database cannot be opened: {path} was written by a newer evpipe") for n in notices)
