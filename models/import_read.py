"""Reading a spreadsheet for import: CSV (any common delimiter and encoding, with or without a BOM)
or XLSX (openpyxl, read-only, real dates and numbers).

The file's kind is told by its first bytes, not its name, so a PNG renamed `.csv` or a cut-short
workbook gets a clear message instead of a page of garbage. Row numbers are the ones a spreadsheet
shows: the header is row 1 (or the row it sits on, when blank rows come first).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DomainError

#: progress(phase, done, total): called now and then while a long file is read.
Progress = Callable[[str, int, int], None]

#: What a cell can hold: text from a CSV, or a typed value from a workbook.
Cell = Any

DELIMITERS = [",", ";", "\t", "|"]
_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database (use `evpipe restore` for a dump, or copy the file)"),
]
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"


@dataclass
class SheetData:
    """A table read from a file: its header and its non-blank rows with their row numbers."""

    path: Path
    kind: str  # "csv" or "xlsx"
    headers: list[str]
    rows: list[tuple[int, list[Cell]]]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    #: (row number, message) for rows whose shape is wrong (ragged CSV rows)
    shape_problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def described(self) -> str:
        if self.kind == "xlsx":
            return f"XLSX workbook, sheet {self.sheet!r}"
        names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}
        return f"CSV, {self.encoding}, {names.get(self.delimiter or ',', repr(self.delimiter))}-separated"


def _shown(path: Path) -> str:
    return path.name


def read_table(path: str | Path, *, sheet: str | None = None, progress: Progress | None = None) -> SheetData:
    """Read `path` (CSV or XLSX, told by its content). Raises DomainError with a clear message when
    the file is missing, empty, not a spreadsheet, or damaged."""
    path = Path(path)
    if not path.exists():
        raise DomainError(f"import: {path} does not exist", field="file")
    if path.is_dir():
        raise DomainError(f"import: {path} is a folder, not a file", field="file")
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head:
        raise DomainError(f"import: {_shown(path)} is empty", field="file")
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise DomainError(
                f"import: {_shown(path)} is {what}, not a spreadsheet; evpipe imports CSV and XLSX files",
                field="file",
            )
    if head.startswith(_OLE2):
        raise DomainError(
            f"import: {_shown(path)} is an old-style Excel .xls (or other Office) file; open it in a "
            "spreadsheet and save it as .xlsx or CSV, then import that",
            field="file",
        )
    if head.startswith(_ZIP) or head.startswith(b"PK\x05\x06"):
        return _read_xlsx(path, sheet, progress)
    if sheet is not None:
        raise DomainError(f"--sheet: {_shown(path)} is a CSV file, which has no sheets", field="sheet")
    return _read_csv(path, progress)


# ---------------------------------------------------------------- CSV


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "UTF-8 with BOM"
    for bom, codec, label in (
        (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
        (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
        (b"\xff\xfe", "utf-16-le", "UTF-16"),
        (b"\xfe\xff", "utf-16-be", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), label
            except UnicodeDecodeError as exc:
                raise DomainError(
                    f"import: {_shown(path)} starts as {label} text but is damaged at byte {exc.start}",
                    field="file",
                ) from None
    sample = data[:4096]
    if b"\x00" in sample:
        # UTF-16 without a BOM shows as every other byte zero.
        even = sample[0::2].count(0)
        odd = sample[1::2].count(0)
        half = len(sample) // 2
        for zeros, codec in ((odd, "utf-16-le"), (even, "utf-16-be")):
            if half and zeros >= half * 0.4 and min(odd, even) <= half * 0.05:
                try:
                    return data.decode(codec), "UTF-16"
                except UnicodeDecodeError:
                    break
        raise DomainError(
            f"import: {_shown(path)} is binary data, not a spreadsheet; evpipe imports CSV and XLSX files",
            field="file",
        )
    try:
        text, label = data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        try:
            text, label = data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            text, label = data.decode("latin-1"), "Latin-1"
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n\f")
    if controls > max(2, len(text[:4096]) // 100):
        raise DomainError(
            f"import: {_shown(path)} is binary data, not a spreadsheet; evpipe imports CSV and XLSX files",
            field="file",
        )
    return text, label


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number (> 1) of cells most often."""
    lines = [ln for ln in text.splitlines()[:30] if ln.strip()]
    if not lines:
        return ","
    sample = "\n".join(lines)
    best, best_score = ",", (0, 0)
    for delim in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO(sample), delimiter=delim))
        except csv.Error:
            continue
        widths = [len(r) for r in rows if r]
        if not widths or widths[0] < 2:
            continue
        agree = sum(1 for w in widths if w == widths[0])
        score = (agree, widths[0])
        if score > best_score:
            best, best_score = delim, score
    return best


