"""KPI history: reconstruction from the journal, month-start snapshots, backfill."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from evpipe.models import clock, history, open_db
from evpipe.models.history import kpis_before, kpis_by_journal, month_start_key
from evpipe.models.kpi import Kpi, Scope, kpis
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from evpipe.models.tables import KpiSnapshot, KpiSnapshotMonth, table_of
from tests.conftest import WORKED_LADDER
from tests.test_snapshot_deltas import kept

pytestmark = pytest.mark.both_databases


def C(amount: int) -> int:
    """Whole currency units to cents."""
    return amount * 100


def M(amount: float) -> int:
    """Currency units to EV micros."""
    return round(amount * 1_000_000)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour)


@pytest.fixture
def story(db_url):
    """Two months of one rep's and another's work, with every kind of change (DOMAIN.md's ladder)."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    s.add("A", "10000", "Suspect", month="2026-12", owner="ann", at=at(10, 5))
    s.add("B", "4000", "Enquiry", month="2027-01", owner="bob", at=at(10, 10))
    s.move("A", "Quote sent", at=at(10, 20))
    s.edit("B", value="6000", at=at(10, 25))
    s.set_probability("Quote sent", "30", at=at(10, 28))
    s.edit("A", month="2027-01", at=at(11, 3))
    s.edit("B", owner="ann", at=at(11, 5))
    s.move("B", "won", at=at(11, 10))
    s.add("C", "2000", "Suspect", month="2026-12", owner="bob", at=at(11, 12))
    s.delete("C", at=at(11, 14))
    s.move("A", "lost", at=at(11, 20))
    yield eng
    eng.dispose()


def test_reconstruction_by_hand(story):
    # Before 25 Oct: A 10,000 on Quote sent at 25%, B 4,000 on Enquiry at 10%.
    assert kpis_before(story, at(10, 25, 0)) == Kpi(2, C(14_000), M(2_500 + 400))
    # Before 28 Oct: B's value is 6,000 now.
    assert kpis_before(story, at(10, 28, 0)) == Kpi(2, C(16_000), M(2_500 + 600))
    # Before 1 Nov: Quote sent is 30%.
    assert kpis_before(story, at(11, 1, 0)) == Kpi(2, C(16_000), M(3_000 + 600))
    # Before 14 Nov: B won (100%), C on Suspect, A still on Quote sent.
    assert kpis_before(story, at(11, 14, 0)) == Kpi(3, C(18_000), M(3_000 + 6_000 + 100))
    # Now: A lost, C deleted, B won.
    assert kpis_before(story, at(11, 27, 11)) == kpis(story) == Kpi(1, C(6_000), M(6_000))
    # Before anything: nothing.
    assert kpis_before(story, at(10, 1)) == Kpi()


def test_reconstruction_by_owner_and_month_replays_edits(story):
    before_nov = at(11, 1, 0)
    # On 1 Nov A (ann) was expected in 2026-12 and B (bob) in 2027-01; both were edited later.
    assert kpis_before(story, before_nov, Scope(owner="ann")) == Kpi(1, C(10_000), M(3_000))
    assert kpis_before(story, before_nov, Scope(owner="bob")) == Kpi(1, C(6_000), M(600))
    assert kpis_before(story, before_nov, Scope(month_from="2026-12", month_to="2026-12")) == Kpi(
        1, C(10_000), M(3_000)
    )
    # By 13 Nov both belong to ann and A is expected in 2027-01.
    assert kpis_before(story, at(11, 13), Scope(owner="ann")) == Kpi(2, C(16_000), M(9_000))
    assert kpis_before(story, at(11, 13), Scope(month_from="2027-01", month_to="2027-01")) == Kpi(
        2, C(16_000), M(9_000)
    )


def test_reconstruction_agrees_with_the_journal_at_every_moment(story):
    s = Store(story, who="tester")
    s.undo(at=at(11, 21))  # A back from lost
    s.set_probability("Won", "95", at=at(11, 22))
    for month, day in [
        (10, 1),
        (10, 5),
        (10, 6),
        (10, 21),
        (10, 26),
        (10, 29),
        (11, 4),
        (11, 6),
        (11, 11),
        (11, 13),
        (11, 15),
        (11, 21),
        (11, 22),
        (11, 23),
    ]:
        moment = at(month, day, 0)
        assert kpis_before(story, moment) == kpis_by_journal(story, moment), moment


def test_demo_reconstruction_agrees_with_the_journal(demo_engine):
    for day in range(1, 28):
        moment = datetime(2026, 11, day)
        assert kpis_before(demo_engine, moment) == kpis_by_journal(demo_engine, moment)


def _snapshot(engine, day: date, scope: str = "all"):
    with engine.connect() as conn:
        snap = conn.execute(select(KpiSnapshot).where(KpiSnapshot.scope == scope, KpiSnapshot.taken_on == day)).first()
        if snap is None:
            return None, {}
        months = {
            m: (c, tv, ev)
            for m, c, tv, ev in conn.execute(
                select(
                    KpiSnapshotMonth.month,
                    KpiSnapshotMonth.count,
                    KpiSnapshotMonth.tv_cents,
                    KpiSnapshotMonth.ev_micros,
                ).where(KpiSnapshotMonth.snapshot_id == (snap.months_of or snap.id))
            )
        }
        return Kpi(snap.count, snap.tv_cents, snap.ev_micros), months


def test_recording_in_a_new_month_first_records_the_month_start(story):
    history.record_snapshot(story)  # 27 Nov
    total, months = _snapshot(story, date(2026, 10, 31))
    assert total == Kpi(2, C(16_000), M(3_600))
    assert months == {"2026-12": (1, C(10_000), M(3_000)), "2027-01": (1, C(6_000), M(600))}
    ann, ann_months = _snapshot(story, date(2026, 10, 31), "owner:ann")
    assert ann == Kpi(1, C(10_000), M(3_000)) and ann_months == {"2026-12": (1, C(10_000), M(3_000))}
    assert _snapshot(story, date(2026, 11, 27))[0] == kpis(story)
    # No month before October had data: no snapshot for it.
    assert _snapshot(story, date(2026, 9, 30))[0] is None


def test_month_start_snapshot_survives_changes_on_the_first(story):
    s = Store(story, who="tester")
    clock.set_fixed(datetime(2026, 12, 1, 9))
    try:
        history.record_snapshot(story)  # reconstructs 31 Oct and 30 Nov, records 1 Dec
        nov30 = _snapshot(story, date(2026, 11, 30))
        assert nov30[0] == Kpi(1, C(6_000), M(6_000))
        s.add("D", "1000", "Enquiry", month="2026-12", at=datetime(2026, 12, 1, 9, 30))
        clock.set_fixed(datetime(2026, 12, 1, 15))
        history.record_snapshot(story)
        assert _snapshot(story, date(2026, 11, 30)) == nov30  # the month start stays as it was
        assert _snapshot(story, date(2026, 12, 1))[0] == Kpi(2, C(7_000), M(6_100))  # the day's latest reading
        with story.connect() as conn:
            frozen = history.frozen_forecasts(conn, ["2026-11", "2026-12", "2027-01"])
        assert frozen["2026-12"] == Kpi()  # nothing was expected in December at its start
        assert frozen["2027-01"] is None  # January has not started
        assert frozen["2026-11"] == Kpi()  # at 1 Nov, A was expected in December and B in January
    finally:
        clock.set_fixed(None)


def test_month_start_key():
    assert month_start_key("2026-11") == date(2026, 10, 31)
    assert month_start_key("2026-03") == date(2026, 2, 28)
    assert month_start_key("2027-01") == date(2026, 12, 31)


def test_backfill_weekly_and_month_starts(story):
    written = history.backfill(story)
    days = [s.taken_on for s in history.snapshots(story)]
    assert days == [
        date(2026, 10, 9),
        date(2026, 10, 16),
        date(2026, 10, 23),
        date(2026, 10, 30),
        date(2026, 10, 31),
        date(2026, 11, 6),
        date(2026, 11, 13),
        date(2026, 11, 20),
    ]
    assert written == 8
    by_day = {s.taken_on: s.kpi for s in history.snapshots(story)}
    assert by_day[date(2026, 11, 13)] == Kpi(3, C(18_000), M(9_100))  # C was deleted on the 14th
    assert by_day[date(2026, 10, 23)] == Kpi(2, C(14_000), M(2_900))
    assert by_day[date(2026, 11, 20)] == Kpi(1, C(6_000), M(6_000))
    # Per owner: by 13 Nov B was ann's.
    ann = {s.taken_on: s.kpi for s in history.snapshots(story, Scope(owner="ann"))}
    assert ann[date(2026, 11, 13)] == Kpi(2, C(16_000), M(9_000))
    # Running it again writes nothing and keeps what exists.
    assert history.backfill(story) == 0


def test_backfill_keeps_existing_snapshots(story):
    history.record_snapshot(story, at=datetime(2026, 11, 20, 18))  # a real reading that day
    with story.connect() as conn:
        before = conn.scalar(
            select(KpiSnapshot.taken_at).where(KpiSnapshot.taken_on == date(2026, 11, 20), KpiSnapshot.scope == "all")
        )
    history.backfill(story)
    with story.connect() as conn:
        after = conn.scalar(
            select(KpiSnapshot.taken_at).where(KpiSnapshot.taken_on == date(2026, 11, 20), KpiSnapshot.scope == "all")
        )
        n = conn.scalar(select(func.count()).select_from(KpiSnapshot).where(KpiSnapshot.scope == "all"))
    assert before == after == datetime(2026, 11, 20, 18)
    assert n == 8


def test_backfill_of_an_empty_database_writes_nothing(engine):
    assert history.backfill(engine) == 0
    assert history.snapshots(engine) == []


def test_seeded_demo_has_its_history(tmp_path):
    from click.testing import CliRunner

    from evpipe.tui.cli import main

    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["--db", str(db), "seed"])
    assert result.exit_code == 0, result.output
    eng = open_db(f"sqlite:///{db}")
    snaps = history.snapshots(eng)
    assert len(snaps) >= 10
    assert snaps[-1].taken_on == date(2026, 11, 27) and snaps[-1].kpi == kpis(eng)
    # Each backfilled point is the journal's own figure for that day.
    for snap in snaps[:-1]:
        assert snap.kpi == kpis_by_journal(eng, history.end_of_day(snap.taken_on)), snap.taken_on
    assert snaps[0].kpi.tv_cents < snaps[-1].kpi.tv_cents
    eng.dispose()


