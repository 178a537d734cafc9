"""The pipeline table's data: every live prospect, sorted, filtered and grouped.

The app's table shows up to 100,000 prospects, so rows are read once through a DB-API cursor
(models.rawdb.raw_cursor: no ORM objects) into columns (`RowStore`: arrays of numbers, the names
and the lowercase search texts each in one UTF-8 buffer, moved to a file when large (models.texts),
repeated months, days and owners stored once) and a `Row` tuple is made only for a row that is
looked at. Sorting runs in SQL (`ordered_ids`); the text filter and the grouping run
over the columns in memory; a change updates one row in place. Nothing here imports Textual.
"""

from __future__ import annotations

import calendar
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSequence, MutableSet, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, partial
from itertools import compress, islice, repeat
from operator import and_, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast, overload

from . import clock
from .ladder import (
    KIND_RANK,
    OPEN,
    counts,
    ev_micros,
    ev_sql,
    gain_sql,
    kind_rank_sql,
    kpi_part,
    next_probability_sql,
    next_rungs,
    next_step_gain,
)
from .names import display_name
from .queries import listing_chunks
from .rawdb import day_of, dialect_name, epoch_of, fetch_all, fetch_chunks, no_index, raw_cursor
from .texts import SpilledBytes, TextColumn

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .pace import Pace
    from .records import ProspectInfo, StageInfo


class FilterRule(Protocol):
    """The filter's rule for one row (models/filters.py, `Filter.holds`), as the view uses it."""

    def holds(self, row: Row, ladder: Ladder, hay: str, today: date) -> bool: ...


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


# The functional form on purpose: in the class form mypy reads the field `count` as overriding tuple.count.
Totals = NamedTuple("Totals", [("count", int), ("tv_cents", int), ("ev_micros", int)])  # noqa: UP014  (see above)


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


@cache
def _row_columns(dialect: str) -> str:
    """A Row's columns, in `dialect`'s SQL (rawdb.dialect_name)."""
    return (
        f"p.id, p.name, p.company, p.stage_id, p.value_cents, p.expected_month, "
        f"{day_of('p.next_follow_up', dialect)}, p.owner, {day_of('p.last_touch_at', dialect)}, "
        f"{epoch_of('p.updated_at', dialect)}, p.version"
    )


_RANK_SQL = kind_rank_sql("s.kind")


def load_ladder(engine: Engine) -> tuple[list[StageInfo], list[StageInfo]]:
    """(the ladder in order, stages taken off it), read with one plain query."""
    from .records import StageInfo

    with raw_cursor(engine) as cursor:
        found = fetch_all(
            cursor,
            "SELECT id, name, position, probability_bp, kind, stale_days, archived FROM stage ORDER BY position, id",
        )
    active = [StageInfo(*r[:6]) for r in found if not r[6]]
    archived = [StageInfo(*r[:6]) for r in found if r[6]]
    return active, archived


def _owner_sql(owner: str | None) -> tuple[str, dict[str, Any]]:
    """The condition that keeps only `owner`'s prospects (none when None), and its parameter: a
    rep the owner lets see only their own (models/visibility.py) reads nothing else."""
    return ("", {}) if owner is None else (" AND p.owner = :scope_owner", {"scope_owner": owner})


def load_first_rows(
    engine: Engine, open_stage_ids: Iterable[int], limit: int = 200, *, owner: str | None = None
) -> list[Row]:
    """The first `limit` rows of the "month" order, quickly (the listing index, no sort), so
    the first screen can be painted while `load_rows` reads everything. Open prospects with an
    expected month only: those come first in that order. `owner`: only theirs."""
    ids = ",".join(str(int(i)) for i in open_stage_ids)
    if not ids:
        return []
    dialect = dialect_name(engine)
    mine, params = _owner_sql(owner)
    # no_index (unary + on SQLite) keeps SQLite from using the stage index, so it walks the listing index in order
    sql = (
        f"SELECT {_row_columns(dialect)} FROM prospect p WHERE p.deleted_at IS NULL "
        f"AND {no_index('p.stage_id', dialect)} IN ({ids}) "
        f"AND p.expected_month IS NOT NULL{mine} ORDER BY p.expected_month, lower(p.name), p.id LIMIT :limit"
    )
    with raw_cursor(engine) as cursor:
        return [Row._make(r) for r in fetch_all(cursor, sql, {"limit": limit, **params})]


def load_row(engine: Engine, prospect_id: int) -> Row | None:
    """One prospect's row (None when it is deleted or does not exist)."""
    with raw_cursor(engine) as cursor:
        found = fetch_all(
            cursor,
            f"SELECT {_row_columns(dialect_name(engine))} FROM prospect p WHERE p.deleted_at IS NULL AND p.id = :id",
            {"id": prospect_id},
        )
    return Row._make(found[0]) if found else None


def rows_by_id(source: Any, prospect_ids: Iterable[int], *, owner: str | None = None) -> dict[int, tuple[Row, str]]:
    """The rows and search texts of these prospects (one query; deleted ones are left out, and,
    with `owner`, those of anyone else): what the live screens apply when other sessions changed
    them (tui/live_sync.py)."""
    ids = sorted({int(i) for i in prospect_ids})
    if not ids:
        return {}
    params: dict[str, Any] = {f"i{n}": pid for n, pid in enumerate(ids)}
    mine, more = _owner_sql(owner)
    sql = (
        f"SELECT {_row_columns(dialect_name(source))}, p.contact_name, p.notes FROM prospect p "
        f"WHERE p.deleted_at IS NULL AND p.id IN ({', '.join(':' + k for k in params)}){mine}"
    )
    params.update(more)
    out: dict[int, tuple[Row, str]] = {}
    for r in fetch_all(source, sql, params):
        row = Row._make(r[:11])
        out[row.id] = (row, haystack(row.name, row.company, r[11] or "", r[12] or ""))
    return out


def owners_of(source: Any, prospect_ids: Iterable[int]) -> dict[int, str]:
    """Whose each of these prospects is, deleted ones too (one query): which changes other
    sessions made a rep who sees only their own may hear of (tui/live_sync.py)."""
    ids = sorted({int(i) for i in prospect_ids})
    if not ids:
        return {}
    params = {f"i{n}": pid for n, pid in enumerate(ids)}
    sql = f"SELECT id, owner FROM prospect WHERE id IN ({', '.join(':' + k for k in params)})"
    return {int(pid): str(owner) for pid, owner in fetch_all(source, sql, params)}


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def row_of(p: ProspectInfo) -> Row:
    """The row of a prospect a store call returned."""
    return Row(
        p.id,
        p.name,
        p.company,
        p.stage_id,
        p.value_cents,
        p.expected_month,
        p.next_follow_up.isoformat() if p.next_follow_up else None,
        p.owner,
        p.last_touch_at.date().isoformat(),
        _epoch(p.updated_at),
        p.version,
    )


def hay_of(p: ProspectInfo) -> str:
    return haystack(p.name, p.company, p.contact_name, p.notes)


