"""Errors the domain raises. Every message says what was wrong and what is accepted."""

from __future__ import annotations

import re
import shlex


class DomainError(ValueError):
    """Bad input or an impossible operation. Nothing was written."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DomainError):
    """A prospect or stage that does not exist (or no longer does)."""


class Conflict(DomainError):
    """Somebody else changed the record since it was read."""


class NothingToUndo(DomainError):
    """Undo found no change of this user's left to reverse."""


class WriteLocked(Exception):
    """A write could not get the database's write lock in time: another process held it (a long
    import, say). Nothing was written; the same write may be tried again. Not a DomainError: no
    rule refused it, so the app keeps the change for `R`.

    `reason` says it for the app ("another evpipe is writing to the database (an import of big.csv
    by sam since 10:42) and did not finish in time"); str() is the command line's one line, which
    names the file and the wait."""

    def __init__(self, reason: str, line: str) -> None:
        super().__init__(line)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return self.line


class SumTooLarge(DomainError):
    """A write that would take the pipeline's sums past the 64-bit integers they are kept in
    (models.values.MAX_SUM_CENTS, `values.sums_fit`): refused, nothing written. SQLite would otherwise keep the sum
    as a float (an integer that overflows in `+` becomes REAL), and EV would no longer be exact."""

    def __init__(self, limit: str) -> None:
        self.limit = limit
        super().__init__(f"nothing was saved: with it, {self.why}")

    @property
    def why(self) -> str:
        return (
            f"the pipeline's sums pass {self.limit}, the most evpipe adds up exactly "
            "(check the values for a wrong unit)"
        )


class UndoBlocked(DomainError):
    """Undo refused: someone changed what the change to undo touched since (models/store_undo.py).
    `event_id` is the change that was not undone (the one a skip passes); `later` says who changed
    what, and when."""

    def __init__(self, message: str, event_id: int, later: str) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.later = later
        self.also: list[int] = []  # changes saved on the way (a skip before the refused undo)


_REFUSED = re.compile(r'permission denied for (table|sequence|relation) "?([\w.]+)"?', re.IGNORECASE)
_ROW_POLICY = re.compile(r'violates row-level security policy (?:\(USING expression\) )?for table "?([\w.]+)"?', re.I)
# SQLAlchemy's StaleDataError: the row was there, but the UPDATE changed none (row-level security
# hid it from this role while evpipe's members said the change was allowed)
_NO_ROW = re.compile(r"(?:UPDATE|DELETE) statement on table '([\w.]+)' expected to \w+ \d+ row\(s\); 0 were matched")
# the journal's guard (models/journal_guard.py `REFUSAL`): a rep's entry that is not the change
# her transaction made now; from evpipe itself, her computer's clock far from the team's
_JOURNAL_GUARD = re.compile(r"evpipe journal: (.+?)(?: CONTEXT:|$)")
#: How a refusal by the server's privileges ends on the command line: what to do next.
REFUSED_NEXT = "nothing was saved: the database's owner gives roles their privileges with evpipe members"


def server_refusal(exc: BaseException, role: str | None = None) -> str | None:
    """What the database server refused because of the privileges it gives the user's role
    (models/grants.py), as a phrase: 'the server refused: your role rita may not change the table
    stage (permission denied)'; None for any other error. Reads the driver's message and, when
    there is one, the statement (SQLAlchemy's `statement`), to say whether it was a read or a change."""
    message = " ".join(str(getattr(exc, "orig", None) or exc).split())
    yours = f"your role {role}" if role else "your role"
    journal = _JOURNAL_GUARD.search(message)
    if journal:
        return f"the server refused: {yours} may not write that journal entry ({journal.group(1)})"
    row = _ROW_POLICY.search(message) or _NO_ROW.search(message)
    if row:
        return (
            f"the server refused: {yours} may not change that row of the table {row.group(1)} (row-level security: "
            "a rep changes only their own prospects and what belongs to them)"
        )
    found = _REFUSED.search(message)
    if not found:
        return None
    statement = str(getattr(exc, "statement", "") or "").lstrip().upper()
    verb = "read"
    if not statement.startswith("SELECT") or " FOR UPDATE" in statement or " FOR SHARE" in statement:
        verb = "change"
    what = f"the {found.group(1).replace('relation', 'table')} {found.group(2)}"
    return f"the server refused: {yours} may not {verb} {what} (permission denied)"


def unsaved_reason(exc: BaseException) -> str:
    """Why a write that was not refused by a rule still did not happen, in a rep's words: the
    database was locked by another writer, the disk is full, the file is read-only, or it is
    damaged. Reads the driver's message (SQLite's and PostgreSQL's wording), so that models/ need not
    import a database library to say it."""
    if isinstance(exc, WriteLocked):
        return exc.reason
    if isinstance(exc, SumTooLarge):
        return exc.why
    refused = server_refusal(exc)
    if refused is not None:
        return refused
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    low = text.lower()
    for words, reason, _reads_on in _WRITE_FAILURES:
        if any(w in low for w in words):
            return reason
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"the database refused it ({first[:120]})"


