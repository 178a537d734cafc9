"""The base of the top-level screens that show figures from the database."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from ..access import evpipe_app
from ..commands import BindingCommands
from ..first_read import ReadsWhenShown, ReadyAfterFirstRead
from ..widgets import could_not_load, loading


class LiveScreen(ReadsWhenShown, ReadyAfterFirstRead, Screen):
    """Reloads when it is shown again, and when any change is made while it is showing (here, or
    by another session: tui/live_sync.py).

    Subclasses define `load()` (a thread worker) and call `follow_changes()` from `on_mount`;
    `reload()` is what a change triggers (by default `load()`). Their keys are in the command
    palette too."""

    COMMANDS = {BindingCommands}

    #: Where the screen says it is loading until its first read ends: (the Static's id, the
    #: title it starts with, what it reads), as `widgets.loading` words it.
    LOADING: tuple[str, str, str] | None = None

    def loading_line(self) -> Static:
        """The line saying the screen is loading (compose it with this; see LOADING)."""
        assert self.LOADING is not None
        widget_id, title, what = self.LOADING
        return Static(loading(title, what), id=widget_id, markup=False)

    def work_failed(self, worker: Worker, error: BaseException) -> str:
        """A read that failed before the first one ended: the line that said it was loading says
        it could not, and why (the notice goes away; this stays until a read succeeds)."""
        line = super().work_failed(worker, error)
        if self.LOADING is not None:
            widget_id, title, what = self.LOADING
            shown = self.query_one(f"#{widget_id}", Static)
            if str(shown.render()) == loading(title, what).plain:
                shown.update(could_not_load(title, what, line))
        return line

    def follow_changes(self) -> None:
        app = evpipe_app(self)
        app.data_changed_signal.subscribe(self, self._data_changed)
        app.remote_changed_signal.subscribe(self, self._data_changed)  # other sessions' changes
        self.read_when_shown()

    def read_when_shown(self) -> None:
        self.read_begun()
        self.reload()

    def reload(self) -> None:
        self.load()

    def load(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _data_changed(self, _result) -> None:
        self.read_stale()
        if self.is_current:
            self.read_when_shown()
