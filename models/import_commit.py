"""Committing an import plan: one all-or-nothing transaction, bulk inserted.

New prospects get an "import" journal entry (category "new") and closed ones a second (a win or a
loss) from the stage they closed from; when the file does not say that stage (no --closed-from),
both history rows are marked `inferred`. Re-imported prospects get edit and move entries. The journal
rows come from models/journal.py (the same writer as the store's), with ids given ahead so that
prospects, journal and stage history are inserted in bulk."""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as day_time
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlmodel import Session, col

from . import clock, collector
from .db import driver_rows, writer
from .dialect import (
    bulk_load,
    indexes_set_aside,
    lock_ladder,
    lock_tables,
    rebuild_indexes,
    references_broken,
    reset_sequences,
)
from .errors import DomainError, SumTooLarge
from .forked import Forked
from .import_ladder import Adoption, adopted_ladder, adoption_basis, journal_adoption, plan_adoption, write_adoption
from .import_plan import changes, existing_rows
from .import_read import Progress
from .import_sheet import LadderRow, ladder_rows
from .import_types import ImportPlan, ImportResult, Record, gc_paused, shared, worth_sharing
from .journal import (
    BridgeCategory,
    BulkJournal,
    created_summary,
    delta,
    edit_summary,
    json_encoder,
    last_change,
    move_category,
    move_summary,
    restage,
    restay,
)
from .ladder import LOST, OPEN, kpi_part
from .rawdb import as_moment, bulk_reader, cache_size, fetch_all
from .replay import JournalRows
from .roles import require
from .snapshot_deltas import ev_fits, forget_day
from .tables import ChangeEvent, KpiSnapshotMonth, Prospect, Stage, StageChange, pk, table_of
from .values import format_percent

#: The page cache (MB) of the connection that writes an import.
IMPORT_CACHE_MB = 128

#: How custom fields are stored: json.dumps(custom, ensure_ascii=False, sort_keys=True), with one
#: encoder made once (an import encodes a row's fields at a time).
_CUSTOM_JSON = json_encoder(ensure_ascii=False, sort_keys=True)


def _moment(day: date | None, fallback: datetime) -> datetime:
    if day is None:
        return fallback
    return min(datetime.combine(day, day_time(0)), fallback)


def _part(value_cents: int, stage: LadderRow) -> tuple[int, int, int]:
    return kpi_part(value_cents, stage[2], stage[3])


def _archived_stage(conn: Connection, stage_id: int) -> LadderRow:
    sid, name, kind, bp, position = conn.execute(
        select(pk(Stage.id), col(Stage.name), col(Stage.kind), col(Stage.probability_bp), col(Stage.position)).where(
            col(Stage.id) == stage_id
        )
    ).one()
    return sid, name, kind, bp, position


@dataclass(frozen=True)
class _Half:
    """What the fork hands back: each table's rows as the driver takes them (in `frozen`'s order),
    the prospects it created, its journal entries, their effect on the KPIs, and its prospects
    with a change dated before an earlier one."""

    frozen: list[tuple[str, list[str], list[Any]]]
    created: int
    events: int
    total: tuple[int, int, int]
    out_of_order: set[int]


