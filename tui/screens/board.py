"""The stage board (`8`): a column per open stage with its count, TV and EV, its prospects as
cards by expected month; won and lost as totals below.

The stage keys work as on the pipeline list (tui/screens/stage_keys.py), by the same path: the
card moves to its new column and the KPI header moves by what the move adds (a prediction from
the ladder, models/board.py), then the app's saver writes it in a worker; the saved change
corrects the header by its exact effect, and a change that fails puts the board and the header
back as the database has them and says why. Enter opens the prospect page.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.worker import Worker

from evpipe.models import clock
from evpipe.models.board import BoardView, predict_stage
from evpipe.models.changes_feed import kpis_as_of_journal
from evpipe.models.header_sums import HeaderSums, journal_delta_is_the_headers
from evpipe.models.kpi import Kpi, Scope
from evpipe.models.period import Period, current_period
from evpipe.models.pipeline_view import Ladder, Row, RowStore, load_ladder, load_rows, ordered_ids, row_of
from evpipe.models.records import ChangeResult
from evpipe.models.values import format_amount
from evpipe.models.visibility import OWN_ONLY_SHORT
from evpipe.models.week_history import week_history

from ..access import evpipe_app
from ..commands import BindingCommands
from ..first_read import ReadyAfterFirstRead
from ..messages import (
    BoardKpisLoaded,
    BoardLoaded,
    BoardMoved,
    ChangeFailed,
    ChangeSaved,
    FocusHistoryLoaded,
    RemoteChanges,
    from_worker,
    superseded,
)
from ..saving import Change, undoing
from ..widgets import TextLine
from ..widgets.footer import KeyFooter
from ..widgets.kpi_header import KpiHeader
from ..widgets.stage_board import StageBoard
from .stage_keys import StageKeys


class BoardScreen(ReadyAfterFirstRead, StageKeys, Screen):
    """The pipeline as a board of stages."""

    CSS_PATH = "board.tcss"
    COMMANDS = {BindingCommands}

    BINDINGS = [
        Binding(">,.", "advance", "Advance", id="board.advance"),
        Binding("<,comma", "back", "Back", id="board.back"),
        Binding("w", "won", "Won", id="board.won"),
        Binding("l", "lost", "Lost", id="board.lost"),
        Binding("u", "undo", "Undo", id="board.undo"),
        Binding("enter", "open", "Open", id="board.open", show=False),
    ]

    ACTION_HELP: dict[str, str] = {
        "advance": "Advance (the card moves right)",
        "back": "Back (the card moves left)",
        "won": "Mark won (to the won total)",
        "lost": "Mark lost (asks why)",
        "undo": "Undo your last change",
        "open": "Open the prospect page",
    }

    def __init__(self) -> None:
        super().__init__()
        self.view: BoardView | None = None
        self.sums = HeaderSums()  # the header's figures, kept current between reads (its scope's only)
        self._board_read = 0  # the number of the board's read on its way (HeaderSums.begin), else 0
        self.period: Period | None = None
        self._pending: dict[int, int] = {}  # prospect id -> moves shown but not saved yet
        self._applied: set[int] = set()  # event ids this screen has applied itself
        self._stale = False  # something changed elsewhere while the board was hidden

    def compose(self) -> ComposeResult:
        yield KpiHeader(id="kpis")
        yield StageBoard(id="board")
        yield TextLine("", id="board-status", cut_at="  ")
        yield KeyFooter()

    @property
    def board(self) -> StageBoard:
        return self.query_one("#board", StageBoard)

    @property
    def header(self) -> KpiHeader:
        return self.query_one("#kpis", KpiHeader)

    @property
    def kpi(self) -> Kpi:
        return self.sums.all

    def on_mount(self) -> None:
        self.board.focus()
        evpipe_app(self).data_changed_signal.subscribe(self, self._data_changed)
        evpipe_app(self).remote_changed_signal.subscribe(self, self._changed_remotely)
        self.load()

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.load()

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """(Re)read the board. The pipeline list holds every row already (kept current by each
        change): a copy of its rows is taken here, in C, rather than read again; only the order
        is asked of SQLite."""
        pipeline = getattr(self.app, "pipeline", None)
        settled = pipeline.settled_rows if pipeline is not None else None
        if self._board_read:  # (replaced: its sums, should they land, are not shown)
            self.sums.read_failed(self._board_read)
        self._board_read = self.sums.begin()
        self._read(settled.copy() if settled is not None else None, self._board_read)

    @work(thread=True, exclusive=True, group="board-load", exit_on_error=False, description="load the board")
    def _read(self, rows: RowStore | None, ticket: int) -> None:
        """Every row, in the pipeline's month order (sorted by SQLite), into columns; the KPIs over
        the KPI period; then the header's history."""
        app = evpipe_app(self)
        engine = app.reader
        owner = app.decide_scope()  # a rep the owner lets see only their own: theirs, and their KPIs
        stages, archived = load_ladder(engine)
        ladder = Ladder.of(stages, extra=archived)
        period = current_period(engine)
        journal_id, (kpi,) = kpis_as_of_journal(engine, Scope(owner=owner, period=period))
        if rows is None:
            rows, order = load_rows(engine, "month", ladder, owner=owner)
        else:
            order = ordered_ids(engine, "month", ladder, owner=owner)
        # the `~` as the list marks it: slow by each stage's pace (the list's own, once it has read
        # it; else read here)
        pace = app.pipeline.view.pace if app.pipeline is not None else None
        if pace is None:
            from evpipe.models.pace import load_pace

            pace = load_pace(engine, with_prospects=False)
        board = BoardView(stages, ladder, rows, order, today=clock.today(), period=period, pace=pace)
        self.post_message(from_worker(BoardLoaded(board, kpi, period, journal_id, ticket)))
        week_ago, _label, weekly = week_history(engine, Scope(owner=owner, period=period))
        self.post_message(FocusHistoryLoaded(week_ago, weekly))

    def reload_kpis(self) -> None:
        """Sum the header again in SQL: now, or when the read asked for before lands (the
        screen's asks go one at a time: models/header_sums.py)."""
        ticket = self.sums.want_read()
        if ticket is not None:
            self.load_kpis(ticket)

    @work(thread=True, exclusive=True, group="board-kpis", exit_on_error=False, description="board KPIs")
    def load_kpis(self, ticket: int) -> None:
        app = evpipe_app(self)
        engine = app.reader
        owner = app.decide_scope()
        journal_id, (kpi,) = kpis_as_of_journal(engine, Scope(owner=owner, period=current_period(engine)))
        self.post_message(BoardKpisLoaded(kpi, journal_id, ticket))

    def work_failed(self, worker: Worker, error: BaseException) -> str:
        if worker.group == "board-kpis":
            self.sums.read_failed(self.sums.asked)
        elif worker.group == "board-load" and self._board_read:
            self.sums.read_failed(self._board_read)
            self._board_read = 0
        return super().work_failed(worker, error)

    def on_board_loaded(self, message: BoardLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        if message.ticket == self._board_read:
            self._board_read = 0
        row = self.board.current_row
        self.view = message.board
        self.period = message.period
        # (moves shown and not saved yet stay counted: their saves place their cards)
        if self.sums.read(message.kpi, Kpi(), message.journal_id, message.ticket):
            self.reload_kpis()
        self._pending.clear()
        self.header.period_label = message.period.short if message.period is not None else ""
        self.header.show(self.kpi)
        self.board.show_board(message.board, row.id if row is not None else None)
        self._show_status()

    def on_board_kpis_loaded(self, message: BoardKpisLoaded) -> None:
        if self.sums.read(message.kpi, Kpi(), message.journal_id, message.ticket):
            self.reload_kpis()
        self.header.show(self.kpi)

    def on_focus_history_loaded(self, message: FocusHistoryLoaded) -> None:
        self.header.set_history(message.week_ago, message.weekly)

    def _show_status(self) -> None:
        view = self.view
        if view is None:
            return
        board = self.board
        shown = board.visible_columns
        parts = []
        if evpipe_app(self).scope_owner is not None:
            parts.append(OWN_ONLY_SHORT.capitalize())
        # the columns out of view come first: on a narrow terminal the line keeps the parts that
        # fit whole from its start, and the totals after them are what can go
        if shown.start > 0:
            parts.append(f"◀ {shown.start} more")
        after = len(view.columns) - shown.stop
        if after > 0:
            parts.append(f"{after} more ▶")
        parts.append(f"Won {view.won.count:,} · {format_amount(view.won.value_cents)}")
        parts.append(f"Lost {view.lost.count:,} · {format_amount(view.lost.value_cents)}")
        if self.period is not None and self.period.restricts:
            parts.append(f"({self.period.short})")
        self.query_one("#board-status", TextLine).show(Content("  ".join(parts)))

    def on_stage_board_board_moved(self, _message: BoardMoved) -> None:
        self._show_status()  # it names the columns out of view

    # ------------------------------------------------------------ the stage keys

    def _current(self) -> Row | None:
        row = self.board.current_row
        if row is None:
            self.app.notify("No prospect here: move onto a card", severity="warning", markup=False)
        return row

    def _part(self, row: Row) -> tuple[int, int, int]:
        """What a row adds to the header: its share of the KPIs when the KPI period holds it."""
        assert self.view is not None
        kind = self.view.ladder.kind(row.stage_id)
        if self.period is not None and not self.period.holds(kind, row.month):
            return (0, 0, 0)
        return tuple(self.view.ladder.part(row))  # type: ignore[return-value]

    def _move(self, target: str, reason: str | None = None) -> None:
        row = self._current()
        view = self.view
        if row is None or view is None:
            return
        app = evpipe_app(self)  # the store opens in the saver's worker, never here
        new_stage = predict_stage(view.stages, view.ladder.stage(row.stage_id), target)
        delta = (0, 0, 0)
        if new_stage is not None:
            moved = row._replace(stage_id=new_stage.id, version=row.version + 1)
            before, after = self._part(row), self._part(moved)
            delta = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
            self._pending[row.id] = self._pending.get(row.id, 0) + 1
            self.sums.show(row.id, delta, row.owner)
            self.header.show(self.kpi)
            self._place(moved, follow=True)
        pid, expected = row.id, row.version
        self._save(lambda: app.store.move(pid, target, reason=reason, expected_version=expected), pid, delta)

    def action_undo(self) -> None:
        app = evpipe_app(self)
        self._save(undoing(lambda: app.store.undo()), None, (0, 0, 0))

    def action_open(self) -> None:
        row = self._current()
        if row is None:
            return
        from .prospect_page import ProspectPage

        self.app.push_screen(ProspectPage(row.id))

    def _place(self, row: Row, *, follow: bool) -> None:
        """Put a row's card where it belongs now; the cursor goes with it when it stays open."""
        assert self.view is not None
        board = self.board
        was = board.current_row
        at = self.view.put(row)
        if (follow or board.vacant == row.id) and at is not None:
            board.go_to(*at)  # (and the card that left from under the cursor is back: undo)
        elif follow and was is not None and was.id == row.id:
            board.left_board(row.id)  # won or lost by a key: the next key of a burst is not the next card's
        elif was is not None and was.id != row.id and (found := self.view.find(was)) is not None:
            board.go_to(*found)  # the cursor stays on its card when another one moves
        else:
            board.changed()
        self._show_status()

    # ------------------------------------------------------------ saving

    def _save(self, call: Callable[[], ChangeResult], pid: int | None, delta: tuple[int, int, int]) -> None:
        """Hand the change to the app's saver once the frame showing it is painted: the save's
        worker then does not compete with that frame for the interpreter (changes keep their order)."""
        self.call_after_refresh(evpipe_app(self).saver.save, Change(call, self, pid, delta))

    def on_change_saved(self, message: ChangeSaved) -> None:
        result = message.result
        self._applied.add(result.event_id)
        p = result.prospect
        if p is None or self.view is None:
            self.load()  # a ladder change: every card may be priced differently
        else:
            optimistic = message.optimistic
            if p.id in self._pending:
                self._pending[p.id] -= 1
                if self._pending[p.id] <= 0:
                    del self._pending[p.id]
            headers = journal_delta_is_the_headers(self.period, result)
            self.sums.saved(result, optimistic, p.owner, headers=headers)
            self.header.show(self.kpi)
            if not headers:
                self.reload_kpis()  # it may have moved in or out of the KPI period: sum again, in SQL
            if p.id not in self._pending:
                self._apply(p)
        evpipe_app(self).say_saved(result)

    def _apply(self, p) -> None:
        assert self.view is not None
        scope = evpipe_app(self).scope_owner
        if p.deleted or (scope is not None and p.owner != scope):  # (handed to someone else: it leaves)
            self.view.remove(p.id)
            self.board.changed()
            self._show_status()
        else:
            self._place(row_of(p), follow=False)

    def on_change_failed(self, message: ChangeFailed) -> None:
        self.app.notify(message.error, markup=False, severity="error", timeout=6)
        # take back what was shown: the cards and the KPIs as the database has them
        self._pending.pop(message.prospect_id or 0, None)
        self.sums.settle(message.prospect_id, message.optimistic)  # (the board read again holds none of it)
        self.load()

    def _changed_remotely(self, message: RemoteChanges) -> None:
        """Another session's changes (tui/live_sync.py): the cards they touch move or go, as they
        are now, and the header is read again; shown later, the board reads everything again."""
        # (a setting: the KPI period, set elsewhere, is what its header sums and its cards count)
        if not self.is_current or self.view is None or message.reload or message.settings:
            if self.is_current:
                self.load()
            else:
                self._stale = True
            return
        for pid in sorted(message.gone):
            if pid not in self._pending:
                self.view.remove(pid)
        for pid, (row, _hay) in sorted(message.rows.items()):
            if pid not in self._pending:  # (a move of this screen's is on its way; its saved result places it)
                self._place(row, follow=False)
        self.board.changed()
        self._show_status()
        self.reload_kpis()

    def _data_changed(self, result: ChangeResult | None) -> None:
        """A change made elsewhere (the prospect page, another screen, an import)."""
        if result is not None and result.event_id in self._applied:
            return
        if not self.is_current or self.view is None or result is None or result.prospect is None:
            if self.is_current:
                self.load()
            else:
                self._stale = True
            return
        self._applied.add(result.event_id)
        self.reload_kpis()
        self._apply(result.prospect)
