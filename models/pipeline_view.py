"""The pipeline table's data: every live prospect as a compact tuple, sorted, filtered and grouped.

The app's table shows up to 100,000 prospects, so rows are loaded once as plain tuples through the
DB-API cursor (no ORM objects), repeated strings (months, dates, owners) are shared, and a change
updates one row in place. Text search runs in SQL (`matching_ids`); sorting and grouping run over
the tuples in memory. Nothing here imports Textual.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable, Iterable, NamedTuple

from sqlalchemy import Engine

from models import clock
from models.store import ProspectInfo, StageInfo


class Row(NamedTuple):
    """One live prospect, as the table needs it. Days are ISO strings ('YYYY-MM-DD'), shared
    between rows; `updated` is the moment of the last change in whole seconds (UTC-naive epoch)."""

    id: int
    name: str
    company: str
    stage_id: int
    value_cents: int
    month: str | None
    follow_up: str | None
    owner: str
    touched: str  # day of the last activity or stage change
    updated: int  # moment of the last change, seconds since 1970 (naive local time read as UTC)
    version: int


class Totals(NamedTuple):
    count: int
    tv_cents: int
    ev_micros: int


#: The sort orders `s` cycles through: (key, label).
SORTS: tuple[tuple[str, str], ...] = (
    ("month", "expected month"),
    ("ev", "EV"),
    ("value", "value"),
    ("gain", "next-step gain"),
    ("follow_up", "next follow-up"),
    ("changed", "last change"),
)
SORT_LABELS = dict(SORTS)

_ROW_COLUMNS = (
    "p.id, p.name, p.company, p.stage_id, p.value_cents, p.expected_month, substr(p.next_follow_up, 1, 10), "
    "p.owner, substr(p.last_touch_at, 1, 10), CAST(strftime('%s', p.updated_at) AS INTEGER), p.version"
)
#: Live prospects in the default order (open, won, lost; then expected month, no month last; then
#: name), so that the first screen needs no sort in Python.
_ROWS_SQL = (
    f"SELECT {_ROW_COLUMNS} FROM prospect p JOIN stage s ON s.id = p.stage_id WHERE p.deleted_at IS NULL "
    "ORDER BY CASE s.kind WHEN 'open' THEN 0 WHEN 'won' THEN 1 ELSE 2 END, p.expected_month IS NULL, "
    "p.expected_month, lower(p.name), p.id"
)


def load_rows(engine: Engine) -> list[Row]:
    """Every live prospect as a Row, in the "month" order (see `sort_key`, up to the case of
    non-ASCII letters). One query, read in chunks; repeated days, months and owners are shared."""
    shared: dict[object, object] = {}
    share = shared.setdefault
    make = Row._make
    rows: list[Row] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(_ROWS_SQL)
        while chunk := cursor.fetchmany(5000):
            for r in chunk:
                rows.append(make((r[0], r[1], r[2], r[3], r[4], share(r[5], r[5]), share(r[6], r[6]),
                                  share(r[7], r[7]), share(r[8], r[8]), r[9], r[10])))
        cursor.close()
    finally:
        raw.close()
    return rows


def load_ladder(engine: Engine) -> tuple[list[StageInfo], list[StageInfo]]:
    """(the ladder in order, stages taken off it), read with one plain query."""
    from models.store import StageInfo

    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT id, name, position, probability_bp, kind, stale_days, archived FROM stage "
                       "ORDER BY position, id")
        found = cursor.fetchall()
        cursor.close()
    finally:
        raw.close()
    active = [StageInfo(*r[:6]) for r in found if not r[6]]
    archived = [StageInfo(*r[:6]) for r in found if r[6]]
    return active, archived


def load_first_rows(engine: Engine, open_stage_ids: Iterable[int], limit: int = 200) -> list[Row]:
    """The first `limit` rows of the "month" order, quickly (the month index, no full sort), so
    the first screen can be painted while `load_rows` reads everything. Open prospects with an
    expected month only: those come first in that order."""
    ids = ",".join(str(int(i)) for i in open_stage_ids)
    if not ids:
        return []
    # unary + keeps SQLite from using the stage index, so it walks ix_prospect_month in order
    sql = (f"SELECT {_ROW_COLUMNS} FROM prospect p WHERE +p.deleted_at IS NULL AND +p.stage_id IN ({ids}) "
           "AND p.expected_month IS NOT NULL ORDER BY p.expected_month, lower(p.name), p.id LIMIT ?")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql, (limit,))
        rows = [Row._make(r) for r in cursor.fetchall()]
        cursor.close()
    finally:
        raw.close()
    return rows


def load_row(engine: Engine, prospect_id: int) -> Row | None:
    """One prospect's row (None when it is deleted or does not exist)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SELECT {_ROW_COLUMNS} FROM prospect p WHERE p.deleted_at IS NULL AND p.id = ?",
                       (prospect_id,))
        found = cursor.fetchone()
        cursor.close()
    finally:
        raw.close()
    return None if found is None else Row._make(found)


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def row_of(p: ProspectInfo) -> Row:
    """The row of a prospect a store call returned."""
    return Row(p.id, p.name, p.company, p.stage_id, p.value_cents, p.expected_month,
               p.next_follow_up.isoformat() if p.next_follow_up else None, p.owner,
               p.last_touch_at.date().isoformat(), _epoch(p.updated_at), p.version)


