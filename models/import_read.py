"""Reading a spreadsheet for import: CSV (any common delimiter and encoding, with or without a BOM)
or XLSX (openpyxl, read-only, real dates and numbers).

The file's kind is told by its first bytes, not its name, so a PNG renamed `.csv` or a cut-short
workbook gets a clear message instead of a page of garbage. Row numbers are the ones a spreadsheet
shows: the header is row 1 (or the row it sits on, when blank rows come first).

Files are read as streams within `ReadLimits` (rows, columns, cell size, megabytes; for a workbook
the uncompressed size of its parts and the number of its shared strings, checked before parsing),
so that no file can take the server's memory or minutes of its CPU: over a limit, one DomainError
names the limit and the option that raises it. A CSV that is not UTF-8 has its encoding detected
(charset-normalizer, then a check of which Western code page reads as words) unless given.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zlib import error as zlib_error

from .errors import DomainError
from .import_fields import numbered_name

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
#: What a file's name says it is (its content decides: `read_table`).
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"


@dataclass(frozen=True)
class ReadLimits:
    """What a file may hold before it is refused (None: no limit). The defaults take any rep's
    pipeline with room to spare and keep a preview within a few hundred MB of memory."""

    rows: int | None = 200_000  # rows below the header, as the spreadsheet numbers them
    columns: int | None = 500
    cell_chars: int | None = 32_767  # Excel's own limit for one cell
    megabytes: int | None = 100  # the file (CSV), or its parts uncompressed (XLSX)

    @property
    def max_bytes(self) -> int | None:
        return None if self.megabytes is None else self.megabytes * 1_000_000

    @property
    def shared_strings(self) -> int | None:
        """A workbook's shared-strings table: at most five strings for each row allowed."""
        return None if self.rows is None else max(self.rows, 1) * 5


NO_LIMITS = ReadLimits(rows=None, columns=None, cell_chars=None, megabytes=None)
_RAISE = {
    "rows": "--max-rows N",
    "columns": "--max-columns N",
    "cell_chars": "--max-cell N",
    "megabytes": "--max-mb N",
}


def over_limit(path: Path, what: str, limit: str) -> DomainError:
    """The one line saying which limit a file is over and how to raise it."""
    return DomainError(
        f"import: {_shown(path)} {what}; if you trust the file, raise the limit with {_RAISE[limit]} (or --no-limits)",
        field="file",
    )


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
    #: how the encoding was chosen: "BOM", "UTF-8", "detected" or "--encoding" (CSV only)
    encoding_how: str | None = None
    #: a few cells with letters outside ASCII, as read (what a wrong encoding would garble)
    sample: list[str] = field(default_factory=list)

    @property
    def encoding_text(self) -> str:
        """How the text was read, with a sample to check it by: 'Text: Mac Roman (detected ...);
        reads as: Zoë Müller'. Empty for a workbook."""
        if not self.encoding:
            return ""
        how = {
            "BOM": " (from its byte-order mark)",
            "detected": " (detected: the file is not UTF-8; if the sample reads wrong, give --encoding NAME)",
            "--encoding": " (as you said with --encoding)",
        }.get(self.encoding_how or "", "")
        sample = "; reads as: " + ", ".join(self.sample) if self.sample else "; every cell is plain ASCII"
        return f"Text: {self.encoding}{how}{sample}"

    @property
    def described(self) -> str:
        if self.kind == "xlsx":
            return f"XLSX workbook{self._misnamed}, sheet {self.sheet!r}"
        names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}
        return (
            f"CSV{self._misnamed}, {self.encoding}, {names.get(self.delimiter or ',', repr(self.delimiter))}-separated"
        )

    @property
    def _misnamed(self) -> str:
        """' (read by its content: its name ends .csv)' for a file whose name says another kind."""
        suffix = self.path.suffix.casefold()
        if suffix in _SUFFIXES and _SUFFIXES[suffix] != self.kind:
            return f" (read by its content: its name ends {self.path.suffix})"
        return ""


def _shown(path: Path) -> str:
    return path.name


def read_table(
    path: str | Path,
    *,
    sheet: str | None = None,
    progress: Progress | None = None,
    encoding: str | None = None,
    limits: ReadLimits | None = None,
) -> SheetData:
    """Read `path` (CSV or XLSX, told by its content). Raises DomainError with a clear message when
    the file is missing, empty, not a spreadsheet, damaged, or over a limit."""
    limits = limits or ReadLimits()
    path = Path(path)
    try:
        return _read_table(path, sheet, progress, encoding, limits)
    except MemoryError:
        raise DomainError(
            f"import: {_shown(path)} is too large to read in the memory available; split it into smaller files",
            field="file",
        ) from None


