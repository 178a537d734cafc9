"""The KPI header: TV, EV and EV/TV %, each with its change over the last 7 days, and a
sparkline of EV over the last 12 weeks. With a year of history, EV's box adds how EV compares
with the same week last year ('+58% yr', models/season.py) where the box is wide enough for it. Above the sparkline it names the KPI period it counts
(models/period.py): 'Jan 2026→ · EV 12w' (open prospects, and won ones expected from January 2026).

The numbers are handed in (the pipeline screen keeps them current from each change's exact
effect); this widget only shows them. Only what changed is repainted.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Sparkline

from evpipe.models.kpi import Kpi
from evpipe.models.ladder import ev_tv_ratio, format_ev_tv
from evpipe.models.values import format_amount, format_money, money_style

from . import KeptLines, TextLine


def ratio_text(k: Kpi) -> str:
    """EV/TV as shown everywhere: '43.18%' ('—' when TV is 0), like `evpipe kpi`."""
    return format_ev_tv(ev_tv_ratio(k.ev_micros, k.tv_cents, 4))


def _arrow(diff: int | Decimal) -> tuple[str, str]:
    if diff > 0:
        return "▲", "$text-success"
    if diff < 0:
        return "▼", "$text-error"
    return "=", "$text-muted"


#: Cells a box of the header gives a figure at 80 columns ("TV " and the box's padding take the rest),
#: and its 7-day change ("▲ " and " 7d" take the rest): a larger amount takes a unit (k, M, B)
#: rather than wrap or be cut (models.values, the money rule).
FIGURE_CELLS = 16
CHANGE_CELLS = 13


def _figure(amount: int, *, micros: bool = False, cells: int = FIGURE_CELLS) -> str:
    """The figure with its cents while they fit `cells`; else whole units, else a unit."""
    text = format_money(amount, micros=micros)
    if len(text) <= cells:
        return text
    return money_style([amount], micros=micros, width=cells)(amount, micros=micros)


def money_change(now: int, before: int | None, *, micros: bool = False, cells: int = CHANGE_CELLS) -> Content:
    if before is None:
        return Content.styled("no 7-day history", "$text-muted")
    diff = now - before
    arrow, style = _arrow(diff)
    amount = format_amount(diff, micros=micros, signed=True)  # (as it is: an EV up 0.25 read "+0")
    if len(amount) > cells:  # a unit rather than a wrapped or cut figure
        amount = money_style([diff], micros=micros, width=cells, signed=True)(diff, micros=micros, signed=True)
    return Content.assemble((f"{arrow} {amount}", style), (" 7d", "$text-muted"))


def ratio_change(now: Kpi, before: Kpi | None) -> Content:
    if before is None:
        return Content.styled("no 7-day history", "$text-muted")
    a, b = now.ev_tv_rounded(4), before.ev_tv_rounded(4)
    if a is None or b is None:
        return Content.styled("—", "$text-muted")
    points = ((a - b) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    arrow, style = _arrow(points)
    sign = "+" if points > 0 else ""
    return Content.assemble((f"{arrow} {sign}{points} pt", style), (" 7d", "$text-muted"))


def _loading(label: str) -> Content:
    """A box before its figure is read."""
    return Content.assemble((label, "$text-muted"), ("…", "bold"), "\n", ("loading", "$text-muted"))


class _SparkBox(Vertical, KeptLines):
    """The sparkline's box (KeptLines: not made again in a frame that does not change it)."""


class _Sparkline(Sparkline, KeptLines):
    """Textual's Sparkline, its lines kept between frames that do not change it."""


