"""What to work on next (docs/domain.md, "What to work on next").

- Next-step gain of an open prospect: value x (p(next rung) - p(its rung)); the next rung of the
  top open rung is the won stage.
- Overdue: a next follow-up before today. Due this week: a follow-up from today to 6 days ahead
  (the coming seven days, so a Friday review sees the next Friday too).
- Stale: no activity and no stage change (`last_touch_at`) for more days than the stage allows
  (`stale_days`; 0 means never stale); on a stage with 10 or more stays in its history, *slow*
  instead: on the stage longer than its 75th percentile (models/pace.py, the one definition).

The focus list takes live open prospects in this order: overdue follow-ups, then those due this
week, then stale ones, then the rest. Overdue and due ones go by their follow-up date, oldest first
(what was promised first is done first), and within a date by the biggest next-step gain; stale ones
and the rest go by the biggest next-step gain (then the earliest follow-up, then the longest
untouched). Each prospect appears once, with the reason of its
group and its gain. It is one SQL query with a LIMIT; no prospect row is loaded beyond those shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

from . import clock
from .filters import DUE_DAYS  # the one definition of "due this week", which `/ due:week` shares
from .ladder import OPEN, ev_micros, gain_sql, next_probability_sql, next_rungs, next_step_gain
from .pace import Pace, entered_sql, load_pace
from .rawdb import as_date, day_of, days_since, dialect_name, fetch_all, no_index, raw_cursor
from .values import format_amount, money_str

GROUPS = ("overdue", "due", "stale", "gain")
GAIN_PHRASE = "next step worth {} EV"  # the gain's reason, around the amount


@dataclass(frozen=True)
class FocusItem:
    id: int
    name: str
    company: str
    stage_id: int
    stage: str
    probability_bp: int
    next_stage: str
    next_bp: int
    value_cents: int
    month: str | None
    owner: str
    next_follow_up: date | None
    idle_days: int
    stale_days: int
    group: str
    version: int
    pace_words: str = ""  # slow on a stage whose pace is learnt: '12 days on Quote sent; usually 5'
    follow_up_time: str | None = None  # the follow-up's time of day, 'HH:MM', when one was given

    @property
    def gain_micros(self) -> int:
        return next_step_gain(self.value_cents, self.probability_bp, self.next_bp)

    @property
    def ev_micros(self) -> int:
        return ev_micros(self.value_cents, OPEN, self.probability_bp)  # the focus list holds open prospects

    @property
    def overdue_days(self) -> int:
        return 0 if self.next_follow_up is None else (clock.today() - self.next_follow_up).days

    @property
    def is_stale(self) -> bool:
        return self.stale_days > 0 and self.idle_days > self.stale_days

    @property
    def gain_reason(self) -> str:
        return GAIN_PHRASE.format(format_amount(self.gain_micros, micros=True, signed=True))

    @property
    def reason(self) -> str:
        """Why it is on the list, most urgent first."""
        if self.group == "overdue":
            days = self.overdue_days
            return f"overdue follow-up ({days} day{'s' if days != 1 else ''})"
        if self.group == "due":
            assert self.next_follow_up is not None, "a prospect is due by its follow-up date"
            ahead = (self.next_follow_up - clock.today()).days
            at = f" {self.follow_up_time}" if self.follow_up_time else ""
            if ahead == 0:
                return "follow-up due today" + (f" at{at}" if at else "")
            return "due this week" + (f" (tomorrow{at})" if ahead == 1 else f" ({self.next_follow_up:%a %d %b}{at})")
        if self.group == "stale":
            return f"slow: {self.pace_words}" if self.pace_words else f"stale for {self.idle_days} days"
        return self.gain_reason

    @property
    def short_reason(self) -> str:
        """The reason in a few words, for narrow lists: 'overdue 3 days', 'due Mon 30 Nov', 'stale 20 days'."""
        if self.group == "overdue":
            days = self.overdue_days
            return f"overdue {days} day{'s' if days != 1 else ''}"
        if self.group == "due":
            assert self.next_follow_up is not None, "a prospect is due by its follow-up date"
            ahead = (self.next_follow_up - clock.today()).days
            if ahead == 0:  # (with its time, when one was given: the rep plans the day by it)
                return "due today" + (f" {self.follow_up_time}" if self.follow_up_time else "")
            return "due tomorrow" if ahead == 1 else f"due {self.next_follow_up:%a %d %b}"
        if self.group == "stale":
            # (the days alone: the list's Stage column names the stage, and 16 cells cut it mid-word)
            return (
                f"slow {self.pace_words.split(';')[0].split(' on ')[0]}"
                if self.pace_words
                else f"stale {self.idle_days} days"
            )
        return "best next step"

    @property
    def reasons(self) -> list[str]:
        out = [self.reason]
        if self.group != "gain":
            out.append(self.gain_reason)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "company": self.company,
            "stage": self.stage,
            "probability": self.probability_bp / 10_000,
            "next_stage": self.next_stage,
            "value": money_str(self.value_cents),
            "ev": money_str(self.ev_micros, micros=True),
            "gain": money_str(self.gain_micros, micros=True),
            "month": self.month,
            "owner": self.owner,
            "next_follow_up": self.next_follow_up.isoformat() if self.next_follow_up else None,
            "idle_days": self.idle_days,
            "group": self.group,
            "reason": self.reason,
            "reasons": self.reasons,
        }


class _Rung(NamedTuple):
    id: int
    name: str
    position: int
    probability_bp: int
    kind: str


_RUNGS_SQL = "SELECT id, name, position, probability_bp, kind FROM stage WHERE archived = :no ORDER BY position, id"


def _next_rungs(cur) -> dict[int, tuple[str, int]]:
    """Each open stage's next rung: the next open stage up, or the won stage above the top one."""
    stages = [
        _Rung(int(i), str(n), int(p), int(b), str(k)) for i, n, p, b, k in fetch_all(cur, _RUNGS_SQL, {"no": False})
    ]
    # An open stage taken off the ladder (archived) keeps its prospects' place: treat it as the first rung.
    return {sid: (nxt.name, nxt.probability_bp) for sid, nxt in next_rungs(stages).items()}


