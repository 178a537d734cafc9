"""Live screens: changes other sessions make (another app, the command line, any user) appear here
within a second or so, without a key press.

A timer on the app starts a thread worker every `POLL_EVERY` seconds (never two at once). The
worker asks `models.changes_feed.ChangeCheck` whether anything was written (microseconds when
nothing was: SQLite's data version, then the journal's highest id); when something was, it reads
the new journal entries and the rows they touch, leaves out this session's own saves (the saver
notes their ids under a lock the worker also takes, so none slips through between its write and its
note) and posts one `RemoteChanges` message to the app, which hands it to the screens. The UI
thread never waits on the database. A rep whom the owner lets see only their own prospects
(`app.scope_owner`) hears only of changes to theirs, and is handed only their rows; on a server,
which hides a prospect handed away from its former owner along with its journal entries, the check
also says which of theirs left (`ChangeCheck.left`), and those go as deleted ones do.

The app starts the looks once its first screen is painted (EvpipeApp.first_screen_read): the first
look opens the database's write path, SQLAlchemy's import, a tenth of a second of the interpreter
that the first screen's own reads and paint waited behind. What came in the journal between that
screen's read and the first look is not lost: a screen's read says up to which entry it counted
(`read_up_to`), and the first look hands on what came after the earliest such entry.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from evpipe.models.changes_feed import BATCH, ChangeCheck, burst_notice, entries_since, for_owner, notice, totals_since
from evpipe.models.pipeline_view import owners_of, rows_by_id

from .messages import RemoteChanges

if TYPE_CHECKING:
    from textual.app import App
    from textual.timer import Timer

#: Seconds between two looks: changes show within 2 s even on a loaded machine.
POLL_EVERY = 0.5


class LiveSync:
    """The app's poller (`app.live`)."""

    def __init__(self, app: App, every: float | None = POLL_EVERY) -> None:
        # the EvpipeApp (typed as Textual's App: this module is imported by tui/app.py)
        self.app: Any = app
        self.every = every
        self._check: ChangeCheck | None = None
        self.after = -1  # the last journal id handed to the screens (or skipped)
        #: The earliest journal id a screen's read counted up to before the first look (`read_up_to`)
        self._read_up_to: int | None = None
        self._running = False
        self._timer: Timer | None = None
        #: Guards `_running` and the closing of the check's connection: a connection is never
        #: closed by one thread while a look uses it in another (SQLite would crash the process).
        self._lock = threading.Lock()
        self._close_when_done = False
        #: How long the last few looks took in the worker (seconds), for measuring.
        self.timings: list[float] = []

    def start(self) -> None:
        if self.every is not None and self._timer is None:
            self._timer = self.app.set_interval(self.every, self.tick, name="live changes")
            self.tick()  # the first look now: what is in the journal at start is the baseline

    def read_up_to(self, journal_id: int) -> None:
        """A screen read what it shows with the journal up to `journal_id` (UI thread). Before the
        first look, the entries after it are the first look's to hand on: they were written after
        that read, before the look took its baseline."""
        if self._check is None and journal_id >= 0:
            seen = self._read_up_to
            self._read_up_to = journal_id if seen is None else min(seen, journal_id)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        with self._lock:
            if self._running:  # the look in flight closes it when it ends
                self._close_when_done = True
            elif self._check is not None:
                self._check.close()  # what was seen is kept: after start() the next look tells what came since

    def tick(self) -> None:
        """Start a look, unless one is running (UI thread; returns at once)."""
        with self._lock:
            if self._running or not self.app.is_running or self._timer is None:
                return
            self._running = True
            self._close_when_done = False
        self.app.run_worker(self._look, thread=True, group="live", exit_on_error=False, description="live changes")

    def _look(self) -> None:
        try:
            self._look_once()
        finally:
            with self._lock:
                self._running = False
                if self._close_when_done and self._check is not None:
                    self._close_when_done = False
                    self._check.close()

    def _look_once(self) -> None:
        app = self.app
        reader = app.reader
        if self._check is None:
            # Open the engine first: opening it checks the file (models/locations.py reads its first
            # bytes), and closing that file handle would drop the locks of an SQLite connection
            # this process already holds on it (POSIX locks are per process), after which another
            # process closing the database would take this connection for gone and remove the WAL
            # file under it: it would see no change again.
            app.engine  # noqa: B018
            self._check = ChangeCheck(reader, owner=app.decide_scope())
            self.after = self._check.latest()
            counted = self._read_up_to
            if counted is None or counted >= self.after:
                return
            self.after, first = counted, self.after  # (written since the screen's read: handed on now)
        else:
            first = None
        started = time.perf_counter()
        saver = app.saver
        owner = app.decide_scope()  # (decided once, then kept)
        with saver.own_lock:
            newest = self._check.poll() if first is None else first
            if self._check.settings_moved:  # (not journalled: the screens that show one read again)
                app.post_message(RemoteChanges([], {}, set(), settings=True))
            # a prospect of the rep's handed to someone else, which the server now hides with its
            # journal entries: gone as a deleted one is (the screens sum their KPIs again)
            left = self._check.left
            if newest is None or newest <= self.after:
                if left:
                    app.post_message(RemoteChanges([], {}, left))
                self._timed(started)
                return
            entries = entries_since(reader, self.after, BATCH)
            own, ranges = saver.own_events, saver.own_ranges
            theirs = [e for e in entries if e.id not in own and not any(e.id in r for r in ranges)]
            full = len(entries) >= BATCH
            # more than one read: the screens read everything again, and the notice says what the
            # whole burst adds up to, counted by the database (not what its first entries do)
            said = None
            if full:
                totals = totals_since(reader, self.after, newest, skip=own, skip_ranges=ranges, owner=owner)
                said = burst_notice(totals)
            seen = newest if full or not entries else entries[-1].id
            _forget_own(saver, seen)
        self.after = seen
        if full:
            if said is not None or left:
                app.post_message(RemoteChanges([], {}, set(), said, reload=True))
            return
        left -= {e.prospect_id for e in entries}  # (those the entries read here tell of)
        if owner is not None and theirs:
            ids = {e.prospect_id for e in theirs if e.prospect_id is not None}
            theirs = for_owner(theirs, owner, owners_of(reader, ids))
        if not theirs:
            if left:
                app.post_message(RemoteChanges([], {}, left))
            return
        reload = any(e.touches_ladder or e.action == "import" for e in theirs)
        rows: dict = {}
        gone: set[int] = set()
        if not reload:
            ids = {e.prospect_id for e in theirs if e.prospect_id is not None}
            rows = rows_by_id(reader, ids, owner=owner)
            gone = (ids - rows.keys()) | left
        app.post_message(RemoteChanges(theirs, rows, gone, notice(theirs), reload=reload))

    def _timed(self, started: float) -> None:
        self.timings.append(time.perf_counter() - started)
        del self.timings[:-50]


def _forget_own(saver: Any, seen: int) -> None:
    """The session's own journal ids up to `seen` need no more leaving out (under `own_lock`; the
    UI thread may add an id meanwhile, so the set is copied in one step, not walked)."""
    saver.own_events.difference_update([i for i in list(saver.own_events) if i <= seen])
    saver.own_ranges[:] = [r for r in saver.own_ranges if r.stop - 1 > seen]


__all__ = ["POLL_EVERY", "LiveSync"]
