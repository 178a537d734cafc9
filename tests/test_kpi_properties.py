"""Property tests: the SQL KPI engine equals a plain Python reference, and 0 <= EV <= TV."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from evpipe.models import open_db
from evpipe.models.db import writer
from evpipe.models.kpi import Scope, kpis, kpis_by
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent, Prospect, Stage, StageChange

STAGES = ["Suspect", "Enquiry", "Quote sent", "Date held", "Deposit paid", "Won", "Lost"]
OWNERS = ["sam", "priya", "mere"]
MONTHS = [None, "2026-11", "2026-12", "2027-01", "2027-02", "2027-06"]

prospects = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=99_999_999_999),  # cents, up to ~1e9
        st.sampled_from(STAGES),
        st.sampled_from(OWNERS),
        st.sampled_from(MONTHS),
    ),
    max_size=25,
)
probabilities = st.lists(st.integers(min_value=0, max_value=10_000), min_size=6, max_size=6)


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory):
    eng = open_db(f"sqlite:///{tmp_path_factory.mktemp('prop')}/p.db")
    yield eng
    eng.dispose()


def reset(engine, bps: list[int]) -> None:
    with writer(engine).begin() as conn:
        conn.execute(delete(StageChange))
        conn.execute(delete(ChangeEvent))
        conn.execute(delete(Prospect))
        for name, bp in zip(STAGES[:6], bps):
            conn.execute(update(Stage).where(Stage.name == name).values(probability_bp=bp))


def reference(rows, bps, scope: Scope) -> tuple[int, Decimal, Decimal]:
    p = dict(zip(STAGES, [Decimal(b) / 10_000 for b in bps] + [Decimal(0)]))
    count, tv, ev = 0, Decimal(0), Decimal(0)
    for cents, stage, owner, month in rows:
        if stage == "Lost":
            continue
        if scope.owner is not None and owner != scope.owner:
            continue
        if scope.month_from and (month is None or month < scope.month_from):
            continue
        if scope.month_to and (month is None or month > scope.month_to):
            continue
        value = Decimal(cents) / 100
        count += 1
        tv += value
        ev += value * p[stage]
    return count, tv, ev.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=prospects,
    bps=probabilities,
    owner=st.sampled_from([None] + OWNERS),
    window=st.sampled_from([(None, None), ("2026-12", None), (None, "2027-01"), ("2026-12", "2027-02")]),
)
def test_sql_kpis_equal_python_reference(shared_engine, rows, bps, owner, window):
    reset(shared_engine, bps)
    store = Store(shared_engine, who="prop")
    for i, (cents, stage, who, month) in enumerate(rows):
        store.add(f"P{i}", Decimal(cents) / 100, stage, owner=who, month=month)
    scope = Scope(owner=owner, month_from=window[0], month_to=window[1])
    k = kpis(shared_engine, scope)
    count, tv, ev = reference(rows, bps, scope)
    assert k.count == count
    assert k.tv == tv
    assert k.ev == ev
    assert 0 <= k.ev <= k.tv
    if k.tv_cents:
        assert 0 <= k.ev_tv <= 1
    else:
        assert k.ev_tv is None
    # The breakdowns add up to the whole, in every dimension.
    for by in ("month", "stage", "owner"):
        parts = kpis_by(shared_engine, by, scope)
        assert sum(x.tv_cents for _, x in parts) == k.tv_cents
        assert sum(x.ev_micros for _, x in parts) == k.ev_micros
        assert sum(x.count for _, x in parts) == k.count


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=prospects,
    bps=probabilities,
    moves=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=24),
            st.sampled_from(["next", "back", "won", "lost", "reopen", "delete", "undo", "value"]),
        ),
        max_size=15,
    ),
)
def test_journal_deltas_always_sum_to_the_kpis(shared_engine, rows, bps, moves):
    """Every change records its exact effect: the journal's running total is always the live KPI."""
    from evpipe.models.errors import DomainError

    reset(shared_engine, bps)
    store = Store(shared_engine, who="prop")
    ids = [store.add(f"P{i}", Decimal(c) / 100, s, owner=o, month=m).prospect.id for i, (c, s, o, m) in enumerate(rows)]
    for index, action in moves:
        try:
            if action == "undo":
                store.undo()
            elif not ids:
                continue
            elif action == "delete":
                store.delete(ids[index % len(ids)])
            elif action == "value":
                store.edit(ids[index % len(ids)], value=str(index * 1000 + 1))
            else:
                store.move(ids[index % len(ids)], action)
        except DomainError:
            pass  # e.g. advancing a lost prospect, or acting on a deleted one: refused, nothing written
    k = kpis(shared_engine)
    from sqlalchemy import func, select

    with shared_engine.connect() as conn:
        c, tv, ev = conn.execute(
            select(func.sum(ChangeEvent.d_count), func.sum(ChangeEvent.d_tv_cents), func.sum(ChangeEvent.d_ev_micros))
        ).one()
    assert (c or 0, tv or 0, ev or 0) == (k.count, k.tv_cents, k.ev_micros)
    assert 0 <= k.ev_micros <= k.tv_cents * 10_000
