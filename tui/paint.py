"""A key's frame, painted with less of Textual's work around it (at 100,000 prospects, on a slow
hour of this kind of machine, a cursor key went from 4.1 to 2.8 ms, key to frame).

- **Only the widgets a partial frame repaints are asked for lines.** A cursor key changes two of
  the table's lines and the detail line under it. Textual's compositor repaints the box around
  them, and asks every widget whose *clip* (the area its container shows) touches that box for all
  of its lines: for a child of the screen the clip is the whole screen, so the tab bar, the KPI
  header, the column titles, the status line and the footer were rendered in every frame and their
  lines thrown away, as none lies on a repainted line. `install` makes the compositor ask only the
  widgets whose visible part touches one of the regions repainted, not merely the box around them
  (a stage key's box, from the KPI boxes to the detail line, is most of the screen: 3.9 -> 3.5 ms
  key to frame, p50 of three runs each). A full frame still asks every widget.
- **The screen's background and scroll bars keep their lines** as KeptLines do (`kept_lines`):
  Textual's own widgets, drawn through their StylesCache, were made again in every frame over
  them (0.3 ms of a stage key's frame). Only those two: kept for every Textual widget, a prospect
  page's notices, once gone, left their text on the terminal (tests/test_tmux.py).
- **A pipeline key paints its frame inside its own handling** (`paint_now`), rather than a few
  turns of the event loop later; so does the filter when it puts a search's results on screen
  (`to_paint`, frames.FrameHold.release_painted), rather than at Textual's next frame slot.

Textual is pinned (pyproject.toml): the method replaced is `Compositor._get_renders` of that
version, and tests/test_paint.py checks that a partial frame writes the bytes Textual's would.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual import events
from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widget import Widget

from .widgets import kept_lines

if TYPE_CHECKING:
    from textual.app import App

_textual_get_renders = Compositor._get_renders
_textual_render_partial_update = Compositor.render_partial_update
_WIDGET_RENDER_LINES = Widget.render_lines

#: The regions the partial frame being rendered repaints (`_render_partial_update`), else None.
_updates: list[Region] | None = None


def _render_partial_update(self: Compositor) -> ChopsUpdate | None:
    """Compositor.render_partial_update, its regions at hand to `_get_renders`: the box around them
    holds far more than they do (a stage key repaints two KPI boxes, a line of the table and the
    detail line: the box is most of the screen)."""
    global _updates
    _updates = list(self._dirty_regions)
    try:
        return _textual_render_partial_update(self)
    finally:
        _updates = None


def _get_renders(self: Compositor, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
    """Compositor._get_renders, asking only the widgets whose visible part overlaps one of the
    regions a partial frame repaints (a frame writes only those: a widget off them, though inside
    the box around them, is not written), or `crop` where there are none at hand."""
    if not crop:
        yield from _textual_get_renders(self, crop)
        return
    overlaps = crop.overlaps
    updates = _updates or [crop]
    shown = []
    for widget, (region, clip) in self.visible_widgets.items():
        visible = region.intersection(clip)
        if overlaps(visible) and any(visible.overlaps(update) for update in updates):
            shown.append((widget, region, clip, visible))
    for widget, region, clip, visible in shown:
        if clip.contains_region(region):
            part = Region(0, 0, region.width, region.height)
        else:
            x, y, width, height = visible
            part = Region(x - region.x, y - region.y, width, height)
        if isinstance(widget, (Screen, ScrollBar)) and type(widget).render_lines is _WIDGET_RENDER_LINES:
            # (the screen's background and a scroll bar: Textual's, drawn through their
            # StylesCache, kept as KeptLines keep theirs)
            yield region, clip, kept_lines(widget, part, widget.render_lines)
        else:
            yield region, clip, widget.render_lines(part)


def install() -> None:
    """Replace the compositor's methods (EvpipeApp does as it is made; again is harmless)."""
    Compositor._get_renders = _get_renders  # type: ignore[method-assign]
    Compositor.render_partial_update = _render_partial_update  # type: ignore[method-assign]


def _input_waiting(app: App) -> bool:
    """Whether a key (or another input event) waits in the app's queue, or was taken from it to
    look at what comes next (MessagePump._peek_message)."""
    waiting = app._pending_message
    return isinstance(waiting, events.InputEvent) or any(
        isinstance(message, events.InputEvent) for message in app._message_queue.values
    )


def paint_now(app: App) -> bool:
    """Paint the screen's repaints at once, inside the key that asked for them: what Textual does
    a few turns of the event loop later (each widget refreshed tells the screen when it next goes
    idle, the screen then wakes its update timer, whose task paints), some 0.5 ms of a cursor key.

    Only repaints: when anything on the screen needs a layout, a scroll, new styles or composing
    again, or painting is held (App.batch_update), or keys are waiting (a burst over a slow link
    is painted once, after its last key), it is left to Textual. Other messages waiting are no
    reason to wait: a callback asked for after the frame (the stage key's save) is still run after
    it. True when it painted."""
    dirty = to_paint(app)
    if dirty is None:
        return False
    screen = app.screen
    for widget in dirty:
        widget._repaint_required = False  # (so that it does not tell the screen again when idle)
    screen._dirty_widgets.update(w for w in dirty if w.display)
    screen._compositor.update_widgets(screen._dirty_widgets)
    screen._compositor_refresh()
    return True


def to_paint(app: App, held: int = 0) -> list[Widget] | None:
    """The widgets `paint_now` would paint again, or None when it would leave the frame to
    Textual. `held`: that many of the holds on painting (App.batch_update) are the caller's, about
    to go (FrameHold.release_painted)."""
    screen = app.screen
    if (
        app._batch_count != held
        or not screen.is_current
        or screen._layout_required
        or screen._scroll_required
        or screen._recompose_required
        or screen._repaint_required
        or _input_waiting(app)
    ):
        return None
    widgets = list(screen._compositor.visible_widgets)
    if any(
        w._layout_required or w._scroll_required or w._refresh_styles_required or w._recompose_required for w in widgets
    ):
        return None
    dirty = [w for w in widgets if w._repaint_required]
    return dirty or None