class _Commit:
    """The writing of one plan, in one connection: the rows to insert and update, and the counts."""

    def __init__(self, conn: Connection, plan: ImportPlan, who: str, at: datetime) -> None:
        self.conn = conn
        self.plan = plan
        self.at = at
        next_event = (conn.execute(select(func.max(ChangeEvent.id))).scalar() or 0) + 1
        next_change = (conn.execute(select(func.max(StageChange.id))).scalar() or 0) + 1
        self.journal = BulkJournal(who, next_event, next_change)
        #: The first ids this preparation gave (journal, stage history, prospects): see `renumber`.
        self.first_ids = (next_event, next_change, 0)
        self.prospects: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.created = self.updated = self.unchanged = self.moved = 0
        self.moved_ids: set[int] = set()  # prospects imported before that it moves
        self.added: list[tuple[str, int]] = []
        self.stages: dict[str, LadderRow] = {}
        self.stage_by_id: dict[int, LadderRow] = {}
        self.closed_from: LadderRow | None = None
        self.ladder: list[LadderRow] = []
        self.new_stages: list[dict[str, Any]] = []
        self.adoptions: list[Adoption] = []  # stages taking the file's probabilities (--adopt-ladder)
        #: Per table: the table, the driver's INSERT (empty: SQLAlchemy's), its columns, the rows.
        self.frozen: list[tuple[Any, str, list[str], list[Any]]] = []
        self.existing: dict[str, dict[str, Any]] = {}
        self.next_prospect = 0
        #: the journal entries a fork made (`_take_half`), not in `journal.events`
        self.shared_events = 0

    def add_stages(self) -> None:
        """Stages to add, appended after the last open stage (like `evpipe stages add`): planned
        here, on the ladder as read, with the ids they will get; `write` inserts them."""
        conn, plan = self.conn, self.plan
        ladder = ladder_rows(conn)
        names_now = {name.casefold() for _, name, *_ in ladder}
        new_id = (conn.execute(select(func.max(Stage.id))).scalar() or 0) + 1
        self.added = [(n, bp) for n, _, bp, new in plan.ladder if new]
        for name, bp in self.added:
            if name.casefold() in names_now:
                raise DomainError(
                    f"--add-stage: {name!r} was added to the ladder since the preview; preview again", field="add_stage"
                )
            opens = [r for r in ladder if r[2] == OPEN]
            position = (opens[-1][4] + 1) if opens else 1
            ladder = [(sid, n, kind, p, pos + 1 if pos >= position else pos) for sid, n, kind, p, pos in ladder]
            ladder.append((new_id, name, OPEN, bp, position))
            ladder.sort(key=lambda r: (r[4], r[0]))
            self.new_stages.append(
                dict(
                    id=new_id, name=name, position=position, probability_bp=bp, kind=OPEN, stale_days=14, archived=False
                )
            )
            self.journal.event(
                at=self.at,
                category=BridgeCategory.LADDER,
                stage_id=new_id,
                payload={},
                summary=f"stage {name} added at {format_percent(bp)} (import of {plan.source})",
            )
            new_id += 1
        self.ladder = ladder

    def load(self) -> None:
        """The ladder and the earlier import of this source, as they are now."""
        conn, plan = self.conn, self.plan
        self.stages = {name.casefold(): (sid, name, kind, bp, pos) for sid, name, kind, bp, pos in self.ladder}
        self.stage_by_id = {v[0]: v for v in self.stages.values()}
        missing = {r.stage for r in plan.records} - set(self.stages)
        if missing:
            raise DomainError(
                f"import: stage {sorted(missing)[0]!r} left the ladder since the preview; preview again", field="stage"
            )
        self.closed_from = self.stages[plan.closed_from.casefold()] if plan.closed_from else None
        self.existing = existing_rows(conn, plan.source)
        self.next_prospect = (conn.execute(select(func.max(Prospect.id))).scalar() or 0) + 1
        self.first_ids = (self.first_ids[0], self.first_ids[1], self.next_prospect)

    def row(self, r: Record) -> None:
        old = self.existing.get(r.key)
        if old is None:
            self.create(r)
        elif old["deleted_at"] is None:
            self.update(r, old)

    def _prospect_row(
        self,
        r: Record,
        pid: int,
        sid: int,
        kind: str,
        created_at: datetime,
        closed_at: datetime | None,
        closed_on: date | None,
        entered_at: datetime,
    ) -> dict[str, Any]:
        """The prospect table's row for a new prospect, for the bulk insert: every column named,
        so that it goes to the driver ready (`freeze`; a test checks none is left out).
        `entered_at`: the moment of its last stage change."""
        at, plan = self.at, self.plan
        return dict(
            id=pid,
            name=r.name,
            company=r.company,
            contact_name=r.contact_name,
            email=r.email,
            phone=r.phone,
            notes=r.notes,
            custom_json=_CUSTOM_JSON(r.custom),
            value_cents=r.value_cents,
            stage_id=sid,
            expected_month=r.expected_month,
            next_follow_up=r.next_follow_up,
            follow_up_time=r.follow_up_time,
            follow_up_note=r.follow_up_note,
            owner=r.owner,
            created_at=created_at,
            updated_at=at,
            last_touch_at=closed_at or created_at,
            stage_entered_at=entered_at,
            closed_on=closed_on,
            lost_reason=r.lost_reason if kind == LOST else None,
            deleted_at=None,
            needs_review=r.needs_review,
            source=plan.source,
            external_key=r.key,
            version=1,
        )

    def _start(self, stage: LadderRow) -> LadderRow:
        """The stage a new prospect is created on: a closed one on the stage it closed from."""
        return self.closed_from if stage[2] != OPEN and self.closed_from else stage

    def _entries(self, r: Record) -> int:
        """How many journal entries (and stage-history rows) `create` writes for `r`: one, and a
        second for the close of a prospect created on another stage."""
        stage = self.stages[r.stage]
        return 1 if self._start(stage)[0] == stage[0] else 2

    def create(self, r: Record) -> None:
        """A new prospect; a closed one is created on the stage it closed from, then moved."""
        at, plan, journal = self.at, self.plan, self.journal
        stage = self.stages[r.stage]
        sid, sname, kind, bp, _ = stage
        pid = self.next_prospect
        self.next_prospect += 1
        self.created += 1
        start = self._start(stage)
        # The file says the row was won or lost, not which stage it closed from: unless the user said
        # (--closed-from), the stage it is created on and closed from is a guess, and marked so.
        guessed = start[0] != sid and self.plan.closed_from_inferred
        created_at = _moment(r.created, at)
        closed_at = None
        if kind != OPEN:
            closed_at = _moment(r.closed_on, at) if r.closed_on else at
            created_at = min(created_at, closed_at)
        closed_on = (r.closed_on or at.date()) if kind != OPEN else None
        entered_at = created_at if start[0] == sid else closed_at
        assert entered_at is not None, "a prospect closed from another stage has a closing moment"
        self.prospects.append(self._prospect_row(r, pid, sid, kind, created_at, closed_at, closed_on, entered_at))
        part = _part(r.value_cents, start)
        eid = journal.event(
            at=created_at,
            category=BridgeCategory.NEW,
            prospect_id=pid,
            stage_id=start[0],
            d=part,
            summary=created_summary(r.name, "imported", start[1], r.value_cents, part[2]),
            payload={"source": plan.source, "row": r.row, "key": r.key, "value_from": r.value_from, "v": 1},
        )
        journal.stage_change(
            prospect_id=pid,
            at=created_at,
            from_stage_id=None,
            to_stage_id=start[0],
            value_cents=r.value_cents,
            from_probability_bp=None,
            to_probability_bp=start[3],
            reason="imported",
            event_id=eid,
            inferred=guessed,
        )
        if start[0] == sid:
            return
        assert closed_at is not None
        d = delta(part, _part(r.value_cents, stage))
        eid = journal.event(
            at=closed_at,
            category=move_category(start[2], 0, kind, 1),
            prospect_id=pid,
            stage_id=sid,
            d=d,
            summary=move_summary(r.name, start[1], sname, d[2], " (imported)"),
            payload={"from": start[0], "to": sid, "source": plan.source, "row": r.row, "v": 1},
        )
        journal.stage_change(
            prospect_id=pid,
            at=closed_at,
            from_stage_id=start[0],
            to_stage_id=sid,
            value_cents=r.value_cents,
            from_probability_bp=start[3],
            to_probability_bp=bp,
            reason=(r.lost_reason or "imported") if kind == LOST else "imported",
            event_id=eid,
            inferred=guessed,
        )

    def update(self, r: Record, old: dict[str, Any]) -> None:
        """A prospect imported before: its changed fields (an edit entry) and its stage (a move)."""
        at, plan, journal = self.at, self.plan, self.journal
        sid, sname, kind, bp, spos = self.stages[r.stage]
        diff = changes(plan, r, old, sid)
        if not diff:
            self.unchanged += 1
            return
        self.updated += 1
        old_stage = self.stage_by_id.get(old["stage_id"]) or _archived_stage(self.conn, old["stage_id"])
        new_stage_id = diff.pop("stage_id", None)
        # its journal entries record the version they leave (`v`, as models.journal's do): an edit made
        # meanwhile on an older version then merges with them, or is refused naming what they changed
        version = old["version"] + 1
        row_update = {"b_id": old["id"], "version": version, "updated_at": at}
        value_before = old["value_cents"]
        value_after = diff.get("value_cents", value_before)
        edit_fields = {k: v for k, v in diff.items() if k != "closed_on"}
        if edit_fields:
            d = delta(_part(value_before, old_stage), _part(value_after, old_stage))
            journal.event(
                at=at,
                category=BridgeCategory.EDIT,
                prospect_id=old["id"],
                d=d,
                summary=edit_summary(r.name, edit_fields, value_before, value_after, d[2], " (import)"),
                payload={
                    "before": {k: old.get(k) for k in edit_fields},
                    "after": edit_fields,
                    "source": plan.source,
                    "row": r.row,
                    "v": version,
                },
            )
        if new_stage_id is not None:
            self.moved += 1
            d = delta(_part(value_after, old_stage), _part(value_after, self.stages[r.stage]))
            eid = journal.event(
                at=at,
                category=move_category(old_stage[2], old_stage[4], kind, spos),
                prospect_id=old["id"],
                stage_id=sid,
                d=d,
                summary=move_summary(r.name, old_stage[1], sname, d[2], " (import)"),
                payload={"from": old["stage_id"], "to": sid, "source": plan.source, "row": r.row, "v": version},
            )
            journal.stage_change(
                prospect_id=old["id"],
                at=at,
                from_stage_id=old["stage_id"],
                to_stage_id=sid,
                value_cents=value_after,
                from_probability_bp=old_stage[3],
                to_probability_bp=bp,
                reason="imported",
                event_id=eid,
                before=last_change(self.conn, old["id"]),
            )
            self.moved_ids.add(old["id"])  # its contact points may be on another stage now (`restage`)
            row_update["stage_id"] = sid
            row_update["last_touch_at"] = at
            row_update["stage_entered_at"] = at
            if kind == OPEN:
                row_update["closed_on"] = None
                row_update["lost_reason"] = None
            else:
                row_update["closed_on"] = r.closed_on or at.date()
        elif "closed_on" in diff and kind != OPEN:
            row_update["closed_on"] = diff["closed_on"]
        row_update.update(edit_fields)
        if "next_follow_up" in edit_fields:  # a new follow-up replaces the old one whole, as `set_follow_up`
            row_update["follow_up_time"], row_update["follow_up_note"] = r.follow_up_time, r.follow_up_note
        self.updates.append(row_update)

    def prepare(self, chunk: int, progress: Progress | None) -> None:
        """Everything but the writing: the new stages, then each row's inserts and updates."""
        self.add_stages()
        self.adoptions = plan_adoption(self.conn, self.plan, self.ladder)
        self.ladder = adopted_ladder(self.ladder, self.adoptions)
        journal_adoption(self.journal, self.adoptions, self.plan.source, self.at)
        self.load()
        records = self.plan.records
        seen_keys: set[str] = set()
        for r in records:
            if r.key in seen_keys:  # cannot happen with a checked plan; guards a hand-made one
                raise DomainError(f"import: row {r.row}: key {r.key!r} repeats", field="id")
            seen_keys.add(r.key)
        total = len(records)

        def own_part(start: int, end: int, pace: int) -> None:
            self._rows(records[start:end], chunk, progress, total, before=start, pace=pace)
            self.freeze(self.conn.dialect)  # (all made here so far: a fork's rows come after)

        if self.existing.keys().isdisjoint(seen_keys):  # every row a new prospect: a fork can make some
            half = shared(total, lambda split: self._second_half(records, split), own_part)
            if half is not None:
                self._take_half(half)
        else:  # (an update reads the database: one process)
            own_part(0, total, 1)
        if progress is not None:
            progress("write", total, total)

    def _rows(
        self, records: list[Record], chunk: int, progress: Progress | None, total: int, before: int = 0, pace: int = 1
    ) -> None:
        """Each record's rows (`row`); progress says `before` + `pace` rows made for each of these
        (2 while a fork makes as many at the same time), out of `total`."""
        for n, r in enumerate(records, start=1):
            if progress is not None and n % chunk == 0:
                progress("write", min(before + n * pace, total), total)
            self.row(r)

    def _second_half(self, records: list[Record], split: int) -> Callable[[], _Half]:
        """The work of the fork that makes the new prospects of records[split:]: the same `create`
        and `freeze`, from the ids the first half leaves off at (counted here ahead: one prospect a
        record, one or two journal entries and stage-history rows)."""
        entries = sum(map(self._entries, records[:split]))
        first = (
            self.journal.next_event_id + entries,
            self.journal.next_change_id + entries,
            self.next_prospect + split,
        )

        def work() -> _Half:
            self.prospects = []
            self.journal = BulkJournal(self.journal.who, first[0], first[1])
            self.next_prospect = first[2]
            self.created = 0
            self._rows(records[split:], chunk=1, progress=None, total=len(records))
            self.freeze(self.conn.dialect)
            journal = self.journal
            return _Half(
                [(sql, names, rows) for _, sql, names, rows in self.frozen],
                self.created,
                len(journal.events),
                (journal.total[0], journal.total[1], journal.total[2]),
                journal.out_of_order,
            )

        return work

    def _take_half(self, half: _Half) -> None:
        """The fork's rows after this process's, table by table; its counts added to these."""
        frozen = []
        for (sql_table, sql, names, rows), (their_sql, their_names, theirs) in zip(self.frozen, half.frozen):
            if (their_sql, their_names) != (sql, names):  # pragma: no cover - both halves make every table's rows
                raise DomainError("import: the two halves of the preparation do not match; nothing written")
            frozen.append((sql_table, sql, names, rows + theirs))
        self.frozen = frozen
        self.created += half.created
        self.shared_events = half.events
        for i, d in enumerate(half.total):
            self.journal.total[i] += d
        self.journal.out_of_order |= half.out_of_order

    def freeze(self, dialect: Any) -> None:
        """The inserts as the driver takes them (SQL text, and each row's values converted the way
        SQLAlchemy would bind them), made before the lock so that under it only the driver runs."""
        self.frozen = []
        for table, rows in (
            (Prospect, self.prospects),
            (ChangeEvent, self.journal.events),
            (StageChange, self.journal.changes),
        ):
            sql_table = table_of(table)
            ready = driver_rows(sql_table, rows, dialect)
            if ready is None:  # left to SQLAlchemy (a hand-made plan, another database)
                self.frozen.append((sql_table, "", list(sql_table.c.keys()), rows))
            else:
                self.frozen.append((sql_table, *ready))

    def renumber(self, first_ids: tuple[int, int, int]) -> None:
        """Give the prepared rows ids from `first_ids` on (the next free ones now), when other
        writes took the ids this preparation gave: the new journal entries, stage history and
        prospects move on together, and references to earlier rows stay as they are."""
        shift = dict(zip(("event", "change", "prospect"), (n - o for n, o in zip(first_ids, self.first_ids))))
        if not any(shift.values()):
            return
        new_prospect = self.first_ids[2]
        own_id = {"prospect": "prospect", "change_event": "event", "stage_change": "change"}
        refs = {"prospect_id": "prospect", "event_id": "event"}

        def moved(name: str, value: Any) -> Any:
            if value is None or shift[refs[name]] == 0:
                return value
            if name == "prospect_id" and value < new_prospect:
                return value  # a prospect that was there before this import
            return value + shift[refs[name]]

        frozen = []
        for sql_table, sql, names, rows in self.frozen:
            plan = [(i, n) for i, n in enumerate(names) if n in refs]
            id_at, id_shift = names.index("id"), shift[own_id[sql_table.name]]
            if sql:
                out = []
                for row in rows:
                    values = list(row)
                    values[id_at] += id_shift
                    for i, n in plan:
                        values[i] = moved(n, values[i])
                    out.append(tuple(values))
                rows = out
            else:
                for row in rows:
                    row["id"] += id_shift
                    for _, n in plan:
                        row[n] = moved(n, row[n])
            frozen.append((sql_table, sql, names, rows))
        self.frozen = frozen
        self.first_ids = first_ids

    def _held(self) -> dict[str, int]:
        """The most rows each table it writes held when it was prepared (its highest id)."""
        return dict(zip(("change_event", "stage_change", "prospect"), (n - 1 for n in self.first_ids)))

    def bulk(self) -> bool:
        """Whether each table it writes takes a bulk load (dialect.bulk_load): a first import of
        a big file, whose rows' references are checked once they are all in (`db.writer`)."""
        held = self._held()
        return bool(self.frozen) and all(bulk_load(len(rows), held[t.name]) for t, _, _, rows in self.frozen)

    def write(self, conn: Connection, chunk: int, progress: Progress | None) -> None:
        """The prepared stages and rows, written on `conn` (holding the write lock), in chunks so
        that progress moves."""
        write_adoption(conn, self.adoptions)
        for row in self.new_stages:
            conn.execute(
                update(Stage)
                .where(col(Stage.position) >= row["position"], col(Stage.archived) == False)  # noqa: E712
                .values(position=col(Stage.position) + 1)
            )
            conn.execute(insert(Stage).values(**row))
        to_save = sum(len(rows) for *_, rows in self.frozen) + len(self.updates)
        saved = 0
        # a first import of a big file: each table's indexes are built once its rows are in
        held = self._held()
        aside = [
            sql
            for sql_table, _, _, rows in self.frozen
            for sql in indexes_set_aside(conn, sql_table, len(rows), held[sql_table.name])
        ]
        for sql_table, sql, _names, rows in self.frozen:
            for i in range(0, len(rows), chunk):
                if sql:
                    conn.exec_driver_sql(sql, rows[i : i + chunk])
                else:
                    conn.execute(insert(sql_table), rows[i : i + chunk])
                saved += len(rows[i : i + chunk])
                if progress is not None:
                    progress("save", saved, to_save)
        if self.updates:
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            for u in self.updates:
                groups[tuple(sorted(u))].append(u)
            prospect_table = table_of(Prospect)
            for keys, rows in groups.items():
                stmt = (
                    update(prospect_table)
                    .where(prospect_table.c.id == bindparam("b_id"))
                    .values({k: bindparam(k) for k in keys if k != "b_id"})
                )
                conn.execute(stmt, rows)
        rebuild_indexes(conn, aside)
        if progress is not None:
            progress("save", to_save, to_save)

    def result(self, history: _History | None = None) -> ImportResult:
        first = self.first_ids[0]
        event_ids = list(range(first, first + len(self.journal.events) + self.shared_events))
        total = self.journal.total
        return ImportResult(
            source=self.plan.source,
            created=self.created,
            updated=self.updated,
            unchanged=self.unchanged,
            moved=self.moved,
            events=len(event_ids),
            skipped_rows=self.plan.bad_rows,
            d_count=total[0],
            d_tv_cents=total[1],
            d_ev_micros=total[2],
            first_event_id=min(event_ids) if event_ids else None,
            last_event_id=max(event_ids) if event_ids else None,
            stages_added=tuple(n for n, _ in self.added),
            history=history,
        )

    def history_ahead(self, conn: Connection) -> _History | None:
        """Under the write lock, before the rows are written: the KPI history the import will need
        (`after_import`), planned by a fork while this process writes (the CRM sample's 19,472
        weekly snapshots: a quarter of its second, on the other core). The fork reads nothing: it
        is handed the journal as it is now, read here, and adds the rows about to be written.
        Only for what it can replay exactly, fast: SQLite, new prospects only, no adopted ladder,
        the rows made for the driver, into a pipeline smaller than the import (whose journal is
        read here, under the lock); None otherwise, and `after_import` rebuilds as ever."""
        if (
            conn.dialect.name != "sqlite"
            or self.updates
            or self.adoptions
            or not worth_sharing(self.created)
            or any(not sql for _, sql, _, _ in self.frozen)
        ):
            return None
        if self.first_ids[2] - 1 > self.created:  # (the largest prospect id: at least as many there)
            return None
        from . import history

        source = bulk_reader(conn)
        held = JournalRows.read(source)
        (first,) = fetch_all(source, "SELECT min(at) FROM change_event")[0]
        snapshots = fetch_all(source, "SELECT scope, taken_on FROM kpi_snapshot")
        (top,) = fetch_all(source, "SELECT max(id) FROM kpi_snapshot")[0]
        dialect, today, frozen, new_stages = conn.dialect, clock.today(), self.frozen, self.new_stages
        path = history.hand_over_file()

        def work() -> tuple[date, Any]:
            pending, first_new = _pending_journal(frozen, new_stages)
            moments = [as_moment(m) for m in (first, first_new) if m is not None]
            first_at = min(moments) if moments else None
            plan = history.plan_backfill(held.plus(pending), first_at, snapshots, top or 0, dialect, today)
            # handed back as a file SQLite copies in (history.hand_over), or whole where it cannot be
            return today, plan if plan is None else (history.hand_over(plan, dialect, path) or plan)

        helper = Forked.start(work)
        if helper is None:
            history.discard_hand_over(path)
            return None
        return _History(helper, time.monotonic(), path)


