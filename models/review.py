"""The weekly review: how the KPIs moved over a period, and why (docs/domain.md, "Weekly
review and the EV bridge").

- Period: from 00:00 on its first day to now. "7d" (the default) is today and the six days
  before, so that consecutive weekly reviews tile the calendar; "2w" is 14 days; a date starts
  on that day.
- start: the KPIs just before the period (`start_kpis`): the KPI history's reading of the day
  before it (a snapshot dated D is the state at the end of D, models/history.py); with no reading
  that day, the nearest earlier one plus every change journalled since that day ended (the team's
  review; one owner's takes only a reading of the day before, as the journal does not say whose a
  prospect was); with no reading at all, reconstructed from the stage-change history and the
  probabilities of the time (models.history.kpis_before). end: today's KPIs (models.kpi).
- The bridge, for EV and for TV: the journal entries of the period summed per category in SQL
  (undo entries carry the category of what they undo). The terms: new prospects, advances, wins,
  regressions, losses, reopened, value edits, probability changes, deletions, ladder edits. Every
  change's exact effect is journalled, so the terms add up exactly to end - start; if they ever
  did not (a journal written by something else), the difference is shown as its own term,
  "unexplained", never hidden.
- Each term lists the prospects (or, for probability changes, the stages) behind it.
- Below: follow-ups overdue and due this week, stale prospects, and the best next steps
  (models.focus).
- It opens with this season against last (`season_line`, models/season.py): "EV is 12% above
  this time last year", the KPI period's EV now against the same week last year.
- One owner's review (`owner`: a rep the owner lets see only their own, models/visibility.py):
  start and end are their prospects' KPIs, the terms the changes to the prospects they own now,
  the lists below theirs. A probability change moves their EV by an amount the journal records
  for the whole pipeline only, and a prospect handed to them or taken from them moves their KPIs
  with no change to the team's: together these are one term, "Probability and owner changes"
  (end - start less the terms), never hidden.
- The balance of activity (`activity_balance`): per open stage, the prospects added to it (created
  on it), advanced from it (moved to a later rung or won), touched on it (a contact point while on
  it) in the period, and those on it now left untouched all period (no contact point, no move),
  against a typical week of the last quarter: the median of each count over the 13 weeks before
  the period.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from . import clock
from .errors import DomainError
from .focus import FocusItem, focus, follow_ups
from .forked import Ahead
from .kpi import Kpi, Scope, kpis
from .pace import Pace, load_pace
from .rawdb import SqliteReader, as_day, dialect_name, fetch_all, fetch_chunks, raw_cursor, text_list
from .undone import UNDONE_MOVES_SQL
from .values import exact_money, money_str, parse_date

#: The terms of the bridge in the order a review shows them, with their labels.
TERMS = {
    "new": "New prospects",
    "advance": "Advances",
    "win": "Wins",
    "regress": "Regressions",
    "lose": "Losses",
    "reopen": "Reopened",
    "edit": "Value edits",
    "prob": "Probability changes",
    "delete": "Deletions",
    "ladder": "Ladder edits",
}
UNEXPLAINED = "unexplained"
NOT_SPLIT = "not_split"  # one owner's review: what the journal does not split per owner (above)
OTHERS = "others"  # a rep's review: the changes everyone else made


@dataclass(frozen=True)
class TermItem:
    kind: str  # "prospect" or "stage"
    id: int
    name: str
    changes: int
    d_count: int
    d_tv_cents: int
    d_ev_micros: int
    value_cents: int = 0  # a prospect's value today (0 for a stage)
    by: tuple[str, ...] = ()  # who made these changes
    #: every one of its changes in the period was undone in the period (each undo with the change
    #: it undid): it nets to nothing, and nothing happened to it (a move made by mistake and undone
    #: is no advance): `Term.standing` leaves it out
    undone: bool = False

    @property
    def by_text(self) -> str:
        """'by sam', 'by priya, sam' (empty when nobody is named)."""
        return "by " + ", ".join(self.by) if self.by else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "changes": self.changes,
            "count": self.d_count,
            "tv": money_str(self.d_tv_cents),
            "ev": exact_money(self.d_ev_micros),
            "value": money_str(self.value_cents),
            "by": list(self.by),
            "undone": self.undone,
        }


@dataclass(frozen=True)
class Term:
    category: str
    label: str
    changes: int
    d_count: int
    d_tv_cents: int
    d_ev_micros: int
    items: list[TermItem] = field(default_factory=list)

    @property
    def standing(self) -> list[TermItem]:
        """The items behind the term, but those whose every change was undone in the period (a
        rep's advance made by mistake and undone is no prospect moved up the ladder)."""
        return [i for i in self.items if not i.undone]


@dataclass(frozen=True)
class Review:
    start_at: datetime
    end_at: datetime
    start: Kpi
    end: Kpi
    terms: list[Term]
    overdue: list[FocusItem]
    due: list[FocusItem]
    stale: list[FocusItem]
    focus: list[FocusItem]
    #: The rep whose changes the bridge counts (None: everyone's); the rest is the term "others".
    who: str | None = None

    @property
    def names_authors(self) -> bool:
        """Whether items should name who made their changes: a team's review (more than one
        author in the period) or one rep's."""
        if self.who is not None:
            return True
        seen: set[str] = set()
        for t in self.terms:
            for i in t.items:
                seen.update(i.by)
                if len(seen) > 1:  # (at a million prospects a week's items are 100,000s: stop at two)
                    return True
        return False

    season: str = ""  # "EV is 12% above this time last year" (models/season.py)
    balance: list[StageBalance] = field(default_factory=list)
    #: Whose prospects the review covers (None: everyone's).
    owner: str | None = None

    def term(self, category: str) -> Term | None:
        return next((t for t in self.terms if t.category == category), None)

    @property
    def wins(self) -> list[TermItem]:
        """The prospects won in the period (a win undone in the period nets to nothing: left out)."""
        t = self.term("win")
        return [i for i in t.standing if i.d_ev_micros > 0 or i.d_count > 0] if t else []

    def to_json(self) -> dict[str, Any]:
        def kpi(k: Kpi) -> dict[str, Any]:
            data = k.to_json()
            data["ev_exact"] = exact_money(k.ev_micros)
            return data

        return {
            "who": self.who,
            "owner": self.owner,
            "since": self.start_at.isoformat(),
            "until": self.end_at.isoformat(),
            "start": kpi(self.start),
            "end": kpi(self.end),
            "bridge": {
                "ev": {
                    "start": exact_money(self.start.ev_micros),
                    "end": exact_money(self.end.ev_micros),
                    "change": exact_money(self.end.ev_micros - self.start.ev_micros),
                    "terms": {t.category: exact_money(t.d_ev_micros) for t in self.terms},
                },
                "tv": {
                    "start": money_str(self.start.tv_cents),
                    "end": money_str(self.end.tv_cents),
                    "change": money_str(self.end.tv_cents - self.start.tv_cents),
                    "terms": {t.category: money_str(t.d_tv_cents) for t in self.terms},
                },
                "count": {
                    "start": self.start.count,
                    "end": self.end.count,
                    "change": self.end.count - self.start.count,
                    "terms": {t.category: t.d_count for t in self.terms},
                },
            },
            "terms": [
                {
                    "category": t.category,
                    "label": t.label,
                    "changes": t.changes,
                    "count": t.d_count,
                    "tv": money_str(t.d_tv_cents),
                    "ev": exact_money(t.d_ev_micros),
                    "items": [i.to_json() for i in t.items],
                }
                for t in self.terms
            ],
            "overdue": [i.to_json() for i in self.overdue],
            "due": [i.to_json() for i in self.due],
            "stale": [i.to_json() for i in self.stale],
            "focus": [i.to_json() for i in self.focus],
            "season": self.season,
            "balance": [b.to_json() for b in self.balance],
        }


@dataclass(frozen=True)
class StageBalance:
    """One open stage's activity in the period, and in a typical week of the last quarter."""

    stage: str
    added: int
    advanced: int
    touched: int
    untouched: int
    typical: tuple[float, float, float]  # added, advanced, touched: medians of the 13 weeks before

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "added": self.added,
            "advanced": self.advanced,
            "touched": self.touched,
            "untouched": self.untouched,
            "typical_week": dict(zip(("added", "advanced", "touched"), self.typical)),
        }


