"""Commands on prospects: add, move, edit, delete, log, follow, undo and list."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

import click

from evpipe.models.errors import DomainError

from .args import DashedArguments
from .main import Ctx, clip, domain_errors, emit_json, emit_json_records, emit_json_texts, pass_ctx, safe, table_lines


@click.command()
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
        name,
        value,
        stage,
        month=month,
        company=company,
        contact_name=contact,
        email=email,
        phone=phone,
        notes=notes,
        owner=owner,
        follow_up=follow_up,
    )
    ctx.changed()
    if as_json:
        emit_json(prospect_json(result.prospect))
    else:
        click.echo(f"#{result.prospect.id} {safe(result.summary)}")


@click.command()
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


@click.command()
@click.argument("prospect")
@click.option("--name", default=None)
@click.option("--value", default=None)
@click.option("--month", default=None, help="Expected month: 2027-01, jan 2027 or jan; none to clear it.")
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


@click.command()
@click.argument("prospect")
@pass_ctx
@domain_errors
def delete(ctx: Ctx, prospect: str) -> None:
    """Delete a prospect (`evpipe undo` brings it back)."""
    result = ctx.store().delete(prospect)
    ctx.changed()
    click.echo(safe(result.summary))


@click.command(cls=DashedArguments)
@click.argument("prospect")
@click.argument("kind", type=click.Choice(["call", "email", "meeting", "note"]))
@click.argument("text")
@click.option(
    "--when", default=None, help="When it happened: a day, optionally a time ('yesterday 14:30'; default: now)."
)
@pass_ctx
@domain_errors
def log(ctx: Ctx, prospect: str, kind: str, text: str, when: str | None) -> None:
    """Log a contact point (call, email, meeting or note) on a prospect."""
    result = ctx.store().log_activity(prospect, kind, text, when=when)
    ctx.changed()
    click.echo(safe(result.summary))


@click.command(cls=DashedArguments)
@click.argument("prospect")
@click.argument("when")
@click.option("--time", "at_time", default=None, help="Its time of day (14:30, 2pm).")
@click.option("--note", default=None, help="What it is about.")
@pass_ctx
@domain_errors
def follow(ctx: Ctx, prospect: str, when: str, at_time: str | None, note: str | None) -> None:
    """Set a prospect's next follow-up (a date, or 'none'); it replaces the last one whole."""
    from evpipe.models.values import FOLLOW_UP_CLEAR

    if not when.strip():  # most often a script's unset variable: it cleared the follow-up, time and note
        raise DomainError("follow-up: the date is empty; give a date, or none to clear the follow-up", field="when")
    if when.strip().lower() in FOLLOW_UP_CLEAR and (at_time is not None or note is not None):
        # (they went unsaid: the follow-up was cleared, the time or note dropped without a word)
        raise DomainError(
            f"follow-up: {when.strip()} clears the follow-up with its time and note; give a date for --time or --note",
            field="when",
        )
    result = ctx.store().set_follow_up(prospect, when, time=at_time, note=note)
    ctx.changed()
    click.echo(safe(result.summary))


@click.command()
@click.option(
    "--skip", is_flag=True, help="Skip your last change (a colleague changed it since) and undo the one before."
)
@pass_ctx
@domain_errors
def undo(ctx: Ctx, skip: bool) -> None:
    """Reverse your last change (by recording the reverse)."""
    result = ctx.store().undo(skip=skip)
    ctx.changed()
    click.echo(safe(result.summary))


def prospect_json(p) -> dict[str, Any]:
    """A prospect (models.records.ProspectInfo) as the commands' JSON gives it."""
    return dict(zip(PROSPECT_KEYS, _prospect_values(
        p.id, p.name, p.company, p.stage_name, p.stage_kind, p.probability_bp,
        p.value_cents, p.ev_micros, p.expected_month, p.owner, p.next_follow_up,
    )))  # fmt: skip


#: The one JSON shape of a prospect (`list --json`, and any command showing one): its keys, in
#: order, and `_prospect_values` their values.
PROSPECT_KEYS = (
    "id", "name", "company", "stage", "kind", "probability", "value", "ev", "month", "owner", "next_follow_up",
)  # fmt: skip


def _prospect_values(
    pid, name, company, stage, kind, probability_bp, value_cents, ev_micros, month, owner, next_follow_up
) -> tuple[Any, ...]:
    """The values of `PROSPECT_KEYS`, plain JSON values (text, numbers, null)."""
    from evpipe.models.values import money_str

    return (
        pid,
        name,
        company,
        stage,
        kind,
        _probability(probability_bp),
        money_str(value_cents),
        money_str(ev_micros, micros=True),
        month,
        owner,
        next_follow_up.isoformat() if next_follow_up else None,
    )


def _probability(probability_bp: int) -> float:
    """A stage's probability in JSON: a fraction of one."""
    return probability_bp / 10_000


