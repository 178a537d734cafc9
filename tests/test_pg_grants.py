"""Roles the server enforces (issue 12, point 4): on PostgreSQL, `evpipe members` grants each
member's login role the privileges of their role (models/grants.py), so a rep who goes around
evpipe (psql, a script) still cannot change a colleague's prospect or the ladder.

Each test runs against the suite's throwaway server: an owner (evt_boss, a login role that owns a
database, with CREATEROLE), a manager (evt_mia) and two reps (evt_rita, evt_ravi), all plain login
roles; evt_boss makes the schema by opening the database, as `evpipe init` would."""

from __future__ import annotations

import contextlib

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from evpipe.models import open_db
from evpipe.models.errors import database_failure, unsaved_reason
from evpipe.models.grants import group_names, state
from evpipe.models.roles import NotAllowed
from evpipe.models.store import Store
from evpipe.models.tables import KpiSnapshot, Member
from evpipe.tui.cli import main

BOSS, MIA, RITA, RAVI = "evt_boss", "evt_mia", "evt_rita", "evt_ravi"
PEOPLE = (BOSS, MIA, RITA, RAVI)


class Team:
    def __init__(self, server, database: str) -> None:
        self.server = server
        self.database = database
        self.engines: dict[str, object] = {}

    def url(self, who: str) -> str:
        return self.server.url.set(username=who, database=self.database).render_as_string(hide_password=False)

    def engine(self, who: str):
        if who not in self.engines:
            self.engines[who] = open_db(self.url(who))
        return self.engines[who]

    def cli(self, who: str, *args: str):
        return CliRunner().invoke(main, ["--db", self.url(who), *args])

    def raw(self, who: str, sql: str, **params) -> int:
        """A statement as `who`, around evpipe's own checks: the rows it changed (or read)."""
        with self.engine(who).begin() as conn:  # type: ignore[attr-defined]
            result = conn.execute(text(sql), params)
            return result.rowcount if result.returns_rows is False else len(result.all())

    def refused(self, who: str, sql: str, **params) -> DBAPIError:
        with pytest.raises(DBAPIError) as caught:
            self.raw(who, sql, **params)
        return caught.value


def _drop_roles(conn, database: str) -> None:
    for name in (*group_names(database).values(), *PEOPLE):
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def team(pg_server):
    name = pg_server.new_database(schema=False)
    with pg_server._admin() as conn:
        _drop_roles(conn, name)
        conn.execute(f'CREATE ROLE "{BOSS}" LOGIN CREATEROLE')
        for who in (MIA, RITA, RAVI):
            conn.execute(f'CREATE ROLE "{who}" LOGIN')
        conn.execute(f'ALTER DATABASE {name} OWNER TO "{BOSS}"')
    t = Team(pg_server, name)
    try:
        t.engine(BOSS)  # the owner's evpipe makes the schema: the tables are evt_boss's
        for who, role in ((BOSS, "owner"), (MIA, "manager"), (RITA, "rep"), (RAVI, "rep")):
            result = t.cli(BOSS, "members", "add", who, "--role", role)
            assert result.exit_code == 0, result.output
        boss = Store(t.engine(BOSS))
        assert boss.who == BOSS
        boss.add("Ravi's deal", "5000", "Suspect", owner=RAVI)
        boss.add("Rita's deal", "3000", "Suspect", owner=RITA)
        yield t
    finally:
        for engine in t.engines.values():
            engine.dispose()  # type: ignore[attr-defined]
        pg_server.drop(name)
        with pg_server._admin() as conn:
            _drop_roles(conn, name)


def _id(team: Team, name: str) -> int:
    return Store(team.engine(BOSS)).get(name).id


