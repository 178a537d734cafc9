"""The store's ladder writes: a stage's probability, adding, renaming, reordering and removing
stages. Each is one transaction, journalled by models/journal.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from . import clock
from .errors import Conflict, DomainError
from .journal import BridgeCategory, SessionJournal, probability_summary
from .ladder import LOST, OPEN, ev_micros, open_rungs, won_rung
from .records import ChangeResult, StageInfo
from .store_base import StageRef, stage_totals
from .store_prospects import ProspectWrites
from .tables import STAGE_KINDS, ChangeEvent, Prospect, Stage
from .values import clean_text, format_percent, parse_probability


def ladder_warnings(stages: Iterable[StageInfo | Stage]) -> list[str]:
    """A ladder whose open probabilities do not rise from rung to rung is allowed, but warned about."""
    stages = list(stages)
    opens = open_rungs(stages)
    warnings = []
    for lower, higher in zip(opens, opens[1:]):
        if higher.probability_bp <= lower.probability_bp:
            warnings.append(
                f"{higher.name} ({format_percent(higher.probability_bp)}) is not above "
                f"{lower.name} ({format_percent(lower.probability_bp)}): probabilities should rise "
                "up the ladder"
            )
    won = won_rung(stages)
    if opens and won is not None and won.probability_bp < opens[-1].probability_bp:
        warnings.append(f"{won.name} is below {opens[-1].name}: a won sale should be the likeliest")
    return warnings


def probability_ev_change(total_cents: int, kind: str, before_bp: int, after_bp: int) -> int:
    """EV micros moved by changing a stage's probability, for prospects worth `total_cents` on it."""
    return ev_micros(total_cents, kind, after_bp) - ev_micros(total_cents, kind, before_bp)


def check_stale_days(days: object) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
        raise DomainError("stale days: a whole number of days from 0 (never stale) to 3650", field="stale_days")
    return days


