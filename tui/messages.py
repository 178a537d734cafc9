"""Messages the app's parts send each other. Small dataclasses, in one place."""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass

from textual.message import Message

from evpipe.models.errors import DomainError
from evpipe.models.kpi import Kpi
from evpipe.models.pipeline_view import Row, RowStore
from evpipe.models.records import ChangeResult, StageInfo


@dataclass
class DataChanged(Message):
    """Some screen changed the data. `result` says exactly what (None: reload everything)."""

    result: ChangeResult | None = None


@dataclass
class RowsLoaded(Message):
    """The pipeline's rows, loaded in a worker."""

    rows: RowStore | list[Row]
    stages: list[StageInfo]  # the ladder
    archived: list[StageInfo]  # stages taken off the ladder (history may name them)
    complete: bool = True  # False: only the first page, the rest is on its way
    painted: threading.Event | None = None  # set once these rows are on screen
    order: array | None = None  # the ids in sort order `order_mode`
    order_mode: str = "month"


@dataclass
class KpisLoaded(Message):
    """The KPIs from models.kpi, for everyone and for the app's user."""

    kpi_all: Kpi
    kpi_mine: Kpi


@dataclass
class SortLoaded(Message):
    """Prospect ids in a sort order, sorted by SQLite in a worker."""

    mode: str
    ids: array


@dataclass
class ContactsLoaded(Message):
    """Contact person, phone and email of the prospects around the cursor."""

    contacts: dict[int, tuple[str, str, str]]


@dataclass
class HistoryLoaded(Message):
    """The KPI history the header compares with: (label, kpi) pairs for each scope."""

    scope_key: str
    week_ago: Kpi | None
    week_ago_label: str
    weekly_ev: list[int]


@dataclass
class ChangeSaved(Message):
    """A change saved by the app's Saver (tui/saving.py); it bubbles up to the app, which then
    tells every screen."""

    result: ChangeResult
    optimistic: tuple[int, int, int] = (0, 0, 0)  # the KPI change already shown before saving
    context: object = None  # what the screen that made the change handed the saver with it


@dataclass
class ChangeFailed(Message):
    """A store call made in a worker was refused."""

    error: str
    prospect_id: int | None = None
    optimistic: tuple[int, int, int] = (0, 0, 0)
    cause: DomainError | None = None  # the refusal itself (a Conflict is told apart from others)
    context: object = None
