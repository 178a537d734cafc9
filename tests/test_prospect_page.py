"""The prospect page: everything about one prospect, and every key that changes it."""

from __future__ import annotations

from datetime import date

import pytest
from apphelpers import RecordingApp, press, settle, shows
from sqlalchemy import func, select
from textual.widgets import Input, TextArea

from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.tables import Activity
from evpipe.tui.dialogs import ActivityDialog, ConfirmDialog, FollowUpDialog, TextPrompt
from evpipe.tui.screens.prospect_form import ProspectForm
from evpipe.tui.screens.prospect_page import ProspectPage

HOSTILE = "[@click=app.quit]hi[/]"


class Host(RecordingApp):
    """The real app, opened on the prospect page."""

    def __init__(self, engine, prospect_id: int) -> None:
        super().__init__(engine)
        self.prospect_id = prospect_id

    def on_mount(self) -> None:
        self.push_screen(ProspectPage(self.prospect_id))


@pytest.fixture
def hostile(worked_engine):
    """A prospect whose every field tries to be markup, with a history and a contact log."""
    s = Store(worked_engine, who="tester")
    r = s.add(
        HOSTILE,
        "10000",
        "Enquiry",
        month="2027-01",
        company="Acme [Beta]",
        contact_name="[/x]",
        email="a@b.nz",
        phone="+64 9 555",
        notes="x [/",
        custom={"[b]bold[/b]": "[i]v[/i]"},
        follow_up="2026-11-20",
        owner="tester",
    )
    pid = r.prospect.id
    s.move(pid, "next")  # Enquiry -> Quote sent, EV +1,500
    s.log_activity(pid, "call", "Rang [red]them[/red]", when="2026-11-25")
    return pid


def kpi(engine):
    k = kpis(engine)
    return k.tv_cents, k.ev_micros


async def test_page_shows_everything_literally(worked_engine, hostile):
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        text = await shows(app, pilot, HOSTILE, "Contact log (1)", "Enquiry -> Quote sent")
        for literal in (
            HOSTILE,
            "Acme [Beta]",
            "[/x]",
            "x [/",
            "[b]bold[/b]",
            "[i]v[/i]",
            "Rang [red]them[/red]",
            "a@b.nz",
            "+64 9 555",
        ):
            assert literal in text, literal
        assert "Quote sent  25%" in text
        assert "10,000" in text and "2,500" in text  # value and EV
        assert "EV +5,500 at Deposit paid" in text  # next-step gain 10,000 x (80% - 25%)
        assert "Jan 2027" in text
        assert "Fri 20 Nov  7 days overdue" in text
        assert "added on Enquiry 10%" in text and "EV +1,000" in text
        assert "Enquiry -> Quote sent 25%" in text and "EV +1,500" in text
        assert "Contact log (1)" in text
        assert app.is_running


async def test_advance_back_won_and_undo_change_the_database_and_the_page(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    tv0, ev0 = kpi(worked_engine)
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "greater_than_sign")
        assert store.get(hostile).stage_name == "Deposit paid"
        assert kpi(worked_engine) == (tv0, ev0 + 10000_00 * 5500)
        assert "Deposit paid  80%" in await shows(app, pilot, "Deposit paid  80%")
        assert "Quote sent -> Deposit paid 80%" in await shows(app, pilot, "Quote sent -> Deposit paid 80%")
        assert any("Quote sent -> Deposit paid, EV +5,500" in n for n in app.notices)
        assert app.changes[-1].d_ev_micros == 10000_00 * 5500
        await press(app, pilot, "full_stop")  # "." also advances: the last open rung goes to Won
        assert store.get(hostile).stage_name == "Won"
        await press(app, pilot, "comma")  # back from Won reopens on Deposit paid
        assert store.get(hostile).stage_name == "Deposit paid"
        await press(app, pilot, "less_than_sign")
        assert store.get(hostile).stage_name == "Quote sent"
        await press(app, pilot, "w")
        assert store.get(hostile).stage_kind == "won"
        assert "Won  100%  closed 27 Nov 2026" in await shows(app, pilot, "Won  100%  closed 27 Nov 2026")
        await press(app, pilot, "u")
        assert store.get(hostile).stage_name == "Quote sent"
        assert kpi(worked_engine) == (tv0, ev0)
        assert len(app.changes) == 6


async def test_two_quick_advances_both_land(worked_engine, hostile):
    """Writes queue: the second key uses the version the first one produced, not a stale one."""
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("greater_than_sign", "greater_than_sign")
        await settle(app, pilot)
        assert store.get(hostile).stage_name == "Won"
        assert not any("someone else" in n for n in app.notices)


