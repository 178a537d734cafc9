"""Who did what, on screen: the Activity screen (key 9), the Members screen, every change on the
prospect page, and the review per rep. Driven by their keys at 80x24 against a temporary database."""

from __future__ import annotations

from datetime import datetime

from apphelpers import RecordingApp, screen_text, settle, shows
from textual.widgets import DataTable

from evpipe.models import journal_read
from evpipe.models.members import add_member, members
from evpipe.models.review import review
from evpipe.models.store import Store
from evpipe.tui.dialogs import ChoiceDialog, TextPrompt


def team(engine) -> None:
    sam = Store(engine, who="sam")
    priya = Store(engine, who="priya")
    sam.add("Coastline Realty", "2000", "Suspect", at=datetime(2026, 11, 25, 9))
    sam.add("Harbour [bold]Lights[/]", "5000", "Enquiry", at=datetime(2026, 11, 25, 9, 5))
    priya.move("Coastline Realty", "won", at=datetime(2026, 11, 26, 10, 42))
    priya.edit("Harbour [bold]Lights[/]", value="6000", owner="priya", at=datetime(2026, 11, 26, 11))
    sam.set_follow_up("Coastline Realty", "2026-12-01", at=datetime(2026, 11, 26, 12))
    sam.log_activity("Coastline Realty", "call", "asked for the deposit", at=datetime(2026, 11, 26, 13))


async def test_activity_screen_lists_changes_newest_first_and_opens_the_prospect(engine):
    team(engine)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        text = await shows(app, pilot, "Activity", "call logged")
        lines = text.splitlines()
        # newest first: the call (13:00) above the win (10:42) above the first add (09:00)
        row = {
            w: next(i for i, line in enumerate(lines) if w in line) for w in ("call logged", "Suspect ->", "added on")
        }
        assert row["call logged"] < row["Suspect ->"] < row["added on"]
        won = lines[row["Suspect ->"]]
        assert "26 Nov 10:42" in won and "priya" in won and "+1,900" in won  # EV +1,900: 2,000 x (100 % - 5 %)
        assert "value" in text and "5,000 -> 6,000; owner sam ->" in text  # long changes wrap, never cut
        assert "Harbour [bold]Lights[/]" in text  # user text is shown as typed, never as markup
        assert all(len(line) <= 80 for line in lines)
        screen = app.screen
        assert [e.what for e in screen.entries][
            2
        ] == "Harbour [bold]Lights[/]: value 5,000 -> 6,000; owner sam -> priya"
        table = screen.query_one("#activity-table", DataTable)
        assert table.row_count == 6
        # enter on the win opens Coastline Realty's page
        table.move_cursor(row=[e.category for e in screen.entries].index("win"))
        await pilot.press("enter")
        text = await shows(app, pilot, "Every change, newest first")
        assert type(app.screen).__name__ == "ProspectPage"
        assert "Coastline Realty" in text


async def test_activity_screen_one_persons_changes_and_live_after_a_change(engine):
    team(engine)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await shows(app, pilot, "call logged")
        await pilot.press("w")
        await settle(pilot, until=lambda a: isinstance(a.screen, ChoiceDialog))
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        assert [label for label, _ in dialog.options] == ["Everyone", "priya", "sam"]
        dialog.dismiss("priya")
        assert "priya" in await shows(app, pilot, "priya's changes")
        await settle(pilot, until=lambda a: a.screen.query_one("#activity-table", DataTable).row_count == 2)
        assert app.screen.query_one("#activity-table", DataTable).row_count == 2
        assert "call logged" not in screen_text(app)
        # after a change the list is read again: priya's new move appears at the top
        Store(engine, who="priya").move("Harbour [bold]Lights[/]", "next", at=datetime(2026, 11, 27, 9, 30))
        Store(engine, who="sam").log_activity("Coastline Realty", "note", "not priya's")
        app.data_changed(None)
        await settle(pilot, until=lambda a: a.screen.query_one("#activity-table", DataTable).row_count == 3)
        table = app.screen.query_one("#activity-table", DataTable)
        assert table.row_count == 3
        assert app.screen.entries[0].what.endswith("Enquiry -> Quote sent, EV +900")
        assert "27 Nov 09:30  priya" in screen_text(app).splitlines()[3]  # the first row, at the top
        assert "note logged" not in screen_text(app)
    entries = journal_read.journal(engine, who="priya")
    assert [e.who for e in entries] == ["priya"] * 3


