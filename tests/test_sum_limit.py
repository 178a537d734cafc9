"""The 64-bit limit of the sums: a write that would take the pipeline's values past what EV can be
kept in exactly (values.MAX_SUM_CENTS, 9,223,372,036,854.77) is refused in words and writes
nothing. Before, SQLite turned the KPI reading's overflowing `+` into a float (EV no longer exact)
and an import's history rebuild stopped with a traceback after the import was saved."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select

from evpipe.models.errors import SumTooLarge
from evpipe.models.history import keep_current
from evpipe.models.importer import ImportOptions, after_import, commit_import, plan_import
from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.tables import KpiSnapshot, KpiSnapshotMonth, Prospect
from evpipe.models.values import MAX_SUM_CENTS, MAX_VALUE_CENTS
from evpipe.tui.cli import main as cli

pytestmark = pytest.mark.both_databases

BIGGEST = "9999999999.99"
#: prospects at the biggest value that still fit (922 x 999,999,999,999 cents <= MAX_SUM_CENTS)
FITTING = MAX_SUM_CENTS // MAX_VALUE_CENTS


def write_csv(path: Path, count: int, *, first: int = 0) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Name", "Value", "Stage", "Close date"])
        for i in range(first, first + count):
            w.writerow([f"Deal {i}", BIGGEST, "Won", "2026-11-03"])
    return path


def imported(engine, path: Path) -> None:
    plan = plan_import(engine, path, ImportOptions(), who="tester")
    commit_import(engine, plan, who="tester")
    after_import(engine)


def prospects(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Prospect))


def sums_exact(engine) -> None:
    """Every sum the KPI readings hold is an integer (SQLite keeps an overflowing `+` as REAL)."""
    with engine.connect() as conn:
        for table, columns in (
            (KpiSnapshot, ("tv_cents", "ev_micros")),
            (KpiSnapshotMonth, ("tv_cents", "ev_micros", "won_tv_cents", "won_ev_micros")),
        ):
            for row in conn.execute(select(*(getattr(table, c) for c in columns))):
                assert all(v is None or type(v) is int for v in row), row


@pytest.fixture
def full(engine, tmp_path):
    """A pipeline whose values come to just under the limit, with today's KPI reading."""
    imported(engine, write_csv(tmp_path / "full.csv", FITTING))
    keep_current(engine)
    assert kpis(engine).tv_cents == FITTING * MAX_VALUE_CENTS
    return engine


def test_a_change_past_the_limit_is_refused_and_writes_nothing(full, store):
    before = prospects(full), kpis(full)
    with pytest.raises(SumTooLarge, match=r"nothing was saved: with it, .* sums pass 9,223,372,036,854\.77"):
        store.add("one more", BIGGEST, "Won")
    small = store.add("small", "5")  # (a change within the limit is saved as ever)
    store.edit(small.prospect.id, value=BIGGEST)  # its EV, on the first rung, still fits
    with pytest.raises(SumTooLarge):
        store.move(small.prospect.id, "Won")
    assert prospects(full) == before[0] + 1
    after = kpis(full)
    assert after.tv_cents == before[1].tv_cents + MAX_VALUE_CENTS
    assert after.ev_micros < before[1].ev_micros + MAX_VALUE_CENTS * 10_000  # not won
    sums_exact(full)


def test_an_import_past_the_limit_is_refused_whole(full, tmp_path):
    with pytest.raises(SumTooLarge, match="nothing was saved"):
        imported(full, write_csv(tmp_path / "more.csv", 1, first=FITTING))
    assert prospects(full) == FITTING
    sums_exact(full)