def contacts_of(engine: Engine, prospect_ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    """(contact person, phone, email) of each of these prospects (one query)."""
    ids = [int(i) for i in prospect_ids]
    if not ids:
        return {}
    params = {f"i{n}": pid for n, pid in enumerate(ids)}
    sql = f"SELECT id, contact_name, phone, email FROM prospect WHERE id IN ({', '.join(':' + k for k in params)})"
    with raw_cursor(engine) as cursor:
        return {
            pid: (name or "", phone or "", email or "") for pid, name, phone, email in fetch_all(cursor, sql, params)
        }


# ---------------------------------------------------------------- the rows, as columns


#: Lines `pick` tests in one go (one call into C, holding the interpreter lock) before its pause.
PICK_SLICE = 10_000


def pick(
    source: array, matches: AbstractSet[int], whole: bool = False, pause: Callable[[], None] | None = None
) -> array:
    """The ids of `source` (lines, in order) that are in `matches`, in order, as a new array; all
    of them when `whole` (the filter lets every row through). A slice of PICK_SLICE lines at a time,
    `pause` between slices: a worker picking them lets the UI thread in between."""
    if whole:
        return array("q", source)
    out = array("q")
    if not matches or not source:
        return out
    # one byte per id rather than a set: a set's lookups of ids in display order miss the
    # memory caches (30 ms for 87,000 lines at 100,000 prospects, against 17 with the mask made)
    mask = matches if isinstance(matches, IdMask) else IdMask(matches, max(matches))
    bits = mask.bits
    for start in range(0, len(source), PICK_SLICE):
        # the slice's ids made ints once (tolist, in C), for the lookups and the compress both:
        # each made its own from the array (88,000 lines at 100,000 prospects: 11 -> 8.5 ms)
        part = source[start : start + PICK_SLICE].tolist()
        try:
            # one itemgetter of the slice's ids: a third quicker than a map of bits.__getitem__
            flags = itemgetter(*part)(bits) if len(part) > 1 else (bits[part[0]],)
        except IndexError:  # a line added since the mask was made, above its highest id
            flags = tuple(mask.flags(part, max(part)))
        out.extend(compress(part, flags))
        if pause is not None and len(source) > PICK_SLICE:
            pause()
    return out


class IdMask(MutableSet):
    """A set of prospect ids as one byte per id (the database's ids, counted up from 1): a million
    prospects take a megabyte, where a set of their ids takes sixty (and 7 MiB for the 87,000 hits
    of a one-letter filter at 100,000); `flags` tests an array of ids in C. It is a set as far as
    its users go (`in`, `add`, `discard`, `len`, iteration in id order, `==` with a set)."""

    __slots__ = ("bits", "count")

    def __init__(self, ids: Iterable[int] = (), top: int = 0) -> None:
        """The mask of `ids` (none above `top`): set in C, one call per id, no object kept."""
        bits = self.bits = bytearray(top + 1)
        deque(map(bits.__setitem__, ids, repeat(1)), maxlen=0)
        self.count = bits.count(1)

    @classmethod
    def in_parts(cls, parts: Iterable[Iterable[int]], top: int, pause: Callable[[], None] | None = None) -> IdMask:
        """The mask of the ids of `parts` (none above `top`), one call into C a part and `pause`
        after each: a worker building a big mask lets the UI thread in between."""
        mask = cls((), top)
        bits = mask.bits
        for ids in parts:
            deque(map(bits.__setitem__, ids, repeat(1)), maxlen=0)
            if pause is not None:
                pause()
        mask.count = bits.count(1)
        return mask

    def without(self, ids: Iterable[int], pause: Callable[[], None] | None = None) -> IdMask:
        """A copy of this mask less `ids`: the bytes copied in one call into C, then one call per
        id cleared (for a few ids out of many, far less than setting the many), PICK_SLICE ids a
        call into C with `pause` between (140,000 ids at a million prospects held the
        interpreter lock 13 ms)."""
        other = IdMask()
        bits = other.bits = bytearray(self.bits)
        if pause is None:
            deque(map(bits.__setitem__, ids, repeat(0)), maxlen=0)
        else:
            left = iter(ids)
            while part := array("q", islice(left, PICK_SLICE)):
                deque(map(bits.__setitem__, part, repeat(0)), maxlen=0)
                pause()
        other.count = bits.count(1)
        return other

    def add(self, pid: int) -> None:
        if pid >= len(self.bits):
            self.bits.extend(bytes(pid + 1 - len(self.bits) + 1024))
        if not self.bits[pid]:
            self.bits[pid] = 1
            self.count += 1

    def discard(self, pid: int) -> None:
        if 0 <= pid < len(self.bits) and self.bits[pid]:
            self.bits[pid] = 0
            self.count -= 1

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and 0 <= pid < len(self.bits) and bool(self.bits[pid])

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        return compress(range(len(self.bits)), self.bits)

    def __repr__(self) -> str:
        return f"IdMask({sorted(self)!r})"

    def flags(self, ids: Iterable[int], top: int) -> Iterator[int]:
        """1 or 0 for each of `ids` (none above `top`), as `compress` takes them: one pass in C.
        The mask is not changed (a worker may test it while the UI thread adds to it)."""
        bits = self.bits
        if top >= len(bits):
            bits = bits + bytes(top + 1 - len(bits))
        return map(bits.__getitem__, ids)


def flags_of(ids: AbstractSet[int], items: Iterable[int], top: int) -> Iterator[object]:
    """Whether each of `items` (ids, none above `top`) is in `ids`: in C for an IdMask (a byte
    each) and for a set (its lookups)."""
    return ids.flags(items, top) if isinstance(ids, IdMask) else map(ids.__contains__, items)


def kept_ids(ids: array, flags: Callable[[array], Iterable[object]], pause: Callable[[], None] | None) -> array:
    """The ids whose flag is set (`flags(part)`: one for each id of `part`), as a new array: one
    call into C, or PICK_SLICE ids a call with `pause` after each where one is given (a worker lets
    the UI thread in: a million ids in one call held the interpreter lock some 100 ms)."""
    if pause is None or len(ids) <= PICK_SLICE:
        return array("q", compress(ids, flags(ids)))
    out = array("q")
    for i in range(0, len(ids), PICK_SLICE):
        part = ids[i : i + PICK_SLICE]
        out.extend(compress(part, flags(part)))
        pause()
    return out


def haystack(name: str, company: str, contact: str, notes: str) -> str:
    """What the text filter searches: name, company, contact person and notes, case-folded, as
    they are shown (`display_name`: without emoji selectors, skin tones and joiners, which the
    filter box leaves out of what is typed too)."""
    text = "\n".join((name, company, contact, notes)).casefold()
    return text if text.isascii() else display_name(text)


class RowStore(Mapping):
    """Live prospects by id, kept as columns in id order (about 250 bytes a prospect, against
    700 as tuples in a dict); `store[id]` makes the Row. Removed prospects are marked, not moved.
    Companies, months, days and owners repeat: each is stored once (`words`), a row holds its index."""

    def __init__(self) -> None:
        # Each number column in the smallest type its numbers need as a pipeline is: 2 bytes ("H")
        # for indexes into `words`, stage ids and versions, 4 ("i") for ids, money (cents, to 21
        # million) and the moment of the last change (seconds, to 2038). A number that does not
        # fit widens every one of them (NARROW, `_widen`), once: to 4 bytes, and 8 for ids, money
        # and moments. 26 bytes a prospect less than the wide types, 2.5 MiB at 100,000.
        self.ids = array("i")
        self.names = TextColumn()
        self.company = array("H")  # index into self.words: a company has many prospects
        self.stage = array("H")
        self.value = array("i")
        self.month = array("H")  # index into self.words
        self.follow = array("H")
        self.owner = array("H")
        self.touched = array("H")
        self.updated = array("i")
        self.version = array("H")
        self.alive = bytearray()
        self.hay = TextColumn()  # each row's search text (`haystack`)
        self.words: list[str | None] = [None]  # months, days and owners, each stored once
        self._word_index: dict[str | None, int] = {None: 0}
        self._count = 0
        self.changes = 0  # counts puts and removes: positions noted before a change may be stale
        # copies sharing these columns (`copy`), this one included; None: they are this store's
        self._sharing: list[int] | None = None

    _COLUMNS = ("ids", "company", "stage", "value", "month", "follow", "owner", "touched", "updated", "version")
    #: Each number column (in _COLUMNS' order) and the type it widens to (see __init__).
    NARROW = {
        "ids": "q",
        "company": "i",
        "stage": "i",
        "value": "q",
        "month": "i",
        "follow": "i",
        "owner": "i",
        "touched": "i",
        "updated": "q",
        "version": "i",
    }

    def _widen(self) -> None:
        """A number did not fit a NARROW column: each of them is copied into its wider type (once
        in a store's life, 65,536 companies, days and owners or a stage id past 65,535)."""
        for name, wide in self.NARROW.items():
            column = getattr(self, name)
            if column.typecode != wide:
                setattr(self, name, array(wide, column))

    def copy(self) -> RowStore:
        """A copy to change apart (the board's). It shares the columns until one of the two changes
        a row (`_own`: that one copies them first, in C): the board opened on a million prospects
        with a copy of every column, 77 MiB more before any card moved."""
        other = RowStore()
        for name in self._COLUMNS:
            setattr(other, name, getattr(self, name))
        other.names, other.hay, other.alive = self.names, self.hay, self.alive
        other.words, other._word_index = self.words, self._word_index
        other._count = self._count
        sharing = self._sharing or [1]
        sharing[0] += 1
        self._sharing = other._sharing = sharing
        return other

    def _own(self) -> None:
        """Before a row changes: columns shared with a copy are copied first (once), so that the
        change is this store's alone."""
        sharing = self._sharing
        if sharing is None:
            return
        self._sharing = None
        sharing[0] -= 1
        if sharing[0] == 0:  # (the others have taken copies of their own: these are this one's)
            return
        for name in self._COLUMNS:
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, column))
        self.names, self.hay, self.alive = self.names.copy(), self.hay.copy(), bytearray(self.alive)
        self.words, self._word_index = list(self.words), dict(self._word_index)

    def _word(self, text: str | None) -> int:
        index = self._word_index.get(text)
        if index is None:
            index = self._word_index[text] = len(self.words)
            self.words.append(text)
        return index

    def _pos(self, prospect_id: int) -> int | None:
        i = bisect_left(self.ids, prospect_id)
        if i < len(self.ids) and self.ids[i] == prospect_id:
            return i
        return None

    def append_raw(
        self, pid, name, company, stage_id, value, month, follow, owner, touched, updated, version, hay: str
    ) -> None:
        """Add a row read from the database; ids must come in increasing order (a store being
        loaded: never one sharing its columns with a copy)."""
        word = self._word
        company, month, follow, owner, touched = word(company), word(month), word(follow), word(owner), word(touched)
        n = len(self.ids)
        try:  # (in NARROW's order)
            self.ids.append(pid)
            self.company.append(company)
            self.stage.append(stage_id)
            self.value.append(value)
            self.month.append(month)
            self.follow.append(follow)
            self.owner.append(owner)
            self.touched.append(touched)
            self.updated.append(updated)
            self.version.append(version)
        except OverflowError:
            self._widen()
            numbers = (pid, company, stage_id, value, month, follow, owner, touched, updated, version)
            for column_name, number in zip(self.NARROW, numbers, strict=True):
                column = getattr(self, column_name)
                if len(column) == n:  # (not appended before the one that did not fit)
                    column.append(number)
        # (TextColumn.append, written out: a call less for each of 100,000 rows; the columns move
        # to a file past texts.SPILL bytes in `spill`, after each chunk read)
        for column, text in ((self.names, name), (self.hay, hay)):
            data, encoded = column.data, text.encode()
            if isinstance(data, SpilledBytes):  # after the bytes not yet written, written in `spill`
                start = data.size + len(data.tail)
                data.tail.extend(encoded)
            else:
                start = len(data)
                data.extend(encoded)
            column.starts.append(start)
            column.ends.append(start + len(encoded))
        self.alive.append(1)
        self._count += 1

    def spill(self) -> None:
        """Move the names and the search texts to a file if they have grown past texts.SPILL bytes,
        or write what waits to be (rows being read: `append_raw` does neither)."""
        self.names.settle()
        self.hay.settle()

    # -------------------------------------------------------- the mapping

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        alive = self.alive
        return (pid for i, pid in enumerate(self.ids) if alive[i])

    def __contains__(self, prospect_id: object) -> bool:
        if not isinstance(prospect_id, int):
            return False
        i = self._pos(prospect_id)
        return i is not None and bool(self.alive[i])

    def __getitem__(self, prospect_id: int) -> Row:
        i = self._pos(prospect_id)
        if i is None or not self.alive[i]:
            raise KeyError(prospect_id)
        return self.row_at(i)

    def row_at(self, i: int) -> Row:
        w = self.words
        # company, owner and touched come from NOT NULL columns: their words are never None.
        return Row(
            self.ids[i],
            self.names[i],
            cast(str, w[self.company[i]]),
            self.stage[i],
            self.value[i],
            w[self.month[i]],
            w[self.follow[i]],
            cast(str, w[self.owner[i]]),
            cast(str, w[self.touched[i]]),
            self.updated[i],
            self.version[i],
        )

    # -------------------------------------------------------- changing

    def put(self, row: Row, hay: str | None = None) -> None:
        """Add or replace a row. `hay` (see `haystack`) replaces the search text when given."""
        self._own()
        self.changes += 1
        i = self._pos(row.id)
        if i is None:
            i = bisect_left(self.ids, row.id)
            try:
                self.ids.insert(i, row.id)
            except OverflowError:
                self._widen()
                self.ids.insert(i, row.id)
            self.names.insert(i, row.name)
            for column in (
                self.company,
                self.stage,
                self.value,
                self.month,
                self.follow,
                self.owner,
                self.touched,
                self.updated,
                self.version,
            ):
                column.insert(i, 0)
            self.hay.insert(i, "")
            self.alive.insert(i, 0)
        if not self.alive[i]:
            self.alive[i] = 1
            self._count += 1
        self.names[i] = row.name
        word = self._word
        company, month, follow, owner = word(row.company), word(row.month), word(row.follow_up), word(row.owner)
        narrow: tuple[int, ...] = (row.id, company, row.stage_id, row.value_cents, month, follow, owner)
        narrow += (word(row.touched), row.updated, row.version)
        try:
            self._set_narrow(i, narrow)
        except OverflowError:
            self._widen()
            self._set_narrow(i, narrow)
        if hay is not None:
            self.hay[i] = hay
        elif self.hay.empty(i):
            self.hay[i] = haystack(row.name, row.company, "", "")

    def _set_narrow(self, i: int, numbers: tuple[int, ...]) -> None:
        """Row `i`'s numbers in the NARROW columns, in NARROW's order."""
        for name, number in zip(self.NARROW, numbers, strict=True):
            getattr(self, name)[i] = number

    def remove(self, prospect_id: int) -> Row | None:
        i = self._pos(prospect_id)
        if i is None or not self.alive[i]:
            return None
        self._own()
        row = self.row_at(i)
        self.alive[i] = 0
        self._count -= 1
        self.changes += 1
        return row

    def hay_of(self, prospect_id: int) -> str:
        """The search text of a held prospect ("" when it is not held)."""
        i = self._pos(prospect_id)
        return self.hay[i] if i is not None else ""

    def places(self) -> array:
        """Each held id's place in the columns, indexed by the id: 4 bytes an id up to the highest,
        set in C (a dict of 100,000 ids and places took 10 MiB). An id not held reads 0, the first
        row's place: check `ids[place]` where an id may not be held."""
        place = array("i", bytes(4 * (self.top + 1)))
        deque(map(place.__setitem__, self.ids, range(len(self.ids))), maxlen=0)
        return place

    def positions(self, prospect_ids: AbstractSet[int]) -> array:
        """Where these prospects are in the columns, in order (live ones only): one pass in C."""
        return array(
            "i", compress(range(len(self.ids)), map(and_, self.alive, flags_of(prospect_ids, self.ids, self.top)))
        )

    @property
    def top(self) -> int:
        """The highest id held (0 when none): ids come in increasing order."""
        return self.ids[-1] if self.ids else 0

    def mask_at(self, positions: Sequence[int], pause: Callable[[], None] | None = None) -> IdMask:
        """The ids at these positions in the columns, as an IdMask: PICK_SLICE positions at a time,
        `pause` between them (a worker lets the UI thread in: a quarter of a million hits in one
        call into C held the interpreter lock some 20 ms)."""
        at = self.ids.__getitem__
        if pause is None or len(positions) <= PICK_SLICE:
            return IdMask(map(at, positions), self.top)
        slices = range(0, len(positions), PICK_SLICE)
        return IdMask.in_parts((map(at, positions[i : i + PICK_SLICE]) for i in slices), self.top, pause)

    # -------------------------------------------------------- bulk reads

    def owned_by(self, owner: str) -> set[int]:
        index = self._word_index.get(owner)
        if index is None:
            return set()
        ids, alive, owners = self.ids, self.alive, self.owner
        return {ids[i] for i in range(len(ids)) if alive[i] and owners[i] == index}


