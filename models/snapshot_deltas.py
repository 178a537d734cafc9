"""Today's KPI snapshot kept up to date from each change's own delta (issue 13, point 2).

Recounting the whole pipeline after every burst of changes costs what the pipeline costs (tens
of milliseconds at 10,000 prospects, seconds at a million). Instead, every store write (the
session of `StoreBase._write`) is watched (`watch`): which prospects it changed, and how each
stood before (owner, expected month, stage, value, deleted or not; read from the ORM's own
record of what it loaded, so every write is covered: add, edit, delete, move, win, lose, reopen,
undo, a stage's removal). When it commits, in the same transaction, the difference each prospect
makes to its (owner, month) cell (ladder.kpi_part: the one rule for what a prospect adds; its won
part apart) is added to today's snapshot rows: everyone's, and each owner's, and their month rows.
A few rows per change, whatever the size of the pipeline.

Today's snapshot is only ever kept this way once it exists: the first one of a day is a full
recount (`history.keep_current`, run after the change, off the UI thread). A change that has no
cheap delta (a stage's probability or kind: every prospect on it moves) removes today's snapshot
instead, so that the next `keep_current` recounts it; so does any sign that the snapshot does not
match (the deltas do not add up to the journal's, a month row would go below zero, a value was
not loaded). So "today's snapshot exists" always means "it is exact", and a missing one is
recounted once after the burst.

On a server a rep may not write the KPI history (models/grants.py): there a trigger adds what a
rep's change makes to today's reading, in the same transaction (models/history_guard.py), and
nothing here runs for them.

Concurrent writers (PostgreSQL): a delta updates everyone's row first, which holds that row until
the change commits, so two changes apply their deltas one after the other, and a recount
(`history.record_snapshot`, under the ladder's exclusive lock) never interleaves with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, event, func, insert, inspect, literal, or_, select, update
from sqlmodel import Session, col

from . import clock, history_guard, ladder
from .kpi import ALL, NO_MONTH, Scope
from .tables import ChangeEvent, KpiSnapshot, KpiSnapshotMonth, Prospect, Stage, table_of
from .values import MAX_SUM, sums_fit, too_large

#: (owner, expected month, stage id, value in cents, live): what a prospect's KPI cell depends on.
Raw = tuple[str, str | None, int, int, bool]
#: (owner, expected month)
Cell = tuple[str, str | None]
#: count, TV, EV and their won part: one month row's six figures.
Six = tuple[int, int, int, int, int, int]

_FIELDS = ("owner", "expected_month", "stage_id", "value_cents", "deleted_at")
_STAGE_FIELDS = ("probability_bp", "kind")


class _Unknown(Exception):
    """A prospect's earlier value was not loaded: its delta cannot be known."""


@dataclass
class _Watch:
    #: id(prospect) -> (the prospect, how it stood before the transaction; None: new)
    before: dict[int, tuple[Prospect, Raw | None]] = field(default_factory=dict)
    events: list[ChangeEvent] = field(default_factory=list)
    #: a change with no cheap delta (a stage's probability or kind), or an unknown earlier value
    recount: bool = False
    #: a rep on a server: the server adds their changes itself (models/history_guard.py)
    server_keeps: bool = False


def _raw_now(p: Prospect) -> Raw:
    return (p.owner, p.expected_month, p.stage_id, p.value_cents, p.deleted_at is None)


def _raw_before(p: Prospect) -> Raw:
    """How `p` stood when it was loaded (the ORM keeps the loaded value of what changed since)."""
    state: Any = inspect(p)
    values = []
    for name in _FIELDS:
        h = state.attrs[name].history
        if h.deleted:
            values.append(h.deleted[0])
        elif h.unchanged:
            values.append(h.unchanged[0])
        elif not h.added:
            values.append(getattr(p, name))
        else:
            raise _Unknown(name)
    owner, month, stage_id, value, deleted_at = values
    return (owner, month, stage_id, value, deleted_at is None)


