"""The stage board: one column per open stage, its prospects as cards, drawn line by line.

Nothing is mounted per card: the widget paints each screen line itself from the board's columns
(models/board.py), and only the cards in view are looked at: each column shows a window of its
cards (the cursor's column follows the cursor), and the columns that do not fit the width are
scrolled sideways, keeping the cursor's column in view. A key costs the same with ten prospects
or 100,000. User text goes into `Segment`s as plain text, never markup.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from evpipe.models.board import BoardColumn, BoardView
from evpipe.models.pipeline_view import Row
from evpipe.models.values import format_percent, money_style

from ..messages import BoardMoved
from .prospect_table import fit

#: The narrowest column: five open stages fit side by side at 80 columns.
MIN_COLUMN = 15
#: Lines above the cards: the stage and p, the count and TV, the EV, a rule.
HEAD = 4
#: Lines per card: the mark and name; the value and month.
CARD = 2


class StageBoard(Widget, can_focus=True):
    """The board's cards, with a cursor moved by the arrow keys."""

    BINDINGS = [
        Binding("up,k", "cursor(0, -1)", "Up", show=False, id="board.up"),
        Binding("down,j", "cursor(0, 1)", "Down", show=False, id="board.down"),
        Binding("left", "cursor(-1, 0)", "Left", show=False, id="board.left"),
        Binding("right", "cursor(1, 0)", "Right", show=False, id="board.right"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="board.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="board.page_down"),
        Binding("home", "edge(-1)", "First card", show=False, id="board.first"),
        Binding("end", "edge(1)", "Last card", show=False, id="board.last"),
    ]

    COMPONENT_CLASSES = {
        "stage-board--head",
        "stage-board--head-current",
        "stage-board--cursor",
        "stage-board--overdue",
        "stage-board--stale",
        "stage-board--dim",
    }

    DEFAULT_CSS = """
    StageBoard { height: 1fr; }
    StageBoard > .stage-board--head { background: $panel; }
    StageBoard > .stage-board--head-current { background: $panel; text-style: bold; color: $text-accent; }
    StageBoard > .stage-board--cursor { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
    StageBoard:blur > .stage-board--cursor { background: $block-cursor-blurred-background; text-style: none; }
    StageBoard > .stage-board--overdue { color: $text-error; text-style: bold; }
    StageBoard > .stage-board--stale { color: $text-warning; }
    StageBoard > .stage-board--dim { color: $text-muted; }
    App:nocolor StageBoard > .stage-board--cursor { text-style: reverse bold; }
    App:nocolor StageBoard > .stage-board--head-current { text-style: bold underline; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.board: BoardView | None = None
        self.column = 0  # the cursor's column
        self.index: list[int] = []  # each column's cursor (card index)
        self.top: list[int] = []  # each column's first card in view
        self.left = 0  # the first column in view
        #: The card that left the board from under the cursor (won or lost by a key): the cursor is
        #: on no card, so the next keys of a burst (`>` held down) do not move the card that took
        #: its place; it goes back onto that card when the card comes back (undo).
        self.vacant: int | None = None
        self._styles: dict[str, Style] | None = None
        #: Painted card and head lines, by what they show: a key repaints from here, not anew.
        self._cache: LRUCache[tuple, list[Segment]] = LRUCache(1024)

    # ------------------------------------------------------------ public

    def show_board(self, board: BoardView, keep_id: int | None = None) -> None:
        """Show a (re)loaded board; the cursor stays on `keep_id` when it is still on the board."""
        old_index, old_column = self.index, self.column
        self.board = board
        n = len(board.columns)
        self.index = [old_index[i] if i < len(old_index) else 0 for i in range(n)]
        self.top = [0] * n
        self.column = min(old_column, max(0, n - 1))
        row = board.rows.get(keep_id) if keep_id is not None else None
        found = board.find(row) if row is not None else None
        if found is not None:
            self.column, self.index[found[0]] = found
            self.vacant = None
        for c in range(n):
            self._clamp(c)
        self._into_view()
        self._moved()

    @property
    def current_row(self) -> Row | None:
        if self.board is None or not self.index or self.vacant is not None:
            return None
        return self.board.card(self.column, self.index[self.column])

    def go_to(self, column: int, index: int) -> None:
        """Put the cursor on a card (after a move put it there)."""
        if self.board is None or not 0 <= column < len(self.board.columns):
            return
        self.vacant = None
        self.column = column
        self.index[column] = index
        self._clamp(column)
        self._into_view()
        self._moved()

    def left_board(self, prospect_id: int) -> None:
        """The cursor's card left the board by the rep's own key (won, lost): the cursor stays
        where it was, on no card, until an arrow key (or a click) puts it on one."""
        self.vacant = prospect_id
        self.changed()

    def changed(self) -> None:
        """Cards were added or removed: keep every cursor on a card, repaint."""
        for c in range(len(self.index)):
            self._clamp(c)
        self._into_view()
        self._moved()

    @property
    def visible_columns(self) -> range:
        count, _width = self._layout()
        return range(self.left, min(self.left + count, len(self.board.columns) if self.board else 0))

    # ------------------------------------------------------------ the cursor

    def _rows_in_view(self) -> int:
        return max(1, (self.size.height - HEAD) // CARD)

    def _clamp(self, c: int) -> None:
        assert self.board is not None
        size = len(self.board.columns[c].ids)
        self.index[c] = max(0, min(self.index[c], size - 1)) if size else 0
        rows = self._rows_in_view()
        if self.index[c] < self.top[c]:
            self.top[c] = self.index[c]
        elif self.index[c] >= self.top[c] + rows:
            self.top[c] = self.index[c] - rows + 1
        self.top[c] = max(0, min(self.top[c], max(0, size - rows)))

    def _moved(self) -> None:
        row = self.current_row
        self.post_message(BoardMoved(row.id if row is not None else None))
        self.refresh()

    def _into_view(self) -> None:
        count, _ = self._layout()
        if self.column < self.left:
            self.left = self.column
        elif self.column >= self.left + count:
            self.left = self.column - count + 1
        total = len(self.board.columns) if self.board else 0
        self.left = max(0, min(self.left, total - count))

    def _where(self) -> tuple[int, int, tuple[int, ...], int]:
        return self.column, self.index[self.column] if self.index else 0, tuple(self.top), self.left

    def _repaint(self, before: tuple[int, int, tuple[int, ...], int]) -> None:
        """Repaint what a cursor move changed: the two cards' lines (and the column heads when the
        column changed), or everything when the board scrolled."""
        column, index, top, left = before
        row = self.current_row
        self.post_message(BoardMoved(row.id if row is not None else None))
        if top != tuple(self.top) or left != self.left:
            self.refresh()
            return
        width = self.size.width
        lines = [*self._lines_of(column, index), *self._lines_of(self.column, self.index[self.column])]
        if column != self.column:
            lines += range(HEAD - 1)
        for y in lines:
            self.refresh(Region(0, y, width, 1))

    def _lines_of(self, column: int, index: int) -> list[int]:
        y = HEAD + (index - self.top[column]) * CARD
        return [y, y + 1] if HEAD <= y < self.size.height else []

    def action_cursor(self, dx: int, dy: int) -> None:
        board = self.board
        if board is None or not board.columns:
            return
        before = self._where()
        if self.vacant is not None:  # off the card that left: down is the card that took its place
            self.vacant = None
            if dy > 0:
                dy = 0
            before = (-1, -1, (), -1)  # (repaint it all: the vacant place is drawn as no card)
        if dx:
            target = self.column + dx
            if not 0 <= target < len(board.columns):
                return
            # the card at the same height on the screen, as far as the new column goes
            here = self.index[self.column] - self.top[self.column]
            self.index[target] = self.top[target] + here
            self.column = target
        else:
            self.index[self.column] += dy
        self._clamp(self.column)
        self._into_view()
        self._repaint(before)

    def action_page(self, direction: int) -> None:
        if self.board is None or not self.board.columns:
            return
        self.vacant = None
        self.index[self.column] += direction * max(1, self._rows_in_view() - 1)
        self._clamp(self.column)
        self._moved()

    def action_edge(self, direction: int) -> None:
        if self.board is None or not self.board.columns:
            return
        self.vacant = None
        self.index[self.column] = 0 if direction < 0 else len(self.board.columns[self.column].ids) - 1
        self._clamp(self.column)
        self._moved()

    def _on_click(self, event: events.Click) -> None:
        if self.board is None:
            return
        count, width = self._layout()
        c = self.left + event.x // (width + 1)
        if c in self.visible_columns and event.y >= HEAD:
            self.vacant = None
            self.column = c
            self.index[c] = self.top[c] + (event.y - HEAD) // CARD
            self._clamp(c)
            self._moved()

    # ------------------------------------------------------------ painting

    def on_resize(self, _event: events.Resize) -> None:
        if self.board is not None:
            self.changed()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._cache.clear()

    def _style(self, name: str) -> Style:
        if self._styles is None:
            self._styles = {
                "base": self.rich_style,
                **{
                    n: self.get_component_rich_style(f"stage-board--{n}", partial=True)
                    for n in ("head", "head-current", "cursor", "overdue", "stale", "dim")
                },
            }
        return self._styles[name]

    def _layout(self) -> tuple[int, int]:
        """(columns in view, the width of each); one cell between columns."""
        width = max(1, self.size.width)
        total = len(self.board.columns) if self.board else 0
        count = max(1, min(max(1, total), (width + 1) // (MIN_COLUMN + 1)))
        return count, max(1, (width - (count - 1)) // count)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._style("base")
        board = self.board
        if board is None or not board.columns:
            text = "Loading the board…" if board is None else "No open stages: add one on the Stages screen (7)"
            return Strip([Segment(fit(text if y == 0 else "", width), base)], width)
        count, col_width = self._layout()
        segments: list[Segment] = []
        rule = Segment("│", self._style("dim")) if y >= HEAD else Segment(" ", base)
        columns = self.visible_columns
        for n, c in enumerate(columns):
            if n:
                segments.append(rule)
            if y < HEAD:
                segments.extend(self._head_line(c, y, col_width))
            else:
                segments.extend(self._card_line(c, y - HEAD, col_width))
        used = len(columns) * (col_width + 1) - 1
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        return Strip(segments, width).crop(0, width)

    def _money(self, amount: int, width: int, *, micros: bool = False) -> str:
        """An amount that fits `width` cells: as it is, else whole units, else with a unit
        (models/values.py, the money rule)."""
        return money_style([amount], micros=micros, width=width)(amount, micros=micros)

    def _head_line(self, c: int, y: int, width: int) -> list[Segment]:
        assert self.board is not None
        column = self.board.columns[c]
        key = ("h", column.stage, column.count, column.tv_cents, column.ev_micros, y, width, c == self.column)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._paint_head(column, c, y, width)
        return found

    def _paint_head(self, column: BoardColumn, c: int, y: int, width: int) -> list[Segment]:
        style = self._style("base") + self._style("head-current" if c == self.column else "head")
        if y == 0:
            p = format_percent(column.stage.probability_bp)
            text = fit(column.stage.name, width - len(p) - 1) + " " + p
        elif y == 1:
            count = f"{column.count:,}"
            tv = self._money(column.tv_cents, max(1, width - len(count) - 4))
            text = count + fit("TV " + tv, width - len(count), right=True)
        elif y == 2:
            text = fit("EV " + self._money(column.ev_micros, max(1, width - 3), micros=True), width, right=True)
        else:
            return [Segment("─" * width, self._style("base") + self._style("dim"))]
        return [Segment(fit(text, width), style)]

    def _card_line(self, c: int, line: int, width: int) -> list[Segment]:
        board = self.board
        assert board is not None
        base = self._style("base")
        index = self.top[c] + line // CARD
        row = board.card(c, index)
        if row is None:
            if index == 0 and line == 0:
                return [Segment(fit("(none)", width), base + self._style("dim"))]
            return [Segment(" " * width, base)]
        cursor = c == self.column and index == self.index[c] and self.vacant is None
        key = (row, line % CARD, cursor, width, self.has_focus)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._paint_card(row, line % CARD, cursor, width)
        return found

    def _paint_card(self, row: Row, line: int, cursor: bool, width: int) -> list[Segment]:
        board = self.board
        assert board is not None
        base = self._style("base")
        if line == 0:
            mark = board.mark(row)
            mark_style = (
                base + self._style("overdue") if mark == "!" else base + self._style("stale") if mark == "~" else base
            )
            segments = [Segment(mark, mark_style), Segment(" " + fit(row.name, width - 2), base)]
        else:
            month = row.month or "no month"
            value = self._money(row.value_cents, max(1, width - len(month) - 2))
            segments = [Segment(fit(" " + value, width - len(month)) + month, base)]
        if cursor:
            segments = list(Segment.apply_style(segments, post_style=self._style("cursor")))
        return segments


__all__ = ["StageBoard"]