def test_members_add_puts_each_login_role_in_its_group(team):
    groups = group_names(team.database)
    now = state(team.engine(BOSS))
    assert now.enforced and not now.reps_own_only and now.problems == []
    assert {m.name: m.groups for m in now.members} == {
        BOSS: ("owner",),
        MIA: ("manager",),
        RITA: ("rep",),
        RAVI: ("rep",),
    }
    with team.engine(BOSS).connect() as conn:
        inside = conn.execute(
            text(
                "SELECT g.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname LIKE :p ORDER BY 1, 2"
            ),
            {"p": f"evpipe_{team.database}_%"},
        ).all()
        assert [tuple(r) for r in inside] == sorted(
            [(groups["owner"], BOSS), (groups["manager"], MIA), (groups["rep"], RAVI), (groups["rep"], RITA)]
        )
        logins = conn.execute(text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :g"), {"g": groups["rep"]})
        assert logins.scalar() is False
    result = team.cli(BOSS, "members", "grants", "--check")
    assert result.exit_code == 0, result.output
    assert "Row-level security: on; reps read every prospect." in result.output


def test_a_rep_adds_and_edits_their_own_prospects_through_evpipe(team):
    rita = Store(team.engine(RITA))
    assert rita.who == RITA  # the connection's role
    mine = rita.add("Rita's new one", "1200", "Suspect").prospect
    assert mine.owner == RITA
    rita.edit(mine.id, value="1300")
    rita.move(mine.id, "next")
    rita.log_activity(mine.id, "call", "hello")
    rita.undo()  # her last change, reversed: the journal row is hers
    rita.undo()  # the move: its stage change and the undo's leave her way through the ladder
    assert Store(team.engine(BOSS)).get(mine.id).stage_name == "Suspect"
    # her journal is written once: only evpipe's marks on it change, and none of it goes
    refused = team.refused(RITA, "UPDATE change_event SET d_tv_cents = 0 WHERE who = :me", me=RITA)
    assert "permission denied for table change_event" in str(refused.orig)
    team.refused(RITA, "DELETE FROM change_event WHERE who = :me", me=RITA)
    team.refused(RITA, "DELETE FROM stage_change WHERE prospect_id = :i", i=mine.id)
    team.refused(RITA, "UPDATE stage_change SET to_stage_id = from_stage_id WHERE prospect_id = :i", i=mine.id)
    # the command line as the rep: saved, and quiet about the KPI reading she may not record (an
    # owner's or a manager's next change records it: test_a_reps_change_when_there_is_no_reading...)
    result = team.cli(RITA, "add", "Rita by CLI", "--value", "700")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert Store(team.engine(BOSS)).get("Rita by CLI").owner == RITA
    # and what she reads: everyone's prospects (the owner has not said "own")
    assert team.raw(RITA, "SELECT id FROM prospect") == 4


def test_the_server_refuses_a_rep_going_around_evpipe(team):
    ravis = _id(team, "Ravi's deal")
    rita = Store(team.engine(RITA))
    with pytest.raises(NotAllowed):  # evpipe's own check first
        rita.edit(ravis, value="1")
    # around it: a colleague's row is not hers to change or delete (0 rows), and the ladder, the
    # members and the settings are not hers to change at all
    assert team.raw(RITA, "UPDATE prospect SET value_cents = 1 WHERE id = :i", i=ravis) == 0
    assert team.raw(RITA, "DELETE FROM activity WHERE prospect_id = :i", i=ravis) == 0
    assert team.raw(RITA, "UPDATE prospect SET owner = :me WHERE id = :i", me=RITA, i=ravis) == 0
    ladder = team.refused(RITA, "UPDATE stage SET probability_bp = 10000")
    assert "permission denied for table stage" in str(ladder.orig)
    team.refused(RITA, "INSERT INTO member (name, role, added_at, added_by) VALUES ('x', 'owner', now(), 'x')")
    team.refused(RITA, "UPDATE member SET role = 'owner' WHERE name = :me", me=RITA)
    team.refused(RITA, "INSERT INTO setting (key, value) VALUES ('reps_see', 'all')")
    # a prospect for someone else, an activity or a journal row in someone else's name
    given = team.refused(
        RITA,
        "INSERT INTO prospect (name, company, contact_name, email, phone, notes, custom_json, value_cents, stage_id, "
        "owner, created_at, updated_at, last_touch_at, needs_review, version) "
        "SELECT 'Gift', '', '', '', '', '', '{}', 1, min(id), :other, now(), now(), now(), false, 1 FROM stage",
        other=RAVI,
    )
    assert "row-level security" in str(given.orig)
    team.refused(
        RITA,
        "INSERT INTO activity (prospect_id, occurred_at, kind, text, who, created_at, timed) "
        "VALUES (:i, now(), 'note', 'x', :me, now(), false)",
        i=ravis,
        me=RITA,
    )
    team.refused(
        RITA,
        "INSERT INTO change_event (at, who, action, category, d_count, d_tv_cents, d_ev_micros, summary, payload) "
        "VALUES (now(), :other, 'edit', 'edit', 0, 0, 0, 'forged', '{}')",
        other=RAVI,
    )
    after = Store(team.engine(BOSS)).get(ravis)
    assert (after.value_cents, after.owner) == (500000, RAVI)
    # each refusal is one line that says what the server refused
    assert database_failure(ladder, "the database", RITA) == (
        f"the server refused: your role {RITA} may not change the table stage (permission denied); nothing was "
        "saved: the database's owner gives roles their privileges with evpipe members"
    )
    assert unsaved_reason(given) == (
        "the server refused: your role may not change that row of the table prospect (row-level security: a rep "
        "changes only their own prospects and what belongs to them)"
    )


def test_when_the_members_and_the_server_disagree_the_server_wins_in_one_line(team):
    """evpipe's members say rita is a manager (changed by hand, around `members set-role`), the
    server still holds her as a rep: evpipe lets the edit through, the server changes no row."""
    ravis = _id(team, "Ravi's deal")
    with team.engine(BOSS).begin() as conn:
        conn.execute(text("UPDATE member SET role = 'manager' WHERE name = :n"), {"n": RITA})
    result = team.cli(RITA, "edit", str(ravis), "--value", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        f"evpipe: the server refused: your role {RITA} may not change that row of the table prospect (row-level "
        "security: a rep changes only their own prospects and what belongs to them); nothing was saved: the "
        "database's owner gives roles their privileges with evpipe members\n"
    )
    assert Store(team.engine(BOSS)).get(ravis).value_cents == 500000
    assert team.cli(BOSS, "members", "grants").exit_code == 0  # puts her in the manager group
    assert team.cli(RITA, "edit", str(ravis), "--value", "1").exit_code == 0


def test_a_manager_edits_every_prospect_but_not_the_ladder(team):
    ravis = _id(team, "Ravi's deal")
    mia = Store(team.engine(MIA))
    mia.edit(ravis, value="6000")
    mia.move(ravis, "next")
    assert team.raw(MIA, "UPDATE prospect SET notes = 'seen' WHERE id = :i", i=ravis) == 1
    assert team.raw(MIA, "SELECT id FROM prospect") == 2
    with pytest.raises(NotAllowed):
        mia.set_probability("Suspect", "50")
    team.refused(MIA, "UPDATE stage SET probability_bp = 5000")
    team.refused(MIA, "DELETE FROM member")
    team.refused(MIA, "UPDATE setting SET value = 'own'")
    assert Store(team.engine(BOSS)).get(ravis).value_cents == 600000


def test_reps_who_see_only_their_own_read_only_their_own_on_the_server(team):
    result = team.cli(BOSS, "members", "reps-see", "own")
    assert result.exit_code == 0, result.output
    assert team.raw(RITA, "SELECT id FROM prospect") == 1
    assert team.raw(RITA, "SELECT id FROM stage_change") == 1  # her prospect's creation only
    assert team.raw(MIA, "SELECT id FROM prospect") == 2
    assert state(team.engine(BOSS)).reps_own_only
    # her change records no KPI reading: she cannot see everyone's sums
    with team.engine(BOSS).connect() as conn:
        before = conn.execute(select(func.count()).select_from(KpiSnapshot)).scalar()
    result = team.cli(RITA, "edit", "Rita's deal", "--value", "3500")
    assert result.exit_code == 0, result.output
    with team.engine(BOSS).connect() as conn:
        assert conn.execute(select(func.count()).select_from(KpiSnapshot)).scalar() == before
    assert team.cli(BOSS, "members", "reps-see", "all").exit_code == 0
    assert team.raw(RITA, "SELECT id FROM prospect") == 2


def test_set_role_and_remove_change_the_servers_privileges(team):
    ravis = _id(team, "Ravi's deal")
    assert team.cli(BOSS, "members", "set-role", RITA, "manager").exit_code == 0
    assert team.raw(RITA, "UPDATE prospect SET notes = 'mine now too' WHERE id = :i", i=ravis) == 1
    assert team.cli(BOSS, "members", "set-role", RITA, "rep").exit_code == 0
    assert team.raw(RITA, "UPDATE prospect SET notes = 'not any more' WHERE id = :i", i=ravis) == 0

    result = team.cli(BOSS, "members", "remove", RAVI)
    assert result.exit_code == 0, result.output
    refused = team.refused(RAVI, "SELECT id FROM prospect")
    assert "permission denied" in str(refused.orig)
    assert {m.name for m in state(team.engine(BOSS)).members} == {BOSS, MIA, RITA}
    # evpipe as the removed rep: one line, no traceback
    result = team.cli(RAVI, "list")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"evpipe: the server refused: your role {RAVI} may not read"), lines
    assert "Traceback" not in result.output


