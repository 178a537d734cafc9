"""The arguments of `evpipe import`, shared by the command and the app's import screen (which
accepts them exactly as the command line does: `pipeline.csv --stage-map Hot=Quote sent`).

Also `DashedArguments`: commands whose arguments may start with a dash (`target 2027-03 -5`).

This module needs only click: the import screen reads it without loading the other commands, and
neither the screen nor the CLI imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from evpipe.models.errors import DomainError

F = TypeVar("F", bound=Callable[..., Any])


class DashedArguments(click.Command):
    """A command whose arguments may start with a dash (a note "-5% agreed", a target or a
    probability of -1, a follow-up of -3d): click took each such word for an option it does not
    know ("No such option '-5'"); here it is an argument, and the command says what is wrong with
    it. A word starting with two dashes that is none of the command's options is still refused as
    an option (`--jsn`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {})["ignore_unknown_options"] = True
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        known = {name for param in self.get_params(ctx) for name in (*param.opts, *param.secondary_opts)}
        for arg in args:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if name.startswith("--") and len(name) > 2 and name not in known:
                raise click.NoSuchOption(name, ctx=ctx)
        return super().parse_args(ctx, args)


#: The import command's argument and options, top to bottom as `evpipe import --help` lists them.
_IMPORT_PARAMS: tuple[Callable[[F], F], ...] = (
    click.argument("file", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--sheet", default=None, help="The sheet of an XLSX workbook (default: the first)."),
    click.option(
        "--map",
        "maps",
        multiple=True,
        metavar="COLUMN=FIELD",
        help="Map a column to a field (name, company, contact, email, phone, value, stage, month, close_date, "
        "created, owner, notes, id, follow_up, lost_reason, needs_review, custom, ignore).",
    ),
    click.option(
        "--stage-map",
        "stage_maps",
        multiple=True,
        metavar="FILE_STAGE=STAGE",
        help="Map a stage name used in the file to a stage of the ladder.",
    ),
    click.option(
        "--add-stage",
        "add_stages",
        multiple=True,
        metavar="NAME=PERCENT",
        help="Add an open stage to the ladder (after the last open one) as part of the import.",
    ),
    click.option("--dayfirst", is_flag=True, default=False, help="Dates like 03/04/2027 are 3 April."),
    click.option("--monthfirst", is_flag=True, default=False, help="Dates like 03/04/2027 are 4 March."),
    click.option(
        "--values",
        "values_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="A lookup file (CSV/XLSX) that values rows without one.",
    ),
    click.option(
        "--values-key",
        default=None,
        metavar="COLUMN[=LOOKUP_COLUMN]",
        help="The column joining the file to the lookup file, e.g. product.",
    ),
    click.option("--values-column", default=None, help="The lookup file's value column (default: its price column)."),
    click.option("--source", default=None, help="The name imports of this file are known by (default: the file name)."),
    click.option(
        "--closed-from",
        default=None,
        metavar="STAGE",
        help="The open stage won and lost rows were on before they closed.",
    ),
    click.option("--skip-bad", is_flag=True, help="Import the rows that can be taken and leave out the others."),
    click.option(
        "--adopt-ladder",
        is_flag=True,
        help="Take the stage probabilities the file carries (an evpipe export's ladder) in place of this database's.",
    ),
    click.option(
        "--encoding",
        default=None,
        metavar="NAME",
        help="The CSV's text encoding, e.g. cp1252, mac_roman, shift_jis (default: UTF-8, or detected).",
    ),
    click.option(
        "--max-rows", type=click.IntRange(min=1), default=None, metavar="N", help="Refuse more rows (default 200,000)."
    ),
    click.option(
        "--max-columns",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Refuse more columns (default 500).",
    ),
    click.option(
        "--max-cell",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Refuse a longer cell, in characters (default 32,767, as Excel).",
    ),
    click.option(
        "--max-mb",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Refuse a bigger file, in MB; an XLSX counts its parts uncompressed (default 100).",
    ),
    click.option("--no-limits", is_flag=True, help="Read a file you trust whatever its size (no limits at all)."),
    click.option(
        "--rows", type=click.IntRange(min=0), default=10, show_default=True, help="How many rows the preview shows."
    ),
    click.option("--commit", is_flag=True, help="Write the import (without it, evpipe only shows the preview)."),
    click.option("--json", "as_json", is_flag=True),
)


def import_arguments(fn: F) -> F:
    """Give a command the arguments and options of `evpipe import`."""
    for decorate in reversed(_IMPORT_PARAMS):
        fn = decorate(fn)
    return fn


def _pairs(values: tuple[str, ...], option: str, *, last: bool = False) -> dict[str, str]:
    """LEFT=RIGHT pairs, split at the first '=' (a stage name may hold one on either side), or with
    `last` at the last one: --map's right side is a field name, which never holds '=', so a column
    whose header does ('a=b') can be named (`--map a=b=ignore`)."""
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise DomainError(f"{option}: {v!r} should be LEFT=RIGHT, e.g. {option} 'Won=Won'", field=option)
        left, right = v.rsplit("=", 1) if last else v.split("=", 1)
        if not left.strip() or not right.strip():
            raise DomainError(f"{option}: {v!r} should be LEFT=RIGHT with both sides filled", field=option)
        left, right = left.strip(), right.strip()
        if out.get(left, right) != right:
            raise DomainError(
                f"{option}: {left!r} is given twice ({out[left]!r}, then {right!r}); give it once", field=option
            )
        out[left] = right
    return out


def _date_order(p: dict[str, Any]) -> str | None:
    """'dmy' for --dayfirst, 'mdy' for --monthfirst, None (read from the file) for neither."""
    if p.get("dayfirst") and p.get("monthfirst"):
        raise DomainError("import: --dayfirst and --monthfirst say opposite things; give one", field="date_order")
    return "dmy" if p.get("dayfirst") else "mdy" if p.get("monthfirst") else None


def _add_stages(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for v in values:
        if "=" not in v:
            raise DomainError(
                f"--add-stage: {v!r} should be NAME=PERCENT, e.g. --add-stage 'Prospecting=10'", field="add_stage"
            )
        name, percent = v.rsplit("=", 1)
        out.append((name.strip(), percent.strip()))
    return out


def _limits(p: dict[str, Any]):
    """The ReadLimits asked for: the defaults, any --max-* given, or none with --no-limits."""
    from evpipe.models.import_read import NO_LIMITS, ReadLimits

    if p.get("no_limits"):
        return NO_LIMITS
    given = {
        "rows": p.get("max_rows"),
        "columns": p.get("max_columns"),
        "cell_chars": p.get("max_cell"),
        "megabytes": p.get("max_mb"),
    }
    return ReadLimits(**{k: v for k, v in given.items() if v is not None})


def import_options(p: dict[str, Any]):
    """The ImportOptions that the parsed arguments `p` ask for (DomainError on a bad pair or an
    unknown encoding)."""
    from evpipe.models.import_read import check_encoding
    from evpipe.models.import_types import ImportOptions  # (light: tui/cli/import_ahead.py runs before SQLAlchemy)

    encoding = p.get("encoding")
    return ImportOptions(
        sheet=p["sheet"],
        mapping=_pairs(p["maps"], "--map", last=True),
        stage_map=_pairs(p["stage_maps"], "--stage-map"),
        date_order=_date_order(p),
        values_file=p["values_file"],
        values_key=p["values_key"],
        values_column=p["values_column"],
        source=p["source"],
        add_stages=_add_stages(p["add_stages"]),
        closed_from=p["closed_from"],
        skip_bad=p["skip_bad"],
        adopt_ladder=bool(p.get("adopt_ladder")),
        encoding=check_encoding(encoding) if encoding else None,
        limits=_limits(p),
    )


@click.command("import")
@import_arguments
def _import_parser(**params: Any) -> None:
    """Parses `evpipe import` arguments for the import screen; never run."""


def options_from_args(args: list[str]):
    """(file, ImportOptions) from `evpipe import` arguments, e.g. from the app's import screen:
    ['pipeline.csv', '--stage-map', 'Hot=Quote sent']. Raises DomainError on a bad option."""
    try:
        click_ctx = _import_parser.make_context("import", list(args))
    except click.exceptions.Exit:
        raise DomainError("import: type a file name, then any options as on the command line") from None
    except click.UsageError as exc:
        raise DomainError(f"import: {exc.format_message()}") from None
    params = click_ctx.params
    return params["file"], import_options(params)