def test_the_command_line_says_it_in_one_line(engine, db_url, tmp_path):
    """An import of too much is refused before its history is added up: one line, no traceback,
    nothing written; so is the day's first change that crosses it (no reading today to add its
    delta to: the live prospects' whole EV is checked)."""
    runner = CliRunner()
    big = write_csv(tmp_path / "big.csv", FITTING + 1)
    out = runner.invoke(cli, ["--db", db_url, "import", str(big), "--commit"])
    assert out.exit_code != 0
    assert "Traceback" not in out.output
    assert (
        out.output.strip().splitlines()[-1].startswith("evpipe: nothing was saved: with it, the pipeline's sums pass")
    )
    assert prospects(engine) == 0

    imported(engine, write_csv(tmp_path / "full.csv", FITTING))
    with engine.begin() as conn:  # the day's first change: no KPI reading today yet
        conn.execute(delete(KpiSnapshotMonth))
        conn.execute(delete(KpiSnapshot))
    out = runner.invoke(cli, ["--db", db_url, "add", "one more", "--value", BIGGEST, "--stage", "Won"])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "evpipe: nothing was saved: with it, the pipeline's sums pass" in out.output
    assert prospects(engine) == FITTING
    out = runner.invoke(cli, ["--db", db_url, "add", "small", "--value", "5"])
    assert out.exit_code == 0 and "added on" in out.output and "evpipe:" not in out.output
    sums_exact(engine)


def test_a_probability_change_past_the_limit_is_refused(engine, store, tmp_path):
    """A stage's new probability changes every EV on it at once: the KPI reading is recounted, not
    moved by a delta, so the whole EV is checked in the change's transaction."""
    half = 1600  # at 50% and 55% they fit (8.0 and 8.8 x 10^18 micros); at 100% they would not
    for i in range(0, half, 500):
        path = tmp_path / f"part{i}.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["Name", "Value", "Stage"])
            for k in range(i, min(half, i + 500)):
                w.writerow([f"Deal {k}", BIGGEST, "Date held"])
        imported(engine, path)
    keep_current(engine)
    before = kpis(engine)
    with pytest.raises(SumTooLarge, match="nothing was saved"):
        store.set_probability("Date held", "100")
    assert kpis(engine) == before
    store.set_probability("Date held", "55")  # within the limit: saved as ever
    assert kpis(engine).ev_micros == half * MAX_VALUE_CENTS * 5500
    sums_exact(engine)


def test_an_import_whose_past_days_cannot_be_added_up_stands_and_says_so(engine, db_url, tmp_path):
    """The history of an import replays its past days, which held prospects deleted since: the
    import is saved (its own total fits), and its history not brought up to date, said in words."""
    from evpipe.models import clock

    with (tmp_path / "early.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Name", "Value", "Stage", "Close date", "Created"])
        for i in range(FITTING):
            w.writerow([f"Deal {i}", BIGGEST, "Won", "2026-11-03", "2026-01-05"])
    clock.set_fixed(datetime(2026, 11, 26, 10))  # the day before: its history has the weeks back from then
    imported(engine, tmp_path / "early.csv")
    Store(engine, who="tester").delete("Deal 0")
    clock.set_fixed(None)  # today (27 Nov): the weeks back from today are other days, with Deal 0 alive
    with (tmp_path / "late.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Name", "Value", "Stage", "Close date", "Created"])
        w.writerow(["Deal late", BIGGEST, "Won", "2026-11-03", "2026-01-05"])
    out = CliRunner().invoke(cli, ["--db", db_url, "import", str(tmp_path / "late.csv"), "--commit"])
    assert "Traceback" not in out.output
    assert out.exit_code == 0, out.output
    assert "evpipe: imported, but its KPI history was not brought up to date: the pipeline's sums pass" in out.output
    assert "imported late.csv: 1 new" in out.output
    assert prospects(engine) == FITTING + 1
    sums_exact(engine)


def test_a_reading_from_before_won_parts_were_kept_does_not_refuse_changes(full, store):
    """A month row whose won part is NULL (kept from before migration 0004) is not a sum past 64
    bits: only a float is."""
    with full.begin() as conn:
        conn.execute(KpiSnapshotMonth.__table__.update().values(won_tv_cents=None, won_ev_micros=None))
    store.add("small", "5")
    assert prospects(full) == FITTING + 1


def test_a_forecast_reads_on_past_a_month_start_it_cannot_add_up():
    from evpipe.models.errors import reads_on, unsaved_reason
    from evpipe.models.values import too_large

    assert reads_on(too_large())
    assert unsaved_reason(too_large()).startswith("the pipeline's sums pass 9,223,372,036,854.77")
