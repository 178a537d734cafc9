"""Monthly targets and the pace of the ladder (issue 16): `evpipe target MONTH AMOUNT`, `target list`,
`target clear [MONTH]`, and `evpipe pace`.

Registered on the `evpipe` group by tui/cli/__init__.py.
"""

from __future__ import annotations

import click

from evpipe.models.errors import DomainError

from .args import DashedArguments
from .main import Ctx, domain_errors, emit_json, pass_ctx, safe, table


@click.command("target", cls=DashedArguments)
@click.argument("words", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def target_cmd(ctx: Ctx, words: tuple[str, ...], as_json: bool) -> None:
    """Set a month's sales target (`target 2027-03 40000`), list them (`target list`) or remove
    one (`target clear 2027-03`) or every one (`target clear all`). The
    forecast shows the chance of reaching each."""
    from evpipe.models.targets import clear_target, set_target, targets
    from evpipe.models.values import format_money

    usage = "target: give MONTH AMOUNT (target 2027-03 40000), `target list` or `target clear MONTH|all`"
    if not words or words[0] == "list":
        if len(words) > 1:
            raise DomainError(usage)
        found = targets(ctx.engine)
        if as_json:
            emit_json([{"month": m, "target": _money_str(c)} for m, c in found.items()])
        elif not found:
            click.echo("No targets set: `evpipe target 2027-03 40000` sets one.")
        else:
            click.echo(table(["month", "target"], [[m, format_money(c)] for m, c in found.items()], right={1}))
        return
    if words[0] == "clear":
        if len(words) != 2:
            raise DomainError(usage)
        gone = clear_target(ctx.engine, None if words[1] == "all" else words[1], who=ctx.who)
        if as_json:
            emit_json({"cleared": gone})
        else:
            click.echo(f"cleared {gone} target{'s' if gone != 1 else ''}")
        return
    if len(words) != 2:
        raise DomainError(usage)
    month, cents = set_target(ctx.engine, words[0], words[1], who=ctx.who)
    if as_json:
        emit_json({"month": month, "target": _money_str(cents)})
    else:
        click.echo(f"target for {month}: {format_money(cents)}")


def _money_str(cents: int) -> str:
    from evpipe.models.values import money_str

    return money_str(cents)


@click.command("pace")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def pace_cmd(ctx: Ctx, as_json: bool) -> None:
    """How long prospects usually stay on each open stage before moving on (median, 75th
    percentile, n, from the stage history), and the prospects that are slow now."""
    from evpipe.models.pace import load_pace

    pace = load_pace(ctx.engine)
    if as_json:
        emit_json(pace.to_json())
        return
    body = [
        [
            safe(s.name),
            str(s.n),
            "—" if s.median_days is None else f"{s.median_days:.1f}",
            "—" if s.p75_days is None else f"{s.p75_days:.1f}",
            s.rule,
        ]
        for s in pace.stages.values()
        if s.kind == "open"
    ]
    click.echo(table(["stage", "n", "median days", "p75 days", "slow when"], body, right={1, 2, 3}))
    slow = pace.slow_prospects()
    click.echo("")
    click.echo(f"Slow now: {len(slow)}" + (":" if slow else "."))
    for line in slow[:50]:
        click.echo(f"  {safe(line)}")


def register(group: click.Group) -> None:
    for command in (target_cmd, pace_cmd):
        group.add_command(command)
