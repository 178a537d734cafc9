"""The forecast screen: one row per month (the last 12 and the next 12): count, TV, EV (today's
forecast), the forecast frozen at the month's start, actual (what the month's prospects were won
for, whenever), signed (orders won during the month), accuracy and bias for the months that have
ended; totals and WAPE; the prospects still open for a month that has ended (its figures are
provisional); a legend that says what the columns mean; a plotext bar chart of forecast against
actual. It opens with the current month near the top, the months to come below it. Enter on a
month lists its prospects, to follow up at the right time. Figures come from models.forecast, in a
worker.

Below the table, the selected month as a range (models/forecast_range.py): "Dec: EV 31,200, 80%
between 12,000 and 47,500, 38% chance of the 40,000 target", and a text band from the won value to
won + open, `|` at P10 and P90 and `*` at the EV (readable without colour). `t` sets the selected
month's target.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static
from textual_plotext import PlotextPlot

from evpipe.models.forecast import STILL_OPEN_NAMED, Forecast, MonthForecast, forecast, month_prospects
from evpipe.models.forecast_range import Ranges, band_text, method_text, month_ranges, range_sentence
from evpipe.models.names import display_name
from evpipe.models.records import ChangeResult
from evpipe.models.values import MoneyStyle, format_money, format_percent, money_style, month_label, to_cents
from evpipe.models.visibility import OWN_ONLY_LINE

from ..access import evpipe_app
from ..dialogs import Dialog, TextPrompt
from ..messages import ChangeFailed, ChangeSaved, ForecastLoaded, MonthProspectsLoaded, from_worker, superseded
from ..saving import Change
from ..widgets import charts
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable
from .live import LiveScreen


def _money(amount: int, *, micros: bool = False) -> str:
    return format_money(amount, micros=micros, decimals=False)


#: Cells each money column of the month table gets, so that the table fits 80 columns: a column
#: whose amounts do not fit takes one unit (k, M, B) for all of them (models.values, the money rule).
MONEY_CELLS = 8


def _column_styles(fc: Forecast) -> list[MoneyStyle]:
    """One style per money column (TV, EV, Frozen, Actual, Signed), from every month and the total."""
    columns: list[tuple[list[int], bool]] = [
        ([m.kpi.tv_cents for m in fc.months] + [fc.total.tv_cents], False),
        ([m.kpi.ev_micros for m in fc.months] + [fc.total.ev_micros], True),
        ([m.frozen_ev_micros or 0 for m in fc.months] + [fc.frozen_ev_micros], True),
        ([m.actual_cents for m in fc.months] + [fc.actual_cents], False),
        ([m.signed_cents for m in fc.months] + [fc.signed_cents], False),
    ]
    # whole units as before (a forecast has no use for cents), compact only where they do not fit
    return [money_style([_whole(a, micros) for a in amounts], width=MONEY_CELLS) for amounts, micros in columns]


def _whole_text(style: MoneyStyle, amount: int, *, micros: bool = False) -> str:
    """An amount in a column's style, in whole units unless the column is compact."""
    return style(_whole(amount, micros))


def _whole(amount: int, micros: bool) -> int:
    """An amount in cents, rounded half up to a whole unit (what the table shows at best)."""
    cents = to_cents(amount, micros=micros)
    return (abs(cents) + 50) // 100 * 100 * (1 if cents >= 0 else -1)


def _pct(x) -> str:
    return "—" if x is None else f"{float(x) * 100:.0f}%"


def _bias(x) -> str:
    return "—" if x is None else f"{float(x) * 100:+.0f}%"


#: What the columns mean, in a rep's words (each line fits 80 columns).
LEGEND = (
    "Frozen: the month's EV on its 1st · Actual: what the month's prospects won\n"
    "Acc: how close Frozen came · Bias: + expected too much · Signed: won in month\n"
    "* not over: not judged yet · ? ended, prospects still open: provisional"
)