async def test_lost_asks_a_reason(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "l")
        assert isinstance(app.screen, TextPrompt)
        app.screen.query_one("#text", Input).value = "went with [Other] ferries"
        await press(app, pilot, "enter")
        p = store.get(hostile)
        assert p.stage_kind == "lost" and p.lost_reason == "went with [Other] ferries"
        assert "went with [Other] ferries" in await shows(app, pilot, "went with [Other] ferries")
        # escape on the reason prompt changes nothing
        await press(app, pilot, "comma")  # reopen
        await press(app, pilot, "l", "escape")
        assert store.get(hostile).stage_kind == "open"


async def test_edit_from_the_page(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "e")
        form = app.screen
        assert isinstance(form, ProspectForm)
        form.query_one("#value", Input).value = "12,000"
        form.query_one("#notes", TextArea).text = "now [b]more[/b]"
        await press(app, pilot, "ctrl+s")
        assert isinstance(app.screen, ProspectPage)
        p = store.get(hostile)
        assert p.value_cents == 1200000 and p.notes == "now [b]more[/b]"
        assert app.changes[-1].d_ev_micros == 2000_00 * 2500
        text = await shows(app, pilot, "12,000", "now [b]more[/b]")
        assert "12,000" in text and "now [b]more[/b]" in text


async def test_log_activity_and_follow_up(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "n")
        assert isinstance(app.screen, ActivityDialog)
        app.screen.query_one("#text", Input).value = "Emailed the [u]menu[/u]"
        await press(app, pilot, "ctrl+s")
        assert isinstance(app.screen, FollowUpDialog)  # a call asks for the next step; escape skips it
        await press(app, pilot, "escape")
        acts = store.activities(hostile)
        assert acts[0].text == "Emailed the [u]menu[/u]" and acts[0].kind == "call"
        assert store.get(hostile).next_follow_up == date(2026, 11, 20)  # skipped: as it was
        assert "Contact log (2)" in await shows(app, pilot, "Contact log (2)")
        await press(app, pilot, "f")
        assert isinstance(app.screen, FollowUpDialog)
        assert app.screen.query_one("#day", Input).value == "2026-11-20"
        app.screen.query_one("#day", Input).value = "31/02/2027"
        await press(app, pilot, "enter")
        assert isinstance(app.screen, FollowUpDialog)  # refused inline, still open
        assert "February 2027 has 28 days" in str(app.screen.query_one("#day-error").render())
        app.screen.query_one("#day", Input).value = "+3d"
        await press(app, pilot, "enter")
        assert store.get(hostile).next_follow_up == date(2026, 11, 30)
        assert "Mon 30 Nov  in 3 days" in await shows(app, pilot, "Mon 30 Nov  in 3 days")
        await press(app, pilot, "f")
        app.screen.query_one("#day", Input).value = "none"
        await press(app, pilot, "enter")
        assert store.get(hostile).next_follow_up is None
        assert "none set" in await shows(app, pilot, "none set")


async def test_delete_asks_then_leaves_and_undo_brings_it_back(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    tv0, ev0 = kpi(worked_engine)
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "d")
        assert isinstance(app.screen, ConfirmDialog)
        await press(app, pilot, "n")
        assert isinstance(app.screen, ProspectPage)
        assert store.get(hostile).deleted is False
        await press(app, pilot, "d", "y")
        assert not isinstance(app.screen, ProspectPage)  # back to where it was opened from
        assert store.get(hostile, include_deleted=True).deleted is True
        assert kpi(worked_engine) == (tv0 - 1000000, ev0 - 1000000 * 2500)
    store.undo()
    assert store.get(hostile).deleted is False


async def test_escape_goes_back(worked_engine, hostile):
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ProspectPage)
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, ProspectPage)