def test_a_name_with_no_login_role_is_one_line_and_adds_nobody(team):
    result = team.cli(BOSS, "members", "add", "evt_nobody", "--role", "rep")
    assert result.exit_code == 1
    assert result.stderr == (
        "evpipe: members: evt_nobody has no login role on this server; a superuser creates it in psql with "
        'CREATE ROLE "evt_nobody" LOGIN; and sets its password there with \\password evt_nobody, then: '
        "evpipe members add evt_nobody --role ROLE\n"
    )
    with team.engine(BOSS).connect() as conn:
        assert conn.execute(select(func.count()).select_from(Member)).scalar() == 4


def test_only_the_role_that_owns_the_tables_changes_the_privileges(team):
    """An owner in evpipe who does not own the tables: the member change is refused as a whole."""
    assert team.cli(BOSS, "members", "set-role", MIA, "owner").exit_code == 0
    result = team.cli(MIA, "members", "set-role", RITA, "manager")
    assert result.exit_code == 1
    assert result.stderr == (
        f"evpipe: members: the server refused: your role {MIA} may not grant privileges on evpipe's tables; "
        f"run this as {BOSS}, the role that owns them (or as a superuser)\n"
    )
    assert {m.name: m.role for m in state(team.engine(BOSS)).members}[RITA] == "rep"
    # as an owner on the server she still changes the ladder
    Store(team.engine(MIA)).set_probability("Suspect", "12")


def test_grants_puts_back_what_was_changed_by_hand(team):
    groups = group_names(team.database)
    with team.server._admin() as conn:
        conn.execute(f'REVOKE "{groups["rep"]}" FROM "{RITA}"')
        conn.execute(f'GRANT "{groups["manager"]}" TO "{RAVI}"')
    result = team.cli(BOSS, "members", "grants", "--check")
    assert result.exit_code == 1
    assert f"problem: {RITA} is rep here but in no evpipe group on the server" in result.stderr
    assert f"problem: {RAVI} is rep here but in manager, rep on the server" in result.stderr
    result = team.cli(BOSS, "members", "grants")
    assert result.exit_code == 0, result.output
    assert state(team.engine(BOSS)).problems == []
    assert team.cli(RITA, "members", "grants").exit_code == 1  # only an owner


