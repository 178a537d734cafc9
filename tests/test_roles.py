"""Roles (issue 11, point 5): owner, manager, rep, enforced in one place (models/roles.py) by every
write path; who you are is your login name; EVPIPE_USER only while there are no members or for an
owner; refusals say which role is needed, in one line from the CLI, and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from evpipe.models import roles
from evpipe.models.backup import dump, restore
from evpipe.models.errors import DomainError
from evpipe.models.importer import ImportOptions, commit_import, plan_import
from evpipe.models.members import (
    acting_user,
    add_member,
    members,
    remove_member,
    reps_see,
    set_reps_see,
    set_role,
    visible_owner,
)
from evpipe.models.roles import NotAllowed
from evpipe.models.settings import set_kpi_period
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent
from evpipe.models.targets import clear_target, set_target, targets
from evpipe.tui.cli import main


def journal_size(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ChangeEvent)).scalar() or 0)


@pytest.fixture
def teamdb(engine):
    """boss (owner), mia (manager), sam and priya (reps); sam owns Acme, priya owns Gamma."""
    add_member(engine, "boss", "boss", "owner")
    add_member(engine, "boss", "mia", "manager")
    add_member(engine, "boss", "sam", "rep")
    add_member(engine, "boss", "priya", "rep")
    boss = Store(engine, who="boss")
    boss.add("Acme", "1000", "Suspect", owner="sam")
    boss.add("Gamma", "2000", "Suspect", owner="priya")
    return engine


def test_no_members_everyone_may_do_everything(engine):
    s = Store(engine, who="anyone")
    s.add("Acme", "1000", owner="someone else")
    s.move("Acme", "next")
    s.set_probability("Suspect", "7")
    set_kpi_period(engine, "24m", who="anyone")
    assert members(engine) == []


def test_a_rep_edits_only_their_own_prospects(teamdb):
    sam = Store(teamdb, who="sam")
    sam.move("Acme", "next")
    sam.edit("Acme", value="1500")
    sam.set_follow_up("Acme", "2026-12-01")
    sam.log_activity("Acme", "call", "hello")
    sam.add("Sam's new one", "300")  # his own, by default
    before = journal_size(teamdb)
    refusals = [
        lambda: sam.move("Gamma", "next"),
        lambda: sam.edit("Gamma", value="1"),
        lambda: sam.delete("Gamma"),
        lambda: sam.set_follow_up("Gamma", "2026-12-01"),
        lambda: sam.log_activity("Gamma", "note", "x"),
        lambda: sam.add("For priya", "100", owner="priya"),
        lambda: sam.edit("Acme", owner="priya"),  # a rep does not give a prospect away
    ]
    for attempt in refusals:
        with pytest.raises(NotAllowed) as exc:
            attempt()
        assert str(exc.value).endswith("; you are a rep")
    with pytest.raises(NotAllowed, match=r"^Gamma is priya's: a rep may change only their own prospects"):
        sam.move("Gamma", "won")
    # each refusal says what was asked: adding for someone else, handing a prospect over
    with pytest.raises(NotAllowed, match=r"^a rep may add prospects only for themselves, not for priya \("):
        sam.add("For priya", "100", owner="priya")
    with pytest.raises(NotAllowed, match=r"^a rep may not hand a prospect to priya \(a manager or an owner may\)"):
        sam.edit("Acme", owner="priya")
    assert journal_size(teamdb) == before  # nothing written
    assert Store(teamdb, who="boss").get("Gamma").stage_name == "Suspect"


def test_managers_edit_all_but_only_an_owner_changes_the_ladder_settings_and_roles(teamdb, tmp_path):
    mia = Store(teamdb, who="mia")
    mia.move("Gamma", "next")
    mia.edit("Acme", owner="priya")
    mia.delete("Acme")
    mia.undo()  # undoing is changing again: a manager may
    for who in ("mia", "sam"):
        store = Store(teamdb, who=who)
        role = "a manager" if who == "mia" else "a rep"
        for attempt, words in (
            (lambda s=store: s.set_probability("Suspect", "7"), "change the ladder"),
            (lambda s=store: s.add_stage("Demo booked", "30"), "change the ladder"),
            (lambda s=store: s.update_stage("Suspect", name="Lead"), "change the ladder"),
            (lambda s=store: s.remove_stage("Enquiry", move_to="Suspect"), "change the ladder"),
            (lambda w=who: set_kpi_period(teamdb, "24m", who=w), "change the settings"),
            (lambda w=who: set_reps_see(teamdb, w, "own"), "change the settings"),
            (lambda w=who: set_target(teamdb, "2027-03", "40000", who=w), "change the settings"),
            (lambda w=who: clear_target(teamdb, None, who=w), "change the settings"),
            (lambda w=who: add_member(teamdb, w, "newbie", "rep"), "change members and roles"),
            (lambda w=who: set_role(teamdb, w, "sam", "owner"), "change members and roles"),
            (lambda w=who: remove_member(teamdb, w, "boss"), "change members and roles"),
        ):
            with pytest.raises(NotAllowed) as exc:
                attempt()
            assert str(exc.value) == f"only an owner can {words}; you are {role}"
    boss = Store(teamdb, who="boss")
    boss.set_probability("Suspect", "7")
    set_kpi_period(teamdb, "24m", who="boss")
    set_target(teamdb, "2027-03", "40000", who="boss")
    assert targets(teamdb) == {"2027-03": 4_000_000}
    set_role(teamdb, "boss", "sam", "manager")
    assert {m.name: m.role for m in members(teamdb)}["sam"] == "manager"


def test_imports_and_restores_are_an_owners(teamdb, tmp_path):
    csv = tmp_path / "leads.csv"
    csv.write_text("name,value\nNew Co,1000\n")
    plan = plan_import(teamdb, csv, ImportOptions(), who="mia")
    with pytest.raises(NotAllowed, match="^only an owner can import; you are a manager$"):
        commit_import(teamdb, plan, who="mia")
    assert commit_import(teamdb, plan, who="boss").created == 1
    data = dump(teamdb)
    with pytest.raises(NotAllowed, match="^only an owner can restore a dump over the database; you are a manager$"):
        restore(teamdb, data, force=True, who="mia")
    restore(teamdb, data, force=True, who="boss")


def test_a_non_member_changes_nothing_once_there_are_members(teamdb):
    with pytest.raises(NotAllowed, match=r"^stranger is not a member of this database; ask its owner"):
        Store(teamdb, who="stranger").add("X", "1")


def test_the_first_member_is_you_as_owner_and_the_last_owner_stays(engine):
    with pytest.raises(DomainError, match="the first member must be you, as owner"):
        add_member(engine, "alice", "bob", "owner")
    with pytest.raises(DomainError, match="the first member must be you, as owner"):
        add_member(engine, "alice", "alice", "rep")
    add_member(engine, "alice", "alice", "owner")
    add_member(engine, "alice", "bob", "rep")
    with pytest.raises(DomainError, match="alice is the only owner"):
        set_role(engine, "alice", "alice", "manager")
    with pytest.raises(DomainError, match="alice is the only owner"):
        remove_member(engine, "alice", "alice")
    with pytest.raises(DomainError, match="not a role"):
        add_member(engine, "alice", "carol", "boss")
    with pytest.raises(DomainError, match="is a member already"):
        add_member(engine, "alice", "bob", "manager")
    remove_member(engine, "alice", "bob")
    remove_member(engine, "alice", "alice")  # the last member of all: open to everyone again
    assert members(engine) == []
    Store(engine, who="anyone").add("Open again", "1")


def test_the_first_owner_on_sqlite_is_the_login_not_evpipe_user(engine, tmp_path, monkeypatch):
    """EVPIPE_USER=sam from the login root made sam the first owner, and root was then locked out:
    once there are members, EVPIPE_USER counts only for an owner's login."""
    with pytest.raises(DomainError, match=r"must be you, as owner \(evpipe members add root --role owner\)"):
        add_member(engine, "sam", "sam", "owner", login="root")
    assert members(engine) == []
    add_member(engine, "sam", "root", "owner", login="root")
    assert [(m.name, m.role) for m in members(engine)] == [("root", "owner")]
    # the command line, as the login root with EVPIPE_USER=sam
    db = tmp_path / "first.db"
    assert cli(db, "init", str(db), login="root", monkeypatch=monkeypatch)[0] == 0
    monkeypatch.setenv("EVPIPE_USER", "sam")
    result = CliRunner().invoke(main, ["--db", str(db), "members"], catch_exceptions=False)
    assert "You are sam." in result.stdout and "evpipe members add root --role owner" in result.stdout
    result = CliRunner().invoke(main, ["--db", str(db), "members", "add", "sam", "--role", "owner"])
    assert result.exit_code == 1 and "EVPIPE_USER=sam counts only for an owner's login" in result.stderr
    result = CliRunner().invoke(main, ["--db", str(db), "members", "add", "root", "--role", "owner"])
    assert result.exit_code == 0, result.stderr
    monkeypatch.delenv("EVPIPE_USER")
    code, out, _ = cli(db, "members", "list", "--json", login="root", monkeypatch=monkeypatch)
    assert (json.loads(out)["you"], json.loads(out)["your_role"]) == ("root", "owner")  # not locked out


