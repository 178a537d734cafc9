"""The demo pipeline: `evpipe demo` opens the app on a copy of it, `evpipe seed` loads it."""

from __future__ import annotations

import click

from .main import Ctx, domain_errors, need_terminal, pass_ctx, run_app


@click.command()
@click.option("--keep", is_flag=True, help="Reuse the demo database if it exists instead of rebuilding it.")
@pass_ctx
@domain_errors
def demo(ctx: Ctx, keep: bool) -> None:
    """Open the app on a fresh copy of the demo pipeline (never your own data).

    The demo has a database of its own in your data directory, whatever EVPIPE_DB says. --db
    puts it elsewhere: only a new file, or one the demo built."""
    from evpipe.models.demo import build_demo
    from evpipe.models.locations import demo_url

    need_terminal()
    url = demo_url(ctx.db_option)
    build_demo(url, fresh=not keep, own=ctx.db_option is None)
    run_app(url)


@click.command()
@pass_ctx
@domain_errors
def seed(ctx: Ctx) -> None:
    """Load the demo pipeline into a new database (one with no prospects or changes yet)."""
    from evpipe.models.demo import seed_demo
    from evpipe.models.locations import discard_new_database, sqlite_path

    new_file = sqlite_path(ctx.url)
    if new_file is not None and new_file.exists():
        new_file = None
    engine = None
    try:
        engine = ctx.engine
        count = seed_demo(engine)
    except BaseException:
        if new_file is not None:  # (a full disk) the file made for it goes again, as for restore
            if engine is not None:
                engine.dispose()
            discard_new_database(new_file)
        raise
    click.echo(f"Loaded the demo pipeline: {count} prospects.")


def register(group: click.Group) -> None:
    group.add_command(demo)
    group.add_command(seed)
