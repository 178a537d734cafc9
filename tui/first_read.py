"""Screens that take keys once their first read has ended (the app holds the keys typed before).

A screen reads what it shows in a thread worker. Keys typed in the same burst as the key that
opened it, as they arrive over a slow SSH link, came before the rows did: `7jp30` and enter (the
stages, down a row, its probability 30%) said "No stage is selected" for the `p` and lost the
rest. Such a screen is not ready for keys (`keys_ready`) until its first worker ends, with the
rows or with a failure: the app holds the keys typed for it meanwhile (EvpipeApp._hold_key) and
then runs them in order, as if typed at that moment (at most KEY_HOLD_LIMIT seconds later,
whatever the screen says).

The first read has ended when a worker of the screen has ended and none is still to end: a
screen may start its read twice as it opens (on mount, and again as it is shown), and shows only
the newest. A worker posts what it read as a message before it ends; the keys are let go after
the messages already in the screen's queue, so by then the screen shows the rows. A screen whose
worker reads on after the first rows (the pipeline, page by page) says so itself, with
`first_read_ended()`, when the first rows are on screen.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState

from .failed_work import ReportsFailedWork


class ReadyAfterFirstRead(ReportsFailedWork):
    """A screen that holds the keys typed for it until its first worker has ended."""

    _first_read_ended = False

    @property
    def keys_ready(self) -> bool:
        """Whether the screen takes keys: once its first read has ended."""
        return self._first_read_ended

    def first_read_ended(self) -> None:
        """The screen shows what it read (or why it could not): the keys held for it run, and the
        app starts looking for other sessions' changes (EvpipeApp.first_screen_read)."""
        if not self._first_read_ended:
            self._first_read_ended = True
            for hook in ("release_keys", "first_screen_read"):  # (EvpipeApp's; a test's bare app has none)
                call = getattr(self.app, hook, None)  # type: ignore[attr-defined]
                if call is not None:
                    call()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        if self._first_read_ended or event.state not in _ENDED:
            return
        if any(w.node is self and w.state not in _ENDED for w in self.app.workers):  # type: ignore[attr-defined]
            return  # (a newer read is on its way)
        self.call_later(self.first_read_ended)  # type: ignore[attr-defined]


_ENDED = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


class ReadsWhenShown:
    """A screen that reads again each time it is shown, unless a read began since it was last
    hidden and nothing changed since: Textual says "resumed" twice as a screen first shows, and
    each read again beside the read its mount began (a thread is not stopped: the review of a
    million prospects three times at once). `read_begun` as a read begins, `read_stale` when
    something changed; `read_when_shown` is the read."""

    _read_fresh = False

    def read_begun(self) -> None:
        self._read_fresh = True

    def read_stale(self) -> None:
        self._read_fresh = False

    def read_when_shown(self) -> None:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def on_screen_resume(self) -> None:
        if not self._read_fresh:
            self.read_when_shown()

    def on_screen_suspend(self) -> None:
        self._read_fresh = False  # (shown again, it reads again: what it shows may be old by then)


__all__ = ["ReadsWhenShown", "ReadyAfterFirstRead"]
