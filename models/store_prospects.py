"""The store's prospect writes: add, edit, delete, move (next, back, won, lost, reopen), contact
points and follow-ups. Each is one transaction, journalled by models/journal.py."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from . import clock
from .changes_feed import STAGE, WHOLE, Entry, describe, fields_of, same_value
from .errors import Conflict, DomainError, NotFound
from .journal import (
    BridgeCategory,
    SessionJournal,
    created_summary,
    delta,
    edit_summary,
    ev_phrase,
    move_category,
    move_summary,
    restage,
)
from .ladder import LOST, OPEN, WON, next_rung, previous_rung
from .records import ChangeResult, StageInfo
from .store_base import StageRef, StoreBase, part
from .tables import Activity, ChangeEvent, Prospect, Stage, StageChange, id_of
from .values import (
    MAX_CUSTOM_FIELDS,
    MAX_NAME_LEN,
    clean_email,
    clean_text,
    parse_expected_month,
    parse_follow_up,
    parse_money,
    parse_past_moment,
    parse_time,
)

ACTIVITY_KINDS = ("call", "email", "meeting", "note")

_NEXT_WORDS = ("next", "up", ">", "advance")
_BACK_WORDS = ("back", "down", "<", "prev", "previous")


def clean_custom(value: Any) -> dict[str, str]:
    """Custom fields as stored: at most MAX_CUSTOM_FIELDS pairs of clean name and text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DomainError("custom fields: expected pairs of name and text", field="custom")
    if len(value) > MAX_CUSTOM_FIELDS:
        raise DomainError(f"custom fields: at most {MAX_CUSTOM_FIELDS} per prospect", field="custom")
    out = {}
    for k, v in value.items():
        key = clean_text(k, field="custom field name", max_len=80, required=True)
        out[key] = clean_text("" if v is None else v, field=f"custom field {key}", max_len=5000)
    return out


def clean_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate every field given; raise on the first problem, before anything is written."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "name":
            out[key] = clean_text(value, field="name", max_len=MAX_NAME_LEN, required=True)
        elif key in ("company", "contact_name"):
            out[key] = clean_text(value, field=key.replace("_", " "), max_len=200)
        elif key == "email":
            out[key] = clean_email(value)
        elif key == "phone":
            out[key] = clean_text(value, field="phone", max_len=80)
        elif key == "owner":
            out[key] = clean_text(value, field="owner", max_len=80)
            if not out[key]:  # (every prospect is someone's: whose KPIs, follow-ups and history it is)
                raise DomainError("owner: cannot be empty; give the rep's name", field="owner")
        elif key == "notes":
            out[key] = clean_text(value, field="notes", max_len=20_000)
        elif key == "value":
            out["value_cents"] = parse_money(value)
        elif key == "value_cents":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DomainError("value: must be a whole number of cents, 0 or more", field="value")
            out[key] = parse_money(Decimal(value) / 100)
        elif key in ("month", "expected_month"):
            out["expected_month"] = parse_expected_month(value)
        elif key in ("follow_up", "next_follow_up"):
            out["next_follow_up"] = parse_follow_up(value)
        elif key == "custom":
            out["custom_json"] = json.dumps(clean_custom(value), ensure_ascii=False, sort_keys=True)
        elif key == "needs_review":
            out[key] = bool(value)
        elif key in ("source", "external_key"):
            out[key] = None if value is None else clean_text(value, field=key, max_len=200)
        else:
            raise DomainError(f"{key}: is not a field of a prospect", field=key)
    return out


def event_entry(ev: ChangeEvent) -> Entry:
    """A journal row as models.changes_feed reads it."""
    assert ev.id is not None
    return Entry(
        id=ev.id,
        at=ev.at,
        who=ev.who,
        action=ev.action,
        category=ev.category,
        prospect_id=ev.prospect_id,
        stage_id=ev.stage_id,
        d_count=ev.d_count,
        d_tv_cents=ev.d_tv_cents,
        d_ev_micros=ev.d_ev_micros,
        summary=ev.summary,
        payload=json.loads(ev.payload or "{}"),
        undoes_id=ev.undoes_id,
    )


