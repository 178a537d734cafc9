"""Pace (issue 16): how long prospects usually stay on each open stage before moving on, and which
prospects are *slow* now. The one definition of slow (the list's `~` mark, the prospect page, the
board, focus and review all use it):

- A *stay* is the time from a prospect's stage change onto an open stage to its next stage change
  (to any stage: up, back, won or lost), from the stage history. Stays whose start or end the
  importer guessed (`inferred`) are left out; a prospect still on its stage has no stay yet.
- Per stage: n stays, their median (the middle one, or the mean of the two middle ones) and 75th
  percentile (the smallest stay with at least 75% of the stays at or below it), in days.
- A prospect on an open stage is slow when its time on the stage (since its last stage change)
  is longer than the stage's 75th percentile, where the stage has at least `MIN_STAYS` (10) stays.
  Below that, the stage's configured stale days apply (the stale rule: no contact point and no
  stage change for more than `stale_days` days; 0: never).

The statistics read every stage change once (`load_pace`, in a worker, once per load or burst of
changes); `is_slow` is then a look-up and a bisection per row, whatever the pipeline's size.
"""

from __future__ import annotations

import calendar
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import clock
from .ladder import OPEN
from .rawdb import day_of, dialect_name, epoch_of, fetch_all, fetch_chunks, raw_cursor

#: Stays a stage needs before its own 75th percentile replaces the stale days.
MIN_STAYS = 10
DAY = 86_400


def stale_cutoff(today: date, stale_days: int) -> str | None:
    """The stale rule: a prospect last touched (contact point or stage change) before this day
    (ISO) is stale; None when the stage is never stale (0 days)."""
    if stale_days <= 0:
        return None
    return (today - timedelta(days=stale_days)).isoformat()


def _median(xs: Sequence[int]) -> float:
    n = len(xs)
    mid = n // 2
    return float(xs[mid]) if n % 2 else (xs[mid - 1] + xs[mid]) / 2


