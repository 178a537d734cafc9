"""`evpipe import / export / backup / dump / restore`, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_import import CRM

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent


def run(db: Path, *args: str, code: int = 0):
    from evpipe.tui.cli import main

    if not Path(db).exists():  # a named database is made on purpose first, as a user must (issue 9)
        CliRunner().invoke(main, ["init", str(db)], catch_exceptions=False)
    result = CliRunner().invoke(main, ["--db", str(db), *map(str, args)], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def kpi(db: Path) -> dict:
    return json.loads(run(db, "kpi", "--json").stdout)


def test_preview_then_commit(tmp_path):
    db = tmp_path / "p.db"
    out = run(db, "import", FIXTURES / "rep_pipeline.csv").stdout
    assert "Boat" in out and "custom field" in out
    assert "Quote sent" in out and "Harbour Events Christmas party" in out
    assert "[@click=app.quit]hi[/]" in out  # user text printed as typed
    assert "Nothing written yet: this is the preview. Run again with --commit to import." in out
    assert kpi(db)["count"] == 0
    out = run(db, "import", FIXTURES / "rep_pipeline.csv", "--commit").stdout
    assert "imported rep_pipeline.csv: 6 new" in out
    assert kpi(db)["count"] == 5  # the lost one counts in no KPI
    listed = json.loads(run(db, "list", "--json").stdout)
    assert {p["name"] for p in listed} >= {"[@click=app.quit]hi[/]", "Acme [Beta] offsite"}


def test_json_preview_lists_problems_with_rows(tmp_path):
    db = tmp_path / "p.db"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        'name,value,stage,close date\nA,"12,5O0",Suspect,\nB,1,Nope,\nC,1,Won,31/02/2027\nD,5,Suspect,\n',
        encoding="utf-8",
    )
    data = json.loads(run(db, "import", bad, "--json").stdout)
    assert data["can_commit"] is False and data["committed"] is None
    assert [(p["rows"], p["column"]) for p in data["problems"]] == [([2], "value"), ([3], "stage"), ([4], "close date")]
    assert data["bad_rows"] == 3
    result = run(db, "import", bad, "--commit", code=1)
    assert "evpipe: import: nothing written: 3 of 4 rows cannot be taken" in result.stderr
    assert kpi(db)["count"] == 0
    result = run(db, "import", bad, "--commit", "--skip-bad")
    assert kpi(db)["count"] == 1


def test_crm_walkthrough_from_the_docs(tmp_path):
    """The steps docs/import.md gives for the CRM example, then `calibrate`."""
    db = tmp_path / "crm.db"
    run(db, "stages", "add", "Prospecting", "10")
    run(db, "stages", "add", "Engaging", "30")
    for stage in ("Suspect", "Enquiry", "Quote sent", "Date held", "Deposit paid"):
        run(db, "stages", "remove", stage)
    out = run(db, "import", CRM / "sales_pipeline.csv").stdout
    assert "2,089 rows" in out or "Flagged for review: 2,089 rows" in out
    out = run(
        db, "import", CRM / "sales_pipeline.csv", "--values", CRM / "products.csv", "--values-key", "product"
    ).stdout
    assert "6711 won and lost rows do not say which stage they closed from" in out
    out = run(
        db,
        "import",
        CRM / "sales_pipeline.csv",
        "--values",
        CRM / "products.csv",
        "--values-key",
        "product",
        "--closed-from",
        "Engaging",
    ).stdout
    assert "do not say which stage" not in out
    assert "Values: 4,562 rows valued from products.csv" in out
    assert "Per stage: Prospecting 500, Engaging 1,589, Won 4,238, Lost 2,473" in out
    assert "Dates: day first (the file has 20-10-16)" in out
    from evpipe.models import open_db
    from evpipe.models.importer import ImportOptions, commit_import, plan_import

    # the commit itself, without the (slow) history rebuild, which test_import covers on a small file
    engine = open_db(f"sqlite:///{db}")
    commit_import(
        engine,
        plan_import(
            engine,
            CRM / "sales_pipeline.csv",
            ImportOptions(values_file=CRM / "products.csv", values_key="product", closed_from="Engaging"),
            who="tester",
        ),
        who="tester",
    )
    cal = json.loads(run(db, "calibrate", "--json").stdout)
    # the file shows the closed deals on Engaging only: Prospecting has no evidence (docs/import.md)
    assert [(s["stage"], s["won"], s["n"]) for s in cal["stages"]] == [
        ("Prospecting", 0, 0),
        ("Engaging", 4238, 6711),
    ]
    assert [s["suggested"] for s in cal["stages"]] == [None, 0.63]  # never 100%
    assert not run(db, "stages").stderr  # the ladder rises: no warning


def test_option_errors(tmp_path):
    db = tmp_path / "p.db"
    r = run(db, "import", FIXTURES / "rep_pipeline.csv", "--map", "Boat", code=1)
    assert "--map: 'Boat' should be LEFT=RIGHT" in r.stderr
    r = run(db, "import", FIXTURES / "rep_pipeline.csv", "--add-stage", "Hot", code=1)
    assert "should be NAME=PERCENT" in r.stderr
    r = run(db, "import", FIXTURES / "rep_pipeline.csv", "--add-stage", "Hot=150", code=1)
    assert "outside 0-100" in r.stderr
    r = run(db, "import", tmp_path / "missing.csv", code=1)
    assert "does not exist" in r.stderr


def test_options_that_contradict_each_other_are_refused(tmp_path):
    """Both date orders, or one column (or file stage) mapped two ways: the last one given won,
    silently. Now one line says which; the same mapping twice is only said twice."""
    from evpipe.models.errors import DomainError
    from evpipe.tui.cli.args import options_from_args

    db = tmp_path / "p.db"
    rep = FIXTURES / "rep_pipeline.csv"
    r = run(db, "import", rep, "--dayfirst", "--monthfirst", code=1)
    assert r.stderr == "evpipe: import: --dayfirst and --monthfirst say opposite things; give one\n"
    r = run(db, "import", rep, "--map", "Boat=custom", "--map", "Boat=ignore", code=1)
    assert r.stderr == "evpipe: --map: 'Boat' is given twice ('custom', then 'ignore'); give it once\n"
    r = run(db, "import", rep, "--stage-map", "Hot=Enquiry", "--stage-map", "Hot = Won", code=1)
    assert "--stage-map: 'Hot' is given twice ('Enquiry', then 'Won')" in r.stderr
    assert kpi(db)["count"] == 0
    run(db, "import", rep, "--map", "Boat=custom", "--map", "Boat=custom", "--dayfirst")
    with pytest.raises(DomainError, match="--dayfirst and --monthfirst"):  # the app's import screen
        options_from_args([str(rep), "--monthfirst", "--dayfirst"])
    assert options_from_args([str(rep), "--monthfirst"])[1].date_order == "mdy"
    assert options_from_args([str(rep)])[1].date_order is None


def test_export_backup_dump_restore_commands(tmp_path):
    db = tmp_path / "p.db"
    run(db, "import", FIXTURES / "rep_pipeline.csv", "--commit")
    before = kpi(db)
    assert "Exported 6 prospects" in run(db, "export", tmp_path / "out.xlsx").stdout
    assert "exists" in run(db, "export", tmp_path / "out.xlsx", code=1).stderr
    run(db, "export", tmp_path / "out.xlsx", "--force")
    assert "Backed up to" in run(db, "backup", tmp_path / "copy.db").stdout
    assert kpi(tmp_path / "copy.db") == before
    assert "Dumped 6 prospects" in run(db, "dump", tmp_path / "all.json").stdout
    assert "Restored 6 prospects" in run(tmp_path / "new.db", "restore", tmp_path / "all.json").stdout
    assert kpi(tmp_path / "new.db") == before
    r = run(db, "restore", tmp_path / "all.json", code=1)
    assert "this database is not empty" in r.stderr
    fresh = tmp_path / "fresh.db"
    run(fresh, "import", tmp_path / "out.xlsx", "--commit")
    assert kpi(fresh) == before


def test_real_process_import_of_a_png(tmp_path):
    png = tmp_path / "chart.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    run(tmp_path / "p.db", "stages")  # the database exists (issue 9: a named one is made on purpose)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from evpipe.tui.cli import main; main()",
            "--db",
            str(tmp_path / "p.db"),
            "import",
            str(png),
            "--commit",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "EVPIPE_USER": "tester", "XDG_DATA_HOME": str(tmp_path)},
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "evpipe: import: chart.png is a PNG image, not a spreadsheet; evpipe imports CSV and XLSX files"
    )


def test_json_preview_says_a_future_created_date_is_stored_as_today(tmp_path):
    db = tmp_path / "p.db"
    path = tmp_path / "fut.csv"
    path.write_text("name,value,created,stage\nFut,1000,2027-06-01,Enquiry\n", encoding="utf-8")
    data = json.loads(run(db, "import", path, "--json").stdout)
    [row] = data["preview"]
    assert row["created"] == "2026-11-27" and row["custom"] == {"created (in file)": "2027-06-01"}
    assert any("the date is after today" in w for w in data["warnings"])
    out = run(db, "import", path).stdout
    assert "warning: row 2: created: the date is after today" in out


def test_map_names_a_column_whose_header_holds_an_equals_sign(tmp_path):
    """`--map a=b=ignore` was split at the first '=' (column 'a', which the file has not). A field
    name never holds '=', so --map splits at the last; --stage-map still splits at the first."""
    from evpipe.tui.cli.args import options_from_args

    db = tmp_path / "p.db"
    path = tmp_path / "eq.csv"
    path.write_text("Client,a=b\nA,x\n", encoding="utf-8")
    data = json.loads(run(db, "import", path, "--map", "a=b=ignore", "--json").stdout)
    assert data["columns"][1] == {"column": "a=b", "field": "ignore", "meaning": "not imported (you said so)"}
    assert data["preview"][0]["custom"] == {}
    options = options_from_args([str(path), "--map", "a=b = custom", "--stage-map", "Hot=Cold=Enquiry"])[1]
    assert options.mapping == {"a=b": "custom"} and options.stage_map == {"Hot": "Cold=Enquiry"}