def test_grants_on_sqlite_is_one_line(tmp_path):
    db = tmp_path / "p.db"
    result = CliRunner().invoke(main, ["--db", str(db), "init"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["--db", str(db), "members", "grants"])
    assert result.exit_code == 1
    assert result.stderr == (
        "evpipe: members grants: an SQLite file has no privileges of its own; roles there protect against "
        "mistakes only\n"
    )


async def test_the_app_says_in_a_notice_what_the_server_refused(team):
    """The app, as rita, whom evpipe's members call a manager but the server still holds as a rep:
    her move of a colleague's prospect is refused by the server, said in a notice, and undone on
    screen."""
    from apphelpers import settle

    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.screens.pipeline import PipelineScreen

    ravis = _id(team, "Ravi's deal")
    with team.engine(BOSS).begin() as conn:
        conn.execute(text("UPDATE member SET role = 'manager' WHERE name = :n"), {"n": RITA})
    app = EvpipeApp(team.url(RITA))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.pipeline
        assert isinstance(screen, PipelineScreen)
        assert app.store.who == RITA
        assert screen.table.go_to(ravis)
        await settle(pilot)
        await pilot.press("greater_than_sign")
        await settle(pilot, rounds=8, until=lambda a: any("server refused" in n.message for n in a._notifications))
        await settle(pilot, rounds=4)
        said = [n.message for n in app._notifications if "server refused" in n.message]
        assert said and said[0].startswith(
            "Not saved: the server refused: your role may not change that row of the table prospect"
        ), said
        boss = Store(team.engine(BOSS))
        assert boss.get(ravis).stage_name == "Suspect"
        assert screen.table.view.rows[ravis].stage_id == boss.stage("Suspect").id


def _history(team: Team, who: str = BOSS) -> tuple[list[tuple], list[tuple]]:
    """Every KPI reading and its month rows, as `who` reads them (month rows by the reading that
    lists them, whichever holds them)."""
    with team.engine(who).connect() as conn:  # type: ignore[attr-defined]
        snaps = conn.execute(
            text("SELECT scope, taken_on, count, tv_cents, ev_micros FROM kpi_snapshot ORDER BY scope, taken_on")
        ).all()
        months = conn.execute(
            text(
                "SELECT s.scope, s.taken_on, m.month, m.count, m.tv_cents, m.ev_micros, m.won_count, m.won_tv_cents, "
                "m.won_ev_micros FROM kpi_snapshot s JOIN kpi_snapshot_month m "
                "ON m.snapshot_id = coalesce(s.months_of, s.id) ORDER BY 1, 2, 3"
            )
        ).all()
    return [tuple(r) for r in snaps], [tuple(r) for r in months]


def _recounted(team: Team) -> tuple[list[tuple], list[tuple]]:
    """The history with today's readings recounted from the prospects by the owner."""
    from evpipe.models import clock
    from evpipe.models.history import record_snapshot
    from evpipe.models.snapshot_deltas import forget_day

    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        forget_day(conn, clock.today())
    record_snapshot(team.engine(BOSS))
    return _history(team)


def test_a_rep_cannot_rewrite_the_kpi_history_around_evpipe(team):
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    before = _history(team)
    for sql in (
        "UPDATE kpi_snapshot SET tv_cents = 0",
        "DELETE FROM kpi_snapshot_month",
        "INSERT INTO kpi_snapshot (scope, taken_on, taken_at, count, tv_cents, ev_micros) "
        "VALUES ('all', '2020-01-01', now(), 1, 1, 1)",
        "UPDATE kpi_snapshot_month SET ev_micros = 1",
    ):
        refused = team.refused(RITA, sql)
        assert "permission denied for table kpi_snapshot" in str(refused.orig)
    # nor the ids of new readings
    assert "permission denied for sequence" in str(
        team.refused(RITA, "SELECT setval(pg_get_serial_sequence('kpi_snapshot', 'id'), 1)").orig
    )
    # nor through the trigger's functions: a trigger function runs only as a trigger
    team.refused(RITA, "SELECT evpipe_forget_day(current_date)")
    team.refused(RITA, "SELECT evpipe_own_months(1)")
    assert _history(team) == before
    # a manager still keeps the history by hand if need be
    assert team.raw(MIA, "UPDATE kpi_snapshot SET taken_at = taken_at") > 0


def test_the_server_adds_a_reps_changes_to_todays_reading_exactly(team):
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    rita = Store(team.engine(RITA))
    ritas = _id(team, "Rita's deal")
    rita.edit(ritas, value="3500")  # the value of one month
    rita.edit(ritas, month="2027-02")  # from no month to one
    rita.move(ritas, "next")
    added = rita.add("Rita's second", "1200.50", "Suspect", owner=RITA)
    rita.edit(added.prospect.id, month="2027-03")
    rita.win(ritas)
    third = rita.add("Rita's third", "800", "Suspect", owner=RITA)
    rita.delete(third.prospect.id)
    rita.lose(added.prospect.id)
    kept = _history(team)
    assert any(r[0] == f"owner:{RITA}" and r[3] == 350000 for r in kept[0])  # (her won deal counts)
    assert kept == _recounted(team)


def test_a_reps_change_when_there_is_no_reading_today_waits_for_the_recount(team):
    ritas = _id(team, "Rita's deal")
    assert team.cli(RITA, "edit", str(ritas), "--value", "4000").exit_code == 0
    with team.engine(BOSS).connect() as conn:  # type: ignore[attr-defined]
        assert conn.execute(select(func.count()).select_from(KpiSnapshot)).scalar() == 0  # hers records none
    assert team.cli(MIA, "edit", str(ritas), "--notes", "called").exit_code == 0  # a manager's records it
    with team.engine(BOSS).connect() as conn:  # type: ignore[attr-defined]
        assert conn.execute(select(func.count()).select_from(KpiSnapshot)).scalar() > 0
    assert _history(team) == _recounted(team)


def test_reps_who_see_only_their_own_read_only_their_own_kpi_history(team):
    from evpipe.models.history import record_snapshot

    assert team.cli(BOSS, "members", "reps-see", "own").exit_code == 0
    record_snapshot(team.engine(BOSS))
    snaps, months = _history(team, RITA)
    assert {r[0] for r in snaps} == {f"owner:{RITA}"}
    assert {r[0] for r in months} == {f"owner:{RITA}"}
    assert team.raw(RITA, "SELECT 1 FROM kpi_snapshot_month") == len(months)
    # her change still reaches everyone's reading, which she cannot read
    assert team.cli(RITA, "edit", "Rita's deal", "--value", "3100").exit_code == 0
    boss_snaps, _ = _history(team)
    assert (("all",) + boss_snaps[0][1:3]) == boss_snaps[0][:3] and boss_snaps[0][3] == 810000
    assert _history(team) == _recounted(team)
    assert team.cli(BOSS, "members", "reps-see", "all").exit_code == 0
    assert {r[0] for r in _history(team, RITA)[0]} == {"all", f"owner:{RAVI}", f"owner:{RITA}"}


def test_members_grants_check_names_an_unguarded_history(team):
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DROP TRIGGER evpipe_keep_kpi ON prospect"))
    assert "reps may still write the KPI history" in state(team.engine(BOSS)).problems
    assert team.cli(BOSS, "members", "grants").exit_code == 0
    assert state(team.engine(BOSS)).problems == []


def test_a_reps_change_leaves_the_month_rows_another_reading_shares_as_they_were(team):
    """Readings reconstructed from the journal share month rows (kpi_snapshot.months_of): a reading
    made from today's months keeps them as they were when her change moves today's."""
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        today = conn.execute(text("SELECT id FROM kpi_snapshot WHERE scope = :s"), {"s": f"owner:{RITA}"}).scalar()
        conn.execute(
            text(
                "INSERT INTO kpi_snapshot (scope, taken_on, taken_at, count, tv_cents, ev_micros, months_of) "
                "SELECT scope, taken_on - 1, taken_at, count, tv_cents, ev_micros, id FROM kpi_snapshot WHERE id = :i"
            ),
            {"i": today},
        )
    shared = [r for r in _history(team)[1] if r[0] == f"owner:{RITA}"]
    assert len(shared) == 2  # one month row, listed by both readings
    assert team.cli(RITA, "edit", "Rita's deal", "--value", "3900", "--month", "2027-05").exit_code == 0
    months = [r for r in _history(team)[1] if r[0] == f"owner:{RITA}"]
    assert months[0] == shared[0]  # the day before: as it was
    assert months[1][2:5] == ("2027-05", 1, 390000)
    assert _history(team)[1] == _recounted(team)[1]


async def test_a_prospect_handed_away_leaves_the_former_owners_live_screen(team):
    """With reps seeing only their own, the server hides a prospect from rita once the owner hands
    it to ravi, and the journal's entries about it with it: her open pipeline still drops it within
    the live-sync interval, and her header with it; ravi's gains it. (It stayed on her screen, and
    in her totals, until she restarted.)"""
    import time

    from apphelpers import settle

    from evpipe.models.kpi import Scope, kpis
    from evpipe.tui.app import EvpipeApp

    assert team.cli(BOSS, "members", "reps-see", "own").exit_code == 0
    boss = Store(team.engine(BOSS))
    boss.add("Rita's other deal", "1000", "Suspect", owner=RITA)
    handed = _id(team, "Rita's deal")

    async def until(pilot, condition) -> None:
        started = time.monotonic()
        while not condition():
            assert time.monotonic() - started < 15, "timed out"
            await pilot.pause(0.05)

    rita, ravi = EvpipeApp(team.url(RITA)), EvpipeApp(team.url(RAVI))
    async with rita.run_test(size=(80, 24)) as pilot, ravi.run_test(size=(80, 24)) as ravis_pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await settle(ravis_pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        hers, his = rita.pipeline, ravi.pipeline
        assert rita.scope_owner == RITA and set(hers.view.rows) == {handed, _id(team, "Rita's other deal")}
        assert hers.kpi_all.count == 2 and handed not in his.view.rows
        boss.edit(handed, owner=RAVI)
        await until(pilot, lambda: handed not in hers.view.rows)
        mine = kpis(team.engine(RITA), Scope(owner=RITA, period=hers.period))
        assert mine.count == 1
        await until(pilot, lambda: hers.kpi_all == mine)
        await until(ravis_pilot, lambda: handed in his.view.rows)
        theirs = kpis(team.engine(RAVI), Scope(owner=RAVI, period=his.period))
        await until(ravis_pilot, lambda: his.kpi_all == theirs)
        assert theirs.count == 2


def test_the_live_check_reads_a_reps_own_prospects_again_only_when_the_journal_moved(team):
    """The check for prospects handed away unseen looks at the journal's id counter first: twice a
    second, a look that finds it where it was reads none of her prospects."""
    from evpipe.models.changes_feed import OwnRows

    assert team.cli(BOSS, "members", "reps-see", "own").exit_code == 0
    ritas = _id(team, "Rita's deal")
    own = OwnRows(RITA)
    with team.engine(RITA).connect() as conn:  # type: ignore[attr-defined]
        assert own.left(team.engine(RITA), conn) == set()  # the baseline
        # handed away by hand, no journal entry: the counter stands, so nothing is read
        team.raw(BOSS, "UPDATE prospect SET owner = :o WHERE id = :i", o=RAVI, i=ritas)
        assert own.left(team.engine(RITA), conn) == set()
        # any entry moves it (hers or, hidden from her, anyone's): then her prospects are read
        Store(team.engine(BOSS)).add("Boss's own", "10", "Suspect", owner=BOSS)
        assert own.left(team.engine(RITA), conn) == {ritas}
        assert own.left(team.engine(RITA), conn) == set()


def _as_rep(team: Team, moment: str | None, *sqls: str) -> None:
    """Statements as rita from psql, in one transaction, with `evpipe.now` set to `moment` (a
    moment she names: the trigger takes today from the server's clock, not from it) or not at all."""
    with team.engine(RITA).begin() as conn:  # type: ignore[attr-defined]
        if moment is not None:
            conn.execute(text("SELECT set_config('evpipe.now', :m, true)"), {"m": moment})
        for sql in sqls:
            conn.execute(text(sql))


def test_a_temporary_table_of_the_historys_name_does_not_keep_a_reps_change_out_of_it(team):
    """The trigger fires for a session that may not write kpi_snapshot; a rep's own temporary table
    kpi_snapshot (any role may make one) must not make her one that may."""
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    ritas = _id(team, "Rita's deal")
    _as_rep(
        team,
        "2026-11-27 10:30",
        "CREATE TEMPORARY TABLE kpi_snapshot (x int)",
        f"UPDATE prospect SET value_cents = 99999999 WHERE id = {ritas}",
    )
    assert _history(team) == _recounted(team)
    # a trigger made by an older evpipe (its check by the table's name alone) is named by the check
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DROP TRIGGER evpipe_keep_kpi ON prospect"))
        conn.execute(
            text(
                "CREATE TRIGGER evpipe_keep_kpi AFTER INSERT OR DELETE OR UPDATE ON prospect FOR EACH ROW "
                "WHEN (NOT has_table_privilege(session_user, 'kpi_snapshot', 'UPDATE')) "
                "EXECUTE FUNCTION evpipe_keep_kpi()"
            )
        )
    assert "reps may still write the KPI history" in state(team.engine(BOSS)).problems
    assert team.cli(BOSS, "members", "grants").exit_code == 0
    assert state(team.engine(BOSS)).problems == []


def test_a_reps_change_from_psql_reaches_the_reading_of_the_teams_own_day(team):
    """Without evpipe's moment (psql, a script), the trigger takes the server's clock: in the
    team's time zone (the database's), as evpipe's clock is the local one, not UTC's, or a change
    made while UTC is on another day would miss today's reading."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from evpipe.models import clock
    from evpipe.models.history import record_snapshot

    # a zone whose day differs from UTC's right now
    zone = "Etc/GMT-13" if datetime.now(UTC).hour >= 12 else "Etc/GMT+12"
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(f"ALTER DATABASE \"{team.database}\" SET timezone = '{zone}'")
    for engine in team.engines.values():
        engine.dispose()  # type: ignore[attr-defined]  (new sessions take the database's zone)
    clock.set_fixed(datetime.now(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0))
    record_snapshot(team.engine(BOSS))
    ritas = _id(team, "Rita's deal")
    psql = create_engine(team.url(RITA))  # as psql connects: no options of evpipe's (its sessions are UTC)
    try:
        with psql.begin() as conn:
            conn.execute(text(f"UPDATE prospect SET value_cents = 420000 WHERE id = {ritas}"))
    finally:
        psql.dispose()
    assert _history(team) == _recounted(team)


@pytest.mark.parametrize("month", ["", "none"])
def test_a_month_evpipe_never_writes_is_no_month_for_the_history(team, monkeypatch, month):
    """'' or 'none' as a prospect's month, from psql: no month, for the trigger as for a recount;
    grouped apart from NULL, both were the history's month 'none', and the next day's first
    reading failed on its key for every owner's and manager's write."""
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    ritas = _id(team, "Rita's deal")
    _as_rep(team, "2026-11-27 10:30", f"UPDATE prospect SET expected_month = '{month}' WHERE id = {ritas}")
    assert _history(team) == _recounted(team)
    monkeypatch.setenv("EVPIPE_NOW", "2026-11-28T09:00:00")
    result = team.cli(BOSS, "edit", "Ravi's deal", "--value", "4000")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert [r[2:4] for r in _history(team)[1] if r[0] == "all" and str(r[1]) == "2026-11-28"] == [("none", 2)]


def test_an_operator_a_rep_makes_in_the_schema_does_not_run_as_the_owner(team):
    """Where members may create in evpipe's schema (every role may in public before PostgreSQL 15,
    and a database upgraded since keeps it so), a rep's operator = for two varchars is a closer
    match for the trigger's `scope = 'all'` than pg_catalog's text = text: the trigger, which runs
    as the role that owns the tables, must not run it."""
    from evpipe.models.history import record_snapshot

    team.raw(BOSS, "GRANT CREATE ON SCHEMA public TO PUBLIC")  # as an older server had it
    assert state(team.engine(BOSS)).problems == [
        "reps and managers may create objects in the schema public, where evpipe's tables are; its owner or a "
        "superuser runs REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    ]
    record_snapshot(team.engine(BOSS))
    ritas = _id(team, "Rita's deal")
    team.raw(
        RITA,
        "CREATE FUNCTION public.rita_eq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_user <> session_user THEN EXECUTE 'UPDATE kpi_snapshot SET tv_cents = 7'; END IF; "
        "RETURN $1::text = $2::text; END $$",
    )
    team.raw(RITA, "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.rita_eq)")
    _as_rep(team, "2026-11-27 10:30", f"UPDATE prospect SET value_cents = 310000 WHERE id = {ritas}")
    team.raw(BOSS, "DROP OPERATOR public.= (varchar, varchar)")  # (the owner's own reads below would match it too)
    assert _history(team) == _recounted(team)
    # a trigger function made by an older evpipe (evpipe's schema on its search path) is named by the check
    team.raw(BOSS, "ALTER FUNCTION evpipe_keep_kpi() SET search_path = public, pg_temp")
    assert "reps may still write the KPI history" in state(team.engine(BOSS)).problems
    # members grants takes the schema back from them (here the owner's role owns it)
    assert team.cli(BOSS, "members", "grants").exit_code == 0
    assert state(team.engine(BOSS)).problems == []
    assert "permission denied for schema public" in str(team.refused(RITA, "CREATE TABLE public.t (x int)").orig)


def test_a_rep_cannot_forge_a_probability_change_in_the_journal(team, monkeypatch):
    """A stage's probability at a past moment is replayed from the journal's probability changes
    (rows of no prospect, category 'prob'): a rep's row of no prospect must not be one, or the
    owner's month-start reading takes the probability she names (here 100 % on Suspect)."""
    suspect = Store(team.engine(BOSS)).stage("Suspect").id
    with contextlib.suppress(DBAPIError):  # (refused: as it should be)
        team.raw(
            RITA,
            "INSERT INTO change_event (at, who, action, category, stage_id, d_count, d_tv_cents, d_ev_micros, "
            "summary, payload) VALUES ('2026-12-02 12:00', current_user, 'prob', 'prob', :s, 0, 0, 0, "
            "'Suspect: 100 %', '{\"before\": 10000}')",
            s=suspect,
        )
    # an entry of hers between the latest reading and the month's end: the month start is replayed
    Store(team.engine(RITA)).edit(_id(team, "Rita's deal"), notes="called")
    monkeypatch.setenv("EVPIPE_NOW", "2026-12-05T09:00:00")
    assert team.cli(BOSS, "edit", "Ravi's deal", "--notes", "called").exit_code == 0  # records the month start
    snaps, _ = _history(team)
    assert [r[2:5] for r in snaps if r[0] == "all"] == [(2, 800000, 400000000), (2, 800000, 400000000)]


def test_a_rep_cannot_write_a_value_evpipe_never_takes(team):
    """From psql a rep could give her prospect any 64-bit value: one alone takes the team's EV near
    its limit (the owner's next change that adds EV is then refused as too large), and whether such
    a value overflows today's reading tells a rep who sees only her own what the team's EV is."""
    from evpipe.models.history import record_snapshot

    assert team.cli(BOSS, "members", "reps-see", "own").exit_code == 0
    record_snapshot(team.engine(BOSS))
    before = _history(team)
    ritas = _id(team, "Rita's deal")
    for value in (922337203685477, 1_000_000_000_000, -1):
        refused = team.refused(RITA, f"UPDATE prospect SET value_cents = {value} WHERE id = {ritas}")
        assert "is not a value evpipe takes" in str(refused.orig)
    assert _history(team) == before
    # the most evpipe takes is hers to write, and a change of something else leaves her value be
    _as_rep(team, "2026-11-27 10:30", f"UPDATE prospect SET value_cents = 999999999999 WHERE id = {ritas}")
    assert _history(team) == _recounted(team)


def test_a_rep_cannot_take_the_ids_the_teams_next_writes_get(team):
    """A rep writes journal rows (and prospects, activities) with ids of her choosing: the ones the
    id sequence gives next made each of the owner's next writes fail on the key, one for each."""
    with team.engine(BOSS).connect() as conn:  # type: ignore[attr-defined]
        taken = conn.execute(text("SELECT last_value FROM change_event_id_seq")).scalar()
    for k in range(1, 4):  # the next three
        with contextlib.suppress(DBAPIError):  # (refused: as it may be)
            team.raw(
                RITA,
                "INSERT INTO change_event (id, at, who, action, category, d_count, d_tv_cents, d_ev_micros, summary, "
                "payload) VALUES (:i, now(), current_user, 'edit', 'edit', 0, 0, 0, 'an edit', '{}')",
                i=taken + k,
            )
    result = team.cli(BOSS, "edit", "Ravi's deal", "--value", "4100")
    assert result.exit_code == 0, result.stderr
    # nor by moving a sequence back (setval), nor by giving a row of hers another id
    ritas = _id(team, "Rita's deal")
    for sql in (
        "SELECT setval(pg_get_serial_sequence('prospect', 'id'), 1)",
        f"UPDATE prospect SET id = 3 WHERE id = {ritas}",
    ):
        with contextlib.suppress(DBAPIError):
            team.raw(RITA, sql)
    result = team.cli(BOSS, "add", "Boss's deal", "--value", "100")
    assert result.exit_code == 0, result.stderr
    assert Store(team.engine(BOSS)).get(ritas).name == "Rita's deal"


def test_a_rep_who_takes_her_groups_role_writes_nothing_in_its_name(team):
    """SET ROLE to the rep group (every rep is in it) makes current_user the group: the rules that
    say which prospects are hers (owner = CURRENT_USER, as they were) then let her add one owned by the group,
    which every rep may change and the owner's figures count as a member's."""
    groups = group_names(team.database)
    with contextlib.suppress(DBAPIError), team.engine(RITA).begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'SET LOCAL ROLE "{groups["rep"]}"'))
        conn.execute(
            text(
                "INSERT INTO prospect (name, company, contact_name, email, phone, notes, custom_json, "
                "value_cents, stage_id, owner, created_at, updated_at, last_touch_at, needs_review, version) "
                "SELECT 'Nobody''s', '', '', '', '', '', '{}', 100, min(id), current_user, now(), now(), now(), "
                "false, 1 FROM stage"
            )
        )
    assert team.raw(BOSS, "SELECT 1 FROM prospect WHERE owner = :g", g=groups["rep"]) == 0


