"""The prospect table: a virtual table that renders only the lines on screen.

Textual's DataTable measures every cell when rows are added and repaints every visible row when
one cell changes; at 100,000 prospects that is seconds. This table keeps the rows as plain tuples
(models.pipeline_view.PipelineView), renders a line only when it is painted, caches the rendered
strips, and repaints just the line that changed. User text goes into `Segment`s as plain text, so
a name like `[@click=app.quit]hi[/]` shows literally.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress
from math import gcd

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from evpipe.models.ladder import ev_micros
from evpipe.models.names import display_name
from evpipe.models.pipeline_view import PICK_SLICE, Group, Ladder, PipelineView, Row, RowStore
from evpipe.models.values import MICROS_PER_UNIT, MoneyStyle, format_percent, money_style_for, to_cents

from ..yielding import yielding
from . import KeptLines


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    right: bool = False


#: Fixed columns in the order shown, and the narrowest table width that shows each optional one.
_FIXED = [
    Column("flag", "", 1),
    Column("name", "Name", 0),
    Column("company", "Company", 0),
    Column("stage", "Stage", 12),
    Column("p", "p", 4, right=True),
    Column("value", "Value", 10, right=True),
    Column("ev", "EV", 10, right=True),
    Column("month", "Month", 7),
    Column("follow", "Due", 6, right=True),  # the next follow-up; short, so a sort mark never cuts it
    Column("owner", "Owner", 8),
    Column("changed", "Changed", 10),
]
# (below 69 cells the p column goes, below 64 the follow-up's, below 57 the month's: at 60 the
# table was 69 wide and showed the month as "2027", cut at the screen's edge)
_OPTIONAL_MIN_WIDTH = {"company": 100, "owner": 100, "changed": 140, "p": 69, "follow": 64, "month": 57}
_NAME_MIN = 12


def columns_for(width: int) -> list[Column]:
    """The columns that fit in `width` cells (separated by one space), name and company sharing
    what is left over."""
    chosen = [c for c in _FIXED if width >= _OPTIONAL_MIN_WIDTH.get(c.key, 0)]
    fixed = sum(c.width for c in chosen) + (len(chosen) - 1)
    flexible = [c for c in chosen if c.width == 0]
    spare = max(_NAME_MIN * len(flexible), width - fixed)
    out = []
    for c in chosen:
        if c.width == 0:
            share = spare // len(flexible)
            if c.key == "name":
                share += spare - share * len(flexible)
            out.append(Column(c.key, c.title, share, c.right))
        else:
            out.append(c)
    return out


def fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut `text` to exactly `width` cells, with an ellipsis when cut; shown as every
    terminal draws it in those cells (`display_name`: a family emoji misaligned the columns)."""
    if width <= 0:
        return ""
    if not text.isascii():
        text = display_name(text)
    size = cell_len(text)
    if size > width:
        return set_cell_size(text, width - 1) + "…"
    if right:
        return " " * (width - size) + text
    return text + " " * (width - size)


#: English month abbreviations, fixed (calendar.month_abbr asks strftime, whose first call can take
#: a quarter of a second while the C library loads its locale data).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def short_date(iso: str | None) -> str:
    """'2026-12-03' -> '3 Dec'."""
    if not iso:
        return ""
    return f"{int(iso[8:10])} {MONTHS[int(iso[5:7]) - 1]}"


def month_name(month: str | None) -> str:
    """'2027-01' -> 'Jan 2027'; None -> 'No month'."""
    if not month:
        return "No month"
    return f"{MONTHS[int(month[5:7]) - 1]} {month[:4]}"


