"""The base of the top-level screens that show figures from the database."""

from __future__ import annotations

from textual.screen import Screen

from ..access import evpipe_app
from ..commands import BindingCommands


class LiveScreen(Screen):
    """Reloads when it is shown again, and when any change is made while it is showing (here, or
    by another session: tui/live_sync.py).

    Subclasses define `load()` (a thread worker) and call `follow_changes()` from `on_mount`;
    `reload()` is what a change triggers (by default `load()`). Their keys are in the command
    palette too."""

    COMMANDS = {BindingCommands}

    def follow_changes(self) -> None:
        app = evpipe_app(self)
        app.data_changed_signal.subscribe(self, self._data_changed)
        app.remote_changed_signal.subscribe(self, self._data_changed)  # other sessions' changes
        self.reload()

    def reload(self) -> None:
        self.load()

    def load(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def on_screen_resume(self) -> None:
        self.reload()

    def _data_changed(self, _result) -> None:
        if self.is_current:
            self.reload()