def watch(session: Session) -> None:
    """Keep today's KPI snapshot from what this write session changes, when it commits."""
    seen = _Watch()

    @event.listens_for(session, "after_begin")
    def _after_begin(_s: Session, _transaction: Any, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            seen.server_keeps = not history_guard.writes_history(conn)

    @event.listens_for(session, "before_flush")
    def _before_flush(s: Session, _context: Any, _instances: Any) -> None:
        for obj in s.new:
            if isinstance(obj, Prospect):
                seen.before.setdefault(id(obj), (obj, None))
            elif isinstance(obj, ChangeEvent):
                seen.events.append(obj)
        for obj in s.dirty:
            if isinstance(obj, Prospect) and id(obj) not in seen.before:
                try:
                    seen.before[id(obj)] = (obj, _raw_before(obj))
                except _Unknown:
                    seen.recount = True
            elif isinstance(obj, Stage):
                state: Any = inspect(obj)
                if any(state.attrs[name].history.has_changes() for name in _STAGE_FIELDS):
                    seen.recount = True
        if any(isinstance(obj, (Prospect, Stage)) for obj in s.deleted):
            seen.recount = True

    @event.listens_for(session, "before_commit")
    def _before_commit(s: Session) -> None:
        s.flush()
        if seen.server_keeps or (not seen.before and not seen.recount):
            return
        conn = s.connection()
        now = clock.now()
        day = now.date()
        all_id = conn.scalar(
            select(col(KpiSnapshot.id)).where(col(KpiSnapshot.scope) == ALL.key, col(KpiSnapshot.taken_on) == day)
        )
        if all_id is None or seen.recount:
            ev_fits(conn)  # (a recount follows, which would meet a sum past 64 bits after the change)
        if all_id is None:
            return  # none yet today: the day's first reading is a recount (history.keep_current)
        if seen.recount:
            forget_day(conn, day)
            return
        stages: dict[int, Stage] = {}

        def stage(sid: int) -> Stage:
            if sid not in stages:
                stages[sid] = s.get_one(Stage, sid)
            return stages[sid]

        cells: dict[Cell, list[int]] = {}
        for p, before in seen.before.values():
            for raw, sign in ((before, -1), (_raw_now(p), 1)):
                if raw is None or not raw[4]:
                    continue
                owner, month, sid, value, _ = raw
                st = stage(sid)
                k = ladder.kpi_part(value, st.kind, st.probability_bp)
                won = k if st.kind == ladder.WON else (0, 0, 0)
                acc = cells.setdefault((owner, month), [0] * 6)
                for i, v in enumerate((*k, *won)):
                    acc[i] += sign * v
        journal = [sum(getattr(e, f) for e in seen.events) for f in ("d_count", "d_tv_cents", "d_ev_micros")]
        if [sum(c[i] for c in cells.values()) for i in range(3)] != journal:
            forget_day(conn, day)  # the journal says otherwise: recount rather than guess
            return
        if not apply(conn, day, now, all_id, cells):
            forget_day(conn, day)


def scope_deltas(cells: dict[Cell, list[int]]) -> dict[str, dict[str | None, Six]]:
    """Cell deltas as each snapshot scope's month deltas: everyone's ("all") and each owner's,
    leaving out what adds up to nothing."""
    out: dict[str, dict[str | None, list[int]]] = {}
    for (owner, month), six in cells.items():
        for key in (ALL.key, Scope(owner=owner).key):
            acc = out.setdefault(key, {}).setdefault(month, [0] * 6)
            for i in range(6):
                acc[i] += six[i]
    return {
        key: {m: (a, b, c, d, e, f) for m, (a, b, c, d, e, f) in months.items() if any((a, b, c, d, e, f))}
        for key, months in out.items()
        if any(any(v) for v in months.values())
    }


def apply(conn: Connection, day: date, at: datetime, all_id: int, cells: dict[Cell, list[int]]) -> bool:
    """Add the cell deltas to the snapshots of `day` (everyone's is `all_id`): a few statements
    per scope and month touched. False when the snapshot proves not to match (a row would go
    below zero): the caller forgets the day, to be recounted. A sum that would pass 64 bits
    refuses the change (errors.SumTooLarge, raised into its transaction)."""
    per_scope = scope_deltas(cells)
    if not per_scope:
        return True
    touched: list[int] = []
    with sums_fit():
        kept = _apply(conn, day, at, all_id, per_scope, touched)
        # SQLite turns an integer `+` that overflows into a float, silently: look for one
        if conn.dialect.name == "sqlite" and touched and _became_float(conn, touched):
            raise too_large()
    return kept


def _became_float(conn: Connection, snapshot_ids: list[int]) -> bool:
    """Whether a sum of these snapshots or of their months is a float now (SQLite; a won part
    that is NULL, from before it was kept, is not one)."""
    snap, months = table_of(KpiSnapshot), table_of(KpiSnapshotMonth)
    sums = (months.c.tv_cents, months.c.ev_micros, months.c.won_tv_cents, months.c.won_ev_micros)
    floats = [
        select(snap.c.id).where(
            snap.c.id.in_(snapshot_ids), or_(*(func.typeof(c) == "real" for c in (snap.c.tv_cents, snap.c.ev_micros)))
        ),
        select(months.c.snapshot_id).where(
            months.c.snapshot_id.in_(snapshot_ids), or_(*(func.typeof(c) == "real" for c in sums))
        ),
    ]
    return any(conn.execute(q.limit(1)).first() is not None for q in floats)


def ev_fits(conn: Connection) -> None:
    """Refuse (errors.SumTooLarge) a write after which the live prospects' EV, every month and
    stage, would pass what 64 bits hold (values.MAX_SUM): every KPI reading adds up a part of it.
    One pass over the live prospects' index, so only where a recount follows anyway: an import,
    the day's first change, a stage's probability changed. Other changes are checked by their
    own delta (`apply`)."""
    p, st = table_of(Prospect), table_of(Stage)
    stages = {sid: (kind, bp) for sid, kind, bp in conn.execute(select(st.c.id, st.c.kind, st.c.probability_bp))}
    with sums_fit():  # (values summed per stage, in cents: past 64 bits only beyond 9 million prospects)
        by_stage = conn.execute(
            select(p.c.stage_id, func.sum(p.c.value_cents)).where(p.c.deleted_at.is_(None)).group_by(p.c.stage_id)
        ).all()
    total = sum(ladder.kpi_part(int(value or 0), *stages[sid])[2] for sid, value in by_stage)  # (exact: Python ints)
    if total > MAX_SUM:
        raise too_large()


def _apply(
    conn: Connection,
    day: date,
    at: datetime,
    all_id: int,
    per_scope: dict[str, dict[str | None, Six]],
    touched: list[int],
) -> bool:
    snap, months = table_of(KpiSnapshot), table_of(KpiSnapshotMonth)
    server = history_guard.server_clock(conn)  # (with `at`: today's moment for the trigger of reps' changes)
    # everyone's row first: on PostgreSQL it holds the day's snapshot until this change commits
    for key in sorted(per_scope, key=lambda k: (k != ALL.key, k)):
        deltas = per_scope[key]
        total = [sum(six[i] for six in deltas.values()) for i in range(3)]
        if key == ALL.key:
            sid: int | None = all_id
        else:
            sid = conn.scalar(select(snap.c.id).where(snap.c.scope == key, snap.c.taken_on == day))
        if sid is not None:
            own_months(conn, sid)
        else:  # an owner with nothing counted today until now
            if total[0] < 0:
                return False
            sid = conn.execute(
                insert(snap)
                .values(scope=key, taken_on=day, taken_at=at, server_at=server, count=0, tv_cents=0, ev_micros=0)
                .returning(snap.c.id)
            ).scalar_one()
        touched.append(sid)
        conn.execute(
            update(snap)
            .where(snap.c.id == sid)
            .values(
                taken_at=at,
                server_at=server,
                count=snap.c.count + total[0],
                tv_cents=snap.c.tv_cents + total[1],
                ev_micros=snap.c.ev_micros + total[2],
            )
        )
        for month in sorted(deltas, key=lambda m: (m is None, m or "")):
            dc, dtv, dev, wc, wtv, wev = deltas[month]
            name = month or NO_MONTH
            where = (months.c.snapshot_id == sid, months.c.month == name)
            done = conn.execute(
                update(months)
                .where(*where)
                .values(
                    count=months.c.count + dc,
                    tv_cents=months.c.tv_cents + dtv,
                    ev_micros=months.c.ev_micros + dev,
                    won_count=months.c.won_count + wc,
                    won_tv_cents=months.c.won_tv_cents + wtv,
                    won_ev_micros=months.c.won_ev_micros + wev,
                )
            )
            if not done.rowcount:
                if dc <= 0:
                    return False  # taking away from a month the snapshot does not have
                conn.execute(
                    insert(months).values(
                        snapshot_id=sid,
                        month=name,
                        count=dc,
                        tv_cents=dtv,
                        ev_micros=dev,
                        won_count=wc,
                        won_tv_cents=wtv,
                        won_ev_micros=wev,
                    )
                )
            elif dc < 0:
                left = conn.scalar(select(months.c.count).where(*where))
                if left is None or left < 0:
                    return False
                if left == 0:  # the month has no prospect left: a recount would not list it
                    conn.execute(delete(months).where(*where))
    return True


def forget_day(conn: Connection, day: date) -> None:
    """Remove the snapshots of `day` (everyone's and each owner's), so that the next
    `history.keep_current` recounts them."""
    snap, months = table_of(KpiSnapshot), table_of(KpiSnapshotMonth)
    ids = list(
        conn.scalars(
            select(snap.c.id).where(
                snap.c.taken_on == day, or_(snap.c.scope == ALL.key, snap.c.scope.startswith("owner:"))
            )
        )
    )
    for sid in ids:
        own_months(conn, sid)
    conn.execute(delete(months).where(months.c.snapshot_id.in_(ids)))
    conn.execute(delete(snap).where(snap.c.id.in_(ids)))


def stray_months_of(conn: Connection) -> int | None:
    """The id of a snapshot whose months_of names no snapshot holding month rows of its own (one
    that is not there, or that has another's): a hand-edited dump (models/backup.py). None when
    every one holds."""
    snap = table_of(KpiSnapshot)
    holder = snap.alias("holder")
    return conn.scalar(
        select(snap.c.id)
        .where(
            snap.c.months_of.is_not(None),
            ~select(holder.c.id).where(holder.c.id == snap.c.months_of, holder.c.months_of.is_(None)).exists(),
        )
        .limit(1)
    )


_MONTH_FIGURES = [c.name for c in table_of(KpiSnapshotMonth).c if c.name != "snapshot_id"]


def own_months(conn: Connection, sid: int) -> None:
    """Make the month rows that snapshot `sid` has its own alone, before they change or go: a
    reconstructed snapshot may have an earlier one's (kpi_snapshot.months_of), and later ones may
    have its. One look by the index when neither is so (every reading recorded or kept today)."""
    snap, months = table_of(KpiSnapshot), table_of(KpiSnapshotMonth)
    shared, heir = conn.execute(
        select(
            snap.c.months_of,
            select(func.min(snap.c.id)).where(snap.c.months_of == sid).scalar_subquery(),
        ).where(snap.c.id == sid)
    ).one()

    def copy(source: int, to: int) -> None:
        figures = [months.c[name] for name in _MONTH_FIGURES]
        rows = select(literal(to), *figures).where(months.c.snapshot_id == source)
        conn.execute(insert(months).from_select(["snapshot_id", *_MONTH_FIGURES], rows))

    if shared is not None:  # it has another's months: it gets a copy of them
        copy(shared, sid)
        conn.execute(update(snap).where(snap.c.id == sid).values(months_of=None))
    if heir is not None:  # later ones have its months: the first of them gets a copy, and the others its
        copy(sid, heir)
        conn.execute(update(snap).where(snap.c.id == heir).values(months_of=None))
        conn.execute(update(snap).where(snap.c.months_of == sid).values(months_of=heir))
