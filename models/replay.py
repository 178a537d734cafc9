"""The journal replayed: the pipeline as it stood just before each of many moments, in one pass.

The rule (models/history.py's docstring says it in words) for a prospect created before a moment T:

- its count and TV: the sums of the exact deltas (d_count, d_tv_cents) of its journal entries
  before T; with no entry before T (a prospect written by something other than the store), 1 and
  the value on its last stage change before T while it is on a stage that counts and not deleted
  by T;
- its stage: the last stage change before T (none yet: it is left out), an undone move and the
  undo's move back included (between them it stood on the other stage, and the journal's deltas
  say so; only the history's stays and sighting in leave them out: models/journal.py `undone_move`);
- its expected month and owner: the `before` of the first edit at or after T that changed them,
  else today's;
- a stage's probability at T: the `before` of its first probability change at or after T, else
  today's; the stage's kind is today's.

Everything is read once (three short reads: stages, prospects, journal and stage history), sorted
by time, and walked forward: each moment costs only what changed since the one before, and the
pipeline is kept summed per (owner, month, stage), so the KPI history of an import (a reading every
week and every month start, for every owner) adds up in seconds, not one SQL replay per day.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from .kpi import Kpi
from .ladder import LOST, WON, counts, ev_micros
from .rawdb import as_moment, bulk_reader, fetch_all

#: A reconstructed pipeline: {(owner, expected month): Kpi}.
State = dict[tuple[str, "str | None"], Kpi]

#: One prospect just before a moment: (owner, expected month, value in cents, stage kind, probability).
ProspectThen = tuple[str, "str | None", int, str, int]


def _moments() -> Callable[[Any], datetime]:
    """`rawdb.as_moment`, each distinct stored value read once (an import's rows share a few
    moments)."""
    seen: dict[Any, datetime] = {}

    def moment(value: Any) -> datetime:
        found = seen.get(value)
        if found is None:
            found = seen[value] = as_moment(value)
        return found

    return moment


def _before(payload: str | None, field: str) -> tuple[bool, Any]:
    """Whether an edit's payload has `before.<field>` (JSON null included), and its value."""
    try:
        doc = json.loads(payload or "{}")
    except ValueError:
        return False, None
    before = doc.get("before") if isinstance(doc, dict) else None
    if not isinstance(before, dict) or field not in before:
        return False, None
    value = before[field]
    if value is None or isinstance(value, str):
        return True, value
    return True, json.dumps(value) if isinstance(value, dict | list) else str(value)


class _Then:
    """One prospect as the walk has reached it."""

    __slots__ = ("created", "gone", "n", "c", "tv", "stage", "sc_value", "month", "owner", "key", "part")

    def __init__(self) -> None:
        self.created = self.gone = False
        self.n = self.c = self.tv = 0
        self.stage: int | None = None
        self.sc_value = 0
        self.month = 0  # index of the next month edit at or after the moment
        self.owner = 0  # index of the next owner edit at or after the moment
        self.key: tuple[str, str, int] | None = None  # (owner, month, stage) it is summed under
        self.part = (0, 0)  # (count, TV) it adds there


class JournalRows(NamedTuple):
    """What a replay reads, each as the database gives its rows (SQLite's text for moments): the
    stages (id, probability_bp, kind); the prospects (id, created_at, deleted_at, expected_month,
    owner); the journal entries of prospects (at, id, prospect_id, d_count, d_tv_cents); the stage
    history (changed_at, id, prospect_id, to_stage_id, value_cents); the edits of prospects (at,
    id, prospect_id, payload); and the probability changes (at, id, stage_id, payload)."""

    stages: list[tuple]
    prospects: list[tuple]
    entries: list[tuple]
    moves: list[tuple]
    edits: list[tuple]
    probs: list[tuple]

    @classmethod
    def read(cls, source: Any) -> JournalRows:
        return cls(*(fetch_all(source, sql) for sql in _READS))

    def plus(self, more: JournalRows) -> JournalRows:
        """These rows and `more` (rows being written, not yet committed: models/import_commit.py)."""
        return JournalRows(*(mine + theirs for mine, theirs in zip(self, more)))


#: The reads of `JournalRows`, in its order.
_READS = (
    "SELECT id, probability_bp, kind FROM stage",
    "SELECT id, created_at, deleted_at, expected_month, owner FROM prospect",
    "SELECT at, id, prospect_id, d_count, d_tv_cents FROM change_event WHERE prospect_id IS NOT NULL",
    "SELECT changed_at, id, prospect_id, to_stage_id, value_cents FROM stage_change",
    "SELECT at, id, prospect_id, payload FROM change_event WHERE category = 'edit' AND prospect_id IS NOT NULL",
    "SELECT at, id, stage_id, payload FROM change_event"
    " WHERE category = 'prob' AND prospect_id IS NULL AND stage_id IS NOT NULL",
)