class LadderWrites(ProspectWrites):
    """Every change to the ladder (removing a stage moves its prospects, so this builds on
    the prospect writes)."""

    def ladder_warnings(self) -> list[str]:
        return ladder_warnings(self.ladder())

    def probability_effect(self, stage: StageRef, percent: object) -> tuple[int, int]:
        """(prospects on the stage, EV micros the change would move), without changing anything."""
        bp = parse_probability(percent)
        with self._read() as s:
            st = self._stage(s, stage)
            count, total = stage_totals(s, st.id)
            return count, probability_ev_change(total, st.kind, st.probability_bp, bp)

    def set_probability(
        self, stage: StageRef, percent: object, *, expected_bp: int | None = None, at: datetime | None = None
    ) -> ChangeResult:
        """Set a stage's probability. `expected_bp`: the probability the user saw when they chose
        the new one (the app's confirmation says the EV it moves from there); a colleague's change
        made since is refused, never overwritten."""
        at = at or clock.now()
        bp = parse_probability(percent)
        with self._write(ladder=True) as s, s.begin():
            self._may(s, "ladder")
            st = self._stage(s, stage)
            if expected_bp is not None and st.probability_bp != expected_bp:
                raise self._probability_moved(s, st, expected_bp)
            if st.kind == LOST and bp != 0:
                raise DomainError(f"{st.name}: a lost stage's probability is 0%", field="probability")
            if bp == st.probability_bp:
                raise DomainError(f"{st.name}: is already {format_percent(bp)}", field="probability")
            count, total = stage_totals(s, st.id)
            before = st.probability_bp
            d_ev = probability_ev_change(total, st.kind, before, bp)
            st.probability_bp = bp
            s.add(st)
            summary = probability_summary(st.name, before, bp, count, d_ev)
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="probability",
                category=BridgeCategory.PROB,
                at=at,
                stage_id=st.id,
                d=(0, 0, d_ev),
                summary=summary,
                payload={"before": before, "after": bp},
            )
            s.flush()
            return j.result(ev, None, warnings=ladder_warnings(self._stages(s)))

    @staticmethod
    def _probability_moved(s: Session, st: Stage, expected_bp: int) -> Conflict:
        """The refusal of a probability chosen against `expected_bp` when the stage holds another:
        who set it, and when."""
        q = (
            select(col(ChangeEvent.who), col(ChangeEvent.at))
            .where(col(ChangeEvent.stage_id) == st.id, col(ChangeEvent.category) == BridgeCategory.PROB)
            .order_by(col(ChangeEvent.id).desc())
            .limit(1)
        )
        last = s.execute(q).first()
        by = f"{last.who} set it to" if last is not None else "it was set to"
        when = f" at {last.at:%H:%M}" if last is not None else ""
        return Conflict(
            f"{st.name}: {by} {format_percent(st.probability_bp)}{when}, after you read "
            f"{format_percent(expected_bp)}; nothing changed: look, then set it again",
            field="probability",
        )

    def add_stage(
        self,
        name: str,
        percent: object,
        *,
        after: str | int | None = None,
        kind: str = OPEN,
        stale_days: int = 14,
        at: datetime | None = None,
    ) -> ChangeResult:
        at = at or clock.now()
        name = clean_text(name, field="stage name", max_len=80, required=True)
        bp = parse_probability(percent)
        if kind not in STAGE_KINDS:
            raise DomainError(f"kind: {kind!r} is not open, won or lost", field="kind")
        if kind != OPEN:
            raise DomainError("kind: a ladder has one won and one lost stage; new stages are open", field="kind")
        check_stale_days(stale_days)
        with self._write(ladder=True) as s, s.begin():
            self._may(s, "ladder")
            stages = self._stages(s)
            if any(st.name.casefold() == name.casefold() for st in stages):
                raise DomainError(f"stage name: {name!r} is on the ladder already", field="name")
            opens = open_rungs(stages)
            if after is None:
                position = (opens[-1].position + 1) if opens else 1
            else:
                anchor = self._stage(s, after)
                if anchor.kind != OPEN:
                    raise DomainError("position: new stages go among the open stages", field="after")
                position = anchor.position + 1
            for st in stages:
                if st.position >= position:
                    st.position += 1
                    s.add(st)
            new = Stage(name=name, position=position, probability_bp=bp, kind=OPEN, stale_days=stale_days)
            s.add(new)
            s.flush()
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="stage_add",
                category=BridgeCategory.LADDER,
                at=at,
                stage_id=new.id,
                summary=f"stage {name} added at {format_percent(bp)}",
                payload={},
            )
            return j.result(ev, None, warnings=ladder_warnings(self._stages(s)))

    def update_stage(
        self, stage: StageRef, *, name: str | None = None, stale_days: int | None = None, at: datetime | None = None
    ) -> ChangeResult:
        at = at or clock.now()
        with self._write(ladder=True) as s, s.begin():
            self._may(s, "ladder")
            st = self._stage(s, stage)
            before: dict[str, str | int] = {}
            after: dict[str, str | int] = {}
            if name is not None:
                new_name = clean_text(name, field="stage name", max_len=80, required=True)
                if new_name != st.name:
                    clash = [x for x in self._stages(s) if x.id != st.id and x.name.casefold() == new_name.casefold()]
                    if clash:
                        raise DomainError(f"stage name: {new_name!r} is on the ladder already", field="name")
                    before["name"], after["name"] = st.name, new_name
            if stale_days is not None and stale_days != st.stale_days:
                check_stale_days(stale_days)
                before["stale_days"], after["stale_days"] = st.stale_days, stale_days
            if not after:
                raise DomainError(f"{st.name}: nothing to change", field=None)
            for k, v in after.items():
                setattr(st, k, v)
            s.add(st)
            label = f"stage {before.get('name', st.name)}"
            summary = (
                label
                + (f" renamed {after['name']}" if "name" in after else "")
                + (f" stale after {after['stale_days']} days" if "stale_days" in after else "")
            )
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="stage_edit",
                category=BridgeCategory.LADDER,
                at=at,
                stage_id=st.id,
                summary=summary,
                payload={"before": before, "after": after},
            )
            return j.result(ev, None)

    def reorder_stage(self, stage: StageRef, offset: int, *, at: datetime | None = None) -> ChangeResult:
        """Move an open stage `offset` rungs up (+) or down (-) among the open stages."""
        at = at or clock.now()
        with self._write(ladder=True) as s, s.begin():
            self._may(s, "ladder")
            st = self._stage(s, stage)
            if st.kind != OPEN:
                raise DomainError(f"{st.name}: won and lost stages stay at the top of the ladder", field="stage")
            opens = self._open_stages(s)
            i = next(i for i, x in enumerate(opens) if x.id == st.id)
            j = max(0, min(len(opens) - 1, i + offset))
            if i == j:
                raise DomainError(f"{st.name}: cannot move further {'up' if offset > 0 else 'down'}", field="stage")
            before = {str(x.id): x.position for x in opens}
            positions = [x.position for x in opens]
            opens.insert(j, opens.pop(i))
            for x, pos in zip(opens, positions):
                x.position = pos
                s.add(x)
            journal = SessionJournal(s, self.who)
            ev = journal.event(
                action="stage_order",
                category=BridgeCategory.LADDER,
                at=at,
                stage_id=st.id,
                summary=f"stage {st.name} moved {'up' if offset > 0 else 'down'}",
                payload={"before": before, "after": {str(x.id): x.position for x in opens}},
            )
            return journal.result(ev, None, warnings=ladder_warnings(self._stages(s)))

    def remove_stage(
        self, stage: StageRef, *, move_to: str | int | None = None, at: datetime | None = None
    ) -> ChangeResult:
        """Take a stage off the ladder. Its prospects must go somewhere: `move_to` names the open stage
        they move to (each move recorded as a stage change); without one, a stage that still has
        prospects is refused. History keeps pointing at the removed stage, which stays archived."""
        at = at or clock.now()
        with self._write(ladder=True) as s, s.begin():
            self._may(s, "ladder")
            st = self._stage(s, stage)
            if st.kind != OPEN:
                raise DomainError(f"{st.name}: the won and lost stages cannot be removed", field="stage")
            if len(self._open_stages(s)) == 1:
                raise DomainError(f"{st.name}: is the only open stage; add another first", field="stage")
            count, _ = stage_totals(s, st.id)
            target = None
            if count:
                if move_to is None:
                    raise DomainError(
                        f"{st.name}: {count} prospects are on it; say which stage they move to", field="move_to"
                    )
                target = self._stage(s, move_to)
                if target.id == st.id or target.kind != OPEN:
                    raise DomainError("move to: choose another open stage", field="move_to")
            moved = []
            d_ev = 0
            if target is not None:
                rows = s.scalars(
                    select(Prospect).where(col(Prospect.stage_id) == st.id, col(Prospect.deleted_at).is_(None))
                )
                for p in rows:
                    r = self._move(
                        s,
                        p,
                        target,
                        reason=f"stage {st.name} removed",
                        expected_version=None,
                        at=at,
                        category=BridgeCategory.LADDER,
                    )
                    moved.append(p.id)
                    d_ev += r.d_ev_micros
            st.archived = True
            s.add(st)
            summary = f"stage {st.name} removed" + (
                f", {len(moved)} prospects moved to {target.name}" if moved and target is not None else ""
            )
            j = SessionJournal(s, self.who)
            ev = j.event(
                action="stage_remove",
                category=BridgeCategory.LADDER,
                at=at,
                stage_id=st.id,
                summary=summary,
                payload={"moved": moved, "to": target.id if target else None},
            )
            return j.result(ev, None, warnings=ladder_warnings(self._stages(s)), moved_ev_micros=d_ev)
