"""tui/failed_work.py: a worker's failure in one line, naming the database and the next step."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from sqlalchemy.exc import OperationalError

from evpipe.models.errors import DomainError
from evpipe.tui.failed_work import failure_line

APP = SimpleNamespace(url="sqlite:////srv/evpipe/team.db", database_label="team.db")
SERVER = SimpleNamespace(url="postgresql+psycopg://sam@db.example/evpipe", database_label="evpipe on db.example")


def test_a_damaged_file_names_the_file_and_what_to_do():
    line, database = failure_line(APP, sqlite3.DatabaseError("database disk image is malformed"))
    assert database
    assert line.startswith("/srv/evpipe/team.db is damaged (SQLite: database disk image is malformed); restore it")


def test_a_server_that_went_away_says_so_with_the_next_step():
    gone = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    line, database = failure_line(SERVER, gone)
    assert database
    assert "server closed the connection unexpectedly" in line and "check that the server is running" in line
    assert "\n" not in line


def test_a_rule_says_its_own_words_and_a_bug_its_type():
    assert failure_line(APP, DomainError("No prospect 7")) == ("No prospect 7", False)
    assert failure_line(APP, KeyError("month")) == ("KeyError: 'month'", False)
    line, database = failure_line(APP, RuntimeError("first line\nsecond line"))
    assert (line, database) == ("RuntimeError: first line", False)
