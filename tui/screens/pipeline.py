"""The pipeline screen (home): the KPI header, every prospect, and stage moves in one key.

How a key becomes a saved change: the row and the header are updated at once from what the
change will do (a stage move moves EV by value x the change in p), the store call runs in a worker
(one at a time, in order), and its ChangeResult then corrects the header by its exact effect and
replaces the row. A refused change (DomainError, Conflict) is reported and undone on screen.
"""

from __future__ import annotations

import gc
import threading
from array import array
from collections.abc import Callable, MutableSet
from datetime import date
from functools import cached_property

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input
from textual.worker import Worker

from evpipe.models import clock, ladder
from evpipe.models.board import predict_stage
from evpipe.models.changes_feed import Entry, fields_of, kpis_as_of_journal
from evpipe.models.errors import DomainError
from evpipe.models.filters import Filter, Hits, hint, parse_filter
from evpipe.models.first_screen import FirstScreen, header_history, read_first_screen
from evpipe.models.header_sums import NONE, Delta, HeaderSums, exact, journal_delta_is_the_headers
from evpipe.models.kpi import Kpi, Scope
from evpipe.models.names import display_name
from evpipe.models.period import Period, current_period
from evpipe.models.pipeline_view import (
    SORT_LABELS,
    SORTS,
    Ladder,
    PipelineView,
    Row,
    RowStore,
    contacts_of,
    haystack,
    load_ladder,
    load_rows,
    ordered_ids,
    pick,
    row_of,
)
from evpipe.models.records import ChangeResult, ProspectInfo, StageInfo
from evpipe.models.values import ASKS_NEXT_STEP, default_follow_up, parse_follow_up
from evpipe.models.visibility import OWN_ONLY_LINE, OWN_ONLY_SHORT

from .. import first_screen_ahead
from ..access import EvpipeParts, evpipe_app
from ..first_read import ReadyAfterFirstRead
from ..frames import FrameHold
from ..messages import (
    ChangeFailed,
    ChangeSaved,
    ContactsLoaded,
    DataChanged,
    FilterFound,
    HistoryLoaded,
    KpisLoaded,
    PaceLoaded,
    RemoteChanges,
    RowsLoaded,
    SortLoaded,
    from_worker,
    superseded,
)
from ..saving import Change, undoing
from ..widgets import LineInput, TextLine, fit_clauses
from ..widgets.footer import KeyFooter
from ..widgets.kpi_header import KpiHeader
from ..widgets.prospect_table import ColumnHeader, ProspectTable, fit, row_spans, short_date
from ..widgets.tab_bar import TabBar
from ..yielding import yielding
from .stage_keys import StageKeys


class _Superseded(Exception):
    """A filter search stopped between two slices: a newer text was typed, or the filter cleared."""


def _freeze_loaded_rows(app: EvpipeParts) -> None:
    """Every row is held now and lives until the next load: the collector's full passes would
    walk them all again and again (60 ms at 100,000 prospects, landing during key presses).
    Frozen (gc.freeze), it leaves them alone; they are still freed when the next load drops them.
    On a reload, what the last freeze kept from the collector (cycles left since) is let go, and
    the app collects it and freezes again at its next full pass, once no key has come for a second
    (`EvpipeApp.freeze_after_full_pass`): that pass walks the whole process again (70-120 ms
    on this machine, whatever the pipeline's size), which, made here, was most of a reload's pause
    of the UI thread (130-160 ms at a million prospects, 30 ms without it). Not on the first load:
    what was frozen before it (the write path, tui/app.py `engine`) holds no rows, and a full pass
    over a million rows just loaded took 50-170 ms of the UI thread."""
    global _rows_frozen
    if _rows_frozen:
        gc.unfreeze()
        app.freeze_after_full_pass()
        return
    gc.freeze()
    _rows_frozen = True


#: Whether a load's rows were frozen in this process (`_freeze_loaded_rows`).
_rows_frozen = False


#: At most this many last matches, a text that narrows them is searched on the UI thread (the
#: words tested again on those rows only: a ms or two), not in a worker.
INLINE_NARROWING = 5_000

#: While a filter's search runs in a worker, the typed text is painted with its results, not on
#: its own a frame before them (tui/frames.py), if they come within this many seconds.
FILTER_FRAME_HOLD = 0.05

#: Seconds before the rows and the KPIs are read again after reading them failed (the server gone
#: away, say), until they are read.
READ_AGAIN_AFTER = 2.0


