"""Alembic environment: evpipe runs migrations itself, on the connection it hands over."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import evpipe.models.tables  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` on the command line: -x url=sqlite:///path
        url = context.get_x_argument(as_dictionary=True).get("url")
        if not url:
            raise SystemExit("pass the database: alembic -x url=sqlite:///path/to.db upgrade head")
        with create_engine(url).begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # pragma: no cover
    raise SystemExit("evpipe migrations run online only")
run_migrations_online()
