"""The dialogs and the add/edit form, driven by keys against a temporary database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from apphelpers import screen_text, settle
from sqlalchemy import text as sa_text
from textual.app import App
from textual.widgets import Input, Label, Select, TextArea

import evpipe.tui.app
from evpipe.models.errors import DomainError
from evpipe.models.store import Store
from evpipe.models.values import parse_money
from evpipe.tui.app import EvpipeApp
from evpipe.tui.dialogs import ActivityDialog, ChoiceDialog, ConfirmDialog, TextPrompt, parse_past_date
from evpipe.tui.screens.prospect_form import ProspectForm, format_custom, parse_custom

HOSTILE = "[@click=app.quit]hi[/]"


class Host(App):
    """A bare app that pushes one modal and keeps what it returns."""

    def __init__(self, make_modal) -> None:
        super().__init__()
        self.make_modal = make_modal
        self.results: list[object] = []
        self.notices: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(self.make_modal(), self.results.append)

    def notify(self, message, *args, **kwargs):  # keep what the user was told
        self.notices.append(str(message))
        return super().notify(message, *args, **kwargs)


def text_of(widget) -> str:
    return str(widget.render())


async def type_text(pilot, text: str) -> None:
    for ch in text:
        await pilot.press(ch if ch not in " " else "space")


# ---------------------------------------------------------------- ConfirmDialog


@pytest.mark.parametrize("key,answer", [("y", True), ("enter", True), ("n", False), ("escape", False)])
async def test_confirm_dialog_keys(key, answer):
    app = Host(lambda: ConfirmDialog(f"Delete {HOSTILE}?"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert text_of(app.screen.query_one("#question", Label)) == f"Delete {HOSTILE}?"
        await pilot.press(key)
        await pilot.pause()
        assert app.results == [answer]
        assert not isinstance(app.screen, ConfirmDialog)
        assert app.is_running  # the hostile name's [@click=app.quit] did nothing


async def test_a_long_question_wraps_instead_of_being_cut():
    question = (
        "Remove Quote sent and move its 8 prospects to Enquiry (10%)? EV -17,265 on the pipeline. "
        "u undoes the whole removal."
    )
    app = Host(lambda: ConfirmDialog(question))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        strips = app.screen._compositor.render_strips()
        text = " ".join("".join(seg.text for seg in strip).strip(" │") for strip in strips)
        assert "EV -17,265 on the pipeline." in text and "whole removal." in text


# ---------------------------------------------------------------- TextPrompt


async def test_text_prompt_validates_inline_and_keeps_text():
    def validate(text: str) -> None:
        parse_money(text)

    app = Host(lambda: TextPrompt("Value", "New value", validate=validate))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "12x")
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == []
        error = app.screen.query_one("#error", Label)
        assert error.has_class("-shown")
        assert "'12x' is not an amount" in text_of(error)
        assert app.screen.query_one("#text", Input).value == "12x"
        # Typing clears the error; a good amount is returned as typed.
        await pilot.press("backspace")
        await pilot.pause()
        assert not error.has_class("-shown")
        await type_text(pilot, "5")
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == ["125"]


async def test_text_prompt_typing_replaces_the_initial_text():
    app = Host(lambda: TextPrompt("Stale days", "Days", initial="14"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "30")
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == ["30"]


async def test_text_prompt_escape_returns_none():
    app = Host(lambda: TextPrompt("Reason", "Why?", initial="budget"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#text", Input).value == "budget"
        await pilot.press("escape")
        await pilot.pause()
        assert app.results == [None]


# ---------------------------------------------------------------- ActivityDialog


async def test_activity_dialog_checks_text_and_date_then_returns_triple():
    app = Host(ActivityDialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog = app.screen
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results == []
        assert "cannot be empty" in text_of(dialog.query_one("#text-error", Label))
        await type_text(pilot, "Rang about [b]menu[/b]")
        await pilot.press("enter")  # moves to "when"
        await pilot.pause()
        when = dialog.query_one("#when", Input)
        assert when.has_focus and when.value == "today"
        when.value = "2027-03-01"  # the future: refused
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == []
        assert "01 Mar 2027 is in the future" in text_of(dialog.query_one("#when-error", Label))
        when.value = "2026-11-20"
        # Choose "meeting" from the kind list by keyboard.
        dialog.query_one("#kind", Select).focus()
        await pilot.press("enter", "down", "down", "enter")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results == [("meeting", "Rang about [b]menu[/b]", "2026-11-20")]


async def test_activity_dialog_reads_when_as_the_past():
    app = Host(ActivityDialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#text", Input).value = "Left a voicemail"
        dialog.query_one("#when", Input).value = "3 days ago"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results == [("call", "Left a voicemail", "2026-11-24")]


async def test_activity_dialog_refuses_a_time_later_today_and_keeps_what_was_typed():
    """'today 9pm' at 10:00 passed the form, then the save refused it in a notice after the form
    had closed, and what happened was lost; the form says so and stays open."""
    app = Host(ActivityDialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#text", Input).value = "Long call about the menu"
        when = dialog.query_one("#when", Input)
        when.value = "today 11pm"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results == [] and app.screen is dialog
        assert "27 Nov 2026 23:00 is in the future" in text_of(dialog.query_one("#when-error", Label))
        assert dialog.query_one("#text", Input).value == "Long call about the menu"
        when.value = "today 9:05"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results == [("call", "Long call about the menu", "2026-11-27 09:05")]


@pytest.mark.parametrize(
    "typed,day",
    [
        ("", "2026-11-27"),
        ("today", "2026-11-27"),
        ("yesterday", "2026-11-26"),
        ("-3d", "2026-11-24"),
        ("2w ago", "2026-11-13"),
        ("wed", "2026-11-25"),
        ("20 nov", "2026-11-20"),
        ("30 nov", "2025-11-30"),
        ("20/11/2026", "2026-11-20"),
        ("20/11", "2026-11-20"),
        ("30/11", "2025-11-30"),
    ],
)
def test_parse_past_date(typed, day):
    assert parse_past_date(typed).isoformat() == day


@pytest.mark.parametrize(
    "typed,message",
    [
        ("tomorrow", "is in the future"),
        ("+3d", "is in the future"),
        ("2027-01-05", "is in the future"),
        ("soon", "is not a date"),
    ],
)
def test_parse_past_date_refuses(typed, message):
    with pytest.raises(DomainError, match=message):
        parse_past_date(typed)


async def test_activity_dialog_escape():
    app = Host(ActivityDialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.results == [None]


async def test_activity_dialog_asks_before_escape_throws_away_what_was_typed():
    """Escape closed the dialog with a long note typed, where the edit form asks first."""
    from evpipe.tui.dialogs import ConfirmDialog

    app = Host(ActivityDialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*"Called")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and app.results == []
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert isinstance(app.screen, ActivityDialog) and app.screen.query_one("#text", Input).value == "Called"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")  # throw it away
        await pilot.pause()
        assert app.results == [None]


async def test_choice_dialog_picks_with_keys():
    app = Host(lambda: ChoiceDialog("Move to", "Where?", [("A [x]", 1), ("B", 2), ("C", 3)]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.results == [2]


# ---------------------------------------------------------------- the form


async def test_add_form_parses_what_a_rep_types_and_the_store_accepts_it(store):
    ladder = store.ladder()
    app = Host(lambda: ProspectForm(ladder, owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ProspectForm)
        await type_text(pilot, "Harbour Events")
        await pilot.press("tab")
        await type_text(pilot, "Acme [Beta]")
        await pilot.press("tab")
        await type_text(pilot, "Mere")
        await pilot.press("tab")
        await type_text(pilot, "mere@example.nz")
        await pilot.press("tab")
        await type_text(pilot, "+64 21 555")
        await pilot.press("tab")
        await type_text(pilot, "$9,500")
        await pilot.pause()
        # The form reads back what it understood.
        assert text_of(form.query_one("#value-reading", Label)) == "9,500.00"
        # Stage: pick the third rung (Quote sent) from the list.
        await pilot.press("tab", "enter", "down", "down", "enter")
        await pilot.press("tab")
        await type_text(pilot, "jan")
        await pilot.pause()
        assert text_of(form.query_one("#month-reading", Label)) == "Jan 2027"
        await pilot.press("tab")
        await type_text(pilot, "fri")
        await pilot.pause()
        assert text_of(form.query_one("#follow_up-reading", Label)) == "Fri 4 Dec 2026"
        form.query_one("#notes", TextArea).text = "x [/"
        form.query_one("#custom", TextArea).text = "Guests: 80\n[b]bold[/b]: yes: really\n"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert len(app.results) == 1
    d = app.results[0]
    quote = next(s for s in ladder if s.name == "Quote sent")
    assert d == {
        "name": "Harbour Events",
        "value": "9500.00",
        "stage": quote.id,
        "month": "2027-01",
        "company": "Acme [Beta]",
        "contact_name": "Mere",
        "email": "mere@example.nz",
        "phone": "+64 21 555",
        "notes": "x [/",
        "custom": {"Guests": "80", "[b]bold[/b]": "yes: really"},
        "owner": "tester",
        "follow_up": date(2026, 12, 4),
    }
    result = store.add(**d)
    p = store.get(result.prospect.id)
    assert (p.value_cents, p.stage_name, p.expected_month, p.next_follow_up) == (
        950000,
        "Quote sent",
        "2027-01",
        date(2026, 12, 4),
    )
    assert p.custom == {"Guests": "80", "[b]bold[/b]": "yes: really"} and p.notes == "x [/"


async def test_validation_error_keeps_everything_typed(store):
    app = Host(lambda: ProspectForm(store.ladder(), owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen
        await type_text(pilot, HOSTILE)
        for _ in range(5):
            await pilot.press("tab")
        await type_text(pilot, "9,5x")
        await pilot.pause()
        value_error = form.query_one("#value-error", Label)
        assert value_error.has_class("-shown")  # checked as typed
        assert "'9,5x' is not an amount" in text_of(value_error)
        form.query_one("#month", Input).value = "smarch"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results == []  # not saved, still open
        assert isinstance(app.screen, ProspectForm)
        assert "'smarch' is not a month" in text_of(form.query_one("#month-error", Label))
        assert form.query_one("#name", Input).value == HOSTILE
        assert form.query_one("#value", Input).value == "9,5x"
        assert form.query_one("#value", Input).has_focus  # the first wrong field
        assert any("need fixing" in n for n in app.notices)
        form.query_one("#value", Input).value = "9 500"
        form.query_one("#month", Input).value = "2027-02"
        await pilot.pause()
        assert not value_error.has_class("-shown")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.results and app.results[0]["value"] == "9500.00" and app.results[0]["month"] == "2027-02"
        assert app.results[0]["name"] == HOSTILE


async def test_required_name_and_value_on_save(store):
    app = Host(lambda: ProspectForm(store.ladder(), owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen
        assert not form.query_one("#name-error", Label).has_class("-shown")  # not shouted before saving
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "name: cannot be empty" in text_of(form.query_one("#name-error", Label))
        assert "an amount is required" in text_of(form.query_one("#value-error", Label))
        assert form.query_one("#name", Input).has_focus
        form.query_one("#custom", TextArea).text = "no colon here"
        await pilot.pause()
        assert "line 1 'no colon here' needs a name" in text_of(form.query_one("#custom-error", Label))
        assert app.results == []


async def test_escape_asks_before_discarding_changes(store):
    app = Host(lambda: ProspectForm(store.ladder(), owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "Half typed")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ProspectForm)
        assert app.screen.query_one("#name", Input).value == "Half typed"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.results == [None]
        assert not isinstance(app.screen, (ProspectForm, ConfirmDialog))


async def test_escape_on_an_untouched_form_closes_at_once(store):
    app = Host(lambda: ProspectForm(store.ladder(), owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.results == [None]


async def test_edit_form_returns_only_changed_fields_for_store_edit(store):
    added = store.add(
        HOSTILE, "4000", "Enquiry", month="2027-03", notes="x [/", custom={"[b]bold[/b]": "v"}, owner="mere"
    )
    p = store.get(added.prospect.id)
    app = Host(lambda: ProspectForm(store.ladder(), p, owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen
        assert str(form.query_one("#form-title").render()) == f"Edit {HOSTILE}"
        assert form.query_one("#value", Input).value == "4,000.00"
        assert form.query_one("#custom", TextArea).text == "[b]bold[/b]: v"
        assert not form.query("#stage")  # the stage moves with keys, not here
        assert "Enquiry" in str(form.query_one("#stage-fixed").render())
        form.query_one("#value", Input).value = "4,500"
        form.query_one("#phone", Input).value = "09 555 1234"
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == [{"value": "4500.00", "phone": "09 555 1234"}]
    result = store.edit(p.id, expected_version=p.version, **app.results[0])
    assert result.d_ev_micros == 50000 * 1000  # 500.00 more at Enquiry's 10%
    after = store.get(p.id)
    assert (after.value_cents, after.phone, after.name, after.owner) == (450000, "09 555 1234", HOSTILE, "mere")


async def test_editing_one_field_never_fails_on_an_untouched_one(store):
    """Imported data may hold what the form would refuse (an email without @, a multi-line custom
    value); editing another field still saves, and only that field."""
    added = store.add("Imported", "500", custom={"Route": "Viaduct\nDevonport"})
    with store.engine.begin() as conn:  # (as an import writes it: the store itself refuses "n/a")
        conn.execute(sa_text("UPDATE prospect SET email = 'n/a' WHERE id = :id"), {"id": added.prospect.id})
    p = store.get(added.prospect.id)
    app = Host(lambda: ProspectForm(store.ladder(), p))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen
        assert form.query_one("#custom", TextArea).text == "Route: Viaduct\n  Devonport"
        form.query_one("#phone", Input).value = "021 555"
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == [{"phone": "021 555"}]


async def test_the_edit_form_clears_a_follow_up_with_the_words_the_command_line_takes(store):
    """`clear` clears a follow-up as `evpipe follow X clear` does (the form said it was not a date)."""
    p = store.get(store.add("Due", "100", follow_up="2026-12-10").prospect.id)
    app = Host(lambda: ProspectForm(store.ladder(), p))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen
        form.query_one("#follow_up", Input).value = "clear"
        await pilot.pause()
        assert text_of(form.query_one("#follow_up-reading", Label)) == "none"
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == [{"follow_up": None}]


async def test_edit_form_with_nothing_changed_returns_none(store):
    p = store.get(store.add("Plain", "100").prospect.id)
    app = Host(lambda: ProspectForm(store.ladder(), p))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == [None]
    assert "Nothing changed." in app.notices


def test_parse_custom_lines():
    assert parse_custom("a: 1\n\nb : two: three \n") == {"a": "1", "b": "two: three"}
    assert parse_custom("a: first\n  second\nb: x") == {"a": "first\nsecond", "b": "x"}
    custom = {"Route": "Viaduct\nDevonport", "[b]bold[/b]": "yes: really", "Empty": ""}
    assert parse_custom(format_custom(custom)) == custom
    with pytest.raises(DomainError, match="line 2 'oops' needs a name"):
        parse_custom("a: 1\noops")
    with pytest.raises(DomainError, match="'A' is given twice"):
        parse_custom("a: 1\nA: 2")
    with pytest.raises(DomainError, match="line 1: the name: cannot be empty"):
        parse_custom(": value")


def test_form_result_is_accepted_by_store_add_with_defaults(store):
    # The kwargs the form builds for an untouched optional set: owner None means "me".
    result = store.add(
        name="Min",
        value="1",
        stage=None,
        month=None,
        company="",
        contact_name="",
        email="",
        phone="",
        notes="",
        custom={},
        owner=None,
        follow_up=None,
    )
    assert Store(store.engine).get(result.prospect.id).owner == "tester"


# ---------------------------------------------------------------- in the real app


class RealApp(EvpipeApp):
    """The real app (its pipeline screen opens the form with `a` and `e`)."""

    CSS_PATH = str(Path(evpipe.tui.app.__file__).parent / EvpipeApp.CSS_PATH)


async def test_pipeline_add_and_edit_go_through_the_form(worked_engine, store):
    app = RealApp(worked_engine.url.render_as_string(hide_password=False), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, ProspectForm) and not form.editing
        form.query_one("#name", Input).value = HOSTILE
        form.query_one("#value", Input).value = "$1,200.50"
        form.query_one("#month", Input).value = "jan 2027"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert not isinstance(app.screen, ProspectForm)
        added = store.get(HOSTILE)
        assert (added.value_cents, added.expected_month, added.stage_name, added.owner) == (
            120050,
            "2027-01",
            "Suspect",
            "tester",
        )
        await pilot.press("e")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, ProspectForm) and form.editing
        target = form.prospect
        form.query_one("#company", Input).value = "Edited [co]"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        after = store.get(target.id)
        assert after.company == "Edited [co]" and after.version == target.version + 1
        assert app.is_running


async def test_saving_a_form_with_errors_again_says_so_once(engine):
    """ctrl+s pressed again on the same errors stacked a notice each time over the form's title
    and first fields; each field says what is wrong under it, and the notice shows once."""
    store = Store(engine)
    app = Host(lambda: ProspectForm(store.ladder(), owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#name", Input).value = "Deal"
        app.screen.query_one("#value", Input).value = "lots"
        for _ in range(3):
            await pilot.press("ctrl+s")
            await settle(pilot)
        assert app.notices.count("Some fields need fixing; nothing was saved yet.") == 1
        assert app.results == []


async def test_a_long_name_in_the_edit_form_title_ends_in_an_ellipsis_not_at_a_word(store):
    """At 80 columns the title "Edit <name>" of a long name was wrapped at a word and its second
    line cut away: it read as a whole, shorter name (two prospects differing only at the end read
    the same), with nothing to say it was cut."""
    name = "Harbour Logistics International Consolidated Shipping and Freight Forwarding Company Limited"
    p = store.get(store.add(name, "4000", "Enquiry").prospect.id)
    app = Host(lambda: ProspectForm(store.ladder(), p, owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        title = app.screen.query_one("#form-title")
        shown = "".join(seg.text for seg in title.render_line(0)).rstrip()
        assert shown.startswith("Edit Harbour Logistics International Consolidated Shipping")
        assert shown.endswith("…"), shown


async def test_notes_wrap_again_when_the_terminal_is_resized_mid_form(store):
    """Narrowed from 80 to 60 columns mid-form, the notes kept the lines painted at 80: the first
    line cut at the form's edge, "client; decision" shown nowhere; widened again, the narrow wrap."""
    note = "Extra note from priya Organising on behalf of a finance client; decision by the client's CFO."
    p = store.get(store.add("Harbour", "4000", "Enquiry", notes=note).prospect.id)
    app = Host(lambda: ProspectForm(store.ladder(), p, owner="tester"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for width, height in ((60, 20), (80, 24)):
            await pilot.resize_terminal(width, height)
            for _ in range(3):
                await pilot.pause()
            lines = [line.strip(" │▂▆▇") for line in screen_text(app).splitlines()]
            at = lines.index("Notes") + 1
            assert " ".join(lines[at : at + 2]) == note, (width, lines[at : at + 2])


async def test_ctrl_q_asks_before_losing_what_a_form_holds(worked_engine, store):
    """ctrl+q (Textual's quit) with a value typed in the edit form quit at once and the edit was
    gone without a word; esc in the form asks first. It asks too now: n stays, ctrl+q again quits."""
    app = RealApp(worked_engine.url.render_as_string(hide_password=False), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, ProspectForm) and form.editing
        form.query_one("#value", Input).value = "12,600"
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        assert app.is_running and isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await settle(app, pilot)
        assert app.is_running and app.screen is form and form.query_one("#value", Input).value == "12,600"
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
    assert not app.is_running


async def test_ctrl_q_quits_at_once_when_no_form_holds_anything(worked_engine):
    app = RealApp(worked_engine.url.render_as_string(hide_password=False), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
    assert not app.is_running