QUARTER_WEEKS = 13

#: Where each week starts, newest first: (week, comparison, bound). The period (-1) runs from :w0
#: on; week k from just after :w{k+1}, so a moment exactly on a boundary counts in the older of
#: the two weeks it divides, but for :w0, which starts the period. `_WEEK_SQL` and `_per_week`
#: both read this one rule.
_WEEK_STARTS = [(-1, ">=", "w0")] + [(k, ">", f"w{k + 1}") for k in range(QUARTER_WEEKS)]
_BEFORE = {">=": "<", ">": "<="}  # the comparison that puts a moment before a week's start


def _per_week(part: str, at: str) -> list[str]:
    """`part` for the period (week -1) and for each week of the quarter before it: `{w}` the week's
    number, `{range}` the condition on `at` that puts a row in that week (`_WEEK_STARTS`; the
    period ends at :until). Each week is a range of an index on `at`, counted on its own: the week
    of each row worked out by a CASE of 14 comparisons (`_WEEK_SQL`), and the quarter's rows
    grouped in one sort, took twice as long (a million
    prospects in daily use: 5.5 -> 3.2 s for the moves). One query each: as one UNION ALL, SQLite
    kept every week's grouping tables until the end (35 MiB more at a million)."""
    out = []
    for i, (w, op, bound) in enumerate(_WEEK_STARTS):
        if i == 0:
            end = f"{at} < :until"
        else:
            _, newer_op, newer_bound = _WEEK_STARTS[i - 1]
            end = f"{at} {_BEFORE[newer_op]} :{newer_bound}"
        out.append(part.replace("{w}", str(w)).replace("{range}", f"{at} {op} :{bound} AND {end}"))
    return out


