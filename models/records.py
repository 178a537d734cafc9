"""Plain records the store returns, with no database library behind them.

The app's first screen is built from these before SQLAlchemy is even imported, so this module
(like models.kpi and models.pipeline_view) imports nothing heavier than the standard library.
"""

from __future__ import annotations

import getpass
import json
import os
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from . import ladder
from .values import format_percent

if TYPE_CHECKING:
    from .journal_read import JournalEntry
    from .tables import Prospect, Stage


def current_user() -> str:
    who = os.environ.get("EVPIPE_USER")
    if who:
        return who
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name (some containers)
        return "unknown"


@dataclass(frozen=True)
class StageInfo:
    id: int
    name: str
    position: int
    probability_bp: int
    kind: str
    stale_days: int

    @property
    def is_open(self) -> bool:
        return self.kind == ladder.OPEN

    @property
    def percent(self) -> str:
        return format_percent(self.probability_bp)

    @classmethod
    def of(cls, s: Stage) -> StageInfo:
        assert s.id is not None, "a stage read from the database has its id"
        return cls(s.id, s.name, s.position, s.probability_bp, s.kind, s.stale_days)


@dataclass(frozen=True)
class ProspectInfo:
    id: int
    name: str
    company: str
    contact_name: str
    email: str
    phone: str
    notes: str
    custom: dict[str, str]
    value_cents: int
    stage_id: int
    stage_name: str
    stage_kind: str
    probability_bp: int
    expected_month: str | None
    next_follow_up: date | None
    owner: str
    created_at: datetime
    updated_at: datetime
    last_touch_at: datetime
    closed_on: date | None
    lost_reason: str | None
    needs_review: bool
    version: int
    source: str | None = None
    external_key: str | None = None
    deleted: bool = False
    follow_up_time: str | None = None  # "14:30"
    follow_up_note: str | None = None

    @property
    def ev_micros(self) -> int:
        return ladder.ev_micros(self.value_cents, self.stage_kind, self.probability_bp)

    @classmethod
    def of(cls, p: Prospect, stage: Stage | StageInfo) -> ProspectInfo:
        assert p.id is not None, "a prospect read from the database, or flushed, has its id"
        return cls(
            id=p.id,
            name=p.name,
            company=p.company,
            contact_name=p.contact_name,
            email=p.email,
            phone=p.phone,
            notes=p.notes,
            custom=json.loads(p.custom_json or "{}"),
            value_cents=p.value_cents,
            stage_id=p.stage_id,
            stage_name=stage.name,
            stage_kind=stage.kind,
            probability_bp=stage.probability_bp,
            expected_month=p.expected_month,
            next_follow_up=p.next_follow_up,
            owner=p.owner,
            created_at=p.created_at,
            updated_at=p.updated_at,
            last_touch_at=p.last_touch_at,
            closed_on=p.closed_on,
            lost_reason=p.lost_reason,
            needs_review=p.needs_review,
            version=p.version,
            source=p.source,
            external_key=p.external_key,
            deleted=p.deleted_at is not None,
            follow_up_time=p.follow_up_time,
            follow_up_note=p.follow_up_note,
        )


@dataclass(frozen=True)
class ActivityInfo:
    id: int
    prospect_id: int
    occurred_at: datetime
    kind: str
    text: str
    who: str
    timed: bool = False  # occurred_at's time of day was given (else only its day)


@dataclass(frozen=True)
class StageChangeInfo:
    id: int
    prospect_id: int
    changed_at: datetime
    who: str
    from_stage: str | None
    to_stage: str
    value_cents: int
    from_probability_bp: int | None
    to_probability_bp: int
    reason: str | None

    @property
    def ev_added_micros(self) -> int:
        """The EV this move added (negative when it took EV away)."""
        return ladder.ev_moved(self.value_cents, self.from_probability_bp, self.to_probability_bp)


#: The journal entry an undo is to reverse, where its caller knows it (the app's saver: the change
#: `u` was pressed after, still on its way then and saved since as this entry); None: this user's
#: last change, whichever it is when the undo runs (models/store_undo.py).
UNDO_EXPECTED: ContextVar[int | None] = ContextVar("evpipe_undo_expected", default=None)


@dataclass(frozen=True)
class ChangeResult:
    """What a change did: its journal entry, the prospect after it, and its effect on the KPIs."""

    event_id: int
    summary: str
    category: str
    prospect: ProspectInfo | None = None
    d_count: int = 0
    d_tv_cents: int = 0
    d_ev_micros: int = 0
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PageData:
    """Everything a prospect's page shows: the prospect, its contact points, its stage history and
    the ladder."""

    prospect: ProspectInfo
    activities: list[ActivityInfo]
    history: list[StageChangeInfo]
    ladder: list[StageInfo]
    #: Every change to the prospect, newest first (models.journal_read), as many as the page shows.
    changes: list[JournalEntry] = field(default_factory=list)

    @property
    def stage(self) -> StageInfo | None:
        return next((s for s in self.ladder if s.id == self.prospect.stage_id), None)

    def next_stage(self) -> StageInfo | None:
        """The stage `>` would move to: the next open rung, or the won stage from the last one."""
        if self.prospect.stage_kind != ladder.OPEN:
            return None
        return ladder.next_rung(self.ladder, self.prospect.stage_id)