def test_who_you_are_is_the_login_name_and_evpipe_user_only_for_an_owner(engine, monkeypatch):
    monkeypatch.setattr(roles, "login_name", lambda: "sam")
    monkeypatch.setenv("EVPIPE_USER", "boss")
    with engine.connect() as conn:
        assert acting_user(conn).name == "boss"  # no members yet: EVPIPE_USER is honoured
    monkeypatch.setenv("EVPIPE_USER", "sam")
    add_member(engine, "sam", "sam", "owner")
    add_member(engine, "sam", "rita", "rep")
    monkeypatch.setattr(roles, "login_name", lambda: "rita")
    monkeypatch.setenv("EVPIPE_USER", "sam")
    with engine.connect() as conn:
        me = acting_user(conn)
    assert (me.name, me.role) == ("rita", "rep")  # a rep cannot claim to be the owner
    assert "EVPIPE_USER=sam is ignored" in me.note
    assert Store(engine).who == "rita"
    monkeypatch.setattr(roles, "login_name", lambda: "sam")
    monkeypatch.setenv("EVPIPE_USER", "rita")
    with engine.connect() as conn:
        assert acting_user(conn).name == "rita"  # an owner may act as someone (support, tests)


def test_reps_may_see_only_their_own_when_the_owner_says_so(teamdb):
    assert reps_see(teamdb) == "all" and visible_owner(teamdb, "sam") is None
    set_reps_see(teamdb, "boss", "own")
    assert visible_owner(teamdb, "sam") == "sam"
    assert visible_owner(teamdb, "mia") is None and visible_owner(teamdb, "boss") is None