#: Per week and open stage, the prospects added on it and those that left it for a stage further
#: on or a win: `{added}` the open stages' ids, `{advanced}` each pair of stages (`_PAIR`) whose
#: move is an advance or a win (`bridge.advancing_pairs`), so that no row looks up its stages
#: (a million prospects in daily use: 4.1 -> 3.3 s). `{w}` the week (a number, or `_WEEK_SQL`),
#: `{range}` the moments read (`_per_week`'s, or the quarter's); `whose`: the set of prospects
#: counted (not deleted, or one owner's live ones), made once (the WITH) rather than a look-up of
#: each row's prospect (1.6 s of 9). `{undone}`: leaves out the stage changes of a move undone or
#: of the move that undid one (journal `undone_move`): a move made by mistake and undone is no
#: advance, nor is its undo. Their ids are read once for all the weeks (UNDONE_MOVES_SQL, the
#: rule's second form): `undone_move` as a condition looks up each row's journal entry, which the
#: index read does not hold (100,000 prospects, the quarter's changes: 0.15 -> 1.35 s), and the set
#: as a WITH of each week's query read the journal 14 times (the review 0.35 -> 0.85 s; read once,
#: 0.41 s). `{scan}`: how SQLite reads the history (it keeps no statistics, and chose to go through
#: every live prospect and look up its history, or to walk the index by date with a table lookup a
#: row). `{whole}`: see `_whole`. `{lists}`, `{week}` and `{by_week}`: see `_lists`.
_MOVES_SQL = """
WITH whose AS MATERIALIZED ({counted})
SELECT {week}, {lists} FROM (
  SELECT {w} AS w,
         CASE WHEN sc.from_stage_id IS NULL THEN sc.to_stage_id END AS added,
         sc.from_stage_id AS advanced,
         sc.prospect_id AS pid
  FROM stage_change sc{scan}
  WHERE sc.prospect_id {whose} (SELECT id FROM whose) AND {range}{undone}
    AND CASE WHEN sc.from_stage_id IS NULL THEN sc.to_stage_id IN ({added})
             ELSE sc.from_stage_id * {pair} + sc.to_stage_id IN ({advanced}) END{whole}
) moves WHERE w < :weeks{by_week}
"""
#: A pair of stage ids as one number (from x _PAIR + to), as `_MOVES_SQL` makes it of a change's
#: two stages (`{pair}`).
_PAIR = 1 << 32


def _id_list(ids: list[int]) -> str:
    """Whole numbers as the list of a SQL `IN`; (NULL), which holds nothing, when there are none."""
    return ", ".join(str(int(i)) for i in ids) or "NULL"


#: Which week of the quarter before the period a moment `{at}` falls in: -1 in the period (from
#: :w0 on), k in (:w{k+1}, :w{k}] (k whole weeks before the period's start), 13 at :w13 or before
#: (`_WEEK_STARTS`, as one expression).
_WEEK_SQL = (
    "CASE "
    + " ".join(f"WHEN {{at}} {op} :{bound} THEN {w}" for w, op, bound in _WEEK_STARTS)
    + f" ELSE {QUARTER_WEEKS} END"
)
#: Per week and open stage, the prospects with a contact point logged while on it: the stage each
#: contact point keeps (`Activity.stage_id`, by the journal's rule). `{w}`, `{range}`, `{scan}`,
#: `{whose}`, `{added}` and `{whole}` as for `_MOVES_SQL`. A contact point's stage was worked out
#: here (the prospect looked up for each, its history searched for those older than its stage: a
#: million prospects in daily use, 1.5 million a quarter, 3.4 s; read week by week from
#: ix_activity_at, which holds every column read, 1.8 s).
_TOUCHES_SQL = """
WITH whose AS MATERIALIZED ({counted})
SELECT {week}, {lists} FROM (
  SELECT {w} AS w, a.stage_id AS touched, a.prospect_id AS pid
  FROM activity a{scan}
  WHERE a.prospect_id {whose} (SELECT id FROM whose) AND a.voided_at IS NULL AND {range}{whole}
) touches WHERE w < :weeks{by_week}
"""