@dataclass(frozen=True)
class _Query:
    """The open prospects with what focus sorts them by, as SQL text over `prospect` and `stage`
    (trusted names and numbers only; the dates and words are the parameters)."""

    select: str  # SELECT ... FROM ... WHERE ..., without ORDER BY
    tables: str  # its FROM
    where: str  # its WHERE condition
    params: dict[str, Any]
    gain: str
    group: str
    overdue: str
    due: str
    stale: str
    idle: str  # whole days since the last touch
    #: The longest untouched first, as an ORDER BY term: the day of the last touch, earliest
    #: first, which orders as the days idle (most first) does without working the days out for
    #: each row (a million prospects in daily use: the stale list 0.76 -> 0.50 s).
    longest_idle: str
    nexts: dict[int, tuple[str, int]]


_COLUMNS = (
    "prospect.id, prospect.name, prospect.company, prospect.stage_id, stage.name, stage.probability_bp, "
    "{next_bp}, prospect.value_cents, prospect.expected_month, prospect.owner, prospect.next_follow_up, "
    "{idle}, stage.stale_days, {group}, prospect.version, {entered}, prospect.follow_up_time"
)


def _query(cur, today: date, owner: str | None, pace: Pace | None = None, *, by_follow_up: bool = False):
    """The open prospects with what focus sorts them by. `by_follow_up`: the query will keep only
    follow-ups in a range of dates; on SQLite the follow-up index then leads (see `_live`)."""
    nexts = _next_rungs(cur)
    if not nexts:
        return None
    dialect = dialect_name(cur)
    next_sql = next_probability_sql(
        "prospect.stage_id", "stage.probability_bp", {sid: bp for sid, (_, bp) in nexts.items()}
    )
    gain = gain_sql("prospect.value_cents", "stage.probability_bp", next_sql)
    idle = days_since(today, "prospect.last_touch_at", dialect)
    overdue = "prospect.next_follow_up < :today"
    due = "prospect.next_follow_up BETWEEN :today AND :due_end"
    stale = f"(stage.stale_days > 0 AND {idle} > stage.stale_days)"
    if pace is not None:  # slow (models/pace.py): past the stage's p75, else the stale rule above
        stale = pace.slow_sql(f"stage.stale_days > 0 AND {idle} > stage.stale_days")
    group = f"CASE WHEN {overdue} THEN 0 WHEN {due} THEN 1 WHEN {stale} THEN 2 ELSE 3 END"
    where = f"{_live(dialect, by_follow_up)} AND stage.kind = :open"
    params: dict[str, Any] = {"today": today, "due_end": today + timedelta(days=DUE_DAYS - 1), "open": OPEN}
    if owner is not None:
        where += " AND prospect.owner = :owner"
        params["owner"] = owner
    # SQLite-only: NOT INDEXED when every open prospect is read (no follow-up range, no owner): SQLite,
    # keeping no statistics, would read them through the live prospects' index, one table lookup a
    # row (100,000: the stale list 240 ms -> 75 ms reading the table straight through)
    scan = " NOT INDEXED" if dialect == "sqlite" and not by_follow_up and owner is None else ""
    tables = f"prospect{scan} JOIN stage ON stage.id = prospect.stage_id"
    columns = _COLUMNS.format(next_bp=next_sql, idle=idle, group=group, entered=entered_sql("prospect", dialect))
    select = f"SELECT {columns} FROM {tables} WHERE {where}"
    longest_idle = day_of("prospect.last_touch_at", dialect)  # NOT NULL
    return _Query(select, tables, where, params, gain, group, overdue, due, stale, idle, longest_idle, nexts)


