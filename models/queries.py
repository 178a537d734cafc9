"""Read-only listings, loaded as plain tuples (SQLModel objects load far slower)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnClause, Engine, literal_column, select
from sqlmodel import col

from . import ladder
from .tables import Prospect, Stage, pk


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


def prospect_rows(engine: Engine, *, owner: str | None = None, stage_id: int | None = None) -> list[ProspectRow]:
    """Every live prospect: open ones first, then won, then lost; each by expected month, then name."""
    with engine.connect() as conn:
        return [ProspectRow(*row) for row in conn.execute(_prospect_rows_query(owner, stage_id))]


def iter_prospect_rows(
    engine: Engine, *, owner: str | None = None, stage_id: int | None = None, size: int = 2000
) -> Iterator[ProspectRow]:
    """`prospect_rows` one at a time as the database gives them, `size` rows fetched at once (a
    server-side cursor on PostgreSQL; SQLite's cursor steps through the result itself), so that a
    million prospects never sit in memory together."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=size).execute(
            _prospect_rows_query(owner, stage_id)
        )
        for part in result.partitions(size):
            for row in part:
                yield ProspectRow(*row)


def _prospect_rows_query(owner: str | None, stage_id: int | None) -> Any:
    """The query of `prospect_rows`: the listing's order is defined here only."""
    kind_order: ColumnClause[int] = literal_column(ladder.kind_rank_sql("stage.kind"))
    q = (
        select(
            pk(Prospect.id),
            col(Prospect.name),
            col(Prospect.company),
            col(Prospect.stage_id),
            col(Stage.name),
            col(Stage.kind),
            col(Stage.probability_bp),
            col(Prospect.value_cents),
            col(Prospect.expected_month),
            col(Prospect.next_follow_up),
            col(Prospect.owner),
        )
        .join(Stage, col(Stage.id) == col(Prospect.stage_id))
        .where(col(Prospect.deleted_at).is_(None))
        .order_by(
            kind_order,
            col(Prospect.expected_month).is_(None),
            col(Prospect.expected_month),
            col(Prospect.name),
            col(Prospect.id),
        )
    )
    if owner is not None:
        q = q.where(col(Prospect.owner) == owner)
    if stage_id is not None:
        q = q.where(col(Prospect.stage_id) == stage_id)
    return q
