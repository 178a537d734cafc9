"""Keys that never surprise (issue 10, point 6): the footer always shows q and ?, q goes back on a
pushed page, closed prospects say what to do instead, a burst of keys lands where it was typed,
the sorted column is marked, and the import screen completes paths and points to the stage map."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from apphelpers import RecordingApp, screen_text, settle, shows, until
from textual import events
from textual.widgets import Input

from evpipe.models.importer import plan_import
from evpipe.models.store import Store
from evpipe.tui.cli.args import options_from_args
from evpipe.tui.dialogs import TextPrompt
from evpipe.tui.screens.help import HelpScreen
from evpipe.tui.screens.import_screen import ImportScreen
from evpipe.tui.screens.pipeline import PipelineScreen
from evpipe.tui.screens.prospect_form import ProspectForm
from evpipe.tui.screens.prospect_page import ProspectPage
from evpipe.tui.widgets.path_suggester import complete_path

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def loop_db(engine):
    """Open prospects with follow-ups, one won and one lost, on the default ladder."""
    s = Store(engine, who="tester")
    s.add("Harbour Events", "6000", "Quote sent", month="2026-12", follow_up="2026-11-20")  # gain 1,500
    s.add("Kauri Software", "20000", "Enquiry", month="2027-01", follow_up="2026-12-02")  # gain 3,000
    s.add("Small Fry", "1000", "Suspect", month="2027-02")  # gain 50
    s.add("Signed Deal", "9000", "Won", month="2026-11")
    s.add("Gone Deal", "4000", "Lost", month="2026-11")
    return engine


def footer_line(app) -> str:
    return screen_text(app).splitlines()[-1]


def burst(app, *keys: str) -> None:
    """Keys as they arrive in one write over a slow link: all queued before any is handled."""
    for key in keys:
        if len(key) == 1:
            app.post_message(events.Key("space" if key == " " else key, key))
        else:
            app.post_message(events.Key(key, None))


def typed(text: str) -> list[str]:
    return list(text)


async def go_to(app, pilot, name: str) -> None:
    app.notices.clear()
    pid = Store(app.engine, who="tester").get(name).id
    assert await until(app, pilot, lambda: app.pipeline.table.go_to(pid))
    await settle(app, pilot)


# ---------------------------------------------------------------- the footer and q


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6", "7"])
async def test_the_footer_shows_q_and_help_first_at_80x24(loop_db, key):
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await settle(app, pilot)
        assert await until(app, pilot, lambda: footer_line(app).split()[:4] == ["q", "Quit", "?", "Help"]), footer_line(
            app
        )


async def test_q_goes_back_from_a_pushed_page_and_quits_only_from_the_top(loop_db):
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")  # the cursor's prospect page
        await settle(app, pilot)
        assert isinstance(app.screen, ProspectPage)
        assert await until(app, pilot, lambda: footer_line(app).split()[:4] == ["q", "Back", "?", "Help"])
        await pilot.press("q")
        await settle(app, pilot)
        assert isinstance(app.screen, PipelineScreen) and app.is_running
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await settle(app, pilot)
        assert isinstance(app.screen, PipelineScreen) and app.is_running
        await pilot.press("a")  # the add form: q is a letter of the name there
        await settle(app, pilot)
        assert isinstance(app.screen, ProspectForm)
        await pilot.press("q")
        await settle(app, pilot)
        assert app.screen.query_one("#name", Input).value == "q"
        await pilot.press("escape", "y")  # discard
        await settle(app, pilot)
        assert isinstance(app.screen, PipelineScreen)
        await pilot.press("q")
        await settle(app, pilot)
        assert app.return_code == 0 and not app.is_running


# ---------------------------------------------------------------- closed prospects


@pytest.mark.parametrize(
    ("name", "key", "said"),
    [
        ("Gone Deal", "l", "Gone Deal is Lost already: < reopens it."),
        ("Gone Deal", "greater_than_sign", "Gone Deal is Lost: < reopens it, then > advances it."),
        ("Signed Deal", "w", "Signed Deal is Won already: < reopens it."),
        ("Signed Deal", "greater_than_sign", "Signed Deal is Won: < reopens it, then > advances it."),
    ],
)
async def test_a_closed_prospect_says_what_to_do_instead_without_asking(loop_db, name, key, said):
    store = Store(loop_db, who="tester")
    before = store.get(name)
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")  # won and lost ones are out of the list until c brings them in
        await settle(app, pilot)
        await go_to(app, pilot, name)
        await pilot.press(key)
        await settle(app, pilot)
        assert not isinstance(app.screen, TextPrompt)  # no reason asked for
        assert said in app.notices
        # and on its page
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ProspectPage)
        await until(app, pilot, lambda: app.screen.data is not None)
        app.notices.clear()
        await pilot.press(key)
        await settle(app, pilot)
        assert isinstance(app.screen, ProspectPage) and said in app.notices
    assert store.get(name).version == before.version  # nothing was written


# ---------------------------------------------------------------- a burst of keys


async def test_a_burst_lands_in_the_fields_it_was_typed_for_and_enter_saves(loop_db):
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        assert isinstance(app.screen, ProspectForm)
        # name, a typo put right, tab, company; tab x4 to the value; enter saves, all in one write
        burst(app, *typed("Sam Leex"), "backspace", "tab", *typed("sam@example.com"))
        burst(app, "tab", "tab", "tab", "tab", *typed("5000"), "enter")
        assert await until(app, pilot, lambda: isinstance(app.screen, PipelineScreen))
        # (the closed form's fields may be gone already: what was saved tells where the keys went)
        await until(app, pilot, lambda: any(getattr(c, "prospect", None) for c in app.changes))
    sam = store.get("Sam Lee")
    assert sam.company == "sam@example.com" and sam.value_cents == 500000


async def test_a_burst_through_a_drop_down_list_chooses_and_goes_on_to_the_next_field(loop_db):
    """Enter Down Down Enter Tab and a month, in one write, on the add form's Stage: Enter opened
    the list only once the keys after it had gone to the closed list (the list stayed open on the
    first stage), and once a choice is taken Textual puts the focus back after the keys typed."""
    from textual.widgets import Select

    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, ProspectForm)
        burst(app, *typed("Boat party"))
        stage = form.query_one("#stage", Select)
        stage.focus()
        await settle(app, pilot)
        first = stage.value
        burst(app, "enter", "down", "down", "enter", "tab", *typed("2027-03"))
        assert await until(app, pilot, lambda: form.query_one("#month", Input).value == "2027-03")
        assert not stage.expanded and stage.value != first
        form.query_one("#value", Input).value = "1000"
        burst(app, "ctrl+s")
        assert await until(app, pilot, lambda: isinstance(app.screen, PipelineScreen))
        await until(app, pilot, lambda: any(getattr(c, "prospect", None) for c in app.changes))
    saved = store.get("Boat party")
    ladder = [s.name for s in store.ladder()]
    assert saved.stage_name == ladder[ladder.index(store.stage(first).name) + 2] and saved.expected_month == "2027-03"


async def test_a_question_answers_once_when_enter_comes_twice_in_a_burst(loop_db):
    """Enter Enter in one write (`7p`, backspace, `6`, Enter Enter over SSH): both reached the
    prompt's field before it closed, so it answered twice; Textual's dismiss then called back again
    and popped the pipeline itself, and the app stopped (ScreenStackError). A dialog answers once."""
    answers: list[str | None] = []
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        prompt = TextPrompt("Probability", "Suspect, in %", "5")
        app.push_screen(prompt, answers.append)
        assert await until(app, pilot, lambda: app.screen is prompt and bool(prompt.query(Input)))
        field = prompt.query_one(Input)
        field.post_message(Input.Submitted(field, "6"))
        field.post_message(Input.Submitted(field, "6"))
        assert await until(app, pilot, lambda: isinstance(app.screen, PipelineScreen))
        await settle(app, pilot)
        assert app.is_running and isinstance(app.screen, PipelineScreen)
    assert answers == ["6"]


async def test_j_and_k_move_in_the_focus_list_as_in_the_pipeline(loop_db):
    """The README's `j k` moved only the pipeline, the board and the help: `jj>` on the focus list
    left the cursor on the first row and advanced that prospect instead of the third."""
    from evpipe.tui.screens.focus import FocusScreen

    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        assert await until(app, pilot, lambda: isinstance(app.screen, FocusScreen) and len(app.screen.items) >= 3)
        await settle(app, pilot)
        items = list(app.screen.items)
        stages = {i.id: store.get(i.id).stage_name for i in items}
        burst(app, "j", "j", "greater_than_sign")
        third = items[2].id
        assert await until(app, pilot, lambda: store.get(third).stage_name != stages[third])
        await settle(app, pilot)
        burst(app, "k", "k", "k")
        await settle(app, pilot)
        assert app.screen.table.cursor_row == 0
    assert [store.get(i.id).stage_name != stages[i.id] for i in items[:3]] == [False, False, True]


async def test_a_name_too_long_for_a_list_ends_in_an_ellipsis(loop_db):
    """The focus and review lists cut a long name wherever the column ended (`Pacific Reinsurance
    Chri`), so a cut name read as a whole one."""
    from evpipe.tui.screens.focus import FocusScreen

    Store(loop_db, who="tester").add(
        "Pacific Reinsurance Christmas cocktail evening", "9000", "Enquiry", month="2026-12", follow_up="2026-11-21"
    )
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        assert await until(app, pilot, lambda: isinstance(app.screen, FocusScreen) and len(app.screen.items) >= 4)
        await settle(app, pilot)
        line = next(line for line in screen_text(app).splitlines() if "Pacific" in line)
        assert "Pacific Reinsurance Chr…" in line, line


async def test_keys_typed_after_s_act_on_the_new_order(loop_db):
    """`s` sorts in a worker: `sj>` in one burst moved and advanced in the old order. By expected
    month: Harbour, Kauri, Small Fry; by EV: Kauri, Harbour, Small Fry. On Harbour, `sj>` must
    advance Small Fry (below Harbour by EV), not Kauri (below it by month)."""
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Harbour Events")
        burst(app, "s", "j", "greater_than_sign")
        assert await until(app, pilot, lambda: store.get("Small Fry").stage_name == "Enquiry")
        await settle(app, pilot)
        assert app.pipeline.view.sort == "ev"
    assert (store.get("Kauri Software").stage_name, store.get("Harbour Events").stage_name) == ("Enquiry", "Quote sent")


async def test_bindings_in_a_burst_run_in_order(loop_db):
    """backspace, ctrl+u and shift+tab typed between letters act where they were typed."""
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        form = app.screen
        burst(app, *typed("wrong"), "ctrl+u", *typed("Ann"), "tab", *typed("Co"), "shift+tab", "backspace", "e")
        assert await until(app, pilot, lambda: form.query_one("#name", Input).value == "Ane")
        assert form.query_one("#company", Input).value == "Co"


@pytest.mark.parametrize("reason", ["went cold", "undo it"])
async def test_a_burst_that_opens_a_dialog_lands_its_keys_in_the_dialog(loop_db, reason):
    """`l` and the reason typed in one write: the letters go into the reason as it opens (they
    were lost while the dialog was still being put together), and a letter that is a pipeline key
    (u: undo) is a letter there too."""
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Kauri Software")
        burst(app, "l", *typed(reason), "enter")
        assert await until(app, pilot, lambda: store.get("Kauri Software").stage_kind == "lost")
        await settle(app, pilot)
        assert isinstance(app.screen, PipelineScreen)
    assert store.get("Kauri Software").lost_reason == reason
    assert store.get("Small Fry").stage_kind == "open" and store.get("Harbour Events").stage_kind == "open"


async def test_a_burst_that_opens_the_add_form_fills_it(loop_db):
    """`a`, a name, tabs to the value, the value and enter, all in one write: one new prospect."""
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        burst(app, "a", *typed("Quick One"), "tab", "tab", "tab", "tab", "tab", *typed("700"), "enter")
        assert await until(app, pilot, lambda: any(getattr(c, "prospect", None) for c in app.changes))
    assert store.get("Quick One").value_cents == 70000


async def test_a_burst_that_opens_the_edit_form_fills_it(loop_db):
    """`e`, tabs to the value, ctrl+u, a new value and ctrl+s, all in one write: the value is
    changed and nothing else. The form opens once its prospect is read; the keys typed meanwhile
    went to the list (the value's `4` opened the trend screen) and the rest saved as the name."""
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Small Fry")
        burst(app, "e", "tab", "tab", "tab", "tab", "tab", "ctrl+u", *typed("4900"), "ctrl+s")
        assert await until(app, pilot, lambda: store.get("Small Fry").value_cents == 490000)
        await settle(app, pilot)
        assert isinstance(app.screen, (PipelineScreen, ProspectForm)), type(app.screen).__name__
    p = store.get("Small Fry")
    assert (p.name, p.value_cents, p.company) == ("Small Fry", 490000, "")


async def test_keys_typed_before_a_page_is_read_wait_for_it(loop_db):
    """Enter, n, a note and ctrl+s in one write: the page opens, and its `n` waits until the
    prospect is read (it was refused as "not loaded yet", and the note's letters then ran as the
    page's keys: its `l` asked why the prospect was lost)."""
    store = Store(loop_db, who="tester")
    pid = store.get("Kauri Software").id
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Kauri Software")
        burst(app, "enter", "n", *typed("Called, will ring back"), "ctrl+s")
        assert await until(app, pilot, lambda: any(a.text == "Called, will ring back" for a in store.activities(pid)))
        await settle(app, pilot)
        assert "The prospect is not loaded yet." not in app.notices
        assert not isinstance(app.screen, TextPrompt)  # no "Lost: ..." question
    assert store.get("Kauri Software").stage_kind == "open"


@pytest.mark.parametrize("where", ["page", "pipeline"])
async def test_a_burst_past_a_contact_points_enter_lands_in_the_next_follow_up(loop_db, where):
    """`n`, a note, enter, then the next follow-up and its time in one write: the enter's answer
    was still on its way up from the field when the next keys came, so `2w` went into the closing
    dialog's "when" (which then refused "today2w10:30" and logged nothing), or on the pipeline
    ran as the `2` key (the Focus screen) and left the follow-up "w"."""
    from evpipe.models import clock

    store = Store(loop_db, who="tester")
    pid = store.get("Kauri Software").id
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Kauri Software")
        if where == "page":
            await pilot.press("enter")
            assert await until(app, pilot, lambda: isinstance(app.screen, ProspectPage) and app.screen.data is not None)
            await settle(app, pilot)
        shown = type(app.screen)
        burst(
            app, "n", *typed("Called"), "tab", *typed("today"), "enter", *typed("2w"), "tab", *typed("10:30"), "enter"
        )
        assert await until(app, pilot, lambda: store.get(pid).follow_up_time is not None, timeout=5)
        await settle(app, pilot)
        assert type(app.screen) is shown
    saved = store.get(pid)
    assert (saved.next_follow_up, saved.follow_up_time) == (clock.today() + timedelta(days=14), "10:30")
    assert [a.text for a in store.activities(pid)] == ["Called"]


async def test_keys_held_for_a_page_that_never_answers_run_after_the_limit(loop_db, monkeypatch):
    """A page whose read never comes back (a stuck database) holds the keys typed for it no
    longer than KEY_HOLD_LIMIT: the escape typed after enter then takes the rep back."""
    import evpipe.tui.app as app_module

    monkeypatch.setattr(app_module, "KEY_HOLD_LIMIT", 0.5)
    monkeypatch.setattr(ProspectPage, "load", lambda self: None)  # (never read, never answered)
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Kauri Software")
        burst(app, "enter", "escape")
        assert await until(app, pilot, lambda: isinstance(app.screen, ProspectPage))
        await pilot.pause(0.2)
        assert isinstance(app.screen, ProspectPage)  # the escape waits for the page...
        assert await until(app, pilot, lambda: isinstance(app.screen, PipelineScreen), timeout=5)  # ...this long


async def test_keys_held_for_a_page_whose_read_fails_run_at_the_failure(loop_db, monkeypatch):
    """A page whose read fails says so in its title, and lets the keys typed for it run then, not
    after KEY_HOLD_LIMIT: the escape typed after enter takes the rep back at once."""
    import evpipe.tui.app as app_module

    monkeypatch.setattr(app_module, "KEY_HOLD_LIMIT", 60.0)
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Kauri Software")

        def broken(self, ref):
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(Store, "get", broken)
        burst(app, "enter", "escape")  # the page opens, fails to read, and the escape runs then
        assert await until(app, pilot, lambda: any("load one prospect" in n for n in app.notices), timeout=5)
        assert await until(app, pilot, lambda: isinstance(app.screen, PipelineScreen), timeout=5)


async def test_keys_typed_with_the_key_that_opens_a_screen_wait_for_its_rows(loop_db):
    """`7`, `p`, a probability and enter in one write: the stages screen opens, and its `p` waits
    until the stages are read (it said "No stage is selected", and the rest was lost)."""
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        burst(app, "7", "p", *typed("30"), "enter")
        text = await shows(app, pilot, "Set Suspect")
        assert "Set Suspect from 5% to 30%?" in text, (
            app.notices,
            type(app.screen).__name__,
            [type(s).__name__ for s in app.screen_stack],
        )
        assert "No stage is selected." not in app.notices
        await pilot.press("y")
        assert await until(app, pilot, lambda: store.stage("Suspect").probability_bp == 3000)


async def test_keys_typed_while_evpipe_starts_wait_for_the_first_rows(loop_db):
    """`j` and `>` typed as evpipe starts, before its rows are read: the cursor moves down and the
    second prospect advances (the `>` said "No prospect here", and the `j` was lost)."""
    store = Store(loop_db, who="tester")
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        app.post_message(events.Key("j", "j"))
        app.post_message(events.Key("greater_than_sign", ">"))
        assert await until(app, pilot, lambda: store.get("Kauri Software").stage_name == "Quote sent")
        assert not any("No prospect here" in n for n in app.notices)
    assert store.get("Harbour Events").stage_name == "Quote sent"


async def test_a_page_whose_read_fails_says_so_in_its_title(loop_db, monkeypatch):
    def broken(self, ref):
        raise RuntimeError("the disk went away")

    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await go_to(app, pilot, "Kauri Software")
        monkeypatch.setattr(Store, "get", broken)
        await pilot.press("enter")
        text = await shows(app, pilot, "Could not read this prospect")
        assert "Could not read this prospect: RuntimeError: the disk went away" in text
        assert "Loading" not in text


# ---------------------------------------------------------------- sorted columns


async def test_sorting_by_gain_marks_the_column_and_shows_the_gain(loop_db):
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        head = await shows(app, pilot, "Month↑")
        assert "Due" in head and "Follo…" not in head
        seen = []
        for _ in range(6):
            await pilot.press("s")
            await settle(app, pilot)
            lines = screen_text(app).splitlines()
            header = next(line for line in lines if "Name" in line and "Stage" in line)
            seen.append(header)
            assert "…" not in header, header
            if "Gain↓" in header:
                first = next(line for line in lines if "Kauri Software" in line or "Harbour Events" in line)
                assert "Kauri Software" in first and "3,000" in first  # the biggest gain first, shown
        assert any("Gain↓" in h for h in seen) and any("Due↑" in h for h in seen)


# ---------------------------------------------------------------- the import screen


def test_path_completion(tmp_path):
    (tmp_path / "pipeline 2026.csv").write_text("a\n")
    (tmp_path / "pipes").mkdir()
    (tmp_path / "photo.png").write_text("")
    (tmp_path / ".hidden.csv").write_text("")
    base = str(tmp_path) + "/"
    assert complete_path(base + "pip") == base + "pipes/"  # folders first
    assert complete_path(base + "pipe ") is None
    assert complete_path(base + "pipeline") == base + "pipeline 2026.csv"
    assert complete_path(base + "ph") is None  # not a spreadsheet
    assert complete_path(base + ".h") == base + ".hidden.csv"
    assert complete_path(base + "zz") is None
    assert complete_path(str(tmp_path / "nowhere" / "x")) is None


async def test_the_import_screen_completes_the_path(loop_db):
    app = RecordingApp(loop_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("i")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ImportScreen)
        field = screen.query_one("#import-file", Input)
        for key in str(FIXTURES / "crm" / "sal"):
            await pilot.press(key if key != "/" else "slash")
        assert await until(app, pilot, lambda: field._suggestion.endswith("sales_pipeline.csv"))
        await pilot.press("right")
        assert field.value == str(FIXTURES / "crm" / "sales_pipeline.csv")


def test_the_first_error_after_a_preview_points_to_the_stage_map(loop_db):
    path, options = options_from_args([str(FIXTURES / "crm" / "sales_pipeline.csv")])
    plan = plan_import(loop_db, path, options, who="tester")
    why = plan.why_not()
    assert not plan.can_commit
    assert "rows cannot be taken; first, stage 'Engaging'" in why or "first, stage 'Prospecting'" in why, why
    assert "--stage-map" in why and "--skip-bad" not in why


async def test_the_import_screen_says_the_stage_map_first(loop_db):
    app = RecordingApp(loop_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("i")
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#import-file", Input).value = str(FIXTURES / "crm" / "sales_pipeline.csv")
        screen.query_one("#import-file", Input).focus()
        await pilot.press("enter")
        assert await until(app, pilot, lambda: screen.plan is not None, timeout=60)
        status = str(screen.query_one("#import-status").render())
        assert "Cannot import yet:" in status and "first, stage" in status and "--stage-map" in status


def test_a_key_wider_than_its_column_in_the_help_gets_a_line_of_its_own():
    """The Stages help read "shift+up K Up    stages.move_up" with the text and the id pushed out
    of their columns; the key now stands above them."""
    from evpipe.tui.screens.help import ID_COLUMN, TEXT_COLUMN, entry

    lines = entry("shift+up K", "Up", "stages.move_up")
    assert lines[0] == "  shift+up K"
    assert lines[1][TEXT_COLUMN:].startswith("Up ") and lines[1].index("stages.move_up") == ID_COLUMN
    assert entry("r", "Rename the stage", "stages.rename")[0].index("stages.rename") == ID_COLUMN


@pytest.mark.parametrize("size", [(60, 20), (80, 24)])
async def test_each_key_shares_its_line_with_its_text_and_id_in_the_help(loop_db, size):
    """At 60 columns the help's lines, made for 80, wrapped: each binding's id stood on a line of
    its own under its key. Paged through as a user reads it, every key of the pipeline and the
    table is on one line with the start of what it does and its id, and no line runs past the box."""
    from evpipe.tui.screens.help import key_label
    from evpipe.tui.widgets.prospect_table import ProspectTable

    app = RecordingApp(loop_db)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        seen: list[str] = []
        for _ in range(40):
            lines = screen_text(app).splitlines()
            seen += lines
            if "like this:" in "\n".join(lines):
                break
            await pilot.press("pagedown")
            await settle(app, pilot)
        else:
            raise AssertionError("the help's end never showed")
        descriptions = PipelineScreen.ACTION_HELP
        for b in [*PipelineScreen.BINDINGS, *ProspectTable.BINDINGS]:
            if not b.id:
                continue
            key = key_label(app.keymap.get(b.id, b.key))
            first_word = descriptions.get(b.action.partition("(")[0], b.description).split()[0]
            with_id = [line for line in seen if f" {b.id} " in f"{line} "]
            assert with_id, (b.id, seen)
            assert all(f"│   {key} " in line and f" {first_word}" in line for line in with_id), (b.id, key, with_id)
