"""Reusable widgets of evpipe's screens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.visual import Visual
from textual.widget import Widget
from textual.widgets import Input

from evpipe.models.names import display_name


def user_text(text: str, style: str = "", **kwargs: Any) -> Text:
    """User text (a name, a stage, a note) as a plain `Text`, never markup, shown as every
    terminal draws it in the cells counted (`display_name`: a skin tone or an emoji selector moved
    what follows it on the line)."""
    return Text(display_name(text), style=style, **kwargs)


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


def fit_clauses(text: str, width: int, sep: str = "; ") -> str:
    """`text` on one line of `width` cells: its clauses (`sep`-separated: a message's what, then
    its why and how to fix it) from the first, as many as fit whole; the first cut short with "…"
    when even it does not fit."""
    if cell_len(text) <= width or width <= 1:
        return text
    clauses = text.split(sep)
    out = clauses[0]
    for more in clauses[1:]:
        if cell_len(f"{out}{sep}{more}") > width:
            break
        out = f"{out}{sep}{more}"
    if cell_len(out) > width:
        out = set_cell_size(out, width - 1).rstrip() + "…"
    return out


class KeptLines(Widget):
    """A widget whose lines, when nothing about them changed, are handed to the frame as they were.

    Textual's compositor asks every widget on the screen for all of its lines in each frame that
    repaints anything (the dirty area is one box, and each of the screen's children is clipped by
    the whole screen). A widget's own cache (StylesCache) then looks up each line, applies the
    filters and crops: 30-90 us a widget, some 0.4 ms of a stage key's frame at 80x24 for widgets
    that show what they showed. Here the lines go back at once when the cache holds the very
    strips they were made from, no line is marked dirty, and the crop, the backgrounds, the
    filters, the opacity and the hover style are as they were. When only some lines changed (a
    cursor move: two of the table's twenty), the span from the first to the last is rendered
    through the cache and the rest are the strips kept; else Textual renders as usual.

    A subclass of another widget names that one first (`class Table(ScrollView, KeptLines)`):
    Textual takes CSS, component classes and type names from each class's first base only."""

    _kept: tuple[Any, list[tuple[int, Strip | None]], list[Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        return kept_lines(self, crop, super().render_lines)


def kept_lines(widget: Widget, crop: Region, render: Callable[[Region], list[Strip]]) -> list[Strip]:
    """KeptLines.render_lines for `widget`, whose lines are made by `render` (Textual's
    Widget.render_lines, through the StylesCache) when they cannot be kept. Also used by the
    compositor (tui/paint.py) for the screen's background and scroll bars."""
    cache = widget._styles_cache
    base, background = widget.background_colors
    filters = widget.get_line_filters()
    opacity = widget.opacity
    hover = widget.hover_style if widget.auto_links else None
    key = (crop, base, background, tuple(filters), opacity, hover)
    kept = getattr(widget, "_kept", None)
    if kept is not None and kept[0] == key:
        held = cache._cache
        dirty = cache._dirty_lines
        stale = [i for i, (y, strip) in enumerate(kept[1]) if y in dirty or held.get(y) is not strip]
        if not stale:
            return kept[2]
        if widget._border_title is None and widget._border_subtitle is None and (hover is None or not hover._link_id):
            # Only the lines from the first changed one to the last are rendered (a cursor move:
            # two of the table's twenty), with what was worked out for the key above; the others
            # are the strips kept, as they are still the cache's
            first, last = stale[0], stale[-1]
            styles = widget.styles
            app = widget.app
            cache._simple_strip = None
            part = cache.render(
                styles,
                widget.region.size,
                base,
                background,
                widget.render_line,
                filters,
                None,
                None,
                content_size=widget.content_region.size,
                padding=styles.padding,
                crop=Region(crop.x, crop.y + first, crop.width, last - first + 1),
                opacity=opacity,
                ansi_theme=app.ansi_theme,
                native_ansi=app.native_ansi_color,
            )
            strips = kept[2][:first] + part + kept[2][last + 1 :]
            widget._kept = (key, [(y, held.get(y)) for y in crop.line_range], strips)
            return strips
    strips = render(crop)
    held = cache._cache
    widget._kept = (key, [(y, held.get(y)) for y in crop.line_range], strips)
    return strips


class TextLine(KeptLines):
    """Text of a fixed size (its CSS gives the height) that repaints without a layout pass, unlike
    Static.update. Shown as given: a str is plain text, never markup.

    `cut_at`: a plain one-line text too long for the width keeps its parts (separated by
    `cut_at`) that fit whole, as `fit_clauses` does, rather than being wrapped and cut wherever a
    word ends."""

    DEFAULT_CSS = """
    TextLine {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(
        self,
        content: Content | str = "",
        *,
        cut_at: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._content = Content(content) if isinstance(content, str) else content
        self._cut_at = cut_at

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
        if self._cut_at and not text.spans and text.cell_length > width and "\n" not in text.plain:
            text = Content(fit_clauses(text.plain, width, self._cut_at))
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
            strips = self._lines_that_fit(text, width, height, style)
            if strips is None:
                strips = Visual.to_strips(self, text, width, height, style)
            _LINES[key] = strips
            if len(_LINES) > _LINES_KEPT:
                del _LINES[next(iter(_LINES))]
        return strips[y] if y < len(strips) else Strip.blank(width, style.rich_style)

    def _lines_that_fit(self, content: Content, width: int, height: int, style: VisualStyle) -> list[Strip] | None:
        """The strips Visual.to_strips makes, made directly when nothing needs its layout: each
        line of the text fits the width, aligned left, no selection, no link (0.3 ms -> 0.05 ms
        for a KPI box in the frame of a stage key; Content's wrapping and the link style, which
        walks the ancestors' backgrounds, were most of it). None when it is not that simple."""
        rules = self.styles
        if (
            width <= 0
            or self.text_selection is not None
            or rules.text_align not in ("left", "start")
            or rules.content_align != ("left", "top")
            or any(not _plain_style(span.style) for span in content.spans)
        ):
            return None
        lines = content.split("\n", allow_blank=True)[:height]
        if any(line.cell_length > width for line in lines):
            return None
        get_style = self._get_style
        strips = []
        for y, line in enumerate(lines):
            segments = []
            x = 0
            for text, text_style in line.render(style, end="", parse_style=get_style):
                segments.append(Segment(text, _rich_style(style + text_style, x, y)))
                x += len(text)
            strips.append(Strip(segments, line.cell_length))
        return strips


def _plain_style(style: str | VisualStyle) -> bool:
    """A span's style that holds no link or action (what TextLine's direct way leaves out)."""
    if isinstance(style, str):
        return "@" not in style and "link" not in style
    return style.link is None and style._meta is None


def _rich_style(style: VisualStyle, x: int, y: int) -> RichStyle:
    """style.rich_style_with_offset(x, y), made once per style and place: a stage key shows new
    figures in styles and places the boxes showed before (a Rich style made anew for each part of
    each line was half of a KPI box's 0.2 ms)."""
    key = (style, x, y)
    made = _RICH_STYLES.get(key)
    if made is None:
        if len(_RICH_STYLES) >= 4096:
            _RICH_STYLES.clear()
        made = _RICH_STYLES[key] = style.rich_style_with_offset(x, y)
    return made


_RICH_STYLES: dict[tuple[VisualStyle, int, int], RichStyle] = {}

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
    message is handled later, often after that frame is painted).

    `shown`, when given, is what the box keeps of a text typed or pasted (the filter: the text as
    it is shown, models.names.display_name, whose emoji selectors terminals draw in cells of their
    own: the box's text and cursor stood out of line with them)."""

    def __init__(
        self,
        *args: Any,
        on_change: Callable[[str], None] | None = None,
        shown: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_change = on_change
        self._shown = shown

    def replace(self, text: str, start: int, end: int) -> None:
        """Typed or pasted text goes in as the box keeps it (`shown`, a character at a time)."""
        super().replace(text if self._shown is None else self._shown(text), start, end)

    def _watch_value(self, value: str) -> None:
        if self._shown is not None and (kept := self._shown(value)) != value:  # (a text set whole)
            self.value = kept
            return
        self.set_reactive(Widget.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)
        if self._on_change is not None:
            self._on_change(value)