def _lists(columns: list[tuple[str, int]], dialect: str) -> str:
    """`{lists}`: for each (column, open stage id) the ids of the prospects whose row has that
    stage in that column, as one text ('17,4,17'), whose distinct ids the balance counts
    (`_distinct`). `{week}` is the week's number (its query reads one week: no grouping) or `w`
    with `{by_week}` grouping by it (one owner's quarter, read in one query). Each count was a
    `count(DISTINCT pid)` grouped by week, stage and kind, which sorted every row of the quarter
    for the grouping and kept a set in SQLite for each count (a million prospects in daily use,
    2.2 million moves and 1.4 million contact points a quarter: 3.7 -> 1.9 s and 1.9 -> 1.0 s)."""
    return ", ".join(text_list(f"CASE {column} WHEN {int(sid)} THEN pid END", dialect) for column, sid in columns)


def _distinct(ids: str | None) -> int:
    """How many different ids one of `_lists`' texts holds."""
    return len(set(ids.split(","))) if ids else 0


def _whole(dialect: str) -> str:
    """SQLite-only: LIMIT -1 (no limit) on a subquery keeps SQLite from merging it into the
    grouped query around it, which worked each row's values out again for its WHERE, its GROUP BY
    and its result (a million prospects in daily use: 9.0 -> 6.5 s, and 5.4 -> 4.4 s)."""
    return " LIMIT -1" if dialect == "sqlite" else ""


#: `{scan}`: on SQLite, NOT INDEXED: the count reads every live prospect, which SQLite, keeping no
#: statistics, did through the live prospects' index, one table lookup a row (1,000,000: 2.9 s
#: against 0.65 s reading the table straight through).
_UNTOUCHED_SQL = (
    "SELECT p.stage_id, count(*) FROM prospect p{scan} JOIN stage s ON s.id = p.stage_id "
    "WHERE p.deleted_at IS NULL{mine} AND s.kind = 'open' AND p.last_touch_at < :since GROUP BY p.stage_id"
)