def test_a_rep_cannot_keep_her_change_out_of_todays_reading_by_naming_another_day(team):
    """Today is the server's to say, from the latest live reading and the time since: a rep naming
    a day with no reading (2030) still has her change added to today's."""
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    ritas = _id(team, "Rita's deal")
    _as_rep(team, "2030-01-01 00:00", f"UPDATE prospect SET value_cents = 99999999 WHERE id = {ritas}")
    _as_rep(team, "garbage", f"UPDATE prospect SET value_cents = 99999998 WHERE id = {ritas}")
    assert _history(team) == _recounted(team)


def test_a_rep_cannot_add_to_a_past_reading_by_naming_its_day(team):
    """Yesterday's reading is the latest (nobody who may write the history has written today): her
    change goes to no reading, whatever day she names, and today's first recount counts it."""
    from evpipe.models.history import record_snapshot

    record_snapshot(team.engine(BOSS))
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]  # taken a day ago by the server's clock
        conn.execute(text("UPDATE kpi_snapshot SET server_at = server_at - interval '1 day'"))
    yesterday = _history(team)
    ritas = _id(team, "Rita's deal")
    for moment in ("2026-11-27 18:00", "2026-11-28 10:30"):  # (evpipe's moment is 27 Nov 2026, 10:00)
        _as_rep(team, moment, f"UPDATE prospect SET value_cents = 99999999 WHERE id = {ritas}")
    assert _history(team) == yesterday


