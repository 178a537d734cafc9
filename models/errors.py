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
