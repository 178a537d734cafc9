"""The `evpipe` script (tui/launch.py): the app in an interpreter started with -OO, the commands as
they are."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from evpipe.tui import launch
from evpipe.tui.launch import lean_bytecode, lean_command, opens_app

EVPIPE = str(Path(sys.executable).parent / "evpipe")


@pytest.mark.parametrize(
    ("args", "app"),
    [
        ([], True),
        (["--db", "x.db"], True),
        (["--db=x.db"], True),
        (["demo"], True),
        (["--db", "x.db", "demo", "--keep"], True),
        (["demo", "--keep", "--db", "y.db"], True),
        (["kpi"], False),
        (["--db", "x.db", "kpi", "--json"], False),
        (["--help"], False),
        (["-h"], False),
        (["--version"], False),
        (["demo", "--help"], False),
        (["demo", "seed"], False),
        (["--db", "demo"], True),  # a database named demo: the app on it
    ],
)
def test_which_command_lines_open_the_app(args, app):
    assert opens_app(args) is app


def test_only_the_app_is_started_again(monkeypatch):
    monkeypatch.setattr(launch, "lean_bytecode", lambda: True)
    monkeypatch.delenv("EVPIPE_LEAN", raising=False)
    assert lean_command(["--db", "x.db"]) == [sys.executable, "-OO", "-P", "-m", "evpipe.tui.cli", "--db", "x.db"]
    assert lean_command(["list", "--json"]) is None
    monkeypatch.setenv("EVPIPE_LEAN", "0")
    assert lean_command(["--db", "x.db"]) is None


def test_no_lean_interpreter_without_its_compiled_modules(monkeypatch, tmp_path):
    """Where the -OO modules are not there, the app runs where it was started: each start would
    otherwise compile every module again."""
    monkeypatch.delenv("EVPIPE_LEAN", raising=False)
    monkeypatch.setattr(importlib.util, "cache_from_source", lambda path, optimization=None: str(tmp_path / "none"))
    assert lean_bytecode() is False
    assert lean_command([]) is None
    there = tmp_path / "there.pyc"
    there.touch()
    monkeypatch.setattr(importlib.util, "cache_from_source", lambda path, optimization=None: str(there))
    assert lean_bytecode() is True


def test_the_commands_keep_their_help():
    """-OO would drop the docstrings click makes each command's help of: the commands never run so."""
    done = subprocess.run([EVPIPE, "kpi", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "TV, EV and EV/TV for the KPI period" in done.stdout, done.stdout
