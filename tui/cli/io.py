"""Import, export, backup, dump and restore commands (issue 5). Registered on the `evpipe` group by
tui/cli/__init__.py; the import command's arguments are in tui/cli/args.py, shared with the app's
import screen. docs/import.md explains the import rules for users."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from evpipe.models import collector
from evpipe.models.errors import DomainError
from evpipe.models.visibility import OWN_ONLY_LINE

from .args import import_arguments, import_options
from .main import Ctx, Output, domain_errors, emit_json, own_process, pass_ctx, safe, table

#: `-` as a FILE: standard output for dump, standard input for restore; backup and import refuse it
#: (they wrote and read a file named `-`). A file named `-` is `./-`, kept apart by taking dump's,
#: restore's and backup's FILE as typed (a Path makes `./-` of it `-`).
STANDARD_STREAM = "-"

PHASES = {"read": "Reading", "check": "Checking rows", "write": "Preparing", "save": "Saving", "export": "Exporting"}


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A progress callback drawing a bar on stderr when it is a terminal (long files only)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            for other in bars.values():
                other.render_finish()
            bar = click.progressbar(length=max(total, 1), label=PHASES.get(phase, phase), file=sys.stderr)
            bar.__enter__()
            bars[phase] = bar
        bar.update(max(0, done - bar.pos))

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.render_finish()


def _n(x: int) -> str:
    return f"{x:,}"


def encoding_json(sheet) -> dict[str, Any] | None:
    """How a CSV's text was read, for --json (None for a workbook)."""
    if not sheet.encoding:
        return None
    return {
        "name": sheet.encoding,
        "how": sheet.encoding_how,
        "sample": list(sheet.sample),
        "text": sheet.encoding_text,
    }


def print_plan(plan, rows: int) -> None:
    from evpipe.models.importer import FIELD_LABELS
    from evpipe.models.values import format_money

    click.echo(
        f"{safe(plan.path.name)}: {plan.sheet_data.described}; {_n(plan.rows_read)} rows; source {safe(plan.source)!r}"
    )
    if plan.sheet_data.encoding:
        click.echo(safe(plan.sheet_data.encoding_text))
    click.echo("")
    click.echo(table(["column", "imported as"], [[safe(h), FIELD_LABELS[f]] for h, f in plan.columns]))
    if plan.stage_mappings:
        click.echo("")
        body = [
            [safe(m.file_name), safe(m.ladder_name) if m.ladder_name else "NOT ON THE LADDER", m.how, _n(m.rows)]
            for m in plan.stage_mappings
        ]
        click.echo(table(["stage in file", "ladder stage", "how", "rows"], body, right={3}))
    click.echo("")
    click.echo(f"Dates: {safe(plan.date_order_how)}")
    if plan.closed_from:
        click.echo(
            f"Won and lost rows: created on {safe(plan.closed_from)}, then moved to won or lost at their close date"
        )
    if plan.options.values_file:
        click.echo(
            f"Values: {_n(plan.valued_from_lookup)} rows valued from {safe(Path(plan.options.values_file).name)}"
        )
    if plan.needs_review_count:
        click.echo(f"Flagged for review: {_n(plan.needs_review_count)} rows")
    preview = plan.preview_rows(rows)
    if preview:
        click.echo("")
        click.echo("First rows as they will be stored:")
        body = [
            [
                str(r["row"]),
                safe(r["name"])[:30],
                safe(r["company"])[:20],
                safe(r["stage"]),
                format_money(int(r["value"].replace(".", ""))) + (" *" if r["value_from"] != "file" else ""),
                r["month"] or "",
                safe(r["owner"])[:20],
                r["closed_on"] or "",
                safe(", ".join(f"{k}={v}" for k, v in r["custom"].items()))[:40],
            ]
            for r in preview
        ]
        click.echo(
            table(
                ["row", "name", "company", "stage", "value", "month", "owner", "closed", "custom fields"],
                body,
                right={0, 4},
            )
        )
        if any(r["value_from"] != "file" for r in preview):
            click.echo(
                "  * value from the lookup file, the value stored in evpipe (none in the file), "
                "or unknown (0, flagged for review)"
            )
    click.echo("")
    counts = ", ".join(f"{safe(name)} {_n(n)}" for name, n in plan.counts_by_stage if n)
    click.echo(f"Per stage: {counts or 'none'}")
    click.echo(f"New {_n(plan.new_count)}, updated {_n(plan.update_count)}, unchanged {_n(plan.unchanged_count)}")
    if plan.ladder_check is not None:
        for line in plan.ladder_check.lines():
            click.echo(f"Ladder: {safe(line)}")
    for w in plan.warnings:
        click.echo(f"warning: {safe(w)}")
    if plan.problems:
        click.echo("")
        click.echo(f"Problems: {_n(plan.bad_rows)} rows cannot be taken" if plan.bad_rows else "Problems:")
        for p in plan.problems[:50]:
            click.echo(f"  {safe(p.text())}")
        if len(plan.problems) > 50:
            click.echo(f"  ... and {len(plan.problems) - 50} more (--json lists them all)")


