"""Messages the app's parts send each other. Small classes of named fields, in one place.

A handler's name comes from the class name (`on_rows_loaded` for RowsLoaded); screens handle
their own with `@on(ClassName)`. Types only the annotations need are imported for type checking,
so importing this module (the first screen does) loads no more than it did.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import MutableSet
from typing import TYPE_CHECKING, Any, TypeVar, dataclass_transform

from textual.message import Message

from evpipe.models.changes_feed import Entry
from evpipe.models.errors import DomainError
from evpipe.models.kpi import Kpi
from evpipe.models.period import Period
from evpipe.models.pipeline_view import Primed, Row, RowStore
from evpipe.models.records import ChangeResult, StageInfo

_M = TypeVar("_M", bound=type[Message])
_Read = TypeVar("_Read", bound=Message)


@dataclass_transform()
def message(cls: _M) -> _M:
    """What `@dataclass` gives a message here, its `__init__` alone: the fields are those of a
    `@message` class it derives from, then its own annotations in order; those with a value in the
    class take it as their default; positional or named, as a dataclass takes them; then
    Textual's own set-up (`Message.__post_init__`). A dataclass compiles the source of each
    class's methods when the module loads: for these 35 messages that was 14-24 ms of the app's
    start, against under 1 ms."""
    inherited: tuple[str, ...] = getattr(cls, "__message_fields__", ())
    own = tuple(n for n in cls.__dict__.get("__annotations__", ()) if n not in inherited)
    names = inherited + own
    defaults = {**getattr(cls, "__message_defaults__", {}), **{n: cls.__dict__[n] for n in own if n in cls.__dict__}}
    cls.__message_fields__, cls.__message_defaults__ = names, defaults  # type: ignore[attr-defined]
    name = cls.__name__

    def __init__(self: Message, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{name}() takes {len(names)} arguments but {len(args)} were given")
        for field, value in zip(names, args):
            if field in kwargs:
                raise TypeError(f"{name}() got two values for {field!r}")
            setattr(self, field, value)
        for field in names[len(args) :]:
            if field in kwargs:
                setattr(self, field, kwargs.pop(field))
            elif field in defaults:
                setattr(self, field, defaults[field])
            else:
                raise TypeError(f"{name}() is missing {field!r}")
        if kwargs:
            raise TypeError(f"{name}() got an unexpected argument {next(iter(kwargs))!r}")
        self.__post_init__()

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


if TYPE_CHECKING:
    from datetime import datetime

    from evpipe.models.board import BoardView
    from evpipe.models.calibration import Calibration
    from evpipe.models.filters import Filter
    from evpipe.models.first_screen import HeaderHistory
    from evpipe.models.focus import FocusItem
    from evpipe.models.forecast import Forecast
    from evpipe.models.history import Snapshot
    from evpipe.models.importer import ImportPlan, ImportResult
    from evpipe.models.journal_read import JournalEntry
    from evpipe.models.ladder_table import StageRow
    from evpipe.models.members import MemberInfo
    from evpipe.models.records import PageData
    from evpipe.models.review import Review


def from_worker(message: _Read) -> _Read:
    """`message`, marked with the thread worker that read what it carries (call it in that worker's
    thread, as it posts it): see `superseded`."""
    from textual.worker import get_current_worker

    message._read_by = get_current_worker()  # type: ignore[attr-defined]
    return message


def superseded(message: Message) -> bool:
    """Whether `message` (`from_worker`) was read by a worker that a newer one of its group has
    cancelled since (`exclusive=True`). Textual cannot stop a thread: the older read runs on and
    posts what it read, and landing after the newer one's it would show what was there before the
    change that started the newer one (the pipeline's rows; focus's header without the last
    move). Its handler drops it: the newer one's lands too. Told on the UI thread, where workers
    are cancelled and started, so the answer cannot change while it is handled."""
    worker = getattr(message, "_read_by", None)
    return worker is not None and worker.is_cancelled


@message
class DataChanged(Message):
    """Some screen changed the data. `result` says exactly what (None: reload everything)."""

    result: ChangeResult | None = None


@message
class RemoteChanges(Message):
    """Changes other sessions made (tui/live_sync.py): their journal entries, oldest first, and
    the rows they touch as they are now (`rows`: id -> (row, search text); `gone`: deleted).
    `reload`: too many to apply one by one, or the ladder changed: screens read everything again.
    `settings`: a setting changed (the KPI period, a monthly target) or a member (added, removed,
    another role), which screens that show one read again."""

    entries: list[Entry]
    rows: dict[int, tuple[Row, str]]
    gone: set[int]
    notice: str | None = None
    reload: bool = False
    settings: bool = False

    @property
    def prospect_ids(self) -> set[int]:
        return {e.prospect_id for e in self.entries if e.prospect_id is not None}


@message
class PaceLoaded(Message):
    """Each stage's pace and when each prospect entered its stage (models/pace.py)."""

    pace: Any


