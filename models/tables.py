"""The tables. Alembic owns the schema (see models/migrations); these classes describe it.

Money is integer cents (`*_cents`), probabilities integer basis points of a percent (`*_bp`),
expected value integer micros (`*_micros` = cents x bp). See models/values.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol, cast

from sqlalchemy import BigInteger, DateTime, Index, Table, Text, UniqueConstraint, false, inspect, text
from sqlalchemy.orm import Mapped
from sqlmodel import Field, SQLModel, col

STAGE_KINDS = ("open", "won", "lost")


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy Table of a table model (its `__table__`, which SQLModel's types do not declare)."""
    return cast(Table, inspect(model).local_table)


def pk(column: int | None) -> Mapped[int]:
    """A table's `id` column in a query, say `pk(Stage.id)`: col(), knowing a primary key is never NULL."""
    return cast("Mapped[int]", col(column))


class _HasId(Protocol):
    id: int | None


def id_of(row: _HasId) -> int:
    """The id of a row that SQLite has numbered (it is in the database, or has been flushed)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: it must be flushed first")
    return row.id


class Stage(SQLModel, table=True):
    __tablename__ = "stage"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    position: int
    probability_bp: int
    kind: str = Field(default="open", max_length=8)
    stale_days: int = Field(default=14)
    archived: bool = Field(default=False)


class Prospect(SQLModel, table=True):
    __tablename__ = "prospect"
    __table_args__ = (
        # Covering indexes: the KPI sums read them alone, never the table (models/kpi.py), the
        # expected month included for the KPI period (models/period.py).
        Index("ix_prospect_live_stage_value", "deleted_at", "stage_id", "expected_month", "value_cents"),
        Index("ix_prospect_owner_stage_value", "owner", "deleted_at", "stage_id", "expected_month", "value_cents"),
        # The listing's order within one kind of stage, with every column `evpipe list` shows:
        # the listing and the app's order by month walk the index alone (models/queries.py).
        Index(
            "ix_prospect_listing",
            "deleted_at",
            "expected_month",
            text("lower(name)"),
            "id",
            "name",
            "stage_id",
            "company",
            "value_cents",
            "owner",
            "next_follow_up",
        ),
        Index("ix_prospect_month", "expected_month"),
        Index("ix_prospect_follow_up", "next_follow_up"),
        Index("ix_prospect_external", "source", "external_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    company: str = Field(default="", max_length=200)
    contact_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=80)
    notes: str = Field(default="", sa_type=Text)
    custom_json: str = Field(default="{}", sa_type=Text)
    value_cents: int = Field(sa_type=BigInteger)
    stage_id: int = Field(foreign_key="stage.id")
    expected_month: str | None = Field(default=None, max_length=7)
    next_follow_up: date | None = None
    follow_up_time: str | None = Field(default=None, max_length=5)  # "14:30" (migration 0006)
    follow_up_note: str | None = Field(default=None, max_length=500)
    owner: str = Field(default="", max_length=80)
    created_at: datetime = Field(sa_type=DateTime)
    updated_at: datetime = Field(sa_type=DateTime)
    last_touch_at: datetime = Field(sa_type=DateTime)
    #: When it entered its stage: the moment of its latest stage change (the journal keeps it),
    #: for its time on the stage (models/pace.py) without reading its history.
    stage_entered_at: datetime | None = Field(default=None, sa_type=DateTime)
    closed_on: date | None = None
    lost_reason: str | None = Field(default=None, max_length=500)
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime)
    needs_review: bool = Field(default=False)
    source: str | None = Field(default=None, max_length=200)
    external_key: str | None = Field(default=None, max_length=200)
    version: int = Field(default=1)


class Activity(SQLModel, table=True):
    """A contact point: a dated call, email, meeting or note."""

    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_prospect", "prospect_id", "occurred_at"),
        # a week's contact points, read without the table (the review's activity balance)
        Index("ix_activity_at", "occurred_at", "prospect_id", "stage_id", "voided_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    prospect_id: int = Field(foreign_key="prospect.id")
    occurred_at: datetime = Field(sa_type=DateTime)
    kind: str = Field(default="note", max_length=20)
    text: str = Field(default="", sa_type=Text)
    who: str = Field(default="", max_length=80)
    created_at: datetime = Field(sa_type=DateTime)
    # the rep gave its time of day, not only its day (migration 0006)
    timed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    voided_at: datetime | None = Field(default=None, sa_type=DateTime)
    #: The stage the prospect was on when it happened (models/journal.py, `RESTAGE_SQL`, the one
    #: rule; kept as contact points and stage changes are written; migration 0010). Worked out
    #: from the history, like `StageChange.stay_seconds`: no key of its own (a stage is never
    #: deleted, only archived).
    stage_id: int | None = None


class ChangeEvent(SQLModel, table=True):
    """The journal: one row per change a user made, with its exact effect on the KPIs.

    `category` names the term of the EV bridge the change belongs to (new, advance, win, regress,
    lose, reopen, edit, prob, delete, ladder). `payload` holds what undo needs to reverse it.
    Rows are never edited except to mark them undone.
    """

    __tablename__ = "change_event"
    __table_args__ = (
        Index("ix_change_event_at", "at"),
        Index("ix_change_event_prospect", "prospect_id"),
        Index("ix_change_event_who", "who", "id"),
        # the few entries that undo a move, read without the journal (models/undone.py UNDONE_MOVES_SQL).
        # Partial on both databases: migration 0013 makes it so. Only SQLite's predicate is named here:
        # a `postgresql_` argument makes SQLAlchemy load its PostgreSQL dialect as this module is
        # imported (19 ms of every command's start on SQLite), and Alembic's comparison does not read
        # an index's predicate; tests/test_migrations.py checks the one on PostgreSQL.
        Index("ix_change_event_undoes", "undoes_id", sqlite_where=text("undoes_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=DateTime)
    who: str = Field(default="", max_length=80)
    action: str = Field(max_length=20)
    category: str = Field(max_length=20)
    prospect_id: int | None = Field(default=None, foreign_key="prospect.id")
    stage_id: int | None = Field(default=None, foreign_key="stage.id")
    d_count: int = Field(default=0)
    d_tv_cents: int = Field(default=0, sa_type=BigInteger)
    d_ev_micros: int = Field(default=0, sa_type=BigInteger)
    summary: str = Field(default="", max_length=500)
    payload: str = Field(default="{}", sa_type=Text)
    undoes_id: int | None = Field(default=None, foreign_key="change_event.id")
    undone_by_id: int | None = Field(default=None, foreign_key="change_event.id")


class StageChange(SQLModel, table=True):
    """History: one prospect moving from one stage to another (or created on one)."""

    __tablename__ = "stage_change"
    __table_args__ = (
        Index("ix_stage_change_prospect", "prospect_id", "changed_at"),
        # a week's moves, read without the table (the review's activity balance)
        Index("ix_stage_change_at", "changed_at", "from_stage_id", "to_stage_id", "prospect_id"),
        Index("ix_stage_change_stay", "from_stage_id", "stay_seconds"),
    )

    id: int | None = Field(default=None, primary_key=True)
    prospect_id: int = Field(foreign_key="prospect.id")
    changed_at: datetime = Field(sa_type=DateTime)
    who: str = Field(default="", max_length=80)
    from_stage_id: int | None = Field(default=None, foreign_key="stage.id")
    to_stage_id: int = Field(foreign_key="stage.id")
    value_cents: int = Field(sa_type=BigInteger)
    from_probability_bp: int | None = None
    to_probability_bp: int
    reason: str | None = Field(default=None, max_length=500)
    event_id: int | None = Field(default=None, foreign_key="change_event.id")
    #: The open stage of this row (the one created on, or closed from) is the importer's guess, not
    #: something the file said (docs/import.md, "Won and lost rows"); sighting in does not learn from it.
    inferred: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    #: The stay this change ends on `from_stage_id`: whole seconds since the prospect's change
    #: before it; None when there is none or either is the importer's guess (models/pace.py,
    #: `stay_seconds`, the one rule; the journal writes it). Each stage's pace reads it by the index.
    stay_seconds: int | None = None


class KpiSnapshot(SQLModel, table=True):
    """The KPIs of one scope on one day (the latest reading of that day)."""

    __tablename__ = "kpi_snapshot"
    __table_args__ = (UniqueConstraint("scope", "taken_on", name="uq_kpi_snapshot_scope_day"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=120)
    taken_on: date
    taken_at: datetime = Field(sa_type=DateTime)
    count: int
    tv_cents: int = Field(sa_type=BigInteger)
    ev_micros: int = Field(sa_type=BigInteger)
    #: Whose month rows this snapshot has: None, its own; else the id of an earlier reconstructed
    #: snapshot with the very same months (models/history.py writes the sets of months that a long
    #: history repeats once). Read through `kpi.months_holder`; `snapshot_deltas.own_months` makes
    #: them a snapshot's own before they change.
    months_of: int | None = Field(default=None, index=True)
    #: The server's clock (UTC) when a live reading (a recount, or kept by a change) was written,
    #: beside the app's moment `taken_at`; None for a reading rebuilt from the journal, and on
    #: SQLite. On PostgreSQL the trigger that keeps a rep's changes reads today's moment from it
    #: (models/history_guard.py).
    server_at: datetime | None = Field(default=None, sa_type=DateTime)


class KpiSnapshotMonth(SQLModel, table=True):
    """The per-month forecast inside one snapshot, and its won part (`won_*`: so that the KPIs of
    any period can be read from the snapshot; NULL in a snapshot recorded before they were kept)."""

    __tablename__ = "kpi_snapshot_month"

    snapshot_id: int = Field(foreign_key="kpi_snapshot.id", primary_key=True)
    month: str = Field(max_length=7, primary_key=True)
    count: int
    tv_cents: int = Field(sa_type=BigInteger)
    ev_micros: int = Field(sa_type=BigInteger)
    won_count: int | None = None
    won_tv_cents: int | None = Field(default=None, sa_type=BigInteger)
    won_ev_micros: int | None = Field(default=None, sa_type=BigInteger)


class Setting(SQLModel, table=True):
    __tablename__ = "setting"

    key: str = Field(primary_key=True, max_length=80)
    value: str = Field(default="", sa_type=Text)


class Member(SQLModel, table=True):
    """A person who may use the database, and their role (models/roles.py): owner, manager or rep.
    No rows at all: everyone may do everything (a single user's database, as before roles)."""

    __tablename__ = "member"

    name: str = Field(primary_key=True, max_length=80)
    role: str = Field(max_length=10)
    added_at: datetime = Field(sa_type=DateTime)
    added_by: str = Field(default="", max_length=80)