def _live(dialect: str, by_follow_up: bool) -> str:
    """Not deleted. SQLite, which keeps no statistics, would rather read the live prospects' index
    (nearly every row, then sort them all) than walk the follow-up index over the few dates asked
    for and stop at the limit: `+` before the column stops it using an index for this test
    (100,000 prospects: 140 ms -> 3 ms a list)."""
    if by_follow_up and dialect == "sqlite":
        return f"{no_index('prospect.deleted_at')} IS NULL"
    return "prospect.deleted_at IS NULL"


def _pace_words(pace: Pace | None, pid: int, stage_id: int, entered: int | None) -> str:
    """Why a prospect on a stage whose pace is learnt is slow ('' when it is not, or not learnt);
    `entered`: when it entered its stage, read with it."""
    if pace is None:
        return ""
    s = pace.stages.get(stage_id)
    learnt_and_slow = s is not None and s.learnt and pace.slow(pid, stage_id, None, entered)
    return pace.words(pid, stage_id, entered_at=entered) if learnt_and_slow else ""


def _items(cur, sql: str, params: dict[str, Any], nexts, pace: Pace | None = None) -> list[FocusItem]:
    out = []
    for (
        pid,
        name,
        company,
        stage_id,
        stage,
        bp,
        nbp,
        value,
        month,
        owner,
        follow,
        idle,
        stale_days,
        group,
        version,
        entered,
        follow_time,
    ) in fetch_all(cur, sql, params):
        out.append(
            FocusItem(
                id=pid,
                name=name,
                company=company,
                stage_id=stage_id,
                stage=stage,
                probability_bp=int(bp),
                next_stage=nexts.get(stage_id, (stage, bp))[0],
                next_bp=int(nbp),
                value_cents=int(value),
                month=month,
                owner=owner,
                next_follow_up=as_date(follow),
                idle_days=int(idle or 0),
                stale_days=int(stale_days),
                group=GROUPS[int(group)],
                version=int(version),
                pace_words=_pace_words(pace, pid, stage_id, None if entered is None else int(entered)),
                follow_up_time=follow_time,
            )
        )
    return out