class KpiHeader(KeptLines):
    """Three KPI boxes and the EV sparkline."""

    DEFAULT_CSS = """
    KpiHeader {
        height: 2;
        layout: horizontal;
        background: $boost;
    }
    KpiHeader > TextLine {
        width: 1fr;
        height: 2;
        padding: 0 1;
    }
    KpiHeader > Vertical {
        width: 1fr;
        height: 2;
        padding: 0 1;
    }
    KpiHeader Sparkline {
        height: 1;
        width: 1fr;
    }
    KpiHeader #spark-label {
        height: 1;
        color: $text-muted;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: dict[str, object] = {}
        self._boxes: dict[str, TextLine] = {}
        self.kpi = Kpi()
        self.week_ago: Kpi | None = None
        self.weekly: list[int] = []
        self.scope_label = ""
        self.last_year: Kpi | None = None  # the same week last year (models/season.py), when known
        self.period_label = ""  # the KPI period, as Period.short says it ('Jan 2026→'); '' before it is read
        self.known = False  # figures shown: until then each box says it is loading, never a 0

    def compose(self) -> ComposeResult:
        yield TextLine(_loading("TV "), id="kpi-tv")
        yield TextLine(_loading("EV "), id="kpi-ev")
        yield TextLine(_loading("EV/TV "), id="kpi-ratio")
        with _SparkBox(id="spark-box"):
            yield TextLine("", id="spark-label")
            yield _Sparkline([], id="spark")

    def show(
        self, kpi: Kpi, week_ago: Kpi | None = None, weekly: list[int] | None = None, *, history: bool = False
    ) -> None:
        """Show `kpi`; with history=True also take a new baseline and sparkline."""
        self.kpi = kpi
        self.known = True
        if history:
            self.week_ago = week_ago
            self.weekly = list(weekly or [])
        base = self.week_ago
        figure, change = self._room()
        tv = Content.assemble(
            ("TV ", "$text-muted"),
            (_figure(kpi.tv_cents, cells=figure), "bold"),
            "\n",
            money_change(kpi.tv_cents, base.tv_cents if base else None, cells=change),
        )
        ev_change = money_change(kpi.ev_micros, base.ev_micros if base else None, micros=True, cells=change)
        year = self._year_figure(kpi, ev_change)
        ev = Content.assemble(
            ("EV ", "$text-muted"),
            (_figure(kpi.ev_micros, micros=True, cells=figure), "bold"),
            "\n",
            ev_change,
            (year, "$text-muted"),
        )
        ratio = Content.assemble(("EV/TV ", "$text-muted"), (ratio_text(kpi), "bold"), "\n", ratio_change(kpi, base))
        self._set("kpi-tv", tv)
        self._set("kpi-ev", ev)
        self._set("kpi-ratio", ratio)
        points = [*self.weekly, kpi.ev_micros]
        period = f"{self.period_label} · " if self.period_label else ""
        if len(points) < 2:
            data: list[float] = []  # one point is no trend (Sparkline would draw a full bar)
            text = f"{period}EV —" if period else "EV: no history yet"
        else:
            # drawing only (the figures above are exact): to about a 1/1024 of the past weeks' span
            # (of EV, when they are flat), a power of two that stays put as EV moves, finer than
            # any bar or shade can show: a change too small to see (most stage keys in a big
            # pipeline) leaves the sparkline as it is instead of drawing it again (a ms a key)
            past = points[:-1]
            fine = (max(past) - min(past)) // 1024 or abs(kpi.ev_micros) // 1024
            grain = 1 << max(0, fine.bit_length() - 1)
            data = [round(p / grain) * grain / 1_000_000 for p in points]
            text = f"{period}EV {len(points)}w" if period else f"EV, {len(points)} weeks"
        self._set("spark-label", Content.styled(text, "$text-muted"))
        if self._shown.get("spark") != data:
            self._shown["spark"] = data
            self.query_one("#spark", Sparkline).data = data

    def _room(self) -> tuple[int, int]:
        """Cells for a box's figure (after "TV ") and for its change's amount (between "▲ " and
        " 7d"): FIGURE_CELLS and CHANGE_CELLS, or less in a box narrower than they need (a
        terminal under 80 columns), so that a figure takes a unit rather than lose its last digits."""
        width = self._box("kpi-tv").content_region.width if self.is_mounted else 0
        if width <= 0:
            return FIGURE_CELLS, CHANGE_CELLS
        return max(4, min(FIGURE_CELLS, width - 3)), max(4, min(CHANGE_CELLS, width - 5))

    def set_history(self, week_ago: Kpi | None, weekly: list[int] | None) -> None:
        """Take a new baseline and sparkline: shown at once with the figures shown, else kept
        until the figures come (a history read first must not show the boxes as 0)."""
        if self.known:
            self.show(self.kpi, week_ago, weekly, history=True)
        else:
            self.week_ago = week_ago
            self.weekly = list(weekly or [])

    def _year_figure(self, kpi: Kpi, change: Content) -> str:
        """' +58% yr' after EV's 7-day change, when a year of history exists and it fits the box."""
        from evpipe.models.season import short_year_change

        text = short_year_change(kpi, self.last_year)
        box = self._box("kpi-ev").content_region.width if self.is_mounted else 0
        if not text or len(change.plain) + 1 + len(text) > box:
            return ""
        return " " + text

    def on_resize(self) -> None:
        if "kpi-ev" in self._shown:  # shown once already: the year figure may fit now, or not, and the figures' units
            self._shown.pop("kpi-ev", None)
            self.show(self.kpi)

    def _set(self, widget_id: str, content: Content) -> None:
        if self._shown.get(widget_id) != content.plain:
            self._shown[widget_id] = content.plain
            self._box(widget_id).show(content)

    def _box(self, widget_id: str) -> TextLine:
        """A box's TextLine, looked up once (a stage key shows three: a DOM search each)."""
        box = self._boxes.get(widget_id)
        if box is None:
            box = self._boxes[widget_id] = self.query_one(f"#{widget_id}", TextLine)
        return box

    @property
    def texts(self) -> dict[str, str]:
        """What each box shows, as plain text (for tests and the tmux check)."""
        return {k: v for k, v in self._shown.items() if isinstance(v, str)}
