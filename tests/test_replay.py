"""The journal replayed in one pass (models/replay.py) against the SQL replay evpipe used before it
(kept here, word for word, as an independent check): the same pipeline at every moment, on a story
with every kind of change, prospects written without a journal, and the real CRM import."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import col

from evpipe.models import history, open_db
from evpipe.models.importer import commit_import, plan_import
from evpipe.models.kpi import Kpi
from evpipe.models.ladder import LOST, WON, counts_sql, ev_micros
from evpipe.models.rawdb import fetch_all, json_has, json_text
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent, Prospect, Stage, StageChange, pk, table_of
from tests.conftest import WORKED_LADDER
from tests.test_import import CRM, crm_options

pytestmark = pytest.mark.both_databases

State = dict[tuple[str, "str | None"], Kpi]


# ---------------------------------------------------------------- the SQL replay, as it was

_BEFORE_MONTH, _BEFORE_OWNER = ("before", "expected_month"), ("before", "owner")


@cache
def _at_t_sql(dialect: str) -> str:
    """Each prospect as it stood just before :t (the CTE `at_t`), shared by the grouped state below
    and by `prospects_before` (one prospect per row, for the forecast's frozen range)."""
    return f"""
WITH contrib AS (
    SELECT prospect_id AS pid, COUNT(*) AS n, SUM(d_count) AS c, SUM(d_tv_cents) AS tv
    FROM change_event
    WHERE prospect_id IS NOT NULL AND at < :t
    GROUP BY prospect_id
),
at_t AS (
    SELECT
        p.id AS pid,
        p.deleted_at AS deleted_at,
        (SELECT sc.to_stage_id FROM stage_change sc
          WHERE sc.prospect_id = p.id AND sc.changed_at < :t
          ORDER BY sc.changed_at DESC, sc.id DESC LIMIT 1) AS stage_id,
        (SELECT sc.value_cents FROM stage_change sc
          WHERE sc.prospect_id = p.id AND sc.changed_at < :t
          ORDER BY sc.changed_at DESC, sc.id DESC LIMIT 1) AS sc_value,
        COALESCE(
            (SELECT COALESCE({json_text("e.payload", _BEFORE_MONTH, dialect)}, '')
               FROM change_event e
              WHERE e.prospect_id = p.id AND e.category = 'edit' AND e.at >= :t
                AND {json_has("e.payload", _BEFORE_MONTH, dialect)}
              ORDER BY e.at, e.id LIMIT 1),
            COALESCE(p.expected_month, '')) AS month,
        COALESCE(
            (SELECT {json_text("e.payload", _BEFORE_OWNER, dialect)}
               FROM change_event e
              WHERE e.prospect_id = p.id AND e.category = 'edit' AND e.at >= :t
                AND {json_text("e.payload", _BEFORE_OWNER, dialect)} IS NOT NULL
              ORDER BY e.at, e.id LIMIT 1),
            p.owner) AS owner,
        contrib.n AS n, contrib.c AS c, contrib.tv AS tv
    FROM prospect p LEFT JOIN contrib ON contrib.pid = p.id
    WHERE p.created_at < :t
)
"""


@cache
def _state_sql(dialect: str) -> str:
    """The replay's query (see `states_before`), in `dialect`'s SQL."""
    return (
        _at_t_sql(dialect)
        + f"""
SELECT a.owner, a.month, a.stage_id,
       SUM(CASE WHEN a.n IS NOT NULL THEN a.c
                WHEN {counts_sql("s.kind")} AND (a.deleted_at IS NULL OR a.deleted_at >= :t) THEN 1 ELSE 0 END),
       SUM(CASE WHEN a.n IS NOT NULL THEN a.tv
                WHEN {counts_sql("s.kind")} AND (a.deleted_at IS NULL OR a.deleted_at >= :t) THEN a.sc_value ELSE 0 END)
FROM at_t a JOIN stage s ON s.id = a.stage_id
GROUP BY a.owner, a.month, a.stage_id
"""
    )


@cache
def _prospects_sql(dialect: str) -> str:
    """One row per prospect that existed just before :t: its owner, expected month, stage and value
    then (0 when it did not count: deleted, or created lost)."""
    return (
        _at_t_sql(dialect)
        + f"""
SELECT a.owner, a.month, a.stage_id,
       CASE WHEN a.n IS NOT NULL THEN a.tv
            WHEN {counts_sql("s.kind")} AND (a.deleted_at IS NULL OR a.deleted_at >= :t) THEN a.sc_value ELSE 0 END
FROM at_t a JOIN stage s ON s.id = a.stage_id
"""
    )


def probabilities_before(conn: Connection, moment: datetime) -> dict[int, tuple[int, str]]:
    """Each stage's (probability_bp, kind) just before `moment`, replayed from the journal."""
    stages = {
        sid: (bp, kind)
        for sid, bp, kind in conn.execute(select(pk(Stage.id), col(Stage.probability_bp), col(Stage.kind)))
    }
    rows = conn.execute(
        select(col(ChangeEvent.stage_id), col(ChangeEvent.payload))
        .where(
            col(ChangeEvent.category) == "prob",
            col(ChangeEvent.prospect_id).is_(None),
            col(ChangeEvent.stage_id).is_not(None),
            col(ChangeEvent.at) >= moment,
        )
        .order_by(col(ChangeEvent.at), col(ChangeEvent.id))
    )
    seen: set[int] = set()
    for sid, payload in rows:
        if sid is None or sid in seen or sid not in stages:  # None: excluded by the query already
            continue
        seen.add(sid)
        before = json.loads(payload or "{}").get("before")
        if isinstance(before, int):
            stages[sid] = (before, stages[sid][1])
    return stages


def states_before(conn: Connection, moment: datetime) -> tuple[State, State]:
    """`state_before` and its won part (the prospects on a won stage at `moment`), in one replay:
    a snapshot keeps the won part apart so that any KPI period can be read from it."""
    probs = probabilities_before(conn, moment)
    acc: dict[tuple[str, str | None], Kpi] = {}
    won: dict[tuple[str, str | None], Kpi] = {}
    for owner, month, stage_id, count, tv in fetch_all(conn, _state_sql(conn.dialect.name), {"t": moment}):
        bp, kind = probs.get(stage_id, (0, LOST))
        tv = int(tv or 0)
        part = Kpi(int(count or 0), tv, ev_micros(tv, kind, bp))
        key = (owner or "", month or None)
        acc[key] = acc.get(key, Kpi()) + part
        if kind == WON:
            won[key] = won.get(key, Kpi()) + part
    return (
        {key: k for key, k in acc.items() if k != Kpi()},
        {key: k for key, k in won.items() if k != Kpi()},
    )


def prospects_before(conn: Connection, moment: datetime) -> list[tuple[str, str | None, int, str, int]]:
    """Each prospect as it stood just before `moment`, replayed like `state_before`: (owner,
    expected month, value in cents, stage kind, stage probability then). Those that did not count
    then (deleted, lost, not yet created) are left out."""
    probs = probabilities_before(conn, moment)
    out = []
    for owner, month, stage_id, tv in fetch_all(conn, _prospects_sql(conn.dialect.name), {"t": moment}):
        bp, kind = probs.get(stage_id, (0, LOST))
        if kind == LOST or not tv:
            continue
        out.append((owner or "", month or None, int(tv), kind, bp))
    return out


# ---------------------------------------------------------------- the checks


def moments_of(conn: Connection) -> list[datetime]:
    """Every moment the answer can change at (each journal entry, stage change, creation and
    deletion), a microsecond either side, and every midnight in between."""
    times: set[datetime] = set()
    for q in (
        select(col(ChangeEvent.at)),
        select(col(StageChange.changed_at)),
        select(col(Prospect.created_at)),
        select(col(Prospect.deleted_at)).where(col(Prospect.deleted_at).is_not(None)),
    ):
        times.update(t for (t,) in conn.execute(q))
    out = {t + timedelta(microseconds=d) for t in times for d in (-1, 0, 1)}
    day = min(times).replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= max(times) + timedelta(days=1):
        out.add(day)
        day += timedelta(days=1)
    return sorted(out)


def assert_replays_agree(engine, moments: list[datetime] | None = None) -> int:
    with engine.connect() as conn:
        moments = moments if moments is not None else moments_of(conn)
        states = history.Replay(conn).states(moments)
        people = history.prospects_at(conn, moments)
        for moment, state, mine in zip(moments, states, people):
            assert state == states_before(conn, moment), moment
            assert sorted(mine, key=repr) == sorted(prospects_before(conn, moment), key=repr), (
                moment
            )  # (its order was the database's)
        assert history.states_before(conn, moments[-1]) == states[-1]
        # `keep` leaves out, as they are made, what a caller would have left out after
        kept = history.prospects_at(conn, moments, lambda moment, owner, month: (moment.day + len(owner)) % 2 == 0)
        for moment, mine, some in zip(moments, people, kept):
            assert some == [row for row in mine if (moment.day + len(row[0])) % 2 == 0], moment
    return len(moments)


@pytest.fixture
def story(db_url):
    """Every kind of change, by two owners, plus what only another program writes: a prospect
    with no journal at all (later deleted), a probability change whose `before` is not a number,
    edits at the same moment, and changes before a prospect's recorded creation."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")

    def at(month: int, day: int, hour: int = 10) -> datetime:
        return datetime(2026, month, day, hour)

    s.add("A", "10000", "Suspect", month="2026-12", owner="ann", at=at(10, 5))
    s.add("B", "4000", "Enquiry", month="2027-01", owner="bob", at=at(10, 10))
    s.add("N", "700", "Enquiry", owner="bob", at=at(10, 10))  # no expected month
    s.move("A", "Quote sent", at=at(10, 20))
    s.edit("B", value="6000", at=at(10, 25))
    s.set_probability("Quote sent", "30", at=at(10, 28))
    s.edit("A", month="2027-01", at=at(11, 3))
    s.edit("A", owner="bob", month=None, at=at(11, 3))
    s.edit("B", owner="ann", at=at(11, 5))
    s.edit("N", month="2027-02", at=at(11, 5))
    s.move("B", "won", at=at(11, 10))
    s.add("C", "2000", "Suspect", month="2026-12", owner="bob", at=at(11, 12))
    s.delete("C", at=at(11, 14))
    s.move("A", "lost", at=at(11, 20))
    s.undo(at=at(11, 21))  # A back on Quote sent
    s.set_probability("Enquiry", "15", at=at(11, 22))
    s.set_probability("Enquiry", "20", at=at(11, 23))
    with eng.begin() as conn:  # written by something other than the store: no journal
        stages = dict(conn.execute(select(col(Stage.name), col(Stage.id))).all())
        pid = conn.execute(
            insert(table_of(Prospect)).values(
                name="Raw",
                value_cents=55_500,
                stage_id=stages["Enquiry"],
                expected_month="2027-03",
                owner="cat",
                created_at=at(10, 1),
                updated_at=at(10, 1),
                last_touch_at=at(10, 1),
                custom_json="{}",
            )
        ).inserted_primary_key[0]
        for when, stage, value in ((at(10, 2), "Enquiry", 55_500), (at(10, 30), "Quote sent", 66_600)):
            conn.execute(
                insert(table_of(StageChange)).values(
                    prospect_id=pid, changed_at=when, to_stage_id=stages[stage], value_cents=value, to_probability_bp=0
                )
            )
        conn.execute(update(table_of(Prospect)).where(table_of(Prospect).c.id == pid).values(deleted_at=at(11, 15)))
        conn.execute(
            insert(table_of(ChangeEvent)).values(
                at=at(11, 24),
                action="prob",
                category="prob",
                stage_id=stages["Suspect"],
                payload=json.dumps({"before": "ten", "after": 1500}),
            )
        )
    yield eng
    eng.dispose()


def test_the_one_pass_replay_is_the_sql_replay(story):
    assert assert_replays_agree(story) > 100


def test_the_crm_import_replays_the_same_both_ways(tmp_path):
    # SQLite only: the SQL replay takes seconds a moment on PostgreSQL (the story above runs there)
    engine = open_db(f"sqlite:///{tmp_path / 'crm.db'}")
    plan = plan_import(engine, CRM / "sales_pipeline.csv", crm_options(), who="tester")
    commit_import(engine, plan, who="tester")
    # quarter starts over the file's dates (the KPI history reads one at each month start), and today
    with engine.connect() as conn:
        first = conn.scalar(select(func.min(col(ChangeEvent.at))))
        last = conn.scalar(select(func.max(col(ChangeEvent.at))))
    assert first is not None and last is not None
    moments = [datetime(y, m, 1) for y in range(first.year, last.year + 2) for m in (1, 4, 7, 10)]
    moments = [m for m in moments if first - timedelta(days=31) <= m <= last + timedelta(days=31)]
    assert len(moments) > 4
    assert_replays_agree(engine, [*moments, datetime(2026, 11, 27)])
    engine.dispose()
