"""The one way a screen saves a change: the app's `Saver`.

A key press becomes a `Change`: a store call (run in a worker, never on the UI thread) and the
screen that asked. The saver runs changes one at a time, in the order they were made, in a single
thread worker that drains its queue; each ends as one message posted to the screen that asked,
`ChangeSaved` or `ChangeFailed` (tui/messages.py). A saved change then bubbles up to the app,
which broadcasts it once (`EvpipeApp.data_changed`: the pipeline, the data-changed signal, the KPI
snapshot), after the asking screen has updated itself.

A screen shows what a change will do before it is saved (the row, the header), passes the version
of the prospect it showed (`expected_version` inside the call: a change somebody else made in the
meantime is refused) and takes its own display back when the change fails.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from evpipe.models.errors import DomainError, unsaved_reason
from evpipe.models.records import UNDO_EXPECTED

from .messages import ChangeFailed, ChangeSaved

if TYPE_CHECKING:
    from textual.app import App
    from textual.message_pump import MessagePump

    from evpipe.models.records import ChangeResult


_Call = TypeVar("_Call", bound=Callable[..., object])

#: Seconds a save begun by a key waits once the key's frame is painted, for the app's writer
#: thread to write it out before the save's Python takes the interpreter lock.
AFTER_FRAME = 0.003


def undoing(call: _Call, *, last: bool = True) -> _Call:
    """Mark a store call that undoes "your last change" (store.undo). `last`: pressed while
    changes of this session were still on their way, it undoes the newest of them (`Saver.save`);
    else (and for `skip`, `last=False`) the last change saved when it runs (see `Saver.retry`)."""
    call.undoing = True  # type: ignore[attr-defined]
    call.undoing_last = last  # type: ignore[attr-defined]
    return call


@dataclass(frozen=True)
class Change:
    """One change to save: `call` runs in the saver's worker and returns the store's result."""

    call: Callable[[], ChangeResult]
    sender: MessagePump  # who is told how it went (the screen that made the change)
    prospect_id: int | None = None
    optimistic: tuple[int, int, int] = (0, 0, 0)  # the KPI change already shown before saving
    context: object = None  # handed back in the message, for the sender (where to go next, a notice)
    # (the saver's own notes below: the change a screen keeps is still the one it queued, `withdraw`)
    seq: int = field(default=0, compare=False)  # its place in the order made (the saver numbers them)
    #: An undo pressed while changes were on their way: the one it undoes (`seq`), whose outcome
    #: it waits for; then (`expect`) that change's journal entry, once saved.
    undoes: int | None = field(default=None, compare=False)
    expect: int | None = field(default=None, compare=False)

    @property
    def undoing(self) -> bool:
        """An undo (`undoing`): it acts on the last change saved when it runs."""
        return bool(getattr(self.call, "undoing", False))

    @property
    def undoing_last(self) -> bool:
        """A plain undo (not a skip): it may undo a change still on its way when pressed."""
        return self.undoing and bool(getattr(self.call, "undoing_last", False))


class Saver:
    """Saves changes one at a time, first made first saved (owned by the app: `app.saver`)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._queue: deque[Change] = deque()
        self._lock = threading.Lock()
        self._running = False
        #: The changes that failed for a reason other than a rule (a held lock, a full disk), in
        #: the order they were made: kept so that one key (`R`) tries them all again.
        self.failed: list[Change] = []
        #: The journal ids of the changes this session saved, so that the live screens
        #: (tui/live_sync.py) never show them back as someone else's. A save holds `own_lock` from
        #: its write until its id is noted; the live check reads the journal under the same lock.
        self.own_events: set[int] = set()
        #: Every journal id this session's saves wrote, kept for the session (`own_events` lets go
        #: of those the live check is past): the store passes over them when a change was made on
        #: a view they moved on since (models/store_base.py `Store.own_events`). A few bytes a change.
        self.written: set[int] = set()
        #: Runs of journal ids this session wrote in one go (an import: tui/screens/import_screen.py),
        #: noted under `own_lock` as the saves' ids are; dropped once the live check is past them.
        self.own_ranges: list[range] = []
        self.own_lock = threading.Lock()
        self._in_flight = 0  # changes taken from the queue whose message is not posted yet
        self._current: Change | None = None  # the change being saved now
        #: Set once the app is closing: a change that fails then cannot be shown on screen, so
        #: why it failed is kept here for the command to print (tui/app.py, `run`).
        self.closing = False
        self.lost: list[str] = []
        self._seq = 0
        #: Why nothing more is saved (the database was found damaged: writing on into it could
        #: spread the damage and would hide it), said for each change from then on; None: saving.
        self.refusal: str | None = None
        #: How the changes saved while others were queued ended (by `seq`): the journal id of one
        #: saved, None for one refused or failed. An undo bound to one reads it (`_undo_target`).
        self._outcomes: dict[int, int | None] = {}

    @property
    def busy(self) -> bool:
        """Whether a change is queued or being saved (its message not yet posted)."""
        with self._lock:
            return bool(self._queue) or self._in_flight > 0

    def save(self, change: Change, *, after_frame: bool = False) -> None:
        """Queue a change (from the UI thread); the worker saving changes starts if it is idle.
        `after_frame`: the screen shows what the change will do before it is saved (a stage key),
        so an idle worker starts once that frame is painted and written (a moment later): its
        Python (the store, SQLAlchemy) would hold the interpreter lock against the frame. The
        order is kept either way: the change is queued now."""
        with self._lock:
            if change.undoing_last and change.seq == 0:  # (not again when R retries it)
                change = replace(change, undoes=self._undo_target())
            self._seq += 1
            change = replace(change, seq=self._seq)
            self._queue.append(change)
            if self._running:
                return
            self._running = True
        if after_frame and self._app.call_after_refresh(self._start, AFTER_FRAME):
            return
        self._start()

    def _undo_target(self) -> int | None:
        """What `u` pressed now undoes (under `_lock`): the newest change still on its way that no
        undo on its way undoes already; None when none is (the last change saved, when it runs).
        `>` then `u` in one burst meant that move: run in turn, the undo undid it once saved, but
        when it failed (a held lock) the undo reversed the change saved before it instead."""
        on_way = ([self._current] if self._current is not None else []) + list(self._queue)
        taken = {c.undoes for c in on_way if c.undoes is not None}
        for change in reversed(on_way):
            if not change.undoing and change.seq not in taken:
                return change.seq
        return None

    def _start(self, wait: float = 0.0) -> None:
        self._app.run_worker(
            lambda: self._drain(wait), thread=True, group="save", exit_on_error=False, description="save changes"
        )

    def _drain(self, wait: float = 0.0) -> None:
        if wait:
            time.sleep(wait)  # the frame's bytes are on their way to the terminal (the writer thread)
        while True:
            with self._lock:
                if not self._queue:
                    self._running = False
                    self._outcomes.clear()  # (no undo is left to read them)
                    return
                change = self._queue.popleft()
                self._in_flight += 1
                self._current = change
            try:
                self._run(change)
            finally:
                with self._lock:
                    self._current = None

    def settle(self, prospect_id: int, timeout: float) -> bool:
        """In a worker, before reading a prospect to act on it: wait until no change of it is
        queued or being saved (at most `timeout` seconds), so that what is read has this session's
        own changes in. A page opened by Enter right after `>` read the prospect before that move
        was saved, and its own `>` was then refused as a change "by someone else" (the rep's own).
        Whether none was left."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = any(c.prospect_id == prospect_id for c in self._queue) or (
                    self._current is not None and self._current.prospect_id == prospect_id
                )
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def withdraw(self, change: Change) -> bool:
        """Take a failed change off the list `R` retries: its screen tries it again itself (a
        form keeps what was typed, ctrl+s saves it again) or it was let go. Whether it was on it."""
        with self._lock:
            if change in self.failed:
                self.failed.remove(change)
                return True
            return False

    def retry(self) -> int:
        """Save every failed change again; how many (0: none). Each was made while the failed ones
        before it were shown taken back: the undos go first (an undo pressed then meant the last
        change saved, not one of those), then the others in the order they were made."""
        with self._lock:
            changes, self.failed = self.failed, []
        for change in [c for c in changes if c.undoing] + [c for c in changes if not c.undoing]:
            # the screen took its optimistic display back when the change failed: nothing is shown now
            self.save(replace(change, optimistic=(0, 0, 0)))
        return len(changes)

    def note_own(self, event_ids: Iterable[int]) -> None:
        """Journal entries this session wrote (under `own_lock` where a live check may be reading)."""
        ids = tuple(event_ids)
        self.own_events.update(ids)
        self.written.update(ids)

    def refuse_all(self, why: str) -> None:
        """From now on every change is refused, saying `why` (a damaged database: the app)."""
        self.refusal = why

    def _run(self, change: Change) -> None:
        if self.refusal is not None:
            with self._lock:
                self._outcomes[change.seq] = None
            said = f"Not saved: {self.refusal}. Nothing more is saved into a damaged database."
            self._tell(change, ChangeFailed(said, change.prospect_id, change.optimistic, context=change.context))
            return
        if change.undoes is not None:
            with self._lock:
                saved_as = self._outcomes.pop(change.undoes, -1)  # (-1: not known; as if unbound)
                dropped = [c for c in self.failed if c.seq == change.undoes] if saved_as is None else []
                for c in dropped:
                    self.failed.remove(c)
            if saved_as is None:  # (it was refused, or failed: then R is not to save it either)
                why = "was not saved, and R will not try it again" if dropped else "was refused"
                self._tell(
                    change, ChangeFailed(f"Nothing undone: your last change {why}.", None, context=change.context)
                )
                return
            change = replace(change, undoes=None, expect=None if saved_as == -1 else saved_as)
        message: ChangeSaved | ChangeFailed
        saved: int | None = None
        token = UNDO_EXPECTED.set(change.expect)
        try:
            with self.own_lock:
                try:
                    result = change.call()
                except DomainError as exc:
                    self.note_own(getattr(exc, "also", ()))
                    raise
                self.note_own((result.event_id, *result.extra.get("also", ())))
        except DomainError as exc:  # refused by a rule: final, nothing to retry
            message = ChangeFailed(str(exc), change.prospect_id, change.optimistic, cause=exc, context=change.context)
        except Exception as exc:  # noqa: BLE001 - any other failure must still be shown, never lost
            why = unsaved_reason(exc)
            message = self._failed(change, why, f"Not saved: {why}.")
        else:
            saved = result.event_id
            message = ChangeSaved(result, change.optimistic, context=change.context)
        finally:
            UNDO_EXPECTED.reset(token)
        with self._lock:
            self._outcomes[change.seq] = saved
        self._tell(change, message)
        if isinstance(message, ChangeFailed) and message.retryable:
            self._fail_what_builds_on(change, message.reason)

    def _failed(self, change: Change, why: str, said: str) -> ChangeFailed:
        """A change that failed for a reason other than a rule: kept for `R`, and its message."""
        with self._lock:
            self.failed.append(change)
        return ChangeFailed(
            f"{said} Your change is undone on screen; press R to try again.",
            change.prospect_id,
            change.optimistic,
            context=change.context,
            retryable=True,
            reason=why,
        )

    def _fail_what_builds_on(self, failed: Change, why: str) -> None:
        """The changes of the same prospect queued after one that failed were made on the screen's
        view of it with that change in: they fail with it, kept for `R` after it in the order made.
        Saved alone, a second `>` pressed under a held lock was refused, once the lock was let go,
        as "changed by someone else" (it expected the first move's version), and the header
        counted it until then."""
        if failed.prospect_id is None:
            return
        with self._lock:
            after = [c for c in self._queue if c.prospect_id == failed.prospect_id and not c.undoing]
            for change in after:
                self._queue.remove(change)
                self._in_flight += 1
        for change in after:
            message = self._failed(
                change, why, f"Not saved: it was made on your change just before, which was not saved ({why})."
            )
            with self._lock:
                self._outcomes[change.seq] = None
            self._tell(change, message)

    def _tell(self, change: Change, message: ChangeSaved | ChangeFailed) -> None:
        """The change is done: `message` goes to the screen that made it."""
        with self._lock:
            self._in_flight -= 1
            if isinstance(message, ChangeFailed) and (self.closing or not self._app.is_running):
                self.lost.append(message.reason or message.error)
        target = change.sender if change.sender.is_running else self._app
        # sent by the screen itself, so that the message bubbles up to the app once handled there
        target.post_message(message.set_sender(target))


__all__ = ["AFTER_FRAME", "Change", "Saver", "undoing"]
