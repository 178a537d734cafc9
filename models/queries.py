"""Read-only listings, loaded as plain tuples (SQLModel objects load far slower).

The listing is plain SQL run through models/rawdb.py, so that `evpipe list` on an SQLite file
reads it with the standard library (no SQLAlchemy to import) and streams it from a DB-API cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, NamedTuple

from . import ladder
from .rawdb import as_date, cache_size, fetch_chunks, no_index, raw_cursor


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
    sql, params = _prospect_rows_sql(owner, stage_id)
    days: dict[Any, date | None] = {}  # a day read once (a pipeline has far fewer days than prospects)
    with raw_cursor(source) as cursor:
        for chunk in fetch_chunks(cursor, sql, params, size):
            for pid, name, company, sid, stage, kind, bp, value, month, day, who in chunk:
                follow_up = days[day] if day in days else days.setdefault(day, as_date(day))
                yield ProspectRow(pid, name, company, sid, stage, kind, bp, value, month, follow_up, who)


def _prospect_rows_sql(
    owner: str | None, stage_id: int | None, columns: str | None = None, *, whole_table: bool = False
) -> tuple[str, dict[str, Any]]:
    """The query of `prospect_rows`: the listing's order is defined here only. `columns`: other
    columns to read (over `p`, the prospect, and `s`, its stage). `whole_table`: read the table
    through rather than by the live-stage index (SQLite only; for every live prospect, a scan and
    one sort beat a million lookups)."""
    conds = [f"{no_index('p.deleted_at') if whole_table else 'p.deleted_at'} IS NULL"]
    params: dict[str, Any] = {}
    if owner is not None:
        conds.append("p.owner = :owner")
        params["owner"] = owner
    if stage_id is not None:
        conds.append("p.stage_id = :stage_id")
        params["stage_id"] = stage_id
    if columns is None:
        columns = (
            "p.id, p.name, p.company, p.stage_id, s.name, s.kind, s.probability_bp, p.value_cents, "
            "p.expected_month, p.next_follow_up, p.owner"
        )
    sql = (
        f"SELECT {columns} FROM prospect p JOIN stage s ON s.id = p.stage_id "
        f"WHERE {' AND '.join(conds)} "
        f"ORDER BY {ladder.kind_rank_sql('s.kind')}, p.expected_month IS NULL, p.expected_month, p.name, p.id"
    )
    return sql, params


def iter_listing_values(
    reader: Any, columns: str, *, owner: str | None = None, stage_id: int | None = None, size: int = 1000
) -> Iterator[list[tuple]]:
    """The listing of `prospect_rows`, in its order, as SQLite makes `columns` of each prospect
    (`reader`: an SQLite source; `columns` over `p` and `s`): `size` rows at a time, each a tuple
    of those values, none made into Python objects beyond what the driver gives."""
    sql, params = _prospect_rows_sql(owner, stage_id, columns, whole_table=owner is None and stage_id is None)
    with raw_cursor(reader) as cursor:
        cursor.execute(cache_size(LISTING_CACHE_MB))  # room to sort in memory, for this connection only
        yield from fetch_chunks(cursor, sql, params, size)


#: The page cache of the connection that sorts a listing: SQLite sorts within it before it spills
#: to temporary files (100,000 prospects sort in about 20 MB).
LISTING_CACHE_MB = 32