@dataclass
class _History:
    """A fork planning an import's KPI history (`_Commit.history_ahead`), when it began, and the
    file it hands its rows over in (history.hand_over)."""

    helper: Forked
    began: float
    path: str

    def __post_init__(self) -> None:
        from .history import discard_hand_over

        # (an import whose history nobody writes, committed without `after_import`: its file goes
        # with it, at the latest as the process ends)
        weakref.finalize(self, discard_hand_over, self.path)

    def planned(self) -> tuple[bool, Any]:
        """(True, the planned snapshots, handed over in a file or whole, None when there are none
        to write), or (False, None) when the fork gave no answer or planned for another day than
        today. The file is deleted unless the snapshots are in it (history.write_handed_over)."""
        from .history import HandedOver, discard_hand_over

        try:
            ok, answer = self.helper.answer(Forked.patience(time.monotonic() - self.began))
        finally:
            self.helper.close()
        if ok and answer[0] == clock.today():
            if not isinstance(answer[1], HandedOver):
                discard_hand_over(self.path)
            return True, answer[1]
        discard_hand_over(self.path)
        return False, None

    def close(self) -> None:
        """Stop the fork (nothing was written, its plan is not needed) and delete its file."""
        from .history import discard_hand_over

        self.helper.close()
        discard_hand_over(self.path)


