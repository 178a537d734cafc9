"""The journal writer: the one place that writes change events and stage changes.

Every change records a `ChangeEvent` with its exact effect on the KPIs (count, TV in cents, EV in
micros), its bridge category and a summary such as "Acme: Suspect -> Quote sent, EV +1,200"; every
stage move also records a `StageChange` (history). The store writes one change at a time in an ORM
session (`SessionJournal`); the importer writes thousands in one go, as rows with ids given ahead
and inserted in bulk (`BulkJournal`). Both build their rows, summaries and results here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, bindparam, literal_column, select, text
from sqlmodel import Session, col

from .bridge import BridgeCategory, move_category  # noqa: F401  (re-exported)
from .pace import stay_seconds
from .records import ChangeResult, ProspectInfo
from .tables import ChangeEvent, Prospect, Stage, StageChange
from .undone import UNDONE_MOVES_SQL, undone_move  # noqa: F401  (re-exported: the rule's two forms)
from .values import format_amount, format_percent

SUMMARY_MAX = 500


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """`json.JSONEncoder(**options).encode` (the same text), for many small documents: the standard
    library makes its C encoder again at every call (half the time of a payload of four keys), this
    makes it once. Without the check for circular references: the documents are trees of values
    (an import's payloads and custom fields)."""
    encoder = json.JSONEncoder(**options)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:  # no C encoder: the standard path
        return encoder.encode
    chunks = make(
        None,
        encoder.default,
        json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(document: Any) -> str:
        if not isinstance(document, dict | list):  # a lone value: the standard path
            return encoder.encode(document)
        return "".join(chunks(document, 0))

    return encode


#: How a payload is stored: json.dumps(payload, default=str), with one encoder made once.
_PAYLOAD_JSON = json_encoder(default=str)

Delta = tuple[int, int, int]
NO_DELTA: Delta = (0, 0, 0)


# ---------------------------------------------------------------- rules and phrases


def delta(before: Delta, after: Delta) -> Delta:
    """What a change did to (count, TV, EV): after - before."""
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def negate(part: Delta) -> Delta:
    return -part[0], -part[1], -part[2]


def ev_phrase(d_ev_micros: int) -> str:
    """'EV +1,200', 'EV +199.60': how a summary says what a change did to EV, to the cent when it
    has cents (models.values' rule)."""
    return "EV " + format_amount(d_ev_micros, micros=True, signed=True)


def probability_summary(stage: str, before_bp: int, after_bp: int, count: int, d_ev_micros: int) -> str:
    """How a stage probability change reads in the journal (`evpipe stages set`, an import adopting
    a file's ladder): 'Quote sent: 25% -> 40% on 3 prospects, EV +1,500'."""
    return f"{stage}: {format_percent(before_bp)} -> {format_percent(after_bp)} on {count} prospects, " + ev_phrase(
        d_ev_micros
    )


def money_phrase(cents: int) -> str:
    """'1,200', '12,750.50': an amount as stored (never rounded to a figure it is not)."""
    return format_amount(cents)


def created_summary(name: str, verb: str, stage_name: str, value_cents: int, d_ev_micros: int) -> str:
    """'Acme: added on Suspect at $1,200, EV +120' (verb 'added' or 'imported')."""
    return f"{name}: {verb} on {stage_name} at {money_phrase(value_cents)}, {ev_phrase(d_ev_micros)}"


def move_summary(name: str, from_name: str, to_name: str, d_ev_micros: int, note: str = "") -> str:
    """'Acme: Suspect -> Won, EV +1,080', with an optional note after the stages ('(import)')."""
    return f"{name}: {from_name} -> {to_name}{note}, {ev_phrase(d_ev_micros)}"


def edit_summary(
    name: str, fields: Iterable[str], value_before: int, value_after: int, d_ev_micros: int, note: str = ""
) -> str:
    """'Acme: value, notes changed, value $1,000 -> $1,200, EV +40' (the value part when it changed;
    'value 12,750.50 -> 13,000, EV +199.60': amounts with cents show them)."""
    fields = list(fields)
    what = ", ".join(k.replace("_cents", "").replace("_json", "").replace("_", " ") for k in fields)
    summary = f"{name}: {what} changed{note}"
    if "value_cents" in fields:
        summary += f", value {money_phrase(value_before)} -> {money_phrase(value_after)}, {ev_phrase(d_ev_micros)}"
    return summary


# ---------------------------------------------------------------- rows


def event_row(
    *,
    at: datetime,
    who: str,
    action: str,
    category: BridgeCategory | str,
    summary: str,
    payload: dict[str, Any],
    prospect_id: int | None = None,
    stage_id: int | None = None,
    d: Delta = NO_DELTA,
    undoes_id: int | None = None,
) -> dict[str, Any]:
    """The columns of one journal entry (the category checked against the bridge's terms)."""
    return dict(
        at=at,
        who=who,
        action=action,
        category=BridgeCategory(category).value,
        prospect_id=prospect_id,
        stage_id=stage_id,
        d_count=d[0],
        d_tv_cents=d[1],
        d_ev_micros=d[2],
        summary=summary[:SUMMARY_MAX],
        payload=_PAYLOAD_JSON(payload),
        undoes_id=undoes_id,
    )


def stage_change_row(
    *,
    prospect_id: int,
    at: datetime,
    who: str,
    from_stage_id: int | None,
    to_stage_id: int,
    value_cents: int,
    from_probability_bp: int | None,
    to_probability_bp: int,
    reason: str | None,
    event_id: int,
    inferred: bool = False,
    before: tuple[datetime, bool] | None = None,
) -> dict[str, Any]:
    """The columns of one history row: a prospect created on a stage, or moved between two.
    `inferred`: its open stage is the importer's guess (the `StageChange.inferred` column);
    `before`: the prospect's change before this one (its moment, and whether it was a guess), of
    which this one ends the stay (`StageChange.stay_seconds`)."""
    return dict(
        prospect_id=prospect_id,
        changed_at=at,
        who=who,
        from_stage_id=from_stage_id,
        to_stage_id=to_stage_id,
        value_cents=value_cents,
        from_probability_bp=from_probability_bp,
        to_probability_bp=to_probability_bp,
        reason=reason,
        event_id=event_id,
        inferred=inferred,
        stay_seconds=stay_seconds(before, at, inferred) if from_stage_id is not None else None,
    )


def _last_change_query(prospect_id: int):
    return (
        select(col(StageChange.changed_at), col(StageChange.inferred))
        .where(col(StageChange.prospect_id) == prospect_id, text(f"NOT {undone_move('stage_change')}"))
        .order_by(col(StageChange.changed_at).desc(), col(StageChange.id).desc())
        .limit(1)
    )


def last_change(conn: Connection | Session, prospect_id: int) -> tuple[datetime, bool] | None:
    """A prospect's latest stage change, an undone move and its undo left out (`undone_move`): its
    moment and whether it was a guess (None: it has none)."""
    row = conn.execute(_last_change_query(prospect_id)).first()
    return None if row is None else (row[0], bool(row[1]))


def restay(conn: Connection | Session, prospect_ids: Iterable[int]) -> None:
    """Work the stays of these prospects' stage changes out again from their whole history, in its
    order, and when they entered their stage (`Prospect.stage_entered_at`): for a change written
    with a moment before its prospect's latest one (a date given by hand, a file's), which ends a
    stay that was already counted and starts another; and for an undone move (`undone_move`),
    which ends none and starts none."""
    t = StageChange.__table__.c  # type: ignore[attr-defined]
    undone: Any = literal_column(f"CASE WHEN {undone_move('stage_change')} THEN 1 ELSE 0 END")
    for pid in sorted(set(prospect_ids)):
        before: tuple[datetime, bool] | None = None
        fixed = []
        for cid, at, from_stage, inferred, kept, reversed_ in conn.execute(
            select(t.id, t.changed_at, t.from_stage_id, t.inferred, t.stay_seconds, undone)
            .where(t.prospect_id == pid)
            .order_by(t.changed_at, t.id)
        ):
            stay = stay_seconds(before, at, bool(inferred)) if from_stage is not None and not reversed_ else None
            if stay != kept:
                fixed.append({"key": cid, "stay": stay})
            if not reversed_:
                before = (at, bool(inferred))
        if before is not None:
            prospects = Prospect.__table__  # type: ignore[attr-defined]
            conn.execute(prospects.update().where(prospects.c.id == pid).values(stage_entered_at=before[0]))
        if fixed:
            conn.execute(
                StageChange.__table__.update()  # type: ignore[attr-defined]
                .where(t.id == bindparam("key"))
                .values(stay_seconds=bindparam("stay")),
                fixed,
            )


#: The stage a prospect was on when each of its contact points happened (`Activity.stage_id`, which
#: the review's balance of activity counts them on): the one its latest stage change at or before
#: the contact point's moment went to (on a tie, the later written), a move undone and its undo
#: left out (`undone_move`: a call made while a move by mistake stood was on the stage the prospect
#: never left). None before its first change. Kept as contact points and stage changes are written
#: (`restage`); migration 0010 gave the contact points recorded before it theirs by this rule.
RESTAGE_SQL = (
    "UPDATE activity SET stage_id = (SELECT sc.to_stage_id FROM stage_change sc "
    "WHERE sc.prospect_id = activity.prospect_id AND sc.changed_at <= activity.occurred_at "
    f"AND NOT {undone_move('sc')} ORDER BY sc.changed_at DESC, sc.id DESC LIMIT 1)"
)


def restage(
    conn: Connection | Session,
    *,
    prospect_ids: Iterable[int] | None = None,
    since: datetime | None = None,
    activity_id: int | None = None,
) -> None:
    """Work out again the stage of contact points (`RESTAGE_SQL`): one (`activity_id`), or those of
    `prospect_ids` (at or after `since`, when a stage change at `since` was written: those before
    it keep theirs), or every one (neither: the demo, whose contact points are written in bulk)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if activity_id is not None:
        where.append("activity.id = :activity")
        params["activity"] = activity_id
    if since is not None:
        where.append("activity.occurred_at >= :since")
        params["since"] = since

    def run(sql: str, values: dict[str, Any]) -> None:
        statement = text(sql)
        if since is not None:  # written as the table's moments are (SQLite keeps them as text)
            statement = statement.bindparams(bindparam("since", type_=DateTime()))
        conn.execute(statement, values)

    if prospect_ids is None:
        run(RESTAGE_SQL + (" WHERE " + " AND ".join(where) if where else ""), params)
        return
    ids = sorted(set(prospect_ids))
    for n in range(0, len(ids), 500):  # (a bound list each: PostgreSQL and SQLite both cap parameters)
        chunk = ids[n : n + 500]
        marks = ", ".join(f":p{i}" for i in range(len(chunk)))
        sql = RESTAGE_SQL + " WHERE " + " AND ".join([*where, f"activity.prospect_id IN ({marks})"])
        run(sql, {**params, **{f"p{i}": pid for i, pid in enumerate(chunk)}})


# ---------------------------------------------------------------- writers


class SessionJournal:
    """Writes the journal of one change in the store's ORM session (ids come from the database)."""

    def __init__(self, s: Session, who: str) -> None:
        self.s = s
        self.who = who

    def event(
        self,
        *,
        action: str,
        category: BridgeCategory | str,
        at: datetime,
        summary: str,
        payload: dict[str, Any],
        prospect_id: int | None = None,
        stage_id: int | None = None,
        d: Delta = NO_DELTA,
        undoes: ChangeEvent | None = None,
    ) -> ChangeEvent:
        """Record one change; with `undoes`, the change it reverses is marked undone by this one.

        A change to a prospect records the version it left the prospect at (`v` in the payload), so
        that a later edit made on an older version can tell which changes came after it (a merge,
        models/store_prospects.py)."""
        if prospect_id is not None:
            p = self.s.get(Prospect, prospect_id)
            if p is not None:
                payload = {**payload, "v": p.version}
        ev = ChangeEvent(
            **event_row(
                at=at,
                who=self.who,
                action=action,
                category=category,
                summary=summary,
                payload=payload,
                prospect_id=prospect_id,
                stage_id=stage_id,
                d=d,
                undoes_id=undoes.id if undoes else None,
            )
        )
        self.s.add(ev)
        self.s.flush()
        if undoes is not None:
            undoes.undone_by_id = ev.id
            self.s.add(undoes)
        return ev

    def stage_change(
        self,
        *,
        prospect: Prospect,
        at: datetime,
        from_stage: Stage | None,
        to_stage: Stage,
        reason: str | None,
        event: ChangeEvent,
    ) -> None:
        assert prospect.id is not None and to_stage.id is not None and event.id is not None
        before = last_change(self.s, prospect.id) if from_stage is not None else None
        change = StageChange(
            **stage_change_row(
                prospect_id=prospect.id,
                at=at,
                who=self.who,
                from_stage_id=from_stage.id if from_stage else None,
                to_stage_id=to_stage.id,
                value_cents=prospect.value_cents,
                from_probability_bp=from_stage.probability_bp if from_stage else None,
                to_probability_bp=to_stage.probability_bp,
                reason=reason,
                event_id=event.id,
                before=before,
            )
        )
        self.s.add(change)
        self.s.flush()  # (restay and restage read the history with it)
        if event.undoes_id is not None or (before is not None and before[0] > at):
            # an undo: the move it undoes and itself are no stays, and the prospect is on its
            # stage since it entered it before that move (`undone_move`); or written into the
            # history, not after it
            restay(self.s, [prospect.id])
            self.s.refresh(prospect, ["stage_entered_at"])
        else:
            prospect.stage_entered_at = at
            self.s.add(prospect)
        # its contact points from this moment on happened on the stage it went to (none, for a
        # change made now: a contact point is never in the future); an undo's from the move it
        # undoes on, which no longer counts (`RESTAGE_SQL`)
        since = at
        if event.undoes_id is not None:
            t = StageChange.__table__.c  # type: ignore[attr-defined]
            undone_at = self.s.execute(
                select(t.changed_at).where(t.prospect_id == prospect.id, t.event_id == event.undoes_id).limit(1)
            ).scalar()
            if undone_at is not None and undone_at < at:
                since = undone_at
        restage(self.s, prospect_ids=[prospect.id], since=since)

    def result(self, ev: ChangeEvent, p: Prospect | None, warnings: Iterable[str] = (), **extra: Any) -> ChangeResult:
        """What the change did, with the prospect as it is now."""
        info = ProspectInfo.of(p, self.s.get_one(Stage, p.stage_id)) if p is not None else None
        assert ev.id is not None
        return ChangeResult(
            event_id=ev.id,
            summary=ev.summary,
            category=ev.category,
            prospect=info,
            d_count=ev.d_count,
            d_tv_cents=ev.d_tv_cents,
            d_ev_micros=ev.d_ev_micros,
            warnings=tuple(warnings),
            extra=extra,
        )


class BulkJournal:
    """Collects the journal of an import as rows with ids given ahead, for one bulk insert.

    Every entry's action is "import": `evpipe undo` does not take an import apart piece by piece.
    `total` sums the entries' effect on (count, TV, EV)."""

    def __init__(self, who: str, next_event_id: int, next_change_id: int) -> None:
        self.who = who
        self.next_event_id = next_event_id
        self.next_change_id = next_change_id
        self.events: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        self.total = [0, 0, 0]
        #: each prospect's latest change written here (its moment, whether a guess): the one the
        #: next change of it ends the stay of
        self.latest: dict[int, tuple[datetime, bool]] = {}
        #: prospects with a change dated before their latest one: `restay` them once written
        self.out_of_order: set[int] = set()

    def event(
        self,
        *,
        at: datetime,
        category: BridgeCategory | str,
        summary: str,
        payload: dict[str, Any],
        prospect_id: int | None = None,
        stage_id: int | None = None,
        d: Delta = NO_DELTA,
    ) -> int:
        row = event_row(
            at=at,
            who=self.who,
            action="import",
            category=category,
            summary=summary,
            payload=payload,
            prospect_id=prospect_id,
            stage_id=stage_id,
            d=d,
        )
        row["id"] = eid = self.next_event_id
        row["undone_by_id"] = None
        self.events.append(row)
        self.next_event_id += 1
        self.total[0] += d[0]
        self.total[1] += d[1]
        self.total[2] += d[2]
        return eid

    def stage_change(
        self,
        *,
        prospect_id: int,
        at: datetime,
        from_stage_id: int | None,
        to_stage_id: int,
        value_cents: int,
        from_probability_bp: int | None,
        to_probability_bp: int,
        reason: str | None,
        event_id: int,
        inferred: bool = False,
        before: tuple[datetime, bool] | None = None,
    ) -> None:
        """One history row; `before`: the prospect's latest change in the database, for a prospect
        with none written here yet (a move of one imported before)."""
        row = stage_change_row(
            prospect_id=prospect_id,
            at=at,
            who=self.who,
            from_stage_id=from_stage_id,
            to_stage_id=to_stage_id,
            value_cents=value_cents,
            from_probability_bp=from_probability_bp,
            to_probability_bp=to_probability_bp,
            reason=reason,
            event_id=event_id,
            inferred=inferred,
            before=(last := self.latest.get(prospect_id, before)),
        )
        if last is not None and last[0] > at:
            self.out_of_order.add(prospect_id)
        self.latest[prospect_id] = (at, inferred)
        row["id"] = self.next_change_id
        self.changes.append(row)
        self.next_change_id += 1
