"""Read-only listings, loaded as plain tuples (SQLModel objects load far slower)."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

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
    with engine.connect() as conn:
        return [ProspectRow(*row) for row in conn.execute(q)]