class PipelineScreen(ReadyAfterFirstRead, StageKeys, Screen):
    """Every prospect with the KPIs above them."""

    CSS_PATH = "pipeline.tcss"
    #: the app runs a key's binding as it reads the key (tui/app.py, _key_for_bindings): the table
    #: and this screen answer keys through bindings only, never a key handler of their own
    BINDINGS_FIRST = True

    BINDINGS = [
        Binding(">,.", "advance", "Advance", id="pipeline.advance"),
        Binding("<,comma", "back", "Back", id="pipeline.back"),
        Binding("w", "won", "Won", id="pipeline.won"),
        Binding("l", "lost", "Lost", id="pipeline.lost"),
        Binding("u", "undo", "Undo", id="pipeline.undo"),
        Binding("U", "undo_skip", "Skip undo", id="pipeline.undo_skip", show=False),
        Binding("c", "closed", "Closed", id="pipeline.closed"),
        Binding("a", "add", "Add", id="pipeline.add"),
        Binding("e", "edit", "Edit", id="pipeline.edit", show=False),
        Binding("enter", "open", "Open", id="pipeline.open", show=False),
        Binding("n", "log_activity", "Log contact", id="pipeline.log", show=False),
        Binding("f", "follow_up", "Follow-up", id="pipeline.follow_up", show=False),
        Binding("d", "delete", "Delete", id="pipeline.delete", show=False),
        # priority: handled before the next key is passed on, so what is typed straight after `/`
        # reaches the filter box (and not the table's keys: `w` would mark a sale won)
        Binding("slash", "filter", "Filter", id="pipeline.filter", priority=True),
        Binding("escape", "clear_filter", "Clear filter", id="pipeline.clear_filter", show=False),
        Binding("s", "sort", "Sort", id="pipeline.sort"),
        Binding("o", "mine", "Mine/all", id="pipeline.mine", show=False),
        Binding("m", "group", "By month", id="pipeline.group", show=False),
    ]

    #: What each action does, for the help screen and the command palette.
    ACTION_HELP: dict[str, str] = {
        "advance": "Advance one stage",
        "back": "Back one stage",
        "won": "Mark won",
        "lost": "Mark lost (asks why)",
        "undo": "Undo your last change",
        "undo_skip": "Skip a refused undo; undo the rest",
        "add": "Add a prospect",
        "edit": "Edit the prospect",
        "open": "Open the prospect page",
        "log_activity": "Log a call, email, meeting or note",
        "follow_up": "Set the next follow-up",
        "delete": "Delete (undo brings it back)",
        "filter": "Filter: words, stage: owner: month: due: stale",
        "clear_filter": "Clear the filter",
        "sort": "Cycle the sort order",
        "mine": "My prospects / everyone's",
        "group": "Group by month, with subtotals",
        "closed": "Show won and lost too / open only",
    }

    def __init__(self) -> None:
        super().__init__()
        self.view = PipelineView(Ladder.of([]))
        self.stage_list: list[StageInfo] = []
        # the header's figures, everyone's and the user's own, kept current between reads
        self.sums = HeaderSums(lambda: (evpipe_app(self).scope_owner, evpipe_app(self).who))
        self.period: Period | None = None  # the KPI period the header counts (read with the KPIs)
        self.loaded = False  # some rows are on screen
        self.complete = False  # every row is on screen
        self._since_load: list[Row | int] = []  # rows changed on screen since the last load began
        self._loading = False
        self.filter_text = ""
        self.filter = Filter()  # the filter on screen (parsed from filter_text)
        self.show_closed = False  # `c`: won and lost prospects shown too
        self._last_filter_applied = ""  # the filter text whose results are on screen
        self._hits = Hits()  # the filter's matches, kept so that a growing text searches only them
        self._filter_wanted: tuple[str, Filter] | None = None  # typed, not searched yet
        self._filter_searching = False  # a search is running in a worker
        self._filter_round = 0  # counts the filter's clearings: a search from before one is dropped
        self._filter_frame: FrameHold | None = None  # painting held for a search's results
        self._sort_wanted = "month"
        self._sorting = False  # a sort asked for and not shown yet: keys typed after it wait (keys_ready)
        self._opening = False  # a prospect read for its edit form: keys typed after `e` wait for the form
        self._pending: dict[int, int] = {}  # prospect id -> changes shown but not saved yet
        self._shown: dict[int, Row] = {}  # prospect id -> its row as those changes show it
        self._before: dict[int, Row] = {}  # prospect id -> its row before those changes
        self._applied: set[int] = set()  # event ids this screen has applied itself
        self._history: dict[str, tuple[Kpi | None, list[int]]] = {}
        self._last_year: dict[str, Kpi | None] = {}  # the same week last year, per scope (models/season.py)
        self._contacts: dict[int, tuple[str, str, str]] = {}  # contact person, phone, email by id
        self._read_again: Timer | None = None  # a failed read is tried again (`work_failed`)
        self._read_failed = False  # a read failed since the last that succeeded

    # -------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield TabBar("pipeline")
        yield KpiHeader(id="kpis")
        yield ColumnHeader(id="columns")
        yield ProspectTable(self.view, id="table")
        yield TextLine("", cut_at=" · ", id="detail")
        yield TextLine("Loading prospects…", id="status")
        yield TextLine("", id="filter-hint")
        yield LineInput(
            placeholder="words, stage:quote owner:sam month:mar due:overdue stale",
            id="filter",
            on_change=self._filter_typed,
            shown=display_name,
        )
        yield KeyFooter()

    # The widgets a key updates, looked up once (composed once, never replaced): a stage key
    # asked for the table eight times, a DOM search each.

    @cached_property
    def table(self) -> ProspectTable:
        return self.query_one("#table", ProspectTable)

    @cached_property
    def header(self) -> KpiHeader:
        return self.query_one("#kpis", KpiHeader)

    @cached_property
    def detail(self) -> TextLine:
        return self.query_one("#detail", TextLine)

    @property
    def settled_rows(self) -> RowStore | None:
        """Every row, when all are loaded and none shows a change not saved yet (the board copies
        them rather than read them again); else None."""
        return self.view.rows if self.complete and not self._loading and not self._pending else None

    @property
    def mine(self) -> bool:
        return self.view.owner is not None

    @property
    def scope(self) -> Scope:
        return self._scope(self.mine, self.period)

    def _scope(self, mine: bool, period: Period | None) -> Scope:
        """The header's scope: everyone's or mine, over the KPI period. Everyone's is only the
        rep's own for a rep the owner lets see only their own (`app.scope_owner`)."""
        app = evpipe_app(self)
        return Scope(owner=app.who if mine else app.scope_owner, period=period)

    @property
    def kpi_all(self) -> Kpi:
        return self.sums.all

    @property
    def kpi_mine(self) -> Kpi:
        return self.sums.mine

    @property
    def kpi(self) -> Kpi:
        return self.kpi_mine if self.mine else self.kpi_all

    def on_mount(self) -> None:
        self.table.on_cursor = self._cursor_moved
        self.table.focus()
        self.load()

    # -------------------------------------------------------- loading

    def work_failed(self, worker: Worker, error: BaseException) -> str:
        """A read of the rows or the KPIs failed after the first screen (the server went away):
        what is shown may be out of date, a failed save's take-back, a change another session
        made, so both are read again every few seconds until a read succeeds. Once, the screen
        kept showing them until evpipe was started again."""
        line = super().work_failed(worker, error)
        if worker.group == "kpis":
            self.sums.read_failed(self.sums.asked)  # (read again: below, as the rows are)
        if worker.group in ("load", "kpis") and self.loaded:
            self._read_failed = True
            if self._read_again is None:
                self._read_again = self.set_timer(READ_AGAIN_AFTER, self._read_once_more)
        return line

    def _read_once_more(self) -> None:
        self._read_again = None
        self.load()

    def load(self) -> None:
        """(Re)load the rows and the KPIs, each in its own worker so they run side by side."""
        self._since_load = []
        self._loading = True
        if self.loaded:
            self.reload_kpis()
            self.load_rows()
        elif not self._show_read_ahead():
            self.load_rows(first_page=True)

    def _show_read_ahead(self) -> bool:
        """The first screen read while the app was being imported (tui/first_screen_ahead.py),
        shown as the screen is laid out, in its first frame; the worker reads the rest once it is
        painted. False when there is none (then the worker reads the first screen too): not read
        ahead, not finished in time, or a pipeline small enough to be read whole at once."""
        app = evpipe_app(self)
        first = first_screen_ahead.take(app.url, app.who)  # (read ahead only where the app reads the file as it is)
        if first is None or first.complete:
            return False
        app.scope_decided(None)  # (read ahead only where reps see every prospect)
        painted = threading.Event()

        def show() -> None:  # (once laid out: the header fits its figures to its boxes' width)
            self.on_kpis_loaded(KpisLoaded(first.kpi_all, first.kpi_mine, first.period, first.journal_id))
            if first.history is not None:
                self.on_history_loaded(HistoryLoaded(first.history))
            self.on_rows_loaded(RowsLoaded(first.rows, first.stages, first.archived, complete=False, painted=painted))
            self.load_rows(first_page=True, shown=(first, painted))

        self.call_after_refresh(show)
        return True

    @work(thread=True, exclusive=True, group="load", exit_on_error=False, description="load prospects")
    def load_rows(self, first_page: bool = False, shown: tuple[FirstScreen, threading.Event] | None = None) -> None:
        """Read the ladder and every row. The first time, paint a first screen as soon as possible
        (models/first_screen.py: its KPIs and the first page of rows, or every row of a small
        pipeline), then nothing else until that screen is painted (reading 100,000 rows beside the
        paint would slow it: one interpreter lock), then the other rows.
        `shown`: that first screen, already shown (`_show_read_ahead`), and the event set once it
        is painted. Its rows go `from_worker`: rows a newer load's worker replaced are not shown."""
        app = evpipe_app(self)
        engine = app.reader
        owner = app.decide_scope()  # before anything is read: a rep may see only their own
        mode = self.view.sort
        if not first_page:
            stages, archived = load_ladder(engine)
            ladder = Ladder.of(stages, extra=archived)
            rows, order = load_rows(engine, mode, ladder, owner=owner)
            self._post_pace(engine)
            self.post_message(self._all_rows(rows, order, mode, ladder, owner, stages, archived))
            return
        if shown is None:
            first, painted = read_first_screen(engine, owner=owner, who=app.who), threading.Event()
        else:
            first, painted = shown
        stages, archived = first.stages, first.archived
        ladder = Ladder.of(stages, extra=archived)
        if shown is None:
            self.post_message(KpisLoaded(first.kpi_all, first.kpi_mine, first.period, first.journal_id))
            if first.complete:  # a small pipeline: all of it at once
                rows, order = load_rows(engine, mode, ladder, owner=owner)
                self._post_pace(engine)
                self.post_message(self._all_rows(rows, order, mode, ladder, owner, stages, archived, painted))
            else:
                self.post_message(
                    from_worker(RowsLoaded(first.rows, stages, archived, complete=False, painted=painted))
                )
        painted.wait(2.0)  # (the header's history is read as the rows are shown: on_rows_loaded)
        evpipe_app(self).engine  # noqa: B018  open the write path now, off the UI thread, before a key needs it
        if not first.complete:
            mode = self.view.sort
            rows, order = load_rows(engine, mode, ladder, owner=owner)
            self._post_pace(engine)
            self.post_message(self._all_rows(rows, order, mode, ladder, owner, stages, archived))

    def _all_rows(self, rows, order, mode, ladder, owner, stages, archived, painted=None) -> RowsLoaded:
        """Every row, with what the view and the table work out over all of them before they can
        show any, worked out here in the worker (at a million rows, 0.6 s the UI thread would
        otherwise stand still for) with the view's settings of now: used where they still hold."""
        pause = yielding()  # (its passes in C let the UI thread in: a key typed meanwhile is answered)
        primed = self.view.prime(rows, ladder, order, mode, scope=owner, pause=pause)
        return from_worker(
            RowsLoaded(
                rows,
                stages,
                archived,
                order=order,
                order_mode=mode,
                painted=painted,
                primed=primed,
                spans=row_spans(rows, ladder, pause),
            )
        )

    @work(thread=True, exclusive=True, group="kpis", exit_on_error=False, description="load KPIs")
    def load_kpis(self, ticket: int) -> None:
        """The header's sums, read again (`reload_kpis`): read number `ticket` (HeaderSums.begin)."""
        evpipe_app(self).decide_scope()
        engine = evpipe_app(self).reader
        period = current_period(engine)
        # changes up to journal_id are in the sums (read together): live entries skip their part
        journal_id, (kpi_all, kpi_mine) = kpis_as_of_journal(
            engine, self._scope(False, period), self._scope(True, period)
        )
        self.post_message(KpisLoaded(kpi_all, kpi_mine, period, journal_id, ticket))

    def on_kpis_loaded(self, message: KpisLoaded) -> None:
        if self._read_failed:  # read again after a failed read (`work_failed`): the database is back
            self._read_failed = False
            evpipe_app(self).database_answers()
        # (changes shown, or saved after the sums were read, are added back: models/header_sums.py)
        again = self.sums.read(message.kpi_all, message.kpi_mine, message.journal_id, message.ticket)
        evpipe_app(self).live.read_up_to(message.journal_id)  # (before the first look: it hands on what came after)
        if again:
            self.reload_kpis()
        if message.period != self.period:  # the first read, a new month or a new setting
            self.period = message.period
            self.header.period_label = message.period.short if message.period is not None else ""
            if self.loaded and self.scope.key not in self._history:
                self.load_history(self.scope)
        self._show_header()

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        if superseded(message):
            # read by a load a newer one cancelled, landing anyway: shown after the newer one's, it
            # put back rows from before the changes made since (none of them kept to apply again)
            if message.painted is not None:
                message.painted.set()  # (its worker waits for it)
            return
        keep = self.table.current_id
        self.stage_list = message.stages
        self.view.scope = evpipe_app(self).scope_owner  # decided by the worker that read the rows
        self.view.today = clock.today()
        primed = message.primed
        self.view.set_ladder(primed.ladder if primed is not None else Ladder.of(message.stages, extra=message.archived))
        if self.filter_text:
            self.view.matches = self._matches(message.rows)
            self.view.rule = self.filter
        self.view.load(message.rows, order=message.order, order_mode=message.order_mode, primed=primed)
        if message.spans is not None and primed is not None:
            self.table.take_spans(primed.rows, primed.ladder, message.spans)
        if message.complete:
            # changes made on screen while the rows were read are applied again on top
            for change in self._since_load:
                if isinstance(change, int):
                    self.view.remove(change)
                else:
                    self.view.put(change)
            self._since_load = []
            self._loading = False
        self.complete = message.complete
        self.loaded = True
        self.table.reset(keep)
        self._show_status()
        self.first_read_ended()  # (the first page is enough: keys typed while evpipe started run now)
        if message.complete:
            _freeze_loaded_rows(evpipe_app(self))
        if message.painted is not None:
            self.call_after_refresh(message.painted.set)
        if self.scope.key not in self._history:
            self.load_history(self.scope)

    def _post_pace(self, engine) -> None:
        """Each stage's pace, read once per load in the rows' worker and posted just before the
        complete rows (models/pace.py): the `~` mark then means slow."""
        from evpipe.models.pace import load_pace

        self.post_message(PaceLoaded(load_pace(engine, with_prospects=False)))

    def on_pace_loaded(self, message: PaceLoaded) -> None:
        self.view.pace = message.pace
        if self.filter.stale:  # (`stale` is the `~`: searched again by the pace)
            self._filter_wanted = (self.filter_text, self.filter.with_pace(message.pace))
            self._last_filter_applied = None
            self._search_next()
        self.table.repaint()
        pid = self.table.current_id
        self._show_detail(pid, self._contacts.get(pid) if pid is not None else None)

    @work(thread=True, group="history", exit_on_error=False, description="load KPI history")
    def load_history(self, scope: Scope) -> None:
        self.post_message(HistoryLoaded(header_history(evpipe_app(self).reader, scope)))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        history = message.history
        self._history[history.scope_key] = (history.week_ago, history.weekly_ev)
        self._last_year[history.scope_key] = history.last_year
        if history.scope_key == self.scope.key:
            self._show_header(history=True)

    def _show_header(self, *, history: bool = False) -> None:
        self.header.last_year = self._last_year.get(self.scope.key)
        if history or self.scope.key in self._history:
            week_ago, weekly = self._history.get(self.scope.key, (None, []))
            self.header.show(self.kpi, week_ago, weekly, history=True)
        else:
            self.header.show(self.kpi)

    def _show_status(self) -> None:
        view = self.view
        shown = view.shown
        parts = [
            OWN_ONLY_SHORT.capitalize()
            if view.scope is not None
            else f"Mine ({evpipe_app(self).who})"
            if self.mine
            else "Everyone's",
            f"{shown:,} shown" if self.complete else f"first {shown:,} shown, loading the rest…",
        ]
        if self.filter_text:  # before the settings: what cannot fit in 80 columns is cut off last
            parts.append(f"filter: {display_name(self.filter_text)}")
        parts.append(f"sort: {SORT_LABELS[view.sort]}")
        parts.append("with won and lost" if view.closed else "open only")
        if view.grouped:
            parts.append("by month")
        self.query_one("#status", TextLine).show(Content(" · ".join(parts)))

    # -------------------------------------------------------- the cursor's details

    def _cursor_moved(self, pid: int | None) -> None:
        """The table's cursor is on another prospect (ProspectTable.on_cursor)."""
        contact = self._contacts.get(pid) if pid is not None else None
        self._show_detail(pid, contact)
        if pid is not None and contact is None:
            self._fetch_contacts_near_cursor()

    def _fetch_contacts_near_cursor(self) -> None:
        """Read the contacts of the prospects on and around the screen in one go, so that moving
        the cursor shows them without asking the database at every step."""
        if len(self._contacts) > 5000:
            self._contacts.clear()
        lines, cursor = self.view.lines, self.table.cursor
        window = [i for i in lines[max(0, cursor - 40) : cursor + 60] if isinstance(i, int) and i not in self._contacts]
        if window:
            self.load_contacts(window)

    @work(thread=True, exclusive=True, group="contact", exit_on_error=False, description="contacts")
    def load_contacts(self, prospect_ids: list[int]) -> None:
        self.post_message(from_worker(ContactsLoaded(contacts_of(evpipe_app(self).reader, prospect_ids))))

    def on_contacts_loaded(self, message: ContactsLoaded) -> None:
        if superseded(message):  # (read before a newer look-up began: an edit's contacts may be newer)
            return
        self._contacts.update(message.contacts)
        pid = self.table.current_id
        if pid is not None and pid in message.contacts:
            self._show_detail(pid, message.contacts[pid])

    def _show_detail(self, pid: int | None, contact: tuple[str, str, str] | None) -> None:
        row = self.view.rows.get(pid) if pid is not None else None
        if row is None:
            text = (
                ""
                if self.view.lines
                else (
                    "No prospects match"
                    if self.filter_text
                    else "No open prospects: c shows won and lost"
                    if self.view.rows and not self.view.closed
                    else "No prospects yet: a adds one"
                )
            )
        else:
            name, *reach = contact or ("", "", "")  # the person, then the phone and the email
            # a long contact name cut to a third of the line: the line keeps the parts that fit
            # whole, and a name of 80 letters pushed the phone and the email out
            name = fit(name, max(12, self.size.width // 3)).rstrip() if name else ""
            parts = [p for p in (name, *reach) if p]
            if contact is not None and not parts:
                parts = ["no contact details"]
            flags = []
            if self.view.is_overdue(row):
                flags.append(f"! follow-up due {short_date(row.follow_up)}")
            stage = self.view.ladder.stage(row.stage_id)
            if stage is not None and stage.kind == "open" and self.view.is_stale(row):
                pace = self.view.pace.stages.get(row.stage_id) if self.view.pace is not None else None
                if pace is not None and pace.learnt and self.view.pace is not None:
                    flags.append(f"~ slow: {self.view.pace.words(row.id, row.stage_id, row.touched)}")
                else:
                    flags.append(f"~ stale since {short_date(row.touched)}")
            # the flags first: a line too long for the terminal keeps its parts that fit whole,
            # from the first (TextLine's cut_at), and why the row is marked matters most
            text = " · ".join(flags + parts)
        # (shown as terminals draw it: an emoji selector in a phone or email ended the line a cell
        # short of where it was counted, and the cell after it kept what the row before showed)
        self.detail.show(Content(display_name(text)))

    # -------------------------------------------------------- the KPIs, kept current

    def _part(self, row: Row) -> tuple[int, int, int]:
        """What a row adds to the header: its share of the KPIs when the KPI period holds it."""
        kind = self.view.ladder.kind(row.stage_id)
        if self.period is not None and not self.period.holds(kind, row.month):
            return (0, 0, 0)
        count, tv, ev = self.view.ladder.part(row)
        return (count, tv, ev)

    # -------------------------------------------------------- saving

    def _save(
        self, call: Callable[[], ChangeResult], *, prospect_id: int | None = None, shown: Delta | None = None
    ) -> None:
        """Save through the app's saver: in a worker, one at a time and in order; a change shown
        before it is saved (its part of the header `shown`) starts saving once its frame is painted."""
        evpipe_app(self).saver.save(Change(call, self, prospect_id, shown or NONE), after_frame=shown is not None)

    def on_change_saved(self, message: ChangeSaved) -> None:
        result = message.result
        self._applied.add(result.event_id)
        p = result.prospect
        optimistic = message.optimistic
        if p is not None:
            old = self.view.rows.get(p.id)
            if old is not None and p.id in self._pending:
                self._pending[p.id] -= 1
                if self._pending[p.id] <= 0:
                    del self._pending[p.id]
                    self._shown.pop(p.id, None)
                    self._before.pop(p.id, None)
            owner_before = old.owner if old is not None else p.owner
            headers = journal_delta_is_the_headers(self.period, result)
            changed_hands = owner_before != p.owner
            # (an owner change moves the prospect between scopes: not known whose, summed again)
            self.sums.saved(result, optimistic, None if changed_hands else p.owner, headers=headers)
            if not headers or changed_hands:
                self.reload_kpis()  # it may have moved in or out of the KPI period or a scope: sum again, in SQL
            if p.id not in self._pending:
                self._apply_prospect(p)
        else:
            # a ladder change: every row may be priced differently
            self.load()
        self._show_header()
        evpipe_app(self).say_saved(result)
        # the app tells every screen once this has run (the message bubbles up to it)

    def on_change_failed(self, message: ChangeFailed) -> None:
        self.app.notify(message.error, markup=False, severity="error", timeout=6)
        if message.optimistic != (0, 0, 0) or message.prospect_id in self._pending:
            # take back what was shown: the row and the KPIs as the database has them, but for the
            # other rows' changes still on their way, which stay shown (as the KPIs keep them)
            self._pending.pop(message.prospect_id, None)
            if message.prospect_id is not None:
                self._shown.pop(message.prospect_id, None)
                # taken back here too: the read below fails when the server has gone away, and the
                # row and the header showed the change as saved (the notice saying it was undone);
                # the header for each change that failed (a second `>` failed with the first)
                self.sums.take_back(message.prospect_id, message.optimistic)
                before = self._before.pop(message.prospect_id, None)
                if before is not None and before.id in self.view.rows:
                    lines_before = len(self.view.lines)
                    self.view.put(before, hint=self.table.cursor)
                    if len(self.view.lines) != lines_before:
                        self.table.lines_changed(before)
                    else:
                        self.table.refresh_row(before.id)
                self._show_header()
            self.load()
            self._since_load.extend(self._shown[pid] for pid in self._pending if pid in self._shown)

    def _apply_prospect(self, p: ProspectInfo) -> None:
        before = len(self.view.lines)
        had = self.view.index_of(p.id, self.table.cursor)
        index = self.view.apply(p, hint=self.table.cursor)
        if self._loading:
            self._since_load.append(p.id if p.deleted else row_of(p))
        if len(self.view.lines) != before or (had is not None and index != had):
            row = self.view.rows.get(p.id)  # (None once deleted)
            self.table.lines_changed(*([] if row is None else [row]))
        elif index is not None:
            self.table.refresh_row(p.id)
        if index is not None and had is None:
            self.table.go_to(p.id)
        self._contacts.pop(p.id, None)
        if self.table.current_id == p.id:
            self.load_contacts([p.id])
        self._show_status()

    def reload_kpis(self) -> None:
        """Sum the header again in SQL: now, or when the read asked for before lands (the
        screen's asks go one at a time: models/header_sums.py)."""
        ticket = self.sums.want_read()
        if ticket is not None:
            self.load_kpis(ticket)

    def on_data_changed(self, message: DataChanged) -> None:
        """A change made elsewhere (the prospect page, the stages screen, an import)."""
        message.stop()
        result = message.result
        if result is None or result.prospect is None:
            self.load()
            return
        if result.event_id in self._applied:
            return
        self._applied.add(result.event_id)
        p = result.prospect
        old = self.view.rows.get(p.id)
        if not journal_delta_is_the_headers(self.period, result):
            self.reload_kpis()
        elif old is not None and old.owner != p.owner:
            self.sums.journalled(result.event_id, exact(result), None)
            self.reload_kpis()
        else:
            self.sums.journalled(result.event_id, exact(result), p.owner)
        self._apply_prospect(p)
        self._show_header()

    # -------------------------------------------------------- changes other sessions made

    def apply_remote(self, message: RemoteChanges) -> None:
        """Changes made elsewhere (another app, the command line; tui/live_sync.py): the header
        moves by each journal entry's recorded effect and the rows they touch are replaced where
        they are, without reading the table again; the cursor stays on its prospect."""
        if not self.query("#table"):  # (the app is closing: its screens are taken apart)
            return
        if message.settings:  # (no entries come with it: tui/live_sync.py)
            if self.loaded:  # the KPI period, set elsewhere: the header sums again in the one in force
                self.reload_kpis()
            return
        if message.reload or not self.loaded:
            self.load()
            return
        keep = self.table.current_id
        sum_again = False
        touched: set[int] = set()
        for entry in message.entries:
            if entry.id in self._applied:
                continue
            self._applied.add(entry.id)
            sum_again |= self._add_remote_kpi(entry, message)
            if entry.prospect_id is not None:
                touched.add(entry.prospect_id)
        # gone with no entry this session may read: handed away from a rep on a server, which
        # hides the prospect from them and its entries with it (tui/live_sync.py); what the
        # header counted of it is not known here, so it is summed again
        unsaid = message.gone - touched
        if unsaid:
            touched |= unsaid
            sum_again = True
        moved_lines = False
        in_place: list[Row] = []
        replaced: list[Row] = []  # rows whose line came, went or moved
        for pid in sorted(touched):
            if pid in self._pending:
                continue  # a change of this screen's is on its way; its saved result brings the row
            self._contacts.pop(pid, None)
            found = message.rows.get(pid)
            if found is None:
                if pid in self.view.rows:
                    self.view.remove(pid, self.table.cursor)
                    moved_lines = True
                if self._loading:
                    self._since_load.append(pid)
                continue
            row, hay = found
            if self._loading:
                self._since_load.append(row)
            if self.view.update_in_place(row, hay):
                in_place.append(row)
            else:
                # (a prospect a colleague won or lost leaves a list of open ones at once: kept,
                # it stood there, counted among those shown, until the next sort)
                self.view.put(row, hay, self.table.cursor, stay=False)
                replaced.append(row)
                moved_lines = True
        if moved_lines:
            self.table.lines_changed(*replaced, *in_place)
            if keep is not None and self.table.current_id != keep:
                self.table.go_to(keep)
            self._show_status()
        elif in_place:
            self.table.rows_changed(in_place)
        if sum_again:
            self.reload_kpis()
        self._show_header()
        current = self.table.current_id
        if current is not None and current in touched:
            self._show_detail(current, None)
            self.load_contacts([current])

    def _add_remote_kpi(self, entry: Entry, message: RemoteChanges) -> bool:
        """Move the header by one remote entry's recorded effect; True when it cannot be told
        that way (the KPI period or the owner may have changed what the header counts): sum again."""
        if self.sums.holds(entry.id):
            return False  # the KPIs were read after it: it is in them already
        pid = entry.prospect_id
        found = message.rows.get(pid) if pid is not None else None
        now = found[0] if found is not None else None
        old = self.view.rows.get(pid) if pid is not None else None
        owners = {r.owner for r in (now, old) if r is not None}
        if len(owners) != 1 or "owner" in fields_of(entry):
            self.sums.journalled(entry.id, entry.delta, None)
            return True
        if self.period is not None and self.period.restricts:
            still_open = now is not None and self.view.ladder.kind(now.stage_id) == ladder.OPEN
            if not still_open or entry.category in ("win", "lose", "reopen"):
                return True
        self.sums.journalled(entry.id, entry.delta, owners.pop())
        return False

    # -------------------------------------------------------- actions: stage moves

    def _current(self) -> Row | None:
        row = self.table.current_row
        if row is None:
            self.app.notify("No prospect here: move the cursor onto one", severity="warning", markup=False)
        return row

    def _closed_hint(self, current: Row, target: str) -> str | None:
        stage = self.view.ladder.stage(current.stage_id)
        return None if stage is None else ladder.closed_move_hint(current.name, stage.kind, stage.name, target)

    def _predict(self, row: Row, target: str) -> StageInfo | None:
        """The stage a move will land on, when it can be told without asking the database."""
        return predict_stage(self.stage_list, self.view.ladder.stage(row.stage_id), target)

    def _move(self, target: str, reason: str | None = None) -> None:
        row = self._current()
        if row is None:
            return
        app = evpipe_app(self)  # the store opens in the worker, never here
        new_stage = self._predict(row, target)
        shown = None
        expected = row.version
        if new_stage is not None:
            moved = row._replace(stage_id=new_stage.id, version=row.version + 1)
            before, after = self._part(row), self._part(moved)
            shown = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
            self._pending[row.id] = self._pending.get(row.id, 0) + 1
            self._before.setdefault(row.id, row)
            self._shown[row.id] = moved
            self.sums.show(row.id, shown, row.owner)
            lines_before = len(self.view.lines)
            self.view.put(moved, hint=self.table.cursor)
            if self._loading:
                self._since_load.append(moved)
            if len(self.view.lines) != lines_before:  # (grouped: it moved to another month's group)
                self.table.lines_changed(moved)
            else:
                self.table.refresh_row(row.id)
            self._show_header()
        elif target == "back" and self.view.ladder.kind(row.stage_id) != ladder.OPEN:
            # a reopen: the rung is the database's to tell (the one it closed from), so the row
            # keeps its stage until the save says; but the next key of a burst (`<<<`: reopen, then
            # back twice) is made on this move, not refused as somebody else's change since
            self._pending[row.id] = self._pending.get(row.id, 0) + 1
            self._before.setdefault(row.id, row)
            self._shown[row.id] = reopening = row._replace(version=row.version + 1)
            self.view.put(reopening, hint=self.table.cursor)
        pid = row.id
        self._save(
            lambda: app.store.move(pid, target, reason=reason, expected_version=expected),
            prospect_id=pid,
            shown=shown,
        )

    def action_undo(self) -> None:
        app = evpipe_app(self)  # the store opens in the worker, never here
        self._save(undoing(lambda: app.store.undo()))

    def action_undo_skip(self) -> None:
        """Leave your last change as it is (undo refused it: a colleague changed it since) and
        undo the one before it."""
        app = evpipe_app(self)
        self._save(undoing(lambda: app.store.undo(skip=True), last=False))

    # -------------------------------------------------------- actions: the prospect

    def action_add(self) -> None:
        from .prospect_form import ProspectForm

        app = evpipe_app(self)  # the store opens in the worker, never here
        if not self.stage_list:  # (the form's stage list would be empty: it crashed the app)
            self.app.notify(
                "A prospect can be added once the list is read: its stages are not known yet "
                "(a database with a problem says so on screen).",
                severity="warning",
                markup=False,
            )
            return

        def done(fields: dict | None) -> None:
            if fields:
                self._save(lambda: app.store.add(**fields))

        self.app.push_screen(ProspectForm(self.stage_list, None, owner=evpipe_app(self).who), done)

    def action_edit(self) -> None:
        row = self._current()
        if row is not None:
            self._opening = True
            self.fetch_for_edit(row.id)

    @work(thread=True, exclusive=True, group="fetch", exit_on_error=False, description="open for editing")
    def fetch_for_edit(self, prospect_id: int) -> None:
        try:
            try:
                info = evpipe_app(self).store.get(prospect_id)
            except DomainError as exc:
                self.post_message(ChangeFailed(str(exc), prospect_id))
                return
            self.app.call_from_thread(self._open_form, info)
        finally:
            self.app.call_from_thread(self._form_opened)

    def _form_opened(self) -> None:
        """The edit form is open (or could not be): the keys typed after `e` go to it, in order.
        They reached the list while the prospect was read: `e`, tabs and a value typed in one
        burst switched screens on the value's digits and saved the rest as the name."""
        self._opening = False
        evpipe_app(self).release_keys()

    def _open_form(self, info: ProspectInfo) -> None:
        from .prospect_form import ProspectForm

        app = evpipe_app(self)  # the store opens in the worker, never here

        def save(fields: dict, version: int) -> ChangeResult:
            changes = {k: v for k, v in fields.items() if k != "stage"}
            return app.store.edit(info.id, expected_version=version, **changes)

        # the form saves and stays open until saved (or refused: it keeps what was typed); the
        # saved change reaches this screen as any change made elsewhere (on_data_changed)
        self.app.push_screen(ProspectForm(self.stage_list, info, owner=evpipe_app(self).who, save=save))

    def action_open(self) -> None:
        row = self._current()
        if row is None:
            return
        from .prospect_page import ProspectPage

        self.app.push_screen(ProspectPage(row.id))

    def action_log_activity(self) -> None:
        row = self._current()
        if row is None:
            return
        from datetime import date

        from ..dialogs import ActivityDialog, FollowUpDialog, NextStep

        app, pid, version = evpipe_app(self), row.id, row.version

        def scheduled(step: NextStep | None) -> None:  # escape skipped it
            if step is not None:
                # on the version the key saw: the contact point just logged is this session's own
                # and passed over, a colleague's next step set meanwhile is not overwritten unsaid
                self._save(
                    lambda: app.store.set_follow_up(
                        pid, step.day, time=step.time, note=step.note, expected_version=version
                    ),
                    prospect_id=pid,
                )

        def done(entry: tuple[str, str, str] | None) -> None:
            if entry:
                kind, text, when = entry
                self._save(lambda: app.store.log_activity(pid, kind, text, when=when or None), prospect_id=pid)
                if kind in ASKS_NEXT_STEP:  # then the next step, where the last one was logged
                    current = date.fromisoformat(row.follow_up) if row.follow_up else None
                    day = default_follow_up(clock.today(), current)
                    self.app.push_screen(FollowUpDialog(f"Next step with {row.name}", day), scheduled)

        self.app.push_screen(ActivityDialog(), done)

    def action_follow_up(self) -> None:
        row = self._current()
        if row is None:
            return
        from ..dialogs import TextPrompt

        app, pid, version = evpipe_app(self), row.id, row.version

        def done(text: str | None) -> None:
            if text is None:
                return
            when = parse_follow_up(text)  # read as the command line and the prospect page read it
            self._save(
                lambda: app.store.set_follow_up(pid, when, expected_version=version, moved=True), prospect_id=pid
            )

        self.app.push_screen(
            TextPrompt(
                f"Next follow-up: {row.name}",
                "When? (a time and note it has stay; empty or none clears it)",
                initial=row.follow_up or "",
                placeholder="fri, +3d, 2w, 15 jan, 2027-01-15",
                validate=parse_follow_up,
            ),
            done,
        )

    def action_delete(self) -> None:
        row = self._current()
        if row is None:
            return
        from ..dialogs import ConfirmDialog

        app, pid, version = evpipe_app(self), row.id, row.version

        def done(yes: bool | None) -> None:
            if yes:
                self._save(lambda: app.store.delete(pid, expected_version=version), prospect_id=pid)

        self.app.push_screen(ConfirmDialog(f"Delete {row.name}? (u undoes it)"), done)

    # -------------------------------------------------------- actions: the view

    def _relayout(self) -> None:
        keep = self.table.current_id
        self.view.rebuild()
        self.table.reset(keep)
        self._show_status()

    @property
    def keys_ready(self) -> bool:
        """Once the first read has ended (first_read.py), and while no sort is on its way: keys
        typed after `s` in one burst act on the new order. `sk>` moved up and advanced a row of
        the old order, a prospect other than the one the rep saw above the cursor. Likewise while
        a prospect is read for its edit form (`e`): the keys after it are for the form."""
        return self._first_read_ended and not self._sorting and not self._opening

    def action_sort(self) -> None:
        keys = [k for k, _ in SORTS]
        mode = keys[(keys.index(self._sort_wanted) + 1) % len(keys)]
        self._sort_wanted = mode
        self._sorting = True
        self.query_one("#status", TextLine).show(Content(f"sorting by {SORT_LABELS[mode]}…"))
        self.view.mark()
        self.sort_rows(mode)

    @work(thread=True, exclusive=True, group="sort", exit_on_error=False, description="sort")
    def sort_rows(self, mode: str) -> None:
        app = evpipe_app(self)
        try:
            ids = ordered_ids(app.reader, mode, self.view.ladder, owner=app.decide_scope())
        except Exception:
            self.app.call_from_thread(self._sort_over)  # (the keys held for it go on, in the old order)
            raise
        self.post_message(SortLoaded(mode, ids))

    def _sort_over(self) -> None:
        self._sorting = False
        self._show_status()
        evpipe_app(self).release_keys()

    def on_sort_loaded(self, message: SortLoaded) -> None:
        if message.mode != self._sort_wanted:
            return  # pressed again since; the next order is on its way
        keep = self.table.current_id
        if self.complete:
            self.view.set_order(message.mode, message.ids)
        else:
            # only the first page is here: sort it; the rest comes sorted or is sorted on arrival
            self.view.set_sort(message.mode)
            self.view.rebuild()
        self.query_one("#columns", ColumnHeader).sort_key = message.mode
        self.table.reset(keep)
        self._sort_over()  # (and the keys typed after `s`, held meanwhile, run)

    def action_mine(self) -> None:
        if self.view.scope is not None:
            self.app.notify(f"You see {OWN_ONLY_LINE}: there is no everyone's view.", markup=False, timeout=5)
            return
        self.view.owner = None if self.mine else evpipe_app(self).who
        self._relayout()
        self._show_header()
        if self.scope.key not in self._history:
            self.load_history(self.scope)

    def action_group(self) -> None:
        self.view.grouped = not self.view.grouped
        self._relayout()

    def action_closed(self) -> None:
        """`c`: won and lost prospects in or out of the list (the header's KPIs do not change)."""
        self.show_closed = not self.show_closed
        self.view.closed = self.show_closed or self.filter.names_closed
        self._relayout()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus:  # `/` typed in the filter itself is part of the filter
            box.insert_text_at_cursor("/")
            return
        box.add_class("-shown")
        self.query_one("#filter-hint", TextLine).add_class("-shown")
        self._show_hint(box.value)
        self.set_focus(box)  # now: Widget.focus() would wait for the next refresh

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if not self.filter_text and not box.has_class("-shown"):
            return
        box.value = ""
        box.remove_class("-shown")
        self.query_one("#filter-hint", TextLine).remove_class("-shown")
        self.filter_text = ""
        self.filter = Filter()
        self._filter_wanted = None
        self._filter_round += 1
        self._release_filter_frame()
        self._last_filter_applied = ""
        self._hits.clear()
        self.view.matches = None
        self.view.rule = None
        self.view.closed = self.show_closed
        self._relayout()
        self.set_focus(self.table)  # now, before the next key (Widget.focus waits its turn)

    def _show_hint(self, text: str, error: str | None = None) -> None:
        """Under the filter box: the fields and values it takes, or why what is typed is not read."""
        line = self.query_one("#filter-hint", TextLine)
        if error:  # (as much of why as fits on its one line: the fix is said in the later clauses)
            line.show(
                Content.styled(fit_clauses(display_name(error), line.size.width or self.size.width), "$text-error")
            )
        else:
            line.show(Content.styled(display_name(hint(text, self.stage_list)), "$text-muted"))

    def _matches(self, rows: RowStore | list[Row]) -> MutableSet[int] | None:
        """The ids the filter on screen lets through, of these rows (all, or the first page):
        searched afresh (new rows), so the kept matches are let go."""
        self._hits.clear()
        if self.filter.empty:
            return None
        ladder, today = self.view.ladder, self.view.today
        if isinstance(rows, list):  # the first page: rows without their contact and notes
            return {r.id for r in rows if self.filter.holds(r, ladder, haystack(r.name, r.company, "", ""), today)}
        return self.filter.select(rows, ladder, today)

    def _filter_typed(self, value: str) -> None:
        """Filter as you type: the box calls this as its text changes, inside the key's own
        handling (LineInput's `on_change`), so that the text, the rows and the count of a quick
        search come in one frame (after the Changed message, they took the next frame, up to a
        60th of a second later). What is typed is read at once (a filter that cannot be read says
        why under the box, and the rows are those of its words before the last); a search of a
        few thousand last matches runs here, a longer one in a worker, one at a time: keys typed
        while it runs are one search, of the latest text. A text that grew searches only the last
        matches (models/filters.py, Hits)."""
        text = value.strip()
        try:
            parsed = parse_filter(text, self.stage_list, self.view.today)
        except DomainError as exc:
            # a field just begun (`stage:`) is not wrong yet: show the values it takes
            self._show_hint(value, None if value.endswith(":") else str(exc))
            # The rows are those of the text before its last word, the one being typed: they
            # stayed those of the last text read, `wedding stage` (the word) for `wedding
            # stage:zz`, and said "0 shown" where `wedding` has some (the tester's report).
            text = text.rsplit(None, 1)[0] if len(text.split()) > 1 else ""
            try:
                parsed = parse_filter(text, self.stage_list, self.view.today)
            except DomainError:
                return  # (an earlier word is wrong too: the rows stay as they were)
        else:
            self._show_hint(value)
        self._filter_wanted = (text, parsed.with_pace(self.view.pace))
        self._search_next()

    def _search_next(self) -> None:
        """Start the search of the latest text typed, unless one is running (its result starts
        the next) or that text's results are on screen."""
        if self._filter_searching or self._filter_wanted is None:
            return
        text, parsed = self._filter_wanted
        self._filter_wanted = None
        if text == self._last_filter_applied and parsed == self.filter:
            return
        if parsed.empty:  # the box emptied: every row, no search
            self._show_filtered(text, parsed, None, narrowed=False)
            return
        view = self.view
        if self._hits.narrows_within(parsed, view.rows, view.ladder, view.today, view.matches, INLINE_NARROWING):
            # a few thousand last matches to test again (a ms or two): here, so that the text typed,
            # the rows and the count come in the key's own frame, without a worker's round trip
            shown = view.matches
            ids = self._hits.select(parsed, view.rows, view.ladder, view.today, shown)
            self._show_filtered(text, parsed, ids, narrowed=self._hits.narrowed)
            return
        self._filter_searching = True
        self._held_frame()  # the text typed waits for its results (released in `_show_filtered`)
        sources = view.filter_sources(self.show_closed or parsed.names_closed)
        self.search_filter(text, parsed, view.rows, view.ladder, view.today, view.matches, self._filter_round, sources)

    @work(thread=True, group="filter", exit_on_error=False, description="filter")
    def search_filter(
        self,
        text: str,
        parsed: Filter,
        rows: RowStore,
        ladder: Ladder,
        today: date,
        shown: MutableSet[int] | None,
        round_: int,
        sources: tuple[array | None, array | None] = (None, None),
    ) -> None:
        """One search, off the UI thread (tens of ms at 100,000 prospects when every row is read),
        and the lines of its hits picked in order (PipelineView.filter_sources, take_hits), so that
        the UI thread only puts them on screen. It works in slices and lets the UI thread in
        between (a slice is one call into C that holds the interpreter lock); a text typed since
        it began stops it there, and the newest text is searched instead."""
        changes = rows.changes
        shown_lines, base = sources

        step = yielding()

        def pause() -> None:
            if self._filter_wanted is not None or round_ != self._filter_round:
                raise _Superseded
            step()

        lines = None
        try:
            ids = self._hits.select(parsed, rows, ladder, today, shown, pause)
            source = shown_lines if self._hits.narrowed else base
            if source is not None:
                # kept_all: every line shown is still a match ('harbo' after 'harb'), no pick
                lines = source if self._hits.kept_all else pick(source, ids, whole=len(ids) >= len(rows), pause=pause)
        except _Superseded:  # dropped: the newest text is searched next (on_filter_found)
            self.post_message(FilterFound(text, parsed, set(), False, rows, changes, shown, -1))
            return
        except (IndexError, RuntimeError):  # the rows changed under the search: it is done again
            ids = set()
            changes = -1
        self.post_message(
            FilterFound(text, parsed, ids, self._hits.narrowed, rows, changes, shown, round_, lines, shown_lines, base)
        )

    def on_filter_found(self, message: FilterFound) -> None:
        self._filter_searching = False
        if message.round != self._filter_round:  # the filter was cleared since, or a newer text typed
            self._search_next()
            return
        if message.rows is not self.view.rows or message.changes != message.rows.changes:
            # the rows changed while it searched: the same text again, every row this time
            self._hits.clear()
            if self._filter_wanted is None:
                self._filter_wanted = (message.text, message.filter)
            self._search_next()
            return
        narrowed = message.narrowed and message.shown is not None and message.shown is self.view.matches
        self._show_filtered(message.text, message.filter, message.ids, narrowed=narrowed, found=message)
        self._search_next()

    def on_unmount(self) -> None:
        self._release_filter_frame()

    def _held_frame(self) -> FrameHold:
        """The hold on painting for the filter's results: the one taken when its search began in
        the worker (if its limit has not passed), else a new one."""
        if self._filter_frame is None or not self._filter_frame.held:
            self._filter_frame = FrameHold(self.app, FILTER_FRAME_HOLD)
        return self._filter_frame

    def _release_filter_frame(self) -> None:
        if self._filter_frame is not None:
            self._filter_frame.release()
            self._filter_frame = None

    def _show_filtered(
        self,
        text: str,
        parsed: Filter,
        matches: MutableSet[int] | None,
        *,
        narrowed: bool,
        found: FilterFound | None = None,
    ) -> None:
        """A search's results and their count on screen, in one go: with the lines its worker
        picked when they still fit what is on screen, else picked here."""
        self.filter_text = text
        self.filter = parsed
        closed = self.show_closed or parsed.names_closed
        narrowed = narrowed and closed == self.view.closed
        self.view.closed = closed
        self.view.rule = parsed if matches is not None else None
        self._last_filter_applied = text
        keep = self.table.current_id
        if (
            found is not None
            and found.lines is not None
            and matches is not None
            and narrowed == found.narrowed
            and self.view.take_hits(matches, found.lines, narrowed, found.shown_lines, found.base_lines)
        ):
            pass
        elif matches is not None and narrowed:
            self.view.narrow(matches)
        else:
            self.view.matches = matches
            self.view.rebuild()
        self.table.reset(keep)
        self._show_status()
        # painted in one frame: at once when only repaints wait (FrameHold.release_painted), else
        # once the status line (changed last) has told the screen: the widgets tell it one by one,
        # and a frame begun between two would leave the count to the next one, a 60th of a second
        # later (tui/frames.py); held since the search began if it ran in the worker
        hold = self._held_frame()
        self._filter_frame = None
        hold.release_painted(self.query_one("#status", TextLine))

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.action_clear_filter()
        else:
            self.set_focus(self.table)  # now: a key typed right after enter goes to the table