def _read_table(
    path: Path, sheet: str | None, progress: Progress | None, encoding: str | None, limits: ReadLimits
) -> SheetData:
    if not path.exists():
        raise DomainError(f"import: {path} does not exist", field="file")
    if path.is_dir():
        raise DomainError(f"import: {path} is a folder, not a file", field="file")
    _regular_size(path, limits)
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
        if encoding is not None:
            raise DomainError(
                f"--encoding: {_shown(path)} is an XLSX workbook, whose text is always Unicode; leave --encoding out",
                field="encoding",
            )
        return _read_xlsx(path, sheet, progress, limits)
    if sheet is not None:
        raise DomainError(f"--sheet: {_shown(path)} is a CSV file, which has no sheets", field="sheet")
    return _read_csv(path, progress, encoding, limits)


# ---------------------------------------------------------------- CSV

_CHUNK = 1 << 20
_HEAD_CHARS = 1 << 16
#: How evpipe names the codecs a CSV is read with (by Python's own name for each).
_CODEC_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32": "UTF-32",
    "cp1252": "Windows-1252",
    "iso8859-1": "Latin-1",
    "mac-roman": "Mac Roman",
    "cp932": "Shift-JIS (Windows)",
    "shift_jis": "Shift-JIS",
    "euc_jp": "EUC-JP",
    "gb18030": "GB18030",
    "gbk": "GBK",
    "big5": "Big5",
    "cp949": "Korean (cp949)",
    "euc_kr": "EUC-KR",
    "cp1250": "Windows-1250",
    "cp1251": "Windows-1251",
}
#: Western code pages tried (in this order of preference) besides what the detector proposes: a
#: file both read as words is taken as the first.
_WESTERN = ("cp1252", "mac-roman")


def codec_label(codec: str) -> str:
    name = codecs.lookup(codec).name
    return _CODEC_NAMES.get(name, name)


