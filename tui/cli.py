"""The `evpipe` command line: the app, and commands for scripts, cron and quick capture."""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import click

from evpipe.models.errors import DomainError

EXIT_ERROR = 1


class Ctx:
    """What every command needs: the database URL, opened on first use."""

    def __init__(self, db: str | None) -> None:
        self.db_option = db
        self._engine = None

    @property
    def url(self) -> str:
        from evpipe.models.locations import resolve_db

        return resolve_db(self.db_option)

    @property
    def engine(self):
        if self._engine is None:
            from evpipe.models import open_db

            self._engine = open_db(self.url)
        return self._engine

    def store(self):
        from evpipe.models.store import Store

        return Store(self.engine)

    def changed(self) -> None:
        """After a write: keep the KPI history up to date."""
        from evpipe.models.history import record_snapshot

        record_snapshot(self.engine)


pass_ctx = click.make_pass_decorator(Ctx)


def fail(message: str) -> None:
    click.echo(f"evpipe: {message}", err=True)
    sys.exit(EXIT_ERROR)


def domain_errors(fn: Callable) -> Callable:
    """Turn domain errors into a clear message on stderr and a non-zero exit."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            fail(str(exc))
        except BrokenPipeError:  # `evpipe list | head`: the reader has gone; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def safe(text: str | None) -> str:
    """User text for a terminal: no escape sequences or control characters."""
    from evpipe.models.values import clean_text

    return clean_text(text or "", field="text", max_len=10**9)


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---------------------------------------------------------------- the group


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="PATH_OR_URL", envvar="EVPIPE_DB", help="Database file or URL (else $EVPIPE_DB, else your data directory).")
@click.version_option(package_name="evpipe")
@click.pass_context
def main(click_ctx: click.Context, db: str | None) -> None:
    """evpipe: your sales pipeline as Expected Value.

    Run without a command to open the app."""
    click_ctx.obj = Ctx(db)
    if click_ctx.invoked_subcommand is None:
        from evpipe.models.rawdb import schema_ready

        url = click_ctx.obj.url
        if not schema_ready(url):  # new, older or not SQLite: create or upgrade it now
            try:
                click_ctx.obj.engine
            except DomainError as exc:
                fail(str(exc))
        run_app(url)


def run_app(url: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the app needs a terminal; from scripts and cron use the commands "
             "(`evpipe kpi`, `evpipe list`, `evpipe review` ...; `evpipe --help` lists them)")
    from .app import run

    run(url)


@main.command()
@click.option("--keep", is_flag=True, help="Reuse the demo database if it exists instead of rebuilding it.")
@pass_ctx
@domain_errors
def demo(ctx: Ctx, keep: bool) -> None:
    """Open the app on a fresh copy of the demo pipeline (never your own data)."""
    from evpipe.models.locations import demo_db_path, resolve_db

    url = resolve_db(ctx.db_option) if ctx.db_option else "sqlite:///" + str(demo_db_path())
    build_demo(url, fresh=not keep)
    run_app(url)


def build_demo(url: str, *, fresh: bool = True) -> None:
    from evpipe.models import open_db
    from evpipe.models.locations import sqlite_path
    from evpipe.models.seed import demo_is_loaded, load_demo

    path = sqlite_path(url)
    if fresh and path is not None and path.exists():
        engine = open_db(url)
        from sqlalchemy import text

        with engine.connect() as conn:
            marker = conn.execute(text("SELECT value FROM setting WHERE key = 'demo'")).scalar()
        engine.dispose()
        if marker != "1" and demo_is_loaded(open_db(url)):
            raise DomainError(f"{path} holds a pipeline that is not the demo; the demo will not overwrite it")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    engine = open_db(url)
    if not demo_is_loaded(engine):
        load_demo(engine)
        from sqlalchemy import text

        from evpipe.models.db import writer

        with writer(engine).begin() as conn:
            conn.execute(text("INSERT INTO setting (key, value) VALUES ('demo', '1')"))
        after_seed(engine)
    engine.dispose()


def after_seed(engine) -> None:
    """Give freshly loaded history its KPI snapshots."""
    from evpipe.models import history

    backfill = getattr(history, "backfill", None)
    if backfill is not None:
        backfill(engine)
    history.record_snapshot(engine)


@main.command()
@pass_ctx
@domain_errors
def seed(ctx: Ctx) -> None:
    """Load the demo pipeline into the database (which must have no prospects yet)."""
    from evpipe.models.seed import demo_is_loaded, load_demo

    engine = ctx.engine
    if demo_is_loaded(engine):
        raise DomainError("seed: this database has prospects already; seed an empty one (--db NEW.db)")
    count = load_demo(engine)
    after_seed(engine)
    click.echo(f"Loaded the demo pipeline: {count} prospects.")


# ---------------------------------------------------------------- prospects


@main.command()
@click.argument("name")
@click.option("--value", required=True, help="Estimated eventual value, e.g. 9500 or 9,500.00.")
@click.option("--stage", default=None, help="Stage name (default: the first rung).")
@click.option("--month", default=None, help="Expected month: 2027-01, jan 2027 or jan.")
@click.option("--company", default="")
@click.option("--contact", default="", help="Contact person.")
@click.option("--email", default="")
@click.option("--phone", default="")
@click.option("--notes", default="")
@click.option("--owner", default=None, help="The rep (default: you).")
@click.option("--follow-up", default=None, help="Next follow-up: 2027-01-15, 15/01/2027, tomorrow, +3d, fri.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def add(ctx: Ctx, name, value, stage, month, company, contact, email, phone, notes, owner, follow_up, as_json) -> None:
    """Add a prospect."""
    result = ctx.store().add(
        name, value, stage, month=month, company=company, contact_name=contact, email=email, phone=phone,
        notes=notes, owner=owner, follow_up=follow_up,
    )
    ctx.changed()
    if as_json:
        emit_json(prospect_json(result.prospect))
    else:
        click.echo(f"#{result.prospect.id} {safe(result.summary)}")


@main.command()
@click.argument("prospect")
@click.argument("target")
@click.option("--reason", default=None, help="Why it was lost (with `lost`).")
@pass_ctx
@domain_errors
def move(ctx: Ctx, prospect: str, target: str, reason: str | None) -> None:
    """Move a prospect (NAME or ID): next, back, won, lost, reopen, or a stage name."""
    result = ctx.store().move(prospect, target, reason=reason)
    ctx.changed()
    click.echo(safe(result.summary))


@main.command()
@click.argument("prospect")
@click.option("--name", default=None)
@click.option("--value", default=None)
@click.option("--month", default=None)
@click.option("--company", default=None)
@click.option("--contact", default=None)
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--notes", default=None)
@click.option("--owner", default=None)
@click.option("--follow-up", default=None, help="A date, or none (or clear) to clear it.")
@pass_ctx
@domain_errors
def edit(ctx: Ctx, prospect: str, follow_up: str | None, contact: str | None, **fields: str | None) -> None:
    """Change a prospect's details."""
    changes = {k: v for k, v in fields.items() if v is not None}
    if contact is not None:
        changes["contact_name"] = contact
    if follow_up is not None:
        changes["follow_up"] = follow_up
    if not changes:
        raise DomainError("edit: say what to change, e.g. --value 12000 or --month 2027-02")
    result = ctx.store().edit(prospect, **changes)
    ctx.changed()
    click.echo(safe(result.summary))


