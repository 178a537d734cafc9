"""`evpipe forecast | calibrate | review | trend | focus`, run as a user runs them."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from evpipe.models import history, open_db
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from evpipe.tui.cli import main
from tests.conftest import WORKED_LADDER

HOSTILE = "[@click=app.quit]hi[/] *bold* | pipe"

pytestmark = pytest.mark.both_databases


def run(db: Path, *args: str, code: int = 0):
    result = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


@pytest.fixture
def db(db_path, db_url):
    """The database's --db: a path on SQLite, the URL on PostgreSQL."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    s.add("Big deal", "10000", "Quote sent", month="2026-12", at=datetime(2026, 10, 2, 9))
    s.add(HOSTILE, "4000", "Enquiry", month="2027-01", follow_up="2026-11-20", at=datetime(2026, 10, 2, 9))
    for i in range(12):
        p = s.add(f"closed {i}", "1000", "Quote sent", month="2026-11", at=datetime(2026, 10, 3, 9)).prospect
        s.move(p.id, "won" if i < 9 else "lost", at=datetime(2026, 11, 10, 9))
    s.move("Big deal", "next", at=datetime(2026, 11, 24, 9))
    s.add("Newcomer", "2000", "Suspect", month="2027-01", at=datetime(2026, 11, 25, 9))
    history.backfill(eng)
    history.record_snapshot(eng)
    eng.dispose()
    return db_path if db_url.startswith("sqlite") else db_url


def test_forecast_json(db):
    data = json.loads(run(db, "forecast", "--json").stdout)
    assert len(data["months"]) == 24
    nov = next(m for m in data["months"] if m["month"] == "2026-11")
    # At 1 Nov: 12 prospects for November at 25% = 3,000; November's prospects won 9 x 1,000, all
    # signed in November. November has not ended: it is not judged yet.
    assert nov["frozen_forecast"] == "3000.00" and nov["actual"] == "9000.00" and nov["signed"] == "9000.00"
    assert nov["accuracy"] is None and nov["bias"] is None
    assert nov["count"] == 9 and nov["tv"] == "9000.00" and nov["ev"] == "9000.00"
    dec = next(m for m in data["months"] if m["month"] == "2026-12")
    assert dec["ev"] == "8000.00" and dec["frozen_forecast"] is None and dec["accuracy"] is None
    assert data["totals"]["wape"] is None  # November is not over


def test_forecast_range_and_text(db):
    data = json.loads(run(db, "forecast", "--from", "2026-11", "--to", "jan 2027", "--json").stdout)
    assert [m["month"] for m in data["months"]] == ["2026-11", "2026-12", "2027-01"]
    out = run(db, "forecast", "--from", "2026-10", "--to", "2026-12").stdout
    assert "2026-11 *" in out and "3,000" in out
    nov = next(line for line in out.splitlines() if line.startswith("2026-11 *")).split()
    assert nov[-4:] == ["9,000", "9,000", "—", "—"]  # actual, signed; accuracy and bias wait for its end
    err = run(db, "forecast", "--from", "2026-13", code=1).stderr
    assert "evpipe: --from" in err
    assert "after" in run(db, "forecast", "--from", "2027-05", "--to", "2027-01", code=1).stderr


def test_calibrate_json_and_apply(db):
    data = json.loads(run(db, "calibrate", "--json").stdout)
    rows = {r["stage"]: r for r in data["stages"]}
    assert set(rows["Quote sent"]) == {
        "stage",
        "configured",
        "observed",
        "won",
        "lost",
        "n",
        "low",
        "high",
        "conversion_next",
        "suggested",
        # issue 9, point 4: a stage says how much of its evidence was only inferred, why it has no
        # suggestion, and the EV accepting it moves
        "inferred_won",
        "inferred_lost",
        "note",
        "ev_move",
    }
    q = rows["Quote sent"]
    assert (q["won"], q["lost"], q["n"], q["configured"]) == (9, 3, 12, 0.25)
    assert q["observed"] == 0.75
    # 25% is outside the interval of 9/12: (9 + 2.5) / 22 = 52.3% -> 52%.
    assert q["suggested"] == 0.52
    assert isinstance(data["brier"], float)
    run(db, "calibrate", "--apply", "--yes")  # issue 9, point 4: --apply asks, --yes answers
    data = json.loads(run(db, "stages", "--json").stdout)
    assert {r["name"]: r["probability"] for r in data}["Quote sent"] == 0.52
    assert "months: a whole number" in run(db, "calibrate", "--months", "0", code=1).stderr


