"""Issue 15, point 4: no file can take the server down. Reading streams within limits on rows,
columns, cell size and megabytes (for a workbook: its parts' uncompressed sizes and its shared
strings, checked before parsing); over a limit, one line naming the limit and how to raise it,
and nothing written. Bombs are built here with zipfile and imported in a subprocess under a memory
cap (RLIMIT_AS) and a timeout."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import Input

from evpipe.models import open_db
from evpipe.models.errors import DomainError
from evpipe.models.import_read import NO_LIMITS, ReadLimits, read_table
from evpipe.models.importer import ImportOptions, plan_import
from tests.test_import_cli import kpi, run

CAP_MB = 600
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def _parts(zf: zipfile.ZipFile, sheet: str) -> None:
    zf.writestr(
        "[Content_Types].xml",
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    zf.writestr(
        "_rels/.rels",
        f'<?xml version="1.0"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    )
    zf.writestr(
        "xl/workbook.xml",
        f'<?xml version="1.0"?><workbook xmlns="{NS}" xmlns:r="{REL}"><sheets>'
        '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
    )
    zf.writestr(
        "xl/_rels/workbook.xml.rels",
        f'<?xml version="1.0"?><Relationships xmlns="{PKG}">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    )
    zf.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0"?><worksheet xmlns="{NS}">{sheet}</worksheet>')


HEADER_ROW = '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData>'


def strings_bomb(path: Path, count: int, item: bytes = b"<si/>") -> Path:
    """A workbook whose shared-strings part holds `count` strings, compressed to almost nothing."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        _parts(zf, HEADER_ROW)
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?><sst xmlns="{NS}"><si><t>name</t></si>'.encode())
            block = item * 100
            for _ in range(count // 100):
                part.write(block)
            part.write(b"</sst>")
    return path


def declared_bomb(path: Path, declared: int) -> Path:
    """A tiny workbook whose shared-strings part says it uncompresses to `declared` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _parts(zf, HEADER_ROW)
        zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}"><si><t>name</t></si></sst>')
        info = zf.getinfo("xl/sharedStrings.xml")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, info.header_offset + 22, declared)  # the local header
    name = info.filename.encode()
    at = data.find(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6])
    while data[at + 46 : at + 46 + len(name)] != name:
        at = data.find(b"PK\x01\x02", at + 4)
    struct.pack_into("<I", data, at + 24, declared)  # the central directory
    path.write_bytes(bytes(data))
    return path


def _made(args: tuple[str, ...]) -> None:
    """The database named by --db exists (made as `evpipe init` would): only the file is on trial."""
    if "--db" in args:
        path = Path(args[args.index("--db") + 1])
        if not path.exists():
            open_db(f"sqlite:///{path}").dispose()


def capped(*args: str, timeout: float = 30) -> tuple[int, str, float]:
    """`evpipe ARGS` in a subprocess limited to CAP_MB of address space: (exit code, stderr, s)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP_MB << 20, CAP_MB << 20))

    _made(args)

    env = {**os.environ, "EVPIPE_NOW": "2026-11-27T10:00:00"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "from evpipe.tui.cli import main; main()", *args],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return done.returncode, done.stderr, time.monotonic() - start


def assert_one_line_refusal(code: int, stderr: str, *words: str) -> None:
    assert code == 1, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    for w in words:
        assert w in stderr, stderr


# ---------------------------------------------------------------- bombs, under a memory cap


def test_fifty_million_shared_strings_are_refused_fast_in_little_memory(tmp_path):
    bomb = strings_bomb(tmp_path / "bomb.xlsx", 50_000_000)
    assert bomb.stat().st_size < 3_000_000
    code, err, took = capped("--db", str(tmp_path / "b.db"), "import", str(bomb), "--commit")
    assert_one_line_refusal(code, err, "uncompresses to 250.0 MB", "100 MB limit", "--max-mb N", "--no-limits")
    assert took < 15


def test_two_gigabytes_of_shared_strings_are_refused_before_uncompressing(tmp_path):
    bomb = declared_bomb(tmp_path / "big.xlsx", 2_000_000_000)
    code, err, took = capped("--db", str(tmp_path / "b.db"), "import", str(bomb))
    assert_one_line_refusal(code, err, "uncompresses to 2,000.0 MB", "xl/sharedStrings.xml alone")
    assert took < 15


