"""Who is writing: the record a long write leaves beside the database, so that a process that could
not get the write lock can say who holds it ("an import of big.csv by sam since 10:42").

SQLite does not say who holds its write lock, and asking the database would need the lock. So a
long write (an import, a schema upgrade), once it holds the lock, writes `<database>.writer` next
to the file: one small JSON object (pid, host, who, what, since), created whole (written to a
temporary name, then renamed), readable by the owner and the group (mode 640, like a database in a
shared folder), and removed when the transaction ends. A reader trusts a record only while it looks
alive: one written on this machine by a process that has ended (a crash, a kill) is ignored, and
one that cannot be read or parsed is ignored too; it is advice for a message, never a lock.
This module uses the standard library only.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import clock
from .records import current_user

#: The record's name: the database's, plus this.
SUFFIX = ".writer"


def record_path(database: Path) -> Path:
    return Path(f"{database}{SUFFIX}")


@dataclass(frozen=True)
class Writer:
    """A long write in progress, as its record says."""

    pid: int
    host: str
    who: str
    what: str
    since: datetime

    def words(self, today: datetime | None = None) -> str:
        """`an import of big.csv by sam since 10:42` (with the day when it is not today)."""
        today = today or clock.now()
        when = self.since.strftime("%H:%M") if self.since.date() == today.date() else f"{self.since:%Y-%m-%d %H:%M}"
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"{self.what} by {self.who}{where} since {when}"


def _printable(text: object, limit: int = 80) -> str:
    """Text from a file others can write, made safe for one line: printable characters only."""
    clean = "".join(c if c.isprintable() else "?" for c in str(text))
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def announce(database: Path, what: str) -> None:
    """Record that this process, holding the write lock, is doing `what`. Never fails: a folder
    that cannot take the record only makes the waiting side's message less precise."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "who": current_user(),
        "what": what,
        "since": clock.now().isoformat(timespec="seconds"),
    }
    target = record_path(database)
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        fd = os.open(part, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
        try:
            os.fchmod(fd, 0o640)
            os.write(fd, json.dumps(record).encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(part, target)
    except OSError:
        try:
            part.unlink()
        except OSError:
            pass


def withdraw(database: Path) -> None:
    """Remove this process's record (the write is over); a record of another process is left."""
    target = record_path(database)
    found = _read(target)
    if found is None or (found.pid == os.getpid() and found.host == socket.gethostname()):
        try:
            target.unlink()
        except OSError:
            pass


def _read(target: Path) -> Writer | None:
    try:
        raw = json.loads(target.read_text(encoding="utf-8")[:4000])
        return Writer(
            pid=int(raw["pid"]),
            host=_printable(raw["host"], 60),
            who=_printable(raw["who"], 40),
            what=_printable(raw["what"], 80),
            since=datetime.fromisoformat(str(raw["since"])).replace(tzinfo=None),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def current_writer(database: Path) -> Writer | None:
    """The long write going on in `database`, if a live one left its record; else None."""
    found = _read(record_path(database))
    if found is None:
        return None
    if found.host == socket.gethostname() and not _alive(found.pid):
        return None  # its process has ended: the record was left behind
    return found
