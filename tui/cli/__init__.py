"""The `evpipe` command line: the app, and commands for scripts, cron and quick capture.

`main` is the click group (tui/cli/main.py); each module beside it defines a family of commands
and registers them here, in one place. The import command's arguments (tui/cli/args.py) are
shared with the app's import screen.
"""

from __future__ import annotations

from . import database, demo, insight, io, ladder, migrate, prospects, serve, settings, targets, team
from .main import main, run

for _commands in (database, demo, prospects, ladder, insight, io, settings, migrate, targets, team, serve):
    _commands.register(main)

__all__ = ["main", "run"]