def _store_sql(dialect: str, mine: str = "") -> str:
    """Every live prospect (`mine`: one owner's) in id order. On SQLite, NOT INDEXED: the table read
    straight through, already in id order; SQLite, keeping no statistics, went through the live
    prospects' index instead, a table lookup a row, and then sorted them all by id (a million
    prospects: 9.1 -> 3.9 s; one owner's 125,000 of them: 1.4 -> 0.9 s)."""
    scan = " NOT INDEXED" if dialect == "sqlite" else ""
    return (
        f"SELECT {_row_columns(dialect)}, p.contact_name, p.notes FROM prospect p{scan} "
        f"WHERE p.deleted_at IS NULL{mine} ORDER BY p.id"
    )


def load_rows(
    engine: Engine, order_mode: str | None = None, ladder: Ladder | None = None, *, owner: str | None = None
) -> tuple[RowStore, array | None]:
    """Every live prospect (`owner`: only theirs), into a RowStore, and (when `order_mode` is
    given) their ids in that sort order, both read in one transaction so that they agree."""
    store = RowStore()
    add = store.append_raw
    order = None
    mine, params = _owner_sql(owner)
    with raw_cursor(engine, transaction=True) as cursor:
        for chunk in fetch_chunks(cursor, _store_sql(dialect_name(engine), mine), params):
            for r in chunk:
                hay = "\n".join((r[1], r[2], r[11], r[12])).casefold()  # (`haystack`, written out)
                add(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    r[8],
                    r[9],
                    r[10],
                    hay if hay.isascii() else display_name(hay),
                )
            store.spill()
        if order_mode is not None:
            order = _ordered(cursor, order_mode, ladder or Ladder({}, {}), owner)
    return store, order