#: What a failed write's driver message says (any of the words), in a rep's words, and whether
#: reading goes on as before (a lock, a full disk, a file or role that may only read) or not (a
#: damaged file): `unsaved_reason`, `reads_on`.
_WRITE_FAILURES = (
    (("database is locked", "could not obtain lock", "lock timeout"),
     "another evpipe is writing to the database and did not finish in time", True),
    (("disk is full", "no space left", "disk full"), "the disk is full", True),
    (("readonly database", "read-only", "permission denied"), "the database is read-only for you", True),
    (("disk i/o error", "malformed", "not a database"),
     "the database file could not be written (damaged or on a failing disk)", False),
    (("connection is bad", "server closed the connection", "terminating connection", "connection refused",
      "could not connect", "connection failed", "consuming input failed"),
     "the database server could not be reached (stopped or restarting, or the network is down)", False),
)  # fmt: skip


def reads_on(exc: BaseException) -> bool:
    """Whether a write failed for a reason that leaves reading as it was (another writer's lock, a
    full disk, a file or a server role that may only read, sums past 64 bits), so that a command
    whose write is only bookkeeping can read on; not for a damaged file, nor an error it does not
    know."""
    if isinstance(exc, (WriteLocked, SumTooLarge)) or server_refusal(exc) is not None:
        return True
    low = " ".join(str(getattr(exc, "orig", None) or exc).split()).lower()
    return any(ok for words, _reason, ok in _WRITE_FAILURES if any(w in low for w in words))


def integrity_hint(name: object) -> str:
    """The next step for a damaged database file."""
    return (
        f"restore it from a backup (`evpipe restore` reads a dump; a copy made by `evpipe backup` can "
        f"replace it), or see what is wrong with: sqlite3 {shlex.quote(str(name))} 'PRAGMA integrity_check'"
    )


#: Below this many free bytes, an I/O error of a database file is taken for a full disk.
_NEARLY_FULL = 4 * 2**20


def _no_room_beside(name: object) -> bool:
    """Whether the disk holding the database file `name` (a path) is (nearly) full. A full disk
    made SQLite say "disk I/O error", and evpipe called the file damaged and told the user to
    restore a backup over an intact database."""
    import shutil
    from pathlib import Path

    try:
        return shutil.disk_usage(Path(str(name)).expanduser().resolve().parent).free < _NEARLY_FULL
    except (OSError, ValueError):
        return False


def database_failure(exc: BaseException, name: object, role: str | None = None) -> str | None:
    """One line for an error the database file itself caused (damaged, full, read-only, locked by
    another program) or a server refused (`server_refusal`, naming the connection's `role`), naming
    the file `name` and the next step; None for any other error. Reads the driver's message, like
    `unsaved_reason`."""
    if isinstance(exc, WriteLocked):
        return str(exc)
    refused = server_refusal(exc, role)
    if refused is not None and _JOURNAL_GUARD.search(" ".join(str(getattr(exc, "orig", None) or exc).split())):
        return f"{refused}; nothing was saved"
    if refused is not None:
        return f"{refused}; {REFUSED_NEXT}"
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    low = text.lower()
    full = "disk is full" in low or "disk full" in low or "no space left" in low
    if "disk i/o error" in low and _no_room_beside(name):
        full = True  # (SQLite says "disk I/O error" when its -wal or -shm file cannot grow)
    elif "malformed" in low or "not a database" in low or "disk i/o error" in low or "encrypted" in low:
        return f"{name} is damaged (SQLite: {text[:120]}); {integrity_hint(name)}"
    if full:
        return f"the disk holding {name} is full; nothing was saved: free some space, then try again"
    if "readonly database" in low or "read-only" in low:
        return (
            f"{name} is read-only for you; nothing was saved: run chmod u+w on it (and its folder) if "
            "it is yours, or ask its owner"
        )
    if "unable to open database file" in low:
        return (
            f"cannot open {name}: its folder, or its -wal and -shm files beside it, cannot be read or "
            "written by you; check their permissions"
        )
    if "database is locked" in low:
        return f"{name} is locked by another program; nothing was changed: try again in a moment"
    if "lock timeout" in low or "could not obtain lock" in low:  # PostgreSQL's lock_timeout (models/db.py)
        return (
            f"another evpipe is writing to {name} and kept what this change needs locked for longer than the wait; "
            "nothing was changed: try again, or wait for it to finish (EVPIPE_LOCK_TIMEOUT sets the wait)"
        )
    return None
