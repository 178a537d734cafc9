"""The KPI header of a live screen (the pipeline list, the stage board) kept current between reads
of its sums: each change counted exactly once, whatever order the reads and the saves land in.

A screen shows a change before it is saved (its predicted part of the header), corrects it by
the change's recorded effect once saved, and moves by other sessions' recorded effects as they
come (models/changes_feed.py). Now and then it reads the sums again from the database (a win may
take a prospect out of the KPI period; a new owner moves it between scopes), read with the
journal's highest id: every change up to that id is in them, none after.

The sums replace the header when they land, so what they cannot hold is added back:

- the changes shown and not saved yet (from `show` until `saved` or `settle`);
- the changes saved or received after the sums were read, which reached the screen before the
  sums did. A burst `>j>`, the first a win, once lost the second move: the win's sums were read
  before the move was saved and reached the screen after its save had (one full run of the suite
  in three).

One read is on its way at a time: asked for meanwhile, it starts when that one lands, so reads
land in the order they were read and the journal ids they hold only grow.

Pure bookkeeping on the screen's thread: no database, no UI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import ladder
from .kpi import Kpi
from .period import Period
from .records import ChangeResult

Delta = tuple[int, int, int]
NONE: Delta = (0, 0, 0)


def journal_delta_is_the_headers(period: Period | None, result: ChangeResult) -> bool:
    """Whether a saved change's journalled effect (on every prospect's KPIs) is its effect on a
    header counting the KPI period: always without one; with one, when the prospect is open before
    and after (open prospects are always in the period). Otherwise the header sums again."""
    if period is None or not period.restricts:
        return True
    p = result.prospect
    return p is not None and p.stage_kind == ladder.OPEN and result.category not in ("win", "lose", "reopen")


def exact(result: ChangeResult) -> Delta:
    """A saved change's recorded effect on the KPIs."""
    return (result.d_count, result.d_tv_cents, result.d_ev_micros)


@dataclass(frozen=True)
class _Counted:
    """A change the header counts that the next sums may not hold: shown and not saved
    (`event_id` None), or saved or received while a read of the sums was on its way."""

    prospect_id: int | None
    event_id: int | None
    delta: Delta
    owner: str | None


@dataclass
class HeaderSums:
    """Everyone's figures and the user's own, as the header shows them.

    `whose()` tells the session's scope (the only owner a rep limited to their own sees; None:
    everyone) and its user, asked at each move: a change to `owner`'s prospect moves everyone's
    figures when the scope holds it, and the user's own when it is theirs; owner None: not known
    whose (the screen sums again)."""

    whose: Callable[[], tuple[str | None, str | None]] = lambda: (None, None)
    all: Kpi = field(default_factory=Kpi)
    mine: Kpi = field(default_factory=Kpi)
    hold: int = -1  # journal entries up to this id are in the sums read last
    reading: bool = False  # a read of the sums is on its way
    _again: bool = False  # asked for while one was on its way: starts when it lands
    _unsaved: list[_Counted] = field(default_factory=list)
    _ahead: list[_Counted] = field(default_factory=list)

    # ------------------------------------------------------------ moving the header

    def add(self, delta: Delta, owner: str | None) -> None:
        scope, who = self.whose()
        if scope is None or owner == scope:
            self.all = self.all.moved(*delta)
        if owner is not None and owner == who:
            self.mine = self.mine.moved(*delta)

    def holds(self, event_id: int | None) -> bool:
        """Whether the sums read last hold a journal entry already."""
        return event_id is not None and event_id <= self.hold

    def show(self, prospect_id: int, delta: Delta, owner: str) -> None:
        """A change shown before it is saved: its predicted part."""
        if delta != NONE:
            self._unsaved.append(_Counted(prospect_id, None, delta, owner))
        self.add(delta, owner)

    def settle(self, prospect_id: int | None, optimistic: Delta) -> None:
        """A change shown before it was saved is saved or failed: no longer added back to sums
        read (a failed one's part is the screen's to take back)."""
        if optimistic == NONE:
            return
        for i, shown in enumerate(self._unsaved):
            if shown.prospect_id == prospect_id:
                del self._unsaved[i]
                return

    def saved(self, result: ChangeResult, optimistic: Delta, owner: str | None, *, headers: bool) -> None:
        """A change this screen made is saved: `optimistic` is the part it showed ((0, 0, 0):
        none); `headers`, whether its recorded effect is the header's (else the screen sums
        again, and the part shown stays until then); `owner` None when it changed hands."""
        prospect_id = result.prospect.id if result.prospect is not None else None
        self.settle(prospect_id, optimistic)
        if self.holds(result.event_id):
            # the sums read since it was shown hold it, and had its shown part added back
            self.add((-optimistic[0], -optimistic[1], -optimistic[2]), owner)
            return
        counted = exact(result) if headers else optimistic
        if headers:
            d = counted
            self.add((d[0] - optimistic[0], d[1] - optimistic[1], d[2] - optimistic[2]), owner)
        self._keep(result.event_id, counted, owner)

    def journalled(self, event_id: int | None, delta: Delta, owner: str | None) -> None:
        """A change saved elsewhere (another screen, another session) moves the header by its
        recorded effect, unless the sums read last hold it."""
        if self.holds(event_id):
            return
        self.add(delta, owner)
        self._keep(event_id, delta, owner)

    def _keep(self, event_id: int | None, delta: Delta, owner: str | None) -> None:
        if self.reading and event_id is not None and delta != NONE:
            self._ahead.append(_Counted(None, event_id, delta, owner))

    # ------------------------------------------------------------ reading the sums again

    def want_read(self) -> bool:
        """The sums are to be read again: True when the read may start now; False when one is on
        its way (this one starts when it lands: `read` says so)."""
        if self.reading:
            self._again = True
            return False
        self.reading = True
        return True

    def read(self, kpi_all: Kpi, kpi_mine: Kpi, journal_id: int, *, asked: bool = True) -> bool:
        """Sums read with the journal up to `journal_id` replace the header; the changes they cannot
        hold are added back. `asked`: the read `want_read` started (False: one read with the
        screen's rows). True when the read asked for meanwhile is to start now."""
        self.all, self.mine = kpi_all, kpi_mine
        self.hold = max(self.hold, journal_id)
        ahead = [c for c in self._ahead if c.event_id is not None and c.event_id > journal_id]
        for counted in (*self._unsaved, *ahead):
            self.add(counted.delta, counted.owner)
        if not asked:
            return False
        # a read starting from now sees every change the header took on so far
        self._ahead.clear()
        self.reading, again, self._again = self._again, self._again, False
        return again

    def read_failed(self) -> None:
        """The read on its way failed: the header keeps what it shows; the next read starts anew."""
        self.reading = self._again = False
        self._ahead.clear()


__all__ = ["NONE", "Delta", "HeaderSums", "exact", "journal_delta_is_the_headers"]
