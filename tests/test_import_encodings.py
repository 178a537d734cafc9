"""Issue 15, point 5: a CSV that is not UTF-8 has its encoding detected (charset-normalizer, checked
against the Western code pages), shown in the preview with a sample, and `--encoding` overrides it.
The fixtures are written by each test from Python strings, in the encoding under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import Input

from evpipe.models.errors import DomainError
from evpipe.models.import_read import detect_encoding, read_table
from evpipe.models.importer import ImportOptions, plan_import
from tests.test_import_cli import run

HEADER = "name,company,value,stage\n"


def encoded(tmp_path: Path, text: str, encoding: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    "encoding,names,label",
    [
        ("mac_roman", ["Zoë Müller", "José Núñez"], "Mac Roman"),
        ("mac_roman", ["Zoë Müller"], "Mac Roman"),
        ("shift_jis", ["山田太郎", "鈴木花子"], "Shift-JIS"),
        ("shift_jis", ["山田太郎"], "Shift-JIS"),
        ("cp1252", ["Zoë Müller", "Café “Crème”"], "Windows-1252"),
        ("utf-8", ["Zoë Müller", "山田太郎"], "UTF-8"),
    ],
)
def test_names_come_out_right_and_the_encoding_is_shown(engine, tmp_path, encoding, names, label):
    text = HEADER + "".join(f"{n},Acme,100,Suspect\n" for n in names)
    path = encoded(tmp_path, text, encoding)
    plan = plan_import(engine, path, who="tester")
    assert [r.name for r in plan.records] == names
    sheet = plan.sheet_data
    assert sheet.encoding is not None and sheet.encoding.startswith(label)
    assert sheet.encoding_how == ("UTF-8" if encoding == "utf-8" else "detected")
    assert sheet.sample[0] == names[0]
    assert f"Text: {sheet.encoding}" in sheet.encoding_text and names[0] in sheet.encoding_text


def test_cli_preview_and_json_show_the_encoding_and_a_sample(tmp_path):
    path = encoded(tmp_path, HEADER + "Zoë Müller,Acme,100,Suspect\n", "mac_roman")
    out = run(tmp_path / "e.db", "import", path).stdout
    assert "Text: Mac Roman (detected" in out and "reads as: Zoë Müller" in out
    data = json.loads(run(tmp_path / "e.db", "import", path, "--json").stdout)
    assert data["encoding"]["name"] == "Mac Roman" and data["encoding"]["how"] == "detected"
    assert data["encoding"]["sample"] == ["Zoë Müller"]
    assert data["preview"][0]["name"] == "Zoë Müller"


def test_encoding_option_overrides_the_detection(engine, tmp_path):
    path = encoded(tmp_path, HEADER + "Zoë Müller,Acme,100,Suspect\n", "mac_roman")
    plan = plan_import(engine, path, ImportOptions(encoding="cp1252"), who="tester")
    assert plan.records[0].name == "Zo‘ MŸller"  # as asked, visibly wrong in the sample
    assert plan.sheet_data.encoding_how == "--encoding" and plan.sheet_data.sample == ["Zo‘ MŸller"]
    out = run(tmp_path / "e.db", "import", path, "--encoding", "mac_roman").stdout
    assert "Text: Mac Roman (as you said with --encoding); reads as: Zoë Müller" in out


def test_an_unknown_encoding_is_one_clear_line(tmp_path):
    path = encoded(tmp_path, HEADER + "A,Acme,1,Suspect\n", "utf-8")
    for name in ("klingon", "base64", "rot13"):
        result = run(tmp_path / "e.db", "import", path, "--encoding", name, code=1)
        assert result.stderr.count("\n") == 1
        assert f"--encoding: '{name}' is not a text encoding evpipe knows" in result.stderr


def test_a_file_that_does_not_fit_the_given_encoding_is_refused(engine, tmp_path):
    path = encoded(tmp_path, HEADER + "山田太郎,Acme,1,Suspect\n", "shift_jis")
    with pytest.raises(DomainError, match=r"is not UTF-8 text \(line 2 cannot be read as it\); give the file's"):
        plan_import(engine, path, ImportOptions(encoding="utf-8"), who="tester")


def test_encoding_is_refused_for_a_workbook(engine, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["name"])
    wb.save(tmp_path / "b.xlsx")
    with pytest.raises(DomainError, match="whose text is always Unicode"):
        read_table(tmp_path / "b.xlsx", encoding="cp1252")


WORDS = [
    "Zoë", "Müller", "José", "Núñez", "François", "Ångström", "Søren", "Björk", "Gonçalves", "Weiß",
    "Crème", "Brûlée", "Sébastien", "Ægir", "Øresund", "Jürgen", "Piñata", "Renée", "Noël", "Smith",
    "Acme", "Events", "Straße", "Îles", "Café",
]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(
        st.lists(st.sampled_from(WORDS), min_size=2, max_size=3).map(" ".join).filter(lambda s: not s.isascii()),
        min_size=1,
        max_size=5,
    ),
    encoding=st.sampled_from(["mac_roman", "cp1252", "latin-1", "utf-8", "utf-16"]),
)
def test_western_names_round_trip_in_any_common_encoding(tmp_path, names, encoding):
    # Words in Western letters read back as written whichever common encoding the file used.
    text = "name,value\n" + "".join(f"{n},1\n" for n in names)
    path = encoded(tmp_path, text, encoding, "w.csv")
    sheet = read_table(path)
    got = [cells[0] for _, cells in sheet.rows]
    if got != names:
        # A few short texts read as words in both Mac Roman and Windows-1252 ('Smith Îles' is also
        # 'Smith ëles'): the detector then takes Windows-1252, the preview shows the sample it read,
        # and --encoding settles it. Nothing else may read wrongly.
        assert encoding == "mac_roman" and sheet.encoding == "Windows-1252", (encoding, sheet.encoding, got)
        sheet = read_table(path, encoding="mac_roman")
        assert [cells[0] for _, cells in sheet.rows] == names


def test_detector_prefers_words_to_symbols():
    assert detect_encoding("Zoë Müller".encode("mac_roman")) == "mac-roman"
    assert detect_encoding("Café Crème".encode("cp1252")) == "cp1252"
    assert detect_encoding("山田太郎,株式会社".encode("shift_jis")) in ("cp932", "shift_jis")


async def test_screen_shows_the_encoding_and_takes_encoding_option(engine, tmp_path):
    from test_import_screen import open_import

    from evpipe.tui.app import EvpipeApp

    path = encoded(tmp_path, HEADER + "Zoë Müller,Acme,100,Suspect\n", "mac_roman")
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_import(app, pilot, path)
        summary = str(screen.query_one("#import-summary").render())
        assert "Text: Mac Roman (detected" in summary and "reads as: Zoë Müller" in summary
        screen.query_one("#import-options", Input).value = "--encoding cp1252"
        screen.query_one("#import-options", Input).focus()
        await pilot.press("enter")
        from apphelpers import settle

        await settle(app, pilot)
        assert screen.plan.records[0].name == "Zo‘ MŸller"
        screen.query_one("#import-options", Input).value = "--encoding klingon"
        await pilot.press("enter")
        await settle(app, pilot)
        assert "--encoding: 'klingon' is not a text encoding" in str(screen.query_one("#import-status").render())
