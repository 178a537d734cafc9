"""The demo database: the demo pipeline from seeds/ in a database of its own, rebuilt fresh on
request, and never written over a database that holds data the demo did not put there.

A demo database carries a mark (the `demo` setting): `building` while the demo loads, then
`built:N`, N being the journal's last entry once loaded. Only a marked database is ever rebuilt;
a path given with `--db` is rebuilt only while nobody has changed it since (its journal still ends
at N). The demo's own file in the data directory is the demo's sandbox: it is rebuilt each time,
whatever was tried in it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from . import history, open_db
from .errors import DomainError
from .locations import NoDatabase, check_database, sqlite_path
from .seed import demo_is_loaded, load_demo, refuse_unless_unused
from .settings import set_setting
from .tables import ChangeEvent

#: The setting that marks a database as the demo's own (so that a fresh build may delete it).
DEMO_MARKER = "demo"
BUILDING = "building"
BUILT = "built:"


def seed_demo(engine: Engine) -> int:
    """Load the demo pipeline into a database nobody has used yet (refusing one with prospects or
    a history of changes) and give its history KPI snapshots; the number of prospects."""
    refuse_unless_unused(engine, "seed")
    count = load_demo(engine)
    _snapshots(engine)
    return count


def _snapshots(engine: Engine) -> None:
    """Freshly loaded history gets its weekly KPI snapshots, and one for now."""
    history.backfill(engine)
    history.record_snapshot(engine)


def _last_change(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.max(col(ChangeEvent.id)))) or 0)


def _may_replace(url: str, path: Path, *, own: bool, fresh: bool) -> None:
    """Raise unless the existing file at `path` is a demo database the demo may rebuild (`fresh`)
    or reopen. Reads it without changing it."""
    try:
        look = check_database(url)
    except NoDatabase:
        look = None  # an empty file is nobody's demo either
    mark = look.settings.get(DEMO_MARKER) if look is not None else None
    if mark is None:
        raise DomainError(
            f"{path} is not a demo database; the demo opens only in a new file or in one it built itself "
            "(plain `evpipe demo` uses its own), so nothing was changed"
        )
    if own or not fresh or mark == BUILDING:
        return
    built = int(mark[len(BUILT) :]) if mark.startswith(BUILT) and mark[len(BUILT) :].isdigit() else -1
    if built < 0 or look is None or look.last_change > built:
        raise DomainError(
            f"{path} is a demo database with changes made in it since it was built; the demo will not "
            "rebuild over them: reopen it as it is with `evpipe demo --keep`, or delete the file yourself"
        )


def build_demo(url: str, *, fresh: bool = True, own: bool = False) -> None:
    """Make the database at `url` a demo database, refusing any file that is not one. `fresh`:
    delete a demo database there first, then load the demo pipeline; else reopen it as it is
    (loading the demo if it is not there yet). `own`: `url` is the demo's own file, rebuilt even
    after changes made in it; else a path given by the user, rebuilt only while unchanged."""
    path = sqlite_path(url)
    if path is None:
        raise DomainError("the demo needs a database file: give --db a path, not a URL")
    if path.exists():
        _may_replace(url, path, own=own, fresh=fresh)
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    engine = open_db(url)
    try:
        if not demo_is_loaded(engine):
            set_setting(engine, DEMO_MARKER, BUILDING)  # first, so that an interrupted build is still the demo's
            load_demo(engine)
            _snapshots(engine)
            set_setting(engine, DEMO_MARKER, f"{BUILT}{_last_change(engine)}")
    finally:
        engine.dispose()