def test_todays_reading_recorded_before_the_servers_clock_was_kept_takes_a_reps_change(team, monkeypatch):
    """An upgrade from before migration 0012: today's reading has no server clock beside it until
    members grants gives it the server's now, and a rep's change then reaches it."""
    from datetime import datetime

    from evpipe.models.history import record_snapshot

    monkeypatch.setenv("EVPIPE_NOW", datetime.now().isoformat(timespec="seconds"))  # (the server's today)
    record_snapshot(team.engine(BOSS))
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("UPDATE kpi_snapshot SET server_at = NULL"))
    assert team.cli(BOSS, "members", "grants").exit_code == 0
    assert team.cli(RITA, "edit", "Rita's deal", "--value", "3300").exit_code == 0
    assert _history(team) == _recounted(team)


def _journal(team: Team) -> list[tuple]:
    with team.engine(BOSS).connect() as conn:  # type: ignore[attr-defined]
        events = conn.execute(text("SELECT id, at, who, action FROM change_event ORDER BY id")).all()
        changes = conn.execute(text("SELECT id, changed_at, prospect_id, to_stage_id FROM stage_change ORDER BY id"))
        return [tuple(r) for r in events] + [tuple(r) for r in changes.all()]


_FORGED_MOVE = (
    "INSERT INTO change_event (at, who, action, category, prospect_id, stage_id, d_count, d_tv_cents, d_ev_micros, "
    "summary, payload) VALUES (:at, current_user, 'move', 'won', :p, :s, 0, 0, :ev, 'won', :payload)"
)
_FORGED_CHANGE = (
    "INSERT INTO stage_change (prospect_id, changed_at, who, from_stage_id, to_stage_id, value_cents, "
    "from_probability_bp, to_probability_bp, event_id, inferred) "
    "VALUES (:p, :at, current_user, :f, :s, :v, 1000, 10000, currval(pg_get_serial_sequence('change_event', 'id')), "
    "false)"
)