def _pending_journal(frozen: list[tuple[Any, str, list[str], list[Any]]], new_stages: list[dict[str, Any]]):
    """The rows a replay reads (models/replay.py JournalRows) that an import is writing, from its
    rows made for the driver (`_Commit.frozen`: as SQLite stores them, so as a read gives them
    back) and its new stages; and the earliest of its journal entries' moments."""
    by_table = {table.name: (names, rows) for table, _, names, rows in frozen}

    def columns(table: str, *wanted: str) -> list[tuple]:
        names, rows = by_table[table]
        pick = itemgetter(*(names.index(w) for w in wanted))
        return list(map(pick, rows))

    events = columns(
        "change_event", "at", "id", "prospect_id", "d_count", "d_tv_cents", "category", "stage_id", "payload"
    )
    pending = JournalRows(
        stages=[(s["id"], s["probability_bp"], s["kind"]) for s in new_stages],
        prospects=columns("prospect", "id", "created_at", "deleted_at", "expected_month", "owner"),
        entries=[(at, eid, pid, dc, dtv) for at, eid, pid, dc, dtv, *_ in events if pid is not None],
        moves=columns("stage_change", "changed_at", "id", "prospect_id", "to_stage_id", "value_cents"),
        edits=[
            (at, eid, pid, doc) for at, eid, pid, _, _, kind, _, doc in events if kind == "edit" and pid is not None
        ],
        probs=[
            (at, eid, sid, doc)
            for at, eid, pid, _, _, kind, sid, doc in events
            if kind == "prob" and pid is None and sid is not None
        ],
    )
    first = min((e[0] for e in events), key=as_moment, default=None)
    return pending, first


