"""Export -> import keeps the figures (issue 15, point 10): an export carries its ladder (XLSX: the
Ladder sheet; CSV: `NAME.ladder.csv` beside it, else the rows' probability column); the import
compares it with the database's, says which probabilities differ and what EV the import shows, and
adopts the file's probabilities only when asked, in the same transaction as the rows."""

from __future__ import annotations

import csv
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from apphelpers import settle
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from evpipe.models import import_commit, open_db
from evpipe.models.exporter import export
from evpipe.models.import_rungs import companion_path
from evpipe.models.importer import ImportOptions, commit_import, plan_import
from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent, Stage
from evpipe.tui.app import EvpipeApp
from evpipe.tui.cli import main as cli


def _probabilities(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {name: bp for name, bp in s.execute(select(col(Stage.name), col(Stage.probability_bp)))}


def _ev_from_rows(path: Path) -> Decimal:
    """The EV an exported CSV's own rows state: value x the stage's probability, 0 when lost (an
    independent reading of the file, not evpipe's)."""
    total = Decimal(0)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["stage"] == "Lost":
                continue
            total += Decimal(row["value"]) * Decimal(row["probability"].rstrip("%")) / 100
    return total


@pytest.fixture
def two(tmp_path, demo_engine):
    """The demo pipeline exported to CSV and XLSX, and an empty database whose ladder differs."""
    csv_path, xlsx_path = tmp_path / "pipeline.csv", tmp_path / "pipeline.xlsx"
    export(demo_engine, csv_path)
    export(demo_engine, xlsx_path)
    other = open_db(f"sqlite:///{tmp_path / 'other.db'}")
    store = Store(other, who="tester")
    store.set_probability("Quote sent", "40")
    store.set_probability("Date held", "35")
    yield demo_engine, other, csv_path, xlsx_path
    other.dispose()


def test_a_csv_export_writes_its_ladder_beside_it_owner_only(two):
    demo, _, csv_path, _ = two
    side = companion_path(csv_path)
    assert side.name == "pipeline.ladder.csv"
    assert stat.S_IMODE(os.stat(side).st_mode) == 0o600
    with side.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["stage"]: Decimal(r["probability"].rstrip("%")) * 100 for r in rows} == _probabilities(demo)
    assert [r["kind"] for r in rows][-2:] == ["won", "lost"]


def test_a_file_where_the_ladder_would_go_is_kept_without_force(demo_engine, tmp_path):
    """`evpipe export x.csv` replaced an existing x.ladder.csv although it keeps an existing x.csv
    unless --force: both now."""
    from evpipe.models.errors import DomainError

    side = tmp_path / "x.ladder.csv"
    side.write_text("precious\n")
    with pytest.raises(DomainError, match="x.ladder.csv exists; choose another name or add --force"):
        export(demo_engine, tmp_path / "x.csv")
    assert side.read_text() == "precious\n" and not (tmp_path / "x.csv").exists()
    export(demo_engine, tmp_path / "x.csv", force=True)
    assert side.read_text(encoding="utf-8-sig").startswith("position,stage,probability")


@pytest.mark.parametrize("which", ["csv", "xlsx", "csv without its ladder file"])
def test_the_preview_names_each_difference_and_both_evs(two, which):
    demo, other, csv_path, xlsx_path = two
    path = xlsx_path if which == "xlsx" else csv_path
    if which == "csv without its ladder file":
        companion_path(csv_path).unlink()
    plan = plan_import(other, path, ImportOptions())
    check = plan.ladder_check
    assert check is not None and not check.same
    assert (
        check.source
        == {
            "csv": "pipeline.ladder.csv",
            "xlsx": "its Ladder sheet",
            "csv without its ladder file": "its probability column",
        }[which]
    )
    assert sorted(check.differences) == [("Date held", 5000, 3500), ("Quote sent", 2500, 4000)]
    assert Decimal(check.ev_file_micros) / 1_000_000 == _ev_from_rows(csv_path)
    text = " ".join(check.lines())
    assert "Quote sent 25% in the file, 40% here" in text and "--adopt-ladder" in text
    assert plan.to_json()["ladder"]["differences"][0]["stage"] in ("Quote sent", "Date held")


def test_same_ladder_is_silent(tmp_path, demo_engine):
    path = tmp_path / "x.csv"
    export(demo_engine, path)
    fresh = open_db(f"sqlite:///{tmp_path / 'fresh.db'}")
    plan = plan_import(fresh, path, ImportOptions())
    assert plan.ladder_check is not None and plan.ladder_check.same and plan.ladder_check.lines() == []
    fresh.dispose()


def test_without_adopting_the_ladder_stays_and_the_ev_is_the_databases(two):
    demo, other, csv_path, _ = two
    before = _probabilities(other)
    plan = plan_import(other, csv_path, ImportOptions())
    commit_import(other, plan, who="tester")
    assert _probabilities(other) == before
    assert kpis(other).tv_cents == kpis(demo).tv_cents
    assert kpis(other).ev_micros != kpis(demo).ev_micros


