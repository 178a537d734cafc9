"""evpipe's domain and storage. Never imports Textual (tests/test_hygiene.py checks).

Importing `models` is cheap: SQLAlchemy loads only when a database is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine


def open_db(url: str, *, seed_ladder: bool = True, create: bool = True, lock_timeout: float | None = None) -> Engine:
    """Open the database at `url`, upgrade its schema, and give a database without a ladder the
    default one from seeds/. `create`: make the file when it does not exist or is empty (the
    caller was asked to); else that is a `NoDatabase` error. A file evpipe cannot use (a folder,
    not a database, unreadable or read-only, written by a newer evpipe) raises `DatabaseProblem`
    before anything is changed (models/locations.py's `check_database`). Opening a database that is
    current takes no lock: the upgrade and the ladder are written only when missing. `lock_timeout`:
    how long its writes wait for another writer (default: models/db.py's `lock_wait`)."""
    from .db import make_engine, upgrade
    from .locations import check_database
    from .seed import install_ladder

    check_database(url, create=create)
    engine = make_engine(url, create=create, lock_timeout=lock_timeout)
    upgrade(engine)
    if seed_ladder:
        install_ladder(engine)  # only when the ladder is empty
    return engine


def __getattr__(name: str) -> Any:
    if name in ("make_engine", "upgrade"):
        import importlib

        return getattr(importlib.import_module(".db", __name__), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = ["make_engine", "open_db", "upgrade"]
