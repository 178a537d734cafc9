"""The demo database: the demo pipeline from seeds/ in a database of its own, rebuilt fresh on
request, and never written over a database that holds a rep's own pipeline."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from . import history, open_db
from .errors import DomainError
from .locations import sqlite_path
from .seed import demo_is_loaded, load_demo
from .settings import get_setting, set_setting

#: The setting that marks a database as the demo's own (so a fresh build may delete it).
DEMO_MARKER = "demo"


def seed_demo(engine: Engine) -> int:
    """Load the demo pipeline and give its history KPI snapshots; the number of prospects."""
    count = load_demo(engine)
    _snapshots(engine)
    return count


def _snapshots(engine: Engine) -> None:
    """Freshly loaded history gets its weekly KPI snapshots, and one for now."""
    history.backfill(engine)
    history.record_snapshot(engine)


def build_demo(url: str, *, fresh: bool = True) -> None:
    """Make the database at `url` a demo database: with `fresh`, delete a demo database there first
    (refusing if it holds anything else); then load the demo pipeline unless it is there already."""
    path = sqlite_path(url)
    if fresh and path is not None and path.exists():
        engine = open_db(url)
        marker = get_setting(engine, DEMO_MARKER)
        engine.dispose()
        if marker != "1" and demo_is_loaded(open_db(url)):
            raise DomainError(f"{path} holds a pipeline that is not the demo; the demo will not overwrite it")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    engine = open_db(url)
    if not demo_is_loaded(engine):
        load_demo(engine)
        set_setting(engine, DEMO_MARKER, "1")
        _snapshots(engine)
    engine.dispose()