def _rep_moves(team: Team, *statements: tuple[str, dict]) -> None:
    """Rita's prospect moved to Won and journalled by `statements`, in one transaction, from psql."""
    with team.engine(RITA).begin() as conn:  # type: ignore[attr-defined]
        for sql, params in statements:
            conn.execute(text(sql), params)


def test_a_rep_cannot_forge_her_journal_from_psql(team):
    """The month starts are rebuilt from the journal: a rep's entry about her own prospect, dated
    before the month start (a win in October, on 27 Nov), would be taken as what happened then. The
    server takes a rep's entry only as the change her transaction made, now."""
    boss = Store(team.engine(BOSS))
    ritas, won, suspect = _id(team, "Rita's deal"), boss.stage("Won").id, boss.stage("Suspect").id
    before = _journal(team)
    move = ("UPDATE prospect SET stage_id = :s, closed_on = '2026-11-27' WHERE id = :p", {"s": won, "p": ritas})
    entry = {"p": ritas, "s": won, "ev": 2850000000, "payload": "{}"}  # (EV 3,000 at Suspect's 5 %, now at 100 %)
    change = {"p": ritas, "f": suspect, "s": won, "v": 300000}

    def refused(*statements: tuple[str, dict]) -> str:
        with pytest.raises(DBAPIError) as caught:
            _rep_moves(team, *statements)
        return str(caught.value.orig)

    # dated in October: the move is really made, the entry and its stage change say when it was not
    said = refused(
        move,
        (_FORGED_MOVE, {**entry, "at": "2026-10-30 12:00"}),
        (_FORGED_CHANGE, {**change, "at": "2026-11-27 10:00"}),
    )
    assert "evpipe journal: an entry of a rep's is dated 2026-10-30 12:00:00, not now (2026-11-27 10:0" in said
    assert "evpipe journal: an entry of a rep's is dated 2026-10-30" in refused(
        move,
        (_FORGED_MOVE, {**entry, "at": "2026-11-27 10:00"}),
        (_FORGED_CHANGE, {**change, "at": "2026-10-30 12:00"}),
    )
    # dated now, but of no change of hers in this transaction, or not the one it made
    assert "must come with the change of it" in refused((_FORGED_MOVE, {**entry, "at": "2026-11-27 10:00"}))
    assert "goes to the stage it is on" in refused(
        move, (_FORGED_MOVE, {**entry, "s": suspect, "at": "2026-11-27 10:00"})
    )
    assert "at its value" in refused(
        move,
        (_FORGED_MOVE, {**entry, "at": "2026-11-27 10:00"}),
        (_FORGED_CHANGE, {**change, "v": 1, "at": "2026-11-27 10:00"}),
    )
    # what it did to the figures, or its month before, not what the change did
    assert "changed the figures by {0,0,1}, not by what its change did ({0,0,2850000000})" in refused(
        move, (_FORGED_MOVE, {**entry, "ev": 1, "at": "2026-11-27 10:00"})
    )
    month = ("UPDATE prospect SET expected_month = '2027-01' WHERE id = :p", {"p": ritas})
    edit = _FORGED_MOVE.replace("'move', 'won'", "'edit', 'edit'")
    told = '{"before": {"expected_month": "2026-11"}, "after": {"expected_month": "2027-01"}}'
    assert "names its month or owner before and after as they were not" in refused(
        month, (edit, {**entry, "ev": 0, "payload": told, "at": "2026-11-27 10:00"})
    )
    assert "of the action import" in refused(
        move, (_FORGED_MOVE.replace("'move'", "'import'"), {**entry, "at": "2026-11-27 10:00"})
    )
    assert _journal(team) == before
    assert boss.get(ritas).stage_name == "Suspect"
    # the change she really made, now, written as evpipe writes it: taken
    _rep_moves(
        team,
        move,
        (_FORGED_MOVE, {**entry, "at": "2026-11-27 10:01"}),
        (_FORGED_CHANGE, {**change, "at": "2026-11-27 10:01"}),
    )
    assert boss.get(ritas).stage_name == "Won"
    assert len(_journal(team)) == len(before) + 2


def test_owners_and_managers_write_the_journal_as_before(team):
    """The guard is for reps: an owner's or a manager's entry of any moment is theirs to write (an
    import dates its entries from the file)."""
    ravis = _id(team, "Ravi's deal")
    for who in (BOSS, MIA):
        won = Store(team.engine(BOSS)).stage("Won").id
        assert team.raw(who, _FORGED_MOVE, at="2026-10-30 12:00", p=ravis, s=won, ev=1, payload="{}") == 1


