"""The demo pipeline: `evpipe demo` opens the app on a copy of it, `evpipe seed` loads it."""

from __future__ import annotations

import click

from evpipe.models.errors import DomainError

from .main import Ctx, domain_errors, pass_ctx, run_app


@click.command()
@click.option("--keep", is_flag=True, help="Reuse the demo database if it exists instead of rebuilding it.")
@pass_ctx
@domain_errors
def demo(ctx: Ctx, keep: bool) -> None:
    """Open the app on a fresh copy of the demo pipeline (never your own data)."""
    from evpipe.models.demo import build_demo
    from evpipe.models.locations import demo_db_path, resolve_db

    url = resolve_db(ctx.db_option) if ctx.db_option else "sqlite:///" + str(demo_db_path())
    build_demo(url, fresh=not keep)
    run_app(url)


@click.command()
@pass_ctx
@domain_errors
def seed(ctx: Ctx) -> None:
    """Load the demo pipeline into the database (which must have no prospects yet)."""
    from evpipe.models.demo import seed_demo
    from evpipe.models.seed import demo_is_loaded

    engine = ctx.engine
    if demo_is_loaded(engine):
        raise DomainError("seed: this database has prospects already; seed an empty one (--db NEW.db)")
    count = seed_demo(engine)
    click.echo(f"Loaded the demo pipeline: {count} prospects.")


def register(group: click.Group) -> None:
    group.add_command(demo)
    group.add_command(seed)