@gc_paused
def commit_import(
    engine: Engine,
    plan: ImportPlan,
    *,
    who: str,
    at: datetime | None = None,
    progress: Progress | None = None,
    chunk: int = 5000,
) -> ImportResult:
    """Write the plan in one transaction: all of it, or (on any error) nothing."""
    if not plan.can_commit:
        raise DomainError(f"import: nothing written: {plan.why_not()}", field="file")
    at = at or clock.now()
    # Read and prepare in a read transaction, which takes no lock: other commands and the app carry
    # on meanwhile. Then hold the write lock only to write what was prepared.
    with engine.connect() as conn:
        c = _Commit(conn, plan, who, at)
        c.prepare(chunk, progress)
        basis = _basis(conn, plan.source), adoption_basis(conn, c.adoptions)
    tables = [table_of(t) for t in (Stage, Prospect, ChangeEvent, StageChange)]
    history: _History | None = None
    bulk = engine.dialect.name == "sqlite" and c.bulk()
    try:
        with Session(writer(engine, f"an import of {plan.path.name}", references_after=bulk)) as s, s.begin():
            conn = s.connection()
            require(s, who, "import")
            # It numbers its rows itself: on PostgreSQL no other writer may add rows meanwhile, and the
            # id sequences continue after them (SQLite's writer holds the database already).
            lock_tables(conn, tables)
            lock_ladder(conn, exclusive=True)  # it may change stages' probabilities (adopting the file's ladder)
            # the ladder, this source's rows or (when adopting the file's ladder) the prospects on the
            # adopted stages changed meanwhile
            if (_basis(conn, plan.source), adoption_basis(conn, c.adoptions)) != basis:
                c = _Commit(conn, plan, who, at)
                c.prepare(chunk, progress)
            else:  # other writes only moved the next free ids on
                c.renumber(_next_ids(conn))
            if conn.dialect.name == "sqlite":  # room for the whole write: the lock is held for less
                conn.exec_driver_sql(cache_size(IMPORT_CACHE_MB))
            history = c.history_ahead(conn)
            c.write(conn, chunk, progress)
            restay(conn, c.journal.out_of_order)
            restage(conn, prospect_ids=c.moved_ids)  # (the prospects it creates have no contact points yet)
            ev_fits(conn)  # (its KPI history adds up the live prospects; values.MAX_SUM)
            # its rows are not kept in today's KPI reading as a change keeps it: forget the reading, so
            # that nothing reads it as current (models.kpi.current_kpis) before it is counted again
            forget_day(conn, clock.now().date())
            reset_sequences(conn, tables)
            if bulk and references_broken(conn, [*tables, table_of(KpiSnapshotMonth)]):
                raise DomainError(
                    "import: nothing written: rows it made refer to rows that are not there; "
                    "this is a fault in evpipe, please report it",
                    field="file",
                )
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(cache_size(2))  # SQLite's default again, for this pooled connection
    except BaseException:
        if history is not None:  # nothing was written: its fork's plan is not needed (nor left waiting)
            history.close()
        raise
    collector.keep(c)  # (its rows: in a one-shot command, freed by the exit, not one by one here)
    return c.result(history)