def contact_of(engine: Engine, prospect_id: int) -> tuple[str, str, str] | None:
    """(contact person, phone, email) of one prospect."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT contact_name, phone, email FROM prospect WHERE id = ?", (prospect_id,))
        found = cursor.fetchone()
        cursor.close()
    finally:
        raw.close()
    return None if found is None else (found[0] or "", found[1] or "", found[2] or "")


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching_ids(engine: Engine, text: str) -> set[int]:
    """Ids of live prospects whose name, company, contact person or notes contain `text`
    (case-insensitive for ASCII letters, as SQLite's LIKE is)."""
    words = text.split()
    if not words:
        raise ValueError("matching_ids: empty search")
    conds = []
    params: list[str] = []
    for word in words:
        conds.append(
            "(name LIKE ? ESCAPE '\\' OR company LIKE ? ESCAPE '\\' OR contact_name LIKE ? ESCAPE '\\' "
            "OR notes LIKE ? ESCAPE '\\')"
        )
        params.extend([_like_pattern(word)] * 4)
    sql = "SELECT id FROM prospect WHERE deleted_at IS NULL AND " + " AND ".join(conds)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql, params)
        found = {pid for (pid,) in cursor.fetchall()}
        cursor.close()
    finally:
        raw.close()
    return found


# ---------------------------------------------------------------- the ladder, as the table uses it


@dataclass(frozen=True)
class Ladder:
    """Stages by id, with what the table computes from them (EV, next-step gain, staleness)."""

    stages: dict[int, StageInfo]
    next_bp: dict[int, int]  # the probability of the stage `>` would move to (open stages only)

    @classmethod
    def of(cls, stages: Iterable[StageInfo], extra: Iterable[StageInfo] = ()) -> "Ladder":
        """The ladder from its stages; `extra` are stages off the ladder that rows may still name."""
        stages = list(stages)
        by_id = {s.id: s for s in extra}
        by_id.update({s.id: s for s in stages})
        live = sorted((s for s in stages if s.kind == "open"), key=lambda s: s.position)
        won = next((s for s in stages if s.kind == "won"), None)
        nxt: dict[int, int] = {}
        for i, s in enumerate(live):
            if i + 1 < len(live):
                nxt[s.id] = live[i + 1].probability_bp
            elif won is not None:
                nxt[s.id] = won.probability_bp
        return cls(by_id, nxt)

    def stage(self, stage_id: int) -> StageInfo | None:
        return self.stages.get(stage_id)

    def bp(self, stage_id: int) -> int:
        s = self.stages.get(stage_id)
        return s.probability_bp if s is not None else 0

    def kind(self, stage_id: int) -> str:
        s = self.stages.get(stage_id)
        return s.kind if s is not None else "open"

    def ev(self, row: Row) -> int:
        s = self.stages.get(row.stage_id)
        if s is None or s.kind == "lost":
            return 0
        return row.value_cents * s.probability_bp

    def gain(self, row: Row) -> int:
        """Next-step gain: value x (p(next stage) - p(now)); 0 for closed prospects."""
        nxt = self.next_bp.get(row.stage_id)
        if nxt is None:
            return 0
        return row.value_cents * (nxt - self.bp(row.stage_id))

    def part(self, row: Row) -> Totals:
        """What the row adds to the KPIs (lost prospects add nothing)."""
        if self.kind(row.stage_id) == "lost":
            return Totals(0, 0, 0)
        return Totals(1, row.value_cents, self.ev(row))

    def stale_cutoffs(self, today: date) -> dict[int, str]:
        """Per open stage with a limit: a prospect last touched before this day is stale."""
        return {
            s.id: (today - timedelta(days=s.stale_days)).isoformat()
            for s in self.stages.values()
            if s.kind == "open" and s.stale_days > 0
        }


_KIND_RANK = {"open": 0, "won": 1, "lost": 2}