def focus(source: Any, *, limit: int = 20, owner: str | None = None, pace: Pace | None = None) -> list[FocusItem]:
    """The prospects to work on now, most urgent first (see the module docstring). `source`: an
    engine or a SqliteReader (models/rawdb.py); `pace`: the stages' pace, when the caller has read
    it for another list too (each row's query reads when it entered its stage: the pace need not)."""
    today = clock.today()
    pace = pace or load_pace(source, with_prospects=False, of=())
    with raw_cursor(source) as cur:
        for overdue_only in (True, False):
            q = _query(cur, today, owner, pace, by_follow_up=overdue_only)
            if q is None:
                return []
            # overdue and due (groups 0 and 1) by date first; the other groups have no date to go by
            dated = f"CASE WHEN {q.group} < 2 THEN prospect.next_follow_up ELSE NULL END"
            order = (
                f" ORDER BY {q.group}, {dated}, {q.gain} DESC, prospect.next_follow_up IS NULL,"
                f" prospect.next_follow_up, {q.longest_idle}, prospect.id LIMIT {int(limit)}"
            )
            if overdue_only:
                # the overdue come first: when there are enough of them, they are the answer, read
                # by the follow-up index instead of sorting every open prospect. All of them are in
                # group 0, where `order` comes down to this one, which leads with the index's
                # column: SQLite walks the index and stops at the limit instead of sorting every
                # overdue prospect (a million prospects in daily use: 0.49 -> 0.07 s)
                by_date = f" ORDER BY prospect.next_follow_up, {q.gain} DESC, {q.longest_idle}, prospect.id LIMIT {int(limit)}"
                first = _items(cur, f"{q.select} AND {q.overdue}{by_date}", q.params, q.nexts, pace)
                if len(first) == limit:
                    return first
                continue
            return _items(cur, q.select + order, q.params, q.nexts, pace)
    return []


def follow_ups(
    source: Any, which: str, *, limit: int = 50, owner: str | None = None, pace: Pace | None = None
) -> list[FocusItem]:
    """Open prospects that are `overdue` (oldest follow-up first), `due` this week (soonest first) or
    `stale` (longest untouched first), whatever else applies to them. The database keeps, orders and
    limits them (the follow-up index for overdue and due); only the rows shown are read. `pace`: as
    for `focus` (only the stale list needs it)."""
    today = clock.today()
    if which == "stale":
        pace = pace or load_pace(source, with_prospects=False, of=())
    with raw_cursor(source) as cur:
        q = _query(cur, today, owner, pace, by_follow_up=which in ("overdue", "due"))
        if q is None:
            return []
        if which == "overdue":
            sql = f"{q.select} AND {q.overdue} ORDER BY prospect.next_follow_up, {q.gain} DESC, prospect.id"
        elif which == "due":
            sql = f"{q.select} AND {q.due} ORDER BY prospect.next_follow_up, {q.gain} DESC, prospect.id"
        elif which == "stale":
            sql = f"{q.select} AND {q.stale} ORDER BY {q.longest_idle}, {q.gain} DESC, prospect.id"
        else:
            raise ValueError(f"follow_ups: {which!r} is not overdue, due or stale")
        items = _items(cur, f"{sql} LIMIT {int(limit)}", q.params, q.nexts, pace)
    # The reason shown in these lists is the list's own, whichever focus group the prospect is in.
    return [FocusItem(**{**i.__dict__, "group": which}) for i in items]


def count_follow_ups(source: Any, *, owner: str | None = None, pace: Pace | None = None) -> dict[str, int]:
    """How many open prospects are overdue, due this week and stale (`pace`: as for `focus`)."""
    today = clock.today()
    pace = pace or load_pace(source, with_prospects=False, of=())
    with raw_cursor(source) as cur:
        q = _query(cur, today, owner, pace)
        if q is None:
            return {"overdue": 0, "due": 0, "stale": 0}
        sql = (
            "SELECT coalesce(sum(o), 0), coalesce(sum(d), 0), coalesce(sum(s), 0) FROM ("
            f"SELECT CASE WHEN {q.overdue} THEN 1 ELSE 0 END AS o, CASE WHEN {q.due} THEN 1 ELSE 0 END AS d, "
            f"CASE WHEN {q.stale} THEN 1 ELSE 0 END AS s "
            f"FROM {q.tables} WHERE {q.where}"
            ") AS counted"
        )
        ((o, d, s),) = fetch_all(cur, sql, q.params)
    return {"overdue": int(o), "due": int(d), "stale": int(s)}
