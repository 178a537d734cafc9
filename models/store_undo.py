"""Undo: reverse a user's last change by recording the reverse change. Undo never erases.

Each action the store journals has a handler, `_undo_<action>`; the reverse entry keeps the bridge
category of what it undoes, so the bridge nets out."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from . import clock
from .errors import DomainError, NothingToUndo
from .journal import NO_DELTA, BridgeCategory, SessionJournal, delta, ev_phrase, negate
from .records import ChangeResult
from .store_base import part
from .store_ladder import LadderWrites, probability_ev_change
from .tables import Activity, ChangeEvent, Prospect, Stage
from .values import format_percent

Payload = dict[str, Any]


class Undo(LadderWrites):
    """Undo of every prospect and ladder write."""

    def last_undoable(self) -> ChangeEvent | None:
        with self._read() as s:
            return self._last_undoable(s)

    def _last_undoable(self, s: Session) -> ChangeEvent | None:
        q = (
            select(ChangeEvent)
            .where(
                col(ChangeEvent.who) == self.who,
                col(ChangeEvent.undone_by_id).is_(None),
                col(ChangeEvent.undoes_id).is_(None),
                col(ChangeEvent.action) != "import",
                # moves made by removing a stage are undone with the removal, not one by one
                ~((col(ChangeEvent.action) == "move") & (col(ChangeEvent.category) == BridgeCategory.LADDER.value)),
            )
            .order_by(col(ChangeEvent.id).desc())
            .limit(1)
        )
        return s.scalar(q)

    def undo(self, *, at: datetime | None = None) -> ChangeResult:
        """Reverse this user's last change that is not undone yet, by recording the reverse."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            ev = self._last_undoable(s)
            if ev is None:
                raise NothingToUndo(f"undo: {self.who} has no change left to undo")
            self._may_undo(s, ev)
            payload = json.loads(ev.payload or "{}")
            handler = getattr(self, f"_undo_{ev.action}", None)
            if handler is None:  # pragma: no cover - every action has a handler
                raise DomainError(f"undo: cannot undo {ev.action}")
            result: ChangeResult = handler(s, ev, payload, at)
            return result

    def _may_undo(self, s: Session, ev: ChangeEvent) -> None:
        """Undoing is changing again: a prospect's change needs the right to edit it (a rep's own),
        a ladder change an owner (models/roles.py)."""
        if ev.prospect_id is not None:
            self._may(s, "edit", s.get_one(Prospect, ev.prospect_id))
        else:
            self._may(s, "ladder")

    def _undo_create(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        p = s.get_one(Prospect, ev.prospect_id)
        if p.deleted_at is not None:
            raise DomainError(f"undo: {p.name} is deleted already")
        d = negate(part(p.value_cents, s.get_one(Stage, p.stage_id)))
        p.deleted_at = at
        p.version += 1
        p.updated_at = at
        s.add(p)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=ev.category,
            at=at,
            prospect_id=p.id,
            d=d,
            summary=f"undo add of {p.name}, {ev_phrase(d[2])}",
            payload={},
            undoes=ev,
        )
        return j.result(new, p)

    def _undo_delete(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        p = s.get_one(Prospect, ev.prospect_id)
        d = part(p.value_cents, s.get_one(Stage, p.stage_id))
        p.deleted_at = None
        p.version += 1
        p.updated_at = at
        s.add(p)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=ev.category,
            at=at,
            prospect_id=p.id,
            d=d,
            summary=f"undo delete: {p.name} is back, {ev_phrase(d[2])}",
            payload={},
            undoes=ev,
        )
        return j.result(new, p)

    def _undo_edit(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        p = s.get_one(Prospect, ev.prospect_id)
        st = s.get_one(Stage, p.stage_id)
        old_part = part(p.value_cents, st) if p.deleted_at is None else NO_DELTA
        before = payload["before"]
        for k, v in before.items():
            if k == "next_follow_up" and v:
                v = date.fromisoformat(v)
            setattr(p, k, v)
        new_part = part(p.value_cents, st) if p.deleted_at is None else NO_DELTA
        p.version += 1
        p.updated_at = at
        s.add(p)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=ev.category,
            at=at,
            prospect_id=p.id,
            d=delta(old_part, new_part),
            summary=f"undo edit of {p.name}",
            payload={"before": payload["after"], "after": before},
            undoes=ev,
        )
        return j.result(new, p)

    _undo_follow_up = _undo_edit

    def _undo_move(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        p = s.get_one(Prospect, ev.prospect_id)
        if p.deleted_at is not None:
            raise DomainError(f"undo: {p.name} has been deleted; undo that first")
        if p.stage_id != payload["to"]:
            raise DomainError(f"undo: {p.name} has moved again since; move it by hand")
        back = s.get_one(Stage, payload["from"])
        result = self._move(s, p, back, reason=None, expected_version=None, at=at, undoes=ev, category=ev.category)
        before = payload.get("before", {})
        p.closed_on = date.fromisoformat(before["closed_on"]) if before.get("closed_on") else None
        p.lost_reason = before.get("lost_reason")
        if back.archived:
            back.archived = False
            s.add(back)
        s.add(p)
        s.flush()
        return SessionJournal(s, self.who).result(s.get_one(ChangeEvent, result.event_id), p)

    def _undo_activity(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        a = s.get_one(Activity, payload["activity_id"])
        a.voided_at = at
        s.add(a)
        p = s.get_one(Prospect, ev.prospect_id)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=ev.category,
            at=at,
            prospect_id=p.id,
            summary=f"undo: {a.kind} on {p.name} removed from the log",
            payload={},
            undoes=ev,
        )
        return j.result(new, p)

    def _undo_probability(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        st = s.get_one(Stage, ev.stage_id)
        _, total = self._stage_totals(s, st.id)
        before = st.probability_bp
        bp = payload["before"]
        d_ev = probability_ev_change(total, st.kind, before, bp)
        st.probability_bp = bp
        s.add(st)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=BridgeCategory.PROB,
            at=at,
            stage_id=st.id,
            d=(0, 0, d_ev),
            summary=f"undo: {st.name} back to {format_percent(bp)}, {ev_phrase(d_ev)}",
            payload={"before": before, "after": bp},
            undoes=ev,
        )
        return j.result(new, None)

    def _undo_stage_add(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        st = s.get_one(Stage, ev.stage_id)
        count, _ = self._stage_totals(s, st.id)
        if count:
            raise DomainError(f"undo: {count} prospects are on {st.name} now; remove the stage instead")
        st.archived = True
        s.add(st)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=BridgeCategory.LADDER,
            at=at,
            stage_id=st.id,
            summary=f"undo: stage {st.name} taken off",
            payload={},
            undoes=ev,
        )
        return j.result(new, None)

    def _undo_stage_edit(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        st = s.get_one(Stage, ev.stage_id)
        for k, v in payload["before"].items():
            setattr(st, k, v)
        s.add(st)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=BridgeCategory.LADDER,
            at=at,
            stage_id=st.id,
            summary=f"undo: stage {st.name} as before",
            payload={},
            undoes=ev,
        )
        return j.result(new, None)

    def _undo_stage_order(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        for sid, pos in payload["before"].items():
            st = s.get_one(Stage, int(sid))
            st.position = pos
            s.add(st)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=BridgeCategory.LADDER,
            at=at,
            stage_id=ev.stage_id,
            summary="undo: ladder order as before",
            payload={},
            undoes=ev,
        )
        return j.result(new, None)

    def _undo_stage_remove(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        st = s.get_one(Stage, ev.stage_id)
        st.archived = False
        s.add(st)
        s.flush()
        for pid in payload.get("moved", []):
            p = s.get_one(Prospect, pid)
            if p.deleted_at is None and p.stage_id == payload["to"]:
                self._move(s, p, st, reason=None, expected_version=None, at=at, category=BridgeCategory.LADDER)
        j = SessionJournal(s, self.who)
        new = j.event(
            action="undo",
            category=BridgeCategory.LADDER,
            at=at,
            stage_id=st.id,
            summary=f"undo: stage {st.name} back on the ladder",
            payload={},
            undoes=ev,
        )
        return j.result(new, None)
