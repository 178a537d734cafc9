"""`evpipe journal` and `evpipe review --who` (issue 11, point 4): who did what and when, newest
first, with the KPI effect; filters by person, prospect and period; a rep's review."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from evpipe.models import open_db
from evpipe.models.members import add_member, set_reps_see
from evpipe.models.store import Store
from evpipe.tui.cli import main


def run(db: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == code, result.stderr
    return result.stdout if code == 0 else result.stderr


def make(db: Path) -> None:
    engine = open_db(f"sqlite:///{db}")
    sam, priya = Store(engine, who="sam"), Store(engine, who="priya")
    sam.add("Coastline Realty", "11000", "Suspect", at=datetime(2026, 11, 10, 9))
    sam.add("Harbour", "5000", "Enquiry", owner="priya", at=datetime(2026, 11, 24, 9))
    priya.edit("Coastline Realty", value="12500", at=datetime(2026, 11, 26, 10, 42))
    priya.move("Coastline Realty", "won", at=datetime(2026, 11, 26, 11))
    sam.set_follow_up("Harbour", "2026-12-01", at=datetime(2026, 11, 27, 9))
    sam.undo(at=datetime(2026, 11, 27, 9, 30))  # the follow-up
    engine.dispose()


def test_journal_text_newest_first_with_who_what_and_kpi_effect(tmp_path):
    db = tmp_path / "j.db"
    make(db)
    lines = run(db, "journal").splitlines()
    assert lines[0].split() == ["when", "who", "what", "TV", "EV"]
    body = lines[2:]
    assert len(body) == 6
    assert body[0].startswith("2026-11-27 09:30  sam  ") and "Harbour: undo, follow-up 2026-12-01 -> none" in body[0]
    assert "Harbour: follow-up none -> 2026-12-01 (undone)" in body[1]
    assert body[2].startswith("2026-11-26 11:00  priya") and "Coastline Realty: Suspect -> Won" in body[2]
    assert body[2].split()[-1] == "+11,875"  # EV: 12,500 x (100 % - 5 %)
    assert "Coastline Realty: value 11,000 -> 12,500" in body[3] and body[3].split()[-2:] == ["+1,500", "+75"]
    assert body[5].startswith("2026-11-10 09:00  sam") and body[5].split()[-2:] == ["+11,000", "+550"]


def test_journal_filters_and_json(tmp_path):
    db = tmp_path / "j.db"
    make(db)
    data = json.loads(run(db, "journal", "--json"))
    assert [e["id"] for e in data] == sorted((e["id"] for e in data), reverse=True)
    won = next(e for e in data if e["category"] == "win")
    assert (won["who"], won["prospect"], won["ev"], won["tv"], won["at"]) == (
        "priya",
        "Coastline Realty",
        "11875.00",
        "0.00",
        "2026-11-26T11:00:00",
    )
    edit = next(e for e in data if e["action"] == "edit")
    assert edit["changes"] == [{"field": "value", "before": "11,000", "after": "12,500"}]
    priya = json.loads(run(db, "journal", "--who", "priya", "--json"))
    assert {e["who"] for e in priya} == {"priya"} and len(priya) == 2
    harbour = json.loads(run(db, "journal", "--prospect", "Harbour", "--json"))
    assert {e["prospect"] for e in harbour} == {"Harbour"} and len(harbour) == 3
    by_id = json.loads(run(db, "journal", "--prospect", f"#{harbour[0]['prospect_id']}", "--json"))
    assert by_id == harbour
    week = json.loads(run(db, "journal", "--since", "2d", "--json"))  # 26 and 27 November
    assert len(week) == 4 and all(e["at"] >= "2026-11-26" for e in week)
    assert len(json.loads(run(db, "journal", "--limit", "2", "--json"))) == 2
    assert run(db, "journal", "--who", "nobody") == "No changes match.\n"
    assert run(db, "journal", "--since", "soon", code=1).startswith("evpipe: since: 'soon' is not a period or a date")
    assert run(db, "journal", "--prospect", "Nope", code=1).startswith("evpipe: prospect: no prospect is named")


def test_a_rep_who_sees_only_their_own_reads_only_their_prospects_journal(tmp_path, monkeypatch):
    db = tmp_path / "j.db"
    make(db)
    engine = open_db(f"sqlite:///{db}")
    add_member(engine, "tester", "tester", "owner")
    add_member(engine, "tester", "priya", "rep")
    set_reps_see(engine, "tester", "own")
    engine.dispose()
    from evpipe.models import roles

    monkeypatch.setattr(roles, "login_name", lambda: "priya")
    data = json.loads(run(db, "journal", "--json"))
    assert {e["prospect"] for e in data} == {"Harbour"}  # priya owns Harbour only


def test_review_per_rep_names_who_made_each_move(tmp_path):
    db = tmp_path / "j.db"
    make(db)
    text = run(db, "review", "--who", "priya")
    assert "the changes priya made" in text.splitlines()[0]
    assert "Others' changes" in text
    assert "Coastline Realty  (by priya)" in text
    data = json.loads(run(db, "review", "--who", "priya", "--format", "json"))
    assert data["who"] == "priya"
    terms = {t["category"]: t for t in data["terms"]}
    assert set(terms) == {"edit", "win", "others"}
    assert terms["win"]["items"][0]["by"] == ["priya"]
    # the rep's terms and everyone else's add up to the change, exactly
    from decimal import Decimal

    assert sum(Decimal(v) for v in data["bridge"]["ev"]["terms"].values()) == Decimal(data["bridge"]["ev"]["change"])
    everyone = json.loads(run(db, "review", "--format", "json"))
    new = next(t for t in everyone["terms"] if t["category"] == "new")
    assert new["items"][0]["by"] == ["sam"]
    assert "(by sam)" in run(db, "review", "--format", "markdown")
