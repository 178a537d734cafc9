"""Undo: reverse a user's last change by recording the reverse change. Undo never erases.

Each action the store journals has a handler, `_undo_<action>`; the reverse entry keeps the bridge
category of what it undoes, so the bridge nets out.

Undo never erases a colleague's work either: a change is reversed only while the fields it touched
still hold what it left. When someone changed them since, the undo is refused (`UndoBlocked`),
naming that change and its author; `undo(skip=True)` then records that the blocked change is
skipped (a "skip" entry, no effect on the KPIs) and undoes the one before it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlmodel import Session, col

from . import clock
from .changes_feed import PROBABILITY, WHOLE, describe, fields_of, same_value
from .errors import DomainError, NothingToUndo, UndoBlocked
from .journal import NO_DELTA, BridgeCategory, SessionJournal, delta, ev_phrase, negate, undone_move
from .records import UNDO_EXPECTED, ChangeResult
from .store_base import part, stage_totals
from .store_ladder import LadderWrites, probability_ev_change
from .store_prospects import event_entry
from .tables import Activity, ChangeEvent, Prospect, Stage, StageChange, id_of
from .values import format_percent

Payload = dict[str, Any]

#: How a refused undo tells the user to go past it.
SKIP_HINT = "press U to skip it and undo your earlier changes (evpipe undo --skip)"


def _last_touch(s: Session, prospect_id: int) -> datetime | None:
    """A prospect's last touch worked out again from what it holds (`Prospect.last_touch_at`:
    the latest of its contact points not taken back and its stage changes, its add included; an
    undone move and its undo are none: models/journal.py `undone_move`)."""
    activity = s.scalar(
        select(func.max(col(Activity.occurred_at))).where(
            col(Activity.prospect_id) == prospect_id, col(Activity.voided_at).is_(None)
        )
    )
    change = s.scalar(
        select(func.max(col(StageChange.changed_at))).where(
            col(StageChange.prospect_id) == prospect_id, text(f"NOT {undone_move('stage_change')}")
        )
    )
    return max((t for t in (activity, change) if t is not None), default=None)


class Undo(LadderWrites):
    """Undo of every prospect and ladder write."""

    def _blocked(self, s: Session, ev: ChangeEvent, field: str, at: datetime) -> UndoBlocked:
        """The refusal of undoing `ev` because `field` (WHOLE: the prospect) was changed since:
        names the latest change of it after `ev` and who made it."""
        q = select(ChangeEvent).where(col(ChangeEvent.id) > ev.id)
        if ev.prospect_id is not None:
            q = q.where(col(ChangeEvent.prospect_id) == ev.prospect_id)
        else:
            q = q.where(col(ChangeEvent.stage_id) == ev.stage_id, col(ChangeEvent.prospect_id).is_(None))
        names = self._stage_names(s)
        said = "someone changed it since"
        for later in s.scalars(q.order_by(col(ChangeEvent.id).desc())):
            entry = event_entry(later)
            touched = fields_of(entry)
            if field in touched or WHOLE in touched or (field == WHOLE and (touched or later.action == "activity")):
                wanted = [field] if field in touched else None
                said = describe(entry, wanted, stage_names=names, today=at.date())
                break
        assert ev.id is not None
        return UndoBlocked(f"undo: not undone, {said} since your change ({ev.summary}); {SKIP_HINT}", ev.id, said)

    def skip_undo(self, *, at: datetime | None = None) -> ChangeResult:
        """Mark this user's last undoable change as skipped (it stays as it is), so that undo
        goes on to the change before it."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            ev = self._last_undoable(s)
            if ev is None:
                raise NothingToUndo(f"undo: {self.who} has no change left to undo")
            expected = UNDO_EXPECTED.get()
            if expected is not None and ev.id is not None and ev.id > expected:
                raise NothingToUndo(
                    "undo: nothing undone: your last change is now one made elsewhere (another window or "
                    "the command line) after the one you meant; press u again to undo it"
                )
            if expected is not None and ev.id != expected:
                raise NothingToUndo("undo: nothing undone: the change you meant is not one undo reverses")
            self._after_an_import(s, ev)
            self._after_a_target(s, ev)
            j = SessionJournal(s, self.who)
            new = j.event(
                action="skip",
                category=ev.category,
                at=at,
                prospect_id=ev.prospect_id,
                stage_id=ev.stage_id,
                summary=f"skipped undoing: {ev.summary}",
                payload={},
                undoes=ev,
            )
            p = s.get(Prospect, ev.prospect_id) if ev.prospect_id is not None else None
            return j.result(new, p)

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

    def undo(self, *, at: datetime | None = None, skip: bool = False) -> ChangeResult:
        """Reverse this user's last change that is not undone yet, by recording the reverse.
        `skip`: first skip that change (see `skip_undo`) and undo the one before it."""
        at = at or clock.now()
        if skip:
            skipped = self.skip_undo(at=at)
            if self.last_undoable() is None:
                return skipped
            try:
                undone = self.undo(at=at)
            except UndoBlocked as exc:
                refused = UndoBlocked(f"{skipped.summary}; {exc}", exc.event_id, exc.later)
                refused.also = [skipped.event_id]  # the skip was saved: live screens do not show it back
                raise refused from exc
            # the skip is this user's change too (live screens do not show it back)
            return replace(undone, extra={**undone.extra, "also": [skipped.event_id]})
        with self._write(ladder=True) as s, s.begin():
            ev = self._last_undoable(s)
            if ev is None:
                raise NothingToUndo(f"undo: {self.who} has no change left to undo")
            self._after_an_import(s, ev)
            self._after_a_target(s, ev)
            self._may_undo(s, ev)
            payload = json.loads(ev.payload or "{}")
            handler = getattr(self, f"_undo_{ev.action}", None)
            if handler is None:  # pragma: no cover - every action has a handler
                raise DomainError(f"undo: cannot undo {ev.action}")
            result: ChangeResult = handler(s, ev, payload, at)
            return result

    def _after_a_target(self, s: Session, ev: ChangeEvent) -> None:
        """A monthly target changed after `ev` (targets are not journalled): undoing `ev` would
        reverse an older change of a prospect while the target change the user meant stays."""
        from .targets import changed_after

        if ev.id is not None and changed_after(s.connection(), self.who, ev.id):
            raise NothingToUndo(
                "undo: your last change was to a monthly target, which undo does not reverse (set it again "
                "with `evpipe target`, or with t on the forecast screen); the changes before it stay as they are"
            )

    def _after_an_import(self, s: Session, ev: ChangeEvent) -> None:
        """Undo goes back through this user's changes in order, and an import is one it does not
        take apart: when one came after `ev`, undoing (or skipping) `ev` would reach behind the
        import, and the user would see an older change go while the import they meant stays."""
        later = s.scalar(
            select(ChangeEvent)
            .where(col(ChangeEvent.who) == self.who, col(ChangeEvent.action) == "import", col(ChangeEvent.id) > ev.id)
            .order_by(col(ChangeEvent.id).desc())
            .limit(1)
        )
        if later is not None:
            # named by its file: its entries carry the dates the file gives (a created date, a close
            # date), not the day it was imported
            source = json.loads(later.payload or "{}").get("source")
            which = f" of {source}" if isinstance(source, str) and source else ""
            raise NothingToUndo(
                f"undo: your last change was an import{which}, which undo does not take apart; the changes "
                "before it stay as they are (change or delete what the import wrote one by one)"
            )

    def _may_undo(self, s: Session, ev: ChangeEvent) -> None:
        """Undoing is changing again: a prospect's change needs the right to edit it (a rep's own),
        a ladder change an owner (models/roles.py)."""
        if ev.prospect_id is not None:
            self._may(s, "edit", s.get_one(Prospect, ev.prospect_id))
        else:
            self._may(s, "ladder")

    def _undo_create(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        p = s.get_one(Prospect, ev.prospect_id)
        others = select(col(ChangeEvent.id)).where(
            col(ChangeEvent.prospect_id) == p.id,
            col(ChangeEvent.id) > ev.id,
            col(ChangeEvent.who) != self.who,
            col(ChangeEvent.undone_by_id).is_(None),
        )
        # (a contact point someone else logged on it too: taking the add back took their call with it)
        if p.deleted_at is not None or s.scalar(others.limit(1)) is not None:
            raise self._blocked(s, ev, WHOLE, at)  # taking the add back would erase what came after
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
            payload={"deleted": True},
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
            payload={"deleted": False},
            undoes=ev,
        )
        return j.result(new, p)

    def _undo_edit(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        p = s.get_one(Prospect, ev.prospect_id)
        for k, v in payload["after"].items():
            if not same_value(getattr(p, k), v):
                raise self._blocked(s, ev, k, at)
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
            raise self._blocked(s, ev, WHOLE, at)
        if p.stage_id != payload["to"]:
            raise self._blocked(s, ev, "stage", at)
        back = s.get_one(Stage, payload["from"])
        result = self._move(s, p, back, reason=None, expected_version=None, at=at, undoes=ev, category=ev.category)
        # as it was: closed when it was, last touched when it was (neither move touched it; the
        # journal put it back on its stage since it entered it: models/journal.py `undone_move`)
        before = payload.get("before", {})
        p.closed_on = date.fromisoformat(before["closed_on"]) if before.get("closed_on") else None
        p.lost_reason = before.get("lost_reason")
        p.last_touch_at = _last_touch(s, id_of(p)) or p.last_touch_at
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
        if p.last_touch_at == a.occurred_at:  # the contact point taken back was its last touch
            s.flush()
            p.last_touch_at = min(p.last_touch_at, _last_touch(s, id_of(p)) or p.last_touch_at)
            p.updated_at = at
            p.version += 1
            s.add(p)
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
        if st.probability_bp != payload["after"]:
            raise self._blocked(s, ev, PROBABILITY, at)
        _, total = stage_totals(s, st.id)
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
        count, _ = stage_totals(s, st.id)
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
        for k, v in payload["after"].items():
            if getattr(st, k) != v:
                raise self._blocked(s, ev, k, at)
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

    @staticmethod
    def _removal_move(s: Session, removal: ChangeEvent, prospect_id: int, stage_id: int) -> ChangeEvent | None:
        """The move off `stage_id` that the stage's `removal` made of this prospect, when it is the
        prospect's latest move (None: it moved since, or was not moved by it)."""
        latest = s.scalar(
            select(ChangeEvent)
            .where(col(ChangeEvent.prospect_id) == prospect_id, col(ChangeEvent.action) == "move")
            .order_by(col(ChangeEvent.id).desc())
            .limit(1)
        )
        if (
            latest is None
            or latest.id is None
            or removal.id is None
            or latest.id > removal.id
            or latest.category != BridgeCategory.LADDER.value
            or latest.undone_by_id is not None
            or json.loads(latest.payload or "{}").get("from") != stage_id
        ):
            return None
        return latest

    def _undo_stage_remove(self, s: Session, ev: ChangeEvent, payload: Payload, at: datetime) -> ChangeResult:
        st = s.get_one(Stage, ev.stage_id)
        st.archived = False
        s.add(st)
        s.flush()
        for pid in payload.get("moved", []):
            p = s.get_one(Prospect, pid)
            if p.deleted_at is None and p.stage_id == payload["to"]:
                # its move back undoes the removal's move when that is still its latest: then, as for
                # an undone move, it is on the stage since it entered it and last touched when it was
                # (models/journal.py `undone_move`); moved since, and back, it is an ordinary move
                moved = self._removal_move(s, ev, pid, id_of(st))
                self._move(
                    s, p, st, reason=None, expected_version=None, at=at, undoes=moved, category=BridgeCategory.LADDER
                )
                if moved is not None:
                    p.last_touch_at = _last_touch(s, pid) or p.last_touch_at
                    s.add(p)
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
