"""The pipeline's first screen, read while the app is still being imported.

The `evpipe` command starts this read (`begin`) before it imports the app: Textual, the screens
and the widgets take some 150 ms to import, and the first screen's reads (models/first_screen.py:
the ladder, a page of rows, the header's KPIs and their history) run meanwhile in a fork of the
process, on the other core (models/forked.py). The pipeline then shows them in its first frame
(`take`), rather than a frame that says "loading" and the rows after its worker has read them,
beside the app's own start, some 20-60 ms later. A thread would not do: its Python work would
share the interpreter lock with the imports, which it slowed by as much as it saved.

Only for what the app would read the same way: an SQLite file that passes the file checks and is
at the newest schema (`opening`: the app takes their outcome from here rather than check the file
again), where reps see every prospect (a rep limited to their own is decided by the app, which
opens the store for it), for the user the environment names. A read not finished by the time the
pipeline opens is not waited for (the fork is stopped and the pipeline reads as ever). Once the
app looks for other sessions' changes, a read made before is no longer taken (`discard`): what
came since is handed on from the screen's read only before that first look (tui/live_sync.py).
Anything going wrong in the fork is left to the app's own reads to meet and say.

No Textual or SQLAlchemy here: it runs before they are imported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evpipe.models.errors import DomainError
from evpipe.models.forked import Forked
from evpipe.models.locations import check_database, creates_silently
from evpipe.models.rawdb import SqliteReader, schema_ready, sqlite_file
from evpipe.models.records import current_user

if TYPE_CHECKING:
    from evpipe.models.first_screen import FirstScreen


@dataclass(frozen=True)
class Opening:
    """What the file checks found before anything opened the database: the problem to say on
    screen (None: none), and whether it can be read as it is (an SQLite file at the newest schema
    with a ladder: models/rawdb.py `schema_ready`)."""

    problem: str | None
    readable: bool


def open_checks(url: str) -> Opening:
    """The file checks the app makes before it opens the database at `url`."""
    try:
        check_database(url, create=creates_silently(url))
    except DomainError as exc:
        return Opening(str(exc), False)
    return Opening(None, sqlite_file(url) is not None and schema_ready(url))


@dataclass
class _Ahead:
    url: str
    who: str
    opening: Opening | None
    helper: Forked | None  # the fork reading the first screen (None: none, or its answer taken)


_ahead: _Ahead | None = None
_lock = threading.Lock()


def _read(path: Path, who: str) -> FirstScreen | None:
    """In the fork: the first screen everyone's session shows `who`, with its header's history;
    None where reps see only their own."""
    from evpipe.models.first_screen import read_first_screen
    from evpipe.models.visibility import reps_see_setting

    reader = SqliteReader(path)
    if reps_see_setting(reader) == "own":
        return None
    return read_first_screen(reader, owner=None, who=who, with_history=True)


def begin(url: str) -> None:
    """Check the file at `url` and, when the app will read it as it is, start reading the
    pipeline's first screen in a fork (`evpipe`, before the app is imported)."""
    global _ahead
    opening = open_checks(url)
    who = current_user()
    path = sqlite_file(url)
    helper = Forked.start(lambda: _read(path, who)) if opening.readable and path is not None else None
    with _lock:
        _ahead = _Ahead(url, who, opening, helper)


def opening(url: str) -> Opening:
    """The file checks' outcome for `url`: as `begin` found it (once), else checked now."""
    with _lock:
        ahead = _ahead if _ahead is not None and _ahead.url == url else None
        if ahead is not None:
            found, ahead.opening = ahead.opening, None
            if found is not None:
                return found
    return open_checks(url)


def take(url: str, who: str) -> FirstScreen | None:
    """The first screen read ahead for `url` and user `who`, once, when the fork has answered
    (it is not waited for: one still reading is stopped); else None."""
    with _lock:
        ahead = _ahead
        if ahead is None or ahead.helper is None or ahead.url != url or ahead.who != who:
            return None
        helper, ahead.helper = ahead.helper, None
    ok, answer = helper.answer(0)  # (once it has begun to answer, it writes the rest and ends)
    return answer if ok else None


def discard() -> None:
    """No read made ahead is taken from now on (the app looks for other sessions' changes); a
    fork still reading is stopped."""
    with _lock:
        helper = _ahead.helper if _ahead is not None else None
        if _ahead is not None:
            _ahead.helper = None
    if helper is not None:
        helper.close()


__all__ = ["Opening", "begin", "discard", "open_checks", "opening", "take"]
