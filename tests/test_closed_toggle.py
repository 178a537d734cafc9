"""Closed prospects out of the way: the pipeline list shows open prospects by default, `c` (in the
footer and in help) brings won and lost in and takes them out again, the status line says which,
the KPI header does not move, and a new prospect lands in its place in the current sort."""

from __future__ import annotations

from apphelpers import RecordingApp, screen_text, settle, shows, slow_moves

from evpipe.models.kpi import Scope, kpis
from evpipe.models.period import current_period
from evpipe.models.pipeline_view import SORTS, Ladder, PipelineView, Row, sort_rows
from evpipe.models.records import StageInfo
from evpipe.models.store import Store
from evpipe.tui.screens.pipeline import PipelineScreen


def shown_names(screen: PipelineScreen) -> list[str]:
    view = screen.view
    return [view.rows[i].name for i in view.lines if isinstance(i, int)]


async def loaded(app, pilot) -> PipelineScreen:
    await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
    screen = app.pipeline
    assert isinstance(screen, PipelineScreen)
    return screen


async def test_open_only_by_default_and_c_toggles_won_and_lost(worked_engine):
    app = RecordingApp(worked_engine)
    header = kpis(worked_engine, Scope(period=current_period(worked_engine)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        assert sorted(shown_names(screen)) == ["A", "B", "C"]
        text = await shows(app, pilot, "3 shown", "open only")
        assert "c Closed" in text  # in the footer at 80 columns (won and lost in or out)
        texts = dict(screen.header.texts)
        assert screen.kpi == header

        await pilot.press("c")
        text = await shows(app, pilot, "5 shown", "with won and lost")
        assert sorted(shown_names(screen)) == ["A", "B", "C", "D", "E"]
        # open first, then won, then lost
        assert shown_names(screen)[-2:] == ["D", "E"]
        assert screen.kpi == header and screen.header.texts == texts  # the header: the KPI period, as before

        await pilot.press("c")
        await shows(app, pilot, "3 shown", "open only")
        assert sorted(shown_names(screen)) == ["A", "B", "C"]
        assert screen.header.texts == texts


async def test_c_is_in_the_help(worked_engine):
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "Show won and lost too / open only" in text


async def test_a_prospect_won_on_the_list_stays_in_view_until_the_list_is_laid_out_again(worked_engine):
    store = Store(worked_engine, who="tester")
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        assert screen.table.go_to(store.get("A").id)
        await pilot.press("w")
        await settle(pilot, rounds=8, until=lambda a: store.get("A").stage_kind == "won")
        await settle(pilot)
        assert "A" in shown_names(screen)  # seen won, where it was: `u` is at hand
        assert screen.table.current_row.name == "A"
        await pilot.press("c", "c")  # laid out again: out of the way
        await settle(pilot)
        assert "A" not in shown_names(screen)


async def test_a_new_prospect_lands_in_its_place_in_the_sort(store, engine):
    for name, month in (("Alpha", "2026-12"), ("Charlie", "2027-02"), ("Echo", "2027-04")):
        store.add(name, "1000", "Enquiry", month=month)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        assert shown_names(screen) == ["Alpha", "Charlie", "Echo"]
        # saved the way the add form saves (through the app's saver)
        screen._save(lambda: app.store.add("Delta", "9000", "Enquiry", month="2027-03"))
        await settle(pilot, rounds=8, until=lambda a: "Delta" in shown_names(screen))
        assert shown_names(screen) == ["Alpha", "Charlie", "Delta", "Echo"]
        assert screen.table.current_row.name == "Delta"  # the cursor goes to it
        # sorted by value: a new one goes where its value puts it
        await pilot.press("s", "s")
        await settle(pilot, until=lambda a: screen.view.sort == "value")
        assert shown_names(screen) == ["Delta", "Alpha", "Charlie", "Echo"]
        screen._save(lambda: app.store.add("Bravo", "5000", "Enquiry", month="2027-01"))
        await settle(pilot, rounds=8, until=lambda a: "Bravo" in shown_names(screen))
        assert shown_names(screen) == ["Delta", "Bravo", "Alpha", "Charlie", "Echo"]
        # grouped by month: inside its month, in order
        await pilot.press("m")
        screen._save(lambda: app.store.add("Aardvark", "1", "Enquiry", month="2027-03"))
        await settle(pilot, rounds=8, until=lambda a: "Aardvark" in shown_names(screen))
        names = shown_names(screen)
        assert names.index("Aardvark") == names.index("Delta") + 1  # March: Delta (9,000) then it


def test_every_sort_puts_a_new_row_where_a_full_sort_would():
    stages = [StageInfo(1, "Enquiry", 1, 1000, "open", 14), StageInfo(2, "Won", 2, 10000, "won", 0)]
    ladder = Ladder.of(stages)
    rows = [
        Row(
            i,
            f"n{(i * 7) % 11}",
            "",
            1 + (i % 3 == 0),
            1000 * ((i * 5) % 9),
            f"2027-0{1 + i % 5}",
            None,
            "me",
            "2026-11-01",
            1_700_000_000 + (i * 13) % 17,
            1,
        )
        for i in range(1, 30)
    ]
    for mode, _label in SORTS:
        view = PipelineView(ladder, sort=mode, closed=True)
        view.load(rows[:-1])
        view.put(rows[-1])
        everything = list(rows)
        sort_rows(everything, mode, ladder)
        assert list(view.lines) == [r.id for r in everything], mode


async def test_a_burst_of_back_on_a_won_prospect_reopens_it_then_moves_it_back(engine, monkeypatch):
    """`<<<` on a won prospect: the first reopens it (to the rung it was won from, which only the
    database knows), the next two move it back twice. The next keys were sent on the version the
    row showed before the reopen, and refused as a change by somebody else (the rep's own reopen)."""
    s = Store(engine, who="tester")
    s.add("Open one", "1000", "Enquiry")
    pid = s.add("Won one", "5000", "Date held").prospect.id
    s.move(pid, "won")
    slow_moves(monkeypatch)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.press("c")
        await shows(app, pilot, "with won and lost")
        await pilot.press("end")
        await settle(pilot)
        assert screen.table.current_id == pid
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign")
        await settle(pilot, until=lambda a: not screen._pending)
        await settle(pilot)
        assert Store(engine, who="tester").get(pid).stage_name == "Enquiry", app.notices
        assert not [n for n in app.notices if "changed by someone else" in n], app.notices
        assert "Enquiry" in screen_text(app)