def activity_balance(
    engine: Any, start_at: datetime, end_at: datetime, *, owner: str | None = None
) -> list[StageBalance]:
    """The balance of activity per open stage (module docstring), in four reads, each counted by
    the database (the quarter's history and contact points are not read row by row: at 100,000
    prospects in daily use that took 1.5 s); `owner`: of their prospects only."""
    import statistics

    from .bridge import advancing_pairs
    from .ladder import OPEN

    ladder = [
        (int(sid), str(name), str(kind), int(position))
        for sid, name, kind, position in fetch_all(
            engine, "SELECT id, name, kind, position FROM stage WHERE archived = :no ORDER BY position", {"no": False}
        )
    ]
    stages = {sid: (name, kind) for sid, name, kind, _ in ladder}
    open_ids = [sid for sid, _, kind, _ in ladder if kind == OPEN]
    added = _id_list(open_ids)
    advanced = _id_list([a * _PAIR + b for a, b in advancing_pairs([(sid, k, pos) for sid, _, k, pos in ladder])])
    mine = "" if owner is None else " AND p.owner = :owner"
    whose: dict[str, Any] = {} if owner is None else {"owner": owner}
    weeks = {f"w{k}": start_at - timedelta(weeks=k) for k in range(QUARTER_WEEKS + 1)}
    params = {"since": weeks[f"w{QUARTER_WEEKS}"], "until": end_at, "weeks": QUARTER_WEEKS, **weeks}
    params.update(whose)
    dialect = dialect_name(engine)
    sqlite = dialect == "sqlite"
    live = "SELECT prospect.id FROM prospect WHERE prospect.deleted_at IS "
    if owner is None:
        # Nearly every row counts: each week read as a range of an index that holds every column
        # read (ix_stage_change_at, ix_activity_at; a million prospects in daily use: the moves
        # 5.5 -> 3.2 s, the contact points 3.4 -> 1.8 s).
        counted, whose_sql = live + "NOT NULL", "NOT IN"
        scans = {"moves": " INDEXED BY ix_stage_change_at", "touches": " INDEXED BY ix_activity_at"}
    else:
        # One owner's: the quarter read straight through, the few that count found by their
        # prospect (a range of the index for each week made the owner's set of prospects for
        # each: a million prospects, 1.2 -> 2.8 s for the moves).
        counted, whose_sql = live + "NULL AND prospect.owner = :owner", "IN"
        scans = {"moves": " NOT INDEXED", "touches": " NOT INDEXED"}

    kinds = {
        "moves": [(what, sid) for sid in open_ids for what in ("added", "advanced")],
        "touches": [("touched", sid) for sid in open_ids],
    }

    def weekly(sql: str, at: str, which: str) -> list[str]:
        shared = dict(counted=counted, scan=scans[which] if sqlite else "", whose=whose_sql, whole=_whole(dialect))
        lists = _lists(kinds[which], dialect)
        part = sql.format(
            **shared,
            w="{w}",
            range="{range}",
            added=added,
            advanced=advanced,
            undone="{undone}",
            pair=_PAIR,
            lists=lists,
            week="{week}",
            by_week="{by_week}",
        )
        if owner is None:
            return _per_week(part.replace("{week}", "{w}").replace("{by_week}", ""), at)
        quarter = f"{at} >= :since AND {at} < :until"
        whole_quarter = part.replace("{week}", "w").replace("{by_week}", " GROUP BY w")
        return [whole_quarter.replace("{w}", _WEEK_SQL.format(at=at)).replace("{range}", quarter)]

    def count(queries: list[str], which: str) -> list[tuple[int, int, str, int]]:
        with raw_cursor(engine, transaction=True) as cur:  # the weeks as one snapshot
            if which == "moves":  # (read once, in that snapshot, the quarter's: `_MOVES_SQL`)
                quarter = f"SELECT u.id FROM ({UNDONE_MOVES_SQL}) u JOIN stage_change q ON q.id = u.id "
                undone_ids = [int(i) for (i,) in fetch_all(cur, quarter + "WHERE q.changed_at >= :since", params)]
                # (none: no condition, as NOT IN (NULL) holds for no row)
                undone = f" AND sc.id NOT IN ({_id_list(undone_ids)})" if undone_ids else ""
                queries = [sql.replace("{undone}", undone) for sql in queries]
            rows = [row for sql in queries for row in fetch_all(cur, sql, params)]
        return [
            (int(w), sid, what, _distinct(ids)) for w, *lists in rows for (what, sid), ids in zip(kinds[which], lists)
        ]

    moves = weekly(_MOVES_SQL, "sc.changed_at", "moves")
    touches = weekly(_TOUCHES_SQL, "a.occurred_at", "touches")

    def untouched_now() -> dict[int, int]:
        sql = _UNTOUCHED_SQL.format(mine=mine, scan=" NOT INDEXED" if sqlite else "")
        return {int(sid): int(n) for sid, n in fetch_all(engine, sql, {"since": start_at, **whose})}

    def touched_and_untouched() -> tuple[list[tuple[int, int, str, int]], dict[int, int]]:
        return count(touches, "touches"), untouched_now()

    # the counts at once, on two connections (the moves and the contact points each read the
    # whole quarter); the untouched, read after the contact points rather than after the moves,
    # evens the two out (a million prospects in daily use: 1.9 s against 1.0 + 0.6)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="balance") as pool:
        other = pool.submit(touched_and_untouched)
        rows = count(moves, "moves")
        touched, untouched = other.result()
    counts = {(w, sid, what): n for w, sid, what, n in rows + touched}
    out = []
    for sid, (name, kind) in stages.items():
        if kind != OPEN:
            continue

        def n(w: int, what: str, sid: int = sid) -> int:
            return counts.get((w, sid, what), 0)

        def typical(what: str, sid: int = sid) -> float:
            return float(statistics.median(counts.get((w, sid, what), 0) for w in range(QUARTER_WEEKS)))

        out.append(
            StageBalance(
                name,
                n(-1, "added"),
                n(-1, "advanced"),
                n(-1, "touched"),
                untouched.get(sid, 0),
                (typical("added"), typical("advanced"), typical("touched")),
            )
        )
    return out


def season_line(engine: Any, *, owner: str | None = None) -> str:
    """'EV is 12% above this time last year': the KPI period's EV now against the same week last
    year (`owner`: of their prospects, from their own history)."""
    from .kpi import Scope
    from .period import current_period
    from .season import last_year, year_sentence

    scope = Scope(owner=owner, period=current_period(engine))
    return year_sentence(last_year(engine, kpis(engine, scope), scope))


