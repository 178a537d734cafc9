"""Holding the app's next frame back for a moment, so that a change and its result come in one.

Textual paints at most one frame per 60th of a second (MAX_FPS): a frame asked for within that
time of the last one waits for the next slot. A key whose answer comes from a worker a few ms
later (the filter's search) would otherwise paint twice: the typed text at once, then the results
up to 17 ms after they were ready, waiting for the slot. Held, the first frame shows both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from textual.app import App, ScreenStackError
from textual.timer import Timer
from textual.widget import Widget

from . import paint


class FrameHold:
    """Holds every repaint of `app` (App.batch_update) until `release`, or until `limit` seconds
    have passed (a timer of the app's, so that it ends even if the screen that asked is gone).
    Keys and messages are handled meanwhile; only painting waits. Releasing twice is harmless."""

    def __init__(self, app: App, limit: float) -> None:
        self._app = app
        self._batch: AbstractContextManager[None] | None = app.batch_update()
        self._batch.__enter__()
        self._timer: Timer | None = app.set_timer(limit, self.release, name="frame hold")

    @property
    def held(self) -> bool:
        return self._batch is not None

    def release(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        batch.__exit__(None, None, None)
        # what changed while held waits on the screen, whose timer restarts when it next goes idle
        try:
            screen = self._app.screen
        except ScreenStackError:  # the app is closing
            return
        screen.check_idle()

    def release_painted(self, widget: Widget) -> None:
        """Release and paint the frame at once (paint.paint_now) when only repaints wait: a
        frame asked for after the hold would wait for Textual's next frame slot, up to a 60th of
        a second (8-17 ms of each filter keystroke at 100,000 prospects, after its results were
        ready). Else as `release_after`."""
        if self._batch is None:
            return
        if paint.to_paint(self._app, held=1) is None:
            self.release_after(widget)
            return
        self.release()
        paint.paint_now(self._app)

    def release_after(self, widget: Widget) -> None:
        """Release once `widget`'s last refresh has reached the screen: a widget tells the screen
        what to paint again only when it next goes idle, so released at once, the frame could be
        painted before it heard (and the widget's change wait for the next one). Its callback runs
        when the screen goes idle after that (as nothing is painted while held)."""
        if self._batch is not None:
            widget.call_after_refresh(self.release)
