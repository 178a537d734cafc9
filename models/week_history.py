"""What the KPI header compares with: the KPIs a week ago and EV at the end of recent weeks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import clock
from .kpi import Kpi, Scope, snapshots


def week_history(engine: Any, scope: Scope) -> tuple[Kpi | None, str, list[int]]:
    """The KPIs 7 days ago (the latest snapshot on or before that day) and EV at the end of each
    of the 11 weeks before this one (the header adds today's live EV as the 12th point), each
    counted for the scope's KPI period (`kpi.snapshots`).
    `engine`: what `kpi.snapshots` reads (the standard-library reader or the engine)."""
    today = clock.today()
    history = snapshots(engine, scope, since=today - timedelta(days=7 * 12 + 7))
    week_ago_day = today - timedelta(days=7)
    week_ago = None
    label = ""
    for snap in history:
        if snap.taken_on <= week_ago_day:
            week_ago, label = snap.kpi, snap.taken_on.isoformat()
    weekly: list[int] = []
    for k in range(11, 0, -1):
        day = today - timedelta(days=7 * k)
        known = [s for s in history if s.taken_on <= day]
        if known:
            weekly.append(known[-1].kpi.ev_micros)
    return week_ago, label, weekly


__all__ = ["week_history"]
