"""Insight commands: kpi, forecast, calibrate, review, trend, focus (issue 4).

Registered on the `evpipe` group by tui/cli/__init__.py. Money in JSON is a decimal string, ratios are
numbers from 0 to 1; text output is for a terminal, Markdown (`review --format markdown`) for an
email to the owner.
"""

from __future__ import annotations

from typing import Any

import click

from evpipe.models.errors import DomainError

from .main import Ctx, Streamed, domain_errors, emit_json, pass_ctx, safe, table


def _pct(x: Any, places: int = 1) -> str:
    if x is None:
        return "—"
    return f"{float(x) * 100:.{places}f}%"


def _signed_pct(x: Any) -> str:
    if x is None:
        return "—"
    return f"{float(x) * 100:+.1f}%"


def _money(amount: int, *, micros: bool = False, signed: bool = False) -> str:
    """An amount as it is, cents when it has them (models/values.py, the rule): a table printed for
    a terminal has no column too narrow for it, so 9,999,999,999.99 never reads 10,000,000,000."""
    from evpipe.models.values import format_amount

    return format_amount(amount, micros=micros, signed=signed and amount != 0)


def _ratio(k) -> Any:
    """A Kpi's EV/TV, a Decimal rounded to 4 places (None without TV): the rule in models/ladder.py."""
    from evpipe.models.ladder import ev_tv_ratio

    return ev_tv_ratio(k.ev_micros, k.tv_cents, 4)


def _ev_tv(k) -> str:
    """A Kpi's EV/TV as every screen and command shows it: '37.50%', or '—'."""
    from evpipe.models.ladder import format_ev_tv

    return format_ev_tv(_ratio(k))


# ---------------------------------------------------------------- KPIs


