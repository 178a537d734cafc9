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

The reads are numbered as they begin, and sums are shown only from a read begun after the one
shown (a setting such as the KPI period may have changed between them). The screen's own asks go
one at a time: asked for meanwhile, a read begins when the one on its way lands.

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
    hold: int = -1  # journal entries up to this id are in the sums shown
    _begun: int = 0  # reads of the sums begun (`begin`), numbered from 1 (0: one read before any)
    _shown: int = 0  # the number of the read whose sums are shown
    _on_way: set[int] = field(default_factory=set)  # reads begun and not landed
    _asked: int = 0  # the read `want_read` began, while it is on its way
    _again: bool = False  # asked for while that one was on its way: begins when it lands
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
        """Whether the sums shown hold a journal entry already."""
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

    def take_back(self, prospect_id: int | None, optimistic: Delta) -> None:
        """A change shown before it was saved failed: its part leaves the sums shown (for the owner
        it was shown for), and is no longer added back to sums read."""
        if optimistic == NONE:
            return
        for i, shown in enumerate(self._unsaved):
            if shown.prospect_id == prospect_id:
                del self._unsaved[i]
                self.add((-shown.delta[0], -shown.delta[1], -shown.delta[2]), shown.owner)
                return

    def saved(self, result: ChangeResult, optimistic: Delta, owner: str | None, *, headers: bool) -> None:
        """A change this screen made is saved: `optimistic` is the part it showed ((0, 0, 0):
        none); `headers`, whether its recorded effect is the header's (else the screen sums
        again, and the part shown stays until then); `owner` None when it changed hands."""
        prospect_id = result.prospect.id if result.prospect is not None else None
        self.settle(prospect_id, optimistic)
        counted = exact(result) if headers else optimistic
        if self.holds(result.event_id):
            # the sums shown were read since it was shown, and had its shown part added back
            self.add((-optimistic[0], -optimistic[1], -optimistic[2]), owner)
        elif headers:
            self.add((counted[0] - optimistic[0], counted[1] - optimistic[1], counted[2] - optimistic[2]), owner)
        self._keep(result.event_id, counted, owner)

    def journalled(self, event_id: int | None, delta: Delta, owner: str | None) -> None:
        """A change saved elsewhere (another screen, another session) moves the header by its
        recorded effect, unless the sums shown hold it."""
        if not self.holds(event_id):
            self.add(delta, owner)
        self._keep(event_id, delta, owner)

    def _keep(self, event_id: int | None, delta: Delta, owner: str | None) -> None:
        """Kept for the reads on their way: one of them may have been read before it (even when
        the sums shown hold it: a read begun earlier may be read later)."""
        if self._on_way and event_id is not None and delta != NONE:
            self._ahead.append(_Counted(None, event_id, delta, owner))

    # ------------------------------------------------------------ reading the sums again

    def begin(self) -> int:
        """A read of the sums begins (in a worker, alone or with the screen's rows): its number, to
        hand to `read` with the sums (or to `read_failed`)."""
        self._begun += 1
        self._on_way.add(self._begun)
        return self._begun

    def want_read(self) -> int | None:
        """The sums are to be read again: the number of the read to begin now; None when the one
        asked for before is on its way (this one begins when it lands: `read` says so)."""
        if self._asked:
            self._again = True
            return None
        self._asked = self.begin()
        return self._asked

    def read(self, kpi_all: Kpi, kpi_mine: Kpi, journal_id: int, ticket: int = 0) -> bool:
        """Sums read with the journal up to `journal_id` by read number `ticket` (`begin`; 0: one
        read before any began) replace the header, unless a read begun after it is shown; the
        changes they cannot hold are added back: those shown and not saved, and those after
        `journal_id` taken on while it was on its way. True when the read asked for meanwhile is
        to begin now (`want_read`)."""
        self._on_way.discard(ticket)
        if ticket >= self._shown:  # (one begun earlier may land later: the period may have changed since)
            self._shown = ticket
            self.all, self.mine, self.hold = kpi_all, kpi_mine, journal_id
            ahead = [c for c in self._ahead if c.event_id is not None and c.event_id > journal_id]
            for counted in (*self._unsaved, *ahead):
                self.add(counted.delta, counted.owner)
        return self._landed(ticket)

    def read_failed(self, ticket: int) -> bool:
        """Read number `ticket` failed: the header keeps what it shows. True as `read`."""
        self._on_way.discard(ticket)
        return self._landed(ticket)

    @property
    def asked(self) -> int:
        """The number of the read `want_read` began, while it is on its way (else 0)."""
        return self._asked

    def _landed(self, ticket: int) -> bool:
        if not self._on_way:  # a read begun from now sees every change the header took on so far
            self._ahead.clear()
        if not ticket or ticket != self._asked:
            return False
        self._asked = 0
        again, self._again = self._again, False
        return again


__all__ = ["NONE", "Delta", "HeaderSums", "exact", "journal_delta_is_the_headers"]