def ordered_ids(engine: Engine, mode: str, ladder: Ladder, *, owner: str | None = None) -> array:
    """Ids of live prospects (`owner`: only theirs) in sort order `mode` (see SORTS), sorted by
    SQLite. Every order puts open prospects first, then won, then lost: what a rep works on comes
    first."""
    with raw_cursor(engine, transaction=True) as cursor:
        return _ordered(cursor, mode, ladder, owner)


def _id_only(stages: object) -> tuple[str, dict[str, Any]]:
    """`listing_chunks`'s columns: the id alone."""
    return "p.id", {}


def _ordered(cursor, mode: str, ladder: Ladder, owner: str | None = None) -> array:
    ids = array("q")
    if mode == "month":  # the listing's order, read from its index (no sort)
        for chunk in listing_chunks(cursor, _id_only, owner=owner, size=5000):
            ids.extend(pid for (pid,) in chunk)
        return ids
    name = "lower(p.name), p.id"
    if mode == "ev":
        order = f"{ev_sql('p.value_cents', 's.kind', 's.probability_bp')} DESC, {name}"
    elif mode == "value":
        order = f"p.value_cents DESC, {name}"
    elif mode == "gain":
        nxt = next_probability_sql("p.stage_id", "s.probability_bp", ladder.next_bp)
        order = f"{gain_sql('p.value_cents', 's.probability_bp', nxt)} DESC, {name}"
    elif mode == "follow_up":
        order = f"p.next_follow_up IS NULL, p.next_follow_up, {name}"
    elif mode == "changed":
        order = "p.updated_at DESC, p.id DESC"
    else:
        raise ValueError(f"sort: {mode!r} is not one of {', '.join(k for k, _ in SORTS)}")
    mine, params = _owner_sql(owner)
    for chunk in fetch_chunks(
        cursor,
        f"SELECT p.id FROM prospect p JOIN stage s ON s.id = p.stage_id "
        f"WHERE p.deleted_at IS NULL{mine} ORDER BY {_RANK_SQL}, {order}",
        params,
        size=5000,
    ):
        ids.extend(pid for (pid,) in chunk)
    return ids


# ---------------------------------------------------------------- the ladder, as the table uses it


@dataclass(frozen=True)
class Ladder:
    """Stages by id, with what the table computes from them (EV, next-step gain, staleness)."""

    stages: dict[int, StageInfo]
    next_bp: dict[int, int]  # the probability of the stage `>` would move to (open stages only)

    @classmethod
    def of(cls, stages: Iterable[StageInfo], extra: Iterable[StageInfo] = ()) -> Ladder:
        """The ladder from its stages; `extra` are stages off the ladder that rows may still name."""
        stages = list(stages)
        by_id = {s.id: s for s in extra}
        by_id.update({s.id: s for s in stages})
        return cls(by_id, {sid: s.probability_bp for sid, s in next_rungs(stages).items()})

    def stage(self, stage_id: int) -> StageInfo | None:
        return self.stages.get(stage_id)

    def bp(self, stage_id: int) -> int:
        s = self.stages.get(stage_id)
        return s.probability_bp if s is not None else 0

    def kind(self, stage_id: int) -> str:
        s = self.stages.get(stage_id)
        return s.kind if s is not None else OPEN

    def ev(self, row: Row) -> int:
        s = self.stages.get(row.stage_id)
        return 0 if s is None else ev_micros(row.value_cents, s.kind, s.probability_bp)

    def gain(self, row: Row) -> int:
        """Next-step gain: value x (p(next stage) - p(now)); 0 for closed prospects."""
        return next_step_gain(row.value_cents, self.bp(row.stage_id), self.next_bp.get(row.stage_id))

    def part(self, row: Row) -> Totals:
        """What the row adds to the KPIs (lost prospects add nothing)."""
        return Totals(*kpi_part(row.value_cents, self.kind(row.stage_id), self.bp(row.stage_id)))

    def stale_cutoffs(self, today: date) -> dict[int, str]:
        """Per open stage with a limit: a prospect last touched before this day is stale (the stale
        rule of models/pace.py, which slow falls back on)."""
        from .pace import stale_cutoff

        return {
            s.id: cut
            for s in self.stages.values()
            if s.kind == OPEN and (cut := stale_cutoff(today, s.stale_days)) is not None
        }


def sort_key(mode: str, ladder: Ladder) -> Callable[[Row], tuple[Any, ...]]:
    """The key of a sort order. Every order puts open prospects first, then won, then lost (what a
    rep works on comes first). Ascending, so that a new row's place is found by bisection."""
    rank = {sid: KIND_RANK.get(s.kind, 0) for sid, s in ladder.stages.items()}
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
    if mode == "changed":  # most recent first
        return lambda r: (rank.get(r.stage_id, 0), -r.updated, -r.id)
    raise ValueError(f"sort: {mode!r} is not one of {', '.join(k for k, _ in SORTS)}")


