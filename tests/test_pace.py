"""Pace (issue 16, point 2): each stage's usual time before moving on, learnt from the stage history,
and the one definition of slow (the list's ~, the prospect page, focus, `evpipe pace`)."""

from __future__ import annotations

import json
import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from evpipe.models import clock
from evpipe.models.errors import DomainError
from evpipe.models.focus import focus
from evpipe.models.pace import MIN_STAYS, load_pace, nearest_rank
from evpipe.models.pipeline_view import Ladder, PipelineView, load_ladder, load_rows
from evpipe.models.store import Store
from evpipe.tui.cli import main
from tests.conftest import down_and_up

NOW = datetime(2026, 11, 27, 10, 0)


def _quote_history(store: Store, n: int, *, day0: datetime = datetime(2026, 6, 1, 9)) -> list[int]:
    """`n` prospects that each spent i + 1 days on Quote sent before moving on (so the stays are
    1, 2, ..., n days)."""
    ids = []
    for i in range(n):
        start = day0 + timedelta(days=2 * i)
        p = store.add(f"done {i}", "1000", "Quote sent", month="2026-12", at=start).prospect
        store.move(p.id, "next", at=start + timedelta(days=i + 1))
        ids.append(p.id)
    return ids


def independent_stays(engine, stage_name: str) -> list[float]:
    """Stays on a stage straight from the stage history, in days (another way to compute them)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT sc.prospect_id, sc.changed_at, s.name FROM stage_change sc JOIN stage s "
                "ON s.id = sc.to_stage_id ORDER BY sc.prospect_id, sc.changed_at, sc.id"
            )
        ).all()
    out = []
    for a, b in zip(rows, rows[1:]):
        if a[0] == b[0] and a[2] == stage_name:
            t0 = datetime.fromisoformat(str(a[1]))
            t1 = datetime.fromisoformat(str(b[1]))
            out.append((t1 - t0).total_seconds() / 86400)
    return out


def test_medians_match_the_stage_history_and_slow_is_past_p75(engine):
    s = Store(engine, who="tester")
    _quote_history(s, 12)
    # now on Quote sent: one for 20 days (past p75 = 9 days), one for 3 days
    slow = s.add("Slow one", "5000", "Quote sent", month="2027-01", at=NOW - timedelta(days=20)).prospect
    fresh = s.add("Fresh one", "5000", "Quote sent", month="2027-01", at=NOW - timedelta(days=3)).prospect
    pace = load_pace(engine, now=NOW)
    quote = next(st for st in pace.stages.values() if st.name == "Quote sent")
    stays = independent_stays(engine, "Quote sent")
    assert quote.n == len(stays) == 12
    assert quote.median_days == statistics.median(stays) == 6.5
    assert quote.p75_days == 9  # the 9th of 12 stays
    assert pace.slow(slow.id, slow.stage_id, None) and not pace.slow(fresh.id, fresh.stage_id, None)
    assert pace.words(slow.id, slow.stage_id) == "20 days on Quote sent; usually 6, slow past 9"
    # the list's ~ mark is the same rule
    stages, archived = load_ladder(engine)
    ladder = Ladder.of(stages, extra=archived)
    view = PipelineView(ladder)
    view.load(load_rows(engine, "month", ladder)[0])
    view.pace = pace
    assert view.is_stale(view.rows[slow.id]) and not view.is_stale(view.rows[fresh.id])
    # just moved (the pace was read before): not slow on its new stage
    other = next(sid for sid in pace.stages if sid != slow.stage_id)
    assert pace.seconds_on_stage(slow.id, other) == 0
    # focus ranks it with its reason and gain
    items = {i.id: i for i in focus(engine, limit=50)}
    assert items[slow.id].group == "stale"
    assert items[slow.id].reason == "slow: 20 days on Quote sent; usually 6, slow past 9"
    assert items[fresh.id].group == "gain"


def test_below_ten_stays_the_stale_days_apply(engine):
    s = Store(engine, who="tester")
    _quote_history(s, MIN_STAYS - 1)
    idle = s.add("Idle", "5000", "Quote sent", at=NOW - timedelta(days=30)).prospect  # Quote sent allows 14 (default)
    busy = s.add("Busy", "5000", "Quote sent", at=NOW - timedelta(days=30)).prospect
    s.log_activity(busy.id, "call", "still keen", when=NOW - timedelta(days=2), at=NOW - timedelta(days=2))
    pace = load_pace(engine, now=NOW)
    quote = next(st for st in pace.stages.values() if st.name == "Quote sent")
    assert quote.n == MIN_STAYS - 1 and not quote.learnt
    assert pace.slow(idle.id, idle.stage_id, "2026-10-28")
    assert not pace.slow(busy.id, busy.stage_id, "2026-11-25")
    items = {i.id: i for i in focus(engine, limit=50)}
    assert items[idle.id].group == "stale" and items[idle.id].reason.startswith("stale for")
    assert items[busy.id].group == "gain"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=40))
def test_nearest_rank_p75(xs):
    xs = sorted(xs)
    p = nearest_rank(xs, 75)
    assert sum(1 for x in xs if x <= p) * 4 >= 3 * len(xs)
    assert all(sum(1 for x in xs if x <= smaller) * 4 < 3 * len(xs) for smaller in xs if smaller < p)


def test_pace_command(engine, db_path):
    s = Store(engine, who="tester")
    _quote_history(s, 12)
    s.add("Slow one", "5000", "Quote sent", at=NOW - timedelta(days=20))
    r = CliRunner().invoke(main, ["--db", str(db_path), "pace", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    quote = next(x for x in data["stages"] if x["stage"] == "Quote sent")
    assert (quote["n"], quote["median_days"], quote["p75_days"], quote["learnt"]) == (12, 6.5, 9.0, True)
    # the twelve moved on to Date held in June and sit there untouched (too few stays: stale days)
    assert {x["name"]: x["stage"] for x in data["slow"]} == {
        "Slow one": "Quote sent",
        **{f"done {i}": "Date held" for i in range(12)},
    }
    r = CliRunner().invoke(main, ["--db", str(db_path), "pace"])
    assert "Slow one: 20 days on Quote sent; usually 6, slow past 9" in r.stdout


async def test_slow_on_the_list_and_the_prospect_page(engine):
    from apphelpers import RecordingApp, settle, shows

    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.screens.prospect_page import ProspectPage

    s = Store(engine, who="tester")
    _quote_history(s, 12)
    slow = s.add("Slow one", "5000", "Quote sent", month="2026-12", at=NOW - timedelta(days=20)).prospect
    s.add("Fresh one", "5000", "Quote sent", month="2026-12", at=NOW - timedelta(days=3))

    class Page(RecordingApp):
        def on_mount(self) -> None:
            self.push_screen(ProspectPage(slow.id))

    app = Page(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        text = await shows(app, pilot, "20 days on Quote sent; usually 6")
        assert "~ slow: 20 days on Quote sent; usually 6," in text and "slow past 9" in text, text

    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for _ in range(200):
            if app.screen.view.pace is not None:
                break
            await pilot.pause(0.05)
        await settle(pilot)
        lines = (await shows(app, pilot, "Slow one", "Fresh one")).splitlines()
        slow_line = next(line for line in lines if "Slow one" in line)
        fresh_line = next(line for line in lines if "Fresh one" in line)
        assert slow_line.lstrip("│ ").startswith("~") and not fresh_line.lstrip("│ ").startswith("~")


@pytest.mark.both_databases
def test_an_undone_move_leaves_the_prospect_on_its_stage_since_it_entered_it(engine):
    """Undo of a move puts the prospect back as it was: on its stage since it entered it (not since
    the undo), last touched when it was before the move, and the stage history's stays as if it
    never left (neither the undone move nor the undo ends a stay: the next real move's stay on the
    stage runs from when the prospect entered it)."""
    s = Store(engine, who="tester")
    _quote_history(s, 12)  # Quote sent learns its pace (12 stays)
    quote, held = s.stage("Quote sent").id, s.stage("Date held").id
    entered = NOW - timedelta(days=20)
    p = s.add("Slow one", "5000", "Quote sent", month="2026-12", at=entered).prospect
    before = load_pace(engine, now=NOW)
    s.move(p.id, "next", at=NOW - timedelta(days=2))
    s.undo(at=NOW - timedelta(days=1))
    back = s.get(p.id)
    assert back.stage_id == quote and back.last_touch_at == entered
    pace = load_pace(engine, now=NOW)
    assert pace.entered.get(p.id) == (quote, int(entered.replace(tzinfo=UTC).timestamp()))
    assert pace.seconds_on_stage(p.id, quote) == 20 * 86400 and pace.slow(p.id, quote, back.last_touch_at.isoformat())
    assert [(x.n, x.median_seconds, x.p75_seconds) for x in pace.stages.values()] == [
        (x.n, x.median_seconds, x.p75_seconds) for x in before.stages.values()
    ]
    assert "Slow one" in {line.split(":")[0] for line in pace.slow_prospects()}
    s.move(p.id, "next", at=NOW)  # now it moves on: its stay on Quote sent is the 20 days
    with engine.connect() as conn:
        stays = conn.execute(
            text("SELECT stay_seconds FROM stage_change WHERE prospect_id = :p AND from_stage_id = :q ORDER BY id"),
            {"p": p.id, "q": quote},
        ).all()
    assert [r[0] for r in stays] == [None, 20 * 86400]  # the undone move's, then the real one's
    assert load_pace(engine, now=NOW).entered.get(p.id) == (held, int(NOW.replace(tzinfo=UTC).timestamp()))


@pytest.mark.both_databases
def test_undoing_a_stage_s_removal_keeps_its_prospects_time_on_it(engine):
    """A stage removed, its prospects moved to another, and the removal undone: they are back on it
    since they entered it (not since the undo), last touched when they were, and neither the
    removal's move nor the move back is a stay (journal `undone_move`). One moved on since, and
    back, is moved back by an ordinary move."""
    s = Store(engine, who="tester")
    held, quote = s.stage("Date held").id, s.stage("Quote sent").id
    entered = NOW - timedelta(days=20)
    kept = s.add("Kept", "5000", "Date held", at=entered).prospect
    again = s.add("Moved again", "5000", "Date held", at=entered).prospect
    s.remove_stage("Date held", move_to="Quote sent", at=NOW - timedelta(days=3))
    sam = Store(engine, who="sam")
    sam.move(again.id, "next", at=NOW - timedelta(days=2))
    sam.move(again.id, "Quote sent", at=NOW - timedelta(days=2, hours=-1))
    s.undo(at=NOW - timedelta(days=1))
    back = s.get(kept.id)
    assert back.stage_id == held and back.last_touch_at == entered
    pace = load_pace(engine, now=NOW)
    assert pace.entered.get(kept.id) == (held, int(entered.replace(tzinfo=UTC).timestamp()))
    assert pace.entered.get(again.id) == (held, int((NOW - timedelta(days=1)).replace(tzinfo=UTC).timestamp()))
    with engine.connect() as conn:
        stays = conn.execute(
            text("SELECT from_stage_id, stay_seconds FROM stage_change WHERE prospect_id = :p ORDER BY id"),
            {"p": kept.id},
        ).all()
    assert [tuple(r) for r in stays] == [(None, None), (held, None), (quote, None)]


def test_evpipe_undo_of_a_move_keeps_the_time_on_the_stage(engine, db_path):
    s = Store(engine, who="tester")
    _quote_history(s, 12)
    s.add("Slow one", "5000", "Quote sent", at=NOW - timedelta(days=20))
    for args in (["move", "Slow one", "next"], ["undo"], ["pace"]):
        r = CliRunner().invoke(main, ["--db", str(db_path), *args])
        assert r.exit_code == 0, r.output
    assert "Slow one: 20 days on Quote sent; usually 6, slow past 9" in r.stdout


def _write(path, text_: str):
    path.write_text(text_, encoding="utf-8")
    return path


def assert_pace_is_the_history(engine, *, guesses: bool) -> None:
    """Each open stage's n, median and p75, as kept while the changes were written, and when each
    live open prospect entered its stage, are the ones worked out from the whole history row by row
    (the stays of a guessed row left out; a stay is on the stage its change left)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT sc.prospect_id, sc.changed_at, sc.to_stage_id, sc.inferred, sc.from_stage_id, fs.kind "
                "FROM stage_change sc LEFT JOIN stage fs ON fs.id = sc.from_stage_id "
                "ORDER BY sc.prospect_id, sc.changed_at, sc.id"
            )
        ).all()
        live_open = {
            int(i): int(sid)
            for i, sid in conn.execute(
                text(
                    "SELECT p.id, p.stage_id FROM prospect p JOIN stage s ON s.id = p.stage_id "
                    "WHERE p.deleted_at IS NULL AND s.kind = 'open'"
                )
            )
        }
    stays: dict[int, list[int]] = {}
    entered = {}
    for a, b in zip(rows, [*rows[1:], None]):
        t0 = datetime.fromisoformat(str(a[1]))
        if b is None or b[0] != a[0]:
            if a[0] in live_open:
                entered[a[0]] = (live_open[a[0]], int(t0.replace(tzinfo=UTC).timestamp()))
        elif b[5] == "open" and not a[3] and not b[3]:  # on the stage it left
            stays.setdefault(b[4], []).append(max(0, int((datetime.fromisoformat(str(b[1])) - t0).total_seconds())))
    pace = load_pace(engine, now=NOW)
    for sid, stage in pace.stages.items():
        mine = sorted(stays.get(sid, []))
        assert stage.n == len(mine), stage.name
        if mine:
            assert stage.median_seconds == statistics.median(mine), stage.name
            assert stage.p75_seconds == mine[max(1, -(-75 * len(mine) // 100)) - 1], stage.name
    assert sum(len(v) for v in stays.values()) > 20 and any(r[3] for r in rows) == guesses
    assert len(pace.entered) == len(entered) == len(live_open)
    for pid, entry in entered.items():
        assert pace.entered.get(pid) == entry
    assert pace.entered.get(10**9) is None


@pytest.mark.both_databases
def test_stays_and_entries_from_a_random_history(engine, tmp_path):
    """A history from every writer: the store's adds and random moves, an import's won and lost rows
    (their open stage the importer's guess) and open ones, a re-import that moves some, and the
    store moving imported ones again. Each open stage's n, median and p75, kept as the changes were
    written, and when each live open prospect entered its stage, are the ones worked out from the
    whole history row by row afterwards (the stays of a guessed row left out; a stay is on the stage
    its change left, which is not the one the change before went to when a change is dated into
    the history)."""
    from evpipe.models.importer import commit_import, plan_import

    rng = random.Random(3)
    s = Store(engine, who="tester")
    moves = ["next", "next", "back", "won", "lost", "reopen"]

    def wander(pid: int, at: datetime, steps: int) -> None:
        for _ in range(steps):
            at += timedelta(hours=rng.randint(0, 300))
            try:
                s.move(pid, rng.choice(moves), at=at)
            except DomainError:
                pass

    for n in range(30):
        at = datetime(2026, 6, 1, 9) + timedelta(hours=rng.randint(0, 2000))
        wander(s.add(f"p{n}", "1000", rng.choice(["Suspect", "Enquiry"]), at=at).prospect.id, at, rng.randint(0, 5))
    stages = ["Suspect", "Enquiry", "Quote sent", "Won", "Lost"]
    first = [(i, rng.choice(stages)) for i in range(1, 21)]
    body = "".join(f"{i},imported {i},1000,{st},2026-05-{i:02d}\n" for i, st in first)
    csv = _write(tmp_path / "deals.csv", "id,name,value,stage,created\n" + body)
    commit_import(engine, plan_import(engine, csv, who="tester"), who="tester")
    again = "".join(f"{i},imported {i},1000,{rng.choice(stages)},2026-05-{i:02d}\n" for i, _ in first)
    csv = _write(tmp_path / "deals.csv", "id,name,value,stage,created\n" + again)
    commit_import(engine, plan_import(engine, csv, who="tester"), who="tester")
    with engine.connect() as conn:
        imported = [int(i) for (i,) in conn.execute(text("SELECT id FROM prospect WHERE name LIKE 'imported %'"))]
    for pid in imported:
        wander(pid, clock.now(), rng.randint(0, 3))  # after the import's moves
    # and some by hand with a moment before the prospect's latest change (a date given with --at)
    for pid in rng.sample(imported, 5):
        wander(pid, datetime(2026, 5, 25), 1)
    assert_pace_is_the_history(engine, guesses=True)


@pytest.mark.both_databases
def test_a_database_from_before_the_stays_gets_them_on_upgrade(engine, tmp_path):
    """Revision 0008 works out the stay of every change already recorded, by the journal's rule,
    and when each prospect entered its stage: taken back to 0007 (neither) and upgraded again, each
    change has the stay it was written with and each prospect the moment the journal kept."""
    from evpipe.models.importer import commit_import, plan_import

    s = Store(engine, who="tester")
    _quote_history(s, 12)
    csv = _write(tmp_path / "deals.csv", "id,name,value,stage\n1,A,1000,Won\n2,B,1000,Lost\n3,C,1000,Enquiry\n")
    commit_import(engine, plan_import(engine, csv, who="tester"), who="tester")
    s.move("C", "next")
    s.move("A", "reopen")  # from a won row the importer guessed the start of: no stay
    query = text("SELECT id, stay_seconds FROM stage_change ORDER BY id")
    entered = text("SELECT id, stage_entered_at FROM prospect ORDER BY id")
    with engine.connect() as conn:
        written = conn.execute(query).all()
        kept = conn.execute(entered).all()
    assert all(at is not None for _, at in kept) and len(kept) == 15
    assert sum(stay is not None for _, stay in written) == 13 and len(written) == 31
    down_and_up(engine, "0007")
    with engine.connect() as conn:
        assert conn.execute(query).all() == written
        assert conn.execute(entered).all() == kept
    quote = next(st for st in load_pace(engine, now=NOW).stages.values() if st.name == "Quote sent")
    assert (quote.n, quote.median_days, quote.p75_days) == (12, 6.5, 9)


def test_the_demo_history_keeps_its_stays(demo_engine):
    """The demo's generated past goes through the journal's bulk writer: its stays and the
    moments its prospects entered their stages are the history's."""
    assert_pace_is_the_history(demo_engine, guesses=False)


def test_entries_widen_for_numbers_too_big_and_keep_every_one() -> None:
    """Entries keep 4-byte ids and moments and 2-byte stage ids until one does not fit; then the
    chunk being added is added again to wider columns, nothing lost or doubled."""
    from evpipe.models.pace import Entries

    entries = Entries()
    entries.extend([(1, 3, 1_700_000_000), (2, 4, None), (5, 4, 1_700_000_100)])
    assert (entries.ids.typecode, entries.stage.typecode, entries.at.typecode) == ("i", "H", "i")
    late = 2**40  # a moment long past 2038
    entries.extend([(7, 3, 1_700_000_200), (2**33, 70_000, late), (2**34, 5, -(2**35))])
    assert len(entries) == 5 and entries.at.typecode == "q"
    assert [entries.get(p) for p in (1, 2, 5, 7, 2**33, 2**34)] == [
        (3, 1_700_000_000),
        None,
        (4, 1_700_000_100),
        (3, 1_700_000_200),
        (70_000, late),
        (5, -(2**35)),
    ]


def test_the_stale_filter_the_board_and_the_list_mark_the_same_prospects(demo_engine):
    """On the demo the list marked Kiwi Kids `~` (slow by its stage's pace) while the `stale`
    filter, `evpipe list --filter stale` and the board marked Harbour Events and Meridian Law
    (idle past the stale days): three rules for one mark. They are the list's now, on learnt
    stages and on the others."""
    from evpipe.models.board import BoardView
    from evpipe.models.filters import parse_filter
    from evpipe.tui.cli.prospects import filtered_ids

    engine = demo_engine
    stages, archived = load_ladder(engine)
    ladder = Ladder.of(stages, extra=archived)
    today = clock.today()
    pace = load_pace(engine, with_prospects=False)
    assert any(s.learnt for s in pace.stages.values()) and any(
        not s.learnt and s.kind == "open" for s in pace.stages.values()
    )
    rows, order = load_rows(engine, "month", ladder)
    view = PipelineView(ladder, today=today)
    view.load(rows)
    view.pace = pace
    marked = {pid for pid in view.rows if view.is_stale(view.rows[pid])}
    assert marked  # (the demo has slow prospects)
    wanted = parse_filter("stale", stages, today).with_pace(pace)
    assert set(wanted.select(rows, ladder, today)) == marked
    assert {pid for pid in view.rows if wanted.holds(view.rows[pid], ladder, "", today)} == marked
    board = BoardView(stages, ladder, rows, order, today=today, pace=pace)
    assert {pid for pid in view.rows if board.mark(view.rows[pid]) == "~"} == marked - {
        pid for pid in view.rows if view.is_overdue(view.rows[pid])
    }
    assert filtered_ids(engine, "stale") == marked


async def test_the_app_s_stale_filter_shows_the_rows_it_marks(demo_engine):
    from apphelpers import RecordingApp, settle

    app = RecordingApp(demo_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.view.pace is not None)
        view = app.pipeline.view
        marked = {pid for pid in view.rows if view.is_stale(view.rows[pid])}
        await pilot.press("slash", *"stale", "enter")
        await settle(pilot, until=lambda a: a.pipeline.filter_text == "stale")
        await settle(pilot)
        shown = {i for i in view.lines if isinstance(i, int)}
        assert marked and shown == marked