@message
class RowsLoaded(Message):
    """The pipeline's rows, loaded in a worker."""

    rows: RowStore | list[Row]
    stages: list[StageInfo]  # the ladder
    archived: list[StageInfo]  # stages taken off the ladder (history may name them)
    complete: bool = True  # False: only the first page, the rest is on its way
    painted: threading.Event | None = None  # set once these rows are on screen
    order: array | None = None  # the ids in sort order `order_mode`
    order_mode: str = "month"
    primed: Primed | None = None  # what the view works out over every row, worked out in the worker
    spans: Any = None  # the money columns' spans (prospect_table.row_spans), worked out likewise


@message
class KpisLoaded(Message):
    """The KPIs from models.kpi, for everyone and for the app's user, over the KPI period."""

    kpi_all: Kpi
    kpi_mine: Kpi
    period: Period | None = None
    journal_id: int = -1  # the journal's highest id read just before the sums: they hold it
    ticket: int = 0  # which read of the header's sums (HeaderSums.begin; 0: the first screen's)


@message
class SortLoaded(Message):
    """Prospect ids in a sort order, sorted by SQLite in a worker."""

    mode: str
    ids: array


@message
class ContactsLoaded(Message):
    """Contact person, phone and email of the prospects around the cursor."""

    contacts: dict[int, tuple[str, str, str]]


@message
class HistoryLoaded(Message):
    """The KPI history the header compares with, for one scope."""

    history: HeaderHistory


@message
class ChangeSaved(Message):
    """A change saved by the app's Saver (tui/saving.py); it bubbles up to the app, which then
    tells every screen."""

    result: ChangeResult
    optimistic: tuple[int, int, int] = (0, 0, 0)  # the KPI change already shown before saving
    context: object = None  # what the screen that made the change handed the saver with it


@message
class ChangeFailed(Message):
    """A store call made in a worker was refused."""

    error: str
    prospect_id: int | None = None
    optimistic: tuple[int, int, int] = (0, 0, 0)
    cause: DomainError | None = None  # the refusal itself (a Conflict is told apart from others)
    context: object = None
    retryable: bool = False  # not a refusal but a failure (a held lock, a full disk): `R` retries it
    reason: str = ""  # a retryable failure's reason alone, in words ("the disk is full")


# ---------------------------------------------------------------- the focus screen


@message
class FocusLoaded(Message):
    items: list[FocusItem]
    kpi: Kpi
    counts: dict[str, int]
    period: Period | None = None  # the KPI period of `kpi`


@message
class FocusHistoryLoaded(Message):
    week_ago: Kpi | None
    weekly: list[int]


# ---------------------------------------------------------------- the stage board


@message
class BoardLoaded(Message):
    """The board's columns, its KPIs and its KPI period, read in a worker."""

    board: BoardView
    kpi: Kpi
    period: Period | None = None
    journal_id: int = -1  # the journal's highest id read with the KPIs: they hold it
    ticket: int = 0  # which read of the header's sums (HeaderSums.begin)


@message
class BoardKpisLoaded(Message):
    kpi: Kpi
    journal_id: int = -1  # as KpisLoaded's
    ticket: int = 0