def test_a_reps_own_writes_pass_the_journals_guard_and_replay_as_recounted(team, monkeypatch):
    """Everything a rep's evpipe writes is taken (moves, an edit, undo and its skip, contact points
    and their undo, a delete), and the month start rebuilt from her journal is the owner's recount
    of the same pipeline."""
    from evpipe.models.history import record_snapshot

    rita = Store(team.engine(RITA))
    ritas = _id(team, "Rita's deal")
    rita.move(ritas, "next")
    rita.move(ritas, "next")
    rita.move(ritas, "back")
    rita.edit(ritas, value="4200", month="2027-01")
    rita.log_activity(ritas, "call", "hello", when="yesterday")  # not its last touch: its undo touches nothing else
    rita.undo()
    rita.log_activity(ritas, "email", "sent")
    rita.undo()
    rita.move(ritas, "next")
    rita.undo()  # the move
    second = rita.add("Rita's second", "1000", "Suspect").prospect
    rita.set_follow_up(second.id, "2026-12-01")
    rita.win(second.id)
    third = rita.add("Rita's third", "800", "Suspect").prospect
    rita.lose(third.id, reason="price")
    rita.edit(ritas, notes="called")
    with contextlib.suppress(Exception):
        rita.undo()  # the notes
    rita.delete(third.id)
    rita.undo()
    rita.edit(ritas, notes="again")
    rita.skip_undo()
    with team.engine(BOSS).connect() as conn:  # type: ignore[attr-defined]
        actions = {a for (a,) in conn.execute(text("SELECT action FROM change_event WHERE who = :r"), {"r": RITA})}
    assert actions == {"create", "move", "edit", "activity", "undo", "follow_up", "delete", "skip"}
    # a week on, the owner's first reading rebuilds December's start (dated 30 Nov) from the
    # journal, there being no reading to carry forward, then recounts
    monkeypatch.setenv("EVPIPE_NOW", "2026-12-05T09:00:00")
    record_snapshot(team.engine(BOSS))
    snaps, months = _history(team)
    rebuilt = {r[0]: r[2:] for r in snaps if str(r[1]) == "2026-11-30"}
    recounted = {r[0]: r[2:] for r in snaps if str(r[1]) == "2026-12-05"}
    assert rebuilt == recounted and f"owner:{RITA}" in rebuilt
    assert [(r[0], *r[2:]) for r in months if str(r[1]) == "2026-11-30"] == [
        (r[0], *r[2:]) for r in months if str(r[1]) == "2026-12-05"
    ]


def test_members_grants_check_names_an_unguarded_journal(team):
    assert state(team.engine(BOSS)).problems == []
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DROP TRIGGER evpipe_keep_journal ON stage_change"))
    assert "reps may still write journal entries of changes they did not make" in state(team.engine(BOSS)).problems
    result = team.cli(BOSS, "members", "grants", "--check")
    assert result.exit_code == 1
    assert "problem: reps may still write journal entries of changes they did not make" in result.stderr
    assert team.cli(BOSS, "members", "grants").exit_code == 0
    assert state(team.engine(BOSS)).problems == []
    with team.engine(BOSS).begin() as conn:  # type: ignore[attr-defined]  (switched off by the tables' owner)
        conn.execute(text("ALTER TABLE change_event DISABLE TRIGGER evpipe_keep_journal"))
    assert "reps may still write journal entries of changes they did not make" in state(team.engine(BOSS)).problems


def test_a_reps_evpipe_with_its_clock_a_week_off_is_told_in_one_line(team, monkeypatch):
    """Her evpipe dates her change by her computer's clock: a week behind the team's, the server
    refuses it, and she reads why in one line."""
    monkeypatch.setenv("EVPIPE_NOW", "2026-11-20T10:00:00")
    result = team.cli(RITA, "edit", "Rita's deal", "--value", "3100")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"evpipe: the server refused: your role {RITA} may not write that journal entry (an entry of a rep's is "
        "dated 2026-11-20 10:00:00, not now (2026-11-27 10:0"
    ), lines
    assert lines[0].endswith("by the server's clock); check this computer's clock); nothing was saved")
    assert Store(team.engine(BOSS)).get("Rita's deal").value_cents == 300000


def test_a_reps_own_temporary_table_does_not_tell_the_guard_what_her_prospect_was(team):
    """The guard keeps each prospect as it was before her transaction wrote it in a temporary table
    of her session's, owned by the role that owns the tables: one of hers of that name, made first
    and filled as she likes, makes her every entry refused, not taken."""
    boss = Store(team.engine(BOSS))
    ritas, won = _id(team, "Rita's deal"), boss.stage("Won").id
    with pytest.raises(DBAPIError) as caught, team.engine(RITA).begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE evpipe_before (id bigint PRIMARY KEY, existed boolean NOT NULL, stage_id "
                "bigint, value_cents bigint, expected_month text, deleted boolean, used boolean NOT NULL DEFAULT false)"
            )
        )
        conn.execute(text("GRANT ALL ON evpipe_before TO PUBLIC"))  # (the guard may write it)
        conn.execute(
            text("INSERT INTO evpipe_before VALUES (:p, true, :s, 300000, NULL, false, false)"), {"p": ritas, "s": won}
        )
        conn.execute(text("UPDATE prospect SET stage_id = :s WHERE id = :p"), {"s": won, "p": ritas})
        conn.execute(text(_FORGED_MOVE), {"p": ritas, "s": won, "ev": 0, "payload": "{}", "at": "2026-11-27 10:00"})
    assert "a temporary table evpipe_before of this session's is in the way" in str(caught.value.orig)
    assert boss.get(ritas).stage_name == "Suspect"


def test_a_rep_marks_an_entry_undone_only_by_undoing_it(team):
    """`undone_by_id` is a mark a rep writes on her entries (undo's), and what it says is read: an
    undone move and its undo are no stay and no evidence of where an outcome closed from. From psql
    she could mark any move of hers undone by any entry; only the undo written with it marks it."""
    rita = Store(team.engine(RITA))
    ritas = _id(team, "Rita's deal")
    moved = rita.move(ritas, "next").event_id
    later = rita.edit(ritas, notes="called").event_id
    said = team.refused(RITA, "UPDATE change_event SET undone_by_id = :l WHERE id = :m", l=later, m=moved)
    assert f"evpipe journal: entry #{moved} is marked undone only by the undo of it" in str(said.orig)
    rita.undo()  # the edit: evpipe's own mark
    rita.undo()  # the move
    with team.engine(BOSS).connect() as conn:  # type: ignore[attr-defined]
        marks = conn.execute(
            text("SELECT e.id, u.undoes_id FROM change_event e JOIN change_event u ON u.id = e.undone_by_id")
        ).all()
    assert sorted(tuple(r) for r in marks) == [(moved, moved), (later, later)]
    # and once marked, the mark stays
    team.refused(RITA, "UPDATE change_event SET undone_by_id = :l WHERE id = :m", l=later, m=moved)
