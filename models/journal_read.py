"""Reading the journal: who did what, when, and what it did to the KPIs.

The journal (models/journal.py writes it) is read newest first, in pages: `before_id` continues
where the last page stopped, so a screen's work per page does not grow with the journal. Filters:
who made the change, one prospect, a start (the review's `7d`, `2w` or a date: models.review's
`parse_since`), and the prospects one owner holds (a rep who sees only their own).

An edit's entry says which fields changed from what to what (`value 1,000 -> 1,200`, `owner sam ->
priya`), read from what undo keeps of it; long texts are cut to a few words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from .tables import ChangeEvent, Prospect, pk
from .values import exact_money, format_amount, money_str

#: A page of the journal, at most.
PAGE = 200
_SHOWN = 40  # the characters of a text field's old and new value that an entry shows

_FIELD_NAMES = {
    "value_cents": "value",
    "expected_month": "month",
    "next_follow_up": "follow-up",
    "contact_name": "contact",
    "custom_json": "custom fields",
    "needs_review": "needs review",
    "external_key": "external key",
}


def field_label(key: str) -> str:
    return _FIELD_NAMES.get(key, key.replace("_", " "))


def _shown(key: str, value: Any) -> str:
    if value is None or value == "":
        return "none"
    if key == "value_cents" and isinstance(value, int):
        return format_amount(value)
    if key == "custom_json":
        try:
            return ", ".join(f"{k}={v}" for k, v in json.loads(value).items())[:_SHOWN] or "none"
        except (ValueError, AttributeError):
            return "?"
    text = " ".join(str(value).split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


@dataclass(frozen=True)
class FieldChange:
    field: str  # as a person names it: "value", "owner", "follow-up"
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.field} {self.before} -> {self.after}"


@dataclass(frozen=True)
class JournalEntry:
    id: int
    at: datetime
    who: str
    action: str
    category: str
    prospect_id: int | None
    prospect_name: str | None
    prospect_owner: str | None
    summary: str
    d_count: int
    d_tv_cents: int
    d_ev_micros: int
    undone: bool
    undoes_id: int | None
    changes: tuple[FieldChange, ...] = field(default=())

    @property
    def what(self) -> str:
        """The entry in words: its summary, and for an edit the fields from what to what."""
        if not self.changes:
            return self.summary
        name = f"{self.prospect_name}: " if self.prospect_name else ""
        undo = "undo, " if self.action == "undo" else ""
        return name + undo + "; ".join(str(c) for c in self.changes)

    @property
    def moves_kpis(self) -> bool:
        return bool(self.d_count or self.d_tv_cents or self.d_ev_micros)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "who": self.who,
            "action": self.action,
            "category": self.category,
            "prospect_id": self.prospect_id,
            "prospect": self.prospect_name,
            "summary": self.summary,
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in self.changes],
            "count": self.d_count,
            "tv": money_str(self.d_tv_cents),
            "ev": _exact_ev(self.d_ev_micros),
            "undone": self.undone,
            "undoes": self.undoes_id,
        }


def _exact_ev(micros: int) -> str:
    return exact_money(micros)


def _changes(action: str, payload: str) -> tuple[FieldChange, ...]:
    if action not in ("edit", "follow_up", "undo"):
        return ()
    try:
        data = json.loads(payload or "{}")
    except ValueError:
        return ()
    before, after = data.get("before"), data.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ()
    return tuple(
        FieldChange(field_label(k), _shown(k, before.get(k)), _shown(k, after.get(k)))
        for k in after
        if k in before and before.get(k) != after.get(k)  # a follow-up's unchanged time or note is no change
    )


def journal(
    engine: Engine,
    *,
    who: str | None = None,
    prospect_id: int | None = None,
    since: datetime | date | None = None,
    owner: str | None = None,
    before_id: int | None = None,
    limit: int = PAGE,
) -> list[JournalEntry]:
    """The journal newest first: at most `limit` entries older than `before_id`, made by `who`, on
    prospect `prospect_id`, at or after `since`, on prospects `owner` holds now."""
    e = ChangeEvent
    by = aliased(ChangeEvent)  # the entry that undid (or skipped) each one
    q = (
        select(
            pk(e.id),
            col(e.at),
            col(e.who),
            col(e.action),
            col(e.category),
            col(e.prospect_id),
            col(e.summary),
            col(e.d_count),
            col(e.d_tv_cents),
            col(e.d_ev_micros),
            col(e.undone_by_id),
            col(e.undoes_id),
            col(e.payload),
            col(Prospect.name),
            col(Prospect.owner),
            col(by.action),
        )
        .outerjoin(Prospect, col(Prospect.id) == col(e.prospect_id))
        .outerjoin(by, col(by.id) == col(e.undone_by_id))
        .order_by(col(e.id).desc())
        .limit(max(1, limit))
    )
    if who is not None:
        q = q.where(col(e.who) == who)
    if prospect_id is not None:
        q = q.where(col(e.prospect_id) == prospect_id)
    if since is not None:
        q = q.where(col(e.at) >= since)
    if owner is not None:
        q = q.where(col(Prospect.owner) == owner)
    if before_id is not None:
        q = q.where(col(e.id) < before_id)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        JournalEntry(
            id=eid,
            at=at,
            who=who_,
            action=action,
            category=category,
            prospect_id=pid,
            prospect_name=name,
            prospect_owner=owner_,
            summary=summary,
            d_count=int(dc),
            d_tv_cents=int(dtv),
            d_ev_micros=int(dev),
            # a change skipped by `undo --skip` stays as it was: it was shown "(undone)"
            undone=undone_by is not None and undone_how != "skip",
            undoes_id=undoes,
            changes=_changes(action, payload),
        )
        for (
            eid,
            at,
            who_,
            action,
            category,
            pid,
            summary,
            dc,
            dtv,
            dev,
            undone_by,
            undoes,
            payload,
            name,
            owner_,
            undone_how,
        ) in rows
    ]


def journal_authors(engine: Engine) -> list[str]:
    """Everyone who has made a change, by name."""
    with engine.connect() as conn:
        names = conn.execute(select(col(ChangeEvent.who)).distinct()).scalars().all()
    return sorted((n for n in names if n), key=str.casefold)


__all__ = ["PAGE", "FieldChange", "JournalEntry", "field_label", "journal", "journal_authors"]