class Replay:
    """The journal and stage history of one database, read once, to replay at many moments."""

    def __init__(self, conn: Connection | None, rows: JournalRows | None = None) -> None:
        """The rows `conn` reads, or, with no connection, `rows` (read earlier: a fork computing an
        import's history, models/import_commit.py)."""
        # Plain SQL, read as the driver gives it where that is faster (`rawdb.bulk_reader`: an
        # import's history reads hundreds of thousands of rows here), in `conn`'s transaction, its
        # timestamps read by `rawdb.as_moment`.
        read = JournalRows.read(bulk_reader(conn)) if conn is not None else rows
        assert read is not None, "Replay needs a connection or the rows"
        self.stages: dict[int, tuple[int, str]] = {sid: (bp, kind) for sid, bp, kind in read.stages}
        self.owner_now: dict[int, str] = {}
        self.month_now: dict[int, str] = {}
        moment = _moments()
        created: list[tuple[datetime, int]] = []
        deleted: list[tuple[datetime, int]] = []
        for pid, made, gone, month, owner in read.prospects:
            self.owner_now[pid] = owner
            self.month_now[pid] = month or ""
            created.append((moment(made), pid))
            if gone is not None:
                deleted.append((moment(gone), pid))
        self.created = sorted(created)
        self.deleted = sorted(deleted)
        self.entries = sorted(
            (moment(at), eid, pid, int(dc or 0), int(dtv or 0)) for at, eid, pid, dc, dtv in read.entries
        )
        self.moves = sorted((moment(at), sid_, pid, to, int(value or 0)) for at, sid_, pid, to, value in read.moves)
        # Each prospect's edits of its expected month and of its owner, in order: (at, id, before).
        self.month_edits: dict[int, list[tuple[datetime, int, str]]] = {}
        self.owner_edits: dict[int, list[tuple[datetime, int, str]]] = {}
        for raw_at, eid, pid, payload in read.edits:
            at = moment(raw_at)
            has, value = _before(payload, "expected_month")
            if has:
                self.month_edits.setdefault(pid, []).append((at, eid, value or ""))
            has, value = _before(payload, "owner")
            if has and value is not None:
                self.owner_edits.setdefault(pid, []).append((at, eid, value))
        for table in (self.month_edits, self.owner_edits):
            for edits in table.values():
                edits.sort()
        # Each stage's probability changes, in order: (at, id, before), before None when not a number.
        self.prob_changes: dict[int, list[tuple[datetime, int, int | None]]] = {}
        for raw_at, eid, sid, payload in read.probs:
            at = moment(raw_at)
            try:
                doc = json.loads(payload or "{}")
            except ValueError:
                doc = {}
            before = doc.get("before") if isinstance(doc, dict) else None
            self.prob_changes.setdefault(sid, []).append((at, eid, before if isinstance(before, int) else None))
        for changes in self.prob_changes.values():
            changes.sort()
        self._steps = 0
        # every edit of month, owner and probability, by time, for the walk
        self.edit_times = sorted(
            [(at, eid, "month", pid) for pid, rows in self.month_edits.items() for at, eid, _ in rows]
            + [(at, eid, "owner", pid) for pid, rows in self.owner_edits.items() for at, eid, _ in rows]
        )

    # ------------------------------------------------------------ the walk

    def _walk(
        self, moments: Iterable[datetime]
    ) -> Iterator[tuple[datetime, dict[int, _Then], dict[tuple[str, str, int], list[int]]]]:
        """For each moment (in time order): the prospects then and their sums per (owner, month,
        stage). The dictionaries are the walk's own, changed as it goes on: read them at once."""
        self._steps = 0
        people: dict[int, _Then] = {pid: _Then() for pid in self.owner_now}
        sums: dict[tuple[str, str, int], list[int]] = {}
        at = {"created": 0, "deleted": 0, "entries": 0, "moves": 0, "edits": 0}

        # the prospects changed since the moment before: each summed again once, when the moment
        # is reached (a new prospect's creation, first entry and first stage change come together)
        dirty: dict[int, None] = {}

        def resum(pid: int) -> None:
            p = people[pid]
            if p.key is not None:
                total = sums[p.key]
                total[0] -= p.part[0]
                total[1] -= p.part[1]
                p.key = None
            if not p.created or p.stage is None or p.stage not in self.stages:
                return
            month_edits = self.month_edits.get(pid, ())
            owner_edits = self.owner_edits.get(pid, ())
            month = month_edits[p.month][2] if p.month < len(month_edits) else self.month_now[pid]
            owner = owner_edits[p.owner][2] if p.owner < len(owner_edits) else self.owner_now[pid]
            if p.n:
                part = (p.c, p.tv)
            elif counts(self.stages[p.stage][1]) and not p.gone:
                part = (1, p.sc_value)
            else:
                part = (0, 0)
            p.key, p.part = (owner, month, p.stage), part
            total = sums.setdefault(p.key, [0, 0])
            total[0] += part[0]
            total[1] += part[1]

        created, deleted, entries, moves, edit_times = (
            self.created,
            self.deleted,
            self.entries,
            self.moves,
            self.edit_times,
        )
        steps = 0  # changes walked over so far: the same count, the same pipeline
        for moment in sorted(moments):
            # each list is walked on from where the moment before left it (plain local counters:
            # this loop goes over every row of an import's journal)
            i, n = at["created"], len(created)
            while i < n and created[i][0] < moment:
                pid = created[i][1]
                people[pid].created = True
                dirty[pid] = None
                steps += 1
                i += 1
            at["created"] = i
            i, n = at["deleted"], len(deleted)
            while i < n and deleted[i][0] < moment:
                pid = deleted[i][1]
                people[pid].gone = True
                dirty[pid] = None
                steps += 1
                i += 1
            at["deleted"] = i
            i, n = at["entries"], len(entries)
            while i < n and entries[i][0] < moment:
                _, _, pid, dc, dtv = entries[i]
                i += 1
                p = people.get(pid)
                if p is None:
                    continue
                p.n += 1
                p.c += dc
                p.tv += dtv
                dirty[pid] = None
                steps += 1
            at["entries"] = i
            i, n = at["moves"], len(moves)
            while i < n and moves[i][0] < moment:
                _, _, pid, to, value = moves[i]
                i += 1
                p = people.get(pid)
                if p is None:
                    continue
                p.stage, p.sc_value = to, value
                dirty[pid] = None
                steps += 1
            at["moves"] = i
            i, n = at["edits"], len(edit_times)
            while i < n and edit_times[i][0] < moment:
                _, _, what, pid = edit_times[i]
                i += 1
                p = people.get(pid)
                if p is None:
                    continue
                if what == "month":
                    p.month += 1
                else:
                    p.owner += 1
                dirty[pid] = None
                steps += 1
            at["edits"] = i
            for pid in dirty:
                resum(pid)
            dirty.clear()
            self._steps = steps
            yield moment, people, sums

    def probabilities(self, moment: datetime) -> dict[int, tuple[int, str]]:
        """Each stage's (probability_bp, kind) just before `moment`."""
        out = dict(self.stages)
        for sid, changes in self.prob_changes.items():
            if sid not in out:
                continue
            for at, _, before in changes:
                if at >= moment:
                    if before is not None:
                        out[sid] = (before, out[sid][1])
                    break
        return out

    def states(self, moments: list[datetime]) -> list[tuple[State, State]]:
        """For each moment (in the order given): the pipeline just before it, {(owner, month): Kpi},
        and its won part (the prospects on a won stage then)."""
        found: dict[datetime, tuple[State, State]] = {}
        last: tuple[int, dict[int, tuple[int, str]], tuple[State, State]] | None = None
        for moment, _people, sums in self._walk(set(moments)):
            probs = self.probabilities(moment)
            if last is not None and last[0] == self._steps and last[1] == probs:
                found[moment] = last[2]  # nothing happened since the moment before: the same state
                continue
            # summed as plain ints, [count, TV, EV], then made Kpis (the same sums, less work)
            acc: dict[tuple[str, str | None], list[int]] = {}
            won: dict[tuple[str, str | None], list[int]] = {}
            for (owner, month, sid), (count, tv) in sums.items():
                bp, kind = probs.get(sid, (0, LOST))
                ev = ev_micros(tv, kind, bp)
                key = (owner or "", month or None)
                for into in (acc, won) if kind == WON else (acc,):
                    cell = into.get(key)
                    if cell is None:
                        into[key] = [count, tv, ev]
                    else:
                        cell[0] += count
                        cell[1] += tv
                        cell[2] += ev
            found[moment] = (
                {key: Kpi(*k) for key, k in acc.items() if k != [0, 0, 0]},
                {key: Kpi(*k) for key, k in won.items() if k != [0, 0, 0]},
            )
            last = (self._steps, probs, found[moment])
        return [found[m] for m in moments]

    def prospects(
        self, moments: list[datetime], keep: Callable[[datetime, str, str | None], bool] | None = None
    ) -> list[list[ProspectThen]]:
        """For each moment (in the order given): each prospect that counted just before it (not
        deleted, lost or not yet created), in the order of their ids: (owner, expected month,
        value in cents, stage kind, stage probability then). `keep(moment, owner, month)`: only
        the prospects it says yes to, so that a caller wanting one month's at each moment does not
        hold every prospect's once per moment (a year of month starts at 100,000 prospects: 1.2
        million rows, some 100 MiB)."""
        found: dict[datetime, list[ProspectThen]] = {}
        for moment, people, _sums in self._walk(set(moments)):
            probs = self.probabilities(moment)
            rows = []
            for pid in sorted(people):
                p = people[pid]
                if p.key is None:
                    continue
                owner, month, sid = p.key
                if keep is not None and not keep(moment, owner or "", month or None):
                    continue
                bp, kind = probs.get(sid, (0, LOST))
                if kind == LOST or not p.part[1]:
                    continue
                rows.append((owner or "", month or None, p.part[1], kind, bp))
            found[moment] = rows
        return [found[m] for m in moments]