class StaleChange(Conflict):
    """A change made on an older version of a prospect that touches what someone changed since.
    `clashes`: each later change, in words ('sam changed value 11,000 -> 12,500 at 10:42')."""

    def __init__(self, message: str, clashes: list[str]) -> None:
        super().__init__(message, field="version")
        self.clashes = clashes


class ProspectWrites(StoreBase):
    """Every change to a prospect."""

    # ------------------------------------------------------------ changes made on an older version

    def _stage_names(self, s: Session) -> dict[int, str]:
        return {id_of(st): st.name for st in s.scalars(select(Stage))}

    def _changes_since(self, s: Session, p: Prospect, version: int) -> list[Entry] | None:
        """The journal entries that moved `p` on from `version`, newest first; None when the
        journal cannot tell (entries written before versions were journalled, or by an import)."""
        q = select(ChangeEvent).where(col(ChangeEvent.prospect_id) == p.id).order_by(col(ChangeEvent.id).desc())
        found: list[Entry] = []
        for ev in s.scalars(q.limit(max(1, p.version - version) + 20)):
            entry = event_entry(ev)
            v = entry.version
            if v is None:
                return None
            if v <= version:
                return found
            found.append(entry)
        return None

    def _merge_or_refuse(
        self, s: Session, p: Prospect, expected_version: int | None, wanted: dict[str, Any], at: datetime
    ) -> list[str]:
        """Bump `p`'s version for a change of the fields `wanted` (field -> new value; STAGE for a
        move, WHOLE for a delete) made on `expected_version`. When that is behind, the changes since
        are read from the journal: none touching those fields, the change is merged (the notes of
        what it was merged with are returned, but for the user's own); one touching them, it is
        refused, saying who changed which field from what to what, and when."""
        if p.deleted_at is not None and (expected_version is None or expected_version >= p.version):
            raise NotFound(f"prospect: there is no prospect #{p.id}", field="prospect")
        if expected_version is None or p.version == expected_version:
            self._bump(s, p, None, at)
            return []
        later = self._changes_since(s, p, expected_version) if expected_version < p.version else None
        if later is None:
            self._bump(s, p, expected_version, at)  # refused, in the general words
            return []
        own = self.own_events
        latest: dict[str, Entry] = {}
        for e in (e for e in later if e.id not in own):  # newest first: the latest change of each field
            for f in fields_of(e):
                latest.setdefault(f, e)
        clashes: dict[int, list[str]] = {}
        for f, e in latest.items():
            after = fields_of(e)[f][1]
            whole = f == WHOLE or WHOLE in wanted
            if whole or (f in wanted and (f == STAGE or not same_value(after, wanted[f]))):
                clashes.setdefault(e.id, []).append(f)
        names = self._stage_names(s)
        today = at.date()
        if clashes:
            said = [describe(e, clashes[e.id], stage_names=names, today=today) for e in later if e.id in clashes]
            raise StaleChange(
                f"{p.name}: changed by someone else since you opened it: {'; '.join(reversed(said))}", said
            )
        self._bump(s, p, None, at)
        # (your own changes since, a follow-up set while the form was open, are merged unsaid)
        merged = [
            describe(e, stage_names=names, today=today) for e in reversed(later) if fields_of(e) and e.who != self.who
        ]
        return [f"{p.name}: merged with a change made since you opened it: {m}" for m in merged]

    def add(
        self,
        name: str,
        value: object,
        stage: StageRef | None = None,
        *,
        month: str | None = None,
        company: str = "",
        contact_name: str = "",
        email: str = "",
        phone: str = "",
        notes: str = "",
        custom: dict[str, str] | None = None,
        owner: str | None = None,
        follow_up: date | str | None = None,
        at: datetime | None = None,
        closed_on: date | None = None,
        lost_reason: str | None = None,
        needs_review: bool = False,
        source: str | None = None,
        external_key: str | None = None,
    ) -> ChangeResult:
        at = at or clock.now()
        with self._write() as s, s.begin():
            fields = clean_fields(
                dict(
                    name=name,
                    value=value,
                    company=company,
                    contact_name=contact_name,
                    email=email,
                    phone=phone,
                    notes=notes,
                    custom=custom,
                    owner=self.who if owner is None else owner,
                    month=month,
                    follow_up=follow_up,
                    needs_review=needs_review,
                    source=source,
                    external_key=external_key,
                )
            )
            self._may(s, "add", owner=fields["owner"])
            st = self._stage(s, stage) if stage not in (None, "") else self._first_stage(s)
            p = Prospect(
                **fields,
                stage_id=id_of(st),
                created_at=at,
                updated_at=at,
                last_touch_at=at,
            )
            if st.kind != OPEN:
                p.closed_on = closed_on or at.date()
            if st.kind == LOST:
                p.lost_reason = clean_text(lost_reason, field="reason", max_len=500) or None
            s.add(p)
            s.flush()
            d = part(p.value_cents, st)
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="create",
                category=BridgeCategory.NEW,
                at=at,
                prospect_id=p.id,
                stage_id=st.id,
                d=d,
                summary=created_summary(p.name, "added", st.name, p.value_cents, d[2]),
                payload={},
            )
            j.stage_change(prospect=p, at=at, from_stage=None, to_stage=st, reason="created", event=ev)
            return j.result(ev, p)

    def edit(
        self, ref: int | str, *, expected_version: int | None = None, at: datetime | None = None, **changes: Any
    ) -> ChangeResult:
        """Change any of: name, company, contact_name, email, phone, notes, custom, value, month,
        follow_up, owner, needs_review. The stage changes through `move`."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref, include_deleted=expected_version is not None)
            self._may(s, "edit", p)
            fields = clean_fields(changes)
            if "owner" in fields:
                self._may(s, "hand", owner=fields["owner"])
            notes = self._merge_or_refuse(s, p, expected_version, fields, at)
            if "next_follow_up" in fields and (fields["next_follow_up"] is None or p.next_follow_up is None):
                # a follow-up cleared takes its time and note with it, as `set_follow_up` does: kept,
                # they came back with the next date typed in the form (`09:15 old note` on a new day)
                fields.update(follow_up_time=None, follow_up_note=None)
            before = {k: getattr(p, k) for k in fields}
            after = {k: v for k, v in fields.items() if before[k] != v}
            if not after:
                raise DomainError(f"{p.name}: nothing to change", field=None)
            st = s.get_one(Stage, p.stage_id)
            old_part = part(p.value_cents, st)
            for k, v in after.items():
                setattr(p, k, v)
            d = delta(old_part, part(p.value_cents, st))
            s.add(p)
            summary = edit_summary(p.name, after, before.get("value_cents", 0), p.value_cents, d[2])
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="edit",
                category=BridgeCategory.EDIT,
                at=at,
                prospect_id=p.id,
                d=d,
                summary=summary,
                payload={"before": {k: before[k] for k in after}, "after": after},
            )
            return j.result(ev, p, notes)

    def delete(
        self, ref: int | str, *, expected_version: int | None = None, at: datetime | None = None
    ) -> ChangeResult:
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref, include_deleted=expected_version is not None)
            self._may(s, "edit", p)
            notes = self._merge_or_refuse(s, p, expected_version, {WHOLE: None}, at)
            d = delta(part(p.value_cents, s.get_one(Stage, p.stage_id)), (0, 0, 0))
            p.deleted_at = at
            s.add(p)
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="delete",
                category=BridgeCategory.DELETE,
                at=at,
                prospect_id=p.id,
                d=d,
                summary=f"{p.name}: deleted, {ev_phrase(d[2])}",
                payload={},
            )
            return j.result(ev, p, notes)

    def _target(self, s: Session, p: Prospect, target: StageRef) -> Stage:
        """The stage a move goes to: a word ('next', 'back', 'won', 'lost', 'reopen') or a stage."""
        if isinstance(target, str):
            word = target.strip().lower()
            current = s.get_one(Stage, p.stage_id)
            # A stage taken off the ladder still has its place among the rungs for a prospect left on it.
            stages = self._stages(s)
            rungs = stages if current in stages else [*stages, current]
            if word in _NEXT_WORDS:
                if current.kind != OPEN:
                    raise DomainError(f"{p.name}: is {current.name}; reopen it before advancing", field="stage")
                return next_rung(rungs, current.id) or self._kind_stage(s, WON)
            if word in _BACK_WORDS:
                if current.kind != OPEN:
                    return self._reopen_stage(s, p)
                lower = previous_rung(rungs, current.id)
                if lower is None:
                    raise DomainError(f"{p.name}: is already on the first stage, {current.name}", field="stage")
                return lower
            if word in ("won", "win"):
                return self._kind_stage(s, WON)
            if word in ("lost", "lose"):
                return self._kind_stage(s, LOST)
            if word in ("reopen",):
                if current.kind == OPEN:  # (it went to the stage it came from, or the last open one)
                    raise DomainError(f"{p.name}: is open already, on {current.name}", field="stage")
                return self._reopen_stage(s, p)
        return self._stage(s, target)

    def _reopen_stage(self, s: Session, p: Prospect) -> Stage:
        """The open stage a closed prospect was on before it closed, else the last open stage. The
        last move away from an open stage, not the last move: Won then Lost leaves Won before it."""
        q = (
            select(col(StageChange.from_stage_id))
            .join(Stage, col(Stage.id) == col(StageChange.from_stage_id))
            .where(col(StageChange.prospect_id) == p.id, col(Stage.kind) == OPEN)
            .order_by(col(StageChange.changed_at).desc(), col(StageChange.id).desc())
            .limit(1)
        )
        prior = s.scalar(q)
        if prior is not None:
            st = s.get(Stage, prior)
            if st is not None and st.kind == OPEN and not st.archived:
                return st
        opens = self._open_stages(s)
        if not opens:
            raise DomainError("stage: the ladder has no open stage", field="stage")
        return opens[-1]

    def move(
        self,
        ref: int | str,
        target: StageRef,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
        at: datetime | None = None,
    ) -> ChangeResult:
        """Move a prospect: 'next', 'back', 'won', 'lost', 'reopen' or a stage (name, id)."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref, include_deleted=expected_version is not None)
            return self._move(s, p, target, reason=reason, expected_version=expected_version, at=at)

    def _move(
        self,
        s: Session,
        p: Prospect,
        target: StageRef | Stage,
        *,
        reason: str | None,
        expected_version: int | None,
        at: datetime,
        undoes: ChangeEvent | None = None,
        category: str | None = None,
    ) -> ChangeResult:
        """Move `p` in session `s` and journal it; also used by undo and by removing a stage."""
        self._may(s, "edit", p)
        # a move made on an older version is refused when the prospect moved since (it is never
        # applied to the stage it left), merged with any other change
        notes = self._merge_or_refuse(s, p, expected_version, {STAGE: None}, at)
        old = s.get_one(Stage, p.stage_id)
        new = target if isinstance(target, Stage) else self._target(s, p, target)
        if new.id == old.id:
            raise DomainError(f"{p.name}: is already on {old.name}", field="stage")
        reason = clean_text(reason, field="reason", max_len=500) or None
        before = {"closed_on": p.closed_on.isoformat() if p.closed_on else None, "lost_reason": p.lost_reason}
        d = delta(part(p.value_cents, old), part(p.value_cents, new))
        p.stage_id = id_of(new)
        p.last_touch_at = at
        if new.kind == OPEN:
            p.closed_on = None
            p.lost_reason = None
        else:
            p.closed_on = at.date()
            p.lost_reason = reason if new.kind == LOST else None
        s.add(p)
        summary = move_summary(p.name, old.name, new.name, d[2])
        if undoes is not None:
            summary = "undo " + summary
        j = SessionJournal(s, self.who)
        ev = j.event(
            action="move",
            at=at,
            prospect_id=p.id,
            stage_id=new.id,
            d=d,
            summary=summary,
            undoes=undoes,
            category=category or move_category(old.kind, old.position, new.kind, new.position),
            payload={"from": old.id, "to": new.id, "before": before},
        )
        j.stage_change(
            prospect=p, at=at, from_stage=old, to_stage=new, reason=reason if undoes is None else "undo", event=ev
        )
        s.flush()
        return j.result(ev, p, notes)

    def win(self, ref: int | str, **kw: Any) -> ChangeResult:
        return self.move(ref, "won", **kw)

    def lose(self, ref: int | str, reason: str | None = None, **kw: Any) -> ChangeResult:
        return self.move(ref, "lost", reason=reason, **kw)

    def reopen(self, ref: int | str, stage: str | int | None = None, **kw: Any) -> ChangeResult:
        p = self.get(ref)
        if p.stage_kind == OPEN:
            raise DomainError(f"{p.name}: is open already, on {p.stage_name}", field="stage")
        return self.move(p.id, stage if stage is not None else "reopen", **kw)

    def log_activity(
        self,
        ref: int | str,
        kind: str,
        text: str,
        *,
        when: datetime | date | str | None = None,
        at: datetime | None = None,
    ) -> ChangeResult:
        at = at or clock.now()
        kind = (kind or "note").strip().lower()
        if kind not in ACTIVITY_KINDS:
            raise DomainError(
                f"activity: {kind!r} is not a kind of contact; use {', '.join(ACTIVITY_KINDS)}", field="kind"
            )
        body = clean_text(text, field="activity", max_len=20_000)
        timed = isinstance(when, datetime)
        if isinstance(when, str):  # a day, and optionally its time: 'yesterday 14:30', '2pm'
            when, timed = parse_past_moment(when, at)
        if isinstance(when, date) and not isinstance(when, datetime):
            when = datetime.combine(when, at.time())  # a day only: logged now's time keeps the order
        occurred = when if isinstance(when, datetime) else at
        if occurred > at:
            raise DomainError("activity date: a contact point cannot be in the future", field="when")
        with self._write() as s, s.begin():
            p = self._prospect(s, ref)
            self._may(s, "edit", p)
            a = Activity(
                prospect_id=id_of(p),
                occurred_at=occurred,
                kind=kind,
                text=body,
                who=self.who,
                created_at=at,
                timed=timed,
            )
            s.add(a)
            p.last_touch_at = max(p.last_touch_at, occurred)
            p.updated_at = at
            p.version += 1
            s.add(p)
            s.flush()
            restage(s, activity_id=a.id)  # the stage it happened on
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="activity",
                category=BridgeCategory.ACTIVITY,
                at=at,
                prospect_id=p.id,
                summary=f"{p.name}: {kind} logged",
                payload={"activity_id": a.id},
            )
            return j.result(ev, p, activity_id=a.id)

    def set_follow_up(
        self,
        ref: int | str,
        when: date | str | None,
        *,
        time: str | None = None,
        note: str | None = None,
        at: datetime | None = None,
        expected_version: int | None = None,
        moved: bool = False,
    ) -> ChangeResult:
        """Set the next follow-up: a day, optionally its time of day and what it is about. A new
        follow-up replaces the old one whole (time and note included); none clears all three.
        `moved`: only its day changes (the list's `f`, which asks only "when?"): the time and the
        note it had stay, rather than being cleared by a key that never showed them."""
        at = at or clock.now()
        new = clean_fields({"follow_up": when})["next_follow_up"]
        hhmm = parse_time(time, field="follow-up time") if new is not None else None
        about = (clean_text(note, field="follow-up note", max_len=500) or None) if new is not None else None
        with self._write() as s, s.begin():
            p = self._prospect(s, ref, include_deleted=expected_version is not None)
            self._may(s, "edit", p)
            before = {
                "next_follow_up": p.next_follow_up,
                "follow_up_time": p.follow_up_time,
                "follow_up_note": p.follow_up_note,
            }
            wanted: dict[str, Any] = {"next_follow_up": new}
            if moved and new is not None:
                hhmm, about = p.follow_up_time, p.follow_up_note
            else:  # (a colleague's time or note since, for the same day, is not overwritten unsaid)
                wanted.update(follow_up_time=hhmm, follow_up_note=about)
            notes = self._merge_or_refuse(s, p, expected_version, wanted, at)
            p.next_follow_up, p.follow_up_time, p.follow_up_note = new, hhmm, about
            s.add(p)
            label = (new.isoformat() + (f" {hhmm}" if hhmm else "")) if new else "none"
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="follow_up",
                category=BridgeCategory.FOLLOWUP,
                at=at,
                prospect_id=p.id,
                summary=f"{p.name}: next follow-up {label}",
                payload={
                    "before": before,
                    "after": {"next_follow_up": new, "follow_up_time": hhmm, "follow_up_note": about},
                },
            )
            return j.result(ev, p, notes)


__all__ = [
    "ACTIVITY_KINDS",
    "MAX_CUSTOM_FIELDS",
    "ProspectWrites",
    "StageInfo",
    "StaleChange",
    "clean_custom",
    "clean_fields",
    "event_entry",
]