def _read_csv(path: Path, progress: Progress | None) -> SheetData:
    data = path.read_bytes()
    text, encoding = _decode(path, data)
    if not text.strip():
        raise DomainError(f"import: {_shown(path)} has no rows", field="file")
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    headers: list[str] | None = None
    rows: list[tuple[int, list[Cell]]] = []
    shape: list[tuple[int, str]] = []
    total = len(text)
    number = 0
    try:
        for cells in reader:
            number += 1
            if not any(c.strip() for c in cells):
                continue
            if headers is None:
                headers = _headers(cells)
                continue
            if len(cells) > len(headers):
                extra = cells[len(headers) :]
                if any(c.strip() for c in extra):
                    shape.append(
                        (
                            number,
                            f"has {len(cells)} cells but the header has {len(headers)}; "
                            "a delimiter or quote may be out of place",
                        )
                    )
                    continue
                cells = cells[: len(headers)]
            elif len(cells) < len(headers):
                shape.append(
                    (
                        number,
                        f"has {len(cells)} cells but the header has {len(headers)}; "
                        "a cell may be missing or a quote unbalanced",
                    )
                )
                continue
            rows.append((number, cells))
            if progress is not None and number % 5000 == 0:
                progress("read", min(total, _position(reader, text, number, total)), total)
    except csv.Error as exc:
        raise DomainError(f"import: {_shown(path)} row {number + 1}: {exc}", field="file") from None
    if headers is None:
        raise DomainError(f"import: {_shown(path)} has no rows", field="file")
    if progress is not None:
        progress("read", total, total)
    return SheetData(path, "csv", headers, rows, encoding=encoding, delimiter=delimiter, shape_problems=shape)


def _position(reader: Any, text: str, number: int, total: int) -> int:
    # csv.reader does not say where it is in the text; the line number is close enough.
    return int(total * min(1.0, reader.line_num / max(1, text.count("\n") + 1)))


def _headers(cells: list[Cell]) -> list[str]:
    """Header names, trimmed; a blank one becomes 'column C', a repeated one 'name (2)'."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = re.sub(r"\s+", " ", "" if cell is None else str(cell)).strip()
        if name.startswith("'") and len(name) > 1 and name[1] in "=+-@'":
            name = name[1:]
        if not name:
            name = f"column {_column_letter(i)}"
        key = name.casefold()
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        out.append(name)
    return out


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# ---------------------------------------------------------------- XLSX


def _damaged(path: Path, exc: BaseException) -> DomainError:
    detail = str(exc).strip() or type(exc).__name__
    if len(detail) > 120:
        detail = detail[:117] + "..."
    return DomainError(
        f"import: {_shown(path)} is not a complete XLSX workbook (damaged or cut short: {detail}); "
        "save it again from the spreadsheet, or export it as CSV",
        field="file",
    )


def _read_xlsx(path: Path, sheet: str | None, progress: Progress | None) -> SheetData:
    import openpyxl

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _damaged(path, exc) from None
    if bad is not None:
        raise _damaged(path, ValueError(f"part {bad} is corrupt"))
    if "xl/workbook.xml" not in names:
        raise DomainError(
            f"import: {_shown(path)} is a zip archive but not an XLSX workbook; evpipe imports CSV and "
            "XLSX files (save .ods or .numbers files as .xlsx first)",
            field="file",
        )
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a broken part
        raise _damaged(path, exc) from None
    try:
        sheets = list(wb.sheetnames)
        if not sheets:
            raise DomainError(f"import: {_shown(path)} has no sheets", field="file")
        if sheet is None:
            name = sheets[0]
        else:
            matches = [s for s in sheets if s == sheet] or [
                s for s in sheets if s.casefold() == sheet.strip().casefold()
            ]
            if not matches:
                raise DomainError(
                    f"--sheet: {_shown(path)} has no sheet {sheet!r}; its sheets are {', '.join(sheets)}",
                    field="sheet",
                )
            name = matches[0]
        ws = wb[name]
        total = ws.max_row or 0
        headers: list[str] | None = None
        rows: list[tuple[int, list[Cell]]] = []
        try:
            for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
                cells = list(values)
                while cells and (cells[-1] is None or (isinstance(cells[-1], str) and not cells[-1].strip())):
                    cells.pop()
                if not cells:
                    continue
                if headers is None:
                    headers = _headers(cells)
                    continue
                if len(cells) > len(headers):
                    headers = headers + _headers([None] * len(cells))[len(headers) :]
                    headers = _headers(headers)
                cells += [None] * (len(headers) - len(cells))
                rows.append((number, cells))
                if progress is not None and number % 5000 == 0:
                    progress("read", number, max(total, number))
        except DomainError:
            raise
        except Exception as exc:
            raise _damaged(path, exc) from None
        if headers is None:
            raise DomainError(f"import: sheet {name!r} of {_shown(path)} has no rows", field="file")
        width = len(headers)
        rows = [(n, cells + [None] * (width - len(cells))) for n, cells in rows]
        if progress is not None:
            progress("read", max(total, 1), max(total, 1))
        return SheetData(path, "xlsx", headers, rows, sheet=name, sheets=sheets)
    finally:
        wb.close()
