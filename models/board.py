"""The stage board's data (the `8` screen): the open prospects as one column per open stage.

Each column holds its prospects' ids in the board's order (expected month, no month last, then
name, then id: the pipeline's "month" order, as SQLite sorts it) and its count, TV and EV; won and
lost prospects are totals only. The rows are the pipeline's own (models/pipeline_view.py: one
RowStore, the same Ladder, the same `!` and `~` marks). A change moves one card: it leaves its
column and takes its place in the new one by bisection, so a key costs the same at any pipeline
size. Nothing here imports Textual.
"""

from __future__ import annotations

import string
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import compress
from typing import TYPE_CHECKING, Any

from .ladder import LOST, OPEN, WON, kpi_part, next_rung, open_rungs, previous_rung
from .period import Period
from .pipeline_view import Ladder, PipelineView, Row, RowStore, Totals
from .records import StageInfo

if TYPE_CHECKING:
    from .pace import Pace

#: SQLite's lower() folds ASCII letters only; the board's order is SQLite's (load_rows sorts it).
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def card_key(row: Row) -> tuple[Any, ...]:
    """Where a card sits in its column: by expected month (none last), name, id, as SQLite orders
    the pipeline's "month" sort."""
    return (row.month is None, row.month or "", row.name.translate(_ASCII_LOWER), row.id)


def predict_stage(stages: Sequence[StageInfo], current: StageInfo | None, target: str) -> StageInfo | None:
    """The stage a move (`next`, `back`, `won`, `lost`) lands on, when it can be told without the
    database (the store decides the rest: a reopen goes back to the rung it closed from)."""
    if current is None:
        return None
    if target == "next" and current.kind == OPEN:
        return next_rung(stages, current.id)
    if target == "back" and current.kind == OPEN:
        return previous_rung(stages, current.id)
    if target in (WON, LOST) and current.kind != target:
        return next((s for s in stages if s.kind == target), None)
    return None


@dataclass
class BoardColumn:
    """One open stage: its cards in order and their count, TV and EV."""

    stage: StageInfo
    ids: array = field(default_factory=lambda: array("q"))
    count: int = 0
    tv_cents: int = 0
    ev_micros: int = 0

    def add(self, part: Totals, sign: int) -> None:
        self.count += sign * part.count
        self.tv_cents += sign * part.tv_cents
        self.ev_micros += sign * part.ev_micros


@dataclass
class ClosedTotal:
    """Won or lost prospects in the KPI period: how many, and their value."""

    count: int = 0
    value_cents: int = 0