def test_a_million_small_shared_strings_are_refused_by_count(tmp_path):
    bomb = strings_bomb(tmp_path / "many.xlsx", 1_100_000)
    code, err, _ = capped("--db", str(tmp_path / "b.db"), "import", str(bomb))
    assert_one_line_refusal(code, err, "more than 1,000,000 shared strings", "--max-rows N")
    # the count follows the rows limit: five strings a row; raised, the same workbook reads
    small = strings_bomb(tmp_path / "small.xlsx", 5_100)
    with pytest.raises(DomainError, match="more than 5,000 shared strings"):
        read_table(small, limits=ReadLimits(rows=1000))
    assert read_table(small, limits=ReadLimits(rows=2000)).headers == ["name"]


def test_a_part_that_expands_past_what_it_declares_is_damaged(tmp_path):
    path = tmp_path / "liar.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _parts(zf, HEADER_ROW)
        zf.writestr("xl/sharedStrings.xml", b"<si/>" * 2_000_000)
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("xl/sharedStrings.xml")
    struct.pack_into("<I", data, info.header_offset + 22, 1000)
    at = data.rfind(b"xl/sharedStrings.xml") - 46
    struct.pack_into("<I", data, at + 24, 1000)
    path.write_bytes(bytes(data))
    with pytest.raises(DomainError, match="is not a complete XLSX workbook"):
        read_table(path)


def test_a_sheet_far_too_long_or_wide_is_refused_fast(tmp_path):
    long = tmp_path / "long.xlsx"
    with zipfile.ZipFile(long, "w", zipfile.ZIP_DEFLATED) as zf:
        _parts(zf, '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="1048576">'
                   '<c r="A1048576" t="n"><v>1</v></c></row></sheetData>')  # fmt: skip
        zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}"><si><t>name</t></si></sst>')
    start = time.monotonic()
    with pytest.raises(DomainError, match="has more than 200,000 rows, the limit; .* --max-rows N"):
        read_table(long)
    assert time.monotonic() - start < 10
    wide = tmp_path / "wide.xlsx"
    with zipfile.ZipFile(wide, "w", zipfile.ZIP_DEFLATED) as zf:
        _parts(zf, '<dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
                   '<c r="XFD1" t="n"><v>1</v></c></row></sheetData>')  # fmt: skip
        zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}"><si><t>name</t></si></sst>')
    with pytest.raises(DomainError, match="declares 16,384 columns, more than the 500 limit; .* --max-columns N"):
        read_table(wide)


def test_dev_zero_is_refused_at_once(tmp_path):
    code, err, took = capped("--db", str(tmp_path / "z.db"), "import", "/dev/zero")
    assert_one_line_refusal(code, err, "/dev/zero is not a regular file")
    assert took < 15


def test_one_endless_line_is_refused_in_little_memory(tmp_path):
    path = tmp_path / "line.csv"
    with path.open("wb") as fh:
        for _ in range(40):
            fh.write(b"a" * 1_000_000)
    code, err, took = capped("--db", str(tmp_path / "l.db"), "import", str(path))
    assert_one_line_refusal(code, err, "has a line longer than", "--max-cell N")
    assert took < 20


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("wb") as fh:
        fh.write(b"name,value\n")
        fh.seek(150_000_000)
        fh.write(b"x,1\n")  # sparse: 150 MB on paper, nothing on disk
    code, err, took = capped("--db", str(tmp_path / "s.db"), "import", str(path), "--commit")
    assert_one_line_refusal(code, err, "big.csv is 150.0 MB, more than the 100 MB limit", "--max-mb N")
    assert took < 15


# ---------------------------------------------------------------- each limit, and raising it