# ---------------------------------------------------------------- the command line


def cli(db: Path, *args: str, login: str, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(roles, "login_name", lambda: login)
    monkeypatch.delenv("EVPIPE_USER", raising=False)
    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_members_and_one_line_refusals(tmp_path, monkeypatch):
    db = tmp_path / "team.db"
    assert cli(db, "init", str(db), login="boss", monkeypatch=monkeypatch)[0] == 0
    code, out, _ = cli(db, "members", login="boss", monkeypatch=monkeypatch)
    assert code == 0 and "No members yet: everyone may do everything. You are boss." in out
    assert cli(db, "members", "add", "boss", "--role", "owner", login="boss", monkeypatch=monkeypatch)[0] == 0
    assert cli(db, "members", "add", "sam", "--role", "rep", login="boss", monkeypatch=monkeypatch)[0] == 0
    assert cli(db, "add", "Acme", "--value", "1000", "--owner", "boss", login="boss", monkeypatch=monkeypatch)[0] == 0
    code, out, _ = cli(db, "members", "list", "--json", login="sam", monkeypatch=monkeypatch)
    data = json.loads(out)
    assert (data["you"], data["your_role"]) == ("sam", "rep")
    assert [(m["name"], m["role"]) for m in data["members"]] == [("boss", "owner"), ("sam", "rep")]
    for args, line in (
        (("stages", "set", "Suspect", "7"), "evpipe: only an owner can change the ladder; you are a rep\n"),
        (("settings", "kpi-period", "24m"), "evpipe: only an owner can change the settings; you are a rep\n"),
        (
            ("members", "set-role", "sam", "owner"),
            "evpipe: only an owner can change members and roles; you are a rep\n",
        ),
        (
            ("move", "Acme", "next"),
            "evpipe: Acme is boss's: a rep may change only their own prospects (a manager or an owner may "
            "change anyone's); you are a rep\n",
        ),
    ):
        code, out, err = cli(db, *args, login="sam", monkeypatch=monkeypatch)
        assert (code, err) == (1, line), args
    # EVPIPE_USER does not let a rep act as the owner: it is ignored, with a word, and refused
    monkeypatch.setattr(roles, "login_name", lambda: "sam")
    monkeypatch.setenv("EVPIPE_USER", "boss")
    result = CliRunner().invoke(main, ["--db", str(db), "stages", "set", "Suspect", "7"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "evpipe: EVPIPE_USER=boss is ignored: only an owner may act as someone else; you are sam",
        "evpipe: only an owner can change the ladder; you are a rep",
    ]
    code, out, err = cli(db, "add", "Sam's", "--value", "10", login="sam", monkeypatch=monkeypatch)
    assert code == 0, err
    code, out, err = cli(db, "journal", "--json", login="sam", monkeypatch=monkeypatch)
    assert [(e["who"], e["prospect"]) for e in json.loads(out)] == [("sam", "Sam's"), ("boss", "Acme")]


def test_cli_a_rep_who_sees_only_their_own(tmp_path, monkeypatch):
    db = tmp_path / "team.db"
    cli(db, "init", str(db), login="boss", monkeypatch=monkeypatch)
    cli(db, "members", "add", "boss", "--role", "owner", login="boss", monkeypatch=monkeypatch)
    cli(db, "members", "add", "sam", "--role", "rep", login="boss", monkeypatch=monkeypatch)
    cli(db, "add", "Boss's", "--value", "1000", login="boss", monkeypatch=monkeypatch)
    cli(db, "add", "Sam's", "--value", "500", "--owner", "sam", login="boss", monkeypatch=monkeypatch)
    _, out, _ = cli(db, "list", "--json", login="sam", monkeypatch=monkeypatch)
    assert len(json.loads(out)) == 2  # reps see everyone's by default
    code, _, err = cli(db, "members", "reps-see", "own", login="sam", monkeypatch=monkeypatch)
    assert (code, err) == (1, "evpipe: only an owner can change the settings; you are a rep\n")
    assert cli(db, "members", "reps-see", "own", login="boss", monkeypatch=monkeypatch)[0] == 0
    _, out, _ = cli(db, "list", "--json", login="sam", monkeypatch=monkeypatch)
    assert [p["name"] for p in json.loads(out)] == ["Sam's"]
    _, out, _ = cli(db, "kpi", "--json", login="sam", monkeypatch=monkeypatch)
    assert json.loads(out)["tv"] == "500.00"
    code, _, err = cli(db, "list", "--owner", "boss", login="sam", monkeypatch=monkeypatch)
    assert code == 1 and err.startswith("evpipe: you see only your own prospects")
    _, out, _ = cli(db, "list", "--json", login="boss", monkeypatch=monkeypatch)
    assert len(json.loads(out)) == 2  # the owner sees everyone's
    code, out, _ = cli(db, "members", "reps-see", login="boss", monkeypatch=monkeypatch)
    assert out == "Reps see only their own prospects (own).\n"

    # an export holds his own only; a copy of the whole database is refused
    code, out, err = cli(db, "export", str(tmp_path / "sam.csv"), login="sam", monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("Exported 1 prospect (yours, sam: you see your prospects only"), err
    assert "Boss's" not in (tmp_path / "sam.csv").read_text() and "Sam's" in (tmp_path / "sam.csv").read_text()
    for command in ("dump", "backup", "migrate"):
        target = ["--to"] if command == "migrate" else []
        code, _, err = cli(db, command, *target, str(tmp_path / f"x.{command}"), login="sam", monkeypatch=monkeypatch)
        assert code == 1 and err.startswith(f"evpipe: {command}: it copies the whole database, everyone's prospects")
        assert not (tmp_path / f"x.{command}").exists()

    # another owner's prospect is not found, by name or by id, and not named
    boss_id = next(p["id"] for p in json.loads(cli(db, "list", "--json", login="boss", monkeypatch=monkeypatch)[1]))
    for ref in ("Boss", "Boss's", str(boss_id)):
        code, _, err = cli(db, "edit", ref, "--value", "1", login="sam", monkeypatch=monkeypatch)
        assert code == 1 and "no prospect" in err and "is boss's" not in err and "Boss's is" not in err, err
    _, out, _ = cli(db, "list", "--json", login="boss", monkeypatch=monkeypatch)
    assert {p["name"]: p["value"] for p in json.loads(out)}["Boss's"] == "1000.00"
    # his own prospect named with the digits of the boss's id is his, not "no prospect"
    cli(db, "add", str(boss_id), "--value", "7", "--owner", "sam", login="boss", monkeypatch=monkeypatch)
    code, out, err = cli(db, "edit", str(boss_id), "--value", "8", login="sam", monkeypatch=monkeypatch)
    assert code == 0, err
    _, out, _ = cli(db, "list", "--json", login="boss", monkeypatch=monkeypatch)
    assert {p["name"]: p["value"] for p in json.loads(out)}[str(boss_id)] == "8.00"


# ---------------------------------------------------------------- the app


async def test_the_app_reverts_a_refused_move_and_names_the_role(engine):
    from apphelpers import settle

    from evpipe.models.kpi import kpis
    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.screens.pipeline import PipelineScreen

    add_member(engine, "boss", "boss", "owner")
    add_member(engine, "boss", "tester", "rep")
    boss = Store(engine, who="boss")
    pid = boss.add("Harbour Events", "6000", "Quote sent", owner="boss").prospect.id
    before = kpis(engine)
    app = EvpipeApp(engine.url.render_as_string(hide_password=False), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert isinstance(screen, PipelineScreen)
        assert screen.table.go_to(pid)
        await settle(pilot)
        await pilot.press("greater_than_sign")
        await settle(pilot, rounds=8, until=lambda a: any("you are a rep" in n.message for n in a._notifications))
        await settle(pilot, rounds=4)
        said = [n.message for n in app._notifications if "you are a rep" in n.message]
        assert said and said[0].startswith("Harbour Events is boss's: a rep may change only their own prospects")
        # nothing was written, and the row and the header show what the database holds
        assert boss.get(pid).stage_name == "Quote sent"
        assert screen.kpi_all == before
        assert screen.table.view.rows[pid].stage_id == boss.stage("Quote sent").id
