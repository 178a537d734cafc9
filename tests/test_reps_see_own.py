"""Issue 11, point 5, in the app: a rep whom the owner lets see only their own prospects
(`evpipe members reps-see own`) sees only theirs on every screen (the pipeline list and its header,
the board, focus, forecast, trend, review, activity, a prospect's page), with a line saying the view
is limited by the owner's setting; the `/` filter and the `o` toggle cannot widen it, and live sync
does not bring another owner's prospects in. With `reps-see all` a rep sees everyone's, and an owner
always does. Also: the Sighting-in screen's `U` skips a refused undo, as the other screens' does."""

from __future__ import annotations

import time

import pytest
from apphelpers import RecordingApp, screen_text, settle
from sqlalchemy import text

from evpipe.models.focus import focus
from evpipe.models.forecast import forecast
from evpipe.models.kpi import Scope, kpis
from evpipe.models.members import add_member, set_reps_see
from evpipe.models.review import review
from evpipe.models.store import Store
from evpipe.models.visibility import OWN_ONLY_LINE, OWN_ONLY_SHORT
from evpipe.tui.screens.prospect_page import ProspectPage

WAIT = 15.0  # seconds a test waits for something to show (the machine may be loaded)
LINE = OWN_ONLY_LINE.removeprefix("your ")  # what a limited screen says: "prospects only (the owner's setting)"
SHORT = OWN_ONLY_SHORT.capitalize()  # the pipeline's and the board's status line: "Your prospects only"


