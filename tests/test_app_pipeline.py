"""The pipeline screen, driven by its keys against a temporary database: every binding is pressed
as a rep would, and both the database (through models) and the screen are checked."""

from __future__ import annotations

from datetime import date

import pytest
from apphelpers import HeldRead, settle, slow_moves, until
from apphelpers import notices_shown as notices
from sqlalchemy import select
from sqlmodel import Session
from textual.screen import Screen

import evpipe.tui.app
from evpipe.models.history import snapshots
from evpipe.models.kpi import Kpi, Scope, kpis
from evpipe.models.pipeline_view import Ladder, PipelineView, Row, load_rows, ordered_ids
from evpipe.models.store import Store
from evpipe.models.tables import KpiSnapshot, Prospect
from evpipe.models.values import format_money
from evpipe.tui.app import EvpipeApp
from evpipe.tui.messages import DataChanged
from evpipe.tui.screens.pipeline import PipelineScreen
from evpipe.tui.widgets.kpi_header import ratio_text
from evpipe.tui.widgets.prospect_table import ProspectTable
from evpipe.tui.widgets.tab_bar import TabBar

HOSTILE = ["Acme [Beta]", "[/x]", "x [/", "[@click=app.quit]hi[/]"]


@pytest.fixture
def pipeline(engine):
    """Six prospects on the default ladder (Suspect 5, Enquiry 10, Quote sent 25, Date held 50,
    Deposit paid 80, Won 100, Lost 0), two owners, the four hostile names."""
    me = Store(engine, who="tester")
    sam = Store(engine, who="sam")
    me.add(
        "Harbour Events",
        "6000",
        "Quote sent",
        month="2026-12",
        company="Harbour Events Ltd",
        contact_name="Aroha Williams",
        phone="+64 9 555 0142",
        email="aroha@harbourevents.co.nz",
        notes="Christmas party for 120 staff",
        follow_up="2026-11-20",
    )
    me.add("[/x]", "2000", "Enquiry", month="2027-01")
    me.add("x [/", "3000", "Date held", month="2027-01", company="Slash Co")
    me.add("[@click=app.quit]hi[/]", "4000", "Deposit paid", month="2027-02")
    sam.add("Acme [Beta]", "1000", "Suspect", company="Beta_Labs 100%")
    sam.add("Kauri Software", "14500", "Quote sent", month="2026-12", contact_name="Mere Kauri")
    return engine


def screen_lines(app) -> list[str]:
    return ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]


def screen_text(app) -> str:
    return "\n".join(screen_lines(app))


def page(app) -> PipelineScreen:
    assert isinstance(app.pipeline, PipelineScreen)
    return app.pipeline


def table(app) -> ProspectTable:
    return page(app).table


async def go_to(pilot, name: str) -> None:
    t = table(pilot.app)
    pid = next(r.id for r in t.view.rows.values() if r.name == name)
    assert t.go_to(pid)
    await settle(pilot)


def prospect(engine, name: str):
    return Store(engine, who="tester").get(name)


def money_ev(k: Kpi) -> str:
    return format_money(k.ev_micros, micros=True)


# ---------------------------------------------------------------- loading and the header