class MoneySpan:
    """What a money column holds, as far as its style goes (models.values' rule): its smallest and
    largest amount in cents, and the smallest and largest of those with cents (0 when none)."""

    __slots__ = ("low", "high", "cents_low", "cents_high")

    def __init__(self) -> None:
        self.low = self.high = self.cents_low = self.cents_high = 0

    def add(self, cents: int) -> None:
        self.low, self.high = min(self.low, cents), max(self.high, cents)
        if cents % 100:
            self.cents_low, self.cents_high = min(self.cents_low, cents), max(self.cents_high, cents)

    def joined(self, other: MoneySpan) -> MoneySpan:
        both = MoneySpan()
        both.low, both.high = min(self.low, other.low), max(self.high, other.high)
        both.cents_low, both.cents_high = min(self.cents_low, other.cents_low), max(self.cents_high, other.cents_high)
        return both

    def style(self, width: int) -> MoneyStyle:
        return money_style_for(*self.bounds, width=width)

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """All a style is worked out from: (low, high, cents_low, cents_high)."""
        return self.low, self.high, self.cents_low, self.cents_high

    def held(self, cents: int) -> bool:
        """Whether an amount that went (a row changed or deleted) may have been what set this
        span's top: then only a count of every row tells how narrow the column may be now."""
        return cents > 0 and (cents >= self.high or 0 < self.cents_high <= cents)


