"""A team on one database: who did what (`evpipe journal`), who may do what (`evpipe members`),
and sharing the database between Unix accounts (`evpipe share`)."""

from __future__ import annotations

from pathlib import Path

import click

from .main import Ctx, domain_errors, emit_json, fail, pass_ctx, safe, table

# ---------------------------------------------------------------- journal


@click.command("journal")
@click.option("--who", default=None, metavar="USER", help="Only the changes this user made.")
@click.option("--prospect", "prospect", default=None, metavar="NAME_OR_ID", help="Only the changes to this prospect.")
@click.option("--since", default=None, metavar="PERIOD", help="7d, 2w, or a date such as 2026-11-01.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
@domain_errors
def journal_cmd(ctx: Ctx, who: str | None, prospect: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Who did what and when, newest first, with each change's effect on TV and EV."""
    from evpipe.models.journal_read import journal
    from evpipe.models.members import visible_owner
    from evpipe.models.review import parse_since
    from evpipe.models.values import format_amount

    store = ctx.store()
    start = parse_since(since) if since else None
    pid = store.get(prospect, include_deleted=True).id if prospect else None
    entries = journal(
        ctx.engine,
        who=who.strip() if who else None,
        prospect_id=pid,
        since=start,
        owner=visible_owner(ctx.engine, store.who),
        limit=limit,
    )
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    if not entries:
        click.echo("No changes" + (" match" if who or prospect or since else " yet") + ".")
        return
    rows = [
        [
            f"{e.at:%Y-%m-%d %H:%M}",
            safe(e.who),
            safe(e.what) + (" (undone)" if e.undone else ""),
            format_amount(e.d_tv_cents, signed=True) if e.moves_kpis else "",
            format_amount(e.d_ev_micros, micros=True, signed=True) if e.moves_kpis else "",
        ]
        for e in entries
    ]
    click.echo(table(["when", "who", "what", "TV", "EV"], rows, right={3, 4}))


# ---------------------------------------------------------------- members


@click.group("members", invoke_without_command=True)
@click.pass_context
def members_cmd(click_ctx: click.Context) -> None:
    """Who may use this database, and their roles: owner, manager, rep.

    A database with no members lets everyone do everything. A rep changes only the prospects they
    own; managers and owners change all of them; only an owner changes the ladder, the settings,
    the members, imports and restores."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(members_list)


@members_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
@domain_errors
def members_list(ctx: Ctx, as_json: bool = False) -> None:
    """The members and their roles, and who you are."""
    from evpipe.models.members import first_owner, members, reps_see
    from evpipe.models.roles import login_name

    store = ctx.store()
    people = members(ctx.engine)
    mine = next((m.role for m in people if m.name == store.who), None)
    if as_json:
        emit_json(
            {
                "you": store.who,
                "your_role": mine,
                "reps_see": reps_see(ctx.engine),
                "members": [m.to_json() for m in people],
            }
        )
        return
    if not people:
        click.echo(f"No members yet: everyone may do everything. You are {safe(store.who)}.")
        first = first_owner(ctx.engine, store.who, login_name())
        click.echo(f"To start with roles, make yourself the owner: evpipe members add {safe(first)} --role owner")
        return
    rows = [[safe(m.name), m.role, f"{m.added_at:%Y-%m-%d}", safe(m.added_by)] for m in people]
    click.echo(table(["member", "role", "added", "by"], rows))
    you = f"{mine}" if mine else "not a member: you may change nothing"
    click.echo(f"\nYou are {safe(store.who)} ({you}). Reps see {reps_see(ctx.engine)} prospects.")


@members_cmd.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["owner", "manager", "rep"]), help="Their role.")
@pass_ctx
@domain_errors
def members_add(ctx: Ctx, name: str, role: str) -> None:
    """Add NAME (a login name) with a role. The first member must be you (your login), as owner."""
    from evpipe.models.members import add_member
    from evpipe.models.roles import login_name

    m = add_member(ctx.engine, ctx.who, name, role, login=login_name())
    click.echo(f"{safe(m.name)} is now a member, as {m.role}.")


@members_cmd.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(["owner", "manager", "rep"]))
@pass_ctx
@domain_errors
def members_set_role(ctx: Ctx, name: str, role: str) -> None:
    """Change NAME's role."""
    from evpipe.models.members import set_role

    m = set_role(ctx.engine, ctx.who, name, role)
    click.echo(f"{safe(m.name)} is now {m.role}.")


@members_cmd.command("remove")
@click.argument("name")
@pass_ctx
@domain_errors
def members_remove(ctx: Ctx, name: str) -> None:
    """Remove NAME from the members (their changes stay in the journal)."""
    from evpipe.models.members import remove_member

    remove_member(ctx.engine, ctx.who, name)
    click.echo(f"{safe(name)} is no longer a member.")


@members_cmd.command("grants")
@click.option("--check", "check_only", is_flag=True, help="Only show them; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts (with --check).")
@pass_ctx
@domain_errors
def members_grants(ctx: Ctx, check_only: bool, as_json: bool) -> None:
    """On PostgreSQL: set the server's privileges up from the members again (an owner, as the role
    that owns the tables), or with --check show them. members add, set-role and remove keep them
    up to date; run this after a migration, or when someone changed them by hand."""
    from evpipe.models.grants import is_server, state
    from evpipe.models.members import apply_grants

    if not is_server(ctx.engine):
        fail("members grants: an SQLite file has no privileges of its own; roles there protect against mistakes only")
    if not check_only:
        missing = apply_grants(ctx.engine, ctx.who)
        click.echo("The server's privileges match the members.")
        for name in missing:
            click.echo(
                f"evpipe: {safe(name)} has no login role on the server (see: evpipe members grants --check)", err=True
            )
    now = state(ctx.engine)
    if as_json:
        emit_json(
            {
                "enforced": now.enforced,
                "reps_see_own_only": now.reps_own_only,
                "groups": now.groups,
                "members": [m.to_json() for m in now.members],
                "problems": now.problems,
            }
        )
        return
    if check_only:
        rows = [
            [safe(m.name), m.role, "yes" if m.login else "NO", ", ".join(now.groups[g] for g in m.groups) or "-"]
            for m in now.members
        ]
        click.echo(table(["member", "role", "login", "server group"], rows))
        reads = "only their own prospects" if now.reps_own_only else "every prospect"
        click.echo(f"\nRow-level security: {'on' if now.enforced else 'off'}; reps read {reads}.")
    for problem in now.problems:
        click.echo(f"problem: {safe(problem)}", err=True)
    if check_only and now.problems:
        fail(
            f"{len(now.problems)} problem{'s' if len(now.problems) != 1 else ''}: an owner fixes them with evpipe members grants"
        )


@members_cmd.command("reps-see")
@click.argument("what", required=False, type=click.Choice(["all", "own"]))
@pass_ctx
@domain_errors
def members_reps_see(ctx: Ctx, what: str | None) -> None:
    """Show or set what reps see: all (everyone's prospects) or own (only theirs)."""
    from evpipe.models.members import reps_see, set_reps_see

    value = reps_see(ctx.engine) if what is None else set_reps_see(ctx.engine, ctx.who, what)
    seen = "everyone's prospects" if value == "all" else "only their own prospects"
    click.echo(f"Reps see {seen} ({value}).")


# ---------------------------------------------------------------- share


@click.command("share")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--group", required=True, metavar="GROUP", help="The Unix group whose members share the database.")
@click.option("--check", "check_only", is_flag=True, help="Only check the setup; change nothing.")
@pass_ctx
@domain_errors
def share_cmd(ctx: Ctx, path: Path, group: str, check_only: bool) -> None:
    """Set up PATH (a folder, whose database is evpipe.db, or a .db file in one) so that the Unix
    group GROUP can use it: the folder group-owned, setgid and 0770, the database and its -wal,
    -shm and -journal files 0660. Then check it, saying what is still wrong and how to fix it."""
    from evpipe.models import open_db
    from evpipe.models.locations import as_url
    from evpipe.models.share import check_share, share, split_target

    folder, db = split_target(path)
    if check_only:
        problems = check_share(folder, db, group)
    else:
        db, done, _ = share(path, group)
        if not db.exists():
            open_db(as_url(str(db)), create=True).dispose()
            done.append(f"made the database {db}")
        db, more, problems = share(db, group)
        for line in [*done, *more]:
            click.echo(safe(line))
    if problems:
        for p in problems:
            click.echo(f"problem: {safe(str(p))}", err=True)
        fail(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} left: the group {group} cannot share {db} yet"
        )
    click.echo(f"{safe(str(db))} is shared with the group {safe(group)}: each member uses it with")
    click.echo(f"  evpipe --db {safe(str(db))}   (or: export EVPIPE_DB={safe(str(db))})")


def register(group: click.Group) -> None:
    for command in (journal_cmd, members_cmd, share_cmd):
        group.add_command(command)