class BoardView:
    """The board: a column per open stage (in ladder order), won and lost as totals."""

    def __init__(
        self,
        stages: Sequence[StageInfo],
        ladder: Ladder,
        rows: RowStore,
        order: Sequence[int] | None = None,
        *,
        today: date,
        period: Period | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.stages = list(stages)
        self.ladder = ladder
        self.rows = rows
        self.period = period or Period()
        # the pipeline's marks (`!` overdue follow-up, `~` slow), by the pipeline's own rules: with
        # the pace, as the list's (without it, the list's fallback: stale days)
        self.marks = PipelineView(ladder, rows=rows, today=today)
        self.marks.pace = pace
        self.columns = [BoardColumn(s) for s in open_rungs(self.stages)]
        self._column_of = {c.stage.id: i for i, c in enumerate(self.columns)}
        self.won = ClosedTotal()
        self.lost = ClosedTotal()
        if order is None:  # (tests, small pipelines) sort here
            order = [r.id for r in sorted(rows.values(), key=card_key)]
        # columnar, in one pass each (100,000 prospects in tens of ms): no Row is made. Each id's
        # stage through its place in the columns (a dict of ids and stages took 15 MiB more while
        # the board opened at 100,000 prospects)
        position = rows.places()
        stage_of, live = rows.stage, rows.alive
        by_stage: dict[int, array] = {c.stage.id: c.ids for c in self.columns}
        for pid in order:
            at = position[pid] if 0 < pid < len(position) else -1
            if at >= 0 and rows.ids[at] == pid and live[at] and (ids := by_stage.get(stage_of[at])) is not None:
                ids.append(pid)
        del position
        sums: dict[tuple[int, int], list[int]] = {}  # (stage, month word) -> [count, value]
        for key, value in compress(zip(zip(rows.stage, rows.month), rows.value), rows.alive):
            total = sums.get(key)
            if total is None:
                total = sums[key] = [0, 0]
            total[0] += 1
            total[1] += value
        columns = {c.stage.id: c for c in self.columns}
        for (sid, month), (count, value) in sums.items():
            column = columns.get(sid)
            if column is not None:
                column.add(Totals(*kpi_part(value, OPEN, column.stage.probability_bp)), +1)
                column.count += count - 1  # (kpi_part counted the sum as one)
            else:
                self._closed_sum(sid, rows.words[month], count, value)

    # ------------------------------------------------------------ reading

    def column_index(self, stage_id: int) -> int | None:
        return self._column_of.get(stage_id)

    def card(self, column: int, index: int) -> Row | None:
        if 0 <= column < len(self.columns):
            ids = self.columns[column].ids
            if 0 <= index < len(ids):
                return self.rows.get(ids[index])
        return None

    def mark(self, row: Row) -> str:
        """`!` an overdue follow-up, `~` stale, else a space: the pipeline's marks."""
        if self.marks.is_overdue(row):
            return "!"
        if self.marks.is_stale(row):
            return "~"
        return " "

    def find(self, row: Row) -> tuple[int, int] | None:
        """(column, index) of a card, found by bisection on the row as the board holds it."""
        column = self._column_of.get(row.stage_id)
        if column is None:
            return None
        ids = self.columns[column].ids
        i = self._place(ids, row)
        if i < len(ids) and ids[i] == row.id:
            return column, i
        try:  # a name SQLite and Python order differently: look it up
            return column, ids.index(row.id)
        except ValueError:
            return None

    # ------------------------------------------------------------ changing

    def put(self, row: Row) -> tuple[int, int] | None:
        """Add or replace one prospect: its card leaves its old place and takes its place in its
        column. Returns (column, index) of the card, None when it is closed (totals only)."""
        old = self.rows.get(row.id)
        if old is not None:
            self._take_out(old)
        self.rows.put(row)
        column = self._column_of.get(row.stage_id)
        if column is None:
            self._closed(row, +1)
            return None
        target = self.columns[column]
        i = self._place(target.ids, row)
        target.ids.insert(i, row.id)
        target.add(self.ladder.part(row), +1)
        return column, i

    def remove(self, prospect_id: int) -> None:
        old = self.rows.get(prospect_id)
        if old is not None:
            self._take_out(old)
            self.rows.remove(prospect_id)

    def _take_out(self, old: Row) -> None:
        found = self.find(old)
        if found is not None:
            column, i = found
            del self.columns[column].ids[i]
            self.columns[column].add(self.ladder.part(old), -1)
        elif self._column_of.get(old.stage_id) is None:
            self._closed(old, -1)

    def _place(self, ids: Sequence[int], row: Row) -> int:
        rows = self.rows

        def key_of(pid: int) -> tuple[Any, ...]:
            other = rows.get(pid)
            return card_key(other) if other is not None else card_key(row)

        return bisect_left(ids, card_key(row), key=key_of)

    def _closed(self, row: Row, sign: int) -> None:
        self._closed_sum(row.stage_id, row.month, sign, sign * row.value_cents)

    def _closed_sum(self, stage_id: int, month: str | None, count: int, value_cents: int) -> None:
        """Add prospects on a closed stage to its total, when the KPI period holds them."""
        kind = self.ladder.kind(stage_id)
        if kind == OPEN or not self.period.holds(kind, month):
            return
        total = self.won if kind == WON else self.lost
        total.count += count
        total.value_cents += value_cents


__all__ = ["BoardColumn", "BoardView", "ClosedTotal", "card_key", "predict_stage"]