def test_calibrate_apply_shows_the_changes_and_asks(db):
    def probabilities():
        return {r["name"]: r["probability"] for r in json.loads(run(db, "stages", "--json").stdout)}

    before = probabilities()
    # Suspect and Enquiry: the 9 won and 3 lost from Quote sent passed them: (9 + 0.5) / 22 -> 43%,
    # (9 + 1) / 22 -> 45%. Open: Newcomer (2,000) on Suspect, the hostile one (4,000) on Enquiry, Big
    # deal on Deposit paid, none on Quote sent.
    out = CliRunner().invoke(main, ["--db", str(db), "calibrate", "--apply"], input="n\n").stdout
    assert "Accepting the suggestions changes:" in out
    assert "Suspect 5% → 43%, EV +760" in out and "Enquiry 10% → 45%, EV +1,400" in out
    assert "Quote sent 25% → 52%, EV " in out
    assert "in all: EV +2,160" in out and "Apply these 3 changes? [y/N]" in out
    assert "Nothing changed." in out and probabilities() == before
    result = CliRunner().invoke(main, ["--db", str(db), "calibrate", "--apply"])  # nobody to answer
    assert result.exit_code == 1 and "nothing changed; answer y, or add --yes" in result.stderr
    assert probabilities() == before
    assert "add --yes" in run(db, "calibrate", "--apply", "--json", code=1).stderr
    out = CliRunner().invoke(main, ["--db", str(db), "calibrate", "--apply"], input="y\n").stdout
    assert "applied: Suspect: 5% -> 43%" in out
    assert probabilities()["Quote sent"] == 0.52


def test_review_json_adds_up(db):
    data = json.loads(run(db, "review", "--format", "json").stdout)
    assert set(data) >= {"start", "end", "bridge", "overdue", "due", "stale", "focus"}
    for key in ("ev", "tv"):
        b = data["bridge"][key]
        assert sum(Decimal(v) for v in b["terms"].values()) == Decimal(b["end"]) - Decimal(b["start"])
    assert data["bridge"]["ev"]["terms"] == {"new": "100.00", "advance": "5500.00"}
    assert [i["name"] for i in data["overdue"]] == [HOSTILE]
    assert data["focus"][0]["name"] == HOSTILE


def test_review_markdown_reads_as_a_report(db):
    md = run(db, "review", "--format", "markdown").stdout
    assert md.startswith("# Pipeline review, Sat 21 Nov – Fri 27 Nov 2026")
    assert "**Expected value rose by 5,600 to" in md
    assert "## What moved expected value" in md and "## Wins" in md and "## What's next" in md
    assert "| Advances | +5,500 |" in md
    assert "No sale closed in this period." in md
    # User text is escaped for Markdown, never interpreted.
    assert HOSTILE not in md
    assert r"\[@click=app.quit\]hi\[/\] \*bold\* \| pipe" in md


def test_review_text_and_errors(db):
    out = run(db, "review", "--since", "2026-11-01").stdout
    assert "Wins" in out and "+6,750" in out  # nine wins of 1,000 from 25%
    assert "since" in run(db, "review", "--since", "someday", code=1).stderr
    assert run(db, "review", "--since", "someday", code=1).stdout == ""


def test_trend(db):
    data = json.loads(run(db, "trend", "--json").stdout)
    assert data[-1]["date"] == "2026-11-27"
    # Big deal 10,000 x 80% + 4,000 x 10% + Newcomer 2,000 x 5% + nine wins of 1,000.
    assert data[-1]["ev"] == "17500.00"
    dates = [p["date"] for p in data]
    assert dates == sorted(dates) and "2026-10-31" in dates and "2026-11-20" in dates
    assert len(json.loads(run(db, "trend", "--weeks", "2", "--json").stdout)) == 3  # 13 Nov... 27 Nov
    assert "--weeks" in run(db, "trend", "--weeks", "-1", code=1).stderr


def test_focus(db):
    data = json.loads(run(db, "focus", "--json").stdout)
    assert [d["name"] for d in data] == [HOSTILE, "Big deal", "Newcomer"]
    assert data[0]["reason"] == "overdue follow-up (7 days)"
    out = run(db, "focus", "--limit", "1").stdout
    assert "overdue follow-up (7 days)" in out and "Big deal" not in out


def test_focus_for_an_owner_with_nothing_says_whose(db):
    """`focus --owner Tester` (owners are as typed: the prospects are tester's) said "no open
    prospects", as if the pipeline were empty."""
    assert (
        run(db, "focus", "--owner", "Tester").stdout.strip() == "Nothing to work on: 'Tester' owns no open prospects."
    )
    assert "Big deal" in run(db, "focus", "--owner", "tester").stdout


