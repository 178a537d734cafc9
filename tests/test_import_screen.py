"""The import screen, driven by keys in the real app: preview, problems, commit, cancel."""

from __future__ import annotations

from pathlib import Path

from apphelpers import screen_text, settle
from textual.widgets import DataTable, Input

from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp
from evpipe.tui.screens.import_screen import ImportScreen

FIXTURES = Path(__file__).parent / "fixtures"


async def open_import(app, pilot, path: Path | str, options: str = "") -> ImportScreen:
    await settle(app, pilot)
    await pilot.press("i")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ImportScreen)
    screen.query_one("#import-file", Input).value = str(path)
    screen.query_one("#import-options", Input).value = options
    screen.query_one("#import-file", Input).focus()
    await pilot.press("enter")
    await settle(app, pilot)
    return screen


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_preview_then_commit_with_ctrl_s(engine):
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_import(app, pilot, FIXTURES / "rep_pipeline.csv")
        assert screen.plan is not None and screen.plan.can_commit
        columns = dict((r[0], r[1]) for r in cells(screen.query_one("#import-columns", DataTable)))
        assert columns["Boat"] == "custom field" and columns["Value"] == "value"
        rows = cells(screen.query_one("#import-rows", DataTable))
        names = [r[1] for r in rows]
        assert "[@click=app.quit]hi[/]" in names and "Acme [Beta] offsite" in names  # literal, not markup
        assert rows[0][4] == "12,000"
        text = screen_text(app)
        assert "Per stage: Suspect 1, Enquiry 1, Quote sent 1, Deposit paid 1, Won 1, Lost 1" in text
        assert "ctrl+s imports 6 new" in text
        assert kpis(engine).count == 0  # a preview writes nothing
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert not isinstance(app.screen, ImportScreen)
        assert kpis(engine).count == 5
        assert Store(engine).get("[@click=app.quit]hi[/]").company == "x [/"


async def test_problems_are_listed_and_nothing_is_written(engine, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        'name,value,stage,close date\nA,"12,5O0",Suspect,\nB,1,Negotiation,\nC,1,Won,31/02/2027\n', encoding="utf-8"
    )
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_import(app, pilot, bad)
        assert not screen.plan.can_commit
        problems = str(screen.query_one("#import-problems").render())
        assert "row 2: value: '12,5O0' is not an amount" in problems
        assert "row 3: stage 'Negotiation' is not on the ladder" in problems
        assert "row 4: close date: '31/02/2027' is not a date" in problems
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, ImportScreen)  # still here, nothing written
        assert kpis(engine).count == 0
        # the options field takes command-line options: map the stage, import the rest
        screen.query_one("#import-options", Input).value = "--stage-map 'Negotiation=Quote sent' --skip-bad"
        screen.query_one("#import-options", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.plan.can_commit and [r.name for r in screen.plan.records] == ["B"]
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert Store(engine).get("B").stage_name == "Quote sent"


async def test_not_a_spreadsheet_says_so(engine, tmp_path):
    png = tmp_path / "logo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_import(app, pilot, png)
        assert screen.plan is None
        assert "logo.png is a PNG image, not a spreadsheet" in screen_text(app)


async def test_escape_cancels_without_writing(engine):
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_import(app, pilot, FIXTURES / "rep_pipeline.csv")
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, ImportScreen)
        assert kpis(engine).count == 0


async def test_bad_options_are_explained(engine):
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_import(app, pilot, FIXTURES / "rep_pipeline.csv", "--bogus")
        assert screen.plan is None
        assert "No such option '--bogus'" in screen_text(app)


async def test_an_import_saved_whose_history_cannot_be_kept_ends_and_says_so(engine, monkeypatch):
    """The import is written; its KPI history then meets a held lock (or sums past 64 bits). The
    screen stayed "committing" for good, its worker failed silently: it now closes, the import
    stands, and a warning says the history was not brought up to date."""
    from apphelpers import RecordingApp

    from evpipe.models import importer
    from evpipe.models.errors import WriteLocked

    def held(_engine, _result=None):
        raise WriteLocked("another evpipe is writing to the database and did not finish in time", "locked")

    monkeypatch.setattr(importer, "after_import", held)
    app = RecordingApp(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_import(app, pilot, FIXTURES / "rep_pipeline.csv")
        await pilot.press("ctrl+s")
        for _ in range(200):
            if not isinstance(app.screen, ImportScreen):
                break
            await pilot.pause(0.05)
        assert not isinstance(app.screen, ImportScreen)
        assert kpis(engine).count == 5
        assert (
            "imported, but its KPI history was not brought up to date: another evpipe is writing to the "
            "database and did not finish in time"
        ) in app.notices


async def test_i_on_the_import_screen_keeps_it_and_what_was_typed(engine):
    """`i` with the preview focused pushed a second, empty import screen over the first: the path
    and its preview were hidden, and `escape` seemed to leave them behind."""
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_import(app, pilot, FIXTURES / "rep_pipeline.csv")
        await pilot.press("tab", "tab")
        assert not isinstance(app.focused, Input)
        await pilot.press("i")
        await settle(app, pilot)
        assert app.screen is screen
        assert [type(s) for s in app.screen_stack].count(ImportScreen) == 1
        assert screen.query_one("#import-file", Input).value == str(FIXTURES / "rep_pipeline.csv")
