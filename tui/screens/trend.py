"""The trend screen: TV and EV over time (one chart), EV/TV % in its own panel, from the KPI history.

Ranges: 12 weeks, 1 year or everything (keys w, y, e; r cycles). `l` overlays the same weeks of the
previous year for TV and EV (models/season.py), drawn with their own markers so that they read
without colour, and says how EV compares with a year ago. The history is read in a worker;
the charts are drawn by plotext from the exact figures (floats for drawing only). Every point counts
today's KPI period (models/period.py), as the header does; the title names it.
"""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from evpipe.models.history import Snapshot, trend
from evpipe.models.kpi import Scope
from evpipe.models.ladder import format_ev_tv
from evpipe.models.period import Period, current_period
from evpipe.models.season import YearCompare, compare_trend, year_sentence
from evpipe.models.values import format_amount
from evpipe.models.visibility import OWN_ONLY_LINE

from ..access import evpipe_app
from ..messages import TrendLoaded, from_worker, superseded
from ..widgets import charts
from ..widgets.footer import KeyFooter
from .live import LiveScreen

RANGES = {"12w": (12, "12 weeks"), "1y": (52, "1 year"), "all": (None, "everything")}


def _ticks(days: list[date], width: int) -> tuple[list[int], list[str]]:
    """A few readable date labels along the x axis (x = days since the first point)."""
    if not days:
        return [], []
    span = (days[-1] - days[0]).days
    label_every = max(1, len(days) // max(1, width // 12))
    xs, labels = [], []
    for i, d in enumerate(days):
        if i % label_every == 0 or i == len(days) - 1:
            x = (d - days[0]).days
            if xs and x - xs[-1] < max(1, span // max(1, width // 10)):
                continue
            xs.append(x)
            labels.append(f"{d.day} {d:%b}" if span < 330 else f"{d:%b %y}")
    return xs, labels


class TrendScreen(LiveScreen):
    """TV, EV and EV/TV over time."""

    LOADING = ("trend-title", "Trend", "the KPI history")

    CSS_PATH = "trend.tcss"

    BINDINGS = [
        Binding("w", "range('12w')", "12 weeks", id="trend.weeks"),
        Binding("y", "range('1y')", "1 year", id="trend.year"),
        Binding("e", "range('all')", "Everything", id="trend.all"),
        Binding("r", "cycle", "Next range", id="trend.cycle", show=False),
        Binding("l", "last_year", "Last year", id="trend.last_year"),
    ]

    period: reactive[str] = reactive("12w")
    overlay: reactive[bool] = reactive(False)

    def __init__(self) -> None:
        super().__init__()
        self.points: list[Snapshot] = []
        self.last_year: list[Snapshot | None] | None = None
        self.kpi_period: Period | None = None

    def compose(self) -> ComposeResult:
        yield self.loading_line()
        with Vertical(id="trend-body"):
            yield PlotextPlot(id="trend-values")
            with Horizontal(id="trend-lower"):
                yield PlotextPlot(id="trend-ratio")
                yield Static("", id="trend-figures", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.follow_changes()

    def watch_period(self, _old: str, _new: str) -> None:
        if self.is_mounted:
            self.load()

    def action_range(self, key: str) -> None:
        self.period = key

    def action_last_year(self) -> None:
        self.overlay = not self.overlay

    def watch_overlay(self, _old: bool, _new: bool) -> None:
        if self.is_mounted:
            self.load()

    def action_cycle(self) -> None:
        keys = list(RANGES)
        self.period = keys[(keys.index(self.period) + 1) % len(keys)]

    @work(thread=True, exclusive=True, group="trend-load", exit_on_error=False, description="load KPI history")
    def load(self) -> None:
        key = self.period
        overlay = self.overlay
        app = evpipe_app(self)
        engine = app.engine
        kpi_period = current_period(engine)
        # a rep the owner lets see only their own: their history (recorded per owner, models/history.py)
        scope = Scope(owner=app.decide_scope(), period=kpi_period)
        points = trend(engine, RANGES[key][0], scope)
        before = compare_trend(engine, points, scope) if overlay else None
        self.post_message(from_worker(TrendLoaded(key, points, kpi_period, before)))

    @on(TrendLoaded)
    def _loaded(self, message: TrendLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        if message.key != self.period:
            return
        if (message.last_year is not None) != self.overlay:
            return
        self.points = message.points
        self.kpi_period = message.period
        self.last_year = message.last_year
        self.draw()

    def draw(self) -> None:
        points = self.points
        label = RANGES[self.period][1]
        title = Text("Trend", style="bold")
        if evpipe_app(self).scope_owner is not None:
            title.append(f"  {OWN_ONLY_LINE} · TV, EV and EV/TV over {label}", style="dim")
        else:
            title.append(f"  TV, EV and EV/TV over {label}, from the KPI history", style="dim")
        if self.overlay:
            title.append(" · +x: last year", style="dim")
        if self.kpi_period is not None:
            title.append(f" · {self.kpi_period.short}", style="dim")
        self.query_one("#trend-title", Static).update(title)
        days = [p.taken_on for p in points]
        xs = [(d - days[0]).days for d in days] if days else []
        values = self.query_one("#trend-values", PlotextPlot)
        ratio = self.query_one("#trend-ratio", PlotextPlot)
        tv = [p.kpi.tv_cents / 100 for p in points]  # floats for drawing only
        ev = [p.kpi.ev_micros / 1_000_000 for p in points]
        pct = [float(p.kpi.ev_tv) * 100 if p.kpi.ev_tv is not None else 0.0 for p in points]
        tick_x, tick_labels = _ticks(days, max(40, values.size.width or 80))
        plt = values.plt
        plt.clear_figure()
        plt.title("TV and EV")
        if points:
            charts.line(plt, xs, tv, charts.TV)
            charts.line(plt, xs, ev, charts.EV)
            if self.last_year is not None:
                self._overlay(plt, xs)
            plt.xticks(tick_x, tick_labels)
            before = [ly.kpi.tv_cents / 100 for ly in self.last_year or [] if ly is not None]
            charts.value_axis(plt, max(tv + ev + before), height=values.size.height)
        values.refresh()
        plt = ratio.plt
        plt.clear_figure()
        plt.title("EV/TV %")
        if points:
            charts.line(plt, xs, pct, charts.RATIO)
            plt.xticks(tick_x[:: max(1, len(tick_x) // 3)], tick_labels[:: max(1, len(tick_x) // 3)])
            charts.value_axis(plt, max(pct), unit="%", count=3, height=ratio.size.height)
        ratio.refresh()
        fig = self.query_one("#trend-figures", Static)
        if not points:
            fig.update("No history yet")
            return
        first, last = points[0], points[-1]
        text = Text()
        text.append(f"{first.taken_on:%d %b %Y} → {last.taken_on:%d %b %Y}\n", style="dim")
        for name, a, b, micros in (
            ("TV", first.kpi.tv_cents, last.kpi.tv_cents, False),
            ("EV", first.kpi.ev_micros, last.kpi.ev_micros, True),
        ):
            text.append(f"{name} ", style="dim")
            # as they are (an EV of 0.25 read 0, and the largest value 10,000,000,000)
            text.append(format_amount(b, micros=micros), style="bold")
            diff = b - a
            text.append(
                f"  {format_amount(diff, micros=micros, signed=diff != 0)}\n",
                style="green" if diff > 0 else "red" if diff < 0 else "dim",
            )
        r0, r1 = first.kpi.ev_tv_rounded(4), last.kpi.ev_tv_rounded(4)
        text.append("EV/TV ", style="dim")
        text.append(format_ev_tv(r1), style="bold")
        if r0 is not None and r1 is not None:
            pts = (r1 - r0) * 100
            text.append(f"  {pts:+.2f} pt", style="green" if pts > 0 else "red" if pts < 0 else "dim")
        text.append(f"\n{len(points)} readings", style="dim")
        if self.last_year is not None:
            then = self.last_year[-1]
            text.append("\n" + year_sentence(None if then is None else YearCompare(last.kpi, then.kpi, then.taken_on)))
        fig.update(text)

    def _overlay(self, plt, xs: list[int]) -> None:
        """Last year's TV and EV on this year's days: '+' and 'o' markers, distinct from this year's
        '•' and 'x' without colour (tui/widgets/charts.py)."""
        pairs = [(x, ly) for x, ly in zip(xs, self.last_year or []) if ly is not None]
        if not pairs:
            return
        lx = [x for x, _ in pairs]
        charts.points(plt, lx, [ly.kpi.tv_cents / 100 for _, ly in pairs], charts.TV_LAST_YEAR)
        charts.points(plt, lx, [ly.kpi.ev_micros / 1_000_000 for _, ly in pairs], charts.EV_LAST_YEAR)
