"""`evpipe migrate --to URL`: copy the database (--db) to another one, SQLite to PostgreSQL or back,
in one transaction, proved by comparing row counts, journal sums and KPIs (models/migrate.py).
Registered on the `evpipe` group by tui/cli/__init__.py."""

from __future__ import annotations

import shlex

import click

from evpipe.models.errors import DomainError

from .main import Ctx, domain_errors, emit_json, pass_ctx, safe, table


def _money(amount: int, *, micros: bool = False) -> str:
    from evpipe.models.values import format_amount

    return format_amount(amount, micros=micros)


@click.command("migrate")
@click.option("--to", "to", required=True, metavar="URL_OR_PATH", help="The new database to copy into.")
@click.option("--force", is_flag=True, help="Replace everything in a target that is not empty.")
@click.option("--json", "as_json", is_flag=True, help="Print the proof as JSON.")
@pass_ctx
@domain_errors
def migrate_cmd(ctx: Ctx, to: str, force: bool, as_json: bool) -> None:
    """Copy this database to another (SQLite file or postgresql+psycopg://...), all or nothing,
    and prove the copy: row counts, journal sums and KPIs compared on both sides."""
    from sqlalchemy.engine import make_url

    from evpipe.models import open_db
    from evpipe.models.locations import as_url, db_label, discard_new_database, sqlite_path
    from evpipe.models.migrate import migrate, on_target

    target_url = as_url(to)
    if "://" in target_url and make_url(target_url).password:
        raise DomainError(
            "migrate: put the password in ~/.pgpass or PGPASSWORD, not in --to (a command line is visible "
            "to every user of this machine)",
            field="to",
        )
    ctx.whole_database("migrate")
    new_file = sqlite_path(target_url)
    if new_file is not None and new_file.exists():
        new_file = None
    target = None
    try:
        with on_target(target_url):
            target = open_db(target_url, create=True)  # (a full disk can stop it in the new file)
        report = migrate(ctx.engine, target, force=force)
    except BaseException:
        if target is not None:
            target.dispose()
        if new_file is not None:  # all or nothing: a failed copy into a new file leaves no empty database
            discard_new_database(new_file)
        raise
    target.dispose()
    if as_json:
        emit_json(report.to_json())
        return
    src, dst = report.source, report.target
    rows = [[name, str(n), str(dst.rows.get(name, 0))] for name, n in src.rows.items()]
    rows.append(["journal count", str(src.journal[0]), str(dst.journal[0])])
    rows.append(["journal TV", _money(src.journal[1]), _money(dst.journal[1])])
    rows.append(["journal EV", _money(src.journal[2], micros=True), _money(dst.journal[2], micros=True)])
    rows.append(["KPI count", str(src.kpi[0]), str(dst.kpi[0])])
    rows.append(["KPI TV", _money(src.kpi[1]), _money(dst.kpi[1])])
    rows.append(["KPI EV", _money(src.kpi[2], micros=True), _money(dst.kpi[2], micros=True)])
    rows.append(["all-time TV", _money(src.kpi_all[1]), _money(dst.kpi_all[1])])
    rows.append(["all-time EV", _money(src.kpi_all[2], micros=True), _money(dst.kpi_all[2], micros=True)])
    click.echo(table(["", safe(db_label(ctx.url)), safe(db_label(target_url))], rows, right={1, 2}))
    # (the path or URL as typed, quoted for the shell: the file's name alone named another file
    # from elsewhere, and a URL lost its user and had its `&port=` run as a shell command of its own;
    # --to never holds a password, refused above)
    again = shlex.quote(to)
    click.echo(f"Copied and checked: every row count, journal sum and KPI agrees. Now: evpipe --db {safe(again)}")
    if sqlite_path(target_url) is None and dst.rows.get("member", 0):
        # the members came with the copy, the server's privileges for them did not: until they are
        # set, the reps cannot read the pipeline at all
        click.echo(
            f"Then, as the role that owns the tables: evpipe --db {safe(again)} members grants "
            "(the members' privileges on the server: a copy does not set them, and the reps cannot read until it does)"
        )


def register(group: click.Group) -> None:
    group.add_command(migrate_cmd)