@click.command("import")
@import_arguments
@pass_ctx
@domain_errors
def import_cmd(
    ctx: Ctx,
    file: Path,
    sheet,
    maps,
    stage_maps,
    add_stages,
    dayfirst,
    monthfirst,
    values_file,
    values_key,
    values_column,
    source,
    closed_from,
    skip_bad,
    adopt_ladder,
    encoding,
    max_rows,
    max_columns,
    max_cell,
    max_mb,
    no_limits,
    rows,
    commit,
    as_json,
) -> None:
    """Import prospects from a CSV or XLSX file: a preview first; --commit writes it, all or nothing."""
    from . import import_ahead

    if str(file) == STANDARD_STREAM and not file.exists():  # (a file named `-` is still read)
        raise DomainError(
            "import: standard input (-) is not read: an import is read more than once; save it to a file "
            "and give its name"
        )
    options = import_options(
        dict(
            sheet=sheet,
            maps=maps,
            stage_maps=stage_maps,
            add_stages=add_stages,
            dayfirst=dayfirst,
            monthfirst=monthfirst,
            values_file=values_file,
            values_key=values_key,
            values_column=values_column,
            source=source,
            closed_from=closed_from,
            skip_bad=skip_bad,
            adopt_ladder=adopt_ladder,
            encoding=encoding,
            max_rows=max_rows,
            max_columns=max_columns,
            max_cell=max_cell,
            max_mb=max_mb,
            no_limits=no_limits,
        )
    )
    if own_process():  # the command's own process, which ends with os._exit (not a test's runner)
        collector.one_shot()  # (what the import makes is held to the end, not freed row by row)
    ahead = import_ahead.begin(ctx.url, file, options)  # (the file, read while SQLAlchemy is imported)
    try:
        from evpipe.models.importer import commit_import, plan_import

        store = ctx.store()
    except BaseException:
        import_ahead.discard(ahead)
        raise
    with _progress(not as_json) as progress:
        plan = plan_import(ctx.engine, file, options, who=store.who, progress=progress, ahead=import_ahead.take(ahead))
        collector.keep(plan)
        result = None
        if commit and plan.can_commit:
            result = commit_import(ctx.engine, plan, who=store.who, progress=progress)
    if as_json:
        data = plan.to_json(rows)
        data["encoding"] = encoding_json(plan.sheet_data)
        data["committed"] = result.to_json() if result else None
        if result:
            _history(ctx, result)
        emit_json(data)
        if commit and result is None:
            click.echo(f"evpipe: import: nothing written: {safe(plan.why_not())}", err=True)
            sys.exit(1)
        return
    print_plan(plan, rows)
    click.echo("")
    if commit and result is None:
        raise DomainError(f"import: nothing written: {plan.why_not()}")
    if result is None:
        if plan.can_commit:
            click.echo("Nothing written yet: this is the preview. Run again with --commit to import.")
        else:
            click.echo(f"Nothing written: {plan.why_not()}.")
        return
    click.echo("Updating the KPI history ...", err=True)
    _history(ctx, result)
    click.echo(safe(result.summary))


