"""The KPI history: snapshots of TV, EV and the per-month forecast, one per scope per day.

Rules (see docs/domain.md and issue 4):

- A snapshot dated D is the state at the *end* of day D: whenever data changes, the day's
  reading is brought up to date, so the latest reading of the day wins. The day's first reading is
  a full recount (`record_snapshot`, run by `keep_current` after a change); after that each change
  adds its own delta to it as it commits (models/snapshot_deltas.py), and a change with no cheap
  delta (a stage's probability) removes it to be recounted once.
- Scopes: "all", and "owner:NAME" for each owner.
- Each snapshot keeps every expected month's figures and their won part (issue 9), so that the
  KPIs of any KPI period (models/period.py) can be read from it: the history of a period counts
  every past reading for today's period (`kpi.snapshots`), like for like. Snapshots recorded
  before migration 0004 get their won part reconstructed from the journal (`complete_won_parts`).
- Always one at each month's start. The state at the start of month m (00:00 on the 1st) is the
  state at the end of the last day of month m-1, so the month-start snapshot of m is the one
  dated the last day of m-1. Whenever a snapshot is recorded, every month start since the
  previous snapshot that has none is first reconstructed from the journal (exactly, see below)
  and recorded; a month that started before any data existed gets none. The forecast frozen at
  the start of month m (models/forecast.py) is read from that snapshot.
- `backfill` rebuilds weekly snapshots (every 7 days back from today) and month starts for a
  database that has history but not those snapshots (an import, the demo). It never replaces a
  snapshot that exists.

Reconstruction (`state_before`; many moments at once: `Replay.states`). The state just before T is
replayed from the journal and the stage-change history (models/replay.py: read once, walked
forward in time, so that the many moments of a backfill cost one pass):

- count and TV of each prospect: the sum of the exact deltas (d_count, d_tv_cents) of its journal
  entries before T (creation adds it, moves, value edits, deletes and undos move it);
- its stage: the last stage change before T; the stage's probability at T: the `before` of the
  first probability change of that stage at or after T, else today's;
- its expected month and owner: the `before` of the first edit at or after T that changed them,
  else today's.

So EV(T) = sum of TV on a stage at T x that stage's probability at T, which equals EV(now) minus
the sum of the EV deltas journalled since T (tests check both ways). A prospect with no journal
entries at all (written by something other than the store) falls back to the value recorded on
its last stage change before T.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, delete, func, insert, literal_column, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from . import clock
from .db import driver_columns, writer
from .dialect import lock_ladder, lock_tables, reset_sequences, upsert_many
from .forecast import frozen_forecasts, month_start_key  # noqa: F401  (re-exported: read without SQLAlchemy there)
from .grants import is_server, sees_everything
from .history_guard import server_clock, writes_history
from .kpi import (  # noqa: F401  (re-exported)
    ALL,
    NO_MONTH,
    Kpi,
    Scope,
    Snapshot,
    kpis_by_owner_and_month_split,
    months_holder,
    snapshots,
)
from .month_start_sql import carry_forward, end_of_day, last_of_month, month_start, month_start_days
from .rawdb import as_day
from .replay import JournalRows, ProspectThen, Replay, State
from .snapshot_deltas import own_months
from .tables import ChangeEvent, KpiSnapshot, KpiSnapshotMonth, table_of
from .values import sums_fit

# ---------------------------------------------------------------- dates


def records_history(engine: Engine) -> bool:
    """Whether this connection records KPI readings: it reads every prospect and may write the
    history. On a server a rep does not (models/grants.py): the server adds a rep's changes to
    today's reading (models/history_guard.py), and the readings they cannot write are recorded by
    the next owner or manager whose app or command needs them."""
    if not is_server(engine):
        return True
    with engine.connect() as conn:
        return writes_history(conn) and sees_everything(conn)


# ---------------------------------------------------------------- writing


#: Values in one SQL IN list at most: SQLite builds before 3.32 take 999 parameters a statement.
_IN_LIST = 500


def _in_lists(values: list[Any]) -> Iterator[list[Any]]:
    """`values` in parts of at most `_IN_LIST`, one SQL IN list each."""
    for n in range(0, len(values), _IN_LIST):
        yield values[n : n + _IN_LIST]


def _write_snapshots(
    s: Session,
    day: date,
    at: datetime,
    scopes: list[tuple[str, list[tuple[str | None, Kpi]], dict[str | None, Kpi]]],
) -> None:
    """Each scope's reading of `day` (scope key, its months' figures, their won parts), replacing
    the day's earlier ones, in a few statements for all of them (one each for 31 owners took 50 ms
    of the CRM import)."""
    snap_table, month_table = table_of(KpiSnapshot), table_of(KpiSnapshotMonth)
    conn = s.connection()
    server = server_clock(conn)  # a live reading: the server's clock beside `at` (models/history_guard.py)
    rows = []
    for key, by_month, _ in scopes:
        total = Kpi()
        for _, k in by_month:
            total = total + k
        rows.append(
            dict(
                scope=key,
                taken_on=day,
                taken_at=at,
                count=total.count,
                tv_cents=total.tv_cents,
                ev_micros=total.ev_micros,
            )
        )
    # Insert or update each in one statement, so two writers recording the same day do not collide
    # on the unique key.
    upsert_many(conn, snap_table, rows, ["scope", "taken_on"], same={"server_at": server})
    keys = [key for key, _, _ in scopes]
    ids: dict[str, int] = {}
    for part in _in_lists(keys):  # (an import may name tens of thousands of owners)
        q = select(snap_table.c.scope, snap_table.c.id).where(
            snap_table.c.taken_on == day, snap_table.c.scope.in_(part)
        )
        ids.update(conn.execute(q).all())
    for sid in _sharing(conn, list(ids.values())):
        own_months(conn, sid)
    for part in _in_lists(list(ids.values())):
        conn.execute(delete(month_table).where(month_table.c.snapshot_id.in_(part)))
    nothing = Kpi()
    months = [
        dict(
            snapshot_id=ids[key],
            month=month or NO_MONTH,
            count=k.count,
            tv_cents=k.tv_cents,
            ev_micros=k.ev_micros,
            won_count=(w := won.get(month, nothing)).count,
            won_tv_cents=w.tv_cents,
            won_ev_micros=w.ev_micros,
        )
        for key, by_month, won in scopes
        for month, k in by_month
    ]
    if months:
        conn.execute(insert(month_table), months)


def _sharing(conn: Connection, sids: list[int]) -> list[int]:
    """Those of snapshots `sids` that share month rows with another (kpi_snapshot.months_of, either
    way), which `snapshot_deltas.own_months` must part before their rows change: found in one look
    for them all (a reading recorded or kept today mostly shares none)."""
    snap = table_of(KpiSnapshot)
    found: set[int] = set()
    for part in _in_lists(sids):
        found.update(
            conn.execute(select(snap.c.id).where(snap.c.id.in_(part), snap.c.months_of.is_not(None))).scalars()
        )
        found.update(conn.execute(select(snap.c.months_of).where(snap.c.months_of.in_(part))).scalars())
    return sorted(found)


def record_snapshot(engine: Engine, *, at: datetime | None = None, owners: bool = True) -> Kpi:
    """Recount today's KPIs (replacing today's earlier reading) for everyone and for each owner,
    after first reconstructing any month-start snapshot that is missing. Returns the KPIs of
    everyone. Records nothing for a connection that cannot read every prospect (a rep whom the
    server shows only their own, models/grants.py): its sums would not be everyone's.

    Every change then keeps today's reading from its own delta (models/snapshot_deltas.py), so
    this full recount runs only when there is no reading today (`keep_current`). It reads and
    writes in one transaction that no prospect write can interleave with (the ladder's exclusive
    lock; SQLite's writer holds the whole database): a change committed between the reading and
    the writing would otherwise be lost from a snapshot that deltas then keep. An owner who had a
    reading today and has nothing counted now gets a reading of zero, as the deltas leave it."""
    at = at or clock.now()
    if not records_history(engine):
        with engine.connect() as conn:
            cells, _ = kpis_by_owner_and_month_split(conn)
        return sum(cells.values(), Kpi())
    ensure_month_starts(engine, at=at)
    complete_won_parts(engine)
    with sums_fit(), Session(writer(engine)) as s, s.begin():
        lock_ladder(s.connection(), exclusive=True)
        cells, won_cells = kpis_by_owner_and_month_split(s.connection())
        months: dict[str | None, Kpi] = {}
        by_owner: dict[str, dict[str | None, Kpi]] = {}
        for (owner, month), k in cells.items():
            months[month] = months.get(month, Kpi()) + k
            mine = by_owner.setdefault(owner, {})
            mine[month] = mine.get(month, Kpi()) + k
        won_months: dict[str | None, Kpi] = {}
        won_by_owner: dict[str, dict[str | None, Kpi]] = {}
        for (owner, month), k in won_cells.items():
            won_months[month] = won_months.get(month, Kpi()) + k
            mine = won_by_owner.setdefault(owner, {})
            mine[month] = mine.get(month, Kpi()) + k

        def in_order(rows: dict[str | None, Kpi]) -> list[tuple[str | None, Kpi]]:
            return sorted(rows.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))

        everyone = in_order(months)
        per_owner = {name: in_order(rows) for name, rows in by_owner.items()} if owners else {}
        if owners:
            earlier = s.scalars(
                select(col(KpiSnapshot.scope)).where(
                    col(KpiSnapshot.taken_on) == at.date(), col(KpiSnapshot.scope).startswith("owner:")
                )
            )
            for key in earlier:
                per_owner.setdefault(key.removeprefix("owner:"), [])
        scopes = [(ALL.key, everyone, won_months)]
        for name in sorted(per_owner):
            scopes.append((Scope(owner=name).key, per_owner[name], won_by_owner.get(name, {})))
        _write_snapshots(s, at.date(), at, scopes)
    total = Kpi()
    for _, k in everyone:
        total = total + k
    return total


def keep_current(engine: Engine, *, at: datetime | None = None) -> bool:
    """What the app and the CLI run after a burst of changes: nothing more than a look when today's
    reading exists (each change has kept it, models/snapshot_deltas.py), else one full recount
    (`record_snapshot`: the day's first change, a change with no cheap delta, an import). Returns
    whether it recounted."""
    at = at or clock.now()
    with engine.connect() as conn:
        kept = conn.scalar(
            select(col(KpiSnapshot.id)).where(col(KpiSnapshot.scope) == ALL.key, col(KpiSnapshot.taken_on) == at.date())
        )
    if kept is not None or not records_history(engine):  # a rep records none (models/history_guard.py)
        return False
    record_snapshot(engine, at=at)
    return True


def _first_event_at(conn: Connection) -> datetime | None:
    return conn.scalar(select(func.min(col(ChangeEvent.at))))


def _record_reconstructed(engine: Engine, days: list[date]) -> int:
    """Reconstruct and record the end-of-day state of each day in `days` that has no snapshot yet,
    all in one replay of the journal (models/replay.py). Returns how many days were written."""
    with engine.connect() as conn:
        have = {
            d
            for (d,) in conn.execute(
                select(col(KpiSnapshot.taken_on)).where(
                    col(KpiSnapshot.scope) == ALL.key, col(KpiSnapshot.taken_on).in_(days)
                )
            )
        }
        todo = [d for d in sorted(set(days)) if d not in have]
        if not todo:
            return 0
        states = list(zip(todo, Replay(conn).states([end_of_day(day) for day in todo])))
    return _bulk_write(engine, states)


def _bulk_write(engine: Engine, states: list[tuple[date, tuple[State, State]]]) -> int:
    """Write reconstructed snapshots (everyone's and each owner's), keeping any that exist. Returns
    how many days got an "all" snapshot. The rows are computed before the write lock is taken (an
    import's history can take a while to add up); under it, only the ones still missing are
    inserted, and each different set of month rows (`_month_sets`) once, under the first of them
    that has it: the others name that one (kpi_snapshot.months_of)."""
    days = [d for d, _ in states]
    with engine.connect() as conn:
        existing = _existing_snapshots(conn, days)
        guess = (conn.execute(select(func.max(col(KpiSnapshot.id)))).scalar() or 0) + 1
    planned = _plan_snapshots(states, existing, engine.dialect, guess)
    return 0 if planned is None else write_planned(engine, planned)


def _existing_snapshots(conn: Connection, days: list[date]) -> set[tuple[str, date]]:
    q = select(col(KpiSnapshot.scope), col(KpiSnapshot.taken_on)).where(col(KpiSnapshot.taken_on).in_(days))
    return {(scope, day) for scope, day in conn.execute(q).all()}


@dataclass
class PlannedSnapshots:
    """Reconstructed snapshots ready to write (`write_planned`): the days they are of, each one
    planned (its scope and day, its row in _SNAPSHOT_FIELDS' order, its month rows), each one's set
    of month rows and each set's rows (`_month_sets`), and the rows made ready for the driver with
    ids from `guess` on (`_ready_snapshots`)."""

    days: list[date]
    planned: list[tuple[tuple[str, date], tuple[Any, ...], list[tuple[Any, ...]]]]
    sets: list[int]
    set_rows: list[tuple[Any, ...]]
    guess: int
    ready: list[Any]


def _plan_snapshots(
    states: list[tuple[date, tuple[State, State]]], existing: set[tuple[str, date]], dialect: Any, guess: int
) -> PlannedSnapshots | None:
    """The snapshots of `states` that `existing` does not hold, planned (None: none)."""
    planned: list[tuple[tuple[str, date], tuple[Any, ...], list[tuple[Any, ...]]]] = []
    rows_of: dict[int, list[tuple[str, Kpi, list[tuple[Any, ...]]]]] = {}  # per state (days alike share one)
    for day, both in states:
        at = end_of_day(day) - timedelta(seconds=1)
        if id(both) not in rows_of:
            rows_of[id(both)] = _scope_rows(*both)
        for key, total, month_rows in rows_of[id(both)]:
            if (key, day) in existing:
                continue
            # (a tuple, in _SNAPSHOT_FIELDS' order: the CRM sample's history plans 19,472 of them)
            snap = (key, day, at, total.count, total.tv_cents, total.ev_micros)
            planned.append(((key, day), snap, month_rows))
    if not planned:
        return None
    sets, set_rows = _month_sets(planned)
    # made ready for the driver now, with the ids they will have if nothing changes meanwhile
    ready = _ready_snapshots(dialect, planned, sets, guess)
    return PlannedSnapshots([d for d, _ in states], planned, sets, set_rows, guess, ready)


def write_planned(engine: Engine, plan: PlannedSnapshots) -> int:
    """Write planned snapshots (`_plan_snapshots`) under the write lock: those another evpipe wrote
    meanwhile are kept as they are, and the rows are made again if their ids moved. Returns how
    many days got an "all" snapshot."""
    snap_table = table_of(KpiSnapshot)
    planned, sets = plan.planned, plan.sets
    with sums_fit(), writer(engine).begin() as conn:
        lock_tables(conn, [snap_table])  # it numbers its rows itself (PostgreSQL: no other writer adds one meanwhile)
        existing = _existing_snapshots(conn, plan.days)  # written meanwhile by another evpipe: kept as it is
        keep = [p[0] not in existing for p in planned]
        todo = [p for p, k in zip(planned, keep) if k]
        if not todo:
            return 0
        first = (conn.execute(select(func.max(col(KpiSnapshot.id)))).scalar() or 0) + 1
        todo_sets = [n for n, k in zip(sets, keep) if k]
        ready = plan.ready
        if len(todo) != len(planned) or first != plan.guess:
            ready = _ready_snapshots(engine.dialect, todo, todo_sets, first)
        _insert_many(conn, snap_table, ready)
        # each set's rows once, under the first snapshot that has it
        holder = _holders(todo_sets, first)
        _insert_many(conn, table_of(KpiSnapshotMonth), [(holder[n], *row) for n, *row in plan.set_rows if n in holder])
        reset_sequences(conn, [snap_table])  # the id sequence continues after the ids given here
    return sum(1 for (key, _), _, _ in todo if key == ALL.key)


@dataclass(frozen=True)
class HandedOver:
    """Planned snapshots (`_plan_snapshots`) that the fork which planned them wrote to an SQLite
    file of their own (`hand_over`), each row as the driver takes it, ids from `guess` on: SQLite
    copies them in (`write_handed_over`), rather than this process unpickling the plan and binding
    it row by row (the CRM sample's 19,472 snapshots and 14,665 month rows: 36 ms, against 70 of
    binding and 15 of unpickling, while the fork writes the file beside the import's own write)."""

    path: str
    guess: int
    snapshot_columns: tuple[str, ...]
    month_columns: tuple[str, ...]

    def discard(self) -> None:
        discard_hand_over(self.path)


def hand_over_file() -> str:
    """A new empty file in the temporary folder for `hand_over` (made by the process that will
    delete it, `discard_hand_over`, whatever becomes of the fork)."""
    fd, path = tempfile.mkstemp(prefix="evpipe-history-", suffix=".db")
    os.close(fd)
    return path


def discard_hand_over(path: str) -> None:
    """Delete a `hand_over_file` (gone already: nothing to do)."""
    with suppress(OSError):
        os.unlink(path)


def hand_over(plan: PlannedSnapshots, dialect: Any, path: str) -> HandedOver | None:
    """(In the fork that planned them) `plan`'s rows written to the empty SQLite file `path`
    (`hand_over_file`): table s the snapshots, table m the month rows, columns in the tables'
    order. None where the rows are not the driver's tuples (a driver that takes named values: the
    plan is handed back whole)."""
    if not plan.ready or not isinstance(plan.ready[0], tuple):
        return None
    snapshot_columns = tuple(insert(table_of(KpiSnapshot)).compile(dialect=dialect).positiontup or ())
    month_columns = tuple(table_of(KpiSnapshotMonth).c.keys())
    holder = _holders(plan.sets, plan.guess)
    months = [(holder[n], *row) for n, *row in plan.set_rows if n in holder]
    handed = HandedOver(path, plan.guess, snapshot_columns, month_columns)
    try:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=OFF")  # (a scratch file: read once, then deleted)
            connection.execute("BEGIN")
            for table, columns, rows in (("s", snapshot_columns, plan.ready), ("m", month_columns, months)):
                connection.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
                connection.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", rows)
            connection.execute("COMMIT")
        finally:
            connection.close()
    except BaseException:
        handed.discard()
        raise
    return handed


def write_handed_over(engine: Engine, handed: HandedOver) -> bool:
    """Copy the snapshots a fork handed over (`hand_over`) in, under the write lock, and delete its
    file. Their ids move on together where others took the ones they were given (an import forgets
    today's reading after the fork began). False, writing nothing, where another evpipe wrote a
    snapshot of one of their days and scopes meanwhile: the caller then rebuilds the history as
    ever, keeping that one; and where its file cannot be read (the temporary folder emptied
    meanwhile, say)."""
    snap_table = table_of(KpiSnapshot)
    columns, months = ", ".join(handed.snapshot_columns), ", ".join(handed.month_columns)
    try:
        with writer(engine).connect() as conn:
            # (before the transaction: SQLite attaches no file inside one)
            raw: Any = conn.connection.driver_connection
            try:
                raw.execute("ATTACH DATABASE ? AS handed_over", (handed.path,))
                raw.execute("SELECT count(*) FROM handed_over.s").fetchone()  # (a file gone or cut short)
            except sqlite3.Error:
                with suppress(sqlite3.Error):
                    raw.execute("DETACH DATABASE handed_over")
                return False
            try:
                with conn.begin():
                    lock_tables(conn, [snap_table])
                    if conn.exec_driver_sql(_CLASH).first() is not None:
                        return False
                    first = (conn.execute(select(func.max(col(KpiSnapshot.id)))).scalar() or 0) + 1
                    shift = int(first - handed.guess)  # (an int: written into the SQL as it is)

                    def moved(names: tuple[str, ...], ids: tuple[str, ...]) -> str:
                        return ", ".join(f"{n} + {shift}" if n in ids and shift else n for n in names)

                    conn.exec_driver_sql(
                        f"INSERT INTO main.kpi_snapshot ({columns}) "
                        f"SELECT {moved(handed.snapshot_columns, ('id', 'months_of'))} FROM handed_over.s"
                    )
                    conn.exec_driver_sql(
                        f"INSERT INTO main.kpi_snapshot_month ({months}) "
                        f"SELECT {moved(handed.month_columns, ('snapshot_id',))} FROM handed_over.m"
                    )
                    reset_sequences(conn, [snap_table])
            finally:
                raw.execute("DETACH DATABASE handed_over")
    finally:
        handed.discard()
    return True


#: A snapshot handed over whose day and scope another evpipe wrote meanwhile (`write_handed_over`).
_CLASH = (
    "SELECT 1 FROM handed_over.s AS h JOIN main.kpi_snapshot AS k ON k.scope = h.scope AND k.taken_on = h.taken_on "
    "LIMIT 1"
)


def _scope_rows(state: State, won_state: State) -> list[tuple[str, Kpi, list[tuple[Any, ...]]]]:
    """A reconstructed state as snapshot rows: for everyone, then each owner (by name), the scope's
    key, its total and its month rows (month, count, TV, EV, and the won part's), in one pass."""
    # owner (None: everyone) -> month -> [count, TV, EV], summed as plain ints
    months: dict[str | None, dict[str | None, list[int]]] = {None: {}}
    won: dict[str | None, dict[str | None, list[int]]] = {None: {}}
    for source, into in ((state, months), (won_state, won)):
        for (name, month), k in source.items():
            for who in (None, name):  # everyone's, and the owner's
                mine = into.setdefault(who, {})
                cell = mine.get(month)
                if cell is None:
                    mine[month] = [k.count, k.tv_cents, k.ev_micros]
                else:
                    cell[0] += k.count
                    cell[1] += k.tv_cents
                    cell[2] += k.ev_micros
    out = []
    owner: str | None
    nothing = [0, 0, 0]
    for owner in [None, *sorted(o for o in months if o is not None)]:
        rows = sorted(months[owner].items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        won_months = won.get(owner, {})
        total = Kpi(sum(k[0] for _, k in rows), sum(k[1] for _, k in rows), sum(k[2] for _, k in rows))
        month_rows = [(month or NO_MONTH, *k, *won_months.get(month, nothing)) for month, k in rows]
        out.append((ALL.key if owner is None else Scope(owner=owner).key, total, month_rows))
    return out


def _insert_sql(source: Engine | Connection, table: Any) -> str:
    return str(insert(table).compile(dialect=source.dialect))


#: What a planned snapshot (`_bulk_write`) holds, in order.
_SNAPSHOT_FIELDS = ("scope", "taken_on", "taken_at", "count", "tv_cents", "ev_micros")


def _ready_snapshots(
    dialect: Any,
    planned: list[tuple[tuple[str, date], tuple[Any, ...], list[tuple[Any, ...]]]],
    sets: list[int],
    first: int,
) -> list[Any]:
    """The snapshot rows (ids from `first` on; `sets`: each one's set of months, the first that
    has a set holds its rows and the others name it), ready for the driver when it takes
    positional values (models.db.driver_columns), else as SQLAlchemy's dicts. Made column by
    column, not a dict a row."""
    holder = _holders(sets, first)
    columns: dict[str, Sequence[Any]] = dict(zip(_SNAPSHOT_FIELDS, zip(*(snap for _, snap, _ in planned))))
    columns["id"] = range(first, first + len(planned))
    columns["months_of"] = [None if holder[n] == first + i else holder[n] for i, n in enumerate(sets)]
    columns["server_at"] = [None] * len(planned)  # rebuilt, not live: no server clock (history_guard)
    ready = driver_columns(table_of(KpiSnapshot), columns, dialect)
    if ready is not None:
        return ready[2]
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def _holders(sets: list[int], first: int) -> dict[int, int]:
    """Which snapshot holds each set of month rows: the first that has it (snapshot ids run from
    `first` on, in the order of `sets`)."""
    holder: dict[int, int] = {}
    for i, n in enumerate(sets):
        holder.setdefault(n, first + i)
    return holder


def _month_sets(
    planned: list[tuple[tuple[str, date], tuple[Any, ...], list[tuple[Any, ...]]]],
) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Which set of month rows each planned snapshot has (a number), and each different set's rows
    once, its number first. A long history repeats a few sets in most of its snapshots: the days
    after the last change, the owners whose prospects did not move (the CRM sample: 202,790
    month rows, 2,054 different sets), so each set is written once."""
    by_object: dict[int, int] = {}  # the rows of one reconstructed state are shared by its days
    by_value: dict[tuple[tuple[Any, ...], ...], int] = {}
    numbers: list[int] = []
    rows: list[tuple[Any, ...]] = []
    for _, _, month_rows in planned:
        n = by_object.get(id(month_rows))
        if n is None:
            key = tuple(month_rows)
            n = by_value.get(key)
            if n is None:
                n = by_value[key] = len(by_value)
                rows.extend((n, *row) for row in month_rows)
            by_object[id(month_rows)] = n
        numbers.append(n)
    return numbers, rows


def _insert_many(conn: Connection, table: Table, rows: list[Any]) -> None:
    """Insert `rows`, in chunks: tuples in the table's column order straight to a driver that takes
    positional values, else dicts through SQLAlchemy."""
    if not rows:
        return
    positional = isinstance(rows[0], tuple)
    sql = _insert_sql(conn, table) if positional else None
    names = list(table.c.keys())
    for n in range(0, len(rows), 20_000):
        chunk = rows[n : n + 20_000]
        if sql is not None and conn.dialect.positional:
            conn.exec_driver_sql(sql, chunk)
        else:
            conn.execute(insert(table), [r if isinstance(r, dict) else dict(zip(names, r)) for r in chunk])


#: The snapshot whose month rows a snapshot has.
_holder: ColumnElement[int] = literal_column(months_holder(table_of(KpiSnapshot).name))


def complete_won_parts(engine: Engine, *, limit: int = 20) -> int:
    """Give snapshots recorded before evpipe kept the won part of each month (migration 0004) their
    won part, reconstructed from the journal at the end of their day: the `limit` most recent days
    each time (the header's 12 weeks first), until none is left. Until then `kpi.snapshots` leaves
    such a reading out of a period's history. Returns how many days were completed."""
    month_table = table_of(KpiSnapshotMonth)
    with engine.connect() as conn:
        if conn.scalar(select(month_table.c.snapshot_id).where(month_table.c.won_count.is_(None)).limit(1)) is None:
            return 0  # (the look every recount takes: one pass over the month rows, not a join)
        days = [
            d
            for (d,) in conn.execute(
                select(col(KpiSnapshot.taken_on))
                .join(KpiSnapshotMonth, col(KpiSnapshotMonth.snapshot_id) == _holder)
                .where(
                    col(KpiSnapshotMonth.won_count).is_(None),
                    or_(col(KpiSnapshot.scope) == ALL.key, col(KpiSnapshot.scope).startswith("owner:")),
                )
                .group_by(col(KpiSnapshot.taken_on))
                .order_by(col(KpiSnapshot.taken_on).desc())
                .limit(limit)
            )
        ]
        replayed = Replay(conn).states([end_of_day(day) for day in days]) if days else []
        won_states = {day: won for day, (_, won) in zip(days, replayed)}
    if not days:
        return 0
    with sums_fit(), writer(engine).begin() as conn:
        for day, won in won_states.items():
            for sid, scope_key in conn.execute(  # (sid: the snapshot holding its month rows; shared, they are alike)
                select(_holder, col(KpiSnapshot.scope)).where(col(KpiSnapshot.taken_on) == day)
            ):
                owner = scope_key.removeprefix("owner:") if scope_key.startswith("owner:") else None
                if owner is None and scope_key != ALL.key:
                    continue
                parts = dict(by_month(won, owner))
                for (month,) in conn.execute(
                    select(col(KpiSnapshotMonth.month)).where(
                        col(KpiSnapshotMonth.snapshot_id) == sid, col(KpiSnapshotMonth.won_count).is_(None)
                    )
                ):
                    w = parts.get(None if month == NO_MONTH else month, Kpi())
                    conn.execute(
                        month_table.update()
                        .where(month_table.c.snapshot_id == sid, month_table.c.month == month)
                        .values(won_count=w.count, won_tv_cents=w.tv_cents, won_ev_micros=w.ev_micros)
                    )
    return len(days)


def ensure_month_starts(engine: Engine, *, at: datetime | None = None) -> int:
    """Record the month-start snapshot (dated the last day of the month before) of every month
    from the latest recorded snapshot (or the first journal entry) up to the month of `at`, where
    one is missing and data existed by then. Returns how many were written."""
    at = at or clock.now()
    with engine.connect() as conn:
        latest = conn.scalar(select(func.max(col(KpiSnapshot.taken_on))).where(col(KpiSnapshot.scope) == ALL.key))
        first = _first_event_at(conn)
    if first is None:
        return 0
    days = month_start_days(latest, first, at.date())
    if not days:
        return 0
    carried, written = _carry_forward(engine, latest, days) if latest is not None else ([], 0)
    rest = [d for d in days if d not in carried]
    return written + (_record_reconstructed(engine, rest) if rest else 0)


def _carry_forward(engine: Engine, latest: date, days: list[date]) -> tuple[list[date], int]:
    """models/month_starts.py `carry_forward` in a transaction of its own, the snapshots' table
    held (PostgreSQL: no other evpipe writes these days meanwhile)."""
    with writer(engine).begin() as conn:
        lock_tables(conn, [table_of(KpiSnapshot)])
        return carry_forward(conn, latest, days)


def keep_month_starts(engine: Engine) -> int:
    """Before the forecast's months are judged (a command or a screen that only reads): record the
    month starts since the latest reading, reconstructed from the journal, as the day's first
    change would have. Nothing for a connection that cannot read every prospect (its sums would
    not be everyone's). Returns how many were written."""
    if not records_history(engine):
        return 0
    return ensure_month_starts(engine)


def backfill(engine: Engine, *, weeks: int | None = None, today: date | None = None) -> int:
    """Rebuild the past from the journal: a snapshot at the end of every 7th day back from today
    (today - 7, today - 14, ...) to the first journal entry (or `weeks` weeks back), plus every
    month start in that time. Existing snapshots are kept. Returns how many days were written."""
    today = today or clock.today()
    with engine.connect() as conn:
        first = _first_event_at(conn)
    if first is None:
        return 0
    return _record_reconstructed(engine, _backfill_days(first, today, weeks))


def _backfill_days(first: datetime, today: date, weeks: int | None = None) -> list[date]:
    """The days `backfill` gives a snapshot: every 7th back from `today` to the day of `first` (the
    first journal entry), or `weeks` weeks back, and the last day of every month in that time."""
    days: list[date] = []
    k = 1
    while True:
        day = today - timedelta(days=7 * k)
        if day < first.date() or (weeks is not None and k > weeks):
            break
        days.append(day)
        k += 1
    oldest = days[-1] if days else today
    month_first = month_start(first.date() if weeks is None else oldest)
    while True:
        month_first = last_of_month(month_first) + timedelta(days=1)
        if month_first > today:
            break
        days.append(month_first - timedelta(days=1))
    return days


def plan_backfill(
    rows: JournalRows,
    first_at: datetime | None,
    snapshots: list[tuple[Any, Any]],
    top: int,
    dialect: Any,
    today: date,
) -> PlannedSnapshots | None:
    """`backfill`'s snapshots planned from rows read beforehand, with no database: `rows`, what a
    replay reads; `first_at`, the first journal entry; `snapshots`, each existing snapshot's
    (scope, day) as plain SQL reads them; `top`, the largest snapshot id. A fork of an import
    plans them while the import writes (models/import_commit.py), and `write_planned` writes them
    once it is committed: the same days, states and rows as `backfill` then reading the database."""
    if first_at is None:
        return None
    existing = {(scope, as_day(day)) for scope, day in snapshots}
    have = {day for scope, day in existing if scope == ALL.key}
    todo = [d for d in sorted(set(_backfill_days(first_at, today))) if d not in have]
    if not todo:
        return None
    states = list(zip(todo, Replay(None, rows).states([end_of_day(day) for day in todo])))
    return _plan_snapshots(states, existing, dialect, top + 1)


# ---------------------------------------------------------------- reading
# The forecast frozen at each month's start (`frozen_forecasts`) is read in models/forecast.py, as
# plain SQL, so that the forecast imports no SQLAlchemy.


# ---------------------------------------------------------------- reconstruction


def state_before(conn: Connection, moment: datetime) -> State:
    """The pipeline just before `moment`, as {(owner, expected month): Kpi} (see the module
    docstring for how it is replayed)."""
    return states_before(conn, moment)[0]


def states_before(conn: Connection, moment: datetime) -> tuple[State, State]:
    """`state_before` and its won part (the prospects on a won stage at `moment`), in one replay:
    a snapshot keeps the won part apart so that any KPI period can be read from it."""
    return Replay(conn).states([moment])[0]


def prospects_before(conn: Connection, moment: datetime) -> list[ProspectThen]:
    """Each prospect as it stood just before `moment`, replayed like `state_before`: (owner,
    expected month, value in cents, stage kind, stage probability then). Those that did not count
    then (deleted, lost, not yet created) are left out."""
    return prospects_at(conn, [moment])[0]


def prospects_at(
    conn: Connection, moments: list[datetime], keep: Callable[[datetime, str, str | None], bool] | None = None
) -> list[list[ProspectThen]]:
    """`prospects_before` at each of `moments`, in one replay (`keep`: see `Replay.prospects`)."""
    return Replay(conn).prospects(moments, keep)


def by_month(state: State, owner: str | None = None) -> list[tuple[str | None, Kpi]]:
    """A reconstructed state broken down by expected month (of everyone, or of one owner)."""
    acc: dict[str | None, Kpi] = {}
    for (o, month), k in state.items():
        if owner is None or o == owner:
            acc[month] = acc.get(month, Kpi()) + k
    return sorted(acc.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))


def _connect(engine_or_conn: Engine | Connection):
    """A connection context: a new one from an Engine, or the Connection given, left open."""
    if isinstance(engine_or_conn, Connection):
        return nullcontext(engine_or_conn)
    return engine_or_conn.connect()


def kpis_before(engine: Engine | Connection, moment: datetime, scope: Scope = ALL) -> Kpi:
    """The KPIs of a scope just before `moment`, reconstructed (see the module docstring)."""
    with _connect(engine) as conn:
        state, won = states_before(conn, moment)
    total = Kpi()
    for (owner, month), k in state.items():
        if scope.owner is not None and owner != scope.owner:
            continue
        if scope.month_from and (month is None or month < scope.month_from):
            continue
        if scope.month_to and (month is None or month > scope.month_to):
            continue
        total = total + k
        if scope.period is not None and not scope.period.in_months(month):
            w = won.get((owner, month), Kpi())  # won outside the period: not counted
            total = Kpi(total.count - w.count, total.tv_cents - w.tv_cents, total.ev_micros - w.ev_micros)
    return total


def kpis_by_journal(engine: Engine | Connection, moment: datetime) -> Kpi:
    """Every prospect's KPIs just before `moment` the other way: today's, less every delta journalled
    since. Agrees with `kpis_before` when the journal is whole (a test checks)."""
    from .kpi import kpis

    with _connect(engine) as conn:
        now = kpis(conn)
        c, tv, ev = conn.execute(
            select(
                func.coalesce(func.sum(col(ChangeEvent.d_count)), 0),
                func.coalesce(func.sum(col(ChangeEvent.d_tv_cents)), 0),
                func.coalesce(func.sum(col(ChangeEvent.d_ev_micros)), 0),
            ).where(col(ChangeEvent.at) >= moment)
        ).one()
    return Kpi(now.count - int(c), now.tv_cents - int(tv), now.ev_micros - int(ev))


def trend(engine: Engine, weeks: int | None = 12, scope: Scope = ALL) -> list[Snapshot]:
    """The KPI history over the last `weeks` weeks (None: all of it), oldest first, with today's
    live reading last when today has no snapshot yet (nothing is written)."""
    from .kpi import kpis

    today = clock.today()
    since = None if weeks is None else today - timedelta(weeks=weeks)
    points = snapshots(engine, scope, since=since, until=today)
    if not points or points[-1].taken_on != today:
        points.append(Snapshot(today, kpis(engine, scope)))
    return points
