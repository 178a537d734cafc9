"""The focus screen: the prospects to work on now, most urgent first, each with its reason
(models.focus: overdue follow-ups, then due this week, then stale, then by next-step gain).

The stage keys work here as on the pipeline screen (> or . advance, < or , back, w won, l lost,
u undo); each change is saved by the app's saver (tui/saving.py), the KPI header moves by the
change's exact effect, the app is told (app.data_changed) and the list is read again. Enter opens the prospect's page.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from evpipe.models.focus import FocusItem, count_follow_ups, focus
from evpipe.models.header_sums import exact
from evpipe.models.kpi import Kpi, Scope, kpis
from evpipe.models.names import display_name
from evpipe.models.pace import load_pace
from evpipe.models.period import current_period
from evpipe.models.records import ChangeResult
from evpipe.models.values import money_style
from evpipe.models.visibility import OWN_ONLY_LINE
from evpipe.models.week_history import week_history

from ..access import evpipe_app
from ..messages import ChangeFailed, ChangeSaved, FocusHistoryLoaded, FocusLoaded, from_worker, superseded
from ..saving import Change, undoing
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable
from ..widgets.kpi_header import KpiHeader
from .live import LiveScreen
from .stage_keys import StageKeys

LIMIT = 100
MONEY_WIDTH = 7  # the Value and Gain columns: amounts too wide for it take a unit (models.values)
GROUP_STYLE = {"overdue": "bold red", "due": "yellow", "stale": "magenta", "gain": ""}


class FocusScreen(StageKeys, LiveScreen):
    """What to work on next."""

    LOADING = ("focus-title", "Focus", "the list")

    CSS_PATH = "focus.tcss"

    BINDINGS = [
        Binding(">,.", "advance", "Advance", id="focus.advance"),
        Binding("<,comma", "back", "Back", id="focus.back"),
        Binding("w", "won", "Won", id="focus.won"),
        Binding("l", "lost", "Lost", id="focus.lost"),
        Binding("u", "undo", "Undo", id="focus.undo"),
        Binding("U", "undo_skip", "Skip undo", id="focus.undo_skip", show=False),
        Binding("enter", "open", "Open", id="focus.open", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[FocusItem] = []
        self.kpi = Kpi()
        self._keep_id: int | None = None
        #: Each prospect's version after this screen's own last save of it (written by the saver's
        #: worker, which saves one at a time): a burst of keys is made on the keys before it.
        self._saved_version: dict[int, int] = {}
        #: The prospect that left the list from under the cursor by this screen's own key (won by
        #: `>` held down), and the row the cursor is on since: the stage keys do nothing there until
        #: the cursor moves, as they would move the next prospect, one a burst was not aimed at.
        self._left: tuple[str, int] | None = None

    def compose(self) -> ComposeResult:
        yield KpiHeader(id="kpis")
        yield self.loading_line()
        yield KeyTable(id="focus-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    @property
    def header(self) -> KpiHeader:
        return self.query_one("#kpis", KpiHeader)

    @property
    def table(self) -> DataTable:
        return self.query_one("#focus-table", DataTable)

    def _widths(self, width: int) -> tuple[int, int]:
        """(name, why) column widths: 80 columns first, a wider terminal widens both."""
        spare = max(0, width - 80)
        return 24 + spare // 2, 16 + spare - spare // 2

    def _columns(self) -> None:
        self._shown_widths = self._widths(self.size.width or 80)
        name_w, why_w = self._shown_widths
        table = self.table
        table.clear(columns=True)
        table.add_column("Prospect", key="name", width=name_w)
        table.add_column("Stage", key="stage", width=12)
        table.add_column(Text("Value", justify="right"), key="value", width=MONEY_WIDTH)
        table.add_column(Text("Gain", justify="right"), key="gain", width=MONEY_WIDTH)
        table.add_column("Why now", key="why", width=why_w)

    def on_resize(self) -> None:
        if self.is_mounted and self._widths(self.size.width) != getattr(self, "_shown_widths", None):
            self._columns()
            self._rows()

    def on_mount(self) -> None:
        self._columns()
        self.table.focus()
        self.follow_changes()

    def reload(self) -> None:
        self.load()
        self.load_history()

    # ------------------------------------------------------------ loading

    @work(thread=True, exclusive=True, group="focus-load", exit_on_error=False, description="the focus list")
    def load(self) -> None:
        app = evpipe_app(self)
        engine = app.reader
        owner = app.decide_scope()  # a rep the owner lets see only their own: theirs, and their KPIs
        period = current_period(engine)
        # read once: both lists use it (each reads when its prospects entered their stage)
        pace = load_pace(engine, with_prospects=False, of=())
        self.post_message(
            from_worker(
                FocusLoaded(
                    focus(engine, limit=LIMIT, owner=owner, pace=pace),
                    kpis(engine, Scope(owner=owner, period=period)),
                    count_follow_ups(engine, owner=owner, pace=pace),
                    period,
                )
            )
        )

    @work(thread=True, exclusive=True, group="focus-history", exit_on_error=False, description="KPI history")
    def load_history(self) -> None:
        app = evpipe_app(self)
        engine = app.reader
        scope = Scope(owner=app.decide_scope(), period=current_period(engine))
        week_ago, _label, weekly = week_history(engine, scope)
        self.post_message(FocusHistoryLoaded(week_ago, weekly))

    @on(FocusHistoryLoaded)
    def _history(self, message: FocusHistoryLoaded) -> None:
        self.header.set_history(message.week_ago, message.weekly)

    @on(FocusLoaded)
    def _loaded(self, message: FocusLoaded) -> None:
        if superseded(message):
            # a newer read is on its way (each save starts one): this one, cancelled but landing
            # anyway, may land after it and put back a header without the last change
            return
        table = self.table
        keep = self._keep_id
        if keep is None and self.items and 0 <= table.cursor_row < len(self.items):
            keep = self.items[table.cursor_row].id
        row_before = table.cursor_row
        own = self._keep_id
        self._keep_id = None
        before = self.items
        self.items = message.items
        self.kpi = message.kpi
        self.header.period_label = message.period.short if message.period is not None else ""
        self.header.show(self.kpi)
        self._rows()
        target = next((i for i, item in enumerate(self.items) if item.id == keep), None)
        if target is None:
            target = min(max(row_before, 0), max(len(self.items) - 1, 0))
            gone = next((item for item in before if item.id == own), None)
            if gone is not None:
                self._left = (gone.name, target)
        if self.items:
            table.move_cursor(row=target, animate=False)
        counts = message.counts
        title = Text("Focus", style="bold")
        scoped = evpipe_app(self).scope_owner is not None
        if scoped:  # (the line is one row: this takes the place of the gain's explanation)
            title.append(f"  {OWN_ONLY_LINE}:", style="dim")
        if self.items:
            title.append(
                f"  {counts['overdue']:,} overdue · {counts['due']:,} due this week · {counts['stale']:,} stale",
                style="",
            )
            if not scoped:
                title.append("  · gain = EV the next step adds", style="dim")
        else:
            title.append("  no open prospects: nothing to chase", style="dim")
        self.query_one("#focus-title", Static).update(title)

    def _rows(self) -> None:
        table = self.table
        row = table.cursor_row
        table.clear()
        wide = self._shown_widths[1] >= 28  # room for the reason in full words
        value = money_style((i.value_cents for i in self.items), width=MONEY_WIDTH)
        gain = money_style((i.gain_micros for i in self.items), micros=True, width=MONEY_WIDTH, signed=True)
        for item in self.items:
            why = Text(
                item.reason if wide and item.group != "gain" else item.short_reason, style=GROUP_STYLE[item.group]
            )
            table.add_row(
                Text(display_name(item.name)),
                Text(item.stage),
                Text(value(item.value_cents), justify="right"),
                Text(gain(item.gain_micros, micros=True, signed=True), justify="right", style="green"),
                why,
                key=str(item.id),
            )
        if self.items:
            table.move_cursor(row=min(max(row, 0), len(self.items) - 1), animate=False)

    # ------------------------------------------------------------ stage keys

    def _current(self) -> FocusItem | None:
        if not self.items:
            self.app.notify("No prospect here", severity="warning", markup=False)
            return None
        if self._left is not None and self.table.cursor_row == self._left[1]:
            self.app.notify(
                f"{self._left[0]} has left the focus list; move the cursor to the prospect to move next",
                severity="warning",
                markup=False,
            )
            return None
        return self._at_cursor()

    def action_lost(self) -> None:
        self._left = None  # (it asks why, naming the prospect: no burst goes on past the question)
        super().action_lost()

    def _at_cursor(self) -> FocusItem | None:
        return self.items[min(self.table.cursor_row, len(self.items) - 1)] if self.items else None

    @on(DataTable.RowHighlighted, "#focus-table")
    def _cursor_moved(self, event: DataTable.RowHighlighted) -> None:
        if self._left is not None and event.cursor_row != self._left[1]:
            self._left = None

    def _save(self, call: Callable[[], ChangeResult], keep_id: int | None) -> None:
        self._keep_id = keep_id
        evpipe_app(self).saver.save(Change(call, self))

    def _move(self, target: str, reason: str | None = None) -> None:
        item = self._current()
        if item is None:
            return
        app, pid, seen = evpipe_app(self), item.id, item.version
        saved = self._saved_version

        def move() -> ChangeResult:
            # the list is read again after each save, so a burst's next key still has the version
            # shown before this one: the key's change would be refused as somebody else's. The
            # newer of what was shown and what this screen saved is what the rep acted on
            result = app.store.move(pid, target, reason=reason, expected_version=max(seen, saved.get(pid, seen)))
            if result.prospect is not None:
                saved[pid] = result.prospect.version
            return result

        self._save(move, pid)

    def action_undo(self) -> None:
        app = evpipe_app(self)  # the store opens in the saver's worker, never here
        self._save(undoing(lambda: app.store.undo()), None)

    def action_undo_skip(self) -> None:
        app = evpipe_app(self)
        self._save(undoing(lambda: app.store.undo(skip=True), last=False), None)

    def action_open(self) -> None:
        item = self._at_cursor()
        if item is None:
            self.app.notify("No prospect here", severity="warning", markup=False)
            return
        from .prospect_page import ProspectPage

        self.app.push_screen(ProspectPage(item.id))

    @on(DataTable.RowSelected, "#focus-table")
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()

    def on_change_failed(self, message: ChangeFailed) -> None:
        self.app.notify(message.error, markup=False, severity="error", timeout=6)
        self.load()

    def on_change_saved(self, message: ChangeSaved) -> None:
        result = message.result
        self.kpi = self.kpi.moved(*exact(result))
        self.header.show(self.kpi)
        evpipe_app(self).say_saved(result)
        # the app tells every screen once this has run (the message bubbles up to it)
        self.load()