async def test_activity_pages_the_journal_as_the_cursor_reaches_the_end(engine, monkeypatch):
    monkeypatch.setattr(journal_read, "PAGE", 10)
    from evpipe.tui.screens import activity

    monkeypatch.setattr(activity, "PAGE", 10)
    s = Store(engine, who="sam")
    p = s.add("Busy", "1000", "Suspect").prospect
    for day in range(1, 25):
        s.set_follow_up(p.id, f"2026-12-{day:02d}")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await settle(pilot, until=lambda a: a.screen.query_one("#activity-table", DataTable).row_count == 10)
        table = app.screen.query_one("#activity-table", DataTable)
        assert table.row_count == 10 and app.screen.more
        await pilot.press("ctrl+end")
        await settle(pilot, until=lambda a: a.screen.query_one("#activity-table", DataTable).row_count == 20)
        assert table.row_count == 20
        await pilot.press("ctrl+end")
        await settle(pilot, until=lambda a: a.screen.query_one("#activity-table", DataTable).row_count == 25)
        assert table.row_count == 25 and not app.screen.more
        assert app.screen.entries[-1].what.startswith("Busy: added on Suspect")
        assert [e.id for e in app.screen.entries] == sorted((e.id for e in app.screen.entries), reverse=True)
        await pilot.press("ctrl+end")
        await settle(pilot)
        assert "Busy: added on" in screen_text(app)


async def test_prospect_page_shows_every_change_with_who_and_from_what_to_what(engine):
    team(engine)
    pid = Store(engine).get("Coastline Realty").id
    app = RecordingApp(engine)
    async with app.run_test(size=(100, 60)) as pilot:
        await settle(pilot)
        from evpipe.tui.screens.prospect_page import ProspectPage

        app.push_screen(ProspectPage(pid))
        text = await shows(app, pilot, "Every change, newest first", "follow-up none -> 2026-12-01")
        section = text[text.index("Every change, newest first") :]
        for words in ("call logged", "Suspect -> Won", "follow-up none -> 2026-12-01", "added on Suspect"):
            assert words in section, words
        assert "priya" in section and "sam" in section
        assert section.index("call logged") < section.index("Suspect -> Won") < section.index("added on Suspect")


async def test_members_screen_from_activity_owner_adds_a_rep_and_a_rep_is_refused(engine):
    add_member(engine, "tester", "tester", "owner")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await settle(pilot)
        await pilot.press("m")
        text = await shows(app, pilot, "Members", "You are tester, owner.")
        await pilot.press("a")
        await settle(pilot, until=lambda a: isinstance(a.screen, TextPrompt))
        app.screen.dismiss("sam")
        await settle(pilot, until=lambda a: isinstance(a.screen, ChoiceDialog))
        app.screen.dismiss("rep")
        await settle(pilot, until=lambda a: any(m.name == "sam" for m in a.screen.members))
        assert [(m.name, m.role) for m in members(engine)] == [("tester", "owner"), ("sam", "rep")]
        assert "sam" in await shows(app, pilot, "sam")
    # as sam, a rep: the change is refused in words and the table still shows what the database holds
    app = RecordingApp(engine)
    app._who_given = "sam"
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.action_members()
        text = await shows(app, pilot, "You are sam, rep.")
        table = app.screen.query_one("#members-table", DataTable)
        table.move_cursor(row=1)
        await pilot.press("r")
        await settle(pilot, until=lambda a: isinstance(a.screen, ChoiceDialog))
        app.screen.dismiss("owner")
        await settle(pilot, until=lambda a: any("only an owner" in n for n in a.notices))
        assert any(n == "only an owner can change members and roles; you are a rep" for n in app.notices)
        await settle(pilot)
        text = screen_text(app)
        assert "sam" in text and "owner" in text
    assert [(m.name, m.role) for m in members(engine)] == [("tester", "owner"), ("sam", "rep")]


async def test_members_screen_shows_a_change_made_in_another_session(engine):
    """Another owner adds a member, or gives one another role, while this screen is open: it
    shows it without a key (members are not journalled: the live look compares them, as it
    does the settings). It showed what it read when opened until it was opened again."""
    from evpipe.models.members import set_role

    add_member(engine, "tester", "tester", "owner")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.action_members()
        await shows(app, pilot, "You are tester, owner.")
        add_member(engine, "tester", "priya", "rep")  # (another session)
        await settle(pilot, until=lambda a: [m.name for m in a.screen.members] == ["tester", "priya"])
        assert "priya" in screen_text(app)
        set_role(engine, "tester", "priya", "manager")
        await settle(pilot, until=lambda a: [m.role for m in a.screen.members] == ["owner", "manager"])
        assert "manager" in screen_text(app)


