"""The database itself: `evpipe init PATH` makes a new one (the only way, besides the default
location, that a named path becomes a database); `evpipe check` reads every page of it."""

from __future__ import annotations

import click

from evpipe.models.errors import DomainError

from .main import Ctx, domain_errors, pass_ctx, safe


@click.command("init")
@click.argument("path", required=False, metavar="[PATH]")
@pass_ctx
@domain_errors
def init(ctx: Ctx, path: str | None) -> None:
    """Create a new evpipe database at PATH (else --db, $EVPIPE_DB or the default), with the
    default stage ladder. A database already there is left as it is."""
    import shlex

    from evpipe.models import open_db
    from evpipe.models.locations import (
        NoDatabase,
        check_database,
        discard_new_database,
        is_default_location,
        sqlite_path,
    )
    from evpipe.models.seed import demo_is_loaded

    if path is not None and not path.strip():
        raise DomainError("init: the path is empty; give a database file or URL", field="db")
    if path:
        ctx.db_option = path  # the database of this command: an error in it names PATH, not --db's
    url = ctx.url
    where = sqlite_path(url)
    try:
        check_database(url)
        existing = where is not None or _has_schema(url)  # a server's new database is there, empty
    except NoDatabase:
        existing = False
    folder_made = where is not None and not where.parent.exists()
    new_file = where if where is not None and not where.exists() else None
    try:
        engine = open_db(url, create=True)
    except BaseException:
        if new_file is not None:  # (a full disk) a half-made file would pass for a database next time
            discard_new_database(new_file)
        raise
    try:
        has_prospects = demo_is_loaded(engine)
    finally:
        engine.dispose()
    shown = safe(str(where if where is not None else url))
    if existing:
        what = "with prospects in it" if has_prospects else "with no prospects yet"
        click.echo(f"{shown} is already an evpipe database ({what}); nothing to do.")
        return
    made = f" (and the folder {safe(str(where.parent))})" if folder_made and where is not None else ""
    click.echo(f"Created a new evpipe database at {shown}{made}, with the default stage ladder.")
    if is_default_location(url):
        click.echo("It is the default database: plain `evpipe` uses it.")
        return
    target = safe(shlex.quote(str(where if where is not None else url)))
    click.echo(f"Use it with: evpipe --db {target} ...  (or: export EVPIPE_DB={target})")


@click.command("check")
@pass_ctx
@domain_errors
def check(ctx: Ctx) -> None:
    """Read every page of the database (SQLite's quick check) and say whether it is sound: exits 1,
    in one line, when it is not. Damage is found where it is read, so a command that reads only
    sound pages (an add, a move) still works on a damaged file: check before trusting one that
    another command said was damaged. A server's database is the server's to check."""
    from evpipe.models.locations import check_database, damaged_pages, sqlite_path

    url = ctx.url
    check_database(url)  # (not there, not a database, not evpipe's: said in one line)
    where = sqlite_path(url)
    if where is None:
        click.echo("A server database: the server keeps its own pages sound; nothing to check here.")
        return
    problem = damaged_pages(url)
    if problem is not None:
        raise DomainError(problem)
    click.echo(f"{safe(str(where))}: every page reads back sound.")


def _has_schema(url: str) -> bool:
    """Whether the server's database at `url` already holds evpipe's tables."""
    from evpipe.models.db import current_revision, make_engine

    engine = make_engine(url)
    try:
        return current_revision(engine) is not None
    finally:
        engine.dispose()


def register(group: click.Group) -> None:
    group.add_command(init)
    group.add_command(check)
