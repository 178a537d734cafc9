"""Shared fixtures: every test gets its own database file in tmp_path (never `sqlite://`)."""

from __future__ import annotations

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


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "pipeline.db"


@pytest.fixture
def db_url(db_path) -> str:
    return f"sqlite:///{db_path}"


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