def check_encoding(name: str) -> str:
    """Python's name for the text encoding `name` (DomainError when there is no such encoding)."""
    try:
        info = codecs.lookup(name.strip())
    except (LookupError, ValueError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise DomainError(
            f"--encoding: {name!r} is not a text encoding evpipe knows; try utf-8, cp1252, mac_roman, "
            "latin-1, shift_jis or utf-16",
            field="encoding",
        )
    return info.name


def _binary(path: Path) -> DomainError:
    return DomainError(
        f"import: {_shown(path)} is binary data, not a spreadsheet; evpipe imports CSV and XLSX files",
        field="file",
    )


def _regular_size(path: Path, limits: ReadLimits) -> int:
    """The file's size; refuses a device or pipe (`/dev/zero` would never end) and a file over the
    size limit, before reading a byte more."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise DomainError(
            f"import: {path} is not a regular file (a device, a pipe or a socket); save the data to a file and "
            "import that",
            field="file",
        )
    cap = limits.max_bytes
    if cap is not None and st.st_size > cap:
        raise over_limit(
            path, f"is {st.st_size / 1e6:,.1f} MB, more than the {limits.megabytes:,} MB limit", "megabytes"
        )
    return st.st_size


@dataclass
class _Scan:
    """What one pass over a file's bytes found."""

    #: None when the file is valid UTF-8, else a sample (its start and the lines around the first
    #: byte that is not UTF-8)
    not_utf8: bytes | None = None
    #: the longest run of bytes without a line break that spans two chunks (runs within one chunk
    #: are shorter than _CHUNK)
    longest_run: int = 0
    #: every byte is ASCII (no cell needs looking at for the encoding's sample)
    ascii: bool = True


def _scan(raw: IO[bytes], path: Path, limits: ReadLimits, check_utf8: bool = True) -> _Scan:
    """Read the whole file once, in chunks: count its bytes against the size limit, find its
    longest line break-free run, and check it is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    cap = limits.max_bytes
    found = _Scan()
    first = b""
    total = run = 0
    while chunk := raw.read(_CHUNK):
        if not first:
            first = chunk
        total += len(chunk)
        if cap is not None and total > cap:
            raise over_limit(path, f"is more than the {limits.megabytes:,} MB limit", "megabytes")
        if found.ascii and not chunk.isascii():
            found.ascii = False
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last < 0:
            run += len(chunk)
        else:
            breaks = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
            found.longest_run = max(found.longest_run, run + min(breaks))
            run = len(chunk) - last - 1
        if check_utf8 and found.not_utf8 is None:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                start = max(0, chunk.rfind(b"\n", 0, max(0, exc.start - 32_768)) + 1)
                found.not_utf8 = first[:_HEAD_CHARS] + b"\n" + chunk[start : exc.start + 32_768]
    found.longest_run = max(found.longest_run, run)
    if check_utf8 and found.not_utf8 is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            found.not_utf8 = first[:_HEAD_CHARS] + b"\n" + first[-32_768:]
    return found


def _implausible(text: str) -> int:
    """How many signs of a wrong code page the text shows: control characters, an opening quote or a
    symbol stuck to a letter ("Zo‘"), a capital inside a lower-case word ("MŸller"), a letter of
    another script inside a Latin word."""
    bad = 0
    prev = " "
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isupper() and not prev.isascii() and prev.islower():
                bad += 1  # "éR": a capital inside a word
            prev = ch
            continue
        cat = unicodedata.category(ch)
        nxt = text[i + 1] if i + 1 < len(text) else " "
        stuck = prev.isalpha()
        if cat[0] == "C":
            bad += 3
        elif (
            (cat in ("Pi", "Ps") and stuck)
            or (cat[0] == "P" and cat != "Pf" and stuck and nxt.isalpha())
            or ((cat[0] == "S" or ch in "§¶†‡•‰") and (nxt.isalpha() or (stuck and ch not in "™®©°")))
        ):
            bad += 2  # an opening quote, a dash or a symbol stuck to letters: "Zo‘", "Nœ–ez", "a€"
        elif (
            (cat == "Lu" and (prev.islower() or (prev.isupper() and nxt.islower())))
            or ("\u0100" <= ch <= "\u024f" and ch not in "œŒ")
            or (
                cat[0] == "L"
                and not ("\u00c0" <= ch <= "\u024f")
                and ((prev.isascii() and stuck) or (nxt.isascii() and nxt.isalpha()))
            )
        ):
            bad += 1  # a capital inside a word, a rarer Latin letter (š, ź), another script in a Latin word
        prev = ch
    return bad


def detect_encoding(sample: bytes) -> str:
    """The encoding of text that is not UTF-8: charset-normalizer's choice, checked against the
    Western code pages (short Latin text fools any detector: Mac Roman "Zoë" reads as "Zo‘" in
    Windows-1252, which has no letter there); Latin-1 when nothing fits."""
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    found = [m.encoding for m in from_bytes(sample[: 1 << 18])]
    multi = [e for e in found[:1] if is_multi_byte_encoding(e)]
    single = [e for e in found[:4] if not is_multi_byte_encoding(e)]
    order = list(dict.fromkeys(codecs.lookup(e).name for e in [*_WESTERN, *multi, *single, "latin-1"]))
    best, best_bad = "latin-1", None
    for codec in order:
        try:
            text = codecs.getincrementaldecoder(codec)().decode(sample)
        except (UnicodeDecodeError, LookupError):
            continue
        bad = _implausible(text)
        if best_bad is None or bad < best_bad:
            best, best_bad = codec, bad
    return best


def _choose_encoding(
    path: Path, raw: IO[bytes], head: bytes, given: str | None, limits: ReadLimits
) -> tuple[str, str, _Scan]:
    """(codec, how it was chosen, the scan). Reads the file once to count its bytes and check its UTF-8."""
    if given is not None:
        codec = check_encoding(given)
        return codec, "--encoding", _scan(raw, path, limits, check_utf8=False)
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if head.startswith(bom):
            return codec, "BOM", _scan(raw, path, limits, check_utf8=False)
    sample = head[:4096]
    if b"\x00" in sample:
        # UTF-16 without a BOM shows as every other byte zero.
        even = sample[0::2].count(0)
        odd = sample[1::2].count(0)
        half = len(sample) // 2
        for zeros, codec in ((odd, "utf-16-le"), (even, "utf-16-be")):
            if half and zeros >= half * 0.4 and min(odd, even) <= half * 0.05:
                return codec, "UTF-16", _scan(raw, path, limits, check_utf8=False)
        raise _binary(path)
    scan = _scan(raw, path, limits)
    if scan.not_utf8 is None:
        return "utf-8", "UTF-8", scan
    return detect_encoding(scan.not_utf8), "detected", scan


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


class _LineTooLong(Exception):
    pass


def _lines(text: IO[str], longest: int | None) -> Iterator[str]:
    """The file's lines, none longer than `longest` characters (a file that is one endless line
    stops here, not in memory)."""
    if longest is None:
        yield from text
        return
    while line := text.readline(longest + 1):
        if len(line) > longest:
            raise _LineTooLong
        yield line


def _bad_line(raw: IO[bytes], codec: str) -> int:
    """The line (counted from 1) holding the first byte that `codec` cannot read."""
    raw.seek(0)
    decoder = codecs.getincrementaldecoder(codec)()
    lines = 1
    while chunk := raw.read(_CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return lines + chunk.count(b"\n", 0, exc.start)
        except UnicodeError:  # (the codec refuses the text as a whole: UTF-16 with no BOM)
            return lines
        lines += chunk.count(b"\n")
    return lines


def _not_text(path: Path, encoding: str, line: int) -> DomainError:
    wide = encoding.upper() in ("UTF-16", "UTF-32")  # (read only from a file that starts with its byte order)
    hint = f"{encoding.lower()}-le or {encoding.lower()}-be for one with no byte-order mark" if wide else "cp1252"
    return DomainError(
        f"import: {_shown(path)} is not {encoding} text (line {line} cannot be read as it); give the "
        f"file's encoding with --encoding NAME, e.g. --encoding {hint}",
        field="file",
    )


def _read_csv(path: Path, progress: Progress | None, given: str | None, limits: ReadLimits) -> SheetData:
    size = _regular_size(path, limits)
    with path.open("rb") as raw:
        head = raw.read(_HEAD_CHARS)
        raw.seek(0)
        codec, how, scan = _choose_encoding(path, raw, head, given, limits)
        raw.seek(0)
        try:
            head_text = codecs.getincrementaldecoder(codec)(errors="replace").decode(head)
        except UnicodeError:  # (not a decoding error: UTF-16 with no BOM, or an encoding like idna)
            raise _not_text(path, codec_label(codec), 1) from None
        controls = sum(1 for ch in head_text[:4096] if ord(ch) < 32 and ch not in "\t\r\n\f")
        if controls > max(2, len(head_text[:4096]) // 100):
            raise _binary(path)
        lines = head_text.splitlines()
        delimiter = _sniff_delimiter("\n".join(lines[:-1] if len(head) == _HEAD_CHARS and len(lines) > 1 else lines))
        text = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
        label = codec_label(codec)
        return _parse_csv(path, text, raw, size, progress, limits, (codec, label), how, delimiter, scan)


# Longer than 80 lines on purpose: the row loop runs once per row of files of 100,000 rows and more,
# with every limit checked inside it; split into helpers it costs a call per row (import_speed.py).
def _parse_csv(
    path: Path,
    text: IO[str],
    raw: IO[bytes],
    size: int,
    progress: Progress | None,
    limits: ReadLimits,
    codec_and_label: tuple[str, str],
    how: str,
    delimiter: str,
    scan: _Scan,
) -> SheetData:
    codec, encoding = codec_and_label
    max_cell, max_rows, max_cols = limits.cell_chars, limits.rows, limits.columns
    longest = None
    if max_cell is not None and max_cols is not None:
        longest = (max_cols + 1) * (max_cell + 3)
    if limits.max_bytes is not None:
        longest = min(longest or limits.max_bytes, limits.max_bytes)
    # The csv module refuses a longer cell itself (at no cost per row); its limit is global, so it
    # is set for this read and put back.
    field_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 2 if max_cell is None else max_cell + 1)
    # Iterating the file line by line in C is fast; a line is read whole, so that is safe when the
    # scan found no run of bytes (at least one a character) longer than a line may be. Otherwise, and
    # for UTF-16 and UTF-32 (whose other characters can hold a line-feed byte), lines are read with
    # a bound.
    wide = codec.startswith(("utf-16", "utf-32"))
    if longest is None or (not wide and longest >= _CHUNK and scan.longest_run <= longest):
        lines: Iterator[str] = iter(text)
    else:
        lines = _lines(text, longest)
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    headers: list[str] | None = None
    header_at = 0
    rows: list[tuple[int, list[Cell]]] = []
    shape: list[tuple[int, str]] = []
    sample: list[str] = []
    number = 0
    try:
        for cells in reader:
            number += 1
            if not any(c.strip() for c in cells):
                continue
            if headers is None:
                if max_cols is not None and len(cells) > max_cols:
                    raise over_limit(path, f"has {len(cells):,} columns, more than the {max_cols:,} limit", "columns")
                headers = _headers(cells)
                header_at = number
                continue
            if max_rows is not None and number - header_at > max_rows:
                raise over_limit(path, f"has more than {max_rows:,} rows, the limit", "rows")
            if len(sample) < 3 and not scan.ascii and not all(map(str.isascii, cells)):
                sample.extend(c.strip()[:60] for c in cells if not c.isascii() and c.strip()[:60] not in sample)
                del sample[3:]
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
                progress("read", min(size, raw.tell()), size)
    except _LineTooLong:
        raise over_limit(
            path, f"has a line longer than {longest or 0:,} characters (row {number + 1})", "cell_chars"
        ) from None
    except UnicodeError:  # (UnicodeDecodeError, and a codec's refusal of the text as a whole)
        raise _not_text(path, encoding, _bad_line(raw, codec)) from None
    except csv.Error as exc:
        if "field limit" in str(exc) and max_cell is not None:
            raise over_limit(
                path, f"row {number + 1} has a cell longer than the {max_cell:,}-character limit", "cell_chars"
            ) from None
        raise DomainError(f"import: {_shown(path)} row {number + 1}: {exc}", field="file") from None
    finally:
        csv.field_size_limit(field_limit)
    if headers is None:
        raise DomainError(f"import: {_shown(path)} has no rows", field="file")
    if progress is not None:
        progress("read", size, size)
    return SheetData(
        path,
        "csv",
        headers,
        rows,
        encoding=encoding,
        delimiter=delimiter,
        shape_problems=shape,
        encoding_how=how,
        sample=sample,
    )


def _headers(cells: list[Cell]) -> list[str]:
    """Header names, trimmed; a blank one becomes 'column C', a repeated one 'name (2)' (or the
    next number no other header of the file has: 'notes', 'notes', 'notes (2)' give 'notes',
    'notes (3)', 'notes (2)')."""
    names: list[str] = []
    for i, cell in enumerate(cells):
        name = re.sub(r"\s+", " ", "" if cell is None else str(cell)).strip()
        if name.startswith("'") and len(name) > 1 and name[1] in "=+-@'":
            name = name[1:]
        names.append(name or f"column {_column_letter(i)}")
    given = {name.casefold() for name in names}
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if name.casefold() in seen:  # a repeat: numbered past every name the file gives
            name = numbered_name(name, seen | given)
        seen.add(name.casefold())
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


_SI = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,15}:)?si[\s/>]")


def _count_shared_strings(zf: zipfile.ZipFile, name: str, most: int) -> int:
    """How many strings the shared-strings part holds, counted on the compressed stream without
    parsing it (stops as soon as there are more than `most`)."""
    count = 0
    tail = b""
    with zf.open(name) as part:
        while chunk := part.read(_CHUNK):
            buf = tail + chunk
            cut = buf.rfind(b"<")
            if cut < 0:
                cut = len(buf)
            count += len(_SI.findall(buf, 0, cut))
            tail = buf[cut:]
            if len(tail) > 64:  # a tag starting there is complete already
                count += len(_SI.findall(tail))
                tail = b""
            if count > most:
                return count
    return count + len(_SI.findall(tail))


def _check_parts(path: Path, zf: zipfile.ZipFile, limits: ReadLimits) -> None:
    """The workbook's size as its parts say, before any is uncompressed; then the number of shared
    strings (openpyxl keeps every one in memory). Python's zipfile never returns more bytes than a
    part declares, so a part cannot lie its way past this."""
    infos = zf.infolist()
    cap = limits.max_bytes
    if cap is not None:
        total = sum(i.file_size for i in infos)
        if total > cap:
            biggest = max(infos, key=lambda i: i.file_size)
            raise over_limit(
                path,
                f"uncompresses to {total / 1e6:,.1f} MB ({biggest.filename} alone {biggest.file_size / 1e6:,.1f} MB), "
                f"more than the {limits.megabytes:,} MB limit",
                "megabytes",
            )
    most = limits.shared_strings
    if most is None:
        return
    for info in infos:
        if info.filename.casefold().endswith("sharedstrings.xml"):
            count = _count_shared_strings(zf, info.filename, most)
            if count > most:
                raise over_limit(
                    path,
                    f"has more than {most:,} shared strings (five for each of the {limits.rows:,} rows allowed)",
                    "rows",
                )


#: An XLSX has a few dozen parts; more than this is no spreadsheet (and each costs memory to list).
MAX_PARTS = 10_000


def _count_parts(path: Path) -> int | None:
    """The number of parts the zip's end record declares, read before zipfile lists them all."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65_557))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    return int.from_bytes(tail[at + 10 : at + 12], "little")


