"""`evpipe migrate --to`: SQLite to PostgreSQL and back, in one transaction, proved by the figures."""

from __future__ import annotations

import json
import shlex
import sqlite3

import pytest
from click.testing import CliRunner

from evpipe.models import open_db
from evpipe.models.backup import dump
from evpipe.models.store import Store
from evpipe.tui.cli import main

pytestmark = pytest.mark.both_databases


def run(*args: str, code: int = 0, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


@pytest.fixture
def other_url(db_backend, tmp_path, pg_server):
    """A new database on the other backend: the test copies across."""
    if db_backend == "postgresql":
        yield f"sqlite:///{tmp_path / 'copy.db'}"
        return
    name = pg_server.new_database(schema=False)
    yield pg_server.url_of(name)
    pg_server.drop(name)


def test_migrate_copies_everything_and_the_figures_agree_to_the_cent(demo_engine, db_url, other_url):
    s = Store(demo_engine, who="tester")
    s.edit(1, value="99")
    s.undo()  # a journal with an undo link in it
    out = run("--db", db_url, "migrate", "--to", other_url, "--json").stdout
    proof = json.loads(out)
    assert proof["agrees"] and proof["source"] == proof["target"]
    assert proof["source"]["rows"]["prospect"] == 40
    kpi_here = json.loads(run("--db", db_url, "kpi", "--json").stdout)
    kpi_there = json.loads(run("--db", other_url, "kpi", "--json").stdout)
    assert kpi_here == kpi_there
    copy = open_db(other_url)
    try:
        assert dump(copy) == dump(demo_engine)
        # the copy is a working database: new rows take the next ids
        assert Store(copy, who="tester").add("Next", "5", "Suspect").prospect.id == 41
    finally:
        copy.dispose()


def test_migrate_prints_its_proof_and_refuses_a_target_with_data(demo_engine, db_url, other_url):
    text = run("--db", db_url, "migrate", "--to", other_url).stdout
    assert "KPI TV" in text and "journal EV" in text and "agrees" in text
    again = run("--db", db_url, "migrate", "--to", other_url, code=1)
    assert again.stderr.startswith("evpipe: migrate: the target is not empty (40 prospect rows")
    assert len(again.stderr.strip().splitlines()) == 1


def test_the_hint_after_a_migration_names_the_file_with_its_folder(demo_engine, db_url, tmp_path, monkeypatch):
    """`migrate --to sub/mig.db` ended "Now: evpipe --db mig.db", a file that is not there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub dir").mkdir()
    text = run("--db", db_url, "migrate", "--to", "sub dir/mig.db").stdout
    assert text.rstrip().endswith("Now: evpipe --db 'sub dir/mig.db'")


def test_a_password_in_the_url_is_refused(db_url):
    bad = run("--db", db_url, "migrate", "--to", "postgresql+psycopg://rep:secret@db.example/evpipe", code=1)
    assert "~/.pgpass or PGPASSWORD" in bad.stderr and "secret" not in bad.stderr


def test_a_nul_character_postgresql_cannot_store_is_named_and_nothing_is_written(tmp_path, pg_server):
    """SQLite's text may hold a NUL character (a file another program wrote); PostgreSQL's may not.
    Migrating one stopped with the driver's words, saying the source database had failed."""
    source = tmp_path / "pipeline.db"
    Store(open_db(f"sqlite:///{source}"), who="tester").add("Harbour", "100", "Suspect", notes="fine")
    raw = sqlite3.connect(source)
    raw.execute("UPDATE prospect SET notes = 'before' || char(0) || 'after'")
    raw.commit()
    raw.close()
    name = pg_server.new_database(schema=False)
    try:
        bad = run("--db", str(source), "migrate", "--to", pg_server.url_of(name), code=1)
        said = bad.stderr.strip()
        assert len(said.splitlines()) == 1 and "prospect row 1, notes" in said and "NUL character" in said
        assert str(source) not in said and "nothing was" in said
        assert dump(open_db(pg_server.url_of(name)))["tables"]["prospect"]["rows"] == []
    finally:
        pg_server.drop(name)


@pytest.mark.parametrize("trouble", ["damaged", "locked"])
def test_a_failing_target_is_named_never_the_source(tmp_path, trouble):
    """A damaged or locked target was reported as --db's database: "pipeline.db is damaged ...
    restore it from a backup", about the sound database being copied."""
    source = tmp_path / "pipeline.db"
    Store(open_db(f"sqlite:///{source}"), who="tester").add("Harbour", "100", "Suspect")
    target = tmp_path / "target.db"
    other = open_db(f"sqlite:///{target}")
    for n in range(300):
        Store(other, who="tester").add(f"Old {n}", "100", "Suspect", notes="x" * 500)
    other.dispose()
    held = None
    if trouble == "damaged":
        data = bytearray(target.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 3000] = b"\xff" * 3000
        target.write_bytes(bytes(data))
    else:  # a copy `evpipe backup` made (no WAL yet), held by another program
        held = sqlite3.connect(target, isolation_level=None)
        held.execute("PRAGMA journal_mode=DELETE")
        held.execute("BEGIN IMMEDIATE")
    try:
        bad = run(
            "--db", str(source), "migrate", "--to", str(target), "--force", code=1, env={"EVPIPE_LOCK_TIMEOUT": "1"}
        )
    finally:
        if held is not None:
            held.rollback()
            held.close()
    said = bad.stderr.strip()
    assert len(said.splitlines()) == 1 and said.startswith(f"evpipe: migrate: the target: {target} is {trouble}")
    assert str(source) not in said


def test_the_hint_after_a_migration_to_a_server_is_the_url_as_given_and_quoted(tmp_path, pg_server):
    """The hint named a server as `postgresql+psycopg:///db?host=...&port=...`: its user left out,
    and unquoted, so that pasting it ran evpipe in the background on another URL."""
    source = tmp_path / "pipeline.db"
    Store(open_db(f"sqlite:///{source}"), who="tester").add("Harbour", "100", "Suspect")
    name = pg_server.new_database(schema=False)
    url = pg_server.url_of(name) + "&connect_timeout=10"
    try:
        text = run("--db", str(source), "migrate", "--to", url).stdout
    finally:
        pg_server.drop(name)
    assert text.rstrip().endswith(f"Now: evpipe --db {shlex.quote(url)}")


def test_a_migration_of_members_to_a_server_says_their_privileges_come_next(tmp_path, pg_server):
    """The member rows come with a copy to PostgreSQL; the server's privileges for them do not,
    and until an owner sets them the reps cannot read at all ("permission denied"): migrate says
    that next step, and says nothing of it for a pipeline without members."""
    from evpipe.models.members import add_member

    source = tmp_path / "pipeline.db"
    engine = open_db(f"sqlite:///{source}")
    Store(engine, who="tester").add("Harbour", "100", "Suspect")
    plain = tmp_path / "plain.db"
    Store(open_db(f"sqlite:///{plain}"), who="tester").add("Kauri", "100", "Suspect")
    add_member(engine, "tester", "tester", "owner")
    add_member(engine, "tester", "sam", "rep")
    engine.dispose()
    for db, members in ((source, True), (plain, False)):
        name = pg_server.new_database(schema=False)
        url = pg_server.url_of(name)
        try:
            text = run("--db", str(db), "migrate", "--to", url, env={"EVPIPE_USER": "tester"}).stdout
        finally:
            pg_server.drop(name)
        hint = f"Then, as the role that owns the tables: evpipe --db {shlex.quote(url)} members grants"
        assert (hint in text) is members, text