@main.command()
@click.argument("prospect")
@pass_ctx
@domain_errors
def delete(ctx: Ctx, prospect: str) -> None:
    """Delete a prospect (`evpipe undo` brings it back)."""
    result = ctx.store().delete(prospect)
    ctx.changed()
    click.echo(safe(result.summary))


@main.command()
@click.argument("prospect")
@click.argument("kind", type=click.Choice(["call", "email", "meeting", "note"]))
@click.argument("text")
@click.option("--when", default=None, help="When it happened (default: now).")
@pass_ctx
@domain_errors
def log(ctx: Ctx, prospect: str, kind: str, text: str, when: str | None) -> None:
    """Log a contact point (call, email, meeting or note) on a prospect."""
    result = ctx.store().log_activity(prospect, kind, text, when=when)
    ctx.changed()
    click.echo(safe(result.summary))


@main.command()
@click.argument("prospect")
@click.argument("when")
@pass_ctx
@domain_errors
def follow(ctx: Ctx, prospect: str, when: str) -> None:
    """Set a prospect's next follow-up (a date, or 'none')."""
    result = ctx.store().set_follow_up(prospect, when)
    ctx.changed()
    click.echo(safe(result.summary))


@main.command()
@pass_ctx
@domain_errors
def undo(ctx: Ctx) -> None:
    """Reverse your last change (by recording the reverse)."""
    result = ctx.store().undo()
    ctx.changed()
    click.echo(safe(result.summary))


