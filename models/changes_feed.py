"""Reading the journal: what changed since a given entry, and how to say it.

Three users of one reading:

- live screens (tui/live_sync.py): a cheap check whether anything was written since the last look
  (`ChangeCheck`: SQLite's `PRAGMA data_version` first, then the journal's highest id, an indexed
  `SELECT max(id)` that PostgreSQL answers as well), then the entries since (`entries_since`) and
  the rows they touch, and a short notice naming who did what (`notice`);
- merging a stale edit (models/store_prospects.py): which fields each later change touched, and
  the words of a refusal ("sam changed value 11,000 -> 12,500 at 10:42");
- undo (models/store_undo.py): the later change that stands in the way of an undo, in the same words.

Only the standard library and models' plain modules: the app's poller imports this at start-up.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .rawdb import as_date, fetch_all, sqlite_data_version
from .values import format_amount, format_percent

#: The field a change touches when it touches the whole prospect (a delete, an undone add).
WHOLE = "*"
#: The field a stage move touches.
STAGE = "stage"
#: The field a probability change touches (of its stage).
PROBABILITY = "probability"

#: How many entries one read takes; more than this since the last look: screens reload instead.
BATCH = 500

#: More entries than this in one look are summed up per person rather than told one by one.
BURST = 3

_LABELS = {
    "value_cents": "value",
    "expected_month": "month",
    "next_follow_up": "follow-up",
    "custom_json": "custom fields",
    "contact_name": "contact",
    "needs_review": "needs review",
    "external_key": "external key",
    STAGE: "stage",
    WHOLE: "the prospect",
}


@dataclass(frozen=True)
class Entry:
    """One journal entry as the readers need it (names of its prospect and stage joined in)."""

    id: int
    at: datetime
    who: str
    action: str
    category: str
    prospect_id: int | None
    stage_id: int | None
    d_count: int
    d_tv_cents: int
    d_ev_micros: int
    summary: str
    payload: dict[str, Any] = field(default_factory=dict)
    undoes_id: int | None = None
    prospect_name: str | None = None
    stage_name: str | None = None

    @property
    def delta(self) -> tuple[int, int, int]:
        return self.d_count, self.d_tv_cents, self.d_ev_micros

    @property
    def touches_ladder(self) -> bool:
        """A change to the ladder (a probability, a stage's name or place): every row may read
        differently, so screens read the ladder again."""
        return self.prospect_id is None and self.stage_id is not None

    @property
    def version(self) -> int | None:
        """The prospect's version this change left (recorded since live screens; None before)."""
        v = self.payload.get("v")
        return v if isinstance(v, int) else None


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _payload(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        found = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


_ENTRY_SQL = (
    "SELECT e.id, e.at, e.who, e.action, e.category, e.prospect_id, e.stage_id, e.d_count, e.d_tv_cents, "
    "e.d_ev_micros, e.summary, e.payload, e.undoes_id, p.name, s.name "
    "FROM change_event e LEFT JOIN prospect p ON p.id = e.prospect_id LEFT JOIN stage s ON s.id = e.stage_id "
    "WHERE e.id > :after ORDER BY e.id LIMIT :limit"
)


def entry_of(row: tuple) -> Entry:
    """An Entry from a row of `_ENTRY_SQL`'s columns."""
    return Entry(
        id=int(row[0]),
        at=_as_datetime(row[1]),
        who=row[2] or "",
        action=row[3],
        category=row[4],
        prospect_id=row[5],
        stage_id=row[6],
        d_count=int(row[7] or 0),
        d_tv_cents=int(row[8] or 0),
        d_ev_micros=int(row[9] or 0),
        summary=row[10] or "",
        payload=_payload(row[11]),
        undoes_id=row[12],
        prospect_name=row[13],
        stage_name=row[14],
    )


def latest_id(source: Any) -> int:
    """The journal's highest id (0 for an empty journal): the primary key's last entry."""
    found = fetch_all(source, "SELECT max(id) FROM change_event")
    return int(found[0][0] or 0) if found else 0


def settings_now(source: Any) -> tuple[tuple[Any, ...], ...]:
    """What no journal entry says, to tell whether it changed since the last look: every setting
    (a handful of rows: the KPI period, the monthly targets, who sees what) and every member with
    their role (the members screen shows them). One read."""
    return tuple(tuple(r) for r in fetch_all(source, _SETTINGS_SQL))


_SETTINGS_SQL = (
    "SELECT 'setting' AS kind, key, value FROM setting"
    " UNION ALL SELECT 'member' AS kind, name, role FROM member ORDER BY kind, key"
)


def kpis_as_of_journal(source: Any, *scopes: Any) -> tuple[int, list[Any]]:
    """The journal's highest id and the KPIs of each scope (models.kpi.Scope), read in one read
    transaction: every change up to that id is in the sums and none after it, so that a live
    screen adding later entries' recorded effects counts each change exactly once. Each scope's
    from today's KPI reading when there is one (models.kpi.current_kpis)."""
    from . import clock
    from .kpi import current_kpis
    from .rawdb import raw_cursor

    with raw_cursor(source, transaction=True) as cursor:
        journal_id = latest_id(cursor)
        today = clock.today()  # after the first read: see current_kpis
        return journal_id, [current_kpis(cursor, scope, today) for scope in scopes]


def entries_since(source: Any, after_id: int, limit: int = BATCH) -> list[Entry]:
    """The journal entries after `after_id`, oldest first, at most `limit` of them. None is passed
    over: writes commit in the order of their ids (on PostgreSQL too, models/dialect.py
    `lock_writes`), so no entry before the highest one read is still to come."""
    return [entry_of(r) for r in fetch_all(source, _ENTRY_SQL, {"after": after_id, "limit": limit})]


#: The journal's id counter on PostgreSQL (every member may read the sequence: models/grants.py):
#: it moves with every entry, including those row-level security hides from a rep.
_JOURNAL_MARK_SQL = "SELECT pg_sequence_last_value(pg_get_serial_sequence('change_event', 'id')::regclass)"


class OwnRows:
    """The prospects of one owner, as a session limited to them (a rep who sees only their own)
    last read them: which of them left since.

    On PostgreSQL the server's row-level security (models/grants.py ROW_RULES) hides a prospect
    from a rep once it is handed to someone else, and every journal entry about it with it: the
    journal the rep reads never says it went. What they can read still does: it is no longer
    among theirs. Their ids are read again only when the journal's id sequence moved (one look at
    a counter, which every entry moves, seen or hidden): a look that finds nothing new costs no
    read of their prospects, however many they have (the live check looks twice a second)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._ids: set[int] | None = None
        self._mark: int | None = None

    def left(self, source: Any, connection: Any) -> set[int]:
        """The prospects that were the owner's (and not deleted) at the last call and are not now:
        handed to someone else, or deleted. None at the first call, which only takes note.
        `connection`: where to look at the journal's id sequence first (the check's own)."""
        mark = fetch_all(connection, _JOURNAL_MARK_SQL)
        moved = mark[0][0] if mark else None
        if self._ids is not None and moved == self._mark:
            return set()
        self._mark = moved
        found = fetch_all(
            source, "SELECT id FROM prospect WHERE owner = :owner AND deleted_at IS NULL", {"owner": self.owner}
        )
        ids = {int(i) for (i,) in found}
        before, self._ids = self._ids, ids
        return set() if before is None else before - ids


class ChangeCheck:
    """Whether anything was written since the last look, cheaply, from a worker thread.

    Keeps one connection open. On SQLite, `PRAGMA data_version` (a counter in the connection,
    which moves when another connection commits) answers "nothing" in microseconds; when it moved,
    or on another database, the journal's highest id (an index lookup) says whether there is a
    new entry. `owner`: the session sees only that owner's prospects; on a server, which hides the
    others' rows and their entries, each look also notes which of theirs left unseen (`left`).
    Not for use by two threads at once."""

    def __init__(self, source: Any, owner: str | None = None) -> None:
        self.source = source
        self._connection: Any = None
        self._data_version: int | None = None
        self._sqlite = False
        self.seen = -1  # the highest id seen; -1 before the first look
        #: The settings (monthly targets, who sees what) as last read: they are not journalled
        self._settings: tuple[tuple[Any, ...], ...] | None = None
        #: Whether the last `poll` found them changed (a target set from the command line, say)
        self.settings_moved = False
        self._owner = owner
        self._own: OwnRows | None = None
        #: The owner's prospects that the last `poll` found gone from theirs (on a server only:
        #: SQLite hides no row, so the journal says every hand-off)
        self.left: set[int] = set()

    def _connect(self) -> Any:
        if self._connection is None:
            self._connection = self.source.raw_connection()
            driver = getattr(self._connection, "driver_connection", self._connection)
            self._sqlite = isinstance(driver, sqlite3.Connection)
            self._data_version = None
        return self._connection

    @property
    def connection(self) -> Any:
        """The connection the checks use (reads of what changed go on it too)."""
        return self._connect()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def latest(self) -> int:
        """The journal's highest id now (one query), remembered as seen."""
        connection = self._connect()
        try:
            self.seen = latest_id(connection)
            self._settings = settings_now(connection)
            if self._owner is not None and not self._sqlite:
                self._own = OwnRows(self._owner)
                self._own.left(self.source, connection)  # what is theirs now: the baseline
            _end_read(connection)
        except Exception:
            self.close()
            raise
        return self.seen

    def poll(self) -> int | None:
        """The journal's highest id when it moved past what was seen, else None; and whether the
        settings or the members changed (`settings_moved`), which no journal entry says."""
        connection = self._connect()
        self.settings_moved = False
        self.left = set()
        try:
            if self._sqlite:
                version = sqlite_data_version(connection)
                if version == self._data_version and self.seen >= 0:
                    return None
                self._data_version = version
            newest = latest_id(connection)
            settings = settings_now(connection)
            self.settings_moved = self._settings is not None and settings != self._settings
            self._settings = settings
            if self._own is not None:  # (through the engine: the driver's connection takes other parameter marks)
                self.left = self._own.left(self.source, connection)
            _end_read(connection)
        except Exception:
            self.close()
            raise
        if newest > self.seen:
            self.seen = newest
            return newest
        return None


def _end_read(connection: Any) -> None:
    """End the transaction the driver opened for the check's reads. psycopg opens one at the first
    SELECT and has no `in_transaction` (sqlite3, here in autocommit, has): left open for the app's
    whole life, it held its tables' locks, so that an owner's `members reps-see`, `members add` or
    a schema upgrade waited for every open app and gave up ('another evpipe is writing')."""
    if getattr(connection, "in_transaction", True):
        connection.commit()


# ---------------------------------------------------------------- which fields a change touched


def fields_of(entry: Entry) -> dict[str, tuple[Any, Any]]:
    """The fields a change touched, each with (before, after) as journalled: field names are the
    prospect's columns (`value_cents`, `expected_month`, ...), `stage` for a move (stage ids) and
    WHOLE for a change to the whole prospect (deleted, brought back, undone add). A contact point
    touches none."""
    action, payload = entry.action, entry.payload
    if action == "move" or (action == "import" and "from" in payload):
        return {STAGE: (payload.get("from"), payload.get("to"))}
    if action == "delete":
        return {WHOLE: ("there", "deleted")}
    if action in ("activity", "create"):
        return {}
    if action == "undo" and not payload:
        return {WHOLE: ("", "undone")}  # an undone add or delete, or a contact point taken back
    if "deleted" in payload:
        return {WHOLE: ("", "deleted" if payload["deleted"] else "back")}
    before, after = payload.get("before"), payload.get("after")
    if isinstance(after, int) and not isinstance(after, bool) and entry.prospect_id is None:
        return {PROBABILITY: (before, after)}  # a stage's probability (set, or set back by undo)
    if isinstance(after, dict):
        before = before if isinstance(before, dict) else {}
        return {k: (before.get(k), v) for k, v in after.items()}
    return {}


def for_owner(entries: list[Entry], owner: str, owners: Mapping[int, str]) -> list[Entry]:
    """The entries a rep who sees only `owner`'s prospects may hear of (models/visibility.py):
    changes to their prospects (`owners`: whose each prospect is now, deleted ones too), a
    prospect handed to them or taken from them, and changes to the ladder (they price every
    prospect). Another owner's prospect is never named."""
    kept = []
    for e in entries:
        if e.prospect_id is None or owners.get(e.prospect_id) == owner:
            kept.append(e)
            continue
        handed = fields_of(e).get("owner")
        if handed is not None and owner in handed:
            kept.append(e)
    return kept


def label(field_name: str) -> str:
    return _LABELS.get(field_name, field_name.replace("_", " "))


def _shown(field_name: str, value: Any, stage_names: Mapping[int, str]) -> str:
    if value is None or value == "":
        return "none"
    if field_name == "value_cents" and isinstance(value, int):
        return format_amount(value)
    if field_name == PROBABILITY and isinstance(value, int):
        return format_percent(value)
    if field_name == STAGE and isinstance(value, int):
        return stage_names.get(value, f"stage {value}")
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = " ".join(str(value).split())
    return text if len(text) <= 30 else text[:27] + "..."


def when_phrase(at: datetime, today: date | None = None) -> str:
    """'at 10:42' today, 'on 3 Dec at 10:42' another day."""
    if today is not None and at.date() != today:
        return f"on {at.day} {at:%b} at {at:%H:%M}"
    return f"at {at:%H:%M}"


def describe(
    entry: Entry,
    fields: Iterable[str] | None = None,
    *,
    stage_names: Mapping[int, str] | None = None,
    today: date | None = None,
) -> str:
    """'sam changed value 11,000 -> 12,500 at 10:42', 'priya moved it Quote sent -> Won at 9:15',
    'sam deleted it at 10:42': what one change did to `fields` (all it touched by default)."""
    names = stage_names or {}
    touched = fields_of(entry)
    wanted = list(touched) if fields is None else [f for f in fields if f in touched]
    when = when_phrase(entry.at, today)
    who = entry.who or "someone"
    parts = []
    for f in wanted:
        before, after = touched[f]
        if f == WHOLE:
            parts.append(
                "deleted it"
                if entry.action == "delete" or after == "deleted"
                else ("brought it back" if after == "back" else f"undid a change to it ({entry.summary})")
            )
        elif f == STAGE:
            parts.append(f"moved it {_shown(f, before, names)} -> {_shown(f, after, names)}")
        elif f == PROBABILITY:
            stage = names.get(entry.stage_id or 0) or entry.stage_name or "a stage"
            parts.append(f"set {stage} {_shown(f, before, names)} -> {_shown(f, after, names)}")
        elif f in ("notes", "custom_json"):
            parts.append(f"changed {label(f)}")
        else:
            parts.append(f"changed {label(f)} {_shown(f, before, names)} -> {_shown(f, after, names)}")
    if not parts:
        parts.append(f"made a change ({entry.summary})")
    return f"{who} {', '.join(parts)} {when}"


def _not_a_date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def same_value(a: Any, b: Any) -> bool:
    """Whether two field values are the same, one as the database holds it and one as the journal
    recorded it (dates as ISO text there)."""
    if isinstance(a, str) and isinstance(b, date):
        return as_date(a) == b
    return _not_a_date(a) == _not_a_date(b)


# ---------------------------------------------------------------- notices


def _ev(micros: int) -> str:
    return "EV " + format_amount(micros, micros=True, signed=True)


def line_for(entry: Entry) -> str:
    """'sam: Coastline Realty -> Won, EV +2,200' for a move; 'sam: <summary>' otherwise."""
    who = entry.who or "someone"
    if entry.action == "move" and entry.prospect_name and entry.stage_name and not entry.undoes_id:
        return f"{who}: {entry.prospect_name} -> {entry.stage_name}, {_ev(entry.d_ev_micros)}"
    return f"{who}: {entry.summary}"


def totals_since(
    source: Any,
    after_id: int,
    upto_id: int,
    *,
    skip: Iterable[int] = (),
    skip_ranges: Iterable[range] = (),
    owner: str | None = None,
) -> list[tuple[str, int, int]]:
    """Per person, in the order they first wrote: how many journal entries after `after_id` up to
    `upto_id`, and their effect on EV (micros): what a burst too long for one read (`BATCH`) adds
    up to, counted by the database. `skip`, `skip_ranges`: this session's own entries. `owner`: a
    rep who sees only their prospects hears only of those and of the ladder's changes."""
    params: dict[str, Any] = {"after": after_id, "upto": upto_id}
    where = ["e.id > :after", "e.id <= :upto"]
    skipped = sorted(i for i in skip if after_id < i <= upto_id)
    if skipped:
        names = [f"s{n}" for n in range(len(skipped))]
        where.append(f"e.id NOT IN ({', '.join(':' + n for n in names)})")
        params.update(zip(names, skipped))
    for n, r in enumerate(skip_ranges):
        where.append(f"NOT (e.id >= :r{n}a AND e.id < :r{n}b)")
        params[f"r{n}a"], params[f"r{n}b"] = r.start, r.stop
    join = ""
    if owner is not None:
        join = " LEFT JOIN prospect p ON p.id = e.prospect_id"
        where.append("(e.prospect_id IS NULL OR p.owner = :owner)")
        params["owner"] = owner
    sql = (
        f"SELECT e.who, count(*), sum(e.d_ev_micros) FROM change_event e{join} WHERE {' AND '.join(where)}"
        " GROUP BY e.who ORDER BY min(e.id)"
    )
    return [(who or "", int(n), int(ev or 0)) for who, n, ev in fetch_all(source, sql, params)]


def burst_notice(totals: list[tuple[str, int, int]]) -> str | None:
    """'priya made 30,000 changes: EV +275,670,718.60', a line per person, from `totals_since`."""
    lines = [f"{who or 'someone'} made {n:,} change{'s' if n != 1 else ''}: {_ev(ev)}" for who, n, ev in totals if n]
    return "\n".join(lines) or None


def notice(entries: list[Entry]) -> str | None:
    """What a screen says about changes other sessions made: each one when there are a few, else
    one line per person ('priya made 14 changes: EV +31,200'). None when there is nothing."""
    if not entries:
        return None
    if len(entries) <= BURST:
        return "\n".join(line_for(e) for e in entries)
    per: dict[str, list[int]] = {}
    for e in entries:
        t = per.setdefault(e.who or "someone", [0, 0])
        t[0] += 1
        t[1] += e.d_ev_micros
    return "\n".join(f"{who} made {n} change{'s' if n != 1 else ''}: {_ev(ev)}" for who, (n, ev) in per.items())


__all__ = [
    "BATCH",
    "BURST",
    "PROBABILITY",
    "STAGE",
    "WHOLE",
    "ChangeCheck",
    "Entry",
    "OwnRows",
    "describe",
    "entries_since",
    "entry_of",
    "fields_of",
    "for_owner",
    "label",
    "latest_id",
    "line_for",
    "notice",
    "burst_notice",
    "totals_since",
    "same_value",
    "when_phrase",
]
