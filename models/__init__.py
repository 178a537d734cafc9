"""evpipe's domain and storage. Never imports Textual (tests/test_hygiene.py checks)."""

from __future__ import annotations

from sqlalchemy import Engine

from models.db import make_engine, upgrade


def open_db(url: str, *, seed_ladder: bool = True) -> Engine:
    """Open (creating if needed) the database at `url`, upgrade its schema, and give a new database
    the default ladder from seeds/."""
    from models.seed import install_ladder

    engine = make_engine(url)
    upgrade(engine)
    if seed_ladder:
        install_ladder(engine)  # only when the ladder is empty
    return engine


__all__ = ["make_engine", "open_db", "upgrade"]