async def test_someone_elses_change_is_not_overwritten(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    other = Store(worked_engine, who="mere")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        other.move(hostile, "won")  # mere closes it while this page is open
        await press(app, pilot, "greater_than_sign")
        p = store.get(hostile)
        assert p.stage_name == "Won"  # mere's change stands
        assert any("changed by someone else" in n for n in app.notices)
        assert "Won  100%" in await shows(app, pilot, "Won  100%")  # the page reloaded to show it
        # The next key works on the fresh version.
        await press(app, pilot, "comma")
        assert store.get(hostile).stage_name == "Quote sent"


async def test_a_stale_edit_is_refused_as_a_conflict(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        app.live.stop()  # the page has not seen mere's change (tests/test_live.py: it would)
        # mere sets the follow-up too (a change to another field would be merged: test_conflicts.py)
        Store(worked_engine, who="mere").edit(hostile, value="20000", follow_up="2026-12-24")
        await press(app, pilot, "f")
        app.screen.query_one("#day", Input).value = "tomorrow"
        await press(app, pilot, "enter")
        p = store.get(hostile)
        assert p.next_follow_up == date(2026, 12, 24) and p.value_cents == 2000000
        assert any("changed by someone else" in n and "mere changed follow-up" in n for n in app.notices)
        assert "20,000" in await shows(app, pilot, "20,000")


async def test_refused_move_says_why(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    store.move(hostile, "Suspect")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "comma")
        assert any("already on the first stage, Suspect" in n for n in app.notices)
        assert store.get(hostile).stage_name == "Suspect"


async def test_a_deleted_prospect_shows_as_gone(worked_engine, hostile):
    Store(worked_engine, who="mere").delete(hostile)
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "This prospect is gone" in await shows(app, pilot, "This prospect is gone")
        await press(app, pilot, "greater_than_sign")
        assert "This prospect is gone (it may have been deleted): nothing to change here; esc goes back." in app.notices


async def test_a_prospect_a_colleague_deleted_names_them_and_does_not_offer_undo(worked_engine, hostile):
    """The gone page said "u (undo) brings back your own delete" whoever deleted it: after a
    colleague's delete, u there took back the rep's own last change, an edit of another prospect."""
    store = Store(worked_engine, who="tester")
    other = store.add("Other Deal", "5000", "Suspect").prospect.id
    store.edit(other, value="6000")  # the rep's last change
    Store(worked_engine, who="mere").delete(hostile)
    app = Host(worked_engine, hostile)
    app.who = "tester"
    async with app.run_test(size=(120, 24)) as pilot:
        await settle(app, pilot)
        text = await shows(app, pilot, "mere deleted it")
        assert "mere deleted it at" in text and "u (undo)" not in text
    Store(worked_engine, who="tester").delete(other)
    app = Host(worked_engine, other)
    app.who = "tester"
    async with app.run_test(size=(120, 24)) as pilot:
        await settle(app, pilot)
        assert "You deleted it at" in await shows(app, pilot, "You deleted it")


def test_every_binding_has_an_id_a_description_and_an_action():
    for binding in ProspectPage.BINDINGS:
        assert binding.id and binding.id.startswith("prospect.") and binding.description
        assert callable(getattr(ProspectPage, "action_" + binding.action.partition("(")[0], None)), binding.action
        assert binding.action in ProspectPage.ACTION_HELP


async def test_command_palette_runs_a_page_action(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+p")
        for ch in "mark won":
            await pilot.press(ch if ch != " " else "space")
        await pilot.pause(0.3)
        await press(app, pilot, "enter")
        assert store.get(hostile).stage_kind == "won"
        assert isinstance(app.screen, ProspectPage)
        # only this prospect moved (not whichever row the pipeline beneath has its cursor on)
        assert [store.get(n).stage_name for n in "ABCD"] == ["Quote sent", "Suspect", "Deposit paid", "Won"]


async def test_enter_on_the_pipeline_opens_the_page_and_escape_returns(worked_engine):
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        pipeline = app.screen
        await press(app, pilot, "enter")
        assert isinstance(app.screen, ProspectPage)
        page = app.screen
        name = Store(worked_engine).get(page.prospect_id).name
        assert name in await shows(app, pilot, name)
        await press(app, pilot, "escape")
        assert app.screen is pipeline


async def test_bindings_can_be_remapped_by_id(worked_engine, hostile):
    store = Store(worked_engine, who="tester")
    app = Host(worked_engine, hostile)
    async with app.run_test(size=(80, 24)) as pilot:
        app.set_keymap({"prospect.won": "W"})
        await settle(app, pilot)
        await press(app, pilot, "w")
        assert store.get(hostile).stage_kind == "open"  # w no longer marks it won
        await press(app, pilot, "W")
        assert store.get(hostile).stage_kind == "won"


async def test_a_move_then_enter_then_a_move_in_one_burst_are_both_saved(worked_engine, tmp_path):
    """`>` Enter `>` typed fast while the first save waited (another writer held the lock): the
    page read the prospect before the list's move was saved, and its own `>` was then refused as
    "changed by someone else since this page loaded (... tester moved it ...)", the rep's own move."""
    import sqlite3

    from evpipe.models.locations import sqlite_path

    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        pipeline = app.screen
        rungs = [s.name for s in Store(worked_engine).ladder() if s.kind == "open"]
        pid = next(
            r.id
            for r in map(pipeline.table.view.rows.__getitem__, pipeline.table.view.rows)
            if Store(worked_engine).get(r.id).stage_name in rungs[:-2]
        )
        assert pipeline.table.go_to(pid)
        await settle(app, pilot)
        start = rungs.index(Store(worked_engine).get(pid).stage_name)
        holder = sqlite3.connect(
            sqlite_path(worked_engine.url.render_as_string(hide_password=False)), isolation_level=None
        )
        holder.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("greater_than_sign", "enter", "greater_than_sign")
            await pilot.pause(0.6)
        finally:
            holder.rollback()
            holder.close()
        await settle(app, pilot, until=lambda a: Store(worked_engine).get(pid).stage_name == rungs[start + 2])
        await settle(app, pilot)
        assert Store(worked_engine).get(pid).stage_name == rungs[start + 2]
        assert not [n for n in app.notices if "someone else" in n], app.notices


async def test_a_key_on_a_page_whose_prospect_was_deleted_elsewhere_says_so(worked_engine):
    app = RecordingApp(worked_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "enter")
        page = app.screen
        assert isinstance(page, ProspectPage)
        await shows(app, pilot, "Every change, newest first")
        Store(worked_engine, who="priya").delete(page.prospect_id)
        await shows(app, pilot, "This prospect is gone")
        await press(app, pilot, "greater_than_sign")
        assert "This prospect is gone (it may have been deleted): nothing to change here; esc goes back." in app.notices
        assert "The prospect is not loaded yet." not in app.notices


def test_a_closed_prospects_follow_up_is_not_called_overdue():
    """A lost prospect's page said its follow-up was "26 days overdue", while the list's `!` and
    the focus list leave a closed prospect out of what is due."""
    from datetime import date

    from evpipe.tui.screens.prospect_page import follow_up_text

    today = date(2026, 12, 2)
    assert "overdue" in follow_up_text(date(2026, 11, 6), today, "14:30").plain
    closed = follow_up_text(date(2026, 11, 6), today, "14:30", "send the quote", is_open=False).plain
    assert "overdue" not in closed and "Fri 6 Nov 14:30" in closed and "send the quote" in closed
    assert "no longer due" in closed


async def test_a_contact_point_on_a_prospect_deleted_a_moment_ago_names_who_deleted_it(worked_engine, hostile):
    """A colleague deletes the prospect while its page is open, and before the page hears of it
    the rep logs a contact point: it is not saved, and the notice says who deleted it and when.
    It said the prospect "was changed by someone else (prospect: there is no prospect #28)" and
    to make the change again, which could never work."""
    app = Host(worked_engine, hostile)
    app.who = "tester"
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        Store(worked_engine, who="priya").delete(hostile)
        await press(app, pilot, "n")
        assert isinstance(app.screen, ActivityDialog)
        app.screen.query_one("#text", Input).value = "called them"
        await press(app, pilot, "ctrl+s")
        if isinstance(app.screen, FollowUpDialog):
            await press(app, pilot, "escape")
        text = await shows(app, pilot, "priya deleted it at")
        assert "priya deleted it at" in text
        assert not any("changed by someone else" in n for n in app.notices)
        assert any(n.startswith("priya deleted it at") and "nothing to save it to" in n for n in app.notices)
    with worked_engine.connect() as conn:  # and nothing was written for it
        assert conn.scalar(select(func.count()).select_from(Activity).where(Activity.text == "called them")) == 0


#: What rich counts in cells other than terminals draw them: a family joined by zero width
#: joiners, a skin tone, a heart with its emoji selector (models.names.display_name).
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
THUMB = "\U0001f44d\U0001f3fd"
HEART = "\u2764\ufe0f"
DRAWN_APART = {"\u200d", "\U0001f3fd", "\ufe0f"}


async def test_page_shows_emoji_sequences_as_terminals_draw_them(worked_engine):
    """The page's title, company, contact, custom field, notes, follow-up note, contact log and
    stage history leave joiners, skin tones and emoji selectors out for display, as the list does:
    tmux 3.3 drew the thumb and its tone in four cells and the heart in one, where rich counted two
    each, so the rest of those lines moved (and a line a cell short left the old screen's cell)."""
    s = Store(worked_engine, who="tester")
    s.update_stage("Enquiry", name=f"Enquiry {HEART}")
    r = s.add(
        f"Fam {FAMILY} Ltd",
        "10000",
        f"Enquiry {HEART}",
        month="2027-01",
        company=f"Co {THUMB}",
        contact_name=f"Ana {HEART}",
        notes=f"likes {THUMB}",
        custom={f"k {HEART}": f"v {FAMILY}"},
        owner="tester",
    )
    pid = r.prospect.id
    s.set_follow_up(pid, "2026-12-20", note=f"bring {HEART}")
    s.log_activity(pid, "call", f"Rang {THUMB}", when="2026-11-25")
    app = Host(worked_engine, pid)
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        text = await shows(app, pilot, "Contact log (1)")
        for shown in (
            "Fam \U0001f468\U0001f469\U0001f467 Ltd  ·  Co \U0001f44d",
            "Ana \u2764",
            "likes \U0001f44d",
            "k \u2764",
            "v \U0001f468\U0001f469\U0001f467",
            "bring \u2764",
            "Rang \U0001f44d",
            "added on Enquiry \u2764 10%",
        ):
            assert shown in text, shown
        assert not DRAWN_APART & set(text), text
