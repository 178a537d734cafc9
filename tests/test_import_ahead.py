"""An import's file, read in a fork while SQLAlchemy is imported (tui/cli/import_ahead.py): the plan
it gives is the plan the import reads itself, it is taken only where it was read with the plan's
ladder, user and day, it is not read ahead where the import would read otherwise, and whatever goes
wrong in the fork is met and said by the import as ever."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from evpipe.models import clock, import_plan
from evpipe.models.import_types import record_values
from evpipe.models.importer import plan_import
from evpipe.models.store import Store
from evpipe.tui.cli import import_ahead, main
from evpipe.tui.cli.args import options_from_args
from tests.test_import import CRM

ROOT = Path(__file__).resolve().parent.parent
CRM_ARGS = ["--add-stage", "Prospecting=10", "--add-stage", "Engaging=30", "--values", str(CRM / "products.csv")]
CRM_ARGS += ["--values-key", "product"]


@pytest.fixture
def read_here(monkeypatch) -> list[Path]:
    """The files the plan read itself (not ahead), in this process."""
    read: list[Path] = []
    own = import_plan.plan_sheet

    def counted(path, *args, **kwargs):
        read.append(path)
        return own(path, *args, **kwargs)

    monkeypatch.setattr(import_plan, "plan_sheet", counted)
    return read


def _plan_json(plan) -> tuple:
    return plan.to_json(len(plan.records)), [record_values(r) for r in plan.records]


def test_the_plan_read_ahead_is_the_plan_read_here(engine, db_url, monkeypatch, read_here):
    monkeypatch.setenv("EVPIPE_USER", "tester")
    file, options = options_from_args([str(CRM / "sales_pipeline.csv"), *CRM_ARGS])
    ahead = import_ahead.take(import_ahead.begin(db_url, file, options))
    assert ahead is not None and len(ahead.plan.records) == 8800
    got = plan_import(engine, file, options, who="tester", ahead=ahead)
    assert read_here == []
    want = plan_import(engine, file, options, who="tester")
    assert read_here == [file]
    assert _plan_json(got) == _plan_json(want)
    assert got.new_count == 8800 and got.can_commit and got.warnings == want.warnings


def test_a_file_with_problems_read_ahead_plans_them_the_same(engine, db_url, tmp_path, monkeypatch, read_here):
    monkeypatch.setenv("EVPIPE_USER", "tester")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        'name,value,stage,close date,owner\nA,"12,5O0",Suspect,,\nB,1,Nope,,\nC,1,Won,31/02/2027,\nD,5,Suspect,,sam\n'
        "E,,Enquiry,,\n",
        encoding="utf-8",
    )
    file, options = options_from_args([str(bad)])
    got = plan_import(
        engine, file, options, who="tester", ahead=import_ahead.take(import_ahead.begin(db_url, file, options))
    )
    assert read_here == []
    want = plan_import(engine, file, options, who="tester")
    assert _plan_json(got) == _plan_json(want)
    assert [p.rows for p in got.problems] == [[2], [3], [4]] and got.bad_rows == 3
    assert {r.name: r.owner for r in got.records} == {"D": "sam", "E": "tester"}  # an empty owner cell: the user's


def test_it_is_not_taken_for_another_ladder_user_or_day(engine, db_url, monkeypatch, read_here):
    monkeypatch.setenv("EVPIPE_USER", "tester")
    file, options = options_from_args([str(CRM / "sales_pipeline.csv"), *CRM_ARGS])
    ahead = import_ahead.take(import_ahead.begin(db_url, file, options))
    assert ahead is not None
    plan_import(engine, file, options, who="sam", ahead=ahead)  # an empty owner cell is sam's, not tester's
    plan_import(engine, file, options, who="tester", today=clock.today() + timedelta(days=1), ahead=ahead)
    Store(engine, who="tester").set_probability("Enquiry", "15")  # the ladder changed after the fork read it
    plan = plan_import(engine, file, options, who="tester", ahead=ahead)
    assert read_here == [file, file, file]
    assert ("Enquiry", "open", 1500, False) in plan.ladder


def test_no_read_ahead_where_the_import_reads_otherwise(db_url, db_path, tmp_path, monkeypatch, engine):
    file, options = options_from_args([str(CRM / "sales_pipeline.csv")])
    monkeypatch.setattr(import_ahead, "AHEAD_MAX_BYTES", file.stat().st_size - 1)
    assert import_ahead.begin(db_url, file, options) is None  # a big file: the plan shares it out itself
    monkeypatch.undo()
    assert import_ahead.begin(db_url, tmp_path / "missing.csv", options) is None
    assert import_ahead.begin(f"sqlite:///{tmp_path / 'new.db'}", file, options) is None  # to be made first
    assert import_ahead.begin("postgresql+psycopg://u@localhost/evpipe", file, options) is None
    assert import_ahead.take(None) is None


def _cli(db: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--db", str(db), *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_command_takes_the_read_ahead_and_says_a_broken_file_as_ever(tmp_path, monkeypatch, read_here):
    monkeypatch.setenv("EVPIPE_USER", "tester")
    db = tmp_path / "p.db"
    CliRunner().invoke(main, ["init", str(db)], catch_exceptions=False)
    code, out, _ = _cli(db, "import", CRM / "sales_pipeline.csv", *CRM_ARGS, "--commit")
    assert code == 0 and "imported sales_pipeline.csv: 8800 new" in out
    assert read_here == []  # the plan took the fork's reading
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not a workbook at all")
    ahead = _cli(db, "import", broken)
    assert read_here == [broken]  # no answer from the fork: the plan read it, and says why
    monkeypatch.setattr(import_ahead, "begin", lambda *a: None)
    assert _cli(db, "import", broken) == ahead
    assert ahead[0] == 1 and ahead[2].startswith("evpipe: ") and ahead[2].count("\n") == 1


def test_it_runs_before_sqlalchemy_is_imported():
    code = (
        "import sys, evpipe.tui.cli.import_ahead, evpipe.models.import_sheet;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel', 'pydantic', 'textual'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
