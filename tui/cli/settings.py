"""The `settings` command: the settings kept with the data (today: the KPI period).

Registered on the `evpipe` group by tui/cli/__init__.py.
"""

from __future__ import annotations

import click

from evpipe.models.errors import DomainError

from .main import Ctx, domain_errors, emit_json, fail, pass_ctx


def _period_json(period) -> dict:
    return {"kpi_period": {**period.to_json(), "label": period.label}}


@click.group("settings", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def settings(click_ctx: click.Context, as_json: bool) -> None:
    """Show this database's settings (`settings kpi-period P` changes the KPI period)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Ctx = click_ctx.obj
    try:
        from evpipe.models.settings import kpi_period

        period = kpi_period(ctx.engine)
    except DomainError as exc:
        fail(str(exc))
    if as_json:
        emit_json(_period_json(period))
        return
    click.echo(f"kpi-period  {period.setting:<8}  {_describe(period)}")


def _describe(period) -> str:
    from .insight import period_words

    return period_words(period)


@settings.command("kpi-period")
@click.argument("value", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def settings_kpi_period(ctx: Ctx, value: str | None, as_json: bool) -> None:
    """Show or set the KPI period: 12m (the 12 months up to this one, rolling; any number of
    months), 2026-01 (from that month on) or all. The header, kpi, trend and exports use it."""
    from evpipe.models.settings import kpi_period, set_kpi_period

    period = kpi_period(ctx.engine) if value is None else set_kpi_period(ctx.engine, value, who=ctx.who)
    if as_json:
        emit_json(_period_json(period))
        return
    verb = "KPI period" if value is None else "KPI period set to"
    click.echo(f"{verb} {period.setting}: {_describe(period)}")


def register(group: click.Group) -> None:
    group.add_command(settings)
