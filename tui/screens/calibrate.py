"""The sighting-in screen: per open stage, the configured probability beside the observed one (won,
lost, n, 95% Wilson interval), the conversion to the next stage and a suggested probability; the
Brier score of the current ladder. A stage without a suggestion says why (no outcomes, only
inferred ones, no wins, no losses, too few, or today's probability fits). `a` accepts the suggestion
of the stage under the cursor, `A` all of them, each after a confirmation that lists the changes and
the EV they move, each recorded as a probability change (undo reverses it). `m` changes the window:
every known outcome, or those closed in the last 24, 12, 6 or 3 months.
Nothing changes without the user. Figures come from models.calibration, in a worker.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from evpipe.models.calibration import Calibration, StageCalibration, calibrate, change_text, changes_text
from evpipe.models.errors import DomainError
from evpipe.models.forecast_range import band_record
from evpipe.models.records import ChangeResult
from evpipe.models.values import format_percent

from ..access import evpipe_app
from ..dialogs import ConfirmDialog
from ..messages import CalibrationApplied, CalibrationLoaded, from_worker, superseded
from ..widgets import user_text
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable
from .live import LiveScreen

WINDOWS: list[int | None] = [None, 24, 12, 6, 3]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


class CalibrateScreen(LiveScreen):
    """Sight in the stage probabilities against real outcomes."""

    LOADING = ("calibrate-summary", "", "every closed deal")

    CSS_PATH = "calibrate.tcss"

    BINDINGS = [
        Binding("a", "accept", "Accept", id="calibrate.accept"),
        Binding("A", "accept_all", "Accept all", id="calibrate.accept_all", key_display="A"),
        Binding("m", "window", "Window", id="calibrate.window"),
        Binding("u", "undo", "Undo", id="calibrate.undo"),
        Binding("U", "undo_skip", "Skip undo", id="calibrate.undo_skip", show=False),
    ]

    #: What each action does, for the help screen and the command palette.
    ACTION_HELP: dict[str, str] = {
        "accept": "Accept the stage's suggestion",
        "accept_all": "Accept every suggestion",
        "window": "Change the window of outcomes",
        "undo": "Undo your last change",
        "undo_skip": "Skip a refused undo; undo the rest",
    }

    def __init__(self) -> None:
        super().__init__()
        self.cal: Calibration | None = None
        self.window: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text("Sighting in", style="bold")
            + Text("  each stage's probability against what really happened", style="dim"),
            id="calibrate-title",
        )
        yield KeyTable(id="calibrate-table", cursor_type="row", zebra_stripes=True)
        yield self.loading_line()
        yield Static(
            Text(
                "Observed = won / (won + lost) of the deals that closed from this stage or a later one. A "
                "suggestion needs wins and losses, n >= 10 and today's probability outside the 95% "
                "interval; it moves part of the way, like sighting in a rifle, and stays below Won. "
                "inferred: the import guessed the stage, so it is not evidence.",
                style="dim",
            ),
            id="calibrate-help",
        )
        yield KeyFooter()

    COLUMNS = (
        ("Stage", "stage"),
        ("Now", "now"),
        ("Seen", "seen"),
        ("Won", "won"),
        ("Lost", "lost"),
        ("n", "n"),
        ("95% interval", "ci"),
        ("Next", "next"),
        ("Suggest", "suggest"),
    )

    #: The narrowest the Stage column gets so that the figures beside it stay on the screen.
    STAGE_WIDTH_MIN = 12

    def on_mount(self) -> None:
        table = self.query_one("#calibrate-table", DataTable)
        self._add_columns(table, [])
        table.focus()
        self.follow_changes()

    def _add_columns(self, table: DataTable, cells: list[list[Text]]) -> None:
        """The columns, sized to `cells` up front: the Stage column no wider than leaves the others
        on the screen (a long stage name pushed the suggestions off an 80-column one), and rebuilt
        with every load (a DataTable's column never narrows: a stage renamed shorter kept it wide)."""
        widths = [
            max([cell_len(label)] + [row[i].cell_len for row in cells]) for i, (label, _) in enumerate(self.COLUMNS)
        ]
        others = sum(w + 2 for w in widths[1:])  # each cell has one space either side
        room = (self.size.width or 80) - 2 - 2 - others - 2  # the margins, the stage's cell, a scrollbar
        widths[0] = min(widths[0], max(self.STAGE_WIDTH_MIN, room))
        for (label, key), width in zip(self.COLUMNS, widths):
            table.add_column(Text(label, justify="left" if key == "stage" else "right"), key=key, width=width)

    @work(thread=True, exclusive=True, group="calibrate-load", exit_on_error=False, description="sighting in")
    def load(self) -> None:
        try:
            engine = evpipe_app(self).engine
            cal = calibrate(engine, months=self.window)
            # the table first: the band's record replays the journal (seconds at a million prospects)
            self.post_message(from_worker(CalibrationLoaded(cal)))
            evpipe_app(self).keep_month_starts()  # the months ended since the last change are judged too
            band = band_record(engine, months=self.window or 12)
        except DomainError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error", markup=False)
            return
        self.post_message(from_worker(CalibrationLoaded(cal, band)))

    @on(CalibrationLoaded)
    def _loaded(self, message: CalibrationLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        if message.cal.months != self.window:
            return
        self.cal = cal = message.cal
        table = self.query_one("#calibrate-table", DataTable)
        keep = table.cursor_row
        rows = []
        for r in cal.stages:
            outside = r.low is not None and not (r.low <= r.configured_bp / 10_000 <= r.high)
            rows.append(
                [
                    user_text(r.stage, no_wrap=True, overflow="ellipsis"),
                    Text(format_percent(r.configured_bp), justify="right", style="bold yellow" if outside else ""),
                    Text(_pct(r.observed), justify="right"),
                    Text(f"{r.won:,}", justify="right"),
                    Text(f"{r.lost:,}", justify="right"),
                    Text(f"{r.n:,}", justify="right"),
                    Text("—" if r.low is None else f"{_pct(r.low)}–{_pct(r.high)}", justify="right"),
                    Text(_pct(r.conversion_next), justify="right"),
                    Text(
                        (r.note or "—") if r.suggested_bp is None else format_percent(r.suggested_bp),
                        justify="right",
                        style="bold green" if r.suggested_bp is not None else "dim",
                    ),
                ]
            )
        table.clear(columns=True)
        self._add_columns(table, rows)
        for r, cells in zip(cal.stages, rows):
            table.add_row(*cells, key=str(r.stage_id))
        if cal.stages:
            table.move_cursor(row=min(max(keep, 0), len(cal.stages) - 1), animate=False)
        text = Text()
        window = "every known outcome" if cal.since is None else f"outcomes since {cal.since:%d %b %Y}"
        text.append(f"Evidence: {cal.won:,} won, {cal.lost:,} lost ({window}; m changes).  ", style="")
        if cal.inferred:
            text.append(
                f"{cal.inferred:,} of them closed from a guessed stage (inferred): not counted.  ", style="yellow"
            )
        if cal.brier is not None:
            text.append(f"Brier {cal.brier:.3f}", style="bold")
            if cal.brier_suggested is not None and cal.brier_suggested != cal.brier:
                text.append(f" → {cal.brier_suggested:.3f} with the suggestions", style="green")
            text.append(" (0 is perfect)", style="dim")
        elif cal.won + cal.lost:
            text.append("No Brier score: no outcome closed from a stage the history saw.", style="dim")
        else:
            text.append("No won or lost prospects yet: nothing to sight in against.", style="dim")
        if message.band is not None:
            text.append("\n" + message.band.summary(), style="")
        else:
            text.append("\nP10-P90 band: loading the months' frozen forecasts…", style="dim")
        self.query_one("#calibrate-summary", Static).update(text)

    # ------------------------------------------------------------ actions

    def _row(self) -> StageCalibration | None:
        table = self.query_one("#calibrate-table", DataTable)
        if self.cal is None or not self.cal.stages:
            return None
        return self.cal.stages[min(table.cursor_row, len(self.cal.stages) - 1)]

    def action_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)]
        label = "every known outcome" if self.window is None else f"the last {self.window} months"
        self.app.notify(f"Evidence: {label}", markup=False, timeout=3)
        self.load()

    def action_accept(self) -> None:
        row = self._row()
        if row is None:
            return
        if row.suggested_bp is None:
            self.app.notify(f"{row.stage}: no suggestion ({row.note})", markup=False, severity="warning")
            return
        question = f"{change_text(row)}\n(observed {_pct(row.observed)} of {row.n})\n\nSet it?"
        self.app.push_screen(
            ConfirmDialog(question, title="Accept the suggestion"), lambda yes: yes and self.apply([row])
        )

    def action_accept_all(self) -> None:
        if self.cal is None:
            return
        rows = self.cal.suggestions
        if not rows:
            self.app.notify("No suggestions to accept", markup=False, severity="warning")
            return
        lines = changes_text(self.cal)
        ask = "Set it?" if len(rows) == 1 else f"Set these {len(rows)}?"
        self.app.push_screen(
            ConfirmDialog("\n".join(lines) + f"\n\n{ask}", title="Accept all suggestions"),
            lambda yes: yes and self.apply(rows),
        )

    @work(thread=True, exclusive=True, group="calibrate-apply", exit_on_error=False, description="apply")
    def apply(self, rows: list[StageCalibration]) -> None:
        store = evpipe_app(self).store
        results: list[ChangeResult] = []
        error = None
        for row in rows:
            try:
                percent = format_percent(row.suggested_bp).rstrip("%")
                results.append(store.set_probability(row.stage_id, percent, expected_bp=row.configured_bp))
            except DomainError as exc:
                error = str(exc)
                break
        self.post_message(CalibrationApplied(results, error))

    def action_undo(self) -> None:
        self._undo()

    def action_undo_skip(self) -> None:
        """Leave your last change as it is (undo refused it: a colleague changed it since) and
        undo the one before it."""
        self._undo(skip=True)

    @work(thread=True, exclusive=True, group="calibrate-apply", exit_on_error=False, description="undo")
    def _undo(self, skip: bool = False) -> None:
        try:
            result = evpipe_app(self).store.undo(skip=skip)
        except DomainError as exc:
            self.post_message(CalibrationApplied([], str(exc)))
            return
        self.post_message(CalibrationApplied([result]))

    @on(CalibrationApplied)
    def _applied(self, message: CalibrationApplied) -> None:
        for result in message.results:
            self.app.notify(result.summary, markup=False, timeout=4)
            for warning in result.warnings:
                self.app.notify(warning, markup=False, severity="warning")
            evpipe_app(self).data_changed(result)
        if message.error:
            self.app.notify(message.error, markup=False, severity="error")
        self.load()
