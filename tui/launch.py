"""The `evpipe` script (pyproject.toml): the app in a lean interpreter, the commands as they are.

The app holds a pipeline for hours, so its memory counts: at 100,000 prospects 5 MiB of its peak
(102 -> 97 MiB, the real app in tmux) were the docstrings of the libraries it imports (SQLAlchemy's
alone are 2 MiB), which nothing in the app reads. When the command line opens the app (`evpipe`,
`evpipe --db PATH`, `evpipe demo`), the script starts Python again with -OO, which leaves them out,
before anything else is imported (20 ms more to the first screen, of some 330). The commands stay
in the interpreter they were started in: `--help` is made of their docstrings.

-OO also drops `assert` statements; the app's are only there to tell mypy what a value is. Python
reads compiled -OO modules from files of their own (`.opt-2.pyc`), which `make bytecode` writes
for the checkout and its virtual environment; where they are not there (and could not be written:
each start would compile every module again), the app runs in the interpreter it was started in.
"""

from __future__ import annotations

import os
import sys

#: The options of the group that may come before nothing (the app) or `demo` (the app on the demo).
_GROUP_OPTION = "--db"
#: Turned off with EVPIPE_LEAN=0 (the app in the interpreter it was started in).
_SWITCH = "EVPIPE_LEAN"


def opens_app(args: list[str]) -> bool:
    """Whether these arguments (after the script's name) open the app: none but `--db PATH`
    (or `--db=PATH`), then nothing, `demo` or `demo --keep` (`--db` may come after `demo` too)."""
    rest: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == _GROUP_OPTION:
            skip = True  # (its value next)
        elif not arg.startswith(_GROUP_OPTION + "="):
            rest.append(arg)
    return not rest or (rest[0] == "demo" and all(arg == "--keep" for arg in rest[1:]))


def lean_bytecode() -> bool:
    """Whether the -OO compiled modules are there for what the app imports first (the standard
    library's, SQLAlchemy's, Textual's and evpipe's own), checked without importing any of them."""
    from importlib.util import cache_from_source, find_spec

    for name in ("asyncio", "sqlalchemy", "textual", "evpipe.tui.cli"):
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            return False
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return False
        if not os.path.exists(cache_from_source(spec.origin, optimization=2)):
            return False
    return True


def lean_command(args: list[str]) -> list[str] | None:
    """The command line that runs `evpipe ARGS` in a lean interpreter, or None where it should run
    here: not the app, already lean, turned off, or no -OO modules to read. -P: the current folder
    is not put first on the module path (a folder named `evpipe` there is not the app)."""
    if sys.flags.optimize >= 2 or os.environ.get(_SWITCH) == "0" or not opens_app(args):
        return None
    if not sys.executable or not lean_bytecode():
        return None
    return [sys.executable, "-OO", "-P", "-m", "evpipe.tui.cli", *args]


def run() -> None:
    """The `evpipe` command: the app in a lean interpreter when it can (`lean_command`), else the
    command line here (tui/cli/main.py `run`)."""
    command = lean_command(sys.argv[1:])
    if command is not None:
        try:
            sys.stdout.flush()
            os.execv(command[0], command)
        except OSError:  # (could not start it: the app runs here)
            pass
    from evpipe.tui.cli import run as evpipe

    evpipe()
