"""Errors the domain raises. Every message says what was wrong and what is accepted."""

from __future__ import annotations


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


class UndoBlocked(DomainError):
    """Undo refused: someone changed what the change to undo touched since (models/store_undo.py).
    `event_id` is the change that was not undone (the one a skip passes); `later` says who changed
    what, and when."""

    def __init__(self, message: str, event_id: int, later: str) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.later = later
        self.also: list[int] = []  # changes saved on the way (a skip before the refused undo)


def unsaved_reason(exc: BaseException) -> str:
    """Why a write that was not refused by a rule still did not happen, in a rep's words: the
    database was locked by another writer, the disk is full, the file is read-only, or it is
    damaged. Reads the driver's message (SQLite's and PostgreSQL's wording), so that models/ need not
    import a database library to say it."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    low = text.lower()
    if "database is locked" in low or "could not obtain lock" in low or "lock timeout" in low:
        return "another evpipe is writing to the database and did not finish in time"
    if "disk is full" in low or "no space left" in low or "disk full" in low:
        return "the disk is full"
    if "readonly database" in low or "read-only" in low or "permission denied" in low:
        return "the database is read-only for you"
    if "disk i/o error" in low or "malformed" in low or "not a database" in low:
        return "the database file could not be written (damaged or on a failing disk)"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"the database refused it ({first[:120]})"