@message
class BoardMoved(Message, namespace="stage_board"):
    """The board's cursor or its columns in view changed (handled as `on_stage_board_board_moved`)."""

    prospect_id: int | None


# ---------------------------------------------------------------- the prospect page


@message
class ProspectPageLoaded(Message):
    data: PageData
    generation: int
    pace: Any = None  # models.pace.Pace: how long prospects usually stay on each stage


@message
class ProspectMissing(Message):
    message: str
    generation: int
    hidden: bool = False  # there, but another owner's, for a rep who sees only their own
    deleted_by: str = ""  # who removed it last (a delete, or an add undone), when the journal says
    deleted_at: datetime | None = None


# ---------------------------------------------------------------- the stages screen


@message
class StagesLoaded(Message):
    rows: list[StageRow]
    warnings: list[str]
    generation: int
    #: Why this user may not change the ladder, or the settings (a rep: models/roles.py), by action
    refused: dict[str, str] | None = None


@message
class ProbabilityEffectReady(Message):
    """What a probability change would do, worked out before it is confirmed."""

    row: StageRow
    text: str
    bp: int
    count: int
    ev_micros: int


# ---------------------------------------------------------------- the insight screens


@message
class CalibrationLoaded(Message):
    cal: Calibration
    band: Any = None  # models.forecast_range.BandRecord: how often the actual fell in the frozen band


@message
class CalibrationApplied(Message):
    results: list[ChangeResult]
    error: str | None = None


@message
class ForecastLoaded(Message):
    fc: Forecast
    ranges: Any = None  # models.forecast_range.Ranges: each month's P10-P90 band and target chance


@message
class MonthProspectsLoaded(Message):
    rows: list[Any]  # models.forecast.month_prospects' rows


@message
class TrendLoaded(Message):
    key: str
    points: list[Snapshot]
    period: Period | None = None  # the KPI period every point counts
    last_year: list[Any] | None = None  # each point's reading of the same week last year (models.season)


@message
class ReviewLoaded(Message):
    review: Review
    since: str


@message
class ReviewFailed(Message):
    error: str


# ---------------------------------------------------------------- the import screen


@message
class ImportProgress(Message):
    phase: str
    done: int
    total: int


@message
class PlanReady(Message):
    plan: ImportPlan
    generation: int


@message
class PlanFailed(Message):
    error: str
    generation: int


@message
class ImportDone(Message):
    result: ImportResult
    #: why its KPI history could not be brought up to date, when it could not (the import is saved)
    history_not_kept: str | None = None


@message
class ImportFailed(Message):
    error: str


# ---------------------------------------------------------------- the team: activity, members, reps


@message
class JournalLoaded(Message):
    """A page of the journal (models.journal_read), newest first; `more`: there are older ones."""

    entries: list[JournalEntry]
    generation: int
    append: bool = False
    more: bool = False


@message
class MembersLoaded(Message):
    members: list[MemberInfo]
    you: str
    reps_see: str
    first: str  # who the first member must be (models.members.first_owner)


@message
class RepsLoaded(Message):
    """Everyone who has made a change (the review's choice of rep)."""

    names: list[str]


@message
class FilterFound(Message):
    """A filter search's results, from its worker."""

    text: str
    filter: Filter
    ids: MutableSet[int]
    narrowed: bool  # searched within `shown`, the matches the view held when it began
    rows: RowStore
    changes: int  # rows.changes when it began (-1: it failed)
    shown: MutableSet[int] | None
    round: int
    # the lines picked for the ids in the worker (PipelineView.take_hits), and what from: the
    # lines shown and the lines before any filter when it began (None: picked on the UI thread)
    lines: array | None = None
    shown_lines: array | None = None
    base_lines: array | None = None


@message
class NoticesAnswered(Message):
    """Notices no longer true, by what they say, to take off the screen (the database's problem,
    once it answers again). A message to the app, so that it comes after the notices themselves,
    which a worker may have posted a moment before."""

    notices: list[str]