def sort_rows(rows: list[Row], mode: str, ladder: Ladder) -> None:
    """Sort rows in place in the order `mode` names."""
    rows.sort(key=sort_key(mode, ladder))


# ---------------------------------------------------------------- the view


@dataclass(frozen=True)
class Group:
    """A subtotal line heading one expected month's prospects (month None: no month set)."""

    month: str | None


Line = int | Group  # a prospect id, or a month's subtotal line


class GroupedLines(MutableSequence):
    """Grouped by month, the lines: prospect ids and month headings in one array of 8-byte numbers,
    a heading kept as -(k + 1) for the k-th of `groups` (ids are never below 1). A list held a
    Python int for each line, 40 bytes a line with its slot: 40 MiB more while a million
    prospects were grouped. `lines[i]` gives the id or the Group; `index` and `in` look for an id
    in C. Headings taken out stay in `groups` (a few a month at most), their numbers unused."""

    __slots__ = ("groups", "ids")

    def __init__(self) -> None:
        self.ids = array("q")
        self.groups: list[Group] = []

    def _code(self, item: Line) -> int:
        if isinstance(item, Group):
            self.groups.append(item)
            return -len(self.groups)
        return item

    def _item(self, code: int) -> Line:
        return code if code > 0 else self.groups[-code - 1]

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Line: ...
    @overload
    def __getitem__(self, index: slice) -> list[Line]: ...
    def __getitem__(self, index: int | slice) -> Line | list[Line]:
        if isinstance(index, slice):
            return list(map(self._item, self.ids[index]))
        return self._item(self.ids[index])

    @overload
    def __setitem__(self, index: int, item: Line) -> None: ...
    @overload
    def __setitem__(self, index: slice, item: Iterable[Line]) -> None: ...
    def __setitem__(self, index: int | slice, item: Any) -> None:
        if isinstance(index, slice):
            self.ids[index] = array("q", map(self._code, item))
        else:
            self.ids[index] = self._code(item)

    def __delitem__(self, index: int | slice) -> None:
        del self.ids[index]

    def insert(self, index: int, item: Line) -> None:
        self.ids.insert(index, self._code(item))

    def append_group(self, heading: Group, ids: array) -> None:
        """A month's heading and its prospects' ids, at the end (a copy of the ids in C)."""
        self.ids.append(self._code(heading))
        self.ids.extend(ids)

    def __iter__(self) -> Iterator[Line]:
        return map(self._item, self.ids)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, int):
            return item > 0 and item in self.ids
        return any(item == g for g in self)

    def index(self, item: Any, start: int = 0, stop: int | None = None) -> int:
        stop = len(self.ids) if stop is None else stop
        if isinstance(item, int):
            if item > 0:
                return self.ids.index(item, start, stop)
            raise ValueError(f"{item} is not a prospect's line")
        for i in range(max(0, start), min(stop, len(self.ids))):
            if self.ids[i] < 0 and self._item(self.ids[i]) == item:
                return i
        raise ValueError(f"{item!r} is not among the lines")


def _index(lines: Sequence[Line], prospect_id: int) -> int | None:
    """Where a prospect's id is among `lines`, looking at each (None: not there)."""
    try:
        return lines.index(prospect_id)
    except ValueError:
        return None


@dataclass(frozen=True)
class Primed:
    """What `PipelineView.prime` worked out for freshly read rows, off the UI thread."""

    rows: RowStore
    ladder: Ladder
    open_ids: IdMask
    base: tuple[tuple[Any, ...], array] | None  # `_unfiltered`'s key and lines, or None