def _next_ids(conn: Connection) -> tuple[int, int, int]:
    """The next free ids of the journal, the stage history and the prospects."""
    last = conn.execute(
        select(
            select(func.max(ChangeEvent.id)).scalar_subquery(),
            select(func.max(StageChange.id)).scalar_subquery(),
            select(func.max(Prospect.id)).scalar_subquery(),
        )
    ).one()
    return (last[0] or 0) + 1, (last[1] or 0) + 1, (last[2] or 0) + 1


def _basis(conn: Connection, source: str) -> tuple[Any, ...]:
    """What a preparation's rows depend on besides the next free ids: the whole ladder (archived
    stages too) and the version of every prospect an earlier import of `source` stored. The same
    basis under the write lock means the prepared rows still hold, renumbered."""
    ladder = conn.execute(
        select(
            col(Stage.id),
            col(Stage.name),
            col(Stage.kind),
            col(Stage.probability_bp),
            col(Stage.position),
            col(Stage.archived),
        ).order_by(col(Stage.id))
    ).all()
    mine = conn.execute(
        select(col(Prospect.id), col(Prospect.version))
        .where(col(Prospect.source) == source, col(Prospect.external_key).is_not(None))
        .order_by(col(Prospect.id))
    ).all()
    return tuple(tuple(r) for r in ladder), tuple(tuple(r) for r in mine)


def history_not_kept(exc: BaseException) -> str:
    """One line for an import that was saved while its KPI history could not be brought up to
    date (`after_import` raised `exc`: a held lock, sums past 64 bits, a damaged page)."""
    from .errors import unsaved_reason

    why = str(exc) if isinstance(exc, DomainError) and not isinstance(exc, SumTooLarge) else unsaved_reason(exc)
    return f"imported, but its KPI history was not brought up to date: {why}"


@gc_paused
def after_import(engine: Engine, result: ImportResult | None = None) -> None:
    """Give the imported history its KPI snapshots: backfill (or write what a fork planned while
    the import wrote: `result.history`), then today's snapshot."""
    from . import history

    ahead: _History | None = result.history if result is not None else None
    ready, plan = ahead.planned() if ahead is not None else (False, None)
    if isinstance(plan, history.HandedOver):
        ready = history.write_handed_over(engine, plan)  # (False: it no longer fits; rebuilt below)
    elif ready and plan is not None:
        history.write_planned(engine, plan)
    if not ready:
        history.backfill(engine)
    history.record_snapshot(engine)