def test_adopting_takes_the_files_probabilities_and_keeps_every_figure(two):
    demo, other, csv_path, _ = two
    Store(other, who="tester").add("Already here", "1000", "Quote sent")
    plan = plan_import(other, csv_path, ImportOptions(adopt_ladder=True))
    assert plan.ladder_check is not None and plan.ladder_check.existing_count == 1
    assert plan.ladder_check.existing_shift_micros == 1000_00 * (2500 - 4000)
    result = commit_import(other, plan, who="tester")
    assert _probabilities(other) == _probabilities(demo)
    mine = kpis(other)
    assert mine.tv_cents == kpis(demo).tv_cents + 1000_00
    assert mine.ev_micros == kpis(demo).ev_micros + 1000_00 * 2500
    with Session(other) as s:
        events = s.execute(
            select(col(ChangeEvent.category), col(ChangeEvent.summary)).where(col(ChangeEvent.category) == "prob")
        ).all()
    adopted = [summary for _, summary in events if "the ladder of pipeline.csv" in summary]
    assert len(adopted) == 2 and any(a.startswith("Quote sent: 40% -> 25% on 1 prospects") for a in adopted)
    assert result.d_ev_micros == sum(_ev_deltas(other)[-result.events :])


def _ev_deltas(engine) -> list[int]:
    with Session(engine) as s:
        return list(s.execute(select(col(ChangeEvent.d_ev_micros)).order_by(col(ChangeEvent.id))).scalars())


def test_adopting_is_all_or_nothing_with_the_rows(two, monkeypatch):
    _, other, csv_path, _ = two
    before = _probabilities(other)
    plan = plan_import(other, csv_path, ImportOptions(adopt_ladder=True))

    def fail(self, conn, chunk, progress):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(import_commit._Commit, "write", fail)
    with pytest.raises(OSError):
        commit_import(other, plan, who="tester")
    assert _probabilities(other) == before
    assert kpis(other).count == 0


def test_cli_preview_then_adopt(two):
    demo, other, csv_path, _ = two
    runner = CliRunner()
    url = str(other.url)
    out = runner.invoke(cli, ["--db", url, "import", str(csv_path)])
    assert out.exit_code == 0, out.output
    assert "Ladder: The file's ladder (pipeline.ladder.csv) gives 2 stages another probability" in out.output
    data = json.loads(runner.invoke(cli, ["--db", url, "import", str(csv_path), "--json"]).output)
    assert data["ladder"]["ev_file"] == f"{_ev_from_rows(csv_path):.2f}"
    out = runner.invoke(cli, ["--db", url, "import", str(csv_path), "--commit", "--adopt-ladder"])
    assert out.exit_code == 0, out.output
    kpi = json.loads(runner.invoke(cli, ["--db", url, "kpi", "--json"]).output)
    theirs = json.loads(runner.invoke(cli, ["--db", str(demo.url), "kpi", "--json"]).output)
    assert (kpi["tv"], kpi["ev"]) == (theirs["tv"], theirs["ev"])


async def test_the_import_screen_shows_the_difference(two):
    _, other, csv_path, _ = two
    from test_import_screen import open_import

    app = EvpipeApp(str(other.url), who="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_import(app, pilot, csv_path)
        await settle(app, pilot)
        text = str(screen.query_one("#import-counts").render())
        assert "Ladder:" in text and "Quote sent 25% in the file, 40% here" in text


probability = st.integers(min_value=1, max_value=99)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    theirs=st.lists(probability, min_size=3, max_size=3),
    ours=st.lists(probability, min_size=3, max_size=3),
    values=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**8)), min_size=1, max_size=8),
    adopt=st.booleans(),
)
def test_export_import_ev_property(tmp_path_factory, theirs, ours, values, adopt):
    """Whatever the two ladders: adopting gives the exporter's EV; not adopting gives the EV of the
    same rows at this database's probabilities; TV is the same either way."""
    folder = tmp_path_factory.mktemp("prop")
    a = open_db(f"sqlite:///{folder / 'a.db'}")
    b = open_db(f"sqlite:///{folder / 'b.db'}")
    names = ["Suspect", "Enquiry", "Quote sent"]
    for engine, bps in ((a, theirs), (b, ours)):
        store = Store(engine, who="tester")
        for name, p in zip(names, bps):
            if _probabilities(engine)[name] != p * 100:
                store.set_probability(name, str(p))
    sa = Store(a, who="tester")
    for n, (rung, cents) in enumerate(values):
        sa.add(f"P{n}", f"{Decimal(cents) / 100:.2f}", names[rung])
    path = folder / "x.csv"
    export(a, path)
    commit_import(b, plan_import(b, path, ImportOptions(adopt_ladder=adopt)), who="tester")
    expected_ev = sum(cents * (theirs if adopt else ours)[rung] * 100 for rung, cents in values)
    assert kpis(b).tv_cents == kpis(a).tv_cents == sum(c for _, c in values)
    assert kpis(b).ev_micros == expected_ev
    a.dispose()
    b.dispose()