def _history(ctx: Ctx, result: Any) -> None:
    """Bring the KPI history up to date after an import that is saved (`result`, commit_import's):
    what stops it (a held lock, sums past 64 bits) is said on stderr, and the import stands."""
    from evpipe.models.errors import reads_on
    from evpipe.models.importer import after_import, history_not_kept

    try:
        after_import(ctx.engine, result)
    except Exception as exc:
        if not reads_on(exc):  # (a damaged file: said in the command's one line)
            raise
        click.echo(f"evpipe: {history_not_kept(exc)}", err=True)


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@pass_ctx
@domain_errors
def export_cmd(ctx: Ctx, file: Path, force: bool) -> None:
    """Export every prospect (with EV and custom fields) to FILE.csv or FILE.xlsx."""
    from evpipe.models.exporter import export, export_format

    export_format(file)
    owner = ctx.owner_scope(None)  # a rep the owner lets see only their own: theirs
    with _progress(True) as progress:
        count = export(ctx.engine, file, force=force, progress=progress, owner=owner)
    mine = f" (yours, {safe(owner)}: you see {OWN_ONLY_LINE})" if owner is not None else ""
    click.echo(f"Exported {_n(count)} prospect{'' if count == 1 else 's'}{mine} to {safe(str(file))}.")


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@pass_ctx
@domain_errors
def backup_cmd(ctx: Ctx, file: str, force: bool) -> None:
    """Copy the database to FILE with SQLite's online backup (safe while evpipe is open)."""
    from evpipe.models.backup import backup

    if file == STANDARD_STREAM:  # it wrote a file named `-`
        raise DomainError(
            "backup: a backup is a database file, not written to standard output (-); give a file name, "
            "or `evpipe dump -` for the database as JSON on standard output"
        )
    _ = ctx.engine  # opens (and upgrades) the database first
    ctx.whole_database("backup")
    dest = backup(ctx.url, file, force=force)
    click.echo(f"Backed up to {safe(str(dest))}.")


@click.command("dump")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@pass_ctx
@domain_errors
def dump_cmd(ctx: Ctx, file: str, force: bool) -> None:
    """Write the whole database to FILE.json, or to standard output for - (`evpipe restore` reads
    it back exactly)."""
    from evpipe.models.backup import dump_to_file, dump_to_stream

    ctx.whole_database("dump")
    if file == STANDARD_STREAM:  # the JSON alone on standard output; what was done on stderr
        with Output() as out:
            counts = dump_to_stream(ctx.engine, out.write)
        where = "standard output"
    else:
        counts = dump_to_file(ctx.engine, file, force=force)
        where = safe(file)
    click.echo(
        f"Dumped {_n(counts.get('prospect', 0))} prospects, {_n(counts.get('change_event', 0))} journal "
        f"entries and {_n(counts.get('stage_change', 0))} stage changes to {where}.",
        err=file == STANDARD_STREAM,
    )


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@click.option("--force", is_flag=True, help="Replace everything in a database that is not empty.")
@pass_ctx
@domain_errors
def restore_cmd(ctx: Ctx, file: str, force: bool) -> None:
    """Load a dump made by `evpipe dump` (from FILE, or standard input for -) into a new (empty)
    database."""
    from evpipe.models.backup import read_dump, read_dump_from, restore
    from evpipe.models.locations import discard_new_database, sqlite_path

    if file == STANDARD_STREAM:
        if sys.stdin is None:
            raise DomainError("restore: standard input is closed; give the dump's file name, or pipe it in")
        if sys.stdin.isatty():  # it would wait for a dump typed in
            raise DomainError(
                "restore: - reads the dump from standard input, which is the terminal; pipe it in "
                "(`evpipe dump - | evpipe --db NEW restore -`) or give the dump's file name"
            )
        data = read_dump_from(sys.stdin.buffer)
    else:
        data = read_dump(file)
    new_file = sqlite_path(ctx.url)
    if new_file is not None and new_file.exists():
        new_file = None
    engine = None
    try:
        engine = ctx.engine  # (a full disk can stop the opening itself, in the new file)
        counts = restore(engine, data, force=force, who=ctx.who)
    except BaseException:
        if new_file is not None:  # nothing was restored: the database made for it goes again
            if engine is not None:
                engine.dispose()
            discard_new_database(new_file)
        raise
    click.echo(
        f"Restored {_n(counts.get('prospect', 0))} prospects, {_n(counts.get('change_event', 0))} journal "
        f"entries and {_n(counts.get('kpi_snapshot', 0))} KPI snapshots from "
        f"{'standard input' if file == STANDARD_STREAM else safe(file)}."
    )


def register(group: click.Group) -> None:
    for command in (import_cmd, export_cmd, backup_cmd, dump_cmd, restore_cmd):
        group.add_command(command)
