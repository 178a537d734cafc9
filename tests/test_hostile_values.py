"""Values that used to be accepted wrongly are refused with a message saying what is accepted, on the
command line and in imports (issue 15, point 6); nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from evpipe.models.errors import NotFound
from evpipe.models.importer import plan_import
from evpipe.models.store import Store
from evpipe.tui.cli import main


def test_an_import_refuses_years_outside_1990_to_2100_and_names_the_rows(engine, tmp_path: Path):
    path = tmp_path / "months.csv"
    path.write_text(
        "name,value,stage,expected month,next follow-up\n"
        "Good,100,Suspect,2027-03,2027-01-15\n"
        "Year one,100,Suspect,0001-01-01,\n"
        "Far away,100,Suspect,jan 99999,\n"
        "Old follow-up,100,Suspect,2027-03,1900-01-01\n",
        encoding="utf-8",
    )
    plan = plan_import(engine, path, who="tester")
    assert [r.name for r in plan.records] == ["Good"]
    assert plan.bad_rows == 3
    text = " ".join(p.text() for p in plan.problems)
    assert "1990 to 2100" in text
    assert "'0001-01-01'" in text and "'jan 99999'" in text
    assert not [r for r in plan.records if r.expected_month and not r.expected_month.startswith("20")]


def test_the_cli_refuses_letters_after_an_amount_and_dates_outside_the_range(engine):
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    refused = runner.invoke(main, ["--db", url, "add", "Abc", "--value", "9500abc"])
    assert refused.exit_code == 1
    assert "'9500abc' is not an amount" in refused.output
    with pytest.raises(NotFound):
        Store(engine).get("Abc")
    ok = runner.invoke(main, ["--db", url, "add", "Abc", "--value", "9500 NZD"])
    assert ok.exit_code == 0, ok.output
    assert Store(engine).get("Abc").value_cents == 9500_00
    far = runner.invoke(main, ["--db", url, "follow", "Abc", "9999-01-01"])
    assert far.exit_code == 1
    assert "evpipe takes dates from 1990 to 2100" in far.output
    assert Store(engine).get("Abc").next_follow_up is None
    old = runner.invoke(main, ["--db", url, "log", "Abc", "call", "rang", "--when", "0001-01-01"])
    assert old.exit_code == 1
    assert "1990 to 2100" in old.output
    assert Store(engine).activities(Store(engine).get("Abc").id) == []