def prospect_json(p) -> dict[str, Any]:
    from evpipe.models.values import money_str

    return {
        "id": p.id,
        "name": p.name,
        "company": p.company,
        "stage": p.stage_name,
        "kind": p.stage_kind,
        "probability": p.probability_bp / 10_000,
        "value": money_str(p.value_cents),
        "ev": money_str(p.ev_micros, micros=True),
        "month": p.expected_month,
        "owner": p.owner,
        "next_follow_up": p.next_follow_up.isoformat() if p.next_follow_up else None,
    }


@main.command("list")
@click.option("--owner", default=None)
@click.option("--stage", default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def list_(ctx: Ctx, owner: str | None, stage: str | None, as_json: bool) -> None:
    """List prospects (open first, by expected month)."""
    from evpipe.models.queries import prospect_rows
    from evpipe.models.values import format_money, format_percent, money_str

    stage_id = ctx.store().stage(stage).id if stage else None
    rows = prospect_rows(ctx.engine, owner=owner, stage_id=stage_id)
    if as_json:
        emit_json([
            {
                "id": r.id, "name": r.name, "company": r.company, "stage": r.stage, "kind": r.kind,
                "probability": r.probability_bp / 10_000, "value": money_str(r.value_cents),
                "ev": money_str(r.ev_micros, micros=True), "month": r.month, "owner": r.owner,
                "next_follow_up": r.next_follow_up.isoformat() if r.next_follow_up else None,
            }
            for r in rows
        ])
        return
    body = [
        [str(r.id), safe(r.name)[:40], safe(r.stage), format_percent(r.probability_bp),
         format_money(r.value_cents), format_money(r.ev_micros, micros=True), r.month or "", safe(r.owner)]
        for r in rows
    ]
    click.echo(table(["id", "name", "stage", "p", "value", "EV", "month", "owner"], body, right={0, 3, 4, 5}))


# ---------------------------------------------------------------- the ladder


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stages(click_ctx: click.Context, as_json: bool) -> None:
    """Show the stage ladder (`stages set STAGE PERCENT` changes a probability)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Ctx = click_ctx.obj
    try:
        from evpipe.models.kpi import stage_table
        from evpipe.models.store import ladder_warnings

        rows = stage_table(ctx.engine)
        if as_json:
            emit_json(rows)
            return
        from evpipe.models.values import format_percent

        body = [[str(r["position"]), safe(r["name"]), format_percent(round(r["probability"] * 10_000)), r["kind"],
                 str(r["stale_days"])] for r in rows]
        click.echo(table(["#", "stage", "probability", "kind", "stale after (days)"], body, right={0, 2, 4}))
        for warning in ladder_warnings(ctx.store().ladder()):
            click.echo(f"warning: {safe(warning)}", err=True)
    except DomainError as exc:
        fail(str(exc))


@stages.command("set")
@click.argument("stage")
@click.argument("percent")
@pass_ctx
@domain_errors
def stages_set(ctx: Ctx, stage: str, percent: str) -> None:
    """Set a stage's probability (a percentage, 0-100)."""
    result = ctx.store().set_probability(stage, percent)
    ctx.changed()
    click.echo(safe(result.summary))
    for warning in result.warnings:
        click.echo(f"warning: {safe(warning)}", err=True)


@stages.command("add")
@click.argument("name")
@click.argument("percent")
@click.option("--after", default=None, help="The open stage it follows (default: the last open stage).")
@pass_ctx
@domain_errors
def stages_add(ctx: Ctx, name: str, percent: str, after: str | None) -> None:
    """Add an open stage to the ladder."""
    result = ctx.store().add_stage(name, percent, after=after)
    ctx.changed()
    click.echo(safe(result.summary))
    for warning in result.warnings:
        click.echo(f"warning: {safe(warning)}", err=True)


@stages.command("rename")
@click.argument("stage")
@click.argument("new_name")
@pass_ctx
@domain_errors
def stages_rename(ctx: Ctx, stage: str, new_name: str) -> None:
    """Rename a stage."""
    click.echo(safe(ctx.store().update_stage(stage, name=new_name).summary))


@stages.command("remove")
@click.argument("stage")
@click.option("--move-to", default=None, help="The open stage its prospects move to.")
@pass_ctx
@domain_errors
def stages_remove(ctx: Ctx, stage: str, move_to: str | None) -> None:
    """Take an open stage off the ladder, moving its prospects to another."""
    result = ctx.store().remove_stage(stage, move_to=move_to)
    ctx.changed()
    click.echo(safe(result.summary))


# ---------------------------------------------------------------- KPIs


@main.command()
@click.option("--owner", default=None)
@click.option("--from", "month_from", default=None, metavar="YYYY-MM")
@click.option("--to", "month_to", default=None, metavar="YYYY-MM")
@click.option("--by", type=click.Choice(["month", "stage", "owner"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def kpi(ctx: Ctx, owner, month_from, month_to, by, as_json) -> None:
    """TV, EV and EV/TV, for everything or a scope, optionally broken down."""
    from evpipe.models.kpi import Scope, kpis, kpis_by
    from evpipe.models.values import format_money, parse_month

    scope = Scope(
        owner=owner,
        month_from=parse_month(month_from, field="--from") if month_from else None,
        month_to=parse_month(month_to, field="--to") if month_to else None,
    )
    if scope.month_from and scope.month_to and scope.month_from > scope.month_to:
        raise DomainError(f"--from {scope.month_from} is after --to {scope.month_to}")
    total = kpis(ctx.engine, scope)
    rows = kpis_by(ctx.engine, by, scope) if by else []
    if as_json:
        data = kpi_json(total)
        data["scope"] = {"owner": owner, "from": scope.month_from, "to": scope.month_to}
        if by:
            data["by"] = by
            data["rows"] = [{by: key, **kpi_json(k)} for key, k in rows]
        emit_json(data)
        return

    def pct(k) -> str:
        r = k.ev_tv_rounded(4)
        return "—" if r is None else f"{r * 100:.2f}%"

    if by:
        body = [[safe(key) if key else "(none)", f"{k.count:,}", format_money(k.tv_cents),
                 format_money(k.ev_micros, micros=True), pct(k)] for key, k in rows]
        body.append(["total", f"{total.count:,}", format_money(total.tv_cents),
                     format_money(total.ev_micros, micros=True), pct(total)])
        click.echo(table([by, "count", "TV", "EV", "EV/TV"], body, right={1, 2, 3, 4}))
    else:
        click.echo(f"TV     {format_money(total.tv_cents):>16}")
        click.echo(f"EV     {format_money(total.ev_micros, micros=True):>16}")
        click.echo(f"EV/TV  {pct(total):>16}")
        click.echo(f"count  {total.count:>16,}")


def kpi_json(k) -> dict[str, Any]:
    data = k.to_json()
    r = k.ev_tv_rounded(4)
    data["ev_tv"] = None if r is None else float(r)
    data["ev_tv_percent"] = None if r is None else f"{r * 100:.2f}"
    return data


def _register_extensions() -> None:
    """Commands that live in their own modules (insight, import/export) register themselves."""
    import importlib

    for name in ("evpipe.tui.cli_insight", "evpipe.tui.cli_io"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    # `python -m tui.cli`: run the group the extensions registered on (this file, imported by name).
    from .cli import main as _main

    _main()