def sort_key(mode: str, ladder: Ladder) -> Callable[[Row], object]:
    """The key of a sort order. Every order puts open prospects first, then won, then lost (what a
    rep works on comes first); "changed" is used in reverse (most recent first) by `sort_rows`."""
    rank = {sid: _KIND_RANK.get(s.kind, 0) for sid, s in ladder.stages.items()}
    if mode == "month":
        return lambda r: (rank.get(r.stage_id, 0), r.month is None, r.month or "", r.name.casefold(), r.id)
    if mode == "ev":
        return lambda r: (rank.get(r.stage_id, 0), -ladder.ev(r), r.name.casefold(), r.id)
    if mode == "value":
        return lambda r: (rank.get(r.stage_id, 0), -r.value_cents, r.name.casefold(), r.id)
    if mode == "gain":
        return lambda r: (rank.get(r.stage_id, 0), -ladder.gain(r), r.name.casefold(), r.id)
    if mode == "follow_up":
        return lambda r: (rank.get(r.stage_id, 0), r.follow_up is None, r.follow_up or "", r.name.casefold(), r.id)
    if mode == "changed":
        return lambda r: (-rank.get(r.stage_id, 0), r.updated, r.id)
    raise ValueError(f"sort: {mode!r} is not one of {', '.join(k for k, _ in SORTS)}")


def sort_rows(rows: list[Row], mode: str, ladder: Ladder) -> None:
    """Sort rows in place in the order `mode` names."""
    rows.sort(key=sort_key(mode, ladder), reverse=mode == "changed")


# ---------------------------------------------------------------- the view


@dataclass(frozen=True)
class Group:
    """A subtotal line heading one expected month's prospects (month None: no month set)."""

    month: str | None


Line = int | Group  # a prospect id, or a month's subtotal line


