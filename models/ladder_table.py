"""The stages screen's table: every rung with the live prospects on it, their value and EV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import ladder
from .records import StageInfo

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass(frozen=True)
class StageRow:
    stage: StageInfo
    count: int
    value_cents: int

    @property
    def ev_micros(self) -> int:
        return ladder.ev_micros(self.value_cents, self.stage.kind, self.stage.probability_bp)


def stage_rows(engine: Engine, rungs: list[StageInfo], owner: str | None = None) -> list[StageRow]:
    """Every rung with the live prospects on it and their value: one grouped query. `owner`: only
    theirs (a rep where reps see only their own: the team's figures are not theirs to see)."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from .tables import Prospect

    q = (
        select(col(Prospect.stage_id), func.count(), func.coalesce(func.sum(col(Prospect.value_cents)), 0))
        .where(col(Prospect.deleted_at).is_(None))
        .group_by(col(Prospect.stage_id))
    )
    if owner is not None:
        q = q.where(col(Prospect.owner) == owner)
    with engine.connect() as conn:
        totals = {sid: (int(n), int(v)) for sid, n, v in conn.execute(q)}
    return [StageRow(s, *totals.get(s.id, (0, 0))) for s in rungs]


__all__ = ["StageRow", "stage_rows"]