def parse_since(text: str | date | None, *, today: date | None = None) -> datetime:
    """'7d' (today and the 6 days before), '2w', or a date -> the moment the period starts."""
    today = today or clock.today()
    if text is None or text == "":
        text = "7d"
    if isinstance(text, datetime):
        return text
    if isinstance(text, date):
        day = text
    else:
        raw = str(text).strip().lower()
        if m := re.fullmatch(r"(\d{1,4})\s*([dw])", raw):
            days = int(m[1]) * (7 if m[2] == "w" else 1)
            if days < 1:
                raise DomainError("since: a period of at least 1 day, such as 7d or 2w", field="since")
            day = today - timedelta(days=days - 1)
        else:
            try:
                day = parse_date(raw, today=today, field="since")
            except DomainError as exc:
                if " is not a date; " not in str(exc):
                    raise  # a date, but none evpipe takes (30 Feb, the year 1900): said as it is
                raise DomainError(
                    f"since: {str(text)[:30]!r} is not a period or a date; type 7d, 2w, 2026-11-01 or 1/11/2026",
                    field="since",
                ) from None
    if day > today:
        raise DomainError(f"since: {day.isoformat()} is in the future", field="since")
    return datetime.combine(day, time(0, 0))


#: A journal entry that moved a KPI (the bridge leaves out the rest).
_SIGNIFICANT = "(change_event.d_count != 0 OR change_event.d_tv_cents != 0 OR change_event.d_ev_micros != 0)"


def bridge_terms(
    engine: Any,
    start_at: datetime,
    *,
    with_items: bool = True,
    who: str | None = None,
    owner: str | None = None,
) -> list[Term]:
    """The journal since `start_at` (the changes `who` made, when given; the changes to `owner`'s
    prospects, when given), per category (in TERMS order), with an item per prospect or stage
    changed (`with_items`) naming who made its changes. `engine`: an engine or a SqliteReader
    (models/rawdb.py)."""
    where = f"change_event.at >= :since AND {_SIGNIFICANT}"
    params: dict[str, Any] = {"since": start_at}
    if who is not None:
        where += " AND change_event.who = :who"
        params["who"] = who
    if owner is not None:  # their prospects as they are now; changes to a stage are the team's
        where += " AND change_event.prospect_id IN (SELECT prospect.id FROM prospect WHERE prospect.owner = :owner)"
        params["owner"] = owner
    # One read of the period's significant entries, summed here: four grouped reads (the totals,
    # per prospect, per stage, the authors) each looked up every entry's row (a million prospects
    # in daily use, 94,000 entries a week: 5 s -> 1.3 s).
    named = (
        "prospect.name, prospect.value_cents, stage.name FROM change_event "
        "LEFT JOIN prospect ON prospect.id = change_event.prospect_id "
        "LEFT JOIN stage ON stage.id = change_event.stage_id"
        if with_items
        else "NULL, NULL, NULL FROM change_event"
    )
    rows_sql = (
        "SELECT change_event.category, change_event.prospect_id, change_event.stage_id, change_event.who, "
        "change_event.d_count, change_event.d_tv_cents, change_event.d_ev_micros, change_event.id, "
        f"change_event.undoes_id, {named} WHERE {where}"
    )
    totals: dict[str, list[int]] = {}
    # per category, per prospect and per stage: [name, value, changes, count, TV, EV, who, undone],
    # `who` one name until a second one made a change to it, then the set of them (a week's entries
    # are nearly all one per prospect: a set, a key and a list for each took a third of the time),
    # `undone` how many of its changes are an undo or the change it undid, both read
    per: dict[str, tuple[dict[int, list[Any]], dict[int, list[Any]]]] = {}
    # the entries read, and each undo's item with the entry it undoes: an undo whose entry is read
    # too makes a pair, and an item all of whose changes are pairs is undone (`TermItem.undone`)
    read: set[int] = set()
    undos: list[tuple[list[Any], int]] = []
    with raw_cursor(engine) as cur:
        for chunk in fetch_chunks(cur, rows_sql, params, size=10_000):
            for cat, pid, sid, author, c, tv, ev, eid, undoes, pname, value, sname in chunk:
                total = totals.get(cat)
                if total is None:
                    total = totals[cat] = [0, 0, 0, 0]
                    per[cat] = ({}, {})
                total[0] += 1
                total[1] += c
                total[2] += tv
                total[3] += ev
                if not with_items:
                    continue
                read.add(eid)
                if pid is not None:
                    kept, iid, name = per[cat][0], pid, pname
                elif sid is not None:
                    kept, iid, name = per[cat][1], sid, sname
                else:
                    continue
                author = author or "?"
                item = kept.get(iid)
                if item is None:
                    # (a prospect or stage no longer there has no name: in the total, not an item)
                    kept[iid] = item = [name, (value or 0) if pid is not None else 0, 1, c, tv, ev, author, 0]
                    if undoes is not None:
                        undos.append((item, undoes))
                    continue
                if undoes is not None:
                    undos.append((item, undoes))
                item[2] += 1
                item[3] += c
                item[4] += tv
                item[5] += ev
                if item[6] != author:
                    item[6] = (item[6] if isinstance(item[6], set) else {item[6]}) | {author}
    for item, undoes in undos:
        if undoes in read:  # (an undo carries its entry's category, of the same prospect or stage)
            item[7] += 2
    items: dict[str, list[TermItem]] = {}
    for cat, kinds in per.items():
        made = items[cat] = []
        for kind, kept in zip(("prospect", "stage"), kinds):
            for iid, (name, value, n, c, tv, ev, who, paired) in kept.items():
                if name is not None:
                    names = tuple(sorted(who, key=str.casefold)) if isinstance(who, set) else (who,)
                    made.append(TermItem(kind, int(iid), name, n, c, tv, ev, int(value), names, paired == n))
        made.sort(key=lambda i: (-abs(i.d_ev_micros), -abs(i.d_tv_cents), i.name.casefold(), i.id))
    order = list(TERMS) + sorted(c for c in totals if c not in TERMS)
    out = []
    for cat in order:
        if cat in totals:
            n, c, tv, ev = totals[cat]
            out.append(Term(cat, TERMS.get(cat, cat.capitalize()), n, c, tv, ev, items=items.get(cat, [])))
    return out


