"""The three KPIs, exactly as docs/domain.md defines them, computed in SQL.

    TV    = sum of value over prospects that are not lost (won ones stay in)
    EV    = sum of value x p(stage) over the same prospects
    EV/TV = EV / TV, None ("—") when TV is 0

SQL sums the values per stage (and per month or owner when broken down); the few per-stage sums
are then multiplied by their stage's probability as exact integers. No prospect row is loaded.

The queries are plain SQL run through models.rawdb.fetch_all, so the same function serves the
app's first screen (before SQLAlchemy is imported) and everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from . import ladder
from .period import Period
from .rawdb import as_day, fetch_all
from .values import bp_to_ratio, micros_to_decimal, money_str

Breakdown = Literal["month", "stage", "owner"]


@dataclass(frozen=True)
class Scope:
    """Which prospects count: all, one owner's, and/or those expected in a range of months, and/or
    those in a KPI period (models/period.py: open ones, and won and lost ones expected in it)."""

    owner: str | None = None
    month_from: str | None = None  # 'YYYY-MM', inclusive
    month_to: str | None = None  # 'YYYY-MM', inclusive
    period: Period | None = None

    @property
    def snapshot_key(self) -> str:
        """The name under which the KPI history records this scope (the period is applied when the
        history is read: each snapshot keeps its months, open and won apart)."""
        parts = []
        if self.owner is not None:
            parts.append(f"owner:{self.owner}")
        if self.month_from or self.month_to:
            parts.append(f"months:{self.month_from or ''}..{self.month_to or ''}")
        return ";".join(parts) or "all"

    @property
    def key(self) -> str:
        """A stable name for this scope, period included."""
        if self.period is None or not self.period.restricts:
            return self.snapshot_key
        return f"{self.snapshot_key};period:{self.period.start}.."

    def sql(self, *, scan: bool = False, sums: bool = False) -> tuple[str, dict[str, Any]]:
        """This scope as SQL conditions on `prospect p`, with their parameters. `scan`: read the
        table straight through rather than by the live-prospect index (faster when every live
        prospect is wanted grouped by something the index does not hold). `sums`: for sums over
        every prospect in the months, which the live-stage index answers best: the months are
        tested on each of its entries rather than looked up in the listing index (by deleted_at,
        then month), whose range reads every listed column and groups in a temporary b-tree
        (a forecast's sums at a million prospects: 0.85 s against 0.24 s); a few rows of one month
        are still found through the listing index. coalesce() keeps a column from the planner in
        any database."""
        conds = ["coalesce(p.deleted_at, NULL) IS NULL" if scan else "p.deleted_at IS NULL"]
        params: dict[str, Any] = {}
        month = "coalesce(p.expected_month, NULL)" if sums else "p.expected_month"
        if self.owner is not None:
            conds.append("p.owner = :owner")
            params["owner"] = self.owner
        if self.month_from:
            conds.append(f"{month} >= :month_from")
            params["month_from"] = self.month_from
        if self.month_to:
            conds.append(f"{month} <= :month_to")
            params["month_to"] = self.month_to
        if self.period is not None and self.period.restricts:
            cond, more = self.period.sql_on_stage("p.stage_id", "p.expected_month")
            conds.append(cond)
            params.update(more)
        return " AND ".join(conds), params

    def where(self) -> list[Any]:
        """This scope as SQLAlchemy conditions on the Prospect table."""
        from sqlmodel import col

        from .tables import Prospect

        conds: list[Any] = [col(Prospect.deleted_at).is_(None)]
        if self.owner is not None:
            conds.append(col(Prospect.owner) == self.owner)
        if self.month_from:
            conds.append(col(Prospect.expected_month) >= self.month_from)
        if self.month_to:
            conds.append(col(Prospect.expected_month) <= self.month_to)
        if self.period is not None and self.period.restricts:
            from sqlalchemy import text

            cond, params = self.period.sql_on_stage("prospect.stage_id", "prospect.expected_month")
            conds.append(text(cond).bindparams(**params))
        return conds


ALL = Scope()


@dataclass(frozen=True)
class Kpi:
    count: int = 0
    tv_cents: int = 0
    ev_micros: int = 0

    def __add__(self, other: Kpi) -> Kpi:
        return Kpi(self.count + other.count, self.tv_cents + other.tv_cents, self.ev_micros + other.ev_micros)

    def moved(self, d_count: int, d_tv_cents: int, d_ev_micros: int) -> Kpi:
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
        return ladder.ev_tv_ratio(self.ev_micros, self.tv_cents)

    def ev_tv_rounded(self, places: int = 4) -> Decimal | None:
        return ladder.ev_tv_ratio(self.ev_micros, self.tv_cents, places)

    @property
    def ev_tv_text(self) -> str:
        """EV/TV as every screen and command shows it ('37.50%', '—')."""
        return ladder.ev_tv_text(self.ev_micros, self.tv_cents)

    def to_json(self) -> dict[str, Any]:
        r = self.ev_tv_rounded(6)
        return {
            "count": self.count,
            "tv": money_str(self.tv_cents),
            "ev": money_str(self.ev_micros, micros=True),
            "ev_tv": None if r is None else float(r),
        }


_KEYS = {
    None: None,
    "month": "p.expected_month",
    "owner": "p.owner",
    "stage": "p.stage_id",
    "owner_month": "p.owner, p.expected_month",
}


def _grouped(source: Any, scope: Scope, by: str | None) -> dict[Any, Kpi]:
    return _grouped_split(source, scope, by)[0]


def _grouped_split(source: Any, scope: Scope, by: str | None) -> tuple[dict[Any, Kpi], dict[Any, Kpi]]:
    """KPIs per value of `by` (None: one group). SQL sums the values per group and stage, from the
    prospect table alone (a covering index answers the whole-pipeline and per-owner sums without
    reading the table); each sum is then multiplied by its stage's probability, as exact integers,
    and lost stages are left out. Returns the KPIs per group and their won part."""
    key = _KEYS[by]
    # the live-stage index holds the stage and the month (its sums by month read no table row: at
    # 1,000,000 prospects 0.3 s, against 3.6 s for the scan); an owner is read by the scan
    where, params = scope.sql(
        scan=key not in (None, "p.stage_id", "p.expected_month") and scope.owner is None, sums=True
    )
    select_key = f"{key}, " if key else ""
    sql = (
        f"SELECT {select_key}p.stage_id, count(*), coalesce(sum(p.value_cents), 0) "
        f"FROM prospect p WHERE {where} GROUP BY {select_key}p.stage_id"
    )
    stages = {sid: (int(bp), kind) for sid, bp, kind in fetch_all(source, "SELECT id, probability_bp, kind FROM stage")}
    out: dict[Any, Kpi] = {}
    won: dict[Any, Kpi] = {}
    width = 0 if key is None else key.count(",") + 1
    for row in fetch_all(source, sql, params):
        group: Any = None if width == 0 else row[0] if width == 1 else tuple(row[:width])
        if by == "month":
            group = _no_month(group)
        elif by == "owner_month":
            group = (group[0], _no_month(group[1]))
        stage_id, count, total = row[width:]
        found = stages.get(stage_id)
        if found is None:  # a stage the ladder does not have (a damaged file): not priced, as a join leaves it out
            continue
        bp, kind = found
        if not ladder.counts(kind):
            continue
        part = Kpi(int(count), int(total), ladder.ev_micros(int(total), kind, bp))
        out[group] = out.get(group, Kpi()) + part
        if kind == ladder.WON:
            won[group] = won.get(group, Kpi()) + part
    return out, won


def _no_month(month: str | None) -> str | None:
    """A prospect's expected month as the KPIs group it: no month is None, also as '' or 'none' (the
    history's name for it), which evpipe never writes but a rep's UPDATE from psql can; grouped apart,
    both would be the history's month 'none' twice, and the day's first reading would fail for all."""
    return None if month in ("", NO_MONTH) else month


def kpis(source: Any, scope: Scope = ALL) -> Kpi:
    """TV, EV and count over a scope. `source`: an Engine, a Connection, or models.rawdb's reader."""
    return _grouped(source, scope, None).get(None, Kpi())


def kpis_by_owner_and_month(source: Any, scope: Scope = ALL) -> dict[tuple[str, str | None], Kpi]:
    """{(owner, expected month): KPIs}, in one pass: what the KPI history records for every scope."""
    return _grouped(source, scope, "owner_month")


def kpis_by_owner_and_month_split(
    source: Any, scope: Scope = ALL
) -> tuple[dict[tuple[str, str | None], Kpi], dict[tuple[str, str | None], Kpi]]:
    """`kpis_by_owner_and_month` and its won part, in the same pass: the KPI history keeps the won
    part apart, so that any period can be read from a snapshot (models/period.py)."""
    return _grouped_split(source, scope, "owner_month")


def kpis_by(source: Any, by: Breakdown, scope: Scope = ALL) -> list[tuple[str | None, Kpi]]:
    """The KPIs broken down by expected month, stage or owner, in a natural order.

    By stage, every stage of the ladder is listed (lost included, at zero), in ladder order."""
    if by == "month":
        rows = _grouped(source, scope, "month")
        return sorted(rows.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    if by == "owner":
        rows = _grouped(source, scope, "owner")
        return sorted(rows.items(), key=lambda kv: (kv[0] or "").casefold())
    if by == "stage":
        rows = _grouped(source, scope, "stage")
        stages = fetch_all(source, "SELECT id, name FROM stage WHERE archived = :no ORDER BY position", {"no": False})
        return [(name, rows.get(sid, Kpi())) for sid, name in stages]
    raise ValueError(f"by: {by!r} is not month, stage or owner")


def stage_table(source: Any) -> list[dict[str, Any]]:
    """The ladder as JSON-ready rows: name, position, probability (0..1), kind, stale_days."""
    rows = fetch_all(
        source,
        "SELECT name, position, probability_bp, kind, stale_days FROM stage WHERE archived = :no ORDER BY position",
        {"no": False},
    )
    return [
        {"name": name, "position": pos, "probability": bp_to_ratio(bp), "kind": kind, "stale_days": stale}
        for name, pos, bp, kind, stale in rows
    ]


# ---------------------------------------------------------------- the KPI history (readings)


@dataclass(frozen=True)
class Snapshot:
    taken_on: date
    kpi: Kpi


def snapshots(
    source: Any, scope: Scope = ALL, *, since: date | None = None, until: date | None = None
) -> list[Snapshot]:
    """The recorded KPI history of a scope, oldest first (from `since` to `until`, inclusive).
    models.history records it.

    With a period, each reading is that day's pipeline counted for this period: the snapshot's
    figures less its won prospects expected in months outside the period (every snapshot keeps
    its months, open and won apart). A reading recorded before evpipe kept them apart, and not yet
    completed by models.history, is left out rather than shown for all of history."""
    conds = ["s.scope = :scope"]
    params: dict[str, Any] = {"scope": scope.snapshot_key}
    if since is not None:
        conds.append("s.taken_on >= :since")
        params["since"] = since
    if until is not None:
        conds.append("s.taken_on <= :until")
        params["until"] = until
    where = " AND ".join(conds)
    if scope.period is None or not scope.period.restricts:
        rows = fetch_all(
            source,
            f"SELECT s.taken_on, s.count, s.tv_cents, s.ev_micros FROM kpi_snapshot s WHERE {where} ORDER BY s.taken_on",
            params,
        )
        return [Snapshot(as_day(d), Kpi(int(c), int(tv), int(ev))) for d, c, tv, ev in rows]
    in_period, more = scope.period.months_sql(f"NULLIF(m.month, '{NO_MONTH}')")
    params.update(more)
    rows = fetch_all(
        source,
        f"""SELECT s.taken_on, s.count, s.tv_cents, s.ev_micros,
                   coalesce(x.c, 0), coalesce(x.tv, 0), coalesce(x.ev, 0), coalesce(x.unknown, 0)
            FROM kpi_snapshot s LEFT JOIN (
                SELECT s.id AS sid, sum(m.won_count) AS c, sum(m.won_tv_cents) AS tv,
                       sum(m.won_ev_micros) AS ev, sum(CASE WHEN m.won_count IS NULL THEN 1 ELSE 0 END) AS unknown
                FROM kpi_snapshot s JOIN kpi_snapshot_month m ON m.snapshot_id = {months_holder("s")}
                WHERE {where} AND NOT {in_period}
                GROUP BY s.id
            ) x ON x.sid = s.id
            WHERE {where} ORDER BY s.taken_on""",
        params,
    )
    return [
        Snapshot(as_day(d), Kpi(int(c) - int(oc), int(tv) - int(otv), int(ev) - int(oev)))
        for d, c, tv, ev, oc, otv, oev, unknown in rows
        if not unknown
    ]


def current_kpis(source: Any, scope: Scope, today: date) -> Kpi:
    """A scope's KPIs now, the same figures as `kpis`: today's KPI reading of the scope when there
    is one, else summed from the prospects. Every change keeps today's reading exact as it commits
    (models/snapshot_deltas.py; an import forgets it), so a few rows are read whatever the size of
    the pipeline: a million prospects take about 0.25 s to sum.

    `today`: taken after the read transaction's first read (`source` is a cursor in one), so that
    every change it sees was kept in this day's reading or an earlier one, never a later one."""
    found = snapshots(source, scope, since=today, until=today)
    return found[0].kpi if found else kpis(source, scope)


#: How a snapshot's month row names "no expected month".
NO_MONTH = "none"


def months_holder(alias: str) -> str:
    """SQL for the snapshot whose month rows (kpi_snapshot_month.snapshot_id) the snapshot `alias`
    has: its own, or the earlier one it shares them with (kpi_snapshot.months_of)."""
    return f"coalesce({alias}.months_of, {alias}.id)"
