"""The terms of the EV bridge a change belongs to, and which term a stage move is.

Apart from the journal writer (models/journal.py, which re-exports them) so that what only reads
the journal (the review's balance of activity) imports no SQLModel with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from .ladder import LOST, OPEN, WON


class BridgeCategory(StrEnum):
    """The term of the EV bridge a change belongs to; stored as its value ("new", "advance", ...)."""

    NEW = "new"
    ADVANCE = "advance"
    WIN = "win"
    REGRESS = "regress"
    LOSE = "lose"
    REOPEN = "reopen"
    EDIT = "edit"
    PROB = "prob"
    DELETE = "delete"
    LADDER = "ladder"
    ACTIVITY = "activity"
    FOLLOWUP = "followup"


def move_category(old_kind: str, old_position: int, new_kind: str, new_position: int) -> BridgeCategory:
    """The bridge term of a move: a win, a loss, a reopening, else an advance or a regression."""
    if new_kind == WON:
        return BridgeCategory.WIN
    if new_kind == LOST:
        return BridgeCategory.LOSE
    if old_kind != OPEN:
        return BridgeCategory.REOPEN
    return BridgeCategory.ADVANCE if new_position > old_position else BridgeCategory.REGRESS


def advancing_pairs(stages: Iterable[tuple[int, str, int]]) -> list[tuple[int, int]]:
    """Of `stages` (id, kind, position), each pair (from, to) whose move from an open stage is an
    advance or a win (`move_category`): what the review's balance counts as moving on."""
    ladder = list(stages)
    return [
        (a, b)
        for a, kind, position in ladder
        if kind == OPEN
        for b, to_kind, to_position in ladder
        if move_category(kind, position, to_kind, to_position) in (BridgeCategory.ADVANCE, BridgeCategory.WIN)
    ]
