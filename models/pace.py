"""Pace (issue 16): how long prospects usually stay on each open stage before moving on, and which
prospects are *slow* now. The one definition of slow (the list's `~` mark, the prospect page, the
board, focus and review all use it):

- A *stay* is the time from a prospect's stage change to its next stage change (to any stage: up,
  back, won or lost), from the stage history, on the open stage that next change left. Stays whose
  start or end the importer guessed (`inferred`) are left out; a prospect still on its stage has
  no stay yet.
- Per stage: n stays, their median (the middle one, or the mean of the two middle ones) and 75th
  percentile (the smallest stay with at least 75% of the stays at or below it), in days.
- A prospect on an open stage is slow when its time on the stage (since its last stage change)
  is longer than the stage's 75th percentile, where the stage has at least `MIN_STAYS` (10) stays.
  Below that, the stage's configured stale days apply (the stale rule: no contact point and no
  stage change for more than `stale_days` days; 0: never).

Each stage change carries the stay it ends (`stay_seconds`, the one rule, written by the journal
with the change), so `load_pace` (in a worker, once per load or burst of changes) has the database
count each stage's stays and read the two or three at the ranks it needs from an index, and reads
when each live open prospect entered its stage; `is_slow` is then a look-up and a bisection per
row, whatever the pipeline's size.
"""

from __future__ import annotations

import calendar
import operator
from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import clock
from .ladder import OPEN
from .rawdb import before_moment, day_of, dialect_name, epoch_of, fetch_all, fetch_chunks, raw_cursor

#: Stays a stage needs before its own 75th percentile replaces the stale days.
MIN_STAYS = 10
DAY = 86_400


def stale_cutoff(today: date, stale_days: int) -> str | None:
    """The stale rule: a prospect last touched (contact point or stage change) before this day
    (ISO) is stale; None when the stage is never stale (0 days)."""
    if stale_days <= 0:
        return None
    return (today - timedelta(days=stale_days)).isoformat()


