"""An import's file, read while SQLAlchemy is being imported.

`evpipe import` spends its first quarter of a second importing SQLAlchemy and SQLModel, on one
core. The reading of the file (models/import_sheet.py: its cells, stages, dates and values, every
row checked) needs neither, so the command starts it first (`begin`), in a fork of the process on
the other core (models/forked.py), with the ladder read through the standard library. The plan
then takes what the fork read (`take`, models/import_plan.py `plan_import(ahead=...)`) when it was
read with the same ladder, user and day as the plan's own; otherwise it reads the file itself, as
it does anyway where there is no read ahead. The CRM sample's 8,800 rows: 105 -> 20 ms after the
imports.

Only for an SQLite file at the newest schema (one to create or upgrade is opened by SQLAlchemy
first), and a file of at most AHEAD_MAX_BYTES: a bigger one is read faster by the plan itself,
which shares its rows with a fork once SQLAlchemy is in. Anything going wrong in the fork (a
broken file, an unknown stage, a refused fork) is no answer: the plan then reads the file itself
and says what is wrong, as ever.

No SQLAlchemy here: it runs before it is imported.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from evpipe.models import clock
from evpipe.models.forked import Forked
from evpipe.models.import_types import gc_paused
from evpipe.models.rawdb import SqliteReader, schema_ready, sqlite_file
from evpipe.models.records import current_user

if TYPE_CHECKING:
    from evpipe.models.import_sheet import SheetPlan
    from evpipe.models.import_types import ImportOptions

#: The largest file read ahead: about 50,000 rows of a CSV like the CRM sample's (8,800 rows in
#: 0.6 MB, read in 0.16 s by one core), which the fork reads before SQLAlchemy is in, or soon after.
AHEAD_MAX_BYTES = 4_000_000

#: How long the plan waits for the fork once it needs the file: far longer than its reading takes.
PATIENCE_SECONDS = 30.0


def begin(url: str, file: Path, options: ImportOptions) -> Forked | None:
    """Start reading `file` for an import into the database at `url` with `options`, in a fork;
    None where it is not read ahead."""
    path = sqlite_file(url)
    try:
        small = file.is_file() and file.stat().st_size <= AHEAD_MAX_BYTES
    except OSError:
        return None
    if path is None or not small or not schema_ready(url):
        return None
    who, today = current_user(), clock.today()
    return Forked.start(lambda: _read(path, file, options, who, today))


def _read(path: Path, file: Path, options: ImportOptions, who: str, today: date) -> object:
    """In the fork: the file's side of the plan, packed to be handed back."""
    from evpipe.models.import_sheet import ladder_rows, plan_sheet

    stages = ladder_rows(SqliteReader(path))
    return plan_sheet(file, options, stages, who=who, today=today, share=False).packed()


@gc_paused
def take(helper: Forked | None) -> SheetPlan | None:
    """What the fork read (waited for: it is the plan's own first step), or None. Read with the
    cycle collector paused: its passes over SQLAlchemy's objects, in by now, made the unpickling
    of the CRM sample's plan 38 ms rather than 9."""
    if helper is None:
        return None
    try:
        ok, answer = helper.answer(PATIENCE_SECONDS)
    finally:
        helper.close()
    if not ok:
        return None
    from evpipe.models.import_sheet import SheetPlan

    return SheetPlan.unpacked(answer)


def discard(helper: Forked | None) -> None:
    """The fork stopped, its reading not wanted (the command failed before its plan)."""
    if helper is not None:
        helper.close()


__all__ = ["AHEAD_MAX_BYTES", "begin", "discard", "take"]