@pytest.mark.both_databases
async def test_header_shows_the_kpis_of_models(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        k = kpis(pipeline)
        text = screen_text(app)
        assert f"TV {format_money(k.tv_cents)}" in text
        assert f"EV {money_ev(k)}" in text
        assert f"EV/TV {ratio_text(k)}" in text
        # all six prospects listed, open first by expected month; the hostile names literally
        lines = screen_lines(app)
        names = [line[2:24].rstrip() for line in lines[4:10]]
        assert names[0] == "Harbour Events"
        assert names[1] == "Kauri Software"
        for name in HOSTILE:
            assert name in text
        # the cursor prospect's overdue mark, and why, then its contact details: those that fit
        # whole at 80 columns (the email does not)
        assert lines[4].startswith("! Harbour Events")
        assert lines[21].strip() == "! follow-up due 20 Nov · Aroha Williams · +64 9 555 0142"
        await pilot.resize_terminal(120, 24)
        await pilot.pause(0.2)
        assert "! follow-up due 20 Nov · Aroha Williams · +64 9 555 0142 · aroha@harbourevents.co.nz" in (
            screen_text(app)
        )


@pytest.mark.both_databases
async def test_advance_raises_ev_by_value_times_step_and_saves(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = kpis(pipeline)
        await go_to(pilot, "Harbour Events")
        await pilot.press("greater_than_sign")
        # the row and the header change at once, before the save has finished
        assert table(app).current_row.stage_id == Store(pipeline).stage("Date held").id
        shown = page(app).kpi_all
        assert shown.ev_micros - before.ev_micros == 6000_00 * (5000 - 2500)
        await settle(pilot)
        after = kpis(pipeline)
        assert after.ev_micros - before.ev_micros == 6000_00 * 2500  # EV +1,500
        assert after.tv_cents == before.tv_cents
        assert prospect(pipeline, "Harbour Events").stage_name == "Date held"
        text = screen_text(app)
        assert f"EV {money_ev(after)}" in text
        assert "Date held" in screen_lines(app)[table_line(app, "Harbour Events")]
        assert "Harbour Events: Quote sent -> Date held, EV +1,500" in notices(app)
        # `.` advances too
        await pilot.press("full_stop")
        await settle(pilot)
        assert prospect(pipeline, "Harbour Events").stage_name == "Deposit paid"
        assert page(app).kpi_all == kpis(pipeline)


def table_line(app, name: str) -> int:
    """The screen line a prospect is on (the table starts on line 4 at 80x24)."""
    t = table(app)
    pid = next(r.id for r in t.view.rows.values() if r.name == name)
    return 4 + t.view.index_of(pid) - int(t.scroll_y)


@pytest.mark.both_databases
async def test_back_and_comma_move_down_and_undo_restores(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        start = kpis(pipeline)
        await go_to(pilot, "x [/")
        await pilot.press("less_than_sign")
        await settle(pilot)
        assert prospect(pipeline, "x [/").stage_name == "Quote sent"
        await pilot.press("comma")
        await settle(pilot)
        assert prospect(pipeline, "x [/").stage_name == "Enquiry"
        assert kpis(pipeline).ev_micros == start.ev_micros - 3000_00 * (5000 - 1000)
        await pilot.press("u")
        await settle(pilot)
        assert prospect(pipeline, "x [/").stage_name == "Quote sent"
        await pilot.press("u")
        await settle(pilot)
        assert prospect(pipeline, "x [/").stage_name == "Date held"
        assert kpis(pipeline) == start
        assert page(app).kpi_all == start
        assert f"EV {money_ev(start)}" in screen_text(app)


async def test_won_and_lost_with_a_reason(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "Harbour Events")
        await pilot.press("w")
        await settle(pilot)
        p = prospect(pipeline, "Harbour Events")
        assert p.stage_kind == "won" and p.closed_on == date(2026, 11, 27)
        assert "Won" in screen_lines(app)[table_line(app, "Harbour Events")]
        await go_to(pilot, "Kauri Software")
        tv_before = kpis(pipeline).tv_cents
        await pilot.press("l")
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"
        assert "Lost: Kauri Software" in screen_text(app)
        await pilot.press(*"went with a competitor")
        await pilot.press("enter")
        await settle(pilot)
        p = prospect(pipeline, "Kauri Software")
        assert p.stage_kind == "lost" and p.lost_reason == "went with a competitor"
        assert kpis(pipeline).tv_cents == tv_before - 14500_00
        assert page(app).kpi_all == kpis(pipeline)


async def test_lost_cancelled_changes_nothing(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        assert prospect(pipeline, "Harbour Events").stage_name == "Quote sent"


async def test_refused_move_is_an_error_notice_and_changes_nothing(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = kpis(pipeline)
        await go_to(pilot, "Acme [Beta]")  # on the first rung: cannot go back
        await pilot.press("less_than_sign")
        await settle(pilot)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "already on the first stage" in errors[-1].message
        assert kpis(pipeline) == before
        assert prospect(pipeline, "Acme [Beta]").stage_name == "Suspect"


async def test_conflicting_edit_is_refused_and_the_screen_takes_it_back(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.live.stop()  # this screen has not seen the other change yet (tests/test_live.py: it would)
        await go_to(pilot, "Harbour Events")
        # somebody else moves the prospect after the screen read it (a change to another field
        # would be merged: tests/test_conflicts.py)
        Store(pipeline, who="sam").move("Harbour Events", "back")
        before = kpis(pipeline)
        await pilot.press("greater_than_sign")
        await settle(pilot, rounds=5)
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors and "changed by someone else" in errors[-1] and "sam moved it" in errors[-1]
        assert prospect(pipeline, "Harbour Events").stage_name == "Enquiry"
        assert kpis(pipeline) == before
        await settle(pilot, until=lambda a: page(a).kpi_all == before)
        assert page(app).kpi_all == before  # the optimistic change is taken back
        assert table(app).current_row.stage_id == prospect(pipeline, "Harbour Events").stage_id


async def test_add_through_the_form(pipeline):
    from textual.widgets import Input

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = kpis(pipeline)
        await pilot.press("a")
        await settle(pilot)
        assert type(app.screen).__name__ == "ProspectForm"
        app.screen.query_one("#name", Input).value = "Ferry [Gala]"
        app.screen.query_one("#value", Input).value = "$12,000"
        app.screen.query_one("#month", Input).value = "2027-03"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        p = prospect(pipeline, "Ferry [Gala]")
        assert p.value_cents == 12000_00 and p.owner == "tester" and p.stage_name == "Suspect"
        after = kpis(pipeline)
        assert after.tv_cents == before.tv_cents + 12000_00
        assert page(app).kpi_all == after
        assert table(app).current_row.name == "Ferry [Gala]"
        assert "Ferry [Gala]" in screen_text(app)


async def test_edit_through_the_form(pipeline):
    from textual.widgets import Input

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "[/x]")
        await pilot.press("e")
        await settle(pilot)
        assert type(app.screen).__name__ == "ProspectForm"
        assert app.screen.query_one("#name", Input).value == "[/x]"
        app.screen.query_one("#value", Input).value = "2,500"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert prospect(pipeline, "[/x]").value_cents == 2500_00
        assert "2,500" in screen_lines(app)[table_line(app, "[/x]")]
        assert page(app).kpi_all == kpis(pipeline)


async def test_enter_opens_the_prospect_page(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "[@click=app.quit]hi[/]")
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "ProspectPage"
        assert "[@click=app.quit]hi[/]" in screen_text(app)
        assert app.is_running


async def test_log_an_activity(pipeline):
    from textual.widgets import Input

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "Kauri Software")
        await pilot.press("n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ActivityDialog"
        app.screen.query_one("#text", Input).value = "Called [b]Mere[/b] about the date"
        await pilot.press("ctrl+s")
        await settle(pilot)
        p = prospect(pipeline, "Kauri Software")
        acts = Store(pipeline).activities(p.id)
        assert [a.text for a in acts] == ["Called [b]Mere[/b] about the date"]
        assert any("Kauri Software: call logged" in n for n in notices(app))


async def test_follow_up_is_checked_then_saved(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "Kauri Software")
        await pilot.press("f")
        await settle(pilot)
        await pilot.press(*"31/02/2027", "enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "TextPrompt"  # refused inline, text kept
        assert "February 2027 has 28 days" in str(app.screen.query_one("#error").render())
        assert prospect(pipeline, "Kauri Software").next_follow_up is None
        for _ in range(10):
            await pilot.press("backspace")
        await pilot.press(*"fri", "enter")
        await settle(pilot)
        assert prospect(pipeline, "Kauri Software").next_follow_up == date(2026, 12, 4)
        assert "4 Dec" in screen_lines(app)[table_line(app, "Kauri Software")]


async def test_a_saved_change_is_said_in_the_tab_bar_with_no_new_layout_until_its_time_is_up(pipeline, monkeypatch):
    """The save's notice takes the tab bar's line, as a toast over it did, but as one line painted
    again: a toast mounted and removed laid the whole screen out again three times a save."""
    monkeypatch.setattr(evpipe.tui.app, "SAVED_NOTICE", 0.6)
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "x [/")
        layouts: list[Screen] = []
        real = Screen._refresh_layout

        def counted(screen: Screen, *args, **kwargs):
            layouts.append(screen)
            return real(screen, *args, **kwargs)

        monkeypatch.setattr(Screen, "_refresh_layout", counted)
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert screen_lines(app)[0].rstrip() == "▌ x [/: Date held -> Deposit paid, EV +900"
        assert not app._notifications  # (no toast)
        assert layouts == []
        await pilot.pause(0.8)
        await settle(pilot)
        assert screen_lines(app)[0].lstrip().startswith("1 Pipeline ")
        # a click on a notice takes it away at once, and the tabs under it are not clicked
        await pilot.press("less_than_sign")
        await settle(pilot)
        assert screen_lines(app)[0].startswith("▌ x [/: Deposit paid -> Date held, EV -900")
        await pilot.click(TabBar, offset=(20, 0))
        await settle(pilot)
        assert screen_lines(app)[0].lstrip().startswith("1 Pipeline ")
        assert isinstance(app.screen, PipelineScreen)


async def test_a_saved_change_under_a_dialog_is_said_as_a_toast(pipeline, monkeypatch):
    """With a dialog over the screen (no tab bar on top), the notice is a toast, over the dialog."""
    slow_moves(monkeypatch)
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await go_to(pilot, "x [/")
        await pilot.press("greater_than_sign", "d")  # the save ends while the delete asks
        await settle(pilot)
        assert type(app.screen).__name__ == "ConfirmDialog"
        assert "x [/: Date held -> Deposit paid, EV +900" in [n.message for n in app._notifications]
        assert app.pipeline is not None and app.pipeline.query_one(TabBar).notice is None


async def test_delete_asks_and_undo_brings_it_back(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        start = kpis(pipeline)
        await go_to(pilot, "Acme [Beta]")
        await pilot.press("d")
        await settle(pilot)
        assert type(app.screen).__name__ == "ConfirmDialog"
        assert "Delete Acme [Beta]?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        assert "Acme [Beta]" not in [r.name for r in load_rows(pipeline)[0].values()]
        assert "Acme [Beta]: deleted, EV -50" in notices(app)  # (the top line says so)
        assert "Acme [Beta]" not in "\n".join(screen_lines(app)[1:])
        assert kpis(pipeline).tv_cents == start.tv_cents - 1000_00
        assert page(app).kpi_all == kpis(pipeline)
        await pilot.press("u")
        await settle(pilot)
        assert "Acme [Beta]" in [r.name for r in load_rows(pipeline)[0].values()]
        assert "Acme [Beta]" in screen_text(app)
        assert kpis(pipeline) == start == page(app).kpi_all


# ---------------------------------------------------------------- the view: filter, sort, mine, group


def shown_names(app) -> list[str]:
    view = table(app).view
    return [view.rows[i].name for i in view.lines if isinstance(i, int)]


async def test_filter_as_you_type_and_escape_clears(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"harb")
        await settle(pilot)
        assert shown_names(app) == ["Harbour Events"]
        assert "filter: harb" in screen_text(app)
        # contact person and notes are searched too
        await pilot.press(*["backspace"] * 4, *"mere")
        await settle(pilot)
        assert shown_names(app) == ["Kauri Software"]
        await pilot.press(*["backspace"] * 4, *"christmas")
        await settle(pilot)
        assert shown_names(app) == ["Harbour Events"]
        # LIKE wildcards are literal
        await pilot.press(*["backspace"] * 9, *"_labs 100%")
        await settle(pilot)
        assert shown_names(app) == ["Acme [Beta]"]
        await pilot.press("enter")  # keep the filter, back to the table
        await settle(pilot)
        assert table(app).has_focus
        # every setting on: the filter still shows in 80 columns (the settings after it may not)
        await pilot.press("c", "m", "s")
        await settle(pilot)
        status = app.screen.query_one("#status").render().plain
        assert "1 shown · filter: _labs 100% · sort: EV" in status and len(status) > 80
        await pilot.press("c", "m", *["s"] * 5)  # back as it was: open only, not grouped, by month
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert len(shown_names(app)) == 6
        assert "filter:" not in screen_text(app)


async def test_sort_cycles_through_the_orders(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert shown_names(app)[:2] == ["Harbour Events", "Kauri Software"]
        await pilot.press("s")  # EV, largest first
        await settle(pilot)
        assert "sort: EV" in screen_text(app)
        assert shown_names(app)[:2] == ["Kauri Software", "[@click=app.quit]hi[/]"]  # 3,625 then 3,200
        await pilot.press("s")  # value
        await settle(pilot)
        assert shown_names(app)[0] == "Kauri Software"
        await pilot.press("s")  # next-step gain: 14,500 x (50% - 25%) = 3,625
        await settle(pilot)
        assert "sort: next-step gain" in screen_text(app)
        assert shown_names(app)[0] == "Kauri Software"
        await pilot.press("s")  # next follow-up
        await settle(pilot)
        assert shown_names(app)[0] == "Harbour Events"
        await pilot.press("s")  # last change, most recent first
        await settle(pilot)
        assert "sort: last change" in screen_text(app)
        await pilot.press("s")
        await settle(pilot)
        assert "sort: expected month" in screen_text(app)


async def test_mine_toggles_rows_and_header(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        mine = kpis(pipeline, Scope(owner="tester"))
        assert sorted(shown_names(app)) == sorted(["Harbour Events", "[/x]", "x [/", "[@click=app.quit]hi[/]"])
        text = screen_text(app)
        assert f"TV {format_money(mine.tv_cents)}" in text and "Mine (tester)" in text
        await pilot.press("o")
        await settle(pilot)
        assert len(shown_names(app)) == 6
        assert f"TV {format_money(kpis(pipeline).tv_cents)}" in screen_text(app)


async def test_group_by_month_with_subtotals(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        lines = screen_lines(app)
        body = lines[4:15]
        dec = next(i for i, line in enumerate(body) if line.startswith("Dec 2026"))
        # Dec 2026: Harbour 6,000 + Kauri 14,500; EV 1,500 + 3,625
        assert "2 open or won" in body[dec]
        assert "20,500" in body[dec] and "5,125" in body[dec]
        assert body[dec + 1].lstrip("! ").startswith("Harbour Events")
        assert any(line.startswith("No month") for line in body)
        # the cursor skips the subtotal lines
        assert isinstance(table(app).view.line(table(app).cursor), int)
        # a move updates the month's subtotal at once
        await go_to(pilot, "Kauri Software")
        await pilot.press("greater_than_sign")
        await settle(pilot)
        body = screen_lines(app)[4:15]
        dec = next(i for i, line in enumerate(body) if line.startswith("Dec 2026"))
        assert "8,750" in body[dec]  # 1,500 + 7,250
        # sorted by next-step gain the EV column is each row's gain: the month's EV is not shown
        # there as if it were its gain (Value still has the month's TV)
        for _ in range(3):  # month -> EV -> value -> gain
            await pilot.press("s")
            await settle(pilot)
        assert table(app).view.sort == "gain" and "Gain" in screen_lines(app)[3]
        body = screen_lines(app)[4:15]
        dec = next(i for i, line in enumerate(body) if line.startswith("Dec 2026"))
        assert "20,500" in body[dec] and "8,750" not in body[dec]
        await pilot.press("m")
        await settle(pilot)
        assert not any(line.startswith("Dec 2026") for line in screen_lines(app))


async def test_cursor_keys_and_contact_line(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)
        assert table(app).current_row.name == "Kauri Software"
        assert "Mere Kauri" in screen_text(app)
        await pilot.press("end")
        await settle(pilot)
        assert table(app).current_row.name == "Acme [Beta]"
        assert "no contact details" in screen_text(app)
        await pilot.press("home")
        await settle(pilot)
        assert table(app).current_row.name == "Harbour Events"


# ---------------------------------------------------------------- the app: screens, help, palette, keymap


async def test_help_lists_every_binding(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert type(app.screen).__name__ == "HelpScreen"
        text = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        ids = {b.id for b in PipelineScreen.BINDINGS}
        said = " ".join(w for w in text.split() if w not in ids)  # a long description wraps under itself
        for binding in PipelineScreen.BINDINGS:
            assert binding.id in text
            assert PipelineScreen.ACTION_HELP[binding.action] in said
        assert "app.quit" in text and "app.screen_1" in text and "table.down" in text
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)


async def test_help_on_another_screen_lists_that_screens_keys_first(pipeline):
    from evpipe.tui.screens.focus import FocusScreen

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, FocusScreen)
        await pilot.press("question_mark")
        await settle(pilot)
        text = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        assert text.index("Focus") < text.index("Pipeline")
        for binding in FocusScreen.BINDINGS:
            assert binding.id in text
        assert "pipeline.advance" in text


async def test_number_keys_and_tab_bar(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        top = screen_lines(app)[0]
        specs = app.screen_specs
        assert specs[0].name == "pipeline"
        for spec in specs:
            # at 80 columns the other tabs' titles may be cut (`3 Fore…`) to leave the database's
            # name its room; the current tab keeps its whole title
            whole = f"{spec.key} {spec.title}"
            assert whole in top if spec.name == "pipeline" else (whole in top or f"{spec.key} {spec.title[:3]}" in top)
        other = next((s for s in specs if s.name != "pipeline"), None)
        if other is not None:
            await pilot.press(other.key)
            await settle(pilot)
            assert app.current_mode == other.name
            assert f"{other.key} {other.title}" in screen_lines(app)[0]
        await pilot.press("1")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        missing = next(str(n) for n in range(1, 8) if str(n) not in {s.key for s in specs}) if len(specs) < 7 else None
        if missing:
            await pilot.press(missing)
            await settle(pilot)
            assert any("not available yet" in n for n in notices(app))
            assert isinstance(app.screen, PipelineScreen)


async def test_command_palette_has_every_action(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for text in PipelineScreen.ACTION_HELP.values():
            assert text in commands
        assert "Go to Pipeline" in commands
        # running one from the palette acts on the cursor prospect
        commands["Advance one stage"].callback()
        await settle(pilot)
        assert prospect(pipeline, "Harbour Events").stage_name == "Date held"
        # and the palette opens on ctrl+p
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert type(app.screen).__name__ == "CommandPalette"


async def test_keymap_file_remaps_a_binding(pipeline, tmp_path, monkeypatch):
    from evpipe.models.locations import keymap_path

    path = keymap_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('"pipeline.advance" = "x"\n', encoding="utf-8")
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("greater_than_sign")  # no longer bound
        await settle(pilot)
        assert prospect(pipeline, "Harbour Events").stage_name == "Quote sent"
        await pilot.press("x")
        await settle(pilot)
        assert prospect(pipeline, "Harbour Events").stage_name == "Date held"


async def test_broken_keymap_file_is_reported(pipeline):
    from evpipe.models.locations import keymap_path

    path = keymap_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('"pipeline.advance" = \n', encoding="utf-8")
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors and "is not valid TOML" in errors[0]


async def test_quit(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_change_made_elsewhere_updates_row_and_header(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        result = Store(pipeline, who="tester").move("Kauri Software", "Date held")
        app.post_message(DataChanged(result))
        await settle(pilot)
        assert page(app).kpi_all == kpis(pipeline)
        assert "Date held" in screen_lines(app)[table_line(app, "Kauri Software")]
        # None means: reload everything (e.g. after a probability change)
        Store(pipeline, who="tester").set_probability("Date held", "60")
        app.post_message(DataChanged(None))
        await settle(pilot)
        assert page(app).kpi_all == kpis(pipeline)
        assert "60%" in screen_lines(app)[table_line(app, "Kauri Software")]


async def test_changes_record_a_kpi_snapshot(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("greater_than_sign")
        await settle(pilot)
        await pilot.pause(0.3)
        await settle(pilot)
        snaps = snapshots(pipeline)
        assert snaps and snaps[-1].taken_on == date(2026, 11, 27)
        assert snaps[-1].kpi == kpis(pipeline)
        with Session(pipeline) as s:
            scopes = set(s.scalars(select(KpiSnapshot.scope)))
        assert {"all", "owner:tester", "owner:sam"} <= scopes


async def test_hostile_names_are_never_markup(pipeline):
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for name in HOSTILE:
            await go_to(pilot, name)
            await pilot.press("enter")
            await settle(pilot)
            assert app.is_running
            await pilot.press("escape")
            await settle(pilot)
        text = screen_text(app)
        for name in HOSTILE:
            assert name in text
        assert "Beta_Labs 100%" in text  # the company column shows at 120 columns
        await pilot.click(ProspectTable, offset=(5, 3))
        await settle(pilot)
        assert app.is_running


# ---------------------------------------------------------------- the view model, without the app


def _view(engine) -> PipelineView:
    store = Store(engine)
    view = PipelineView(Ladder.of(store.ladder()))
    view.load(load_rows(engine)[0])
    return view


def test_view_subtotals_follow_changes(pipeline):
    view = _view(pipeline)
    view.grouped = True
    view.rebuild()
    assert view.subtotals["2026-12"] == [2, 20500_00, 6000_00 * 2500 + 14500_00 * 2500]
    total = view.visible_totals()
    k = kpis(pipeline)
    assert (total.count, total.tv_cents, total.ev_micros) == (k.count, k.tv_cents, k.ev_micros)
    # moving a prospect to another month moves it between groups and subtotals
    r = Store(pipeline).edit("Kauri Software", month="2027-02")
    view.apply(r.prospect)
    assert view.subtotals["2026-12"] == [1, 6000_00, 6000_00 * 2500]
    feb = view.lines.index(next(g for g in view.lines if not isinstance(g, int) and g.month == "2027-02"))
    assert r.prospect.id in view.lines[feb:]
    # deleting the last prospect of a month removes its heading
    r = Store(pipeline).delete("Harbour Events")
    view.apply(r.prospect)
    assert all(getattr(g, "month", None) != "2026-12" for g in view.lines)


def test_search_is_case_blind_over_name_company_contact_and_notes(pipeline):
    from evpipe.models import clock
    from evpipe.models.filters import parse_filter
    from evpipe.models.pipeline_view import load_ladder

    rows = load_rows(pipeline)[0]
    stages, archived = load_ladder(pipeline)
    ladder, today = Ladder.of(stages, extra=archived), clock.today()

    def search(text: str) -> set[int]:
        return set(parse_filter(text, stages, today).select(rows, ladder, today))

    ids = {r.name: r.id for r in rows.values()}
    assert search("HARBOUR christmas") == {ids["Harbour Events"]}  # name and notes
    assert search("mere kauri") == {ids["Kauri Software"]}  # contact person
    assert search("beta_labs 100%") == {ids["Acme [Beta]"]}  # company, wildcards literal
    assert search("[/") == {ids["[/x]"], ids["x [/"], ids["[@click=app.quit]hi[/]"]}
    assert search("nothing like this") == set()


def test_sql_sort_orders_agree_with_the_python_ones(pipeline):
    from evpipe.models.pipeline_view import SORTS, sort_rows

    store = Store(pipeline)
    Store(pipeline, who="tester").move("Harbour Events", "won")
    Store(pipeline, who="sam").move("Acme [Beta]", "lost")
    ladder = Ladder.of(store.ladder())
    rows = list(load_rows(pipeline)[0].values())
    for mode, _ in SORTS:
        ordered = list(rows)
        sort_rows(ordered, mode, ladder)
        assert list(ordered_ids(pipeline, mode, ladder)) == [r.id for r in ordered], mode
        store_rows, order = load_rows(pipeline, mode, ladder)
        assert list(order) == [r.id for r in ordered] and len(store_rows) == len(rows)


def test_row_store_put_remove_and_bring_back(pipeline):
    rows = load_rows(pipeline)[0]
    n = len(rows)
    first = min(rows)
    row = rows[first]
    assert rows.remove(first) == row and first not in rows and len(rows) == n - 1
    rows.put(row._replace(value_cents=1))
    assert rows[first].value_cents == 1 and len(rows) == n
    new = row._replace(id=first + 1000, name="Later")
    rows.put(new)
    assert rows[first + 1000] == new and list(rows)[-1] == first + 1000


def test_next_step_gain_and_staleness(pipeline):
    view = _view(pipeline)
    kauri = next(r for r in view.rows.values() if r.name == "Kauri Software")
    assert view.ladder.gain(kauri) == 14500_00 * 2500
    top = next(r for r in view.rows.values() if r.name == "[@click=app.quit]hi[/]")
    assert view.ladder.gain(top) == 4000_00 * 2000  # Deposit paid 80% -> Won 100%
    assert not view.is_stale(kauri)
    old = kauri._replace(touched="2026-11-01")  # Quote sent goes stale after 10 days
    assert view.is_stale(old)
    assert isinstance(old, Row)


async def test_first_page_then_the_rest(pipeline, monkeypatch):
    """Big pipelines paint a first page, then read the rest: keys pressed in between work, and the
    full table arrives in the order asked for, with the change made meanwhile."""
    import threading

    import evpipe.models.first_screen as first_screen
    import evpipe.tui.screens.pipeline as pipeline_module

    release = threading.Event()
    real_load_rows = pipeline_module.load_rows

    def slow_load_rows(*args, **kwargs):
        release.wait(10)
        return real_load_rows(*args, **kwargs)

    monkeypatch.setattr(first_screen, "FIRST_PAGE", 3)
    monkeypatch.setattr(pipeline_module, "load_rows", slow_load_rows)
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            await pilot.pause(0.02)
            if page(app).loaded:
                break
        assert not page(app).complete
        assert "first 3 shown, loading the rest" in screen_text(app)
        assert shown_names(app) == ["Harbour Events", "Kauri Software", "[/x]"]
        await pilot.press("greater_than_sign")  # Harbour Events: Quote sent -> Date held
        for _ in range(100):
            await pilot.pause(0.02)
            if prospect(pipeline, "Harbour Events").stage_name == "Date held":
                break
        await pilot.press("s")  # sort by EV while the rest is still being read
        for _ in range(100):
            await pilot.pause(0.02)
            if "sort: EV" in screen_text(app):
                break
        release.set()
        await settle(pilot, rounds=5)
        assert page(app).complete
        # EV: Kauri 3,625; [@click] 3,200; Harbour now 3,000; x [/ 1,500; [/x] 200; Acme 50
        assert shown_names(app) == [
            "Kauri Software",
            "[@click=app.quit]hi[/]",
            "Harbour Events",
            "x [/",
            "[/x]",
            "Acme [Beta]",
        ]
        assert page(app).kpi_all == kpis(pipeline)
        assert "6 shown" in screen_text(app)


async def test_keys_typed_in_a_burst_after_slash_go_to_the_filter_not_the_table(pipeline):
    """A paste-speed `/wedding`: every key is queued before the first is handled. The `w` must
    filter, not mark the cursor's prospect won (nor `e` open the edit form)."""
    from textual import events
    from textual.widgets import Input

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = kpis(pipeline)
        for ch in "/wedding":
            app.post_message(events.Key("slash" if ch == "/" else ch, ch))
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        assert app.screen.query_one("#filter", Input).value == "wedding"
        assert kpis(pipeline) == before
        # and `/` inside the filter is text, not a second "open the filter"
        await pilot.press("slash", "x")
        await settle(pilot)
        assert app.screen.query_one("#filter", Input).value == "wedding/x"


async def test_the_filter_box_keeps_emoji_as_they_are_shown_and_finds_them(pipeline):
    """An emoji selector, skin tone or joiner typed or pasted into the filter is left out of the
    box, as the list leaves it out of names: terminals draw those in cells of their own, and the
    box's text and cursor stood out of line (the tester's report). A name holding the emoji with
    them is still found, by the emoji with or without."""
    from textual.widgets import Input

    Store(pipeline, who="tester").add("Ana \u2764\ufe0f party \U0001f469\U0001f3fd", "500", "Suspect")
    Store(pipeline, who="tester").add("Family \U0001f468\u200d\U0001f469\u200d\U0001f467 day", "500", "Suspect")
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("slash")
        box = app.screen.query_one("#filter", Input)
        family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
        for typed, kept, shown in (
            ("\u2764\ufe0f", "\u2764", 1),
            ("\u2764", "\u2764", 1),
            ("\U0001f469\U0001f3fd", "\U0001f469", 2),  # (the family has her too)
            (family, "\U0001f468\U0001f469\U0001f467", 1),
        ):
            box.value = ""
            box.insert_text_at_cursor(typed)
            await settle(pilot)
            assert box.value == kept and box.cursor_position == len(kept)
            assert f"{shown} shown" in screen_text(app), typed
        box.value = ""
        box.insert_text_at_cursor("a\u2764\ufe0fb")
        box.cursor_position = 2  # after the heart
        box.insert_text_at_cursor("\U0001f44d\U0001f3fd")
        assert box.value == "a\u2764\U0001f44db" and box.cursor_position == 3


def test_the_columns_fit_every_width_from_50_cells():
    """At 60 columns the table was 69 wide: the month showed as "2027", cut at the screen's edge.
    The p, follow-up and month columns now give way (in that order) to the name's 12 cells."""
    from evpipe.tui.widgets.prospect_table import columns_for

    for width in range(50, 201):
        columns = columns_for(width)
        assert sum(c.width for c in columns) + len(columns) - 1 <= width, width
        keys = [c.key for c in columns]
        assert keys[:2] == ["flag", "name"] and {"stage", "value", "ev"} <= set(keys)
    assert [c.key for c in columns_for(60)][-1] == "month"
    assert "p" in [c.key for c in columns_for(80)] and "follow" in [c.key for c in columns_for(80)]


async def test_a_long_contact_name_leaves_room_for_the_phone(engine, db_url):
    """The detail line keeps the parts that fit whole: a contact name of 80 letters pushed the
    phone and the email out. The name is cut to a third of the line, with an ellipsis."""
    from evpipe.models.store import Store

    long_name = "Wiremu " + "Te Rangi-Hiroa " * 5 + "Williams"
    Store(engine, who="tester").add("Long contact", "5000", "Suspect", contact_name=long_name, phone="+64 9 555 0199")
    app = EvpipeApp(db_url, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: "+64 9 555 0199" in screen_text(a))
        line = next(line for line in screen_lines(app) if "+64 9 555 0199" in line)
        assert "Wiremu Te Rangi-Hiroa" in line and "…" in line and long_name not in line


async def test_the_detail_and_status_lines_show_emoji_as_terminals_draw_them(engine, db_url):
    """The line under the list (the contact's phone and email) and the status line (the filter
    typed) leave skin tones and emoji selectors out for display, as the list does: rich counted a
    heart with its selector as two cells and tmux 3.3a drew one, so the line ended a cell short and
    the last cell kept what was there before."""
    from evpipe.models.store import Store

    heart, thumb = "\u2764\ufe0f", "\U0001f44d\U0001f3fd"
    Store(engine, who="tester").add("Hearts", "5000", "Suspect", phone=f"+64 {heart}", email=f"a{thumb}@b.nz")
    app = EvpipeApp(db_url, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: "@b.nz" in screen_text(a))
        assert "+64 \u2764 · a\U0001f44d@b.nz" in screen_text(app)
        await pilot.press("slash", *"hearts", "space")
        from textual.widgets import Input

        app.screen.query_one(Input).insert_text_at_cursor(heart)  # (an emoji is not a key)
        await settle(pilot, until=lambda a: "filter: hearts" in screen_text(a))
        status = next(line for line in screen_lines(app) if "filter: hearts" in line)
        assert "filter: hearts \u2764 ·" in status  # (the box the filter is typed in keeps it as typed)


def terminal_cells(text: str) -> int:
    """The cells a terminal that joins nothing draws `text` in (xterm, wcwidth): two for a wide
    character or an emoji, none for a joiner, a selector or a combining mark, else one."""
    import unicodedata

    return sum(
        0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 30)])
async def test_emoji_sequences_in_names_keep_the_columns_in_line(engine, db_url, size):
    """A family emoji (three people joined by zero width joiners), a skin tone and a heart with its
    emoji selector: rich counted each as two cells, terminals drew them in six, four and one, and
    the columns after the name moved. They show now as each terminal draws them alike (the people
    apart, no tone, no selector); the names saved are as typed."""
    names = [
        "Ana \U0001f468\u200d\U0001f469\u200d\U0001f467 Ltd",
        "Bo \U0001f469\U0001f3fd \u2764\ufe0f Ltd",
        "Zed plain Ltd",
    ]
    store = Store(engine, who="tester")
    for name in names:
        store.add(name, "5000", "Enquiry", month="2027-01", company="Fam \U0001f469\U0001f3fd\u200d\U0001f4bb Co")
    app = EvpipeApp(db_url, who="tester")
    async with app.run_test(size=size) as pilot:
        await settle(pilot, until=lambda a: "Zed plain Ltd" in screen_text(a))
        rows = [line for line in screen_lines(app) if " Ltd " in line and "Enquiry" in line]
        assert len(rows) == 3, screen_lines(app)
        starts = {terminal_cells(line[: line.index("Enquiry")]) for line in rows}
        header = next(line for line in screen_lines(app) if " Stage " in line)
        assert starts == {terminal_cells(header[: header.index("Stage")])}, rows
        assert "Ana \U0001f468\U0001f469\U0001f467 Ltd" in rows[0]
    with Session(engine) as session:
        saved = [row[0] for row in session.execute(select(Prospect.name).order_by(Prospect.id))]
    assert saved == names


async def test_the_command_palette_does_not_open_over_a_question(pipeline):
    """ctrl+p over a question opened the palette, a command ran behind the question (the add
    form), and the question waited on, answered yes by the next enter once the rep came back."""
    from apphelpers import RecordingApp

    from evpipe.tui.dialogs import ConfirmDialog

    app = RecordingApp(pipeline)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(ConfirmDialog("Set Suspect from 5% to 7%?"))
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert any("Answer or close this first" in n for n in app.notices), app.notices
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert type(app.screen).__name__ == "CommandPalette"


async def test_home_in_a_grouped_list_shows_the_first_months_heading(engine, db_url):
    """The cursor never rests on a month's heading; scrolled back to the first prospect (Home,
    PageUp, Up), the view stopped at the cursor's row, and the first month's heading above it
    was never seen. It comes into view with the row under it."""
    from evpipe.models.store import Store

    s = Store(engine, who="tester")
    for i in range(40):
        s.add(f"Deal {i:02d}", "1000", "Suspect", month=f"2027-{1 + i // 20:02d}")
    app = EvpipeApp(db_url, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("m")
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)
        assert not any(line.startswith("Jan 2027") for line in screen_lines(app))
        await pilot.press("home")
        await settle(pilot)
        body = screen_lines(app)[4:]
        assert body[0].startswith("Jan 2027") and "Deal 00" in body[1], body[:2]
        assert table(app).view.line(table(app).cursor) == table(app).view.lines[1]


def test_the_app_runs_with_pythons_young_collector_thresholds_and_no_full_pass_of_its_own(engine):
    """The command line starts with fewer collector passes (tui/cli/main.py `run`: 20,000 new
    objects between passes); the app sets Python's thresholds for the young generations back as it
    is made, whatever the process had, and leaves Python no full pass to make: the app makes
    them itself, between bursts of keys (`_full_pass_when_quiet`)."""
    import gc

    from evpipe.tui.app import GC_THRESHOLDS

    before = gc.get_threshold()
    try:
        gc.set_threshold(20_000, 10, 10)
        EvpipeApp(str(engine.url), who="tester")
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[:2] == (700, 10) and GC_THRESHOLDS[2] >= 1_000_000
    finally:
        gc.set_threshold(*before)


def _full_passes(made: list[int]):
    """A collector callback counting, in `made`, the full passes that begin (but `_due`'s own)."""

    def counted(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2 and not _making_due:
            made.append(1)

    return counted


_making_due = False


def _due(passes: int) -> None:
    """Passes of the middle generation, as many as `passes`, since the last full one."""
    import gc

    global _making_due
    _making_due = True
    try:
        gc.collect()
    finally:
        _making_due = False
    for _ in range(passes):
        gc.collect(1)
    assert gc.get_count()[2] == passes


async def test_a_reload_leaves_the_collector_s_pass_to_a_quiet_moment(pipeline):
    """A reload of the rows lets go of what the last load froze, and the pass that collects it and
    freezes again waits, like any full pass, for a second with no key: made as the rows landed, it
    was most of a reload's pause of the UI thread (100-120 of 130-160 ms at a million prospects)."""
    import gc
    import time

    from evpipe.tui.app import QUIET_FOR

    app = EvpipeApp(str(pipeline.url), who="tester")
    made: list[int] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.complete and gc.get_freeze_count() > 0  # the first load's rows frozen
        await pilot.press("down")
        counted = _full_passes(made)
        gc.callbacks.append(counted)
        try:
            app._last_input = time.monotonic() + 60  # keys all along: no quiet moment yet
            screen.load()
            await settle(app, pilot, until=lambda app: app.screen.complete)
            assert made == [] and app._freeze_after_pass
            assert gc.get_freeze_count() == 0  # let go, and not collected among the keys
            app._last_input = time.monotonic() - QUIET_FOR  # then a second with no key
            await pilot.pause(QUIET_FOR)
            assert made == [1] and not app._freeze_after_pass
            assert gc.get_freeze_count() > 0  # frozen again after it
        finally:
            gc.callbacks.remove(counted)


async def test_the_collector_s_full_pass_waits_for_no_key_for_a_second(pipeline):
    """A full pass of the collector walks every object not frozen: 10-19 ms of the UI thread at
    100,000 prospects, the longest pause among key presses where Python made it. The app makes it
    once it is due (FULL_PASS_DUE passes of the middle generation since the last) and no key has
    come for QUIET_FOR seconds; at once when long overdue (keys without a break); never while a
    step has the collector off (a load)."""
    import gc
    import time

    from evpipe.models import collector
    from evpipe.tui.app import FULL_PASS_DUE, OVERDUE, QUIET_FOR

    app = EvpipeApp(str(pipeline.url), who="tester")
    made: list[int] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # (an earlier test's app froze its rows in this process: to the collector this app's
        # first load was a reload, whose pass is due at once. Made first)
        app._full_pass_when_quiet()
        assert not app._freeze_after_pass
        counted = _full_passes(made)
        gc.callbacks.append(counted)
        try:
            await pilot.press("down")  # a key: not quiet
            _due(FULL_PASS_DUE)
            app._full_pass_when_quiet()
            assert made == [] and gc.get_count()[2] == FULL_PASS_DUE
            app._last_input = time.monotonic() - QUIET_FOR  # a second with no key
            _due(FULL_PASS_DUE - 1)
            app._full_pass_when_quiet()
            assert made == []  # (not due yet)
            gc.collect(1)
            with collector.paused():  # a step with the collector off
                app._full_pass_when_quiet()
            assert made == []
            app._full_pass_when_quiet()
            assert made == [1] and gc.get_count()[2] == 0
            await pilot.press("up")  # keys again, and the pass long overdue
            _due(OVERDUE - 1)
            app._full_pass_when_quiet()
            assert made == [1]
            gc.collect(1)
            app._full_pass_when_quiet()
            assert made == [1, 1]
            # the app looks by itself: due, then a second with no key
            _due(FULL_PASS_DUE)
            await pilot.press("down")
            await pilot.pause(QUIET_FOR / 2)
            assert made == [1, 1]
            await pilot.pause(QUIET_FOR * 1.5)
            assert made == [1, 1, 1]
        finally:
            gc.callbacks.remove(counted)


def test_what_opening_the_database_loads_is_left_out_of_full_collections(db_url, engine):
    """The write path opens after the rows are frozen out of the collector's full passes (the
    first look for changes imports SQLAlchemy then): what it leaves behind for the session is
    frozen too, so that no full pass walks it again among key presses."""
    import gc

    app = EvpipeApp(db_url)
    gc.unfreeze()  # (as a process that has frozen nothing since these were made)
    lasting = [["made before the database opened"]]  # (a list of a list: the collector tracks it)
    assert any(o is lasting for o in gc.get_objects())
    try:
        assert app.engine is not None
        assert not any(o is lasting for o in gc.get_objects())  # frozen: no pass walks it
        assert gc.get_freeze_count() > 0
        app.engine.dispose()
    finally:
        gc.freeze()


def test_opening_the_database_sets_off_no_collection(db_url, engine, monkeypatch):
    """What opening the database makes (SQLAlchemy's, SQLModel's and the store's objects, here
    five thousand lists standing in for them) sets off no pass of the collector, neither while it
    is made nor once the collector is on again: it is frozen first. Python's thresholds would have
    collected at every 700 new objects, on the UI thread's time as the rows load."""
    import gc

    import evpipe.models as models

    made: list[list[int]] = []
    passes: list[int] = []
    opening = models.open_db

    def open_db(*args, **kwargs):
        made.extend([i] for i in range(5_000))
        return opening(*args, **kwargs)

    def counted(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append(info["generation"])

    monkeypatch.setattr(models, "open_db", open_db)
    app = EvpipeApp(db_url)
    gc.callbacks.append(counted)
    try:
        app.engine.dispose()
        more = [[i] for i in range(50)]  # (the first objects after: far too few for a pass of their own)
    finally:
        gc.callbacks.remove(counted)
    assert len(made) == 5_000 and len(more) == 50
    assert passes == []
    assert gc.isenabled()
    assert not any(o is made for o in gc.get_objects())  # frozen


async def test_an_older_load_landing_last_does_not_put_back_the_rows_before_a_change(pipeline, monkeypatch):
    """Two loads of the rows (a failed save reads them again; so does a change to the ladder): the
    newer cancels the older, but a thread's read runs on, and its rows, read before a move made
    since, landed after the newer load's and showed the prospect in its old stage again (the
    changes made while loading are kept to apply again only until a load lands)."""
    from evpipe.tui.screens import pipeline as pipeline_screen

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        await go_to(pilot, "Harbour Events")
        pid = screen.table.current_id
        older = HeldRead(monkeypatch, pipeline_screen, "load_rows")  # read before the move
        screen.load()
        assert await until(app, pilot, older.read.is_set)
        await pilot.press("greater_than_sign")  # Quote sent -> Date held
        store = Store(pipeline, who="tester")
        assert await until(app, pilot, lambda: store.get("Harbour Events").stage_name == "Date held")
        assert await until(app, pilot, lambda: not screen._pending)
        screen.load()  # the newer load: it lands first
        assert await until(app, pilot, lambda: not screen._loading)
        assert screen.view.ladder.stage(screen.view.rows[pid].stage_id).name == "Date held"
        older.release()
        await settle(pilot)
        await pilot.pause(0.1)
        await settle(pilot)
        assert screen.view.ladder.stage(screen.view.rows[pid].stage_id).name == "Date held"


async def test_an_older_look_up_of_contacts_landing_last_is_not_kept(pipeline, monkeypatch):
    """The detail line's contacts are looked up in a worker, a newer look-up cancelling the older
    (the cursor moved on, an edit changed them); the older one's contacts, landing last, were kept
    and shown until the prospect changed again."""
    from evpipe.tui.screens import pipeline as pipeline_screen

    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        await go_to(pilot, "Harbour Events")
        pid = screen.table.current_id
        before = {pid: ("Someone before", "+64 9 000 0000", "")}
        older = HeldRead(monkeypatch, pipeline_screen, "contacts_of", stale=before)
        screen.load_contacts([pid])
        assert await until(app, pilot, older.read.is_set)
        screen._contacts.pop(pid, None)
        screen.load_contacts([pid])  # the newer look-up lands first
        assert await until(app, pilot, lambda: pid in screen._contacts)
        older.release()
        await pilot.pause(0.2)
        await settle(pilot)
        assert screen._contacts[pid][0] == "Aroha Williams"
        assert any("Aroha Williams · +64 9 555 0142" in line for line in screen_lines(app))
