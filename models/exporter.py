"""Exporting prospects to CSV or XLSX, in a shape `evpipe import` reads back exactly.

One row per live prospect (by id), the columns in `COLUMNS`, then one column per custom field
(sorted by name). XLSX adds a sheet of KPIs by expected month (models.kpi.kpis_by) for the KPI
period (models/period.py, named in its header: every prospect is exported, the KPIs count the
period's) and one of the stage ladder; its money cells are numbers, its dates real dates. A CSV
export writes its ladder beside it as `NAME.ladder.csv`, so that an import elsewhere can compare
the probabilities (models/import_ladder.py).

Formula injection: a text cell that begins with =, +, -, @, a tab or a carriage return would be
run as a formula by a spreadsheet; it is written with a leading apostrophe (`'=SUM(A1)`), as is
a cell that already begins with an apostrophe, so that `evpipe import` (which strips that one
apostrophe) gets back exactly what was stored.
"""

from __future__ import annotations

import csv
import gc
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from .errors import DomainError
from .import_cells import neutralise
from .import_rungs import companion_path
from .kpi import Scope, kpis_by, stage_table
from .ladder import ev_micros
from .locations import database_file
from .outfile import check_destination, private_output
from .period import current_period
from .tables import Prospect, Stage, pk
from .values import NOT_XML, cents_to_decimal, format_percent, micros_to_decimal

#: (header, what) of the fixed columns; the importer maps each header back to its field.
COLUMNS = [
    "id",
    "name",
    "company",
    "contact",
    "email",
    "phone",
    "stage",
    "probability",
    "value",
    "EV",
    "expected month",
    "next follow-up",
    "owner",
    "created",
    "closed on",
    "lost reason",
    "needs review",
    "notes",
    "follow-up time",
    "follow-up note",
]
FORMATS = ("csv", "xlsx")

Progress = Callable[[str, int, int], None]


def export_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise DomainError(f"export: {Path(path).name} should end in .csv or .xlsx", field="file")
    return suffix


def _mine(q: Any, owner: str | None) -> Any:
    """`q` kept to `owner`'s prospects when given (a rep who sees only their own)."""
    return q if owner is None else q.where(col(Prospect.owner) == owner)


def _custom_names(engine: Engine, owner: str | None = None) -> list[str]:
    names: set[str] = set()
    with engine.connect() as conn:
        q = _mine(
            select(col(Prospect.custom_json)).where(
                col(Prospect.deleted_at).is_(None), col(Prospect.custom_json) != "{}"
            ),
            owner,
        )
        for (raw,) in conn.execute(q):
            names.update(json.loads(raw or "{}"))
    fixed = {c.casefold() for c in COLUMNS}
    return sorted((n for n in names if n.casefold() not in fixed), key=str.casefold) + sorted(
        (n for n in names if n.casefold() in fixed), key=str.casefold
    )


def _rows(engine: Engine, custom: list[str], owner: str | None = None) -> Iterator[list[Any]]:
    """Each prospect (`owner`'s only, when given) as typed cells: str, int, Decimal (money), date,
    bool, None."""
    q = _mine(
        select(
            pk(Prospect.id),
            col(Prospect.name),
            col(Prospect.company),
            col(Prospect.contact_name),
            col(Prospect.email),
            col(Prospect.phone),
            col(Stage.name),
            col(Stage.kind),
            col(Stage.probability_bp),
            col(Prospect.value_cents),
            col(Prospect.expected_month),
            col(Prospect.next_follow_up),
            col(Prospect.owner),
            col(Prospect.created_at),
            col(Prospect.closed_on),
            col(Prospect.lost_reason),
            col(Prospect.needs_review),
            col(Prospect.notes),
            col(Prospect.follow_up_time),
            col(Prospect.follow_up_note),
            col(Prospect.custom_json),
        )
        .join(Stage, col(Stage.id) == col(Prospect.stage_id))
        .where(col(Prospect.deleted_at).is_(None))
        .order_by(col(Prospect.id)),
        owner,
    )
    with engine.connect() as conn:
        for (
            pid,
            name,
            company,
            contact,
            email,
            phone,
            stage,
            kind,
            bp,
            cents,
            month,
            follow,
            owner,
            created,
            closed,
            reason,
            review,
            notes,
            follow_time,
            follow_note,
            raw,
        ) in conn.execute(q).yield_per(2000):
            ev = ev_micros(cents, kind, bp)
            fields = json.loads(raw or "{}")
            yield [
                pid,
                name,
                company,
                contact,
                email,
                phone,
                stage,
                bp,
                cents_to_decimal(cents),
                micros_to_decimal(ev),
                month,
                follow,
                owner,
                created.date() if created else None,
                closed,
                reason,
                bool(review),
                notes,
                follow_time,
                follow_note,
            ] + [fields.get(n, "") for n in custom]


def _count(engine: Engine, owner: str | None = None) -> int:
    from sqlalchemy import func

    with engine.connect() as conn:
        return conn.execute(
            _mine(select(func.count()).select_from(Prospect).where(col(Prospect.deleted_at).is_(None)), owner)
        ).scalar_one()