# ---------------------------------------------------------------- any history at all

from datetime import timedelta  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from evpipe.models.errors import DomainError  # noqa: E402

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["add", "next", "back", "won", "lost", "reopen", "value", "month", "owner", "prob", "delete", "undo"]
        ),
        st.integers(0, 5),  # which prospect
        st.integers(1, 90),  # a value, a month offset or a percentage
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_history_replays_exactly_and_every_bridge_adds_up(tmp_path_factory, ops):
    """Whatever happened, the pipeline reconstructed for any past moment is what the live figures
    were at that moment (everyone's, each owner's, each month's), and the journal agrees."""
    from evpipe.models.kpi import kpis_by
    from evpipe.models.review import review

    db = tmp_path_factory.mktemp("replay") / "p.db"
    eng = open_db(f"sqlite:///{db}", seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    moment = datetime(2026, 9, 1, 9)
    ids: list[int] = []
    opens = ["Suspect", "Enquiry", "Quote sent", "Deposit paid"]
    seen = []  # (moment, everyone, per owner, per month) as they were live
    for op, which, n in ops:
        moment += timedelta(hours=37)
        try:
            if op == "add" or not ids:
                ids.append(
                    s.add(
                        f"p{len(ids)}",
                        str(n * 100),
                        opens[n % 4],
                        month=f"2027-{n % 12 + 1:02d}",
                        owner=["ann", "bob"][n % 2],
                        at=moment,
                    ).prospect.id
                )
            else:
                pid = ids[which % len(ids)]
                if op in ("next", "back", "won", "lost", "reopen"):
                    s.move(pid, op, at=moment)
                elif op == "value":
                    s.edit(pid, value=str(n * 250), at=moment)
                elif op == "month":  # sometimes no expected month at all
                    s.edit(pid, month=None if n % 5 == 0 else f"2027-{n % 12 + 1:02d}", at=moment)
                elif op == "owner":
                    s.edit(pid, owner=["ann", "bob", "cat"][n % 3], at=moment)
                elif op == "prob":  # the stage of a prospect, so that the change moves EV
                    p = s.get(pid, include_deleted=True)
                    s.set_probability(p.stage_name if p.stage_kind == "open" else opens[which % 4], str(n), at=moment)
                elif op == "delete":
                    s.delete(pid, at=moment)
                elif op == "undo":
                    s.undo(at=moment)
        except DomainError:
            pass  # refused (already there, nothing to undo...): nothing was written
        seen.append(
            (
                moment,
                kpis(eng),
                {o: kpis(eng, Scope(owner=o)) for o in ("ann", "bob", "cat")},
                {m: k for m, k in kpis_by(eng, "month") if k != Kpi()},
            )
        )
    for when, everyone, owners, months in seen:
        t = when + timedelta(seconds=1)
        assert kpis_before(eng, t) == everyone == kpis_by_journal(eng, t), when
        for owner, k in owners.items():
            assert kpis_before(eng, t, Scope(owner=owner)) == k, (when, owner)
        with eng.connect() as conn:
            assert dict(history.by_month(history.state_before(conn, t))) == months, when
    clock.set_fixed(moment + timedelta(hours=1))
    try:
        r = review(eng, (moment - timedelta(days=10)).date())
        assert sum(x.d_ev_micros for x in r.terms) == r.end.ev_micros - r.start.ev_micros
        assert sum(x.d_tv_cents for x in r.terms) == r.end.tv_cents - r.start.tv_cents
        assert all(x.category != "unexplained" for x in r.terms)
    finally:
        clock.set_fixed(None)
    eng.dispose()


def test_a_month_given_later_was_no_month_before(story):
    s = Store(story, who="tester")
    s.add("Vague", "1000", "Suspect", at=at(11, 21))  # no expected month yet
    s.edit("Vague", month="2027-03", at=at(11, 23))
    with story.connect() as conn:
        months = dict(history.by_month(history.state_before(conn, at(11, 22))))
    assert months[None] == Kpi(1, C(1_000), M(50))
    assert "2027-03" not in months
    assert kpis_before(story, at(11, 22), Scope(month_from="2027-03", month_to="2027-03")) == Kpi()


def _months_of(engine, day: date, scope: str) -> dict[str, tuple[int, ...]]:
    """The month rows (the six figures of each) of one scope's snapshot of `day`."""
    return kept(engine, day)[scope][1]


def test_backfilled_snapshots_that_repeat_a_set_of_months_each_get_it_whole(story):
    # Two owners whose prospects are alike have the same months; after 20 Nov nothing changes, so
    # every later week repeats the same sets: the write keeps each different set once, under the
    # first snapshot that has it, and the others name that one (history._month_sets). Each
    # snapshot must still read its own months, the won part included, as a replay of that day
    # alone gives them.
    s = Store(story, who="tester")
    for owner in ("dan", "eve"):
        s.add(f"{owner}'s", "3000", "Enquiry", month="2027-02", owner=owner, at=at(10, 7))
    assert history.backfill(story, today=date(2027, 2, 20)) == 22  # 19 weeks and 3 month ends
    with story.connect() as conn:
        scopes = sorted(set(conn.scalars(select(KpiSnapshot.scope))))
        days = sorted(set(conn.scalars(select(KpiSnapshot.taken_on))))
        n_months = conn.scalar(select(func.count()).select_from(KpiSnapshotMonth))
    assert scopes == ["all", "owner:ann", "owner:bob", "owner:dan", "owner:eve"]
    assert days[0] == date(2026, 10, 10) and days[-1] == date(2027, 2, 13)
    every_row = 0
    held: dict[tuple, int] = {}  # each different set of months -> its rows
    for day in days:
        with story.connect() as conn:
            state, won = history.states_before(conn, history.end_of_day(day))
        for scope in scopes:
            owner = None if scope == "all" else scope.removeprefix("owner:")
            won_by_month = dict(history.by_month(won, owner))
            want = {
                month or history.NO_MONTH: (
                    k.count,
                    k.tv_cents,
                    k.ev_micros,
                    *(lambda w: (w.count, w.tv_cents, w.ev_micros))(won_by_month.get(month, Kpi())),
                )
                for month, k in history.by_month(state, owner)
            }
            if not want and owner is not None:
                continue  # an owner with nothing that day has no snapshot
            assert _months_of(story, day, scope) == want, (day, scope)
            every_row += len(want)
            held[tuple(sorted(want.items()))] = len(want)
    assert n_months == sum(held.values())  # each set once: none left over, none twice
    assert every_row == 118 and n_months == 24
    assert _months_of(story, date(2027, 2, 13), "owner:dan") == {"2027-02": (1, C(3_000), M(300), 0, 0, 0)}
    # The same engine writes again (the temporary tables were dropped with the first write).
    assert history.ensure_month_starts(story, at=datetime(2027, 3, 2)) == 1
    assert _months_of(story, date(2027, 2, 28), "owner:eve") == {"2027-02": (1, C(3_000), M(300), 0, 0, 0)}


def _every_reading(engine) -> dict[tuple[str, date], dict[str, tuple[int, ...]]]:
    """(scope, day) -> the month rows each snapshot reads, shared or its own."""
    with engine.connect() as conn:
        days = sorted(set(conn.scalars(select(KpiSnapshot.taken_on))))
    return {(scope, day): months for day in days for scope, (_, months) in kept(engine, day).items()}


def _shared(engine) -> list[tuple[date, int, date]]:
    """(the day of a snapshot that has another's months, its id, that other's day), for "all"."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(KpiSnapshot.taken_on, KpiSnapshot.id, KpiSnapshot.months_of, KpiSnapshot.scope)
        ).all()
    day_of = {sid: day for day, sid, _, _ in rows}
    return sorted((day, sid, day_of[of]) for day, sid, of, scope in rows if of is not None and scope == "all")


def test_a_snapshot_whose_months_are_shared_changes_alone(story):
    # Snapshots that share a set of months (the weeks after the last change) stay right when one of
    # them changes or goes: the day's reading forgotten, recounted, or kept by a change's delta.
    from evpipe.models.db import writer
    from evpipe.models.snapshot_deltas import forget_day

    history.backfill(story, today=date(2027, 2, 20))
    before = _every_reading(story)
    shared = _shared(story)
    assert len(shared) > 8
    holder_day = shared[0][2]  # the first with this set: it holds the rows for the later ones
    with writer(story).begin() as conn:
        forget_day(conn, holder_day)
    after = _every_reading(story)
    assert not any(day == holder_day for _, day in after)
    assert after == {key: months for key, months in before.items() if key[1] != holder_day}

    # a change on a day whose snapshot has another's months: that day's alone follow it
    day = shared[-1][0]
    clock.set_fixed(datetime.combine(day, datetime.min.time()).replace(hour=12))
    s = Store(story, who="tester")
    s.add("Late", "1000", "Enquiry", month="2027-03", owner="ann")
    now = _every_reading(story)
    assert now[("all", day)]["2027-03"][:3] == (1, C(1_000), M(100))
    assert now[("all", day)] == {**after[("all", day)], "2027-03": now[("all", day)]["2027-03"]}
    assert {k: v for k, v in now.items() if k[1] != day} == {k: v for k, v in after.items() if k[1] != day}
    assert now[("all", day)] == recount_of(story, day)

    # a recount of a day whose months later days share, then of one that has an earlier day's:
    # that day's reading alone is counted afresh (history._sharing finds both kinds in one look)
    for pick in (lambda shared: shared[0][2], lambda shared: shared[0][0]):
        day = pick(_shared(story))
        before = _every_reading(story)
        mine = recount_of(story, day)
        assert mine["2027-03"][:3] == (1, C(1_000), M(100))  # today's pipeline, "Late" in it
        now = _every_reading(story)
        assert now[("all", day)] == mine
        assert {k: v for k, v in now.items() if k[1] != day} == {k: v for k, v in before.items() if k[1] != day}


def _own_rows(engine, holder: str) -> dict[tuple[str, date], dict[str, tuple]]:
    """Every snapshot's month rows, joined through `holder` (SQL for the snapshot that has them)."""
    from evpipe.models.rawdb import as_day, fetch_all

    out: dict[tuple[str, date], dict[str, tuple]] = {}
    for scope, day, month, *figures in fetch_all(
        engine,
        "SELECT s.scope, s.taken_on, m.month, m.count, m.tv_cents, m.ev_micros, m.won_count FROM kpi_snapshot s "
        f"JOIN kpi_snapshot_month m ON m.snapshot_id = {holder}",
    ):
        out.setdefault((scope, as_day(day)), {})[month] = tuple(int(f) for f in figures)
    return out


def test_going_back_to_0010_gives_each_snapshot_its_own_months(story):
    # Migration 0011's downgrade copies each shared set of months to every snapshot that has it,
    # then drops the column in place (a batch copy of the table failed: month rows point at it).
    from alembic import command

    from evpipe.models.db import alembic_config, writer
    from evpipe.models.kpi import months_holder

    history.backfill(story, today=date(2027, 2, 20))
    before = _own_rows(story, months_holder("s"))
    assert len(_shared(story)) > 8
    with writer(story).begin() as conn:
        command.downgrade(alembic_config(conn), "0010")
    assert _own_rows(story, "s.id") == before
    with writer(story).begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert _own_rows(story, months_holder("s")) == before


def recount_of(engine, day: date) -> dict[str, tuple[int, ...]]:
    """Everyone's months of `day` counted afresh (`record_snapshot` replaces the reading)."""
    history.record_snapshot(engine, at=datetime.combine(day, datetime.min.time()).replace(hour=13))
    return kept(engine, day)["all"][1]


def test_a_snapshot_written_meanwhile_is_kept_and_the_others_get_their_own_months(story, monkeypatch):
    # Another evpipe records the first planned day's reading between the plan and the write: that
    # one is kept as it was written, and every other snapshot still gets its own set of months.
    s = Store(story, who="tester")
    s.add("dan's", "3000", "Enquiry", month="2027-02", owner="dan", at=at(10, 7))
    real_lock = history.lock_tables

    def meanwhile(conn, tables):
        real_lock(conn, tables)
        conn.execute(
            table_of(KpiSnapshot)
            .insert()
            .values(
                scope="all",
                taken_on=date(2026, 10, 10),
                taken_at=datetime(2026, 10, 10, 18),
                count=9,
                tv_cents=9,
                ev_micros=9,
            )
        )

    monkeypatch.setattr(history, "lock_tables", meanwhile)
    history.backfill(story, today=date(2026, 12, 5))
    monkeypatch.undo()
    assert _months_of(story, date(2026, 10, 10), "all") == {}  # the one written meanwhile, untouched
    for day in (date(2026, 10, 17), date(2026, 11, 14), date(2026, 11, 28)):
        with story.connect() as conn:
            state, won = history.states_before(conn, history.end_of_day(day))
        for scope, owner in (("all", None), ("owner:ann", "ann"), ("owner:dan", "dan")):
            want = {
                m or history.NO_MONTH: (k.count, k.tv_cents, k.ev_micros) for m, k in history.by_month(state, owner)
            }
            got = {m: v[:3] for m, v in _months_of(story, day, scope).items()}
            assert got == want, (day, scope)


def _replays(story) -> dict[tuple[date, str], tuple]:
    """Every (day, scope) reading of the month ends from 30 Nov, as a replay of the journal to the
    end of that day gives it: (count, TV, EV) and the months (scopes with nothing left out)."""
    out = {}
    for day in (date(2026, 11, 30), date(2026, 12, 31)):
        with story.connect() as conn:
            state, won = history.states_before(conn, history.end_of_day(day))
        for owner in (None, "ann", "bob"):
            won_by_month = dict(history.by_month(won, owner))
            months = {
                (month or history.NO_MONTH): (
                    k.count,
                    k.tv_cents,
                    k.ev_micros,
                    *(lambda w: (w.count, w.tv_cents, w.ev_micros))(won_by_month.get(month, Kpi())),
                )
                for month, k in history.by_month(state, owner)
            }
            total = kpis_before(story, history.end_of_day(day), Scope(owner=owner))
            out[(day, "all" if owner is None else f"owner:{owner}")] = (
                (total.count, total.tv_cents, total.ev_micros),
                months,
            )
    return out


def test_month_starts_after_a_quiet_time_are_the_last_reading_again(story, monkeypatch):
    """Nothing journalled since the newest reading: each month start since is that reading
    again, every scope's, its months shared, with no replay of the journal (which held 2 GB for
    a minute at a million prospects on the first change of a month). Something journalled since
    the reading: those month starts are replayed. Either way they read as a replay gives them."""
    history.record_snapshot(story, at=datetime(2026, 11, 20, 18))  # the day's reading, after its last change
    want = _replays(story)

    def no_replay(*_a, **_k):
        raise AssertionError("the journal was replayed")

    with monkeypatch.context() as m:
        m.setattr(history.Replay, "states", no_replay)
        assert history.ensure_month_starts(story, at=datetime(2027, 1, 3)) == 2
        assert history.ensure_month_starts(story, at=datetime(2027, 1, 3)) == 0  # (there already)
    for (day, scope), figures in want.items():
        if figures[1] or scope == "all":
            assert kept(story, day)[scope] == figures, (day, scope)
    with story.connect() as conn:
        shared = conn.scalars(
            select(KpiSnapshot.months_of).where(KpiSnapshot.taken_on == date(2026, 12, 31), KpiSnapshot.scope == "all")
        ).all()
    assert shared and shared[0] is not None  # no month rows written again

    # a change after the newest reading that no reading counted: replayed from the journal
    other = open_db(str(story.url.render_as_string(hide_password=False)), seed_ladder=False)
    with other.begin() as conn:
        conn.execute(KpiSnapshotMonth.__table__.delete())
        conn.execute(KpiSnapshot.__table__.delete())
    history.record_snapshot(story, at=datetime(2026, 11, 20, 18))
    Store(story, who="tester").edit("B", value="7000", at=datetime(2026, 11, 25, 9))
    replayed = []
    real = history.Replay.states
    monkeypatch.setattr(history.Replay, "states", lambda self, moments: replayed.append(moments) or real(self, moments))
    assert history.ensure_month_starts(story, at=datetime(2027, 1, 3)) == 2
    assert replayed
    for (day, scope), figures in _replays(story).items():
        if figures[1] or scope == "all":
            assert kept(story, day)[scope] == figures, (day, scope)


def test_a_recount_of_more_owners_than_one_sql_list_takes_writes_every_owners_reading(db_url, monkeypatch):
    """The day's recount writes every scope's reading in a few statements (`_write_snapshots`),
    its IN lists cut at `_IN_LIST` values (old SQLite builds take 999 parameters, and an import may
    name tens of thousands of owners): with lists of 3, seven owners and everyone's each get their
    reading and their months, and a second recount replaces them rather than adding."""
    monkeypatch.setattr(history, "_IN_LIST", 3)
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    owners = [f"rep{n}" for n in range(7)]
    for n, owner in enumerate(owners):
        s.add(f"P{n}", str(1000 * (n + 1)), "Suspect", month="2026-12", owner=owner, at=at(11, 20))
    for _ in range(2):
        history.record_snapshot(eng, at=at(11, 27, 11))
    day = date(2026, 11, 27)
    for n, owner in enumerate(owners):
        snap, months = _snapshot(eng, day, f"owner:{owner}")
        assert snap is not None and (snap.count, snap.tv_cents) == (1, C(1000 * (n + 1)))
        assert months == {"2026-12": (1, C(1000 * (n + 1)), M(50 * (n + 1)))}  # Suspect: 5%
    everyone, months = _snapshot(eng, day)
    assert months == {"2026-12": (7, C(28_000), M(1_400))}
    with eng.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(KpiSnapshot).where(KpiSnapshot.taken_on == day)) == 8
    eng.dispose()


def test_rebuilt_snapshots_go_to_sqlite_ready_for_the_driver():
    """A rebuilt history's snapshot rows are made column by column for the driver (models.db
    driver_columns), which takes them only when every column of the table is given: a column
    added to kpi_snapshot and left out here sent every import through dicts (the CRM sample's
    import 0.1 s slower)."""
    from datetime import date, datetime

    from sqlalchemy.dialects import sqlite

    from evpipe.models.history import _ready_snapshots

    planned = [(("all", date(2026, 11, 1)), ("all", date(2026, 11, 1), datetime(2026, 11, 1, 23, 59), 1, 2, 3), [])]
    rows = _ready_snapshots(sqlite.dialect(), planned, [0], 7)
    assert [type(r) for r in rows] == [tuple]