def csv_file(path: Path, rows: int = 3, columns: int = 3, cell: str = "x") -> Path:
    header = ["name", "value", "stage"] + [f"c{i}" for i in range(columns - 3)]
    lines = [",".join(header)]
    lines += [",".join([f"P{i}", "1", "Suspect", *[cell] * (columns - 3)]) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "kind,make,option,message",
    [
        ("rows", lambda p: csv_file(p, rows=11), ("--max-rows", "10"), "has more than 10 rows, the limit"),
        ("columns", lambda p: csv_file(p, columns=12), ("--max-columns", "10"), "has 12 columns, more than the 10"),
        (
            "cell",
            lambda p: csv_file(p, columns=4, cell="y" * 40_000),
            None,
            "row 2 has a cell longer than the 32,767-character limit",
        ),
        (
            "cell",
            lambda p: csv_file(p, columns=4, cell="y" * 200_000),
            None,
            "row 2 has a cell longer than the 32,767-character limit",
        ),
        (
            "mb",
            lambda p: csv_file(p, rows=3000, columns=4, cell="y" * 400),
            ("--max-mb", "1"),
            "MB, more than the 1 MB limit",
        ),
    ],
)
def test_over_a_limit_one_line_and_nothing_written(tmp_path, kind, make, option, message):
    path = make(tmp_path / f"{kind}.csv")
    db = tmp_path / "l.db"
    result = run(db, "import", path, "--commit", *(option or ()), code=1)
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "if you trust the file, raise the limit with --" in result.stderr
    assert kpi(db)["count"] == 0
    raised = {"rows": ("--max-rows", "20"), "columns": ("--max-columns", "20"), "mb": ("--max-mb", "5")}
    again = raised.get(kind, ("--max-cell", "300000"))
    # raised (or lifted) for a file the user trusts, it reads; the rows are then checked as usual
    assert f"{path.name}: CSV, UTF-8" in run(db, "import", path, *again).stdout
    assert f"{path.name}: CSV, UTF-8" in run(db, "import", path, "--no-limits").stdout
    if kind != "cell":  # (a custom field keeps at most 5,000 characters: that row is a problem)
        assert "imported" in run(db, "import", path, "--commit", *again).stdout


def test_limits_default_and_can_be_lifted():
    assert ReadLimits() == ReadLimits(rows=200_000, columns=500, cell_chars=32_767, megabytes=100)
    assert NO_LIMITS.max_bytes is None and NO_LIMITS.shared_strings is None


def test_csv_reading_streams(tmp_path, monkeypatch):
    # The file is read in chunks, never whole: neither read_bytes nor an unbounded read().
    path = csv_file(tmp_path / "s.csv", rows=5000)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read the whole file"))
    assert len(read_table(path).rows) == 5000


async def test_screen_takes_the_limit_options(engine, tmp_path):
    from apphelpers import settle
    from test_import_screen import open_import

    from evpipe.tui.app import EvpipeApp

    path = csv_file(tmp_path / "r.csv", rows=11)
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_import(app, pilot, path, "--max-rows 10")
        status = str(screen.query_one("#import-status").render())
        assert "has more than 10 rows, the limit" in status and "--max-rows N" in status
        assert screen.plan is None
        screen.query_one("#import-options", Input).value = "--max-rows 11"
        screen.query_one("#import-options", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.plan is not None and len(screen.plan.records) == 11


# ---------------------------------------------------------------- fuzz: never a traceback


PREFIXES = [b"", b"PK\x03\x04", b"\xef\xbb\xbf", b"\xff\xfe", b"name,value,stage\n", b"PK\x05\x06"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=3000), tiny=st.booleans())
def test_random_bytes_give_a_plan_or_a_domain_error(engine, tmp_path, prefix, body, tiny):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(prefix + body)
    limits = ReadLimits(rows=5, columns=5, cell_chars=50, megabytes=1) if tiny else ReadLimits()
    try:
        plan = plan_import(engine, path, ImportOptions(limits=limits), who="fuzz")
    except DomainError as exc:
        assert "\n" not in str(exc)
    else:
        assert plan.rows_read >= 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=400), encoding=st.sampled_from(["utf-8", "utf-16", "cp1252", "mac_roman", "shift_jis"]))
def test_random_text_in_any_encoding_gives_a_plan_or_a_domain_error(engine, tmp_path, text, encoding):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(("name,value\n" + text).encode(encoding, errors="replace"))
    try:
        plan_import(engine, path, who="fuzz")
    except DomainError as exc:
        assert "\n" not in str(exc)


def test_json_preview_refusal_is_one_line_too(tmp_path):
    path = csv_file(tmp_path / "j.csv", rows=11)
    result = run(tmp_path / "j.db", "import", path, "--json", "--max-rows", "10", code=1)
    assert result.stdout == "" and result.stderr.count("\n") == 1
    ok = json.loads(run(tmp_path / "j.db", "import", path, "--json").stdout)
    assert ok["encoding"]["name"] == "UTF-8" and ok["rows"] == 11
