"""Read-only listings, loaded as plain tuples (SQLModel objects load far slower)."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from sqlalchemy import Engine, literal_column, select

from . import ladder
from .tables import Prospect, Stage


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
    kind_order = literal_column(ladder.kind_rank_sql("stage.kind"))
    q = (
        select(
            Prospect.id, Prospect.name, Prospect.company, Prospect.stage_id, Stage.name, Stage.kind,
            Stage.probability_bp, Prospect.value_cents, Prospect.expected_month, Prospect.next_follow_up,
            Prospect.owner,
        )
        .join(Stage, Stage.id == Prospect.stage_id)
        .where(Prospect.deleted_at.is_(None))
        .order_by(kind_order, Prospect.expected_month.is_(None), Prospect.expected_month, Prospect.name, Prospect.id)
    )
    if owner is not None:
        q = q.where(Prospect.owner == owner)
    if stage_id is not None:
        q = q.where(Prospect.stage_id == stage_id)
    with engine.connect() as conn:
        return [ProspectRow(*row) for row in conn.execute(q)]