class MonthProspects(Dialog[int | None]):
    """The prospects of one month; enter opens one (returns its id), escape closes."""

    CSS_PATH = "forecast.tcss"

    BINDINGS = [
        Binding("escape,q", "dismiss_none", "Close", id="forecast.month.close"),
    ]

    def __init__(self, month: str) -> None:
        super().__init__()
        self.month = month
        self.ids: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="month-box"):
            yield Label(f"{month_label(self.month)}: prospects expected or won", id="month-title", markup=False)
            yield KeyTable(id="month-prospects", cursor_type="row", zebra_stripes=True)
            yield Label("enter: open  escape: close", id="month-keys", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#month-prospects", DataTable)
        table.add_column("Prospect", key="name", width=26)
        table.add_column("Stage", key="stage", width=16)
        table.add_column(Text("Value", justify="right"), key="value")
        table.add_column(Text("EV", justify="right"), key="ev")
        table.add_column("Follow", key="follow", width=6)
        table.focus()
        self.load()

    @work(thread=True, exclusive=True, group="month-prospects", exit_on_error=False, description="month prospects")
    def load(self) -> None:
        app = evpipe_app(self)
        rows = month_prospects(app.engine, self.month, owner=app.decide_scope())
        self.post_message(from_worker(MonthProspectsLoaded(rows)))

    @on(MonthProspectsLoaded)
    def _loaded(self, message: MonthProspectsLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        table = self.query_one("#month-prospects", DataTable)
        table.clear()
        self.ids = [r.id for r in message.rows]
        for r in message.rows:
            style = {"won": "green", "lost": "red"}.get(r.kind, "")
            table.add_row(
                Text(display_name(r.name)),
                Text(f"{r.stage} {format_percent(r.probability_bp)}", style=style),
                Text(_money(r.value_cents), justify="right"),
                Text(_money(r.ev_micros, micros=True), justify="right"),
                Text(f"{r.next_follow_up.day} {r.next_follow_up:%b}" if r.next_follow_up else ""),
                key=str(r.id),
            )
        if not message.rows:
            self.query_one("#month-title", Label).update(f"{month_label(self.month)}: no prospects")

    @on(DataTable.RowSelected, "#month-prospects")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.dismiss(int(event.row_key.value))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ForecastScreen(LiveScreen):
    """Expected value by month, judged against what the month's prospects won."""

    LOADING = ("forecast-summary", "", "the forecast")

    CSS_PATH = "forecast.tcss"

    BINDINGS = [
        Binding("enter", "open_month", "Month's prospects", id="forecast.open_month"),
        Binding("c", "toggle_chart", "Chart", id="forecast.chart"),
        Binding("t", "set_target", "Target", id="forecast.target"),
    ]

    #: Ended months shown above the current one when the screen opens.
    PAST_IN_VIEW = 2

    def __init__(self) -> None:
        super().__init__()
        self.fc: Forecast | None = None
        self.ranges: Ranges | None = None
        self._placed = False  # the view has opened on the current month
        self._keyed = False  # the rep has pressed a key here: the view is theirs from then on

    def compose(self) -> ComposeResult:
        yield Static(
            Text("Forecast", style="bold") + Text("  EV by expected month, judged against what was won", style="dim"),
            id="forecast-title",
        )
        yield KeyTable(id="forecast-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="forecast-band", markup=False)
        yield Static("", id="forecast-open", markup=False)
        yield self.loading_line()
        yield Static(LEGEND, id="forecast-legend", markup=False)
        yield PlotextPlot(id="forecast-chart")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#forecast-table", DataTable)
        for label, key, right in (
            ("Month", "month", False),
            ("#", "count", True),
            ("TV", "tv", True),
            ("EV", "ev", True),
            ("Frozen", "frozen", True),
            ("Actual", "actual", True),
            ("Signed", "signed", True),
            ("Acc", "acc", True),
            ("Bias", "bias", True),
        ):
            table.add_column(Text(label, justify="right") if right else label, key=key)
        table.focus()
        self.query_one("#forecast-open", Static).display = False
        self.follow_changes()

    @work(thread=True, exclusive=True, group="forecast-load", exit_on_error=False, description="load the forecast")
    def load(self) -> None:
        app = evpipe_app(self)
        engine = app.reader  # (SQLite: a connection of its own, closed after; models/rawdb.py READ_CACHE)
        owner = app.decide_scope()  # a rep the owner lets see only their own: their forecast
        app.keep_month_starts()  # the months ended since the last change are judged too
        fc = forecast(engine, owner=owner, named=STILL_OPEN_NAMED)  # enter on a month lists them all
        # the table first; the ranges follow (a big pipeline takes seconds)
        self.post_message(from_worker(ForecastLoaded(fc)))
        # the targets are the team's: a rep's own range is not weighed against them
        targets: dict[str, int] | None = {} if owner is not None else None
        ranges = month_ranges(engine, [m.month for m in fc.months], owner=owner, targets=targets)
        self.post_message(from_worker(ForecastLoaded(fc, ranges)))

    @on(ForecastLoaded)
    def _loaded(self, message: ForecastLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        first_load = self.fc is None
        if message.ranges is not None and message.fc is self.fc:  # the ranges of the table shown
            self.ranges = message.ranges
            self._show_band()
            return
        self.fc = fc = message.fc
        self.ranges = message.ranges
        if first_load and evpipe_app(self).scope_owner is not None:
            self.query_one("#forecast-title", Static).update(
                Text("Forecast", style="bold") + Text(f"  EV by expected month · {OWN_ONLY_LINE}", style="dim")
            )
        table = self.query_one("#forecast-table", DataTable)
        keep = table.cursor_row if table.row_count else None
        keep_y = table.scroll_y  # a reload (data changed) leaves the view where the rep left it
        table.clear()
        current_index = next((i for i, m in enumerate(fc.months) if not m.complete), None)
        tv, ev, frozen, actual, signed = styles = _column_styles(fc)
        for i, m in enumerate(fc.months):
            table.add_row(*self._cells(m, "bold" if i == current_index else "", styles), key=m.month)
        table.add_row(
            Text("Total", style="bold"),
            Text(str(fc.total.count), justify="right"),
            Text(_whole_text(tv, fc.total.tv_cents), justify="right"),
            Text(_whole_text(ev, fc.total.ev_micros, micros=True), justify="right"),
            Text(_whole_text(frozen, fc.frozen_ev_micros, micros=True), justify="right"),
            Text(_whole_text(actual, fc.actual_cents), justify="right"),
            Text(_whole_text(signed, fc.signed_cents), justify="right"),
            Text(""),
            Text(""),
            key="total",
        )
        if keep is None or first_load:
            keep = current_index or 0
        table.move_cursor(row=min(keep, table.row_count - 1), animate=False, scroll=False)
        if not self._placed:
            # Opening: the current month near the top, the months to come below it, the last ones
            # judged above (until that view is on screen, a reload keeps aiming at it).
            keep_y = max(0, (current_index or 0) - self.PAST_IN_VIEW)
        self.call_after_refresh(self._scroll_view, table, keep_y)
        self._show_still_open(fc)
        self.query_one("#forecast-summary", Static).update(self._summary(fc))
        self._show_band()
        self.draw()

    @on(DataTable.RowHighlighted, "#forecast-table")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_band()

    def selected_month(self) -> str | None:
        table = self.query_one("#forecast-table", DataTable)
        if self.fc is None or not table.row_count or not 0 <= table.cursor_row < len(self.fc.months):
            return None
        return self.fc.months[table.cursor_row].month

    def _show_band(self) -> None:
        """The selected month (or, on the total line, the KPI period) as a sentence and a band."""
        panel = self.query_one("#forecast-band", Static)
        ranges = self.ranges
        if ranges is None or self.fc is None:
            panel.update(Text("Working out each month's range…", style="dim"))
            return
        month = self.selected_month()
        r = ranges.months[month] if month is not None and month in ranges.months else ranges.period
        # every amount whole, or all in one unit (k, M, B) when one would not fit: never cut. The
        # target reads in its own: a target of 10,000M set the range's unit, and 20,800 read 0.02M
        shown = [_whole(r.ev_micros, True), _whole(r.p10, False), _whole(r.p90, False)]
        style = money_style(shown, width=MONEY_CELLS + 2)
        target = money_style([_whole(r.target_cents or 0, False)], width=7)  # (short: the line is 80 wide)

        def amount(cents: int) -> str:
            return style(_whole(cents, False))

        def target_amount(cents: int) -> str:
            return target(_whole(cents, False))

        sentence = range_sentence(month if r is not ranges.period else None, r, amount, target_amount)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(sentence, style="bold")
        text.append("\n")
        text.append(f"P10 {amount(r.p10)} ")
        text.append(band_text(r, 23))
        text.append(f" P90 {amount(r.p90)}")
        how = method_text(r)
        text.append(f"  *=EV, [won..won+open], {how}", style="dim")
        panel.update(text)

    def action_set_target(self) -> None:
        """Ask for the selected month's target, then save it through the saver (in a worker)."""
        month = self.selected_month()
        if month is None:
            self.notify("Choose a month first.", markup=False, severity="warning")
            return
        r = self.ranges.months.get(month) if self.ranges is not None else None
        now = "" if r is None or r.target_cents is None else _money(r.target_cents)
        from evpipe.models.targets import parse_target

        def got(text: str | None) -> None:
            if text is None:
                return
            engine = evpipe_app(self).engine  # used in the saver's worker, never here

            def op() -> ChangeResult:
                from evpipe.models.targets import clear_target, set_target

                who = evpipe_app(self).store.who
                if not text.strip():
                    clear_target(engine, month, who=who)
                    return ChangeResult(0, f"Target for {month_label(month)} cleared", "setting")
                _, cents = set_target(engine, month, text, who=who)
                return ChangeResult(0, f"Target for {month_label(month)}: {format_money(cents)}", "setting")

            evpipe_app(self).saver.save(Change(op, self))

        self.app.push_screen(
            TextPrompt(
                f"Target for {month_label(month)}",
                "The amount to win in the month, e.g. 40,000 (empty: no target)",
                initial=now,
                validate=lambda t: parse_target(t) if t.strip() else None,
            ),
            got,
        )

    def on_change_saved(self, message: ChangeSaved) -> None:
        self.notify(message.result.summary, markup=False, title="Saved")
        self.load()

    def on_change_failed(self, message: ChangeFailed) -> None:
        self.notify(message.error, title="Not changed", severity="error", markup=False)
        self.load()

    def _scroll_view(self, table: DataTable, y: float, tries: int = 40) -> None:
        """Scroll the table to `y`. Until the table is laid out at its full height (the band under
        it comes in a moment later on a busy machine) it cannot scroll that far yet: try again
        shortly, for up to two seconds, so the screen opens on the current month all the same."""
        table.scroll_to(y=y, animate=False, immediate=True)
        if table.scroll_y >= y or tries <= 0:
            if not self._placed:
                self._placed = True
                self._hold_view(table, y, 15)
        else:
            self.set_timer(0.05, lambda: self._scroll_view(table, y, tries - 1))

    def _hold_view(self, table: DataTable, y: float, checks: int, waits: int = 150) -> None:
        """After opening, the table's size still changes as the lines under it arrive (the range
        band follows the table, seconds later on a busy machine; until then the table may be too
        tall to scroll that far, or a change of size takes the scroll back): until the rep presses
        a key, put the opening view back whenever it has moved, until a few checks after the band
        has come."""
        if self._keyed or checks <= 0 or waits <= 0:
            return
        if table.scroll_y != y:
            table.scroll_to(y=y, animate=False, immediate=True)
        left = checks - 1 if self.ranges is not None else checks
        self.set_timer(0.2, lambda: self._hold_view(table, y, left, waits - 1))

    def on_key(self, _event: events.Key) -> None:
        self._keyed = True

    @staticmethod
    def _summary(fc: Forecast) -> Text:
        summary = Text(no_wrap=True, overflow="ellipsis")
        if fc.wape is not None:
            summary.append(f"WAPE {float(fc.wape) * 100:.1f}%", style="bold")
            months = f"{fc.wape_months} ended month{'s' if fc.wape_months != 1 else ''}"
            summary.append(f": the overall miss over {months}", style="dim")
        else:
            summary.append("WAPE —: no ended month with a frozen forecast and sales", style="dim")
        if provisional := len(fc.provisional_months):
            summary.append(f" · {provisional} provisional out", style="dim")
        return summary

    def _show_still_open(self, fc: Forecast) -> None:
        """The prospects still open for months that have ended (why those months are provisional), on
        one line cut at the edge; enter on a month lists them all."""
        panel = self.query_one("#forecast-open", Static)
        provisional = fc.provisional_months
        panel.display = bool(provisional)
        if not provisional:
            return
        if len(provisional) == 1:
            m = provisional[0]
            head = f"? {month_label(m.month)}: {m.open_count:,} still open, not a miss yet: "
        else:
            head = f"? {len(provisional)} months with prospects still open, not misses yet: "
        text = Text(head, style="bold", no_wrap=True, overflow="ellipsis")
        parts = []
        for m in reversed(provisional):  # the latest first, each month's biggest named
            names = ", ".join(r.name for r in m.still_open)
            if (more := m.open_count - len(m.still_open)) > 0:
                names += f" and {more:,} more"
            parts.append(names if len(provisional) == 1 else f"{month_label(m.month)} {names}")
        text.append("; ".join(parts))
        panel.update(text)

    @staticmethod
    def _cells(m: MonthForecast, style: str, styles: list[MoneyStyle]) -> list[Text]:
        tv, ev, frozen, actual, signed = styles
        label = month_label(m.month) + (" ?" if m.provisional else "" if m.complete else " *")
        frozen_text = "—" if m.frozen_ev_micros is None else _whole_text(frozen, m.frozen_ev_micros, micros=True)
        return [
            Text(label, style=style),
            Text(str(m.kpi.count), justify="right"),
            Text(_whole_text(tv, m.kpi.tv_cents), justify="right"),
            Text(_whole_text(ev, m.kpi.ev_micros, micros=True), justify="right"),
            Text(frozen_text, justify="right"),
            Text(_whole_text(actual, m.actual_cents), justify="right", style="green" if m.actual_cents else ""),
            Text(_whole_text(signed, m.signed_cents), justify="right"),
            Text(_pct(m.accuracy), justify="right"),
            Text(_bias(m.bias), justify="right"),
        ]

    def draw(self) -> None:
        if self.fc is None:
            return
        chart = self.query_one("#forecast-chart", PlotextPlot)
        months = self.fc.months
        labels = [month_label(m.month).split()[0][:3] + month_label(m.month).split()[1][2:] for m in months]
        # The forecast shown is the one judged (frozen at the month's start) where there is one, else today's.
        forecast = [  # floats for drawing only
            ((m.frozen_ev_micros if m.frozen_ev_micros is not None else m.kpi.ev_micros) / 1e6) for m in months
        ]
        actual = [m.actual_cents / 100 for m in months]
        plt = chart.plt
        plt.clear_figure()
        plt.title("Forecast (frozen, else today's) against actual won")
        xs = list(range(len(months)))
        charts.bars(plt, xs, [forecast, actual], [charts.FORECAST, charts.ACTUAL])
        charts.value_axis(plt, max(forecast + actual, default=0), height=chart.size.height)
        step = max(1, len(months) // 8)
        plt.xticks(xs[::step], labels[::step])
        chart.refresh()

    def action_toggle_chart(self) -> None:
        chart = self.query_one("#forecast-chart", PlotextPlot)
        chart.display = not chart.display

    def action_open_month(self) -> None:
        table = self.query_one("#forecast-table", DataTable)
        if self.fc is None or not table.row_count or table.cursor_row >= len(self.fc.months):
            return
        month = self.fc.months[table.cursor_row].month
        self.app.push_screen(MonthProspects(month), self._opened)

    @on(DataTable.RowSelected, "#forecast-table")
    def _row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open_month()

    def _opened(self, prospect_id: int | None) -> None:
        if prospect_id is None:
            return
        try:
            from .prospect_page import ProspectPage
        except ImportError:  # pragma: no cover - the prospect page ships with the app
            return
        self.app.push_screen(ProspectPage(prospect_id))