@click.command()
@click.option("--owner", default=None)
@click.option("--from", "month_from", default=None, metavar="YYYY-MM", help="Expected in this month or later.")
@click.option("--to", "month_to", default=None, metavar="YYYY-MM", help="Expected in this month or earlier.")
@click.option(
    "--period",
    "period_text",
    default=None,
    metavar="12m|YYYY-MM|all",
    help="The KPI period for this command only (default: the database's, `evpipe settings`).",
)
@click.option("--by", type=click.Choice(["month", "stage", "owner"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def kpi(ctx: Ctx, owner, month_from, month_to, period_text, by, as_json) -> None:
    """TV, EV and EV/TV for the KPI period (open prospects, and won ones expected in the period),
    or for the months of --from/--to; optionally for one owner, optionally broken down."""
    from evpipe.models.kpi import Scope, kpis, kpis_by
    from evpipe.models.values import format_money, parse_month

    owner = ctx.owner_scope(owner)
    scope = Scope(
        owner=owner,
        month_from=parse_month(month_from, field="--from") if month_from else None,
        month_to=parse_month(month_to, field="--to") if month_to else None,
    )
    if scope.month_from and scope.month_to and scope.month_from > scope.month_to:
        raise DomainError(f"--from {scope.month_from} is after --to {scope.month_to}")
    period = None
    if not (scope.month_from or scope.month_to):  # an explicit range of months is the scope, as it was
        period = _period(ctx, period_text)
        scope = Scope(owner=owner, period=period)
    elif period_text is not None:
        raise DomainError("--period: not with --from or --to (they choose the months themselves)")
    total = kpis(ctx.reader, scope)
    rows = kpis_by(ctx.reader, by, scope) if by else []
    if as_json:
        data = kpi_json(total)
        data["scope"] = {"owner": owner, "from": scope.month_from, "to": scope.month_to}
        data["period"] = None if period is None else period.to_json()
        if by:
            data["by"] = by
            data["rows"] = [{by: key, **kpi_json(k)} for key, k in rows]
        emit_json(data)
        return
    if by:
        body = [
            [
                safe(key) if key else "(none)",
                f"{k.count:,}",
                format_money(k.tv_cents),
                format_money(k.ev_micros, micros=True),
                _ev_tv(k),
            ]
            for key, k in rows
        ]
        body.append(
            [
                "total",
                f"{total.count:,}",
                format_money(total.tv_cents),
                format_money(total.ev_micros, micros=True),
                _ev_tv(total),
            ]
        )
        click.echo(table([by, "count", "TV", "EV", "EV/TV"], body, right={1, 2, 3, 4}))
    else:
        click.echo(f"TV     {format_money(total.tv_cents):>16}")
        click.echo(f"EV     {format_money(total.ev_micros, micros=True):>16}")
        click.echo(f"EV/TV  {_ev_tv(total):>16}")
        click.echo(f"count  {total.count:>16,}")
    if period is not None:
        click.echo(f"period: {period_words(period)}")


def _period(ctx: Ctx, text: str | None):
    """The KPI period: `text` if given (one command only), else the database's."""
    from evpipe.models import clock
    from evpipe.models.period import current_period, parse_setting, period_of

    if text is not None:
        return period_of(parse_setting(text), clock.today())
    return current_period(ctx.reader)


def period_words(period) -> str:
    """The period in a sentence, for a terminal."""
    from evpipe.models.period import month_name

    if not period.restricts:
        return "all time: every prospect, whatever its month"
    rolling = "" if period.setting == period.start else f", the last {period.setting[:-1]} months rolling"
    return (
        f"{month_name(period.start)} on{rolling}: open prospects whatever their month, "
        f"won and lost ones expected from {month_name(period.start)} (or with no month)"
    )


def kpi_json(k) -> dict[str, Any]:
    from evpipe.models.ladder import format_ev_tv

    data = k.to_json()
    r = _ratio(k)
    data["ev_tv"] = None if r is None else float(r)
    data["ev_tv_percent"] = None if r is None else format_ev_tv(r).removesuffix("%")
    return data


# ---------------------------------------------------------------- forecast


@click.command("forecast")
@click.option("--from", "month_from", default=None, metavar="YYYY-MM", help="First month (default: 12 months ago).")
@click.option("--to", "month_to", default=None, metavar="YYYY-MM", help="Last month (default: 11 months ahead).")
@click.option("--owner", default=None, help="One rep's prospects only.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def forecast_cmd(ctx: Ctx, month_from: str | None, month_to: str | None, owner: str | None, as_json: bool) -> None:
    """The forecast by month against what its prospects won: the last 12 months and the next 12."""
    from evpipe.models.forecast import forecast
    from evpipe.models.values import parse_month

    first = parse_month(month_from, field="--from") if month_from else None
    last = parse_month(month_to, field="--to") if month_to else None
    scoped = ctx.owner_scope(owner)
    ctx.month_starts()
    from evpipe.models.forecast import STILL_OPEN_NAMED

    # a current SQLite file: no SQLAlchemy to import. The JSON lists every prospect still open of a
    # month that has ended; the text names each month's biggest and counts the rest.
    fc = forecast(ctx.reader, first, last, owner=scoped, named=None if as_json else STILL_OPEN_NAMED)
    from evpipe.models.forecast_range import attach, month_ranges

    ranges = month_ranges(ctx.reader, [m.month for m in fc.months], owner=scoped)
    if as_json:
        emit_json(attach(fc.to_json(Streamed), ranges))  # the prospects still open, written as they come
        return
    body = []
    for m in fc.months:
        body.append(
            [
                m.month + (" ?" if m.provisional else "" if m.complete else " *"),
                str(m.kpi.count),
                _money(m.kpi.tv_cents),
                _money(m.kpi.ev_micros, micros=True),
                "—" if m.frozen_ev_micros is None else _money(m.frozen_ev_micros, micros=True),
                _money(m.actual_cents),
                _money(m.signed_cents),
                _pct(m.accuracy),
                _signed_pct(m.bias),
            ]
        )
    body.append(
        [
            "total",
            str(fc.total.count),
            _money(fc.total.tv_cents),
            _money(fc.total.ev_micros, micros=True),
            _money(fc.frozen_ev_micros, micros=True),
            _money(fc.actual_cents),
            _money(fc.signed_cents),
            "",
            "",
        ]
    )
    click.echo(
        table(
            ["month", "count", "TV", "EV (forecast)", "frozen", "actual", "signed", "accuracy", "bias"],
            body,
            right={1, 2, 3, 4, 5, 6, 7, 8},
        )
    )
    click.echo("")
    click.echo("The range of what the months to come may win (80% between P10 and P90):")
    upcoming = [m for m in fc.months if not m.complete]
    rows = [[m.month, *_range_cells(ranges.months.get(m.month))] for m in upcoming]
    click.echo(table(["month", "P10", "P50", "P90", "target", "chance"], rows, right={1, 2, 3, 4, 5}))
    provisional = fc.provisional_months
    if provisional:
        click.echo("")
        click.echo("? provisional: these prospects of a month that has ended are still open (not counted as misses):")
        rows = []
        for m in provisional:
            rows.extend(
                [m.month, safe(r.name), safe(r.stage), _money(r.value_cents), safe(r.owner)] for r in m.still_open
            )
            if (more := m.open_count - len(m.still_open)) > 0:
                rows.append([m.month, f"… and {more:,} more (evpipe list --filter month:{m.month})", "", "", ""])
        click.echo(table(["month", "prospect", "stage", "value", "owner"], rows, right={3}))
    click.echo("")
    left_out = f"; {len(provisional)} provisional month(s) left out" if provisional else ""
    click.echo(
        f"WAPE {_pct(fc.wape)} over {fc.wape_months} ended month(s) with a frozen forecast{left_out}."
        if fc.wape is not None
        else f"WAPE —: no ended month has a frozen forecast, final figures and sales{left_out}."
    )
    from evpipe.models.forecast_range import range_sentence

    sentence = range_sentence(None, ranges.period, _money).removeprefix("Period: ")
    click.echo(f"KPI period: {sentence}.")
    click.echo(FORECAST_LEGEND)


def _range_cells(r) -> list[str]:
    """P10, P50, P90, the target and the chance of reaching it, for the text table."""
    if r is None:
        return ["", "", "", "", ""]
    from evpipe.models.forecast_range import percent_text

    if r.target_cents is None or r.p_target is None:
        target, chance = "—", "—"
    else:
        target, chance = _money(r.target_cents), percent_text(r.p_target)
    return [_money(r.p10), _money(r.p50), _money(r.p90), target, chance]


#: What the forecast's columns mean, in a rep's words (the text output's last lines).
FORECAST_LEGEND = """\
frozen: the EV expected for the month on its first day (from the KPI history).
actual: what the month's prospects were won for, whenever they were signed.
signed: orders signed during the month, whatever month they are for.
accuracy: how close frozen came to actual (100% = spot on).
bias: + expected too much, - too little. WAPE: the overall miss, weighted by sales.
Only months that have ended are judged. * not over yet. ? ended with prospects still
open: provisional, left out of WAPE until they are won, lost or moved to another month.
total: frozen and actual over the same months, the ones WAPE judges.
P10, P90: 80% of the time the month's prospects win between the two, if each closes with
its stage's probability; chance: of reaching the month's target (`evpipe target`)."""


# ---------------------------------------------------------------- calibrate


@click.command("calibrate")
@click.option("--months", type=int, default=None, help="Only outcomes closed in the last N months.")
@click.option(
    "--apply", "apply_", is_flag=True, help="Accept every suggested probability (shows the changes, then asks)."
)
@click.option("--yes", "-y", is_flag=True, help="With --apply: apply without asking.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def calibrate_cmd(ctx: Ctx, months: int | None, apply_: bool, yes: bool, as_json: bool) -> None:
    """Sighting in: each stage's probability against real outcomes, with suggestions."""
    from evpipe.models.calibration import apply_suggestions, calibrate, changes_text
    from evpipe.models.values import format_percent

    if yes and not apply_:
        raise DomainError("--yes goes with --apply", field="yes")
    if apply_ and as_json and not yes:
        raise DomainError("--apply --json: add --yes (a JSON reader cannot be asked)", field="yes")
    cal = calibrate(ctx.engine, months=months)
    ctx.month_starts()
    from evpipe.models.forecast_range import band_record

    band = band_record(ctx.engine, months=months or 12)
    if as_json:
        data = cal.to_json()
        data["band"] = band.to_json()
        if apply_:
            data["applied"] = [r.summary for r in apply_suggestions(ctx.store(), calibration=cal)]
            if data["applied"]:
                ctx.changed()
        emit_json(data)
        return
    body = []
    for s in cal.stages:
        body.append(
            [
                safe(s.stage),
                format_percent(s.configured_bp),
                _pct(s.observed),
                str(s.won),
                str(s.lost),
                str(s.n),
                "—" if s.low is None else f"{_pct(s.low)}–{_pct(s.high)}",
                _pct(s.conversion_next),
                "—" if s.suggested_bp is None else format_percent(s.suggested_bp),
                s.note,
            ]
        )
    click.echo(
        table(
            ["stage", "configured", "observed", "won", "lost", "n", "95% interval", "next step", "suggested", "note"],
            body,
            right={1, 2, 3, 4, 5, 6, 7, 8},
        )
    )
    window = f"outcomes closed since {cal.since.isoformat()}" if cal.since else "every known outcome"
    click.echo("")
    click.echo(f"Evidence: {cal.won} won, {cal.lost} lost ({window}).")
    if cal.inferred:
        click.echo(
            f"{cal.inferred} of them closed from a stage nobody recorded (an import's guess, or none): "
            "evidence for no stage (inferred)."
        )
    if cal.brier is not None:
        line = f"Brier score of the current ladder: {cal.brier:.4f} over {cal.brier_n} outcomes (0 is perfect)"
        if cal.brier_suggested is not None and cal.brier_suggested != cal.brier:
            line += f"; with the suggestions: {cal.brier_suggested:.4f}"
        click.echo(line + ".")
    click.echo(band.summary() + ".")
    rows = cal.suggestions
    if not apply_:
        if rows:
            click.echo("`evpipe calibrate --apply` shows what accepting the suggestions changes, then asks.")
        return
    if not rows:
        click.echo("Nothing to apply: no stage has a suggestion.")
        return
    click.echo("")
    click.echo("Accepting the suggestions changes:")
    for line in changes_text(cal):
        click.echo(f"  {safe(line)}")
    if not yes:
        try:
            ok = click.confirm(f"Apply {'this change' if len(rows) == 1 else f'these {len(rows)} changes'}?")
        except click.Abort:
            click.echo("")  # the prompt's line, ended
            raise DomainError("calibrate --apply: nothing changed; answer y, or add --yes", field="yes") from None
        if not ok:
            click.echo("Nothing changed.")
            return
    applied = apply_suggestions(ctx.store(), calibration=cal)
    if applied:
        ctx.changed()
    for r in applied:
        click.echo(f"applied: {safe(r.summary)}")
    click.echo("Each is recorded; `evpipe undo` reverses the last.")


# ---------------------------------------------------------------- review


def _item_line(i, *, with_gain: bool = True) -> str:
    from evpipe.models.values import format_amount

    bits = [safe(i.name), f"{safe(i.stage)}", format_amount(i.value_cents)]  # as stored, cents when it has them
    if i.owner:
        bits.append(safe(i.owner))
    text = " · ".join(bits) + f" — {i.reason}"
    if with_gain and i.group != "gain":
        text += f"; {i.gain_reason}"
    return text


def short_reason(i) -> str:
    """A follow-up list's reason, short: '10 days overdue', 'due Mon 30 Nov', 'no contact for 48 days'."""
    if i.group == "overdue":
        d = i.overdue_days
        return f"{d} day{'s' if d != 1 else ''} overdue"
    if i.group == "due":
        return i.short_reason
    if i.group == "stale":
        return f"no contact for {i.idle_days} days ({i.stage} allows {i.stale_days})"
    return i.reason


# Longer than 80 lines on purpose: it is one email, written top to bottom in the order it reads.
def review_markdown(r) -> str:
    """The review as an email to the owner: headline, the KPIs, what moved EV, wins, what's next."""
    from evpipe.models.values import balanced_cents, format_amount, to_cents

    def money(c, signed=False):
        return _money(c, signed=signed)

    def ev(m, signed=False):
        return _money(m, micros=True, signed=signed)

    def exact(cents):  # the bridge's terms keep their cents, and add up to its change as printed
        return format_amount(cents, signed=cents != 0)

    def plural(n, word):
        return f"{n} {word}{'' if n == 1 else 's'}"

    d_ev = r.end.ev_micros - r.start.ev_micros
    d_tv = r.end.tv_cents - r.start.tv_cents
    first, last = r.start_at.date(), r.end_at.date()
    days = (last - first).days + 1
    wins = r.wins
    won_value = sum(w.value_cents for w in wins)
    lines = [f"# Pipeline review, {first:%a %d %b} – {last:%a %d %b %Y}", ""]
    if d_ev:
        head = f"**Expected value {'rose' if d_ev > 0 else 'fell'} by {ev(abs(d_ev))} to {ev(r.end.ev_micros)}**"
    else:
        head = f"**Expected value held at {ev(r.end.ev_micros)}**"
    head += f" over the last {plural(days, 'day')}"
    if wins:
        head += f", with {plural(len(wins), 'sale')} won worth {money(won_value)}."
    else:
        head += ", with no sale closed yet."
    lines.append(head)
    lines += ["", r.season + "."]
    adv = r.term("advance")
    new = r.term("new")
    work = []
    if adv and adv.standing:
        work.append(f"{plural(len(adv.standing), 'prospect')} moved up the ladder (+{ev(adv.d_ev_micros)} EV)")
    if new and new.standing:
        work.append(f"{plural(len(new.standing), 'new prospect')} worth {money(new.d_tv_cents)} came in")
    if work:
        lines.append("")
        lines.append("The week's work: " + " and ".join(work) + ".")
    ratio_end = _ratio(r.end)
    ratio_start = _ratio(r.start)
    if ratio_end is not None and ratio_start is not None and ratio_end != ratio_start:
        lines.append("")
        lines.append(
            f"EV/TV {'rose' if ratio_end > ratio_start else 'fell'} from {_ev_tv(r.start)} to {_ev_tv(r.end)}: "
            + (
                "the pipeline is maturing towards cash."
                if ratio_end > ratio_start
                else "the pipeline is, on average, further from cash than a week ago."
            )
        )
    lines += ["", "| | start | now | change |", "|---|---:|---:|---:|"]
    lines.append(
        f"| Expected value (EV) | {ev(r.start.ev_micros)} | {ev(r.end.ev_micros)} | {exact(to_cents(d_ev, micros=True))} |"
    )
    lines.append(f"| Total value (TV) | {money(r.start.tv_cents)} | {money(r.end.tv_cents)} | {money(d_tv, True)} |")
    lines.append(f"| EV/TV | {_ev_tv(r.start)} | {_ev_tv(r.end)} | |")
    lines.append(f"| Prospects in play | {r.start.count} | {r.end.count} | {r.end.count - r.start.count:+d} |")
    lines += ["", "## What moved expected value", ""]
    if not r.terms:
        lines.append("Nothing changed in the pipeline.")
    else:
        lines += ["| | EV | TV | prospects |", "|---|---:|---:|---|"]
        for t, cents in zip(r.terms, balanced_cents([t.d_ev_micros for t in r.terms], micros=True)):
            moved = [i for i in t.items if i.d_ev_micros or i.d_tv_cents or i.d_count]
            names = ", ".join(
                _md(i.name) + (f" ({_md(i.by_text)})" if i.by and r.names_authors else "") for i in moved[:3]
            )
            if len(moved) > 3:
                names += f" and {len(moved) - 3} more"
            lines.append(f"| {t.label} | {exact(cents)} | {money(t.d_tv_cents, True)} | {names} |")
        lines.append(f"| **Change** | **{exact(to_cents(d_ev, micros=True))}** | **{money(d_tv, True)}** | |")
        if adv and adv.standing:
            lines += ["", "Advances:", ""]
            for i in adv.standing[:10]:
                lines.append(f"- {_md(i.name)}: {ev(i.d_ev_micros, True)} EV")
            if len(adv.standing) > 10:
                lines.append(f"- and {len(adv.standing) - 10} more")
    if r.balance:
        lines += [
            "",
            "## Balance of activity",
            "",
            "Per stage this period; in brackets, a typical week of the last quarter.",
            "",
        ]
        lines += ["| stage | added | advanced | touched | left untouched |", "|---|---:|---:|---:|---:|"]
        for b in r.balance:
            lines.append(
                f"| {_md(b.stage)} | {b.added} ({b.typical[0]:g}) | {b.advanced} ({b.typical[1]:g}) | "
                f"{b.touched} ({b.typical[2]:g}) | {b.untouched} |"
            )
    lines += ["", "## Wins", ""]
    if wins:
        for w in wins:
            lines.append(f"- **{_md(w.name)}**: {money(w.value_cents)}")
    else:
        lines.append("No sale closed in this period.")
    losses = r.term("lose")
    if losses and losses.standing:
        lines += ["", "Lost: " + ", ".join(f"{_md(i.name)} ({money(i.value_cents)})" for i in losses.standing) + "."]
    lines += ["", "## What's next", ""]
    if r.focus:
        lines += ["The next steps that would lift expected value most:", ""]
        for n, i in enumerate(r.focus, 1):
            lines.append(
                f"{n}. **{_md(i.name)}**: {_md(i.stage)} → {_md(i.next_stage)} would add "
                f"{ev(i.gain_micros)} EV" + ("" if i.group == "gain" else f" ({short_reason(i)})")
            )
    else:
        lines.append("No open prospects.")
    for title, items in (
        ("Follow-ups overdue", r.overdue),
        ("Follow-ups due this week", r.due),
        ("Gone quiet", r.stale),
    ):
        lines += ["", f"**{title}** ({len(items)})" + (":" if items else ": none.")]
        if items:
            lines.append("")
            for i in items:
                lines.append(f"- {_md(i.name)}: {_md(short_reason(i))}")
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """User text for Markdown: no control characters, and the characters Markdown would read as
    formatting, as a table cell border or as the start of an entity (`&amp;` reads `&`) escaped."""
    out = safe(text).replace("\n", " ")
    for ch in "\\`*_[]<>|#&":
        out = out.replace(ch, "\\" + ch)
    return out


def balance_lines(r) -> list[str]:
    """The balance of activity per stage against a typical week of the last quarter, as a table."""
    if not r.balance:
        return []

    def cell(now: int, usual: float) -> str:
        return f"{now} ({usual:g})"

    rows = [
        [
            safe(b.stage),
            cell(b.added, b.typical[0]),
            cell(b.advanced, b.typical[1]),
            cell(b.touched, b.typical[2]),
            str(b.untouched),
        ]
        for b in r.balance
    ]
    return [
        "Balance of activity (in brackets: a typical week of the last quarter)",
        table(["stage", "added", "advanced", "touched", "untouched"], rows, right={1, 2, 3, 4}),
    ]


def review_text(r) -> str:
    from evpipe.models.values import balanced_cents, format_amount, to_cents

    d_ev = r.end.ev_micros - r.start.ev_micros

    def ev(m, signed=False):
        return _money(m, micros=True, signed=signed)

    def exact(cents):  # the bridge's terms keep their cents, and add up to its change as printed
        return format_amount(cents, signed=True)

    whose = f", the changes {safe(r.who)} made" if r.who else ""
    out = [f"Review {r.start_at:%Y-%m-%d} to {r.end_at:%Y-%m-%d %H:%M}{whose}", r.season + ".", ""]
    out.append(
        table(
            ["", "start", "end", "change"],
            [
                ["EV", ev(r.start.ev_micros), ev(r.end.ev_micros), exact(to_cents(d_ev, micros=True))],
                [
                    "TV",
                    _money(r.start.tv_cents),
                    _money(r.end.tv_cents),
                    _money(r.end.tv_cents - r.start.tv_cents, signed=True),
                ],
                ["EV/TV", _ev_tv(r.start), _ev_tv(r.end), ""],
                ["count", str(r.start.count), str(r.end.count), f"{r.end.count - r.start.count:+d}"],
            ],
            right={1, 2, 3},
        )
    )
    out.append("")
    out.append("EV bridge")
    shown = balanced_cents([t.d_ev_micros for t in r.terms], micros=True)
    rows = [
        [t.label, exact(cents), _money(t.d_tv_cents, signed=True), str(len(t.standing))]
        for t, cents in zip(r.terms, shown)
    ]
    rows.append(
        [
            "total change",
            exact(to_cents(d_ev, micros=True)),
            _money(r.end.tv_cents - r.start.tv_cents, signed=True),
            "",
        ]
    )
    out.append(table(["term", "EV", "TV", "prospects"], rows, right={1, 2, 3}))
    for t in r.terms:
        if not t.standing:
            continue
        out.append("")
        out.append(f"{t.label}:")
        for i in t.standing[:8]:
            by = f"  ({safe(i.by_text)})" if i.by and r.names_authors else ""
            out.append(f"  {format_amount(i.d_ev_micros, micros=True, signed=True):>10}  {safe(i.name)}{by}")
        if len(t.standing) > 8:
            out.append(f"  ... and {len(t.standing) - 8} more")
    out += ["", *balance_lines(r)]
    for title, items in (
        ("Follow-ups overdue", r.overdue),
        ("Due this week", r.due),
        ("Stale", r.stale),
        ("Best next steps", r.focus),
    ):
        out.append("")
        out.append(f"{title}:" + ("" if items else " none"))
        for i in items:
            out.append("  " + _item_line(i, with_gain=title == "Best next steps"))
    return "\n".join(out)


@click.command("review")
@click.option("--since", default="7d", show_default=True, help="7d, 2w, or a date such as 2026-11-01.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json", "html"]), default="text", show_default=True
)
@click.option(
    "--who", default=None, metavar="USER", help="One rep's review: the changes they made (the rest as one term)."
)
@pass_ctx
@domain_errors
def review_cmd(ctx: Ctx, since: str, fmt: str, who: str | None) -> None:
    """How the KPIs moved over a period and why, with what to do next; `--format html > week.html`
    is one self-contained page to send (charts included)."""
    from evpipe.models.review import review

    owner = ctx.owner_scope(None)  # a rep the owner lets see only their own: the review of theirs
    if fmt == "html":
        if owner is not None:
            raise DomainError(
                "review --format html: the report covers the whole team; you see only your own prospects "
                "(the owner's setting): use --format markdown"
            )
        from evpipe.models.locations import db_label
        from evpipe.models.report_html import build_report

        click.echo(build_report(ctx.engine, since, database=db_label(ctx.url)), nl=False)
        return
    # read with the standard library when the file allows (its slowest reads by forked copies of
    # this command); an engine only if the start must be replayed
    r = review(
        ctx.reader, since, who=who.strip() if who else None, owner=owner, replay_from=lambda: ctx.engine, forked=True
    )
    if fmt == "json":
        emit_json(r.to_json())
    elif fmt == "markdown":
        click.echo(review_markdown(r), nl=False)
    else:
        click.echo(review_text(r))


# ---------------------------------------------------------------- trend


@click.command("trend")
@click.option("--weeks", type=int, default=12, show_default=True, help="How far back (0: everything).")
@click.option(
    "--period",
    "period_text",
    default=None,
    metavar="12m|YYYY-MM|all",
    help="The KPI period for this command only (default: the database's, `evpipe settings`).",
)
@click.option(
    "--compare",
    type=click.Choice(["last-year"]),
    default=None,
    help="Beside each reading, the one of the same week last year (52 weeks before).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def trend_cmd(ctx: Ctx, weeks: int, period_text: str | None, compare: str | None, as_json: bool) -> None:
    """TV, EV and EV/TV over time, from the KPI history: every reading counted for today's KPI
    period, so that the line moves with work done, not with the calendar."""
    if weeks < 0 or weeks > 5200:
        raise DomainError("--weeks: a number of weeks from 1 to 5200, or 0 for everything")
    from evpipe.models.history import trend
    from evpipe.models.kpi import Scope
    from evpipe.models.season import compare_trend

    period = _period(ctx, period_text)
    scope = Scope(owner=ctx.owner_scope(None), period=period)  # a rep limited to their own: their history
    points = trend(ctx.engine, weeks or None, scope)
    before = compare_trend(ctx.engine, points, scope) if compare else [None] * len(points)
    if as_json:
        out = []
        for p, ly in zip(points, before):
            row = {"date": p.taken_on.isoformat(), **p.kpi.to_json()}
            if compare:
                row["last_year"] = None if ly is None else {"date": ly.taken_on.isoformat(), **ly.kpi.to_json()}
            out.append(row)
        emit_json(out)
        return
    body = []
    for p, ly in zip(points, before):
        row = [
            p.taken_on.isoformat(),
            str(p.kpi.count),
            _money(p.kpi.tv_cents),
            _money(p.kpi.ev_micros, micros=True),
            _ev_tv(p.kpi),
        ]
        if compare:
            row += ["—", "—"] if ly is None else [_money(ly.kpi.tv_cents), _money(ly.kpi.ev_micros, micros=True)]
        body.append(row)
    heads = ["date", "count", "TV", "EV", "EV/TV"] + (["TV last year", "EV last year"] if compare else [])
    click.echo(table(heads, body, right=set(range(1, len(heads)))))
    click.echo(f"period: {period_words(period)}")


# ---------------------------------------------------------------- focus


@click.command("focus")
@click.option("--owner", default=None, help="One rep's prospects only.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def focus_cmd(ctx: Ctx, owner: str | None, limit: int, as_json: bool) -> None:
    """The prospects to work on now, most urgent first, each with its reason."""
    from evpipe.models.focus import focus

    scope = ctx.owner_scope(owner)
    items = focus(ctx.reader, limit=limit, owner=scope)
    if as_json:
        emit_json([i.to_json() for i in items])
        return
    if not items:  # (an owner's: the others' open prospects are still there; owners are as typed)
        whose = f"{safe(scope)!r} owns" if scope is not None else "there are"
        click.echo(f"Nothing to work on: {whose} no open prospects.")
        return
    from evpipe.models.values import money_style

    value = money_style(i.value_cents for i in items)  # each column one way, in full
    gain = money_style((i.gain_micros for i in items), micros=True)
    body = [
        [
            str(i.id),
            safe(i.name)[:36],
            safe(i.stage)[:14],
            value(i.value_cents),
            gain(i.gain_micros, micros=True, signed=i.gain_micros != 0),
            "; ".join(i.reasons) if i.group != "gain" else i.reason,
        ]
        for i in items
    ]
    click.echo(table(["id", "name", "stage", "value", "gain", "why"], body, right={0, 3, 4}))


def register(group: click.Group) -> None:
    for command in (kpi, forecast_cmd, calibrate_cmd, review_cmd, trend_cmd, focus_cmd):
        group.add_command(command)