def test_a_month_that_began_without_a_change_is_judged_at_the_first_forecast(db_path, db_url, monkeypatch):
    """Month starts were recorded only with a change: with none since 25 October, the first
    `forecast` of December left November unjudged (frozen "—", WAPE over one month), and a later
    unrelated write changed its figures. The forecast records the missing month starts first."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    s.add("A", "10000", "Deposit paid", month="2026-10", at=datetime(2026, 9, 10, 9))
    s.add("B", "3000", "Quote sent", month="2026-11", at=datetime(2026, 9, 10, 9))
    history.record_snapshot(eng, at=datetime(2026, 9, 10, 9))
    s.move("A", "won", at=datetime(2026, 10, 20, 9))
    s.move("B", "won", at=datetime(2026, 10, 25, 9))
    history.record_snapshot(eng, at=datetime(2026, 10, 25, 9))
    eng.dispose()
    db = db_path if db_url.startswith("sqlite") else db_url
    monkeypatch.setenv("EVPIPE_NOW", "2026-12-05T10:00:00")
    if db_url.startswith("sqlite"):  # another writer holds the lock: the forecast reads on, and says so
        import sqlite3

        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        monkeypatch.setenv("EVPIPE_LOCK_TIMEOUT", "0.2")
        try:
            held = run(db, "forecast", "--from", "2026-10", "--to", "2026-11", "--json")
        finally:
            holder.rollback()
            holder.close()
            monkeypatch.delenv("EVPIPE_LOCK_TIMEOUT")
        assert "the months that began since the last change are not judged yet" in held.stderr
    data = json.loads(run(db, "forecast", "--from", "2026-10", "--to", "2026-11", "--json").stdout)
    nov = next(m for m in data["months"] if m["month"] == "2026-11")
    assert nov["frozen_forecast"] == "3000.00" and nov["actual"] == "3000.00" and nov["accuracy"] == 1.0
    oct_frozen = Decimal(next(m for m in data["months"] if m["month"] == "2026-10")["frozen_forecast"])
    assert data["totals"]["wape_months"] == 2
    assert data["totals"]["wape"] == pytest.approx(float((10000 - oct_frozen) / 13000), abs=1e-6)
    again = json.loads(run(db, "forecast", "--from", "2026-10", "--to", "2026-11", "--json").stdout)
    assert again == data


def _fresh(db_path, db_url, build) -> str:
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    build(Store(eng, who="tester"))
    eng.dispose()
    return db_path if db_url.startswith("sqlite") else db_url


def test_the_insight_tables_never_round_the_largest_value(db_path, db_url):
    """The forecast, trend and review tables rounded every amount to whole units: the largest value
    a prospect can carry read 10,000,000,000, a figure it is not, beside `kpi`'s 9,999,999,999.99.
    An amount reads as it is (models/values.py, the rule)."""

    def build(s):
        s.add("Huge", "9,999,999,999.99", "Won", month="2026-11", at=datetime(2026, 11, 24, 9))

    db = _fresh(db_path, db_url, build)
    for args in (["forecast", "--from", "2026-11", "--to", "2026-11"], ["trend"], ["review"]):
        out = run(db, *args).stdout
        assert "9,999,999,999.99" in out and "10,000,000,000" not in out, (args, out)
    assert (
        "| Expected value (EV) | 0 | 9,999,999,999.99 | +9,999,999,999.99 |"
        in run(db, "review", "--format", "markdown").stdout
    )


def test_the_review_keeps_the_cents_of_a_small_ev(db_path, db_url):
    """An EV of 0.25 (2 at 12.5%) read 0 at the end of a week whose change read +0.25, and the
    email said "Expected value rose by 0 to 0"."""

    def build(s):
        s.set_probability("Suspect", "12.5", at=datetime(2026, 11, 24, 9))
        s.add("Small", "2", "Suspect", month="2027-01", at=datetime(2026, 11, 24, 9))

    db = _fresh(db_path, db_url, build)
    ev_row = next(line for line in run(db, "review").stdout.splitlines() if line.startswith("EV "))
    assert ev_row.split() == ["EV", "0", "0.25", "+0.25"]
    email = run(db, "review", "--format", "markdown").stdout
    assert "**Expected value rose by 0.25 to 0.25**" in email
    assert "| Expected value (EV) | 0 | 0.25 | +0.25 |" in email


def test_review_markdown_keeps_an_ampersand_in_a_name(db_path, db_url):
    """A name holding an entity ("Smith &amp; Co") was written as it is, and a Markdown reader
    showed "Smith & Co": a name the pipeline does not hold."""

    def build(s):
        s.add("Smith &amp; Co", "1000", "Suspect", month="2027-01", at=datetime(2026, 11, 24, 9))

    md = run(_fresh(db_path, db_url, build), "review", "--format", "markdown").stdout
    assert r"Smith \&amp; Co" in md and "Smith &amp; Co" not in md
