"""Reusable widgets of evpipe's screens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.content import Content
from textual.geometry import Size
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget
from textual.widgets import Input


def loading(title: str, what: str) -> Text:
    """A screen's line before its first read ends: 'Forecast  loading the forecast…', or without
    a title 'Loading every closed deal…' (a big pipeline takes seconds, and an empty table would
    read as nothing to show)."""
    if not title:
        return Text(f"Loading {what}…", style="dim")
    return Text.assemble((title, "bold"), (f"  loading {what}…", "dim"))


def could_not_load(title: str, what: str, why: str) -> Text:
    """The loading line once the read failed: 'Forecast  could not load the forecast: …'."""
    said = f"could not load {what}: {why}"
    if not title:
        return Text(said[0].upper() + said[1:], style="bold")
    return Text.assemble((title, "bold"), (f"  {said}", "bold"))


def fit_clauses(text: str, width: int) -> str:
    """`text` on one line of `width` cells: its clauses ("; "-separated: a message's what, then its
    why and how to fix it) from the first, as many as fit whole; the first cut short with "…" when
    even it does not fit."""
    if cell_len(text) <= width or width <= 1:
        return text
    clauses = text.split("; ")
    out = clauses[0]
    for more in clauses[1:]:
        if cell_len(f"{out}; {more}") > width:
            break
        out = f"{out}; {more}"
    if cell_len(out) > width:
        out = set_cell_size(out, width - 1).rstrip() + "…"
    return out


class TextLine(Widget):
    """Text of a fixed size (its CSS gives the height) that repaints without a layout pass, unlike
    Static.update. Shown as given: a str is plain text, never markup."""

    DEFAULT_CSS = """
    TextLine {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, content: Content | str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content = Content(content) if isinstance(content, str) else content

    @property
    def content(self) -> Content:
        return self._content

    @property
    def plain(self) -> str:
        return self._content.plain

    def show(self, content: Content | str) -> None:
        content = Content(content) if isinstance(content, str) else content
        # (Content's == compares the text only: a change of style alone is a change too)
        if content.plain != self._content.plain or content.spans != self._content.spans:
            self._content = content
            self.refresh()

    def render(self) -> Content:
        return self._content

    def render_line(self, y: int) -> Strip:
        """Line `y` of the text, from the lines most recently made for any TextLine: a stage key
        shows six new lines of text, most of them a line that was shown a moment before on
        another TextLine (the latest changes move down a line); making each again took 0.1-1 ms."""
        width, height = self.size
        style = self.visual_style
        rules = self.styles
        text = self._content
        key = (
            text.plain,
            tuple(text.spans),
            width,
            height,
            style,
            rules.text_align,
            rules.text_wrap,
            rules.text_overflow,
        )
        strips = _LINES.get(key)
        if strips is None or self.text_selection is not None:  # (a selection is drawn on the text)
            strips = Visual.to_strips(self, self._content, width, height, style)
            _LINES[key] = strips
            if len(_LINES) > _LINES_KEPT:
                del _LINES[next(iter(_LINES))]
        return strips[y] if y < len(strips) else Strip.blank(width, style.rich_style)


#: The lines TextLine made last, by what they show and how (oldest first).
_LINES: dict[tuple[Any, ...], list[Strip]] = {}
_LINES_KEPT = 64


class LineInput(Input):
    """An Input of a fixed size (its CSS gives the height and width) whose typing repaints only
    the box: Input takes each new text width as a new virtual size, a reactive that lays out the
    whole screen again (several ms a key at 80x24, with the screen's other widgets); the width
    only bounds the box's own scrolling, so it is set here first, without a layout pass, and
    Input's own watcher (Changed, validation, the cursor) finds it already set.

    `on_change`, when given, is called with each new text as it changes, inside the handling of
    the key that changed it: what it refreshes comes in the same frame as the text (the Changed
    message is handled later, often after that frame is painted)."""

    def __init__(self, *args: Any, on_change: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_change = on_change

    def _watch_value(self, value: str) -> None:
        self.set_reactive(Widget.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)
        if self._on_change is not None:
            self._on_change(value)
