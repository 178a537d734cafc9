"""Store operations: every change a user makes, each one transaction returning plain objects.

Every write records a `ChangeEvent` in the journal with its exact effect on the KPIs
(count, TV in cents, EV in micros) and what undo needs. Every stage move also writes a
`StageChange` (history). Undo never erases: it records the reverse change.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from . import clock
from .db import writer
from .errors import Conflict, DomainError, NothingToUndo, NotFound
from .records import (
    ActivityInfo,
    ChangeResult,
    ProspectInfo,
    StageChangeInfo,
    StageInfo,
    current_user,
)
from .tables import STAGE_KINDS, Activity, ChangeEvent, Prospect, Stage, StageChange
from .values import (
    FULL_BP,
    clean_text,
    format_money,
    format_percent,
    parse_follow_up,
    parse_money,
    parse_past_date,
    parse_month,
    parse_probability,
)

ACTIVITY_KINDS = ("call", "email", "meeting", "note")
MAX_CUSTOM_FIELDS = 50

#: The terms of the EV bridge, in the order a review shows them.
CATEGORIES = ("new", "advance", "win", "regress", "lose", "reopen", "edit", "prob", "delete")


# ---------------------------------------------------------------- helpers


def _kpi_part(value_cents: int, stage: Stage | StageInfo) -> tuple[int, int, int]:
    """(count, tv_cents, ev_micros) a prospect contributes on `stage`."""
    if stage.kind == "lost":
        return 0, 0, 0
    return 1, value_cents, value_cents * stage.probability_bp


def _move_category(old: Stage, new: Stage) -> str:
    if new.kind == "won":
        return "win"
    if new.kind == "lost":
        return "lose"
    if old.kind != "open":
        return "reopen"
    return "advance" if new.position > old.position else "regress"


def _ev_phrase(d_ev_micros: int) -> str:
    return "EV " + format_money(d_ev_micros, micros=True, signed=True, decimals=False)


def ladder_warnings(stages: Iterable[StageInfo | Stage]) -> list[str]:
    """A ladder whose open probabilities do not rise from rung to rung is allowed, but warned about."""
    opens = sorted((s for s in stages if s.kind == "open"), key=lambda s: s.position)
    warnings = []
    for lower, higher in zip(opens, opens[1:]):
        if higher.probability_bp <= lower.probability_bp:
            warnings.append(
                f"{higher.name} ({format_percent(higher.probability_bp)}) is not above "
                f"{lower.name} ({format_percent(lower.probability_bp)}): probabilities should rise "
                "up the ladder"
            )
    won = [s for s in stages if s.kind == "won"]
    if opens and won and won[0].probability_bp < opens[-1].probability_bp:
        warnings.append(f"{won[0].name} is below {opens[-1].name}: a won sale should be the likeliest")
    return warnings


class Store:
    """All reads and writes of prospects and the ladder, for one user."""

    def __init__(self, engine: Engine, who: str | None = None) -> None:
        self.engine = engine
        self.who = who or current_user()

    # ------------------------------------------------------------ sessions

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _write(self) -> Session:
        return Session(writer(self.engine), expire_on_commit=False)

    # ------------------------------------------------------------ ladder reads

    def ladder(self, *, include_archived: bool = False) -> list[StageInfo]:
        with self._read() as s:
            q = select(Stage).order_by(Stage.position, Stage.id)
            if not include_archived:
                q = q.where(Stage.archived == False)  # noqa: E712
            return [StageInfo.of(x) for x in s.scalars(q)]

    def ladder_warnings(self) -> list[str]:
        return ladder_warnings(self.ladder())

    def stage(self, ref: str | int | StageInfo) -> StageInfo:
        with self._read() as s:
            return StageInfo.of(self._stage(s, ref))

    def _stages(self, s: Session) -> list[Stage]:
        q = select(Stage).where(Stage.archived == False).order_by(Stage.position, Stage.id)  # noqa: E712
        return list(s.scalars(q))

    def _stage(self, s: Session, ref: str | int | StageInfo | Stage) -> Stage:
        if isinstance(ref, (StageInfo, Stage)):
            ref = ref.id
        if isinstance(ref, int):
            found = s.get(Stage, ref)
            if found is None or found.archived:
                raise NotFound(f"stage: there is no stage number {ref}", field="stage")
            return found
        name = str(ref).strip()
        stages = self._stages(s)
        for st in stages:
            if st.name.casefold() == name.casefold():
                return st
        names = ", ".join(st.name for st in stages)
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise NotFound(f"stage: {shown!r} is not on the ladder; the stages are {names}", field="stage")

    def _first_stage(self, s: Session) -> Stage:
        opens = [st for st in self._stages(s) if st.kind == "open"]
        if not opens:
            raise DomainError("stage: the ladder has no open stage", field="stage")
        return opens[0]

    def _kind_stage(self, s: Session, kind: str) -> Stage:
        for st in self._stages(s):
            if st.kind == kind:
                return st
        raise DomainError(f"stage: the ladder has no {kind} stage", field="stage")

    # ------------------------------------------------------------ prospect reads

    def get(self, ref: int | str, *, include_deleted: bool = False) -> ProspectInfo:
        with self._read() as s:
            p = self._prospect(s, ref, include_deleted=include_deleted)
            return ProspectInfo.of(p, s.get(Stage, p.stage_id))

    def _prospect(self, s: Session, ref: int | str, *, include_deleted: bool = False) -> Prospect:
        text = str(ref).strip()
        if isinstance(ref, int) or text.isdigit() or (text.startswith("#") and text[1:].isdigit()):
            pid = int(text.lstrip("#"))
            p = s.get(Prospect, pid)
            if p is None or (p.deleted_at is not None and not include_deleted):
                raise NotFound(f"prospect: there is no prospect #{pid}", field="prospect")
            if not isinstance(ref, int) and not text.startswith("#"):
                # A name made of digits wins over an id when it exists.
                named = self._by_name(s, text)
                if named:
                    return named[0] if len(named) == 1 else p
            return p
        named = self._by_name(s, text)
        if not named:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise NotFound(
                f"prospect: no prospect is named {shown!r}; `evpipe list` shows names and ids",
                field="prospect",
            )
        if len(named) > 1:
            ids = ", ".join(f"#{p.id}" for p in named[:10])
            raise DomainError(f"prospect: {len(named)} prospects are named {text!r} ({ids}); use the id", field="prospect")
        return named[0]

    def _by_name(self, s: Session, name: str) -> list[Prospect]:
        q = select(Prospect).where(
            func.lower(Prospect.name) == name.lower(), Prospect.deleted_at.is_(None)
        )
        return list(s.scalars(q.limit(11)))

    def activities(self, prospect_id: int) -> list[ActivityInfo]:
        with self._read() as s:
            q = (
                select(Activity)
                .where(Activity.prospect_id == prospect_id, Activity.voided_at.is_(None))
                .order_by(Activity.occurred_at.desc(), Activity.id.desc())
            )
            return [ActivityInfo(a.id, a.prospect_id, a.occurred_at, a.kind, a.text, a.who) for a in s.scalars(q)]

    def history(self, prospect_id: int) -> list[StageChangeInfo]:
        with self._read() as s:
            names = {st.id: st.name for st in s.scalars(select(Stage))}
            q = (
                select(StageChange)
                .where(StageChange.prospect_id == prospect_id)
                .order_by(StageChange.changed_at, StageChange.id)
            )
            return [
                StageChangeInfo(
                    c.id, c.prospect_id, c.changed_at, c.who,
                    names.get(c.from_stage_id) if c.from_stage_id else None,
                    names[c.to_stage_id], c.value_cents, c.from_probability_bp, c.to_probability_bp, c.reason,
                )
                for c in s.scalars(q)
            ]

    # ------------------------------------------------------------ journal

    def _journal(
        self,
        s: Session,
        *,
        action: str,
        category: str,
        at: datetime,
        summary: str,
        payload: dict[str, Any],
        prospect_id: int | None = None,
        stage_id: int | None = None,
        delta: tuple[int, int, int] = (0, 0, 0),
        undoes: ChangeEvent | None = None,
    ) -> ChangeEvent:
        ev = ChangeEvent(
            at=at,
            who=self.who,
            action=action,
            category=category,
            prospect_id=prospect_id,
            stage_id=stage_id,
            d_count=delta[0],
            d_tv_cents=delta[1],
            d_ev_micros=delta[2],
            summary=summary[:500],
            payload=json.dumps(payload, default=str),
            undoes_id=undoes.id if undoes else None,
        )
        s.add(ev)
        s.flush()
        if undoes is not None:
            undoes.undone_by_id = ev.id
            s.add(undoes)
        return ev

    def _result(self, s: Session, ev: ChangeEvent, p: Prospect | None, warnings=(), **extra) -> ChangeResult:
        info = ProspectInfo.of(p, s.get(Stage, p.stage_id)) if p is not None else None
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

    @staticmethod
    def _bump(s: Session, p: Prospect, expected_version: int | None, at: datetime) -> None:
        """Optimistic concurrency: the row must still be the version the caller read."""
        if expected_version is not None and p.version != expected_version:
            raise Conflict(
                f"{p.name}: changed by someone else since you opened it (now version {p.version}); "
                "reload and try again",
                field="version",
            )
        p.version += 1
        p.updated_at = at

    # ------------------------------------------------------------ prospect writes

    def _clean_fields(self, s: Session, fields: dict[str, Any]) -> dict[str, Any]:
        """Validate every field given; raise on the first problem, before anything is written."""
        out: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "name":
                out[key] = clean_text(value, field="name", max_len=200, required=True)
            elif key in ("company", "contact_name", "email"):
                out[key] = clean_text(value, field=key.replace("_", " "), max_len=200)
            elif key == "phone":
                out[key] = clean_text(value, field="phone", max_len=80)
            elif key == "owner":
                out[key] = clean_text(value, field="owner", max_len=80)
            elif key == "notes":
                out[key] = clean_text(value, field="notes", max_len=20_000)
            elif key == "value":
                out["value_cents"] = parse_money(value)
            elif key == "value_cents":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise DomainError("value: must be a whole number of cents, 0 or more", field="value")
                out[key] = parse_money(Decimal(value) / 100)
            elif key in ("month", "expected_month"):
                out["expected_month"] = None if value in (None, "") else parse_month(value)
            elif key in ("follow_up", "next_follow_up"):
                out["next_follow_up"] = parse_follow_up(value)
            elif key == "custom":
                out["custom_json"] = json.dumps(self._clean_custom(value), ensure_ascii=False, sort_keys=True)
            elif key == "needs_review":
                out[key] = bool(value)
            elif key in ("source", "external_key"):
                out[key] = None if value is None else clean_text(value, field=key, max_len=200)
            else:
                raise DomainError(f"{key}: is not a field of a prospect", field=key)
        return out

    @staticmethod
    def _clean_custom(value: Any) -> dict[str, str]:
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

    def add(
        self,
        name: str,
        value: object,
        stage: str | int | StageInfo | None = None,
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
            fields = self._clean_fields(
                s,
                dict(
                    name=name, value=value, company=company, contact_name=contact_name, email=email,
                    phone=phone, notes=notes, custom=custom, owner=self.who if owner is None else owner,
                    month=month, follow_up=follow_up, needs_review=needs_review, source=source,
                    external_key=external_key,
                ),
            )
            st = self._stage(s, stage) if stage not in (None, "") else self._first_stage(s)
            p = Prospect(
                **fields, stage_id=st.id, created_at=at, updated_at=at, last_touch_at=at,
            )
            if st.kind != "open":
                p.closed_on = closed_on or at.date()
            if st.kind == "lost":
                p.lost_reason = clean_text(lost_reason, field="reason", max_len=500) or None
            s.add(p)
            s.flush()
            delta = _kpi_part(p.value_cents, st)
            ev = self._journal(
                s, action="create", category="new", at=at, prospect_id=p.id, stage_id=st.id, delta=delta,
                summary=f"{p.name}: added on {st.name} at {format_money(p.value_cents, decimals=False)}, "
                + _ev_phrase(delta[2]),
                payload={},
            )
            s.add(StageChange(
                prospect_id=p.id, changed_at=at, who=self.who, from_stage_id=None, to_stage_id=st.id,
                value_cents=p.value_cents, from_probability_bp=None, to_probability_bp=st.probability_bp,
                reason="created", event_id=ev.id,
            ))
            return self._result(s, ev, p)

    def edit(self, ref: int | str, *, expected_version: int | None = None, at: datetime | None = None,
             **changes: Any) -> ChangeResult:
        """Change any of: name, company, contact_name, email, phone, notes, custom, value, month,
        follow_up, owner, needs_review. The stage changes through `move`."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref)
            fields = self._clean_fields(s, changes)
            before = {k: getattr(p, k) for k in fields}
            after = {k: v for k, v in fields.items() if before[k] != v}
            if not after:
                raise DomainError(f"{p.name}: nothing to change", field=None)
            self._bump(s, p, expected_version, at)
            st = s.get(Stage, p.stage_id)
            old_part = _kpi_part(p.value_cents, st)
            for k, v in after.items():
                setattr(p, k, v)
            new_part = _kpi_part(p.value_cents, st)
            delta = tuple(n - o for n, o in zip(new_part, old_part))
            s.add(p)
            what = ", ".join(k.replace("_cents", "").replace("_json", "").replace("_", " ") for k in after)
            summary = f"{p.name}: {what} changed"
            if "value_cents" in after:
                summary += f", value {format_money(before['value_cents'], decimals=False)} -> " \
                           f"{format_money(p.value_cents, decimals=False)}, {_ev_phrase(delta[2])}"
            ev = self._journal(
                s, action="edit", category="edit", at=at, prospect_id=p.id, delta=delta, summary=summary,
                payload={"before": {k: before[k] for k in after}, "after": after},
            )
            return self._result(s, ev, p)

    def delete(self, ref: int | str, *, expected_version: int | None = None,
               at: datetime | None = None) -> ChangeResult:
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref)
            self._bump(s, p, expected_version, at)
            st = s.get(Stage, p.stage_id)
            part = _kpi_part(p.value_cents, st)
            p.deleted_at = at
            s.add(p)
            delta = (-part[0], -part[1], -part[2])
            ev = self._journal(
                s, action="delete", category="delete", at=at, prospect_id=p.id, delta=delta,
                summary=f"{p.name}: deleted, {_ev_phrase(delta[2])}", payload={},
            )
            return self._result(s, ev, p)

    def _target(self, s: Session, p: Prospect, target: str | int | StageInfo) -> Stage:
        current = s.get(Stage, p.stage_id)
        stages = self._stages(s)
        opens = [st for st in stages if st.kind == "open"]
        if isinstance(target, str):
            word = target.strip().lower()
            if word in ("next", "up", ">", "advance"):
                if current.kind != "open":
                    raise DomainError(f"{p.name}: is {current.name}; reopen it before advancing", field="stage")
                higher = [st for st in opens if st.position > current.position]
                return higher[0] if higher else self._kind_stage(s, "won")
            if word in ("back", "down", "<", "prev", "previous"):
                if current.kind != "open":
                    return self._reopen_stage(s, p)
                lower = [st for st in opens if st.position < current.position]
                if not lower:
                    raise DomainError(f"{p.name}: is already on the first stage, {current.name}", field="stage")
                return lower[-1]
            if word in ("won", "win"):
                return self._kind_stage(s, "won")
            if word in ("lost", "lose"):
                return self._kind_stage(s, "lost")
            if word in ("reopen",):
                return self._reopen_stage(s, p)
        return self._stage(s, target)

    def _reopen_stage(self, s: Session, p: Prospect) -> Stage:
        """The open stage a closed prospect was on before it closed, else the last open stage."""
        q = (
            select(StageChange.from_stage_id)
            .where(StageChange.prospect_id == p.id, StageChange.to_stage_id == p.stage_id)
            .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
            .limit(1)
        )
        prior = s.scalar(q)
        if prior is not None:
            st = s.get(Stage, prior)
            if st is not None and st.kind == "open" and not st.archived:
                return st
        opens = [st for st in self._stages(s) if st.kind == "open"]
        if not opens:
            raise DomainError("stage: the ladder has no open stage", field="stage")
        return opens[-1]

    def move(
        self,
        ref: int | str,
        target: str | int | StageInfo,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
        at: datetime | None = None,
        _undoes: ChangeEvent | None = None,
    ) -> ChangeResult:
        """Move a prospect: 'next', 'back', 'won', 'lost', 'reopen' or a stage (name, id)."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref)
            return self._move(s, p, target, reason=reason, expected_version=expected_version, at=at)

    def _move(self, s: Session, p: Prospect, target, *, reason, expected_version, at,
              undoes: ChangeEvent | None = None, category: str | None = None) -> ChangeResult:
        old = s.get(Stage, p.stage_id)
        new = target if isinstance(target, Stage) else self._target(s, p, target)
        if new.id == old.id:
            raise DomainError(f"{p.name}: is already on {old.name}", field="stage")
        reason = clean_text(reason, field="reason", max_len=500) or None
        self._bump(s, p, expected_version, at)
        before = {"closed_on": p.closed_on.isoformat() if p.closed_on else None, "lost_reason": p.lost_reason}
        old_part = _kpi_part(p.value_cents, old)
        new_part = _kpi_part(p.value_cents, new)
        delta = tuple(n - o for n, o in zip(new_part, old_part))
        p.stage_id = new.id
        p.last_touch_at = at
        if new.kind == "open":
            p.closed_on = None
            p.lost_reason = None
        else:
            p.closed_on = at.date()
            p.lost_reason = reason if new.kind == "lost" else None
        s.add(p)
        summary = f"{p.name}: {old.name} -> {new.name}, {_ev_phrase(delta[2])}"
        if undoes is not None:
            summary = "undo " + summary
        ev = self._journal(
            s, action="move", category=category or _move_category(old, new), at=at, prospect_id=p.id,
            stage_id=new.id, delta=delta, summary=summary, undoes=undoes,
            payload={"from": old.id, "to": new.id, "before": before},
        )
        s.add(StageChange(
            prospect_id=p.id, changed_at=at, who=self.who, from_stage_id=old.id, to_stage_id=new.id,
            value_cents=p.value_cents, from_probability_bp=old.probability_bp,
            to_probability_bp=new.probability_bp, reason=reason if undoes is None else "undo", event_id=ev.id,
        ))
        s.flush()
        return self._result(s, ev, p)

    def win(self, ref: int | str, **kw: Any) -> ChangeResult:
        return self.move(ref, "won", **kw)

    def lose(self, ref: int | str, reason: str | None = None, **kw: Any) -> ChangeResult:
        return self.move(ref, "lost", reason=reason, **kw)

    def reopen(self, ref: int | str, stage: str | int | None = None, **kw: Any) -> ChangeResult:
        p = self.get(ref)
        if p.stage_kind == "open":
            raise DomainError(f"{p.name}: is open already, on {p.stage_name}", field="stage")
        return self.move(p.id, stage if stage is not None else "reopen", **kw)

    def log_activity(self, ref: int | str, kind: str, text: str, *, when: datetime | date | str | None = None,
                     at: datetime | None = None) -> ChangeResult:
        at = at or clock.now()
        kind = (kind or "note").strip().lower()
        if kind not in ACTIVITY_KINDS:
            raise DomainError(f"activity: {kind!r} is not a kind of contact; use {', '.join(ACTIVITY_KINDS)}",
                              field="kind")
        body = clean_text(text, field="activity", max_len=20_000)
        if isinstance(when, str) and when.strip():
            when = parse_past_date(when)
        if isinstance(when, date) and not isinstance(when, datetime):
            when = datetime.combine(when, at.time())
        occurred = when or at
        if occurred > at:
            raise DomainError("activity date: a contact point cannot be in the future", field="when")
        with self._write() as s, s.begin():
            p = self._prospect(s, ref)
            a = Activity(prospect_id=p.id, occurred_at=occurred, kind=kind, text=body, who=self.who, created_at=at)
            s.add(a)
            p.last_touch_at = max(p.last_touch_at, occurred)
            p.updated_at = at
            p.version += 1
            s.add(p)
            s.flush()
            ev = self._journal(
                s, action="activity", category="activity", at=at, prospect_id=p.id,
                summary=f"{p.name}: {kind} logged", payload={"activity_id": a.id},
            )
            return self._result(s, ev, p, activity_id=a.id)

    def set_follow_up(self, ref: int | str, when: date | str | None, *, at: datetime | None = None,
                      expected_version: int | None = None) -> ChangeResult:
        at = at or clock.now()
        with self._write() as s, s.begin():
            p = self._prospect(s, ref)
            new = self._clean_fields(s, {"follow_up": when})["next_follow_up"]
            before = p.next_follow_up
            self._bump(s, p, expected_version, at)
            p.next_follow_up = new
            s.add(p)
            label = new.isoformat() if new else "none"
            ev = self._journal(
                s, action="follow_up", category="followup", at=at, prospect_id=p.id,
                summary=f"{p.name}: next follow-up {label}",
                payload={"before": {"next_follow_up": before}, "after": {"next_follow_up": new}},
            )
            return self._result(s, ev, p)

    # ------------------------------------------------------------ ladder writes

    def _stage_totals(self, s: Session, stage_id: int) -> tuple[int, int]:
        row = s.execute(
            select(func.count(), func.coalesce(func.sum(Prospect.value_cents), 0)).where(
                Prospect.stage_id == stage_id, Prospect.deleted_at.is_(None)
            )
        ).one()
        return int(row[0]), int(row[1])

    def probability_effect(self, stage: str | int | StageInfo, percent: object) -> tuple[int, int]:
        """(prospects on the stage, EV micros the change would move), without changing anything."""
        bp = parse_probability(percent)
        with self._read() as s:
            st = self._stage(s, stage)
            count, total = self._stage_totals(s, st.id)
            if st.kind == "lost":
                return count, 0
            return count, total * (bp - st.probability_bp)

    def set_probability(self, stage: str | int | StageInfo, percent: object, *, at: datetime | None = None,
                        _undoes: ChangeEvent | None = None) -> ChangeResult:
        at = at or clock.now()
        bp = parse_probability(percent)
        with self._write() as s, s.begin():
            st = self._stage(s, stage)
            if st.kind == "lost" and bp != 0:
                raise DomainError(f"{st.name}: a lost stage's probability is 0%", field="probability")
            if bp == st.probability_bp:
                raise DomainError(f"{st.name}: is already {format_percent(bp)}", field="probability")
            count, total = self._stage_totals(s, st.id)
            before = st.probability_bp
            d_ev = 0 if st.kind == "lost" else total * (bp - before)
            st.probability_bp = bp
            s.add(st)
            summary = f"{st.name}: {format_percent(before)} -> {format_percent(bp)} on {count} prospects, " \
                      + _ev_phrase(d_ev)
            if _undoes is not None:
                summary = "undo " + summary
            ev = self._journal(
                s, action="probability", category="prob", at=at, stage_id=st.id, delta=(0, 0, d_ev),
                summary=summary, payload={"before": before, "after": bp}, undoes=_undoes,
            )
            s.flush()
            return self._result(s, ev, None, warnings=ladder_warnings(self._stages(s)))

    def add_stage(self, name: str, percent: object, *, after: str | int | None = None, kind: str = "open",
                  stale_days: int = 14, at: datetime | None = None) -> ChangeResult:
        at = at or clock.now()
        name = clean_text(name, field="stage name", max_len=80, required=True)
        bp = parse_probability(percent)
        if kind not in STAGE_KINDS:
            raise DomainError(f"kind: {kind!r} is not open, won or lost", field="kind")
        if kind != "open":
            raise DomainError("kind: a ladder has one won and one lost stage; new stages are open", field="kind")
        self._check_stale_days(stale_days)
        with self._write() as s, s.begin():
            stages = self._stages(s)
            if any(st.name.casefold() == name.casefold() for st in stages):
                raise DomainError(f"stage name: {name!r} is on the ladder already", field="name")
            opens = [st for st in stages if st.kind == "open"]
            if after is None:
                position = (opens[-1].position + 1) if opens else 1
            else:
                anchor = self._stage(s, after)
                if anchor.kind != "open":
                    raise DomainError("position: new stages go among the open stages", field="after")
                position = anchor.position + 1
            for st in stages:
                if st.position >= position:
                    st.position += 1
                    s.add(st)
            new = Stage(name=name, position=position, probability_bp=bp, kind="open", stale_days=stale_days)
            s.add(new)
            s.flush()
            ev = self._journal(
                s, action="stage_add", category="ladder", at=at, stage_id=new.id,
                summary=f"stage {name} added at {format_percent(bp)}", payload={},
            )
            return self._result(s, ev, None, warnings=ladder_warnings(self._stages(s)))

    @staticmethod
    def _check_stale_days(days: object) -> int:
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
            raise DomainError("stale days: a whole number of days from 0 (never stale) to 3650", field="stale_days")
        return days

    def update_stage(self, stage: str | int | StageInfo, *, name: str | None = None,
                     stale_days: int | None = None, at: datetime | None = None,
                     _undoes: ChangeEvent | None = None) -> ChangeResult:
        at = at or clock.now()
        with self._write() as s, s.begin():
            st = self._stage(s, stage)
            before, after = {}, {}
            if name is not None:
                new_name = clean_text(name, field="stage name", max_len=80, required=True)
                if new_name != st.name:
                    clash = [x for x in self._stages(s) if x.id != st.id and x.name.casefold() == new_name.casefold()]
                    if clash:
                        raise DomainError(f"stage name: {new_name!r} is on the ladder already", field="name")
                    before["name"], after["name"] = st.name, new_name
            if stale_days is not None and stale_days != st.stale_days:
                self._check_stale_days(stale_days)
                before["stale_days"], after["stale_days"] = st.stale_days, stale_days
            if not after:
                raise DomainError(f"{st.name}: nothing to change", field=None)
            for k, v in after.items():
                setattr(st, k, v)
            s.add(st)
            label = f"stage {before.get('name', st.name)}"
            summary = label + (f" renamed {after['name']}" if "name" in after else "") + (
                f" stale after {after['stale_days']} days" if "stale_days" in after else "")
            ev = self._journal(
                s, action="stage_edit", category="ladder", at=at, stage_id=st.id, summary=summary,
                payload={"before": before, "after": after}, undoes=_undoes,
            )
            return self._result(s, ev, None)

    def reorder_stage(self, stage: str | int | StageInfo, offset: int, *, at: datetime | None = None) -> ChangeResult:
        """Move an open stage `offset` rungs up (+) or down (-) among the open stages."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            st = self._stage(s, stage)
            if st.kind != "open":
                raise DomainError(f"{st.name}: won and lost stages stay at the top of the ladder", field="stage")
            opens = [x for x in self._stages(s) if x.kind == "open"]
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
            ev = self._journal(
                s, action="stage_order", category="ladder", at=at, stage_id=st.id,
                summary=f"stage {st.name} moved {'up' if offset > 0 else 'down'}",
                payload={"before": before, "after": {str(x.id): x.position for x in opens}},
            )
            return self._result(s, ev, None, warnings=ladder_warnings(self._stages(s)))

    def remove_stage(self, stage: str | int | StageInfo, *, move_to: str | int | None = None,
                     at: datetime | None = None) -> ChangeResult:
        """Take a stage off the ladder. Its prospects must go somewhere: `move_to` names the open stage
        they move to (each move recorded as a stage change); without one, a stage that still has
        prospects is refused. History keeps pointing at the removed stage, which stays archived."""
        at = at or clock.now()
        with self._write() as s, s.begin():
            st = self._stage(s, stage)
            if st.kind != "open":
                raise DomainError(f"{st.name}: the won and lost stages cannot be removed", field="stage")
            opens = [x for x in self._stages(s) if x.kind == "open"]
            if len(opens) == 1:
                raise DomainError(f"{st.name}: is the only open stage; add another first", field="stage")
            count, _ = self._stage_totals(s, st.id)
            target = None
            if count:
                if move_to is None:
                    raise DomainError(
                        f"{st.name}: {count} prospects are on it; say which stage they move to", field="move_to"
                    )
                target = self._stage(s, move_to)
                if target.id == st.id or target.kind != "open":
                    raise DomainError("move to: choose another open stage", field="move_to")
            moved = []
            delta = [0, 0, 0]
            if target is not None:
                rows = s.scalars(select(Prospect).where(Prospect.stage_id == st.id, Prospect.deleted_at.is_(None)))
                for p in rows:
                    r = self._move(s, p, target, reason=f"stage {st.name} removed", expected_version=None, at=at,
                                   category="ladder")
                    moved.append(p.id)
                    delta = [a + b for a, b in zip(delta, (r.d_count, r.d_tv_cents, r.d_ev_micros))]
            st.archived = True
            s.add(st)
            summary = f"stage {st.name} removed" + (f", {len(moved)} prospects moved to {target.name}" if moved else "")
            ev = self._journal(
                s, action="stage_remove", category="ladder", at=at, stage_id=st.id, summary=summary,
                payload={"moved": moved, "to": target.id if target else None},
            )
            return self._result(s, ev, None, warnings=ladder_warnings(self._stages(s)), moved_ev_micros=delta[2])

    # ------------------------------------------------------------ undo

    def last_undoable(self) -> ChangeEvent | None:
        with self._read() as s:
            return self._last_undoable(s)

    def _last_undoable(self, s: Session) -> ChangeEvent | None:
        q = (
            select(ChangeEvent)
            .where(ChangeEvent.who == self.who, ChangeEvent.undone_by_id.is_(None),
                   ChangeEvent.undoes_id.is_(None), ChangeEvent.action != "import",
                   # moves made by removing a stage are undone with the removal, not one by one
                   ~((ChangeEvent.action == "move") & (ChangeEvent.category == "ladder")))
            .order_by(ChangeEvent.id.desc())
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
            payload = json.loads(ev.payload or "{}")
            handler = getattr(self, f"_undo_{ev.action}", None)
            if handler is None:  # pragma: no cover - every action has a handler
                raise DomainError(f"undo: cannot undo {ev.action}")
            return handler(s, ev, payload, at)

    def _undo_create(self, s, ev, payload, at):
        p = s.get(Prospect, ev.prospect_id)
        if p.deleted_at is not None:
            raise DomainError(f"undo: {p.name} is deleted already")
        part = _kpi_part(p.value_cents, s.get(Stage, p.stage_id))
        p.deleted_at = at
        p.version += 1
        p.updated_at = at
        s.add(p)
        delta = (-part[0], -part[1], -part[2])
        new = self._journal(s, action="undo", category=ev.category, at=at, prospect_id=p.id, delta=delta,
                            summary=f"undo add of {p.name}, {_ev_phrase(delta[2])}", payload={}, undoes=ev)
        return self._result(s, new, p)

    def _undo_delete(self, s, ev, payload, at):
        p = s.get(Prospect, ev.prospect_id)
        part = _kpi_part(p.value_cents, s.get(Stage, p.stage_id))
        p.deleted_at = None
        p.version += 1
        p.updated_at = at
        s.add(p)
        new = self._journal(s, action="undo", category=ev.category, at=at, prospect_id=p.id, delta=part,
                            summary=f"undo delete: {p.name} is back, {_ev_phrase(part[2])}", payload={}, undoes=ev)
        return self._result(s, new, p)

    def _undo_edit(self, s, ev, payload, at):
        p = s.get(Prospect, ev.prospect_id)
        st = s.get(Stage, p.stage_id)
        old_part = _kpi_part(p.value_cents, st) if p.deleted_at is None else (0, 0, 0)
        before = payload["before"]
        for k, v in before.items():
            if k == "next_follow_up" and v:
                v = date.fromisoformat(v)
            setattr(p, k, v)
        new_part = _kpi_part(p.value_cents, st) if p.deleted_at is None else (0, 0, 0)
        delta = tuple(n - o for n, o in zip(new_part, old_part))
        p.version += 1
        p.updated_at = at
        s.add(p)
        new = self._journal(s, action="undo", category=ev.category, at=at, prospect_id=p.id, delta=delta,
                            summary=f"undo edit of {p.name}", payload={"before": payload["after"], "after": before},
                            undoes=ev)
        return self._result(s, new, p)

    _undo_follow_up = _undo_edit

    def _undo_move(self, s, ev, payload, at):
        p = s.get(Prospect, ev.prospect_id)
        if p.deleted_at is not None:
            raise DomainError(f"undo: {p.name} has been deleted; undo that first")
        if p.stage_id != payload["to"]:
            raise DomainError(f"undo: {p.name} has moved again since; move it by hand")
        back = s.get(Stage, payload["from"])
        result = self._move(s, p, back, reason=None, expected_version=None, at=at, undoes=ev, category=ev.category)
        before = payload.get("before", {})
        p.closed_on = date.fromisoformat(before["closed_on"]) if before.get("closed_on") else None
        p.lost_reason = before.get("lost_reason")
        if back.archived:
            back.archived = False
            s.add(back)
        s.add(p)
        s.flush()
        return self._result(s, s.get(ChangeEvent, result.event_id), p)

    def _undo_activity(self, s, ev, payload, at):
        a = s.get(Activity, payload["activity_id"])
        a.voided_at = at
        s.add(a)
        p = s.get(Prospect, ev.prospect_id)
        new = self._journal(s, action="undo", category=ev.category, at=at, prospect_id=p.id,
                            summary=f"undo: {a.kind} on {p.name} removed from the log", payload={}, undoes=ev)
        return self._result(s, new, p)

    def _undo_probability(self, s, ev, payload, at):
        st = s.get(Stage, ev.stage_id)
        count, total = self._stage_totals(s, st.id)
        before = st.probability_bp
        bp = payload["before"]
        d_ev = 0 if st.kind == "lost" else total * (bp - before)
        st.probability_bp = bp
        s.add(st)
        new = self._journal(
            s, action="undo", category="prob", at=at, stage_id=st.id, delta=(0, 0, d_ev),
            summary=f"undo: {st.name} back to {format_percent(bp)}, {_ev_phrase(d_ev)}",
            payload={"before": before, "after": bp}, undoes=ev,
        )
        return self._result(s, new, None)

    def _undo_stage_add(self, s, ev, payload, at):
        st = s.get(Stage, ev.stage_id)
        count, _ = self._stage_totals(s, st.id)
        if count:
            raise DomainError(f"undo: {count} prospects are on {st.name} now; remove the stage instead")
        st.archived = True
        s.add(st)
        new = self._journal(s, action="undo", category="ladder", at=at, stage_id=st.id,
                            summary=f"undo: stage {st.name} taken off", payload={}, undoes=ev)
        return self._result(s, new, None)

    def _undo_stage_edit(self, s, ev, payload, at):
        st = s.get(Stage, ev.stage_id)
        for k, v in payload["before"].items():
            setattr(st, k, v)
        s.add(st)
        new = self._journal(s, action="undo", category="ladder", at=at, stage_id=st.id,
                            summary=f"undo: stage {st.name} as before", payload={}, undoes=ev)
        return self._result(s, new, None)

    def _undo_stage_order(self, s, ev, payload, at):
        for sid, pos in payload["before"].items():
            st = s.get(Stage, int(sid))
            st.position = pos
            s.add(st)
        new = self._journal(s, action="undo", category="ladder", at=at, stage_id=ev.stage_id,
                            summary="undo: ladder order as before", payload={}, undoes=ev)
        return self._result(s, new, None)

    def _undo_stage_remove(self, s, ev, payload, at):
        st = s.get(Stage, ev.stage_id)
        st.archived = False
        s.add(st)
        s.flush()
        delta = [0, 0, 0]
        for pid in payload.get("moved", []):
            p = s.get(Prospect, pid)
            if p.deleted_at is None and p.stage_id == payload["to"]:
                r = self._move(s, p, st, reason=None, expected_version=None, at=at, category="ladder")
                delta = [a + b for a, b in zip(delta, (r.d_count, r.d_tv_cents, r.d_ev_micros))]
        new = self._journal(s, action="undo", category="ladder", at=at, stage_id=st.id,
                            summary=f"undo: stage {st.name} back on the ladder", payload={}, undoes=ev)
        return self._result(s, new, None)

    # ------------------------------------------------------------ misc

    def owners(self) -> list[str]:
        with self._read() as s:
            q = select(Prospect.owner).where(Prospect.deleted_at.is_(None)).distinct().order_by(Prospect.owner)
            return [o for o in s.scalars(q)]


__all__ = [
    "ACTIVITY_KINDS", "CATEGORIES", "FULL_BP", "ActivityInfo", "ChangeResult", "ProspectInfo", "StageChangeInfo",
    "StageInfo", "Store", "current_user", "ladder_warnings",
]