def row_spans(rows: RowStore, ladder: Ladder, pause: Callable[[], None] | None = None) -> tuple[MoneySpan, MoneySpan]:
    """(Value, EV) spans of every live prospect loaded, whatever the filter: a column keeps its
    unit while the rep filters, scrolls or toggles Mine. One pass sorts the values by stage, the
    rest runs in C (100,000 prospects in tens of ms, a million in a third of a second: the loading
    worker works them out, see `take_spans`). `pause`: PICK_SLICE rows at a time, `pause` after
    each (the worker lets the UI thread in: a million rows' values in one call into C held the
    interpreter lock 20-50 ms, four times over)."""
    value, ev = MoneySpan(), MoneySpan()
    stage_top: dict[int, int] = {}  # each stage's largest value
    periods = {sid: MICROS_PER_UNIT // gcd(s.probability_bp, MICROS_PER_UNIT) for sid, s in ladder.stages.items()}
    # Whether value x p has cents depends only on the value modulo its stage's `period` (the
    # product's remainder modulo a unit in micros): each remainder found is checked once, below.
    remainders: dict[int, set[int]] = {sid: set() for sid in ladder.stages}
    count = len(rows.ids)
    step = PICK_SLICE if pause is not None else max(1, count)
    for i in range(0, count, step):
        alive = rows.alive[i : i + step]
        # arrays, not lists: a list of 100,000 values holds as many int objects (8 MiB with the
        # stages' lists, all at once as the rows arrive)
        values = array("q", compress(rows.value[i : i + step], alive))
        if values:  # values are never negative
            value.high = max(value.high, max(values))
            value.cents_high = max(value.cents_high, max(filter((100).__rmod__, values), default=0))
        del values
        by_stage: dict[int, array] = {sid: array("q") for sid in ladder.stages}
        for sid, amount in compress(zip(rows.stage[i : i + step], rows.value[i : i + step]), alive):
            bucket = by_stage.get(sid)
            if bucket is not None:  # a stage the ladder does not know adds no EV
                bucket.append(amount)
        for sid, mine in by_stage.items():
            if mine:
                stage_top[sid] = max(stage_top.get(sid, 0), max(mine))
                remainders[sid].update(map(periods[sid].__rmod__, mine))
        if pause is not None:
            pause()
    for sid in ladder.stages:
        if sid not in stage_top:
            continue
        stage = ladder.stages[sid]
        kind, bp = stage.kind, stage.probability_bp
        top = to_cents(ev_micros(stage_top[sid], kind, bp), micros=True)  # EV grows with the value
        ev.add(top)
        if not top or top <= ev.cents_high:
            continue
        # the stage's largest EV stands for its amounts with cents (an upper bound: the column
        # never gets too narrow)
        if any(to_cents(ev_micros(r, kind, bp), micros=True) % 100 for r in remainders[sid]):
            ev.cents_high = top
    return value, ev


class ColumnHeader(KeptLines):
    """The column titles above the table; it follows the table's column layout."""

    DEFAULT_CSS = """
    ColumnHeader {
        height: 1;
        background: $panel;
        text-style: bold;
    }
    """

    sort_key: reactive[str] = reactive("month")

    def render(self) -> Content:
        width = max(0, self.size.width - 1)  # the table's scrollbar column
        titles = []
        sort_column = {
            "month": "month",
            "ev": "ev",
            "value": "value",
            "gain": "ev",
            "follow_up": "follow",
            "changed": "changed",
        }.get(self.sort_key)
        for c in columns_for(width):
            # sorted by gain, the EV column shows each prospect's next-step gain, and says so
            title = "Gain" if c.key == "ev" and self.sort_key == "gain" else c.title
            title += ("↑" if c.key in ("month", "follow") else "↓") if c.key == sort_column else ""
            titles.append(fit(title, c.width, c.right))
        return Content(" ".join(titles))


class ProspectTable(ScrollView, KeptLines, can_focus=True):
    """Every prospect of a PipelineView, one per line; month subtotals when grouped."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home", "edge(-1)", "First", show=False, id="table.first"),
        Binding("end", "edge(1)", "Last", show=False, id="table.last"),
    ]

    COMPONENT_CLASSES = {
        "prospect-table--cursor",
        "prospect-table--group",
        "prospect-table--overdue",
        "prospect-table--stale",
        "prospect-table--won",
        "prospect-table--lost",
    }

    DEFAULT_CSS = """
    ProspectTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
        overflow-x: hidden;
        overflow-y: scroll;
    }
    ProspectTable > .prospect-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
    ProspectTable:blur > .prospect-table--cursor { background: $block-cursor-blurred-background; text-style: none; }
    ProspectTable > .prospect-table--group { background: $panel; color: $text-accent; text-style: bold; }
    ProspectTable > .prospect-table--overdue { color: $text-error; text-style: bold; }
    ProspectTable > .prospect-table--stale { color: $text-warning; }
    ProspectTable > .prospect-table--won { color: $text-success; }
    ProspectTable > .prospect-table--lost { color: $text-muted; }
    App:nocolor ProspectTable > .prospect-table--cursor { text-style: reverse bold; }
    App:nocolor ProspectTable > .prospect-table--group { background: $background; color: $foreground; text-style: bold underline; }
    """

    cursor: reactive[int] = reactive(0, init=False)

    def __init__(self, view: PipelineView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        # called with the prospect under the cursor (None: a month heading, no line) each time the
        # cursor moves, inside that handling: what the screen shows of the prospect then comes in
        # the highlight's own frame (a message would have landed after it: a second frame, up to a
        # 60th of a second later, and a key pressed meanwhile waiting for it)
        self.on_cursor: Callable[[int | None], None] | None = None
        self._cache: LRUCache[tuple, Strip] = LRUCache(256)
        self._styles: dict[str, Style] | None = None
        self._columns: list[Column] = []
        self._columns_width = -1
        self._spans_of: tuple[object, object] | None = None  # the rows and ladder the spans were taken from
        self._spans: tuple[MoneySpan, MoneySpan] = (MoneySpan(), MoneySpan())
        self._totals: tuple[MoneySpan, MoneySpan] = (MoneySpan(), MoneySpan())  # the month subtotals'
        self._money: dict[int, tuple[MoneyStyle, MoneyStyle]] = {}

    # -------------------------------------------------------- public

    @property
    def current_id(self) -> int | None:
        item = self.view.line(self.cursor)
        return item if isinstance(item, int) else None

    @property
    def current_row(self) -> Row | None:
        pid = self.current_id
        return None if pid is None else self.view.rows.get(pid)

    def _set_lines(self) -> None:
        """The number of lines changed: a new virtual height, without a layout pass (the table's
        own size does not depend on its lines, and its scrollbar is always there: overflow-y is
        scroll), only the scrollbar and the scroll offset brought up to date."""
        size = Size(self.size.width, len(self.view))
        if size != self.virtual_size:
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)

    def reset(self, keep_id: int | None = None) -> None:
        """The view's lines were rebuilt: size, cursor and cache anew."""
        self._cache.clear()
        self._money_changed()
        self._set_lines()
        index = self.view.index_of(keep_id) if keep_id is not None else None
        target = index if index is not None else min(self.cursor, max(0, len(self.view) - 1))
        self._set_cursor(self._landing(target, 1), force=True)
        self.refresh()

    def repaint(self) -> None:
        """The marks changed (the pace was read): repaint every line, the cursor where it is."""
        self._cache.clear()
        self.refresh()

    def refresh_row(self, prospect_id: int) -> None:
        """One row changed in place: repaint that line only."""
        row = self.view.rows.get(prospect_id)
        if row is not None and self._money_changed(row):
            self._cache.clear()
            self.refresh()
            return
        index = self.view.index_of(prospect_id, self.cursor)
        if index is not None:
            self.refresh_line(index)
            heading = self.view.heading_of(row) if row is not None else None
            if heading is not None:  # grouped: its month's subtotal line changed too
                self.refresh_line(heading)

    def rows_changed(self, rows: list[Row]) -> None:
        """Rows changed in place, wherever they are (changes from other sessions): repaint what is
        visible (lines are cached by their content, so only changed rows are drawn again)."""
        if self._money_changed(*rows):
            self._cache.clear()
        self.refresh()

    def lines_changed(self, *rows: Row) -> None:
        """Lines were inserted or removed (a few), `rows` the rows that changed: resize and repaint
        what is visible. The money columns are widened by those rows, as an edit widens them, not
        worked out again from every row (a third of a second at a million prospects, for each
        change another session made)."""
        self._cache.clear()
        self._money_changed(*rows)
        self._set_lines()
        self._set_cursor(self._landing(min(self.cursor, max(0, len(self.view) - 1)), 1), force=True)
        self.refresh()

    def go_to(self, prospect_id: int) -> bool:
        index = self.view.index_of(prospect_id)
        if index is None:
            return False
        self._set_cursor(index)
        return True

    # -------------------------------------------------------- cursor

    def _landing(self, index: int, direction: int) -> int:
        """The nearest prospect line from `index` in `direction` (headings are skipped)."""
        n = len(self.view)
        if n == 0:
            return 0
        index = max(0, min(n - 1, index))
        step = 1 if direction >= 0 else -1
        i = index
        while 0 <= i < n and not isinstance(self.view.lines[i], int):
            i += step
        if 0 <= i < n:
            return i
        i = index
        while 0 <= i < n and not isinstance(self.view.lines[i], int):
            i -= step
        return i if 0 <= i < n else index

    def _set_cursor(self, index: int, *, force: bool = False) -> None:
        old = self.cursor
        if index == old and not force:
            return
        self.set_reactive(ProspectTable.cursor, index)
        self.refresh_line(old)
        self.refresh_line(index)
        self._scroll_cursor_into_view()
        if self.on_cursor is not None:
            self.on_cursor(self.current_id)

    def _scroll_cursor_into_view(self) -> None:
        height = self.scrollable_content_region.height
        if height <= 0:
            return
        top = int(self.scroll_y)
        if self.cursor < top:
            # a month's heading just above the cursor comes into view with it (the cursor never
            # rests on a heading: scrolled to the cursor's row, the first month's was never seen)
            above = self.cursor - 1
            heading = above >= 0 and not isinstance(self.view.lines[above], int)
            self.scroll_to(y=above if heading else self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self._landing(self.cursor + delta, delta))

    def action_page(self, direction: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        self._set_cursor(self._landing(self.cursor + direction * height, direction))

    def action_edge(self, direction: int) -> None:
        self._set_cursor(self._landing(0 if direction < 0 else len(self.view) - 1, -direction))

    def _on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y
        if 0 <= index < len(self.view) and isinstance(self.view.lines[index], int):
            self._set_cursor(index)

    # -------------------------------------------------------- rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._cache.clear()

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.view))
        self._scroll_cursor_into_view()

    def _style(self, name: str) -> Style:
        if self._styles is None:
            self._styles = {
                "base": self.rich_style,
                **{
                    n: self.get_component_rich_style(f"prospect-table--{n}", partial=True)
                    for n in ("cursor", "group", "overdue", "stale", "won", "lost")
                },
            }
        return self._styles[name]

    def take_spans(self, rows: RowStore, ladder: Ladder, spans: tuple[MoneySpan, MoneySpan]) -> None:
        """Spans `row_spans(rows, ladder)` worked out in the worker that read the rows: the next
        look at the money columns takes them if the view holds those same rows and ladder."""
        self._spans_of = (rows, ladder)
        self._spans = spans

    def _money_changed(self, *rows: Row) -> bool:
        """Bring the money columns' spans up to date: every row anew when the rows or the ladder
        were replaced, else widened by `rows` (an edit never narrows a column until the next
        load); the month subtotals when grouped. True when a column's style changed."""
        view = self.view
        was = self._span_state()
        dropped_value, dropped_ev = view.take_dropped()
        if self._spans_of is None or self._spans_of[0] is not view.rows or self._spans_of[1] is not view.ladder:
            self._spans_of = (view.rows, view.ladder)
            self._spans = row_spans(view.rows, view.ladder)
            dropped_value = dropped_ev = 0  # (counted from every row just now)
        value, ev = self._spans
        for row in rows:
            value.add(row.value_cents)
            ev.add(to_cents(view.ladder.ev(row), micros=True))
        if value.held(dropped_value) or ev.held(to_cents(dropped_ev, micros=True)):
            # the largest amount was edited away (a typo of 10 billion put right) or deleted: the
            # column narrows again once every row is counted, off the UI thread
            self._count_spans(view.rows, view.ladder, view.rows.changes)
        self._totals = (MoneySpan(), MoneySpan())
        if view.grouped:
            for _count, tv, ev_sum in view.subtotals.values():
                self._totals[0].add(tv)
                self._totals[1].add(to_cents(ev_sum, micros=True))
        if self._span_state() == was:  # (a stage key, mostly: the styles worked out stand)
            return False
        before, self._money = self._money, {}
        return any(self._money_styles(width) != styles for width, styles in before.items())

    def _span_state(self) -> tuple[tuple[int, int, int, int], ...]:
        """What the money columns' styles are worked out from (the spans and the subtotals')."""
        return tuple(span.bounds for span in (*self._spans, *self._totals))

    @work(thread=True, exclusive=True, group="money-spans", exit_on_error=False, description="money columns")
    def _count_spans(self, rows: RowStore, ladder: Ladder, changes: int, again: bool = True) -> None:
        spans = row_spans(rows, ladder, yielding())
        self.app.call_from_thread(self._take_count, rows, ladder, changes, spans, again)

    def _take_count(
        self, rows: RowStore, ladder: Ladder, changes: int, spans: tuple[MoneySpan, MoneySpan], again: bool
    ) -> None:
        """The money columns' spans counted anew in `_count_spans`: taken if the view still holds
        those rows and ladder (else left to the reload that replaced them), and the columns narrow
        where they can. Rows changed while it counted: counted once more; changed again, the count
        is joined with the spans those changes widened (never too narrow; a burst of keys does not
        keep a count running at every change)."""
        view = self.view
        if view.rows is not rows or view.ladder is not ladder:
            return
        if rows.changes != changes:
            if again:
                self._count_spans(rows, ladder, rows.changes, again=False)
                return
            spans = (spans[0].joined(self._spans[0]), spans[1].joined(self._spans[1]))
        self._spans_of, self._spans = (rows, ladder), spans
        before, self._money = self._money, {}
        if any(self._money_styles(width) != styles for width, styles in before.items()):
            self._cache.clear()
            self.refresh()

    def _money_styles(self, width: int) -> tuple[MoneyStyle, MoneyStyle]:
        """(Value, EV) styles at this table width: one per column, every amount fits its cell."""
        styles = self._money.get(width)
        if styles is None:
            widths = {c.key: c.width for c in self._layout(width)}
            (value, ev), (value_totals, ev_totals) = self._spans, self._totals
            styles = (
                value.joined(value_totals).style(widths.get("value", 10)),
                ev.joined(ev_totals).style(widths.get("ev", 10)),
            )
            self._money[width] = styles
        return styles

    def _layout(self, width: int) -> list[Column]:
        if width != self._columns_width:
            self._columns = columns_for(width)
            self._columns_width = width
        return self._columns

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        item = self.view.line(index)
        if item is None or width <= 0:
            return Strip.blank(width, self._style("base"))
        cursor = index == self.cursor
        if isinstance(item, Group):
            totals = self.view.subtotals.get(item.month, [0, 0, 0])
            key = ("g", item.month, tuple(totals), width, self.view.sort == "gain")
            strip = self._cache.get(key)
            if strip is None:
                strip = self._render_group(item, totals, width)
                self._cache[key] = strip
            return strip
        row = self.view.rows.get(item)
        if row is None:  # gone since the lines were made (a delete racing a sort)
            return Strip.blank(width, self._style("base"))
        key = (row, cursor, width, self.has_focus, self.view.sort == "gain")
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(row, cursor, width)
            self._cache[key] = strip
        return strip

    def _render_group(self, group: Group, totals: list[int], width: int) -> Strip:
        """`Nov 2026 · 6 open or won` with the month's TV and EV under the Value and EV columns (no
        EV when that column shows the next-step gain)."""
        style = self._style("base") + self._style("group")
        label = f"{month_name(group.month)} · {totals[0]} open or won"
        columns = self._layout(width)
        lead = 0
        for c in columns:
            if c.key == "value":
                break
            lead += c.width + 1
        parts = [fit(label, lead - 1), " "] if lead else []
        value_style, ev_style = self._money_styles(width)
        for c in columns:
            if c.key == "value":
                parts.append(fit(value_style(totals[1]), c.width, True))
            elif c.key == "ev" and self.view.sort != "gain":
                # (sorted by gain, that column is each row's next-step gain, which the subtotals do
                # not sum: the month's EV there read as its gain)
                parts.append(" " + fit(ev_style(totals[2], micros=True), c.width, True))
        text = fit("".join(parts), width)
        return Strip([Segment(text, style)], width)

    def _render_row(self, row: Row, cursor: bool, width: int) -> Strip:
        view = self.view
        ladder = view.ladder
        stage = ladder.stage(row.stage_id)
        kind = stage.kind if stage else "open"
        base = self._style("base")
        if kind == "won":
            base = base + self._style("won")
        elif kind == "lost":
            base = base + self._style("lost")
        overdue = view.is_overdue(row)
        stale = kind == "open" and view.is_stale(row)
        # runs of cells in one style are one segment: most cells are in the row's base style
        segments: list[Segment] = []
        run: list[str] = []
        run_style = base

        def add(text: str, style: Style) -> None:
            nonlocal run, run_style
            if style is not run_style and style != run_style:
                if run:
                    segments.append(Segment("".join(run), run_style))
                run, run_style = [], style
            run.append(text)

        columns = self._layout(width)
        value_style, ev_style = self._money_styles(width)
        for i, c in enumerate(columns):
            style = base
            if c.key == "flag":
                text = "!" if overdue else ("~" if stale else " ")
                if overdue:
                    style = base + self._style("overdue")
                elif stale:
                    style = base + self._style("stale")
            elif c.key == "name":
                text = row.name
                if stale:
                    style = base + self._style("stale")
            elif c.key == "company":
                text = row.company
            elif c.key == "stage":
                text = stage.name if stage else "?"
            elif c.key == "p":
                text = format_percent(stage.probability_bp) if stage else ""
            elif c.key == "value":
                text = value_style(row.value_cents)
            elif c.key == "ev" and view.sort == "gain":
                # the gain is never more than the value: the Value column's style fits it
                text = value_style(ladder.gain(row), micros=True)
            elif c.key == "ev":
                text = ev_style(ladder.ev(row), micros=True)
            elif c.key == "month":
                text = row.month or ""
            elif c.key == "follow":
                text = short_date(row.follow_up)
                if overdue:
                    style = base + self._style("overdue")
            elif c.key == "owner":
                text = row.owner
            elif c.key == "changed":
                text = datetime.fromtimestamp(row.updated, UTC).date().isoformat()
            else:  # pragma: no cover - every column is handled above
                text = ""
            if i:
                add(" ", base)  # the gap between two cells, in the row's style
            add(fit(text, c.width, c.right), style)
        used = sum(c.width for c in columns) + len(columns) - 1
        if used < width:
            add(" " * (width - used), base)
        if run:
            segments.append(Segment("".join(run), run_style))
        if cursor:
            segments = list(Segment.apply_style(segments, post_style=self._style("cursor")))
        strip = Strip(segments, max(used, width))
        return strip if used <= width else strip.crop(0, width)
