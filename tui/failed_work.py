"""Work that failed in a worker is said on screen, never lost.

Every read and write of the app runs in a thread worker started with `exit_on_error=False` (a
failure must not close a rep's session). Textual then only records the error on the worker, so a
read that failed (a damaged file met by a raw SQLite read, a server that went away, a bug) left a
screen empty, or saying it was loading, for good. `ReportsFailedWork` hears each of its workers'
`Worker.StateChanged` and says the failure in one line (`failure_line`), with the next step when
the database caused it; a screen may also put the failure where it said it was loading
(`work_failed`). The saver's own failures are said by the saver (tui/saving.py) and never get
here: it catches them to undo what the screen showed. The app's own workers are not screens'
and stay as they were: its database check says what it finds, and the KPI snapshot's look
after a burst is tried again after the next one (a damaged page it meets is said by the
engine's damage watch, `EvpipeApp._watch_for_damage`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from textual.app import App


def failure_line(app: App, error: BaseException) -> tuple[str, bool]:
    """(One line for `error`, whether the database caused it): the file damaged, full or locked,
    a server refusing or gone, named with the next step (models.errors.database_failure), else
    the error's own first line."""
    from evpipe.models.errors import DomainError, database_failure
    from evpipe.models.rawdb import sqlite_file

    if isinstance(error, DomainError):
        return str(error), False
    url = getattr(app, "url", "")
    name = (sqlite_file(url) if url else None) or getattr(app, "database_label", "the database")
    line = database_failure(error, name)
    if line is not None:
        return line, True
    module = type(error).__module__
    first = (str(getattr(error, "orig", None) or error).strip().splitlines() or [""])[0][:160]
    if module.startswith(("sqlalchemy", "sqlite3", "psycopg")):
        from evpipe.models.db import connection_problem

        low = first.lower()
        if "connect" in low or "terminat" in low:  # refused, closed, lost; or ended by the server
            return connection_problem(str(url), error), True
        return f"the database {name} failed: {first or type(error).__name__}", True
    return f"{type(error).__name__}: {first}" if first else type(error).__name__, False


class ReportsFailedWork:
    """A screen whose workers' failures are said on screen."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.work_failed(event.worker, event.worker.error)

    def work_failed(self, worker: Worker, error: BaseException) -> str:
        """Say it; returns the line said (a screen that overrides this shows it too)."""
        app: App = self.app  # type: ignore[attr-defined]
        line, database = failure_line(app, error)
        say = getattr(app, "say_database_problem", None)  # (EvpipeApp's; a test's bare app has none)
        if database and say is not None:
            say(line, opening=False)  # said once, however many screens meet it
        else:
            app.notify(f"Could not finish '{worker.description}': {line}", severity="error", markup=False, timeout=20)
        return line


__all__ = ["ReportsFailedWork", "failure_line"]