_NEAREST_READING_SQL = (
    "SELECT kpi_snapshot.taken_on, kpi_snapshot.count, kpi_snapshot.tv_cents, kpi_snapshot.ev_micros "
    "FROM kpi_snapshot WHERE kpi_snapshot.scope = :scope AND kpi_snapshot.taken_on <= :day "
    "ORDER BY kpi_snapshot.taken_on DESC LIMIT 1"
)
_JOURNALLED_SQL = (
    "SELECT coalesce(sum(change_event.d_count), 0), coalesce(sum(change_event.d_tv_cents), 0), "
    "coalesce(sum(change_event.d_ev_micros), 0) FROM change_event "
    "WHERE change_event.at >= :since AND change_event.at < :until"
)


def _replayed(source: Any, replay_from: Any, start_at: datetime, scope: Scope) -> Kpi:
    """The KPIs before `start_at` replayed from the whole history (models/history.py, which reads
    through SQLAlchemy: `replay_from`, when given, makes the engine it needs)."""
    from .history import kpis_before

    return kpis_before(source if replay_from is None else replay_from(), start_at, scope)


def start_kpis(engine: Any, start_at: datetime, scope: Scope, *, replay_from: Any = None) -> Kpi:
    """The KPIs of `scope` (an owner or everyone, no period) just before `start_at`, 00:00 on a day:
    from the nearest reading of the KPI history and the journal since, not from the whole history
    replayed (issue 13: that read every prospect and every change; module docstring). `engine`: an
    engine or a SqliteReader; `replay_from`: what gives an engine, for a replay, when it is not one."""
    day_before = start_at.date() - timedelta(days=1)
    if start_at != datetime.combine(start_at.date(), time(0, 0)) or scope.period is not None:
        return _replayed(engine, replay_from, start_at, scope)
    with raw_cursor(engine, transaction=True) as cur:
        nearest = fetch_all(cur, _NEAREST_READING_SQL, {"scope": scope.snapshot_key, "day": day_before})
        if not nearest or (as_day(nearest[0][0]) != day_before and scope.owner is not None):
            nearest = []
        else:
            taken_on, count, tv, ev = nearest[0]
            taken_on = as_day(taken_on)
            reading = Kpi(int(count), int(tv), int(ev))
            if taken_on == day_before:
                return reading
            from .month_start_sql import end_of_day  # (only here: a gap in the KPI history)

            since = end_of_day(taken_on)
            ((c, dtv, dev),) = fetch_all(cur, _JOURNALLED_SQL, {"since": since, "until": start_at})
    if not nearest:
        return _replayed(engine, replay_from, start_at, scope)
    return reading.moved(int(c), int(dtv), int(dev))