@dataclass
class PipelineView:
    """What the pipeline table shows: rows in order, after the owner toggle, the text filter, the
    sort and the grouping. Changes update one row in place (the row keeps its place until the next
    sort, so the cursor stays on it)."""

    ladder: Ladder
    rows: dict[int, Row] = field(default_factory=dict)
    sort: str = "month"
    grouped: bool = False
    owner: str | None = None  # only this owner's prospects, when set
    matches: set[int] | None = None  # the text filter's hits, when a filter is on
    lines: list[Line] = field(default_factory=list)
    subtotals: dict[str | None, list[int]] = field(default_factory=dict)
    today: date = field(default_factory=clock.today)

    def __post_init__(self) -> None:
        self._cutoffs = self.ladder.stale_cutoffs(self.today)
        self._index: dict[int, int] | None = None
        self._order: list[int] | None = None  # every row's id in the current sort order

    # -------------------------------------------------------- loading and building

    def load(self, rows: Iterable[Row], *, presorted: str | None = None) -> None:
        """Take these rows. `presorted` names the sort they already come in (load_rows gives
        "month"), which saves sorting them again."""
        rows = list(rows)
        self.rows = {r.id: r for r in rows}
        self._order = [r.id for r in rows] if presorted == self.sort else None
        self.rebuild()

    def set_ladder(self, ladder: Ladder) -> None:
        self.ladder = ladder
        self._cutoffs = ladder.stale_cutoffs(self.today)
        self._order = None

    def set_sort(self, mode: str) -> None:
        sort_key(mode, self.ladder)  # a bad name fails here
        if mode != self.sort:
            self.sort = mode
            self._order = None

    def visible(self, row: Row) -> bool:
        if self.owner is not None and row.owner != self.owner:
            return False
        return self.matches is None or row.id in self.matches

    def rebuild(self) -> None:
        """Recompute the lines (after a sort, filter, toggle or grouping change). The sorted order
        of all rows is kept, so filtering and toggling are one pass, not a sort."""
        if self._order is None:
            ordered = list(self.rows.values())
            sort_rows(ordered, self.sort, self.ladder)
            self._order = [r.id for r in ordered]
        rows = self.rows
        if self.owner is None and self.matches is None:
            ids = list(self._order)
        elif self.owner is None:
            matches = self.matches
            ids = [i for i in self._order if i in matches]
        else:
            visible = self.visible
            ids = [i for i in self._order if visible(rows[i])]
        self._index = None
        if not self.grouped:
            self.lines = ids
            self.subtotals = {}
            return
        by_month: dict[str | None, list[int]] = {}
        totals: dict[str | None, list[int]] = {}
        part = self.ladder.part
        for i in ids:
            r = rows[i]
            by_month.setdefault(r.month, []).append(i)
            t = totals.setdefault(r.month, [0, 0, 0])
            c, tv, ev = part(r)
            t[0] += c
            t[1] += tv
            t[2] += ev
        lines: list[Line] = []
        for month in sorted(by_month, key=lambda m: (m is None, m or "")):
            lines.append(Group(month))
            lines.extend(by_month[month])
        self.lines = lines
        self.subtotals = totals

    # -------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self.lines)

    def line(self, index: int) -> Line | None:
        if 0 <= index < len(self.lines):
            return self.lines[index]
        return None

    def index_of(self, prospect_id: int) -> int | None:
        if self._index is None:
            self._index = {item: i for i, item in enumerate(self.lines) if isinstance(item, int)}
        return self._index.get(prospect_id)

    def is_overdue(self, row: Row) -> bool:
        return (row.follow_up is not None and row.follow_up < self.today.isoformat()
                and self.ladder.kind(row.stage_id) == "open")

    def is_stale(self, row: Row) -> bool:
        cutoff = self._cutoffs.get(row.stage_id)
        return cutoff is not None and row.touched < cutoff

    def visible_totals(self) -> Totals:
        """Count, TV and EV of the prospects shown (a full pass; for tests and rare use)."""
        c = tv = ev = 0
        for item in self.lines:
            if isinstance(item, int):
                p = self.ladder.part(self.rows[item])
                c, tv, ev = c + p.count, tv + p.tv_cents, ev + p.ev_micros
        return Totals(c, tv, ev)

    # -------------------------------------------------------- changing

    def put(self, row: Row) -> int | None:
        """Add or replace one row. A row already shown keeps its line; a new one goes to the end of
        its month group (grouped) or of the table, and takes its sorted place at the next sort.
        Returns the line index it is on, or None when it is not visible."""
        old = self.rows.get(row.id)
        self.rows[row.id] = row
        if old is None and self._order is not None:
            self._order.append(row.id)
        if self.grouped:
            if old is not None and self.visible(old) and old.month in self.subtotals:
                self._add_subtotal(old.month, self.ladder.part(old), -1)
        index = self.index_of(row.id)
        if not self.visible(row):
            if index is not None:
                self._remove_line(index)
            return None
        if self.grouped:
            self._add_subtotal(row.month, self.ladder.part(row), +1)
            if index is not None and old is not None and old.month != row.month:
                self._remove_line(index)
                index = None
            if index is None:
                index = self._insert_in_group(row)
            return index
        if index is None:
            self.lines.append(row.id)
            index = len(self.lines) - 1
            if self._index is not None:
                self._index[row.id] = index
        return index

    def remove(self, prospect_id: int) -> None:
        old = self.rows.pop(prospect_id, None)
        if old is None:
            return
        if self._order is not None:
            self._order.remove(prospect_id)
        index = self.index_of(prospect_id)
        if self.grouped and self.visible(old):
            self._add_subtotal(old.month, self.ladder.part(old), -1)
        if index is not None:
            self._remove_line(index)

    def _add_subtotal(self, month: str | None, part: Totals, sign: int) -> None:
        t = self.subtotals.setdefault(month, [0, 0, 0])
        t[0] += sign * part.count
        t[1] += sign * part.tv_cents
        t[2] += sign * part.ev_micros

    def _remove_line(self, index: int) -> None:
        item = self.lines.pop(index)
        self._index = None
        if self.grouped and isinstance(item, int):
            # drop a month heading left with no prospects under it
            before = self.lines[index - 1] if index - 1 >= 0 else None
            after = self.lines[index] if index < len(self.lines) else None
            if isinstance(before, Group) and (after is None or isinstance(after, Group)):
                self.lines.pop(index - 1)
                self.subtotals.pop(before.month, None)

    def _insert_in_group(self, row: Row) -> int:
        key = (row.month is None, row.month or "")
        self._index = None
        for i, item in enumerate(self.lines):
            if isinstance(item, Group):
                gkey = (item.month is None, item.month or "")
                if gkey == key:
                    j = i + 1
                    while j < len(self.lines) and isinstance(self.lines[j], int):
                        j += 1
                    self.lines.insert(j, row.id)
                    return j
                if gkey > key:
                    self.lines[i:i] = [Group(row.month), row.id]
                    return i + 1
        self.lines.extend([Group(row.month), row.id])
        return len(self.lines) - 1

    def apply(self, p: ProspectInfo) -> int | None:
        """Bring the view up to date with a prospect a store call returned (deleted ones leave)."""
        if p.deleted:
            self.remove(p.id)
            return None
        return self.put(row_of(p))


__all__ = [
    "Group", "Ladder", "Line", "PipelineView", "Row", "SORTS", "SORT_LABELS", "Totals", "contact_of", "load_row",
    "load_first_rows", "load_ladder", "load_rows", "matching_ids", "row_of", "sort_key", "sort_rows",
]
