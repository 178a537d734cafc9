"""Who is making a change. On SQLite: the login name (EVPIPE_USER overrides it; the file has no
users of its own). On PostgreSQL: the connection's role (`current_user`), which the server
authenticated, so an environment variable cannot change it; roles and the privileges granted to
them (the team issue) build on this."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from .records import current_user as login_name


def current_user(source: Engine | Any) -> str:
    """Who the database says this connection is: an Engine, Connection or Session's role on a
    server database, else the login name (models.records.current_user)."""
    bind = source.get_bind() if hasattr(source, "get_bind") else source
    if bind.dialect.name == "sqlite":
        return login_name()
    if isinstance(source, Engine):
        with source.connect() as conn:
            return str(conn.scalar(select(func.current_user())))
    return str(source.scalar(select(func.current_user())))