@click.command("list")
@click.option("--owner", default=None)
@click.option("--stage", default=None)
@click.option(
    "--filter",
    "filter_text",
    default=None,
    help="As / in the app: words and stage:quote owner:sam month:2027-03 (or mar, or 2027-03..2027-06) "
    "due:overdue due:week stale, all of which must match.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@domain_errors
def list_(ctx: Ctx, owner: str | None, stage: str | None, filter_text: str | None, as_json: bool) -> None:
    """List prospects (open first, by expected month)."""
    from evpipe.models.queries import iter_listing, iter_prospect_rows
    from evpipe.models.rawdb import dialect_name

    stage_id = ctx.store().stage(stage).id if stage else None
    scope = ctx.owner_scope(owner)
    keep = filtered_ids(ctx.engine, filter_text) if filter_text is not None else None
    source = ctx.reader

    def rows():  # read as written, never the whole list in memory (issue 13)
        streamed = iter_prospect_rows(source, owner=scope, stage_id=stage_id)
        return streamed if keep is None else (r for r in streamed if r.id in keep)

    if as_json and dialect_name(source) == "sqlite":  # SQLite writes each prospect's JSON itself
        if keep is None:  # a big pipeline: read by two processes at once
            from evpipe.models.listing_split import split_listing

            with split_listing(source, prospect_json_sql, owner=scope, stage_id=stage_id) as split:
                if split is not None:
                    emit_json_texts(split)
                    return
        chunks = iter_listing(source, prospect_json_sql, owner=scope, stage_id=stage_id, size=1000)
        emit_json_texts([text for pid, text in chunk if keep is None or pid in keep] for chunk in chunks)
        return
    if as_json:
        emit_json_records(PROSPECT_KEYS, map(row_values, rows()))
        return
    cells = list_cells()
    headers = ["id", "name", "stage", "p", "value", "EV", "month", "owner"]
    lines = table_lines(headers, lambda: map(cells, rows()), right={0, 3, 4, 5})
    while page := list(islice(lines, 1000)):
        click.echo("\n".join(page))


def prospect_json_sql(stages: list[tuple[int, str, str, int]]) -> tuple[str, dict[str, Any]]:
    """`prospect_json` as SQLite columns over a prospect `p` and its stage `s` (and their
    parameters): the id, and the prospect's JSON text in `list --json` as UTF-8 bytes (the same
    bytes: SQLite's json_quote escapes text as the json module does, and the amounts are
    `money_str`'s text). `stages`: the ladder, `(id, name, kind, probability_bp)` each, whose
    lines (stage, kind, probability) Python writes once a stage. A listing of a million prospects
    makes one Python object per prospect, and decodes no text."""
    from evpipe.models.ladder import ev_sql
    from evpipe.models.rawdb import as_bytes, day_of, json_quote, money_printf, text_literal

    from .main import json_record_template

    # the record's lines around each value's %s; the stage's three values are one fragment
    lines = json_record_template(PROSPECT_KEYS).split("%s")
    first, last = PROSPECT_KEYS.index("stage"), PROSPECT_KEYS.index("probability")
    params: dict[str, Any] = {}
    whens = []
    for i, (sid, name, kind, bp) in enumerate(stages):
        texts = [json.dumps(v, ensure_ascii=False) for v in (name, kind, _probability(bp))]
        params[f"stage_{i}"] = "".join(t + line for t, line in zip(texts, [*lines[first + 1 : last + 1], ""]))
        whens.append(f"WHEN {int(sid)} THEN :stage_{i}")

    def text(expression: str) -> tuple[str, list[str]]:
        return "%s", [json_quote(expression)]

    def money(expression: str, micros: bool = False) -> tuple[str, list[str]]:
        template, arguments = money_printf(expression, micros=micros)  # digits only: quoted as they are
        return f'"{template}"', arguments

    ev = ev_sql("p.value_cents", "s.kind", "s.probability_bp")
    values = [
        ("%s", ["p.id"]), text("p.name"), text("p.company"), ("%s", [f"CASE s.id {' '.join(whens)} END"]),
        money("p.value_cents"), money(f"({ev})", micros=True),
        text("p.expected_month"), text("p.owner"), text(day_of("p.next_follow_up")),
    ]  # fmt: skip
    kept = lines[: first + 1] + lines[last + 1 :]
    assert len(values) == len(kept) - 1 == len(PROSPECT_KEYS) - (last - first)
    template = kept[0] + "".join(piece + line for (piece, _), line in zip(values, kept[1:]))
    record = f"printf({text_literal(template)}, {', '.join(a for _, arguments in values for a in arguments)})"
    return f"p.id, {as_bytes(record)}", params


def row_values(r) -> tuple[Any, ...]:
    """One row of `list --json` (a listing row: the same shape as `prospect_json`), its values."""
    return _prospect_values(
        r.id, r.name, r.company, r.stage, r.kind, r.probability_bp,
        r.value_cents, r.ev_micros, r.month, r.owner, r.next_follow_up,
    )  # fmt: skip


def list_cells():
    """The cells of one row of `list`'s table (a function of the row); a stage's, an owner's and a
    probability's text is worked out once each, not once a row."""
    from functools import lru_cache

    from evpipe.models.values import format_money, format_percent

    text = lru_cache(maxsize=4096)(safe)
    percent = lru_cache(maxsize=1024)(format_percent)

    def cells(r) -> list[str]:
        return [
            str(r.id),
            clip(safe(r.name), 40),
            text(r.stage),
            percent(r.probability_bp),
            format_money(r.value_cents),
            format_money(r.ev_micros, micros=True),
            r.month or "",
            text(r.owner),
        ]

    return cells


def filtered_ids(engine, text: str) -> set[int]:
    """The ids of the prospects a filter lets through: the app's own rule (models/filters.py) over
    the app's own rows (models/pipeline_view.py)."""
    from evpipe.models import clock
    from evpipe.models.filters import parse_filter
    from evpipe.models.pipeline_view import Ladder, load_ladder, load_rows

    stages, archived = load_ladder(engine)
    today = clock.today()
    parsed = parse_filter(text, stages, today)
    if parsed.stale:  # (the list's `~`: slow by each stage's pace, models/pace.py)
        from evpipe.models.pace import load_pace

        parsed = parsed.with_pace(load_pace(engine, with_prospects=False))
    rows, _ = load_rows(engine)
    return parsed.select(rows, Ladder.of(stages, extra=archived), today)


def register(group: click.Group) -> None:
    for command in (add, move, edit, delete, log, follow, undo, list_):
        group.add_command(command)
