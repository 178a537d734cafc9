"""The three KPIs, exactly as ../shared/DOMAIN.md defines them, computed in SQL.

    TV    = sum of value over prospects that are not lost (won ones stay in)
    EV    = sum of value x p(stage) over the same prospects
    EV/TV = EV / TV, None ("—") when TV is 0

SQL sums the values per stage (and per month or owner when broken down); the few per-stage sums
are then multiplied by their stage's probability as exact integers. No prospect row is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from models.tables import Prospect, Stage
from models.values import bp_to_ratio, micros_to_decimal, money_str, ratio

Breakdown = Literal["month", "stage", "owner"]


@dataclass(frozen=True)
class Scope:
    """Which prospects count: all, one owner's, and/or those expected in a range of months."""

    owner: str | None = None
    month_from: str | None = None  # 'YYYY-MM', inclusive
    month_to: str | None = None  # 'YYYY-MM', inclusive

    @property
    def key(self) -> str:
        """A stable name for this scope, used by the KPI history."""
        parts = []
        if self.owner is not None:
            parts.append(f"owner:{self.owner}")
        if self.month_from or self.month_to:
            parts.append(f"months:{self.month_from or ''}..{self.month_to or ''}")
        return ";".join(parts) or "all"

    def where(self) -> list[Any]:
        conds: list[Any] = [Prospect.deleted_at.is_(None)]
        if self.owner is not None:
            conds.append(Prospect.owner == self.owner)
        if self.month_from:
            conds.append(Prospect.expected_month >= self.month_from)
        if self.month_to:
            conds.append(Prospect.expected_month <= self.month_to)
        return conds


ALL = Scope()


@dataclass(frozen=True)
class Kpi:
    count: int = 0
    tv_cents: int = 0
    ev_micros: int = 0

    def __add__(self, other: "Kpi") -> "Kpi":
        return Kpi(self.count + other.count, self.tv_cents + other.tv_cents, self.ev_micros + other.ev_micros)

    def moved(self, d_count: int, d_tv_cents: int, d_ev_micros: int) -> "Kpi":
        """The KPIs after one change, without asking the database again."""
        return Kpi(self.count + d_count, self.tv_cents + d_tv_cents, self.ev_micros + d_ev_micros)

    @property
    def tv(self) -> Decimal:
        return (Decimal(self.tv_cents) / 100).quantize(Decimal("0.01"))

    @property
    def ev(self) -> Decimal:
        return micros_to_decimal(self.ev_micros)

    @property
    def ev_tv(self) -> Decimal | None:
        return ratio(self.ev_micros, self.tv_cents)

    def ev_tv_rounded(self, places: int = 4) -> Decimal | None:
        r = self.ev_tv
        return None if r is None else r.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

    def to_json(self) -> dict[str, Any]:
        r = self.ev_tv_rounded(6)
        return {
            "count": self.count,
            "tv": money_str(self.tv_cents),
            "ev": money_str(self.ev_micros, micros=True),
            "ev_tv": None if r is None else float(r),
        }


def _stage_probabilities(conn: Connection) -> dict[int, tuple[int, str]]:
    return {sid: (bp, kind) for sid, bp, kind in conn.execute(select(Stage.id, Stage.probability_bp, Stage.kind))}


def _grouped(conn: Connection, scope: Scope, key_column: Any | None) -> dict[Any, Kpi]:
    probs = _stage_probabilities(conn)
    cols = [Prospect.stage_id, func.count(), func.coalesce(func.sum(Prospect.value_cents), 0)]
    group = [Prospect.stage_id]
    if key_column is not None:
        cols.insert(0, key_column)
        group.insert(0, key_column)
    lost_ids = [sid for sid, (_, kind) in probs.items() if kind == "lost"]
    conds = scope.where()
    if lost_ids:
        conds.append(Prospect.stage_id.not_in(lost_ids))
    q = select(*cols).where(*conds).group_by(*group)
    out: dict[Any, Kpi] = {}
    for row in conn.execute(q):
        if key_column is None:
            key, (stage_id, count, total) = None, row
        else:
            key, stage_id, count, total = row
        bp = probs[stage_id][0]
        out[key] = out.get(key, Kpi()) + Kpi(int(count), int(total), int(total) * bp)
    return out


def _connect(engine_or_conn: Engine | Connection):
    if isinstance(engine_or_conn, Connection):
        from contextlib import nullcontext

        return nullcontext(engine_or_conn)
    return engine_or_conn.connect()


def kpis(engine: Engine | Connection, scope: Scope = ALL) -> Kpi:
    """TV, EV and count over a scope."""
    with _connect(engine) as conn:
        return _grouped(conn, scope, None).get(None, Kpi())


def kpis_by(engine: Engine | Connection, by: Breakdown, scope: Scope = ALL) -> list[tuple[str | None, Kpi]]:
    """The KPIs broken down by expected month, stage or owner, in a natural order.

    By stage, every stage of the ladder is listed (lost included, at zero), in ladder order."""
    with _connect(engine) as conn:
        if by == "month":
            rows = _grouped(conn, scope, Prospect.expected_month)
            return sorted(rows.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        if by == "owner":
            rows = _grouped(conn, scope, Prospect.owner)
            return sorted(rows.items(), key=lambda kv: (kv[0] or "").casefold())
        if by == "stage":
            rows = _grouped(conn, scope, Prospect.stage_id)
            stages = conn.execute(
                select(Stage.id, Stage.name).where(Stage.archived == False).order_by(Stage.position)  # noqa: E712
            ).all()
            return [(name, rows.get(sid, Kpi())) for sid, name in stages]
        raise ValueError(f"by: {by!r} is not month, stage or owner")


def stage_table(engine: Engine | Connection) -> list[dict[str, Any]]:
    """The ladder as JSON-ready rows: name, position, probability (0..1), kind, stale_days."""
    with _connect(engine) as conn:
        q = (
            select(Stage.name, Stage.position, Stage.probability_bp, Stage.kind, Stage.stale_days)
            .where(Stage.archived == False)  # noqa: E712
            .order_by(Stage.position)
        )
        return [
            {"name": name, "position": pos, "probability": bp_to_ratio(bp), "kind": kind, "stale_days": stale}
            for name, pos, bp, kind, stale in conn.execute(q)
        ]
