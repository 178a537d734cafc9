"""Read-only mode: one switch for the whole process, checked where every write begins.

`evpipe serve` runs each browser session as its own app process; without `--allow-writes` that
process is switched read-only before it opens the database. Every write in evpipe (the store, the
importer, settings, the ladder, undo, KPI snapshots, seeding, restores, schema upgrades) opens its
transaction through `models.db.writer`, which calls `refuse_writes()` first: one check, in one
place. As a second wall, the database itself is then opened with SQLite's read-only flag
(`models.rawdb.read_only_uri`), so a write that got past the first would fail in SQLite too.
"""

from __future__ import annotations

from .errors import DomainError

#: What a refused write says, on a screen or the command line.
READ_ONLY_MESSAGE = (
    "read-only: this evpipe was opened to look, not to change (evpipe serve without --allow-writes); nothing was saved"
)


class ReadOnly(DomainError):
    """A write in a process switched read-only. Nothing was written."""


_read_only = False


def set_read_only(on: bool = True) -> None:
    """Switch the process read-only (for good: a browser session never switches it back)."""
    global _read_only
    _read_only = on


def is_read_only() -> bool:
    return _read_only


def refuse_writes() -> None:
    """Raise ReadOnly when the process is read-only: called where every write transaction opens."""
    if _read_only:
        raise ReadOnly(READ_ONLY_MESSAGE, field="read_only")


__all__ = ["READ_ONLY_MESSAGE", "ReadOnly", "is_read_only", "refuse_writes", "set_read_only"]
