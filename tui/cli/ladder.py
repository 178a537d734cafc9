"""The ladder: `evpipe stages` shows it; set, add, rename and remove change it."""

from __future__ import annotations

import click

from evpipe.models.errors import DomainError

from .args import DashedArguments
from .main import Ctx, domain_errors, emit_json, fail, pass_ctx, safe, table


@click.group(invoke_without_command=True)
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

        body = [
            [
                str(r["position"]),
                safe(r["name"]),
                format_percent(round(r["probability"] * 10_000)),
                r["kind"],
                str(r["stale_days"]),
            ]
            for r in rows
        ]
        click.echo(table(["#", "stage", "probability", "kind", "stale after (days)"], body, right={0, 2, 4}))
        for warning in ladder_warnings(ctx.store().ladder()):
            click.echo(f"warning: {safe(warning)}", err=True)
    except DomainError as exc:
        fail(str(exc))


@stages.command("set", cls=DashedArguments)
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


@stages.command("add", cls=DashedArguments)
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


def register(group: click.Group) -> None:
    group.add_command(stages)