def review(
    engine: Any,
    since: str | date | datetime | None = None,
    *,
    focus_limit: int = 5,
    who: str | None = None,
    owner: str | None = None,
    replay_from: Any = None,
    forked: bool = False,
) -> Review:
    """The review of the period from `since` (default the last 7 days) to now; with `who`, the
    bridge's terms are that rep's changes and everyone else's are one term, "others"; with
    `owner`, all of it is about that owner's prospects (module docstring). `engine`: an engine or
    a SqliteReader (models/rawdb.py); then `replay_from` gives an engine, for when the start must
    be replayed from the whole history (`start_kpis`).

    The balance and the passes over the open prospects are read beside the bridge: on threads of
    their own, or, with `forked` (a one-shot command reading an SQLite file through a
    SqliteReader), by forked copies of this process (models/forked.py), which neither wait for
    the interpreter lock nor make the threads' readers wait for it at every row (a million
    prospects in daily use, the whole command alternated with the threads: 6.0-6.4 -> 4.5-5.8 s)."""
    start_at = parse_since(since)
    end_at = clock.now()
    scope = Scope(owner=owner)

    def balance() -> list[StageBalance]:  # (the quarter's history)
        return activity_balance(engine, start_at, end_at, owner=owner)

    def beside() -> tuple[Pace, list[FocusItem], str, Kpi]:  # (passes over every open prospect)
        return _open_prospects(engine, scope)

    if forked and isinstance(engine, SqliteReader):
        parts = (Ahead(balance), Ahead(beside))
        try:
            return _review(engine, start_at, end_at, scope, focus_limit, who, owner, replay_from, *parts)
        finally:  # (a child whose answer was not taken: the bridge failed first)
            for part in parts:
                part.close()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="review") as pool:
        # each on a connection of its own (a million prospects in daily use, taking turns with
        # the bridge: 4.1-4.7 -> 3.7-4.3 s)
        balanced, read = pool.submit(balance), pool.submit(beside)
        return _review(
            engine, start_at, end_at, scope, focus_limit, who, owner, replay_from, balanced.result, read.result
        )


def _review(
    engine: Any,
    start_at: datetime,
    end_at: datetime,
    scope: Scope,
    focus_limit: int,
    who: str | None,
    owner: str | None,
    replay_from: Any,
    balance: Callable[[], list[StageBalance]],
    beside: Callable[[], tuple[Pace, list[FocusItem], str, Kpi]],
) -> Review:
    start = start_kpis(engine, start_at, scope, replay_from=replay_from)
    terms = bridge_terms(engine, start_at, who=who, owner=owner)
    explained = Kpi()
    for t in bridge_terms(engine, start_at, with_items=False, owner=owner) if who is not None else terms:
        explained = explained.moved(t.d_count, t.d_tv_cents, t.d_ev_micros)
    if who is not None:
        theirs = Kpi()
        for t in terms:
            theirs = theirs.moved(t.d_count, t.d_tv_cents, t.d_ev_micros)
        others = Kpi(
            explained.count - theirs.count, explained.tv_cents - theirs.tv_cents, explained.ev_micros - theirs.ev_micros
        )
        if others != Kpi():
            terms.append(Term(OTHERS, "Others' changes", 0, others.count, others.tv_cents, others.ev_micros))
    pace, stale, season, end = beside()
    gap = Kpi(
        end.count - start.count - explained.count,
        end.tv_cents - start.tv_cents - explained.tv_cents,
        end.ev_micros - start.ev_micros - explained.ev_micros,
    )
    if gap != Kpi():
        if owner is not None:
            terms.append(Term(NOT_SPLIT, "Probability and owner changes", 0, gap.count, gap.tv_cents, gap.ev_micros))
        else:
            terms.append(
                Term(UNEXPLAINED, "Unexplained (not in the journal)", 0, gap.count, gap.tv_cents, gap.ev_micros)
            )
    return Review(
        start_at=start_at,
        end_at=end_at,
        start=start,
        end=end,
        terms=terms,
        overdue=follow_ups(engine, "overdue", owner=owner),
        due=follow_ups(engine, "due", owner=owner),
        stale=stale,
        focus=focus(engine, limit=focus_limit, owner=owner, pace=pace),
        who=who,
        season=season,
        balance=balance(),
        owner=owner,
    )


def _open_prospects(engine: Any, scope: Scope) -> tuple[Pace, list[FocusItem], str, Kpi]:
    """The review's parts read from the prospects as they are now: the stages' pace (read once:
    the stale list and the focus use it), the stale list, the season's line and the KPIs now."""
    pace = load_pace(engine, with_prospects=False, of=())
    stale = follow_ups(engine, "stale", owner=scope.owner, pace=pace)
    return pace, stale, season_line(engine, owner=scope.owner), kpis(engine, scope)


def term_prospect_ids(term: Term) -> list[int]:
    return [i.id for i in term.items if i.kind == "prospect"]


__all__ = [
    "Review",
    "StageBalance",
    "Term",
    "TermItem",
    "TERMS",
    "activity_balance",
    "season_line",
    "bridge_terms",
    "exact_money",
    "parse_since",
    "review",
    "start_kpis",
]
