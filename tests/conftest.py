"""Shared fixtures: every test gets its own database: a file in tmp_path (never `sqlite://`) or,
for the tests marked `both_databases`, also a fresh database on a throwaway PostgreSQL server.

PostgreSQL (issue 12): `.ci/ensure-postgres start` runs a server for the session, started when the
first PostgreSQL test needs it and stopped when the session ends (a session fixture's finalizer
runs after failures and Ctrl-C too; the script's watchdog stops it if pytest itself is killed).
`EVPIPE_TEST_PG_URL` names a server of your own instead. Each test gets its own database, copied
from a template already at the newest schema (CREATE DATABASE ... TEMPLATE: a few milliseconds).
A missing server is a failure, never a skip; `EVPIPE_TEST_PG=off` runs the SQLite half only
(refused under CI=true).
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from evpipe.models import clock, open_db
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store

#: The ladder of the worked example in DOMAIN.md.
WORKED_LADDER = [
    {"name": "Suspect", "probability": "5"},
    {"name": "Enquiry", "probability": "10"},
    {"name": "Quote sent", "probability": "25"},
    {"name": "Deposit paid", "probability": "80"},
    {"name": "Won", "probability": "100", "kind": "won"},
    {"name": "Lost", "probability": "0", "kind": "lost"},
]

FIXED_NOW = datetime(2026, 11, 27, 10, 0, 0)


def down_and_up(engine, revision: str) -> None:
    """Take the schema back to `revision`, then up to head again, each in a transaction of its
    own, as an older evpipe left a database and a newer one opens it."""
    from alembic import command

    from evpipe.models.db import alembic_config, writer

    with writer(engine).begin() as conn:
        command.downgrade(alembic_config(conn), revision)
    with writer(engine).begin() as conn:
        command.upgrade(alembic_config(conn), "head")


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    """Every test runs on 27 Nov 2026, 10:00, as user `tester`, with no real data directory."""
    monkeypatch.setenv("EVPIPE_NOW", FIXED_NOW.isoformat())
    monkeypatch.setenv("EVPIPE_USER", "tester")
    monkeypatch.delenv("EVPIPE_DB", raising=False)
    clock.set_fixed(None)
    yield
    clock.set_fixed(None)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("HOME", str(home))


ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "both_databases: run the test on SQLite and on PostgreSQL (the db_url fixture and its kin)"
    )


def _postgres_wanted() -> bool:
    if os.environ.get("CI", "").lower() == "true":
        return True
    return os.environ.get("EVPIPE_TEST_PG", "").lower() not in ("off", "0", "no")


def pytest_generate_tests(metafunc):
    """Tests marked `both_databases` that use a database run once per backend (`[sqlite]`,
    `[postgresql]`); every other test keeps its name and runs on SQLite."""
    if "db_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        backends = BACKENDS if _postgres_wanted() else ("sqlite",)
        metafunc.parametrize("db_backend", backends, indirect=True)


@pytest.fixture
def db_backend(request) -> str:
    return getattr(request, "param", "sqlite")


_PG_SEEN: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter):
    """CI's log says which server the PostgreSQL half ran against, and how much of it passed."""
    reports = [
        r
        for key in ("passed", "failed")
        for r in terminalreporter.stats.get(key, [])
        if getattr(r, "when", "") == "call" and "[postgresql" in r.nodeid
    ]
    if _PG_SEEN or reports:
        passed = sum(1 for r in reports if r.passed)
        terminalreporter.write_line(
            f"PostgreSQL: {passed} of {len(reports)} tests passed against {_PG_SEEN.get('version', 'no server')} "
            f"({_PG_SEEN.get('where', '')})"
        )


class PgServer:
    """A PostgreSQL server for the tests, and fresh databases in it."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = make_url(url)
        self._names = itertools.count(1)
        self.template = "evpipe_template"
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {self.template}")
        eng = open_db(self.url_of(self.template), seed_ladder=False)  # the schema at head, no rows
        eng.dispose()
        with self._admin() as conn:
            _PG_SEEN["version"] = str(conn.execute("SELECT version()").fetchone()[0]).split(" on ")[0]  # type: ignore[index]
        _PG_SEEN["where"] = self.url.render_as_string(hide_password=True)

    def _admin(self):
        import psycopg

        return psycopg.connect(
            dbname=self.url.database, user=self.url.username, autocommit=True, **dict(self.url.query)
        )

    def url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def new_database(self, *, schema: bool = True) -> str:
        """A new database: at the newest schema with no rows, or (schema=False) with nothing."""
        name = f"evpipe_t{os.getpid()}_{next(self._names)}"
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template if schema else 'template0'}")
        return name

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_server():
    given = os.environ.get("EVPIPE_TEST_PG_URL")
    if given:
        yield PgServer(given)
        return
    script = ROOT / ".ci" / "ensure-postgres"
    done = subprocess.run(
        ["bash", str(script), "start", "--owner", str(os.getpid())], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"could not start PostgreSQL for the tests ({script}):\n{done.stderr}", pytrace=False)
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    try:
        yield PgServer(found["url"])
    finally:
        subprocess.run(["bash", str(script), "stop", found["dir"]], capture_output=True, timeout=120)


@pytest.fixture
def new_db_url(db_backend, tmp_path, request) -> Callable[..., str]:
    """Makes another new, empty database of the test's backend and gives its URL (`name`: the
    SQLite file's name; `schema=False`: on PostgreSQL, without even the schema)."""
    made: list[str] = []
    server = request.getfixturevalue("pg_server") if db_backend == "postgresql" else None

    def make(name: str = "other.db", *, schema: bool = True) -> str:
        if server is None:
            return f"sqlite:///{tmp_path / name}"
        made.append(server.new_database(schema=schema))
        return server.url_of(made[-1])

    yield make
    if server is not None:
        for name in made:
            server.drop(name)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "pipeline.db"


@pytest.fixture
def db_url(db_backend, db_path, new_db_url) -> str:
    if db_backend == "sqlite":
        return f"sqlite:///{db_path}"
    return new_db_url()


@pytest.fixture
def engine(db_url):
    eng = open_db(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine) -> Store:
    return Store(engine, who="tester")


@pytest.fixture
def worked_engine(db_url):
    """DOMAIN.md's worked example: its ladder and prospects A-E."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    s.add("A", "10000", "Quote sent")
    s.add("B", "4000", "Suspect")
    s.add("C", "6000", "Deposit paid")
    s.add("D", "2000", "Won")
    s.add("E", "5000", "Suspect")
    s.move("E", "lost", reason="went elsewhere")
    yield eng
    eng.dispose()


@pytest.fixture
def demo_engine(db_url):
    from evpipe.models.seed import load_demo

    eng = open_db(db_url)
    load_demo(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def forks(monkeypatch) -> list:
    """Each fork started by models/forked.py (a Forked, or None where none could be), in order."""
    from evpipe.models.forked import Forked

    started: list[Forked | None] = []
    start = Forked.start

    def counted(work):
        started.append(start(work))
        return started[-1]

    monkeypatch.setattr(Forked, "start", staticmethod(counted))
    return started
