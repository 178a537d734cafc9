"""What PostgreSQL adds (issue 12): writes that race, who you are, and a server that refuses you.
The rest of the suite runs its core on both databases (the `both_databases` mark, conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent
from evpipe.tui.cli import main

SAVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from evpipe.models import open_db
    from evpipe.models.errors import Conflict
    from evpipe.models.store import Store

    url, pid, version, value, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
    store = Store(open_db(url), who="rep" + value)
    store.get(pid)  # connected and warmed up, then both start together
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        store.edit(pid, value=value, expected_version=version)
        print("OK")
    except Conflict as exc:
        print("REFUSED", exc)
    """
)


def journal_sums(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.coalesce(func.sum(ChangeEvent.d_count), 0),
                func.coalesce(func.sum(ChangeEvent.d_tv_cents), 0),
                func.coalesce(func.sum(ChangeEvent.d_ev_micros), 0),
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def test_a_lock_held_too_long_is_one_line_in_words_on_the_command_line(pg_server, monkeypatch):
    """The command line said "the database ... failed: canceling statement due to lock timeout"
    where the app and SQLite say another evpipe is writing; nothing was written."""
    import psycopg

    from evpipe.models import open_db

    monkeypatch.setenv("EVPIPE_LOCK_TIMEOUT", "1")
    name = pg_server.new_database()
    engine = open_db(pg_server.url_of(name))
    try:
        pid = Store(engine, who="tester").add("Held", "1000", "Quote sent").prospect.id
        url = pg_server.url
        with psycopg.connect(dbname=name, user=url.username, **dict(url.query)) as other:
            other.execute("SELECT id FROM prospect WHERE id = %s FOR UPDATE", (pid,))
            result = _cli("--db", pg_server.url_of(name), "edit", str(pid), "--value", "2000")
            other.rollback()
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("evpipe: another evpipe is writing to "), lines
        assert "nothing was changed" in lines[0]
        assert Store(engine).get(pid).value_cents == 100000
    finally:
        engine.dispose()
        pg_server.drop(name)


@pytest.mark.both_databases
@pytest.mark.parametrize("round_", range(3))
def test_two_processes_saving_the_same_prospect_one_is_refused(engine, db_url, tmp_path, round_):
    """The issue's lost update: both saw version 1; exactly one save lands, the other is refused,
    and the journal still sums to the KPIs."""
    store = Store(engine, who="tester")
    seen = store.add("Shared", "1000", "Quote sent").prospect
    go = tmp_path / f"go{round_}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, db_url, str(seen.id), str(seen.version), value, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for value in ("2000", "3000")
    ]
    time.sleep(3)  # both have connected and read (a loaded machine: generous)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    words = sorted(out.split()[0] for out, _ in outs)
    assert words == ["OK", "REFUSED"], outs
    now = store.get(seen.id)
    assert now.version == seen.version + 1 and now.value_cents in (200000, 300000)
    k = kpis(engine)
    assert journal_sums(engine) == (k.count, k.tv_cents, k.ev_micros)


