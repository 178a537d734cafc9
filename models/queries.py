"""Read-only listings, loaded as plain tuples (SQLModel objects load far slower).

The listing is plain SQL run through models/rawdb.py, so that `evpipe list` on an SQLite file
reads it with the standard library (no SQLAlchemy to import) and streams it from a DB-API cursor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, NamedTuple

from . import ladder
from .rawdb import as_date, fetch_chunks, raw_cursor


class ProspectRow(NamedTuple):
    id: int
    name: str
    company: str
    stage_id: int
    stage: str
    kind: str
    probability_bp: int
    value_cents: int
    month: str | None
    next_follow_up: date | None
    owner: str

    @property
    def ev_micros(self) -> int:
        return ladder.ev_micros(self.value_cents, self.kind, self.probability_bp)


def prospect_rows(source: Any, *, owner: str | None = None, stage_id: int | None = None) -> list[ProspectRow]:
    """Every live prospect: open ones first, then won, then lost; each by expected month, then name.
    `source`: an Engine or models.rawdb's SqliteReader."""
    return list(iter_prospect_rows(source, owner=owner, stage_id=stage_id))


def iter_prospect_rows(
    source: Any, *, owner: str | None = None, stage_id: int | None = None, size: int = 2000
) -> Iterator[ProspectRow]:
    """`prospect_rows` one at a time as the database gives them, `size` rows fetched at once (a
    server-side cursor on PostgreSQL; SQLite's cursor steps through the result itself), so that a
    million prospects never sit in memory together."""
    columns = (
        "p.id, p.name, p.company, p.stage_id, s.name, s.kind, s.probability_bp, p.value_cents, "
        "p.expected_month, p.next_follow_up, p.owner"
    )
    days: dict[Any, date | None] = {}  # a day read once (a pipeline has far fewer days than prospects)
    for chunk in iter_listing(source, lambda stages: (columns, {}), owner=owner, stage_id=stage_id, size=size):
        for pid, name, company, sid, stage, kind, bp, value, month, day, who in chunk:
            follow_up = days[day] if day in days else days.setdefault(day, as_date(day))
            yield ProspectRow(pid, name, company, sid, stage, kind, bp, value, month, follow_up, who)


def iter_listing(
    source: Any,
    columns: Callable[[list[tuple[int, str, str, int]]], tuple[str, dict[str, Any]]],
    *,
    owner: str | None = None,
    stage_id: int | None = None,
    size: int = 2000,
) -> Iterator[list[tuple]]:
    """`listing_chunks` on a connection of its own, in one read transaction."""
    with raw_cursor(source, transaction=True) as cursor:
        yield from listing_chunks(cursor, columns, owner=owner, stage_id=stage_id, size=size)


def listing_chunks(
    cursor: Any,
    columns: Callable[[list[tuple[int, str, str, int]]], tuple[str, dict[str, Any]]],
    *,
    owner: str | None = None,
    stage_id: int | None = None,
    size: int = 2000,
) -> Iterator[list[tuple]]:
    """The live prospects in the listing's order, `columns` of each (SQL over `p`, the prospect,
    and `s`, its stage, and its parameters; made from the ladder's stages, each `(id, name, kind,
    probability_bp)`), `size` rows at a time, read on `cursor` (a `raw_cursor`; in a transaction
    for one view of the data): the queries of `listing_parts`, one after the other."""
    for sql, params in listing_parts(cursor, columns, owner=owner, stage_id=stage_id):
        yield from fetch_chunks(cursor, sql, params, size)


def listing_parts(
    cursor: Any,
    columns: Callable[[list[tuple[int, str, str, int]]], tuple[str, dict[str, Any]]],
    *,
    owner: str | None = None,
    stage_id: int | None = None,
    by_month: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """The queries (SQL and parameters) whose rows, one query after the other, are the live
    prospects in the listing's order (see `listing_chunks`). The listing's order is defined here
    only: open prospects first, then won, then lost; each by expected month (none last), then
    name (ASCII letters in either case together), then id. It is `evpipe list`'s order and the
    app's order by month. `by_month`: a query for each expected month (read on `cursor` now), so
    that two readers can share them out (models/listing_split.py).

    The order is read, never sorted: one query for each kind and for a month known or not, each
    in the order of the listing index (ix_prospect_listing: the live prospects by month, name and
    id, with every column a listing shows), one after the other. Sorting a million prospects took
    SQLite about 3 s, and reading them by another index about 4 s more (a row looked up in the
    table for each)."""
    stages = [(sid, name, kind, bp) for chunk in fetch_chunks(cursor, _LADDER_SQL) for sid, name, kind, bp in chunk]
    made, params = columns(stages)
    select = f"SELECT {made} FROM prospect p JOIN stage s ON s.id = p.stage_id"
    conds = ["p.deleted_at IS NULL"]
    if owner is not None:
        conds.append("p.owner = :owner")
        params = {**params, "owner": owner}
    if stage_id is not None:
        conds.append("p.stage_id = :stage_id")
        params = {**params, "stage_id": stage_id}
    month_parts: list[tuple[str, str, dict[str, Any]]] = [(m, o, {}) for m, o in _MONTH_PARTS]
    if by_month:
        months = [m for chunk in fetch_chunks(cursor, _MONTHS_SQL) for (m,) in chunk]
        month_parts = [
            *(("p.expected_month = :month", _MONTH_PARTS[0][1], {"month": m}) for m in months),
            (*_MONTH_PARTS[1], {}),
        ]
    parts = []
    ranks = sorted({ladder.KIND_RANK.get(kind, 0) for _, _, kind, _ in stages})
    for rank in ranks:
        ids = ", ".join(str(int(sid)) for sid, _, kind, _ in stages if ladder.KIND_RANK.get(kind, 0) == rank)
        where = " AND ".join([*conds, f"p.stage_id IN ({ids})"])
        for month, order, more in month_parts:
            parts.append((f"{select} WHERE {where} AND {month} ORDER BY {order}", {**params, **more}))
    return parts


#: The live prospects' expected months, in order: one look into the listing index per month.
_MONTHS_SQL = (
    "WITH RECURSIVE m(month) AS ("
    "SELECT min(expected_month) FROM prospect WHERE deleted_at IS NULL"
    " UNION ALL SELECT (SELECT min(expected_month) FROM prospect WHERE deleted_at IS NULL AND expected_month > m.month)"
    " FROM m WHERE m.month IS NOT NULL"
    ") SELECT month FROM m WHERE month IS NOT NULL"
)

#: The ladder as `iter_listing` gives it to `columns`.
_LADDER_SQL = "SELECT id, name, kind, probability_bp FROM stage ORDER BY id"

#: The listing's order within one kind: the prospects with an expected month, by month, name and
#: id, then those without one, by name and id (the listing index's order; SQLite's lower() folds
#: ASCII letters only).
_MONTH_PARTS = (
    ("p.expected_month IS NOT NULL", "p.expected_month, lower(p.name), p.id"),
    ("p.expected_month IS NULL", "lower(p.name), p.id"),
)