def nearest_rank(xs: Sequence[int], percent: int) -> int:
    """The smallest x of sorted `xs` with at least `percent`% of them at or below it."""
    k = max(1, -(-percent * len(xs) // 100))
    return xs[k - 1]


@dataclass(frozen=True)
class StagePace:
    """One stage's pace: how many stays it has, their median and 75th percentile (made once, by
    `learnt_from`: a row's `~` mark asks for them at every paint)."""

    stage_id: int
    name: str
    position: int
    kind: str
    stale_days: int
    n: int = 0
    median_seconds: float | None = None
    p75_seconds: int | None = None

    @classmethod
    def learnt_from(
        cls, stage_id: int, name: str, position: int, kind: str, stale_days: int, stays: Sequence[int]
    ) -> StagePace:
        """The pace of a stage from its stays (seconds, ascending)."""
        if not stays:
            return cls(stage_id, name, position, kind, stale_days)
        return cls(stage_id, name, position, kind, stale_days, len(stays), _median(stays), nearest_rank(stays, 75))

    @property
    def learnt(self) -> bool:
        """Enough stays for the stage's own pace to define slow."""
        return self.n >= MIN_STAYS

    @property
    def median_days(self) -> float | None:
        m = self.median_seconds
        return None if m is None else m / DAY

    @property
    def p75_days(self) -> float | None:
        p = self.p75_seconds
        return None if p is None else p / DAY

    @property
    def rule(self) -> str:
        if self.learnt:
            return f"on it over {self.p75_days:.1f} days (p75)"
        if self.stale_days > 0:
            return f"no contact for over {self.stale_days} days (fewer than {MIN_STAYS} stays)"
        return "never (no stale days)"

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "n": self.n,
            "median_days": None if self.median_days is None else round(self.median_days, 4),
            "p75_days": None if self.p75_days is None else round(self.p75_days, 4),
            "learnt": self.learnt,
            "stale_days": self.stale_days,
        }


@dataclass(frozen=True)
class OpenProspect:
    id: int
    name: str
    stage_id: int
    touched: str  # ISO day of the last contact point or stage change


class Entries:
    """When each prospect entered its stage: (stage id, epoch seconds) by prospect id, kept as three
    arrays in id order (20 bytes a prospect, against some 200 as a dict of tuples: 200 MB at a
    million prospects)."""

    __slots__ = ("at", "ids", "stage")

    def __init__(self) -> None:
        self.ids = array("q")
        self.stage = array("q")
        self.at = array("q")

    def add(self, prospect_id: int, stage_id: int, at: int) -> None:
        """Append an entry; ids must come in increasing order."""
        self.ids.append(prospect_id)
        self.stage.append(stage_id)
        self.at.append(at)

    def get(self, prospect_id: int) -> tuple[int, int] | None:
        i = bisect_left(self.ids, prospect_id)
        if i < len(self.ids) and self.ids[i] == prospect_id:
            return self.stage[i], self.at[i]
        return None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Pace:
    """Each stage's pace, and when each live open prospect entered its stage."""

    stages: dict[int, StagePace]
    entered: Entries  # prospect id -> (stage id, epoch seconds of the change)
    now: int  # epoch seconds ("naive local time read as UTC", as the pipeline's rows)
    today: date
    open_prospects: list[OpenProspect] = field(default_factory=list)
    dialect: str = "sqlite"  # the SQL `slow_sql` writes (models/rawdb.py's builders)

    def __post_init__(self) -> None:
        self._cutoffs = {sid: stale_cutoff(self.today, s.stale_days) for sid, s in self.stages.items()}

    # ------------------------------------------------------------ one prospect

    def seconds_on_stage(self, prospect_id: int, stage_id: int) -> int:
        """Time on its stage: 0 when it moved since the history was read (it just entered)."""
        entry = self.entered.get(prospect_id)
        if entry is None or entry[0] != stage_id:
            return 0
        return max(0, self.now - entry[1])

    def slow(self, prospect_id: int, stage_id: int, touched: str | None) -> bool:
        """The one definition of slow (module docstring)."""
        s = self.stages.get(stage_id)
        if s is None or s.kind != OPEN:
            return False
        if s.learnt:
            p75 = s.p75_seconds
            return p75 is not None and self.seconds_on_stage(prospect_id, stage_id) > p75
        cutoff = self._cutoffs.get(stage_id)
        return cutoff is not None and touched is not None and touched[:10] < cutoff

    def is_slow(self, row: Any) -> bool:
        """`slow` for a pipeline row (models.pipeline_view.Row: id, stage_id, touched)."""
        return self.slow(row.id, row.stage_id, row.touched)

    def words(self, prospect_id: int, stage_id: int, touched: str | None = None) -> str:
        """'12 days on Quote sent; usually 5' (the median), or why the stale days apply."""
        s = self.stages.get(stage_id)
        if s is None or s.kind != OPEN:
            return ""
        days = self.seconds_on_stage(prospect_id, stage_id) // DAY
        text = f"{days} day{'s' if days != 1 else ''} on {s.name}"
        if s.learnt and s.median_days is not None:
            text += f"; usually {round(s.median_days)}"
            if self.slow(prospect_id, stage_id, touched):
                text += f", slow past {round(s.p75_days or 0)}"
        elif s.stale_days > 0:
            text += f"; stale after {s.stale_days} idle days ({s.n} stays)"
        return text

    def slow_prospects(self) -> list[str]:
        """The slow prospects, as lines: 'name: 12 days on Quote sent; usually 5'."""
        return [
            f"{p.name}: {self.words(p.id, p.stage_id, p.touched)}"
            for p in self.open_prospects
            if self.slow(p.id, p.stage_id, p.touched)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "min_stays": MIN_STAYS,
            "stages": [s.to_json() for s in self.stages.values() if s.kind == OPEN],
            "slow": [
                {
                    "id": p.id,
                    "name": p.name,
                    "days_on_stage": round(self.seconds_on_stage(p.id, p.stage_id) / DAY, 4),
                    "stage": self.stages[p.stage_id].name,
                }
                for p in self.open_prospects
                if self.slow(p.id, p.stage_id, p.touched)
            ],
        }

    def slow_sql(self, stale_sql: str, prospect: str = "prospect") -> str:
        """`slow` as a SQL condition on the `prospect` table (for the focus list's one query):
        for a stage with enough stays, entered it before now - p75; else `stale_sql`, the stale
        rule. Only numbers (stage ids, seconds) are written into it."""
        learnt = [(sid, s.p75_seconds) for sid, s in self.stages.items() if s.kind == OPEN and s.learnt]
        if not learnt:
            return f"({stale_sql})"
        entered = f"(SELECT {epoch_of('max(sc.changed_at)', self.dialect)} FROM stage_change sc WHERE sc.prospect_id = {prospect}.id)"
        whens = " ".join(f"WHEN {int(sid)} THEN ({entered} < {int(self.now - (p75 or 0))})" for sid, p75 in learnt)
        return f"(CASE {prospect}.stage_id {whens} ELSE ({stale_sql}) END)"


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def _history_sql(dialect: str) -> str:
    return (
        f"SELECT sc.prospect_id, {epoch_of('sc.changed_at', dialect)}, sc.to_stage_id, sc.inferred "
        "FROM stage_change sc ORDER BY sc.prospect_id, sc.changed_at, sc.id"
    )


_STAGES_SQL = "SELECT id, name, position, kind, stale_days FROM stage ORDER BY position, id"


def _open_sql(dialect: str) -> str:
    return (
        f"SELECT p.id, p.name, p.stage_id, {day_of('p.last_touch_at', dialect)} FROM prospect p "
        "JOIN stage s ON s.id = p.stage_id WHERE p.deleted_at IS NULL AND s.kind = 'open' ORDER BY p.id"
    )


def load_pace(source: Any, *, now: datetime | None = None, with_prospects: bool = True) -> Pace:
    """Read the stage history once and learn each stage's pace (`source`: an engine or connection).
    The history is read a chunk at a time and kept as numbers in arrays: at 100,000 prospects in
    daily use (250,000 stage changes) the rows all read at once took 55 MB."""
    now = now or clock.now()
    dialect = dialect_name(source)
    with raw_cursor(source) as cur:
        stages_rows = fetch_all(cur, _STAGES_SQL)
        open_ids = {int(sid) for sid, _n, _p, kind, _s in stages_rows if kind == OPEN}
        stays: dict[int, array] = {}
        entered = Entries()
        # the row before, in order: its prospect, moment, stage, whether the importer guessed it,
        # and whether its stage is open (locals, not a tuple: a million prospects' history is
        # 2.5 million rows)
        prev_pid: int | None = None
        prev_at = prev_stage = 0
        prev_guessed = prev_open = False
        for chunk in fetch_chunks(cur, _history_sql(dialect), size=10_000):
            for pid, at, stage, guessed in chunk:
                at = int(at)  # (PostgreSQL's epoch is a numeric)
                if pid == prev_pid:
                    if prev_open and not (prev_guessed or guessed):
                        stay = stays.get(prev_stage)
                        if stay is None:
                            stay = stays[prev_stage] = array("q")
                        stay.append(at - prev_at if at > prev_at else 0)
                elif prev_pid is not None:
                    entered.add(prev_pid, prev_stage, prev_at)  # the last change of the one before
                prev_pid, prev_at, prev_stage, prev_guessed, prev_open = pid, at, stage, guessed, stage in open_ids
        if prev_pid is not None:
            entered.add(prev_pid, prev_stage, prev_at)
        opens = fetch_all(cur, _open_sql(dialect)) if with_prospects else []
    stages = {
        int(sid): StagePace.learnt_from(
            int(sid), str(name), int(pos), str(kind), int(stale), sorted(stays.pop(int(sid), ()))
        )
        for sid, name, pos, kind, stale in stages_rows
    }
    return Pace(
        stages,
        entered,
        _epoch(now),
        now.date(),
        [OpenProspect(int(i), str(n), int(s), str(t)) for i, n, s, t in opens],
        dialect,
    )


def is_slow(pace: Pace | None, row: Any) -> bool:
    """Whether a pipeline row (id, stage_id, touched) is slow; False before the pace is loaded. The
    board and the list call this."""
    return pace is not None and pace.is_slow(row)


__all__ = ["MIN_STAYS", "Pace", "StagePace", "is_slow", "load_pace", "nearest_rank", "stale_cutoff"]