def rank_of(n: int, percent: int) -> int:
    """The rank (from 1) of the `percent`th percentile of `n` values in order: the smallest with at
    least `percent`% of them at or below it."""
    return max(1, -(-percent * n // 100))


def nearest_rank(xs: Sequence[int], percent: int) -> int:
    """The `percent`th percentile of sorted `xs` (`rank_of`)."""
    return xs[rank_of(len(xs), percent) - 1]


@dataclass(frozen=True)
class StagePace:
    """One stage's pace: how many stays it has, their median and 75th percentile (read once, by
    `load_pace`: a row's `~` mark asks for them at every paint)."""

    stage_id: int
    name: str
    position: int
    kind: str
    stale_days: int
    n: int = 0
    median_seconds: float | None = None
    p75_seconds: int | None = None

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
    arrays in id order (10 bytes a prospect while the numbers fit, WIDER, 20 after: against some
    200 as a dict of tuples, 200 MB at a million prospects)."""

    __slots__ = ("at", "ids", "stage")

    #: Each column's type while its numbers fit (4-byte ids and moments, up to 2038; 2-byte stage
    #: ids): 10 bytes a prospect less than the types they widen to, once one does not fit.
    WIDER = {"ids": "q", "stage": "i", "at": "q"}

    def __init__(self) -> None:
        self.ids = array("i")
        self.stage = array("H")
        self.at = array("i")

    def extend(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append (prospect id, stage id, epoch seconds or None, ...) rows in increasing id order,
        a column at a time (a million prospects: 2 s one by one); those with no moment left out."""
        if not rows:
            return
        ids, stages, ats = list(zip(*rows))[:3]
        if None in ats:
            kept = [r for r in rows if r[2] is not None]
            ids, stages, ats = (tuple(r[k] for r in kept) for k in range(3))
        n = len(self.ids)
        try:
            self.ids.extend(ids)
            self.stage.extend(stages)
            self.at.extend(ats)
        except OverflowError:  # (a number too big for its column: what was appended goes, and they widen)
            for name, wide in self.WIDER.items():
                column = getattr(self, name)
                del column[n:]
                setattr(self, name, array(wide, column))
            self.ids.extend(ids)
            self.stage.extend(stages)
            self.at.extend(ats)

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
        self._slow_pairs: set[tuple[int, int]] | None = None  # (`flags`: found on first use)

    # ------------------------------------------------------------ one prospect

    def seconds_on_stage(self, prospect_id: int, stage_id: int, entered_at: int | None = None) -> int:
        """Time on its stage: 0 when it moved since the pace was read (it just entered).
        `entered_at`: when it entered it (epoch seconds), read with the prospect, when the pace's
        own entries were not read for it (`load_pace`'s `of`)."""
        if entered_at is None:
            entry = self.entered.get(prospect_id)
            if entry is None or entry[0] != stage_id:
                return 0
            entered_at = entry[1]
        return max(0, self.now - entered_at)

    def slow(self, prospect_id: int, stage_id: int, touched: str | None, entered_at: int | None = None) -> bool:
        """The one definition of slow (module docstring)."""
        s = self.stages.get(stage_id)
        if s is None or s.kind != OPEN:
            return False
        if s.learnt:
            p75 = s.p75_seconds
            return p75 is not None and self.seconds_on_stage(prospect_id, stage_id, entered_at) > p75
        cutoff = self._cutoffs.get(stage_id)
        return cutoff is not None and touched is not None and touched[:10] < cutoff

    def is_slow(self, row: Any) -> bool:
        """`slow` for a pipeline row (models.pipeline_view.Row: id, stage_id, touched)."""
        return self.slow(row.id, row.stage_id, row.touched)

    def flags(self, rows: Any) -> Iterator[bool]:
        """`slow` for every row of a RowStore (models/pipeline_view.py), in its columns' order, a
        look-up per row in C (the filter's `stale`, models/filters.py): on a stage whose pace is
        learnt, the prospects on it since before its 75th percentile (found once per pace); on
        another, the stale days, from the row's last touch."""
        if self._slow_pairs is None:
            learnt = {
                sid: s.p75_seconds
                for sid, s in self.stages.items()
                if s.kind == OPEN and s.learnt and s.p75_seconds is not None
            }
            e = self.entered
            self._slow_pairs = {
                (pid, sid)
                for pid, sid, at in zip(e.ids, e.stage, e.at)
                if (p75 := learnt.get(sid)) is not None and self.now - at > p75
            }
        by_time = map(self._slow_pairs.__contains__, zip(rows.ids, rows.stage))
        cutoffs = {
            sid: c
            for sid, c in self._cutoffs.items()
            if c is not None and self.stages[sid].kind == OPEN and not self.stages[sid].learnt
        }
        if not cutoffs:
            return by_time
        idle = {
            (sid, i) for sid, c in cutoffs.items() for i, w in enumerate(rows.words) if w is not None and w[:10] < c
        }
        return map(operator.or_, by_time, map(idle.__contains__, zip(rows.stage, rows.touched)))

    def words(self, prospect_id: int, stage_id: int, touched: str | None = None, entered_at: int | None = None) -> str:
        """'12 days on Quote sent; usually 5' (the median), or why the stale days apply."""
        s = self.stages.get(stage_id)
        if s is None or s.kind != OPEN:
            return ""
        days = self.seconds_on_stage(prospect_id, stage_id, entered_at) // DAY
        text = f"{days} day{'s' if days != 1 else ''} on {s.name}"
        if s.learnt and s.median_days is not None:
            text += f"; usually {round(s.median_days)}"
            if self.slow(prospect_id, stage_id, touched, entered_at):
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
        entered = f"{prospect}.stage_entered_at"
        whens = " ".join(
            f"WHEN {int(sid)} THEN {before_moment(entered, int(self.now - (p75 or 0)), self.dialect)}"
            for sid, p75 in learnt
        )
        return f"(CASE {prospect}.stage_id {whens} ELSE ({stale_sql}) END)"


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def stay_seconds(before: tuple[datetime, bool] | None, at: datetime, guessed: bool) -> int | None:
    """The stay a stage change at `at` ends (module docstring): the whole seconds since the
    prospect's change before it (`before`: its moment and whether the importer guessed it), 0 when
    that one is later; None when there is none or either is a guess. The journal writes it on the
    change (`StageChange.stay_seconds`), so that a stage's pace is read from an index."""
    if before is None or before[1] or guessed:
        return None
    return max(0, _epoch(at) - _epoch(before[0]))


_STAGES_SQL = "SELECT id, name, position, kind, stale_days FROM stage ORDER BY position, id"

#: How many stays each stage has (the stays a change ended on the stage it left).
_STAYS_SQL = (
    "SELECT from_stage_id, count(*) FROM stage_change "
    "WHERE from_stage_id IS NOT NULL AND stay_seconds IS NOT NULL GROUP BY from_stage_id"
)
#: A stage's stays from the `:skip`-th shortest on, `:take` of them (ix_stage_change_stay).
_RANKED_SQL = (
    "SELECT stay_seconds FROM stage_change WHERE from_stage_id = :stage AND stay_seconds IS NOT NULL "
    "ORDER BY stay_seconds LIMIT :take OFFSET :skip"
)


def entered_sql(prospect: str, dialect: str) -> str:
    """When a prospect entered its stage, as epoch seconds (`Pace.seconds_on_stage`'s `entered_at`)."""
    return epoch_of(f"{prospect}.stage_entered_at", dialect)


def _live_open_sql(dialect: str, with_prospects: bool, of: Collection[int] | None) -> str:
    """The live prospects on open stages in id order (`of`: only those of these ids): id, stage,
    when they entered it, and with `with_prospects` their name and the day they were last touched.
    (SQLite-only: NOT INDEXED when all are read, the table read straight through in id order:
    SQLite, keeping no statistics, would read the live prospects' index, a table lookup a row,
    then sort them.)"""
    more = f", p.name, {day_of('p.last_touch_at', dialect)}" if with_prospects else ""
    scan = " NOT INDEXED" if dialect == "sqlite" and of is None else ""
    only = "" if of is None else f" AND p.id IN ({', '.join(str(int(i)) for i in of)})"
    return (
        f"SELECT p.id, p.stage_id, {entered_sql('p', dialect)}{more} "
        f"FROM prospect p{scan} JOIN stage s ON s.id = p.stage_id "
        f"WHERE p.deleted_at IS NULL AND s.kind = 'open'{only} ORDER BY p.id"
    )


def _stage_stays(cur: Any, stage_id: int, n: int) -> tuple[float, int]:
    """The median (the middle stay, or the mean of the two middle ones) and 75th percentile
    (`rank_of`) of a stage's `n` (> 0) stays, each read at its rank."""

    def ranked(skip: int, take: int) -> list[int]:
        return [int(x) for (x,) in fetch_all(cur, _RANKED_SQL, {"stage": stage_id, "skip": skip, "take": take})]

    middle = ranked((n - 1) // 2, 2 - n % 2)
    median = float(middle[0]) if n % 2 else (middle[0] + middle[1]) / 2
    return median, ranked(rank_of(n, 75) - 1, 1)[0]


def load_pace(
    source: Any, *, now: datetime | None = None, with_prospects: bool = True, of: Collection[int] | None = None
) -> Pace:
    """Each stage's pace and when each live open prospect entered its stage (`source`: an engine or
    connection), in one read transaction. The stays are counted and ranked by the database
    (`StageChange.stay_seconds`): reading the whole history took 5 s at a million prospects in
    daily use. `with_prospects`: also each slow prospect's name, for `slow_prospects`. `of`: when
    only these prospects' entries are needed (one page, or none for lists whose query reads each
    row's own: `entered_sql`); reading every one takes 3 s at a million."""
    now = now or clock.now()
    dialect = dialect_name(source)
    entered = Entries()
    opens: list[OpenProspect] = []
    with raw_cursor(source, transaction=True) as cur:
        stages_rows = fetch_all(cur, _STAGES_SQL)
        open_ids = {int(sid) for sid, _n, _p, kind, _s in stages_rows if kind == OPEN}
        counts = {int(sid): int(n) for sid, n in fetch_all(cur, _STAYS_SQL) if int(sid) in open_ids}
        ranks = {sid: _stage_stays(cur, sid, n) for sid, n in counts.items() if n}
        if of is not None and not of:
            chunks: Iterator[list[tuple]] = iter(())
        else:
            chunks = fetch_chunks(cur, _live_open_sql(dialect, with_prospects, of), size=10_000)
        for chunk in chunks:
            entered.extend(chunk)
            if with_prospects:
                opens += [OpenProspect(int(r[0]), str(r[3]), int(r[1]), str(r[4])) for r in chunk]
    stages = {}
    for sid, name, pos, kind, stale in stages_rows:
        sid = int(sid)
        n = counts.get(sid, 0)
        median, p75 = ranks.get(sid, (None, None))
        stages[sid] = StagePace(sid, str(name), int(pos), str(kind), int(stale), n, median, p75)
    return Pace(stages, entered, _epoch(now), now.date(), opens, dialect)


def is_slow(pace: Pace | None, row: Any) -> bool:
    """Whether a pipeline row (id, stage_id, touched) is slow; False before the pace is loaded. The
    board and the list call this."""
    return pace is not None and pace.is_slow(row)


__all__ = ["MIN_STAYS", "Pace", "StagePace", "is_slow", "load_pace", "nearest_rank", "stale_cutoff"]
