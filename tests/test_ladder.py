"""The ladder's rules (models.ladder), as properties: the Python and SQL forms agree, EV stays
within TV, the rungs step up and down consistently, and EV/TV reads one way."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from evpipe.models import ladder
from evpipe.models.ladder import KIND_ORDER, KIND_RANK, LOST, OPEN, WON

VALUE = st.integers(min_value=0, max_value=10**11)  # cents, up to a billion
BP = st.integers(min_value=0, max_value=10_000)
KIND = st.sampled_from(KIND_ORDER)


@dataclass(frozen=True)
class S:
    id: int
    position: int
    kind: str
    probability_bp: int


@st.composite
def ladders(draw):
    """A ladder: some open rungs (positions in any order, ids unique), one won and one lost stage."""
    n = draw(st.integers(min_value=0, max_value=8))
    ids = draw(st.lists(st.integers(min_value=1, max_value=10_000), min_size=n + 2, max_size=n + 2, unique=True))
    positions = draw(st.lists(st.integers(min_value=0, max_value=1000), min_size=n, max_size=n, unique=True))
    stages = [S(ids[i], positions[i], OPEN, draw(BP)) for i in range(n)]
    top = max(positions, default=0)
    stages += [S(ids[n], top + 1, WON, 10_000), S(ids[n + 1], top + 2, LOST, 0)]
    return draw(st.permutations(stages))


@st.composite
def prospects(draw):
    """(value, kind, probability) rows; a lost stage's probability is always 0."""
    rows = draw(st.lists(st.tuples(VALUE, KIND, BP), max_size=30))
    return [(v, k, 0 if k == LOST else bp) for v, k, bp in rows]


def _sql(rows, *expressions):
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE TABLE t (value INTEGER, kind TEXT, bp INTEGER)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        return con.execute(f"SELECT {', '.join(expressions)} FROM t ORDER BY rowid").fetchall()
    finally:
        con.close()


@given(prospects())
def test_ev_within_tv_and_the_ratio_between_0_and_1(rows):
    parts = [ladder.kpi_part(v, k, bp) for v, k, bp in rows]
    for (v, k, bp), (count, tv, ev) in zip(rows, parts):
        assert ev == ladder.ev_micros(v, k, bp)
        assert count == (1 if ladder.counts(k) else 0)
        assert 0 <= ev <= tv * 10_000
    tv = sum(p[1] for p in parts)
    ev = sum(p[2] for p in parts)
    r = ladder.ev_tv_ratio(ev, tv)
    if tv == 0:
        assert r is None and ladder.ev_tv_text(ev, tv) == "—"
    else:
        assert 0 <= r <= 1
        assert ladder.ev_tv_ratio(ev, tv, 4) == r.quantize(Decimal("0.0001"), rounding="ROUND_HALF_UP")


@given(prospects())
def test_the_sql_forms_agree_with_the_python_ones(rows):
    got = _sql(
        rows,
        ladder.ev_sql("value", "kind", "bp"),
        ladder.tv_sql("value", "kind"),
        ladder.count_sql("kind"),
        ladder.kind_rank_sql("kind"),
        f"CASE WHEN {ladder.counts_sql('kind')} THEN 1 ELSE 0 END",
    )
    for (v, k, bp), (ev, tv, count, rank, counts) in zip(rows, got):
        assert (count, tv, ev) == ladder.kpi_part(v, k, bp)
        assert rank == KIND_RANK[k]
        assert counts == ladder.counts(k)


@given(ladders(), prospects())
def test_the_gain_in_sql_agrees_with_the_python_one(stages, rows):
    nxt = {sid: s.probability_bp for sid, s in ladder.next_rungs(stages).items()}
    ids = [s.id for s in stages]
    placed = [(v, ids[i % len(ids)], bp) for i, (v, _, bp) in enumerate(rows)]
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE TABLE t (value INTEGER, sid INTEGER, bp INTEGER)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", placed)
        gain = ladder.gain_sql("value", "bp", ladder.next_probability_sql("sid", "bp", nxt))
        got = [g for (g,) in con.execute(f"SELECT {gain} FROM t ORDER BY rowid")]
    finally:
        con.close()
    assert got == [ladder.next_step_gain(v, bp, nxt.get(sid)) for v, sid, bp in placed]


@given(ladders())
def test_next_and_previous_rung_are_inverse_on_open_rungs(stages):
    opens = ladder.open_rungs(stages)
    won = ladder.won_rung(stages)
    assert [s.position for s in opens] == sorted(s.position for s in opens)
    for lower, higher in zip(opens, opens[1:]):
        assert ladder.next_rung(stages, lower.id) == higher
        assert ladder.previous_rung(stages, higher.id) == lower
    if opens:
        assert ladder.next_rung(stages, opens[-1].id) == won
        assert ladder.previous_rung(stages, opens[0].id) is None
    assert ladder.next_rungs(stages) == {s.id: ladder.next_rung(stages, s.id) for s in opens}
    for closed in (s for s in stages if s.kind != OPEN):
        assert ladder.next_rung(stages, closed.id) is None
        assert ladder.previous_rung(stages, closed.id) is None


@given(VALUE, BP, st.one_of(st.none(), BP))
def test_gain_is_value_times_the_step_in_probability(value, bp, next_bp):
    gain = ladder.next_step_gain(value, bp, next_bp)
    assert gain == (0 if next_bp is None else value * (next_bp - bp))
    assert ladder.ev_moved(value, None, bp) == ladder.ev_micros(value, OPEN, bp)


@given(
    st.integers(min_value=0, max_value=10**11).flatmap(
        lambda tv: st.tuples(st.integers(min_value=0, max_value=tv * 10_000), st.just(tv))
    )
)
def test_ev_tv_reads_as_a_percent_with_two_decimals(pair):
    ev, tv = pair
    text = ladder.ev_tv_text(ev, tv)
    if tv == 0:
        assert text == "—"
        return
    assert re.fullmatch(r"\d{1,3}\.\d\d%", text)
    r = ladder.ev_tv_ratio(ev, tv, 4)
    assert Decimal(text[:-1]) == r * 100
    assert ladder.format_ev_tv(ladder.ev_tv_ratio(ev, tv)) == text


def test_ev_tv_examples():
    assert ladder.format_ev_tv(Decimal("0.375")) == "37.50%"
    assert ladder.format_ev_tv(Decimal("0.37505")) == "37.51%"
    assert ladder.format_ev_tv(None) == "—"
    assert ladder.ev_tv_text(3_750_000, 1000) == "37.50%"