def load_workbook(fh: IO[bytes]) -> Any:
    """openpyxl's read-only workbook (cells as values) read from the open file `fh`: a workbook is
    told by its content, while openpyxl, given a path, refuses any name not ending .xlsx or .xlsm
    (a workbook saved as `pipeline.csv` was called damaged). `fh` stays open until the workbook is
    closed."""
    import openpyxl

    return openpyxl.load_workbook(fh, read_only=True, data_only=True)


# Longer than 80 lines on purpose, like _parse_csv: one pass over a sheet's rows with the limits
# checked inside the loop.
def _read_xlsx(path: Path, sheet: str | None, progress: Progress | None, limits: ReadLimits) -> SheetData:
    parts = _count_parts(path)
    if parts is not None and parts > MAX_PARTS and limits.max_bytes is not None:
        raise over_limit(path, f"is a zip of {parts:,} parts, not a spreadsheet", "megabytes")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            _check_parts(path, zf, limits)
            bad = zf.testzip()
    except DomainError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib_error) as exc:
        raise _damaged(path, exc) from None
    if bad is not None:
        raise _damaged(path, ValueError(f"part {bad} is corrupt"))
    if "xl/workbook.xml" not in names:
        raise DomainError(
            f"import: {_shown(path)} is a zip archive but not an XLSX workbook; evpipe imports CSV and "
            "XLSX files (save .ods or .numbers files as .xlsx first)",
            field="file",
        )
    fh = path.open("rb")
    try:
        wb = load_workbook(fh)
    except Exception as exc:  # openpyxl raises many kinds on a broken part
        fh.close()
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
        declared = getattr(ws, "max_column", None)
        if limits.columns is not None and isinstance(declared, int) and declared > limits.columns:
            raise over_limit(
                path, f"sheet {name!r} declares {declared:,} columns, more than the {limits.columns:,} limit", "columns"
            )
        headers: list[str] | None = None
        header_at = 0
        rows: list[tuple[int, list[Cell]]] = []
        max_cell, max_rows, max_cols = limits.cell_chars, limits.rows, limits.columns
        try:
            # openpyxl pads each row to the declared width (checked above) or to its last cell.
            for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
                if max_rows is not None and headers is not None and number - header_at > max_rows:
                    raise over_limit(path, f"has more than {max_rows:,} rows, the limit", "rows")
                if values.count(None) == len(values):
                    continue  # a blank row (fast: a sheet may claim a million of them)
                cells = list(values)
                while cells and (cells[-1] is None or (isinstance(cells[-1], str) and not cells[-1].strip())):
                    cells.pop()
                if not cells:
                    continue
                if max_cols is not None and len(cells) > max_cols:
                    raise over_limit(path, f"row {number} has more than {max_cols:,} columns, the limit", "columns")
                if max_cell is not None:
                    longest = max((len(c) for c in cells if isinstance(c, str)), default=0)
                    if longest > max_cell:
                        raise over_limit(
                            path,
                            f"row {number} has a cell of {longest:,} characters, more than the {max_cell:,} limit",
                            "cell_chars",
                        )
                if headers is None:
                    headers = _headers(cells)
                    header_at = number
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
        except MemoryError:
            raise
        except Exception as exc:
            raise _damaged(path, exc) from None
        if headers is None:
            others = [s for s in sheets if s != name]
            hint = f"; its other sheets are {', '.join(others)}: choose one with --sheet NAME" if others else ""
            raise DomainError(f"import: sheet {name!r} of {_shown(path)} has no rows{hint}", field="file")
        width = len(headers)
        rows = [(n, cells + [None] * (width - len(cells))) for n, cells in rows]
        if progress is not None:
            progress("read", max(total, 1), max(total, 1))
        return SheetData(path, "xlsx", headers, rows, sheet=name, sheets=sheets)
    finally:
        wb.close()
        fh.close()
