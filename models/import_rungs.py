"""The ladder a file carries, as the file says it (models/import_ladder.py compares it with the
database's): an XLSX's Ladder sheet, else a CSV's companion `NAME.ladder.csv` written beside it, else
the rows' own probability column (only for stages whose rows all agree).

No SQLAlchemy here: an import's reading of its file (models/import_sheet.py) runs before it is
imported."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import DomainError
from .import_cells import cell_text
from .import_fields import name_key
from .import_read import Cell, SheetData, load_workbook
from .ladder import LOST, OPEN, WON
from .values import parse_probability

#: A ladder file or sheet is a handful of rows; more than this is not one.
MAX_RUNGS = 200
#: ... and a few kilobytes.
MAX_LADDER_BYTES = 256_000
_PROBABILITY_HEADERS = {"probability", "probability_percent"}


def companion_path(path: Path) -> Path:
    """Where a CSV export writes its ladder: `pipeline.csv` -> `pipeline.ladder.csv`."""
    return path.with_name(f"{path.stem}.ladder.csv")


@dataclass(frozen=True)
class FileRung:
    name: str
    bp: int
    kind: str | None = None  # open, won or lost when the file says


# ---------------------------------------------------------------- reading the file's ladder


def _probability(value: Cell) -> int | None:
    """A probability cell: '25%', '25' (percent) in text; a workbook number 0..1 is a fraction
    (the export's 0.##% cells). None when the cell is no probability."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            ratio = Decimal(str(value))
        except InvalidOperation:
            return None
        if not 0 <= ratio <= 1:
            return None
        return int((ratio * 10_000).quantize(Decimal(1)))
    try:
        return parse_probability(str(value).strip())
    except DomainError:
        return None


def _rungs_from_rows(headers: list[Any], rows: list[list[Any]]) -> list[FileRung]:
    """Rungs from a table with `stage` and `probability` columns (and optionally `kind`)."""
    keys = [name_key(str(h or "")) for h in headers]
    if "stage" not in keys or "probability" not in keys:
        return []
    i_stage, i_bp = keys.index("stage"), keys.index("probability")
    i_kind = keys.index("kind") if "kind" in keys else None
    out = []
    for cells in rows[:MAX_RUNGS]:
        cells = list(cells) + [None] * (len(headers) - len(cells))
        name = cell_text(cells[i_stage]).strip()
        bp = _probability(cells[i_bp])
        if not name or bp is None:
            continue
        kind = cell_text(cells[i_kind]).strip().casefold() if i_kind is not None else ""
        out.append(FileRung(name, bp, kind if kind in (OPEN, WON, LOST) else None))
    return out


def _companion_rungs(path: Path) -> list[FileRung]:
    side = companion_path(path)
    try:
        if not side.is_file() or side.stat().st_size > MAX_LADDER_BYTES:
            return []
        with side.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    if not rows:
        return []
    return _rungs_from_rows(rows[0], rows[1 : MAX_RUNGS + 1])


def _sheet_rungs(sheet: SheetData) -> list[FileRung]:
    if "Ladder" not in sheet.sheets or sheet.sheet == "Ladder":
        return []
    try:
        fh = sheet.path.open("rb")
    except OSError:
        return []
    try:
        wb = load_workbook(fh)
    except Exception:  # the prospects' sheet was read: a broken Ladder sheet is no ladder, not an error
        fh.close()
        return []
    try:
        rows = []
        for values in wb["Ladder"].iter_rows(values_only=True, max_row=MAX_RUNGS + 1, max_col=10):
            rows.append(list(values))
    except Exception:
        return []
    finally:
        wb.close()
        fh.close()
    if not rows:
        return []
    return _rungs_from_rows(rows[0], rows[1:])


def _column_rungs(sheet: SheetData, columns: list[tuple[str, str]]) -> list[FileRung]:
    """The rows' own stage and probability columns: a stage's probability when every row on it
    agrees (an export's rows all do)."""
    i_stage = next((i for i, (_, f) in enumerate(columns) if f == "stage"), None)
    i_bp = next((i for i, (h, _) in enumerate(columns) if name_key(h) in _PROBABILITY_HEADERS), None)
    if i_stage is None or i_bp is None:
        return []
    seen: dict[str, set[int | None]] = defaultdict(set)
    spelt: dict[str, str] = {}
    for _, cells in sheet.rows:
        name = cell_text(cells[i_stage]).strip()
        if not name:
            continue
        key = name.casefold()
        bps = seen[key]
        if len(bps) < 2:
            bps.add(_probability(cells[i_bp]))
        spelt.setdefault(key, name)
    return [FileRung(spelt[k], next(iter(v))) for k, v in seen.items() if len(v) == 1 and None not in v]  # type: ignore[arg-type]


def file_ladder(sheet: SheetData, columns: list[tuple[str, str]]) -> tuple[list[FileRung], str]:
    """The ladder the file carries and where it was read ([] when it carries none)."""
    if sheet.kind == "xlsx":
        rungs = _sheet_rungs(sheet)
        if rungs:
            return rungs, "its Ladder sheet"
    else:
        rungs = _companion_rungs(sheet.path)
        if rungs:
            return rungs, companion_path(sheet.path).name
    rungs = _column_rungs(sheet, columns)
    return rungs, "its probability column"


__all__ = ["MAX_LADDER_BYTES", "MAX_RUNGS", "FileRung", "companion_path", "file_ladder"]