async def test_members_screen_names_the_login_as_the_first_owner(engine, monkeypatch):
    """The app acts as tester (EVPIPE_USER's name) while the login is root2: the first owner must be
    root2, who counts once there are members (tester first locked root2 out)."""
    from evpipe.models import roles

    monkeypatch.setattr(roles, "login_name", lambda: "root2")
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.action_members()
        text = await shows(app, pilot, "The first owner is your login, root2.")
        assert "You are tester;" in text
        await pilot.press("a")
        await settle(pilot, until=lambda a: isinstance(a.screen, TextPrompt))
        assert app.screen.query_one("Input").value == "root2"
        app.screen.dismiss("root2")
        await settle(pilot, until=lambda a: isinstance(a.screen, ChoiceDialog))
        app.screen.dismiss("owner")
        await settle(pilot, until=lambda a: bool(a.screen.members))
    assert [(m.name, m.role) for m in members(engine)] == [("root2", "owner")]


async def test_review_screen_per_rep_names_who_moved_each_prospect(engine):
    team(engine)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await shows(app, pilot, "Review")
        await settle(pilot, until=lambda a: a.screen.reps)
        await pilot.press("r")
        await settle(pilot, until=lambda a: isinstance(a.screen, ChoiceDialog))
        assert [label for label, _ in app.screen.options] == ["Everyone", "priya", "sam"]
        app.screen.dismiss("priya")
        text = await shows(app, pilot, "priya's changes", "Others' changes")
        r = app.screen.review
        assert r.who == "priya"
        assert {t.category for t in r.terms} == {"win", "edit", "others"}
        assert all(len(line) <= 80 for line in text.splitlines())
    r = review(engine, "7d", who="priya")
    wins = r.term("win")
    assert wins is not None and [(i.name, i.by) for i in wins.items] == [("Coastline Realty", ("priya",))]
    everyone = review(engine, "7d")
    assert everyone.term("new").items[0].by == ("sam",)
    # the rep's terms and the others' add up to the whole change
    total = sum(t.d_ev_micros for t in r.terms)
    assert total == everyone.end.ev_micros - everyone.start.ev_micros


def test_activity_screen_in_a_real_terminal(tmp_path):
    """tmux at 80x24 with NO_COLOR: key 9 lists the changes two people made through the CLI, newest
    first, with who and the EV effect; enter opens the prospect's page with every change to it."""
    import os
    import subprocess

    from test_tmux import EVPIPE, Tmux

    db = tmp_path / "team.db"

    def cli(who: str, *args: str) -> None:
        env = {**os.environ, "EVPIPE_USER": who}
        done = subprocess.run([EVPIPE, "--db", str(db), *args], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr

    cli("tester", "init", str(db))
    cli("sam", "add", "Coastline Realty", "--value", "2000")
    cli("priya", "move", "Coastline Realty", "won")
    cli("sam", "add", "Harbour", "--value", "5000", "--stage", "Enquiry")
    t = Tmux(db, no_color=True)
    try:
        t.wait_for(lambda s: "Pipeline" in s and "Harbour" in s)
        t.keys("9")
        screen = t.wait_for(lambda s: "Everyone's changes" in s and "Coastline Realty: Suspect" in s)
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        rows = [line for line in lines if line.startswith(" 27 Nov")]
        assert "sam" in rows[0] and "Harbour: added on Enquiry" in rows[0] and "+500" in rows[0]
        won = next(line for line in rows if "priya" in line)
        assert "Coastline Realty: Suspect" in won and "+1,900" in won
        t.keys("Down")
        t.keys("Enter")
        t.wait_for(lambda s: "Stage history" in s and "Owner     sam" in s, timeout=20)
        t.keys("End")  # the page scrolls down to its last section
        page = t.wait_for(lambda s: "Every change, newest first" in s, timeout=20)
        assert "priya" in page and "Suspect -> Won" in page and "EV +1,900" in page
        t.keys("Escape")
        t.wait_for(lambda s: "Everyone's changes" in s)
        t.keys("m")
        members = t.wait_for(lambda s: "No members: everyone may do everything" in s)
        assert "You are tester" in members
    finally:
        t.kill()


async def test_home_and_end_go_to_the_newest_and_the_oldest_change(engine):
    team(engine)
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await shows(app, pilot, "Activity", "call logged")
        table = app.screen.query_one("#activity-table", DataTable)
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1 > 0
        await pilot.press("home")
        assert table.cursor_row == 0