def _text_cell(value: Any) -> str:
    """A cell for a CSV file: plain text, money as 9500.00, dates ISO, probability as 25%."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, (Decimal, int)):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return neutralise(str(value))


def export(
    engine: Engine,
    path: str | Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    owner: str | None = None,
) -> int:
    """Write every live prospect (`owner`'s only, when given) to `path` (.csv or .xlsx; an
    existing file only with `force`, see outfile.check_destination). Returns how many were written. The file
    is written next to its destination, owner-only, and moved into place, so a failure leaves no half
    file (models/outfile.py)."""
    kind = export_format(Path(path))
    path = check_destination(path, "export", force=force, database=database_file(engine))
    if kind == "csv":  # (its ladder goes beside it: the same checks)
        check_destination(companion_path(path), "export", force=force, database=database_file(engine))
    custom = _custom_names(engine, owner)
    total = _count(engine, owner)
    with private_output(path, "export") as tmp:
        if kind == "csv":
            with private_output(companion_path(path), "export") as side:
                _write_ladder_csv(engine, side)
                count = _write_csv(engine, tmp, custom, total, progress, owner)
        else:
            count = _closing_quietly(lambda: _write_xlsx(engine, tmp, custom, total, progress, owner))
    return count


def _closing_quietly(write: Callable[[], int]) -> int:
    """Run an XLSX write; when it fails (a full disk), let openpyxl's half-written sheet streams
    close now and without printing their own second failure: the caller says what happened."""
    try:
        return write()
    except OSError as exc:
        hook = sys.unraisablehook
        sys.unraisablehook = lambda _unraisable: None
        try:
            traceback.clear_frames(exc.__traceback__)
            gc.collect()
        finally:
            sys.unraisablehook = hook
        raise


LADDER_COLUMNS = ["position", "stage", "probability", "kind", "stale after (days)"]


def _write_ladder_csv(engine: Engine, path: Path) -> None:
    """A CSV export's ladder, beside it (`NAME.ladder.csv`): the import compares it with the
    database's ladder (models/import_ladder.py), as it does an XLSX's Ladder sheet."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LADDER_COLUMNS)
        for row in stage_table(engine):
            bp = round(row["probability"] * 10_000)
            writer.writerow(
                [row["position"], neutralise(row["name"]), format_percent(bp), row["kind"], row["stale_days"]]
            )


def _write_csv(
    engine: Engine, path: Path, custom: list[str], total: int, progress: Progress | None, owner: str | None = None
) -> int:
    count = 0
    # UTF-8 with a BOM, so that Excel reads accents and symbols correctly.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([neutralise(h) for h in COLUMNS + custom])
        for cells in _rows(engine, custom, owner):
            cells[7] = format_percent(cells[7])
            writer.writerow([_text_cell(c) for c in cells])
            count += 1
            if progress is not None and count % 5000 == 0:
                progress("export", count, total)
    if progress is not None:
        progress("export", total, total)
    return count


def _write_xlsx(
    engine: Engine, path: Path, custom: list[str], total: int, progress: Progress | None, owner: str | None = None
) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Prospects")
    bold = Font(bold=True)

    def header(sheet, names: list[str]) -> None:
        row = []
        for n in names:
            c = WriteOnlyCell(sheet, value=NOT_XML.sub("", neutralise(n)))
            c.font = bold
            row.append(c)
        sheet.append(row)

    def cell(sheet, value: Any, fmt: str | None = None) -> Any:
        if isinstance(value, str):  # (text stored before evpipe dropped what XML cannot hold: left out here)
            value = NOT_XML.sub("", neutralise(value))
        elif isinstance(value, Decimal):
            value = float(value)  # exact to the cent for any value evpipe stores (< 10^10)
        elif isinstance(value, bool):
            value = "yes" if value else None
        c = WriteOnlyCell(sheet, value=value)
        if fmt:
            c.number_format = fmt
        return c

    header(ws, COLUMNS + custom)
    count = 0
    for cells in _rows(engine, custom, owner):
        out = []
        for i, value in enumerate(cells):
            if i == 7:
                out.append(cell(ws, value / 10_000, "0.##%"))
            elif i in (8, 9):
                out.append(cell(ws, value, "#,##0.00"))
            elif isinstance(value, date):
                out.append(cell(ws, value, "yyyy-mm-dd"))
            else:
                out.append(cell(ws, value))
        ws.append(out)
        count += 1
        if progress is not None and count % 5000 == 0:
            progress("export", count, total)

    months = wb.create_sheet("KPIs by month")
    period = current_period(engine)
    header(months, ["expected month", "count", "TV", "EV", "EV/TV", f"KPI period: {period.label}"])
    for month, k in kpis_by(engine, "month", Scope(period=period)):
        r = k.ev_tv_rounded(6)
        months.append(
            [
                cell(months, month or "(none)"),
                k.count,
                cell(months, k.tv, "#,##0.00"),
                cell(months, k.ev, "#,##0.00"),
                cell(months, None if r is None else float(r), "0.00%"),
            ]
        )
    ladder = wb.create_sheet("Ladder")
    header(ladder, LADDER_COLUMNS)
    for row in stage_table(engine):
        ladder.append(
            [
                row["position"],
                cell(ladder, row["name"]),
                cell(ladder, row["probability"], "0.##%"),
                row["kind"],
                row["stale_days"],
            ]
        )
    wb.save(path)
    if progress is not None:
        progress("export", total, total)
    return count
