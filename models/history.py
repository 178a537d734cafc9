"""The KPI history: snapshots of TV, EV and the per-month forecast, one per scope per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from models import clock
from models.db import writer
from models.kpi import ALL, Kpi, Scope, kpis_by
from models.tables import KpiSnapshot, KpiSnapshotMonth, Prospect


@dataclass(frozen=True)
class Snapshot:
    taken_on: date
    kpi: Kpi


def _write_snapshot(s: Session, scope_key: str, day: date, at: datetime, by_month: list[tuple[str | None, Kpi]]) -> None:
    old = s.scalar(select(KpiSnapshot.id).where(KpiSnapshot.scope == scope_key, KpiSnapshot.taken_on == day))
    if old is not None:
        s.execute(delete(KpiSnapshotMonth).where(KpiSnapshotMonth.snapshot_id == old))
        s.execute(delete(KpiSnapshot).where(KpiSnapshot.id == old))
    total = Kpi()
    for _, k in by_month:
        total = total + k
    snap = KpiSnapshot(scope=scope_key, taken_on=day, taken_at=at, count=total.count,
                       tv_cents=total.tv_cents, ev_micros=total.ev_micros)
    s.add(snap)
    s.flush()
    for month, k in by_month:
        s.add(KpiSnapshotMonth(snapshot_id=snap.id, month=month or "none", count=k.count,
                               tv_cents=k.tv_cents, ev_micros=k.ev_micros))


def record_snapshot(engine: Engine, *, at: datetime | None = None, owners: bool = True) -> Kpi:
    """Record today's KPIs (replacing today's earlier reading) for everyone and for each owner.
    Returns the KPIs of everyone."""
    at = at or clock.now()
    with engine.connect() as conn:
        everyone = kpis_by(conn, "month", ALL)
        per_owner: dict[str, list[tuple[str | None, Kpi]]] = {}
        if owners:
            names = [o for (o,) in conn.execute(select(Prospect.owner).where(Prospect.deleted_at.is_(None)).distinct())]
            for name in names:
                per_owner[name] = kpis_by(conn, "month", Scope(owner=name))
    with Session(writer(engine)) as s, s.begin():
        _write_snapshot(s, ALL.key, at.date(), at, everyone)
        for name, rows in per_owner.items():
            _write_snapshot(s, Scope(owner=name).key, at.date(), at, rows)
    total = Kpi()
    for _, k in everyone:
        total = total + k
    return total


def snapshots(engine: Engine, scope: Scope = ALL, *, since: date | None = None) -> list[Snapshot]:
    """The recorded KPI history of a scope, oldest first."""
    q = select(KpiSnapshot.taken_on, KpiSnapshot.count, KpiSnapshot.tv_cents, KpiSnapshot.ev_micros).where(
        KpiSnapshot.scope == scope.key
    )
    if since is not None:
        q = q.where(KpiSnapshot.taken_on >= since)
    with engine.connect() as conn:
        return [Snapshot(d, Kpi(int(c), int(tv), int(ev))) for d, c, tv, ev in conn.execute(q.order_by(KpiSnapshot.taken_on))]