@pytest.mark.both_databases
def test_a_stage_probability_change_and_moves_onto_it_keep_the_journal_exact(engine, db_url):
    """Moves onto a stage while its probability changes: the ladder lock keeps every EV delta on
    the probability the move really saw."""
    import threading

    from evpipe.models import open_db

    store = Store(engine, who="tester")
    ids = [store.add(f"P{i}", "1000", "Suspect").prospect.id for i in range(12)]
    engines = [open_db(db_url), open_db(db_url)]
    errors: list[BaseException] = []

    def movers():
        s = Store(engines[0], who="a")
        try:
            for pid in ids:
                s.move(pid, "Enquiry")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def ladder():
        s = Store(engines[1], who="b")
        try:
            for percent in ("11", "12", "13", "14", "15", "16"):
                s.set_probability("Enquiry", percent)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=movers), threading.Thread(target=ladder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for e in engines:
        e.dispose()
    assert errors == []
    k = kpis(engine)
    assert journal_sums(engine) == (k.count, k.tv_cents, k.ev_micros)


@pytest.mark.both_databases
def test_who_is_the_connections_role_on_postgresql(engine, db_backend, monkeypatch):
    from evpipe.models.identity import current_user

    monkeypatch.setenv("EVPIPE_USER", "someone-else")
    who = current_user(engine)
    assert who == ("someone-else" if db_backend == "sqlite" else engine.url.username)
    assert Store(engine).who == who


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_server_that_refuses_is_one_line(pg_server):
    """(SQLite's files that cannot be opened: tests/test_databases.py.)"""
    base = pg_server.url
    for url, hint in (
        (base.set(username="no_such_role").render_as_string(hide_password=False), "check the user name"),
        (base.set(database="no_such_db").render_as_string(hide_password=False), "createdb NAME"),
        ("postgresql+psycopg://evpipe@127.0.0.1:1/x", "check that the server is running"),
    ):
        result = _cli("--db", url, "kpi")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("evpipe: cannot connect to ") and hint in lines[0], lines
        assert "Traceback" not in result.output


@pytest.fixture
def pg_engine(pg_server):
    from evpipe.models import open_db

    name = pg_server.new_database()
    engine = open_db(pg_server.url_of(name))
    yield engine
    engine.dispose()
    pg_server.drop(name)


def test_no_privileges_is_one_line(pg_engine, pg_server):
    """A role the server knows but that was granted nothing on evpipe's tables."""
    engine = pg_engine
    Store(engine, who="tester").add("Secret", "1000")
    with pg_server._admin() as conn:
        conn.execute("DROP ROLE IF EXISTS evpipe_outsider")
        conn.execute("CREATE ROLE evpipe_outsider LOGIN")
    try:
        outsider = pg_server.url.set(username="evpipe_outsider", database=engine.url.database)
        result = _cli("--db", outsider.render_as_string(hide_password=False), "list")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "permission denied" in lines[0], lines
    finally:
        engine.dispose()
        with pg_server._admin() as conn:
            conn.execute(f"REASSIGN OWNED BY evpipe_outsider TO {pg_server.url.username}")
            conn.execute("DROP ROLE IF EXISTS evpipe_outsider")


def test_a_lock_held_too_long_ends_in_words(pg_server, monkeypatch):
    """Another session holds the prospect's row lock: the save waits the lock timeout, then fails
    with the same words as SQLite's busy timeout; nothing was written."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    from evpipe.models import open_db
    from evpipe.models.errors import unsaved_reason

    monkeypatch.setenv("EVPIPE_LOCK_TIMEOUT", "1")
    name = pg_server.new_database()
    engine = open_db(pg_server.url_of(name))
    try:
        store = Store(engine, who="tester")
        pid = store.add("Held", "1000", "Quote sent").prospect.id
        url = pg_server.url
        with psycopg.connect(dbname=name, user=url.username, **dict(url.query)) as other:
            other.execute("SELECT id FROM prospect WHERE id = %s FOR UPDATE", (pid,))
            started = time.monotonic()
            with pytest.raises(OperationalError) as caught:
                store.edit(pid, value="2000")
            assert 0.9 <= time.monotonic() - started < 20
            other.rollback()
        assert unsaved_reason(caught.value) == "another evpipe is writing to the database and did not finish in time"
        assert store.get(pid).value_cents == 100000
    finally:
        engine.dispose()
        pg_server.drop(name)


@pytest.mark.both_databases
def test_each_dialect_need_gives_the_same_answer_on_both_databases(engine):
    """models/dialect.py: every need, evaluated by the database itself, as the domain expects."""
    from datetime import date, datetime

    from sqlalchemy import DateTime, Text, bindparam, literal

    from evpipe.models import dialect

    ts = bindparam("ts", datetime(2026, 11, 27, 23, 59, 58, 900000), type_=DateTime)
    doc = bindparam("doc", '{"before": {"owner": "sam", "expected_month": null}}', type_=Text)
    q = select(
        dialect.day_of(ts),
        dialect.month_of(ts),
        dialect.epoch_of(ts),
        dialect.days_between(date(2026, 12, 25), ts),
        dialect.json_has(doc, ("before", "expected_month")),
        dialect.json_has(doc, ("before", "value")),
        dialect.json_text(doc, ("before", "owner")),
        dialect.json_text(doc, ("before", "expected_month")),
        dialect.no_index(literal(7)),
    )
    with engine.connect() as conn:
        row = tuple(conn.execute(q).one())
    assert row[:4] == ("2026-11-27", "2026-11", 1795823998, 28)
    assert (bool(row[4]), bool(row[5]), row[6], row[7], row[8]) == (True, False, "sam", None, 7)


@pytest.mark.both_databases
def test_before_a_moment_is_what_the_seconds_since_1970_say(engine):
    """dialect.before_moment compares a stored timestamp with the text of a moment: it must say
    what `epoch_of(ts) < seconds` says, at the second itself, a fraction on either side of it, and
    moments beyond the years a timestamp holds."""
    from datetime import datetime

    from sqlalchemy import DateTime, bindparam

    from evpipe.models import dialect

    cases = []
    for at in (datetime(2026, 11, 27, 23, 59, 58), datetime(2026, 11, 27, 23, 59, 58, 900000), datetime(1969, 12, 31)):
        ts = bindparam(f"ts{len(cases)}", at, type_=DateTime)
        seconds = int((at - datetime(1970, 1, 1)).total_seconds() // 1)
        for s in (seconds - 1, seconds, seconds + 1, -(10**13), 10**13):
            cases.append((dialect.before_moment(ts, s), dialect.epoch_of(ts) < s, (at, s)))
    with engine.connect() as conn:
        row = tuple(conn.execute(select(*[c for case in cases for c in case[:2]])).one())
    said = [(bool(row[2 * i]), bool(row[2 * i + 1]), case[2]) for i, case in enumerate(cases)]
    assert [(b, what) for b, _, what in said] == [(e, what) for _, e, what in said]
    assert [b for b, _, _ in said][:5] == [False, False, True, False, True]


@pytest.mark.both_databases
def test_a_text_list_holds_the_groups_values_but_null(engine):
    """dialect.text_list: each group's values, NULLs left out, as one text with commas between;
    NULL for a group with none (the review's balance counts the distinct ids it holds)."""
    from sqlalchemy import Integer, text

    from evpipe.models import dialect

    pairs = [(1, "17"), (1, "4"), (1, "17"), (1, "CAST(NULL AS INTEGER)"), (2, "CAST(NULL AS INTEGER)"), (3, "5")]
    union = " UNION ALL ".join(f"SELECT {g} AS g, {v} AS v" for g, v in pairs)
    rows = text(union).columns(g=Integer, v=Integer).subquery("t")
    q = select(rows.c.g, dialect.text_list(rows.c.v)).group_by(rows.c.g).order_by(rows.c.g)
    with engine.connect() as conn:
        got = {g: text for g, text in conn.execute(q)}
    assert sorted(got[1].split(",")) == ["17", "17", "4"]
    assert got[2] is None and got[3] == "5"


@pytest.mark.both_databases
def test_init_of_a_new_server_database_says_it_made_it(new_db_url):
    """`evpipe init` on the empty database `createdb` made said it was 'already an evpipe database
    (with no prospects yet); nothing to do' while it made the schema and the ladder."""
    url = new_db_url("made.db", schema=False)
    first = _cli("--db", url, "init")
    assert first.exit_code == 0, first.output
    assert "Created a new evpipe database" in first.stdout and "already" not in first.stdout
    again = _cli("--db", url, "init")
    assert "is already an evpipe database (with no prospects yet); nothing to do" in again.stdout


@pytest.mark.both_databases
@pytest.mark.parametrize("first", ["move", "note"])
def test_a_change_still_being_saved_is_not_passed_over_by_the_live_feed(engine, db_url, monkeypatch, first):
    """Two reps save at once: the first has its journal entry (and so its id) but has not committed
    when the second saves. A live screen looking between the two commits must not take the later
    id as "everything up to here is seen", or the first change is never told (PostgreSQL hands out
    ids as rows are written, not as they commit). Every change is told by the feed exactly once."""
    import threading

    from evpipe.models import journal as journal_module
    from evpipe.models import open_db
    from evpipe.models.changes_feed import entries_since, latest_id

    store = Store(engine, who="tester")
    one = store.add("One", "1000", "Suspect").prospect.id
    two = store.add("Two", "2000", "Suspect").prospect.id
    start = latest_id(engine)
    written, release = threading.Event(), threading.Event()
    pausing = {}
    real_event = journal_module.SessionJournal.event

    def event(self, **kw):
        made = real_event(self, **kw)
        if pausing.get(threading.get_ident()):
            written.set()  # its id is taken; the transaction is still open
            assert release.wait(60)
        return made

    monkeypatch.setattr(journal_module.SessionJournal, "event", event)
    engines = [open_db(db_url), open_db(db_url)]
    errors: list[BaseException] = []

    def save(n: int, work) -> None:
        try:
            work(Store(engines[n], who=f"rep{n}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def slow(s: Store) -> None:
        pausing[threading.get_ident()] = True
        if first == "move":
            s.move(one, "Enquiry")
        else:
            s.log_activity(one, "call", "rang them")

    slow_one = threading.Thread(target=save, args=(0, slow))
    fast_one = threading.Thread(target=save, args=(1, lambda s: s.move(two, "Quote sent")))
    try:
        slow_one.start()
        assert written.wait(60)
        fast_one.start()
        fast_one.join(timeout=1.5)  # saved meanwhile, or waiting for the first to commit
        seen = latest_id(engine)  # a live screen's look
        told = [e.id for e in entries_since(engine, start) if e.id <= seen]
    finally:
        release.set()
        slow_one.join(timeout=60)
        fast_one.join(timeout=60)
        for e in engines:
            e.dispose()
    assert errors == []
    told += [e.id for e in entries_since(engine, seen)]  # the next look
    assert sorted(told) == [e.id for e in entries_since(engine, start)]
    assert len(told) == 2