@pytest.fixture
def team(engine):
    """boss (owner), sam and priya (reps); two prospects each, on open stages, with follow-ups;
    the owner lets reps see only their own. On PostgreSQL each member is a login role of the
    server (members are granted their role's privileges there): made first, as a superuser would."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for name in ("boss", "sam", "priya"):
                if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first() is None:
                    conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))
    add_member(engine, "boss", "boss", "owner")
    add_member(engine, "boss", "sam", "rep")
    add_member(engine, "boss", "priya", "rep")
    boss = Store(engine, who="boss")
    ids = {
        "Sam Alpha": boss.add("Sam Alpha", "1000", "Enquiry", owner="sam", month="2026-12").prospect.id,
        "Sam Beta": boss.add("Sam Beta", "3000", "Quote sent", owner="sam", month="2027-01").prospect.id,
        "Priya One": boss.add("Priya One", "5000", "Quote sent", owner="priya", month="2026-12").prospect.id,
        "Priya Two": boss.add("Priya Two", "7000", "Enquiry", owner="priya", month="2027-02").prospect.id,
    }
    boss.set_follow_up(ids["Sam Alpha"], "2026-11-20")  # overdue: both are in focus
    boss.set_follow_up(ids["Priya One"], "2026-11-20")
    set_reps_see(engine, "boss", "own")
    return engine, boss, ids


SAMS = {"Sam Alpha", "Sam Beta"}
PRIYAS = {"Priya One", "Priya Two"}


async def _until(pilot, condition, timeout: float = WAIT) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out; notices: {pilot.app.notices}"
        await pilot.pause(0.05)


async def _screen(app, pilot, key: str, ready) -> object:
    """Switch to screen `key` and wait until `ready(screen)` holds."""
    await pilot.press(key)
    await settle(pilot, until=lambda a: ready(a.screen))
    assert ready(app.screen), f"screen {key} not ready"
    return app.screen


def _names(app) -> set[str]:
    view = app.pipeline.view
    return {view.rows[i].name for i in view.rows}


@pytest.mark.both_databases
async def test_a_rep_limited_to_their_own_sees_only_theirs_on_every_screen(team):
    engine, boss, ids = team
    app = RecordingApp(engine, who="sam")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        page = app.pipeline
        assert app.scope_owner == "sam"
        # the pipeline list: sam's rows only, the header his KPIs, the status line says why
        assert _names(app) == SAMS
        theirs = Scope(owner="sam", period=page.period)
        assert page.kpi == page.kpi_all == kpis(engine, theirs)
        assert page.kpi_all != kpis(engine, Scope(period=page.period))  # not the team's figures
        text = screen_text(app)
        assert SHORT in text and "Sam Alpha" in text and "Priya" not in text
        # the `/` filter narrows within it and never past it
        await pilot.press("slash", *"owner:priya", "enter")
        await settle(pilot)
        assert len(page.view.lines) == 0 and "Priya" not in screen_text(app)
        await pilot.press("slash", "escape")
        await settle(pilot)
        # `o` (mine / everyone's) has nothing to widen: it says so
        await pilot.press("o")
        await settle(pilot)
        assert any(OWN_ONLY_LINE in n for n in app.notices)
        assert {page.view.rows[i].name for i in page.view.lines if isinstance(i, int)} == SAMS

        # the board: his cards, his KPIs
        board = await _screen(app, pilot, "8", lambda s: getattr(s, "view", None) is not None)
        assert {board.view.rows[i].name for i in board.view.rows} == SAMS
        assert board.kpi == kpis(engine, theirs)
        await _until(pilot, lambda: SHORT in screen_text(app))
        assert "Priya" not in screen_text(app)

        # focus: his prospects, his KPIs in the header
        f = await _screen(app, pilot, "2", lambda s: bool(getattr(s, "items", None)))
        assert {i.name for i in f.items} == {i.name for i in focus(engine, owner="sam", limit=100)} <= SAMS
        assert f.kpi == kpis(engine, theirs)
        await _until(pilot, lambda: LINE in screen_text(app))
        assert "Priya" not in screen_text(app)

        # forecast: his months
        fc = await _screen(app, pilot, "3", lambda s: getattr(s, "ranges", None) is not None)
        assert fc.fc.total == forecast(engine, owner="sam").total != forecast(engine).total
        assert fc.ranges.period.target_cents is None  # the team's targets are not weighed against his
        await _until(pilot, lambda: LINE in screen_text(app))

        # trend: his own history (recorded per owner)
        tr = await _screen(app, pilot, "4", lambda s: bool(getattr(s, "points", None)))
        assert tr.points[-1].kpi == kpis(engine, theirs)
        await _until(pilot, lambda: LINE in screen_text(app))

        # review: his prospects' KPIs, bridge and lists
        rv = await _screen(app, pilot, "6", lambda s: getattr(s, "review", None) is not None)
        assert rv.review.owner == "sam"
        assert rv.review.end == kpis(engine, Scope(owner="sam")) == review(engine, owner="sam").end
        names = {i.name for t in rv.review.terms for i in t.items} | {i.name for i in rv.review.overdue}
        assert names and names <= SAMS
        await _until(pilot, lambda: LINE in screen_text(app))
        assert "Priya" not in screen_text(app)

        # activity: changes to his prospects only
        act = await _screen(app, pilot, "9", lambda s: bool(getattr(s, "entries", None)))
        assert {e.prospect_owner for e in act.entries} == {"sam"}
        await _until(pilot, lambda: LINE in screen_text(app))
        assert "Priya" not in screen_text(app)

        # another owner's prospect page (opened by id) shows nothing of it
        app.push_screen(ProspectPage(ids["Priya One"]))
        await settle(pilot, until=lambda a: "Not one of your prospects" in screen_text(a))
        text = screen_text(app)
        assert "Not one of your prospects" in text and "Priya One" not in text and "5,000" not in text
        await pilot.press("escape")
        await settle(pilot)
        # his own opens as ever
        app.push_screen(ProspectPage(ids["Sam Beta"]))
        await settle(pilot, until=lambda a: "Sam Beta" in screen_text(a))
        assert "Sam Beta" in screen_text(app)


async def test_with_reps_see_all_a_rep_sees_everyones(team):
    engine, boss, _ids = team
    set_reps_see(engine, "boss", "all")
    app = RecordingApp(engine, who="sam")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        page = app.pipeline
        assert app.scope_owner is None
        assert _names(app) == SAMS | PRIYAS
        assert page.kpi_all == kpis(engine, Scope(period=page.period))
        text = screen_text(app)
        assert "Everyone's" in text and SHORT not in text
        f = await _screen(app, pilot, "2", lambda s: bool(getattr(s, "items", None)))
        assert {i.name for i in f.items} == {"Sam Alpha", "Priya One", "Sam Beta", "Priya Two"} & {
            i.name for i in focus(engine, limit=100)
        }
        assert "Priya One" in screen_text(app)


async def test_the_owner_always_sees_everyones(team):
    engine, boss, _ids = team  # reps see only their own; the owner is not a rep
    app = RecordingApp(engine, who="boss")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        assert app.scope_owner is None
        assert _names(app) == SAMS | PRIYAS
        assert app.pipeline.kpi_all == kpis(engine, Scope(period=app.pipeline.period))
        assert SHORT not in screen_text(app)
        board = await _screen(app, pilot, "8", lambda s: getattr(s, "view", None) is not None)
        assert {board.view.rows[i].name for i in board.view.rows} == SAMS | PRIYAS


async def test_live_sync_brings_no_other_owners_prospect_in(team):
    engine, boss, ids = team
    priya = Store(engine, who="priya")
    app = RecordingApp(engine, who="sam")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        page = app.pipeline
        # priya's changes to her own prospects, then one of boss's to sam's
        priya.edit(ids["Priya One"], value="9000")
        priya.move(ids["Priya Two"], "next")
        priya.add("Priya Three", "400", owner="priya")
        boss.edit(ids["Sam Beta"], value="3500")
        await _until(
            pilot,
            lambda: (
                page.view.rows.get(ids["Sam Beta"]) is not None
                and page.view.rows[ids["Sam Beta"]].value_cents == 350_000
            ),
        )
        await settle(pilot)
        assert _names(app) == SAMS  # nothing of priya's came in
        assert not any("Priya" in n for n in app.notices)  # nor was named
        assert page.kpi_all == kpis(engine, Scope(owner="sam", period=page.period))
        # a prospect handed to sam comes in; one taken from him leaves
        boss.edit(ids["Priya One"], owner="sam")
        boss.edit(ids["Sam Alpha"], owner="priya")
        await _until(pilot, lambda: ids["Priya One"] in page.view.rows and ids["Sam Alpha"] not in page.view.rows)
        await settle(pilot)
        assert _names(app) == {"Sam Beta", "Priya One"}
        await _until(pilot, lambda: page.kpi_all == kpis(engine, Scope(owner="sam", period=page.period)))
        assert "Sam Alpha" not in screen_text(app)


async def test_sighting_in_skips_a_refused_undo_with_shift_u(engine):
    tester, bob = Store(engine, who="tester"), Store(engine, who="bob")
    tester.set_probability("Enquiry", "15")  # undone by U (the refused one skipped)
    tester.set_probability("Quote sent", "45")
    bob.set_probability("Quote sent", "55")  # a colleague's change since: undo is refused
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot, until=lambda a: any("bob set Quote sent" in n for n in a.notices))
        assert tester.stage("Quote sent").probability_bp == 5500
        await pilot.press("U")
        await settle(pilot, until=lambda a: tester.stage("Enquiry").probability_bp == 1000)
        assert tester.stage("Enquiry").probability_bp == 1000  # the change before it, undone
        assert tester.stage("Quote sent").probability_bp == 5500  # bob's stands


def test_a_reps_review_adds_up_and_names_what_the_journal_keeps_for_the_team(team):
    engine, boss, ids = team
    from datetime import datetime

    from evpipe.models.review import NOT_SPLIT

    boss.move(ids["Sam Beta"], "next")
    boss.set_probability("Enquiry", "20")  # moves sam's EV; journalled for the whole pipeline
    boss.edit(ids["Priya Two"], owner="sam")  # handed to sam
    r = review(engine, datetime(2026, 11, 1), owner="sam")
    assert r.owner == "sam" and r.end == kpis(engine, Scope(owner="sam"))
    total = [sum(x) for x in zip(*((t.d_count, t.d_tv_cents, t.d_ev_micros) for t in r.terms))]
    assert total == [
        r.end.count - r.start.count,
        r.end.tv_cents - r.start.tv_cents,
        r.end.ev_micros - r.start.ev_micros,
    ]
    assert r.term(NOT_SPLIT) is not None and r.term("unexplained") is None
    assert {i.name for t in r.terms for i in t.items} <= SAMS | {"Priya Two"}
    assert {i.owner for i in r.focus + r.overdue} == {"sam"}


def test_the_view_of_one_owner_takes_in_no_other_owners_row():
    from evpipe.models.pipeline_view import Ladder, PipelineView, Row
    from evpipe.models.records import StageInfo

    ladder = Ladder.of([StageInfo(1, "Enquiry", 1, 1000, "open", 0)])

    def row(pid: int, owner: str) -> Row:
        return Row(pid, f"P{pid}", "", 1, 100, None, None, owner, "2026-11-27", 0, 1)

    view = PipelineView(ladder, scope="sam")
    view.load([row(1, "sam"), row(2, "priya")])
    assert list(view.rows) == [1] and list(view.lines) == [1]
    assert view.put(row(3, "priya")) is None and 3 not in view.rows
    view.matches = {1, 2, 3}  # a filter that would let everything through
    view.rebuild()
    assert list(view.lines) == [1]
    view.put(row(1, "priya"))  # handed away: it leaves
    assert 1 not in view.rows and len(view.lines) == 0


def test_the_cli_review_of_a_limited_rep(team, db_url, monkeypatch):
    import json

    from click.testing import CliRunner

    from evpipe.models import roles
    from evpipe.tui.cli import main as cli

    monkeypatch.setattr(roles, "login_name", lambda: "sam")
    monkeypatch.delenv("EVPIPE_USER", raising=False)
    runner = CliRunner()
    done = runner.invoke(cli, ["--db", db_url, "review", "--format", "json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["owner"] == "sam" and data["end"]["tv"] == "4000.00"
    html = runner.invoke(cli, ["--db", db_url, "review", "--format", "html"])
    assert html.exit_code == 1 and "Traceback" not in html.output
    assert html.output.startswith("evpipe: review --format html: the report covers the whole team")


async def test_the_stages_screen_shows_a_limited_rep_their_own_counts_and_refuses_at_the_key(team):
    """The Stages screen showed a rep limited to their own the team's count and value on every
    rung, and `p` asked for a probability and a confirmation (showing the team's prospects on it)
    before saying "only an owner can change the ladder"."""
    from evpipe.tui.screens.stages import StagesScreen

    engine, boss, ids = team
    app = RecordingApp(engine, who="sam")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        stages = await _screen(app, pilot, "7", lambda s: isinstance(s, StagesScreen) and bool(s.rows))
        counted = {r.stage.name: (r.count, r.value_cents) for r in stages.rows if r.count}
        assert counted == {"Enquiry": (1, 1000_00), "Quote sent": (1, 3000_00)}  # sam's, not the team's
        for key in ("p", "r", "s", "a", "P"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, StagesScreen), key  # no question asked
        assert "Only an owner can change the ladder; you are a rep." in app.notices
        assert "Only an owner can change the settings; you are a rep." in app.notices