@dataclass
class PipelineView:
    """What the pipeline table shows: rows in order, after the owner toggle, the closed toggle, the
    filter, the sort and the grouping. Changes update one row in place (the row keeps its place
    until the next sort, so the cursor stays on it); a row that comes into view (a new prospect, one
    reopened) takes its place in the current sort.

    `scope` is not a view setting but a limit: the one owner whose prospects the view holds at all
    (a rep the owner lets see only their own, models/visibility.py). The owner toggle and the
    filter narrow within it, never past it, and another owner's row is never taken in."""

    ladder: Ladder
    rows: RowStore = field(default_factory=RowStore)
    sort: str = "month"
    grouped: bool = False
    owner: str | None = None  # only this owner's prospects, when set
    scope: str | None = None  # only this owner's prospects are held at all (see the class's note)
    matches: MutableSet[int] | None = None  # the filter's hits (an IdMask; a set in tests), when a filter is on
    rule: FilterRule | None = None  # the filter `matches` are the hits of: a changed row is tested again
    closed: bool = False  # won and lost prospects shown too (by default only open ones are)
    lines: GroupedLines | array = field(default_factory=GroupedLines)  # an array of ids when not grouped
    subtotals: dict[str | None, list[int]] = field(default_factory=dict)
    today: date = field(default_factory=clock.today)
    pace: Pace | None = None  # each stage's pace (models/pace.py), read in a worker; slow = `~`

    def __post_init__(self) -> None:
        self._cutoffs = self.ladder.stale_cutoffs(self.today)
        self._order: array | None = None  # every row's id in the current sort order
        self._marked: list[tuple[bool, int]] | None = None  # rows added/removed since `mark()`
        self._open_ids: IdMask | None = None  # ids of the rows on open stages (kept while valid)
        self._base: tuple[tuple[Any, ...], array] | None = None  # the lines before the filter (see `_unfiltered`)
        # `lines` is an array held elsewhere too (the ids before the filter, a filter's worker
        # reading them): copied before it changes
        self._shared_lines = False
        self._groups = 0  # month headings among the lines, when grouped
        # ids whose line was kept although `visible` says no (won while only open ones are shown,
        # no longer a filter's hit): with them, every line is one of these or a visible row's
        self._stayed: set[int] = set()
        # the largest value (cents) and EV (micros) a row held before it changed or left, since
        # `take_dropped`: the money columns, which an edit only widens, may be too wide now
        self._dropped = (0, 0)

    # -------------------------------------------------------- loading and building

    def load(
        self,
        rows: RowStore | Iterable[Row],
        *,
        order: array | None = None,
        order_mode: str = "month",
        primed: Primed | None = None,
    ) -> None:
        """Take these rows, with all their ids in sort order `order_mode` when known (else they
        are sorted here). `primed`: what `prime` worked out for them in the loading worker, used
        where it still holds (the same rows, ladder and settings)."""
        if not isinstance(rows, RowStore):
            store = RowStore()
            for row in sorted(rows, key=lambda r: r.id):
                store.put(row)
            rows = store
        changes = rows.changes
        if self.scope is not None:
            mine = rows.owned_by(self.scope)
            if len(mine) != len(rows):  # (read for this scope, they are all theirs already)
                for pid in [pid for pid in rows if pid not in mine]:
                    rows.remove(pid)
        self.rows = rows
        self._open_ids = None
        self._order = order if order is not None and order_mode == self.sort else None
        if primed is not None and primed.rows is rows and primed.ladder is self.ladder and rows.changes == changes:
            self._open_ids = primed.open_ids
            self._base = primed.base  # `_unfiltered` checks it against the view's settings
        self.rebuild()

    def prime(
        self,
        rows: RowStore,
        ladder: Ladder,
        order: array | None,
        order_mode: str,
        *,
        scope: str | None,
        pause: Callable[[], None] | None = None,
    ) -> Primed:
        """What `load(rows, order=order, order_mode=order_mode)` works out over every row before
        it can show any (which rows are on open stages, the lines before any filter): worked out
        here, in the worker that read the rows (a million rows: a quarter of a second the UI
        thread would wait), with the view's settings as they are now; `load` takes it when they
        have not changed since (`scope`: the one the rows were read for). Nothing of the view
        changes here. `pause`: called between slices of its passes (the worker lets the UI in)."""
        shadow = PipelineView(ladder, rows, sort=self.sort, owner=self.owner, scope=scope, closed=self.closed)
        shadow._order = order if order is not None and order_mode == self.sort else None
        if shadow._order is not None:
            shadow._unfiltered(shadow._order, pause)  # kept in shadow._base, with the key it holds for
        return Primed(rows, ladder, shadow.open_ids(pause), shadow._base)

    def mark(self) -> None:
        """Start noting rows added and removed, for `set_order` (a sort is being read)."""
        self._marked = []

    def set_order(self, mode: str, order: array) -> None:
        """Take a new sort order (ids from `ordered_ids`, read after `mark()`) and rebuild."""
        sort_key(mode, self.ladder)  # a bad name fails here
        for added, pid in self._marked or ():
            if added and pid not in order:
                order.append(pid)
            elif not added:
                try:
                    order.remove(pid)
                except ValueError:
                    pass
        self._marked = None
        self.sort = mode
        self._order = order
        self.rebuild()

    def set_ladder(self, ladder: Ladder) -> None:
        self.ladder = ladder
        self._cutoffs = ladder.stale_cutoffs(self.today)
        self._open_ids = None
        if self.sort != "month":
            self._order = None  # EV and gain orders depend on the probabilities

    def set_sort(self, mode: str) -> None:
        """Sort in Python (fine for small pipelines; the app asks SQL, see `ordered_ids`)."""
        sort_key(mode, self.ladder)  # a bad name fails here
        if mode != self.sort:
            self.sort = mode
            self._order = None

    def visible(self, row: Row, *, on_screen: bool = False) -> bool:
        """Whether the row belongs in the lines. A row already `on_screen` that is won or lost
        while only open ones are shown keeps its line until the next rebuild (the rep sees what
        the key did, and `u` is at hand)."""
        if (self.owner is not None and row.owner != self.owner) or (self.scope is not None and row.owner != self.scope):
            return False
        if not self.closed and not on_screen and self.ladder.kind(row.stage_id) != OPEN:
            return False
        return self.matches is None or on_screen or row.id in self.matches

    def _test_again(self, row: Row, hay: str | None = None) -> bool:
        """Whether a (changed) row is among the filter's hits now, noted in `matches` (True when
        no filter is on). `hay`: its search text, else the one held."""
        if self.matches is None:
            return True
        if self.rule is None:
            return row.id in self.matches
        held = self.rule.holds(row, self.ladder, hay if hay is not None else self.rows.hay_of(row.id), self.today)
        if held:
            self.matches.add(row.id)
        else:
            self.matches.discard(row.id)
        return held

    def narrow(self, matches: MutableSet[int]) -> None:
        """Take the hits of a filter that narrows the last one (models/filters.py, Filter.narrows):
        the lines shown are filtered again, in order, instead of rebuilt from every row."""
        self.matches = matches
        if self.grouped or not isinstance(self.lines, array):
            self.rebuild()
            return
        lines = self.lines
        self.lines = array("q", compress(lines, flags_of(matches, lines, max(lines, default=0))))
        self._shared_lines = False

    def filter_sources(self, closed: bool) -> tuple[array | None, array | None]:
        """What a filter search in a worker picks its lines from, taken on the UI thread when it
        begins: (the lines shown, the lines before any filter with won and lost shown or not as
        `closed` says). None where `take_hits` could not use them: grouped, the lines hold month
        headings; a change of `closed` or of the order rebuilds anyway.

        The lines shown are handed over themselves, marked shared, not copied (a million lines:
        2-8 ms of the UI thread on each keystroke): a change of a line while the worker reads them
        copies them first (`_own_lines`), so they never change under it."""
        if self.grouped or not isinstance(self.lines, array):
            return None, None
        base = self._unfiltered(self._order) if self._order is not None and closed == self.closed else None
        self._shared_lines = True
        return self.lines, base

    def take_hits(
        self, matches: MutableSet[int], lines: array, narrowed: bool, shown: array | None, base: array | None
    ) -> bool:
        """Take a filter's hits with the lines a worker picked for them (`pick`): from the lines
        shown when it narrowed the last search (what `narrow` makes), else from the lines before
        any filter (what `rebuild` makes). False, changing nothing, when what they were picked
        from is not what is on screen now (the caller then narrows or rebuilds here)."""
        if self.grouped or not isinstance(self.lines, array):
            return False
        if narrowed:
            if shown is None or self.lines is not shown:
                return False
        elif base is None or self._order is None or self._unfiltered(self._order) is not base:
            return False
        self.matches = matches
        self.lines = lines
        self._shared_lines = False
        self.subtotals = {}
        return True

    def open_ids(self, pause: Callable[[], None] | None = None) -> IdMask:
        """Ids of the rows on open stages: one pass over the columns (in C) when the rows or the
        ladder were replaced, then kept current by each change. `pause`: PICK_SLICE rows a call
        into C, `pause` after each (a worker lets the UI thread in: a million rows in one call
        held the interpreter lock some 100 ms)."""
        if self._open_ids is None:
            rows = self.rows
            is_open = {sid for sid, s in self.ladder.stages.items() if s.kind == OPEN}.__contains__
            step = PICK_SLICE if pause is not None else max(1, len(rows.ids))
            parts = (
                compress(
                    rows.ids[i : i + step], map(and_, rows.alive[i : i + step], map(is_open, rows.stage[i : i + step]))
                )
                for i in range(0, len(rows.ids), step)
            )
            self._open_ids = IdMask.in_parts(parts, rows.ids[-1] if rows.ids else 0, pause)
        return self._open_ids

    def rebuild(self) -> None:
        """Recompute the lines (after a sort, filter, toggle or grouping change). The sorted order
        of all rows is kept, so filtering and toggling are one pass, not a sort."""
        rows = self.rows
        self._stayed = set()  # the lines are made again of the visible rows only
        if self._order is None:
            ordered = [rows.row_at(i) for i in range(len(rows.ids)) if rows.alive[i]]
            sort_rows(ordered, self.sort, self.ladder)
            self._order = array("q", (r.id for r in ordered))
            del ordered
        ids = self._unfiltered(self._order)
        keep = self.matches if self.matches is not None and len(self.matches) < len(rows) else None
        if keep is not None:
            ids = array("q", compress(ids, flags_of(keep, ids, max(ids, default=0))))
        if not self.grouped:
            # unfiltered, the lines are the ids before the filter, shared until a line is added or
            # removed (`_own_lines`): a copy of every id fewer (0.8 MiB at 100,000 prospects)
            self.lines = ids
            self._shared_lines = keep is None
            self.subtotals = {}
            self._groups = 0
            return
        position = rows.places()  # (a dict of ids and places took 10 MiB while the lines were grouped)
        words, month_of, stage_of, value_of = rows.words, rows.month, rows.stage, rows.value
        ladder = self.ladder
        by_month: dict[int, array] = {}
        totals: dict[str | None, list[int]] = {}
        for i in ids:
            p = position[i]
            ids_of_month = by_month.get(month_of[p])
            if ids_of_month is None:
                ids_of_month = by_month[month_of[p]] = array("q")
            ids_of_month.append(i)
            stage = ladder.stages.get(stage_of[p])
            if stage is None or not counts(stage.kind):
                continue
            t = totals.setdefault(words[month_of[p]], [0, 0, 0])
            t[0] += 1
            t[1] += value_of[p]
            t[2] += ev_micros(value_of[p], stage.kind, stage.probability_bp)
        del position
        lines = GroupedLines()
        self._groups = len(by_month)
        for m in sorted(by_month, key=lambda m: (words[m] is None, words[m] or "")):
            lines.append_group(Group(words[m]), by_month.pop(m))
            totals.setdefault(words[m], [0, 0, 0])
        self.lines = lines
        self._shared_lines = False
        self.subtotals = totals

    def _unfiltered(self, order: array, pause: Callable[[], None] | None = None) -> array:
        """The ids in `order` that the owner toggle, the scope and the closed toggle let through:
        kept until one of those, the rows or the ladder changes, so that each filter keystroke is
        one pass over them (not over every row, nor a set intersection). Never changed in place.
        `pause`: in slices, `pause` between them (`kept_ids`; a worker priming the view)."""
        rows = self.rows
        same = (order, rows, self.ladder)  # the same objects (`is`), with these settings (`==`)
        key = (*same, len(order), self.owner, self.scope, self.closed, rows.changes)
        if self._base is not None:
            held = self._base[0]
            if all(a is b for a, b in zip(held[:3], same, strict=True)) and held[3:] == key[3:]:
                return self._base[1]
        ids = order
        for owner in {o for o in (self.owner, self.scope) if o is not None}:
            mine = rows.owned_by(owner)
            ids = kept_ids(ids, partial(map, mine.__contains__), pause)
        if not self.closed:
            open_ids = self.open_ids(pause)
            if len(open_ids) < len(rows):  # (all open: nothing to drop)
                top = rows.ids[-1]
                ids = kept_ids(ids, lambda part: open_ids.flags(part, top), pause)
        if ids is order:
            ids = array("q", order)
        self._base = (key, ids)
        return ids

    def _lets_through(self, row: Row) -> bool:
        """Whether `_unfiltered` keeps the row: the owner toggle, the scope and the closed toggle."""
        if any(o is not None and row.owner != o for o in (self.owner, self.scope)):
            return False
        return self.closed or self.ladder.kind(row.stage_id) == OPEN

    def _keep_base(self, old: Row, changes: int, was: bool, now: bool) -> None:
        """Keep `_unfiltered`'s ids current across a change of one row (the rows had `changes`
        changes before it), so that a filter typed after a few stage keys does not pass over every
        row again on the UI thread (half a second at a million prospects): a row that stays in or
        out leaves them as they are, and one that leaves is taken out of a copy (they are never
        changed in place: a filter's worker may be reading them). A row that comes in, or ids
        already out of date, are left to be made again."""
        if self._base is None or self._order is None:
            return
        key, ids = self._base
        if key[0] is not self._order or key[1] is not self.rows or key[-1] != changes or (now and not was):
            return
        if was and not now:
            at = self._find(ids, old)
            if at is None:
                return
            ids = ids[:]  # (one copy, then the tail moved up: two slices and their sum copied it thrice)
            del ids[at]
        self._base = ((*key[:3], len(self._order), *key[4:-1], self.rows.changes), ids)

    # -------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self.lines)

    def line(self, index: int) -> Line | None:
        if 0 <= index < len(self.lines):
            return self.lines[index]
        return None

    @property
    def shown(self) -> int:
        """How many prospects the lines show (the month headings left out)."""
        return len(self.lines) - (self._groups if self.grouped else 0)

    def index_of(self, prospect_id: int, hint: int | None = None, row: Row | None = None) -> int | None:
        """The line a prospect is on (`hint`: where it probably is, e.g. the cursor; `row`: the
        prospect as its line was placed, when the rows hold it changed or no longer hold it).
        Found where the sort order puts it (its month's group, when grouped), not by looking at
        every line (15-30 ms at a million prospects, for each change another session made)."""
        lines = self.lines
        if hint is not None and 0 <= hint < len(lines) and lines[hint] == prospect_id:
            return hint
        row = row if row is not None else self.rows.get(prospect_id)
        if row is None:
            return _index(lines, prospect_id)
        if prospect_id not in self._stayed and not self.visible(row):
            return None  # not shown: every line is a visible row's or one kept (`_stayed`)
        if not self.grouped:
            return self._find(cast("Sequence[int]", lines), row)  # (ungrouped: ids only)
        start, end = self._group_span(row.month, row)
        try:
            return lines.index(prospect_id, start, end)
        except ValueError:
            return _index(lines, prospect_id)  # (not where its month says: looked for everywhere)

    def heading_of(self, row: Row) -> int | None:
        """Grouped, the line of the month heading over `row`'s line (None when not grouped)."""
        if not self.grouped:
            return None
        start, _ = self._group_span(row.month)
        return start if start < len(self.lines) and isinstance(self.lines[start], Group) else None

    def _find(self, ids: Sequence[int], row: Row) -> int | None:
        """Where `row`'s id is among `ids`, ids in the sort order (`_order`, the lines before the
        filter, the lines when not grouped), `row` as its id was placed there: by bisection,
        checked; else (rows changed since the sort keep their place, and the database's order of
        names folds ASCII letters only) by looking at each."""
        at = self._sorted_place(ids, row, moved=row)
        if at < len(ids) and ids[at] == row.id:
            return at
        return _index(ids, row.id)

    def _group_span(self, month: str | None, moved: Row | None = None) -> tuple[int, int]:
        """Grouped, the lines of `month`'s group: (its heading's index, the index after its last
        prospect), or (where its heading would go, the same) when it has none. Found by bisection:
        the groups are in month order and each prospect is under its row's month (`moved`: a
        prospect as its line was placed, when the rows hold it changed)."""
        lines, rows = self.lines, self.rows

        def key_of(item: Line) -> tuple[bool, str, int]:
            if isinstance(item, Group):
                return (item.month is None, item.month or "", 0)
            other = moved if moved is not None and item == moved.id else rows.get(item)
            m = other.month if other is not None else None
            return (m is None, m or "", 1)

        start = bisect_left(lines, (month is None, month or "", 0), key=key_of)
        return start, bisect_left(lines, (month is None, month or "", 2), start, key=key_of)

    def is_overdue(self, row: Row) -> bool:
        return (
            row.follow_up is not None
            and row.follow_up < self.today.isoformat()
            and self.ladder.kind(row.stage_id) == OPEN
        )

    def is_stale(self, row: Row) -> bool:
        """The `~` mark: slow (models/pace.py, the one definition) once the pace is read; until
        then the stale rule it falls back on."""
        if self.pace is not None:
            return self.pace.is_slow(row)
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

    def _dropping(self, old: Row) -> None:
        value, ev = self._dropped
        self._dropped = (max(value, old.value_cents), max(ev, self.ladder.ev(old)))

    def take_dropped(self) -> tuple[int, int]:
        """The largest value (cents) and EV (micros) rows held before they changed or left, since
        the last call (ProspectTable: a money column narrows when its largest amount went)."""
        dropped, self._dropped = self._dropped, (0, 0)
        return dropped

    def put(self, row: Row, hay: str | None = None, hint: int | None = None, *, stay: bool = True) -> int | None:
        """Add or replace one row. A row already shown keeps its line; a new one goes to the end of
        its month group (grouped) or of the table, and takes its sorted place at the next sort.
        Returns the line index it is on, or None when it is not visible. Another owner's row,
        with a `scope`, is not taken in (and leaves, when it was this owner's). `stay=False`: a
        change made elsewhere (another session), which the rep did not see happen: a row it takes
        out of what is shown leaves its line at once rather than staying until the next rebuild
        (`visible`), so the list and its count say what is there."""
        if self.scope is not None and row.owner != self.scope:
            self.remove(row.id, hint)
            return None
        old = self.rows.get(row.id)
        # (its line looked for first: whether it is shown depends on the filter's hits as they were)
        index = self.index_of(row.id, hint, old) if old is not None else None
        changes = self.rows.changes
        self.rows.put(row, hay)
        if old is not None:
            self._dropping(old)
            self._keep_base(old, changes, self._lets_through(old), self._lets_through(row))
            if self._order is not None and self.ladder.kind(old.stage_id) != self.ladder.kind(row.stage_id):
                self._take_its_kinds_place(old, row)
        self._test_again(row)
        if self._open_ids is not None:
            if self.ladder.kind(row.stage_id) == OPEN:
                self._open_ids.add(row.id)
            else:
                self._open_ids.discard(row.id)
        if old is None:
            if self._order is not None:
                self._order.insert(self._sorted_place(self._order, row), row.id)
            if self._marked is not None:
                self._marked.append((True, row.id))
        if self.grouped and old is not None and index is not None:
            self._add_subtotal(old.month, self.ladder.part(old), -1)
        if not self.visible(row, on_screen=stay and index is not None):
            if index is not None:
                self._remove_line(index)
                self._stayed.discard(row.id)
            return None
        if index is not None and not self.visible(row):
            self._stayed.add(row.id)  # kept on its line (see `visible`)
        if self.grouped:
            self._add_subtotal(row.month, self.ladder.part(row), +1)
            if index is not None and old is not None and old.month != row.month:
                self._remove_line(index)
                index = None
            if index is None:
                index = self._insert_in_group(row)
            return index
        if index is None:
            index = self._sorted_place(cast("Sequence[int]", self.lines), row)
            self._own_lines().insert(index, row.id)
        return index

    def _take_its_kinds_place(self, old: Row, row: Row) -> None:
        """A prospect won, lost or reopened: its id moves among those of its kind in the sort order
        (every order puts open prospects first, then won, then lost), by bisection. Its line stays
        where it is until the lines are made again; then, with won and lost shown (`c`), a
        prospect lost in another session stood above the open ones."""
        order = cast(array, self._order)
        at = self._find(order, old)
        if at is not None:
            del order[at]
            order.insert(self._sorted_place(order, row), row.id)
        if self._base is not None and self._lets_through(row):  # (won and lost shown: it stays among them)
            key, ids = self._base
            at = self._find(ids, old)
            if at is not None:
                ids = ids[:]  # (never changed in place: a filter's worker may be reading them)
                del ids[at]
                ids.insert(self._sorted_place(ids, row), row.id)
                self._base = (key, ids)

    def update_in_place(self, row: Row, hay: str | None = None) -> bool:
        """Replace a row whose line stays where it is (shown, or hidden, before and after; in the
        same month group): no search of the lines, so the cost does not grow with the pipeline.
        False, changing nothing, when its line must move or appear or go (then `put`)."""
        old = self.rows.get(row.id)
        if old is None or self.visible(old) != self.visible(row):
            return False
        if self.scope is not None and row.owner != self.scope:
            return False  # it leaves (`put`)
        if self.grouped and old.month != row.month:
            return False
        if self.matches is not None and self.rule is not None:
            was = row.id in self.matches
            if (
                self.rule.holds(row, self.ladder, hay if hay is not None else self.rows.hay_of(row.id), self.today)
                != was
            ):
                return False  # it comes into the filter's hits or leaves them (`put`)
        changes = self.rows.changes
        self.rows.put(row, hay)
        self._dropping(old)
        self._keep_base(old, changes, self._lets_through(old), self._lets_through(row))
        if self.grouped and self.visible(row):
            self._add_subtotal(old.month, self.ladder.part(old), -1)
            self._add_subtotal(row.month, self.ladder.part(row), +1)
        return True

    def _sorted_place(
        self, ids: Sequence[int], row: Row, lo: int = 0, hi: int | None = None, *, moved: Row | None = None
    ) -> int:
        """Where `row` goes among `ids` (in the current sort order, between lo and hi): found by
        bisection, so adding a prospect costs the same at any pipeline size. `moved`: a prospect
        whose id among `ids` stands for that row, not for the one the rows hold now."""
        key = sort_key(self.sort, self.ladder)
        rows = self.rows
        wanted = key(row)

        def key_of(pid: int) -> tuple[Any, ...]:
            other = moved if moved is not None and pid == moved.id else rows.get(pid)
            return key(other) if other is not None else wanted

        return bisect_left(ids, wanted, lo, len(ids) if hi is None else hi, key=key_of)

    def remove(self, prospect_id: int, hint: int | None = None) -> None:
        changes = self.rows.changes
        old = self.rows.remove(prospect_id)
        if old is None:
            return
        self._dropping(old)
        index = self.index_of(prospect_id, hint, old)  # (before it leaves the filter's hits)
        self._stayed.discard(prospect_id)
        if self.matches is not None:
            self.matches.discard(prospect_id)
        if self._open_ids is not None:
            self._open_ids.discard(prospect_id)
        if self._order is not None:
            at = self._find(self._order, old)
            if at is not None:
                del self._order[at]
            self._keep_base(old, changes, self._lets_through(old), False)
        if self._marked is not None:
            self._marked.append((False, prospect_id))
        if self.grouped and index is not None:
            self._add_subtotal(old.month, self.ladder.part(old), -1)
        if index is not None:
            self._remove_line(index)

    def _add_subtotal(self, month: str | None, part: Totals, sign: int) -> None:
        t = self.subtotals.setdefault(month, [0, 0, 0])
        t[0] += sign * part.count
        t[1] += sign * part.tv_cents
        t[2] += sign * part.ev_micros

    def _own_lines(self) -> GroupedLines | array:
        """The lines, to change in place: a copy of them first while they are the ids before the
        filter (`_unfiltered` never changes those in place)."""
        if self._shared_lines:
            self.lines = array("q", self.lines)
            self._shared_lines = False
        return self.lines

    def _remove_line(self, index: int) -> None:
        item = self._own_lines().pop(index)
        if self.grouped and isinstance(item, int):
            # drop a month heading left with no prospects under it
            before = self.lines[index - 1] if index - 1 >= 0 else None
            after = self.lines[index] if index < len(self.lines) else None
            if isinstance(before, Group) and (after is None or isinstance(after, Group)):
                self.lines.pop(index - 1)
                self.subtotals.pop(before.month, None)
                self._groups -= 1

    def _insert_in_group(self, row: Row) -> int:
        """Put a row's line in its month's group, in the sort order (the group made when it has
        none): found by bisection, not by walking the lines to the group."""
        lines = self.lines
        assert isinstance(lines, GroupedLines), "grouped, the lines are ids and Group lines"
        start, end = self._group_span(row.month)
        heading = lines[start] if start < len(lines) else None
        if isinstance(heading, Group) and heading.month == row.month:
            place = self._sorted_place(cast("Sequence[int]", lines), row, start + 1, end)
            lines.insert(place, row.id)
            return place
        lines[start:start] = [Group(row.month), row.id]
        self._groups += 1
        return start + 1

    def apply(self, p: ProspectInfo, hint: int | None = None) -> int | None:
        """Bring the view up to date with a prospect a store call returned (deleted ones leave)."""
        if p.deleted:
            self.remove(p.id, hint)
            return None
        return self.put(row_of(p), hay_of(p), hint)


__all__ = [
    "Group",
    "GroupedLines",
    "IdMask",
    "flags_of",
    "Ladder",
    "Line",
    "PipelineView",
    "Row",
    "RowStore",
    "SORTS",
    "SORT_LABELS",
    "TextColumn",
    "Totals",
    "contacts_of",
    "hay_of",
    "haystack",
    "pick",
    "load_first_rows",
    "load_ladder",
    "load_row",
    "load_rows",
    "ordered_ids",
    "row_of",
    "rows_by_id",
    "sort_key",
    "sort_rows",
]
