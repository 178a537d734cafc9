"""Export to CSV and XLSX, and back: import into an empty database gives the same KPIs, to the cent."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpipe.models import open_db
from evpipe.models.errors import DomainError
from evpipe.models.exporter import COLUMNS, export
from evpipe.models.importer import ImportOptions, commit_import, import_file, plan_import
from evpipe.models.kpi import kpis, kpis_by
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from tests.conftest import WORKED_LADDER

NASTY = {
    "name": '=HYPERLINK("http://evil","click")',
    "company": "Acme [Beta]",
    "contact_name": "[@click=app.quit]hi[/]",
    "phone": "+64 21 555 0101",
    "email": "jo@home.example",
    "notes": "-5 people\ttab, and 'quotes'",
}


def add_nasty(engine, value: str, **kw) -> None:
    fields = {k: v for k, v in NASTY.items() if k != "name"}
    Store(engine).add(NASTY["name"], value, "Enquiry", **fields, **kw)


def _figures(engine) -> dict:
    return {
        "all": kpis(engine),
        **{f"by {by}": kpis_by(engine, by) for by in ("month", "stage", "owner")},
    }


def _prospects(engine) -> list[tuple]:
    store = Store(engine)
    from evpipe.models.queries import prospect_rows

    out = []
    for row in prospect_rows(engine):
        p = store.get(row.id)
        out.append(
            (
                p.name,
                p.company,
                p.contact_name,
                p.email,
                p.phone,
                p.notes,
                p.custom,
                p.value_cents,
                p.stage_name,
                p.expected_month,
                p.next_follow_up,
                p.follow_up_time,
                p.follow_up_note,
                p.owner,
                p.closed_on,
                p.lost_reason,
                p.needs_review,
            )
        )
    return sorted(out, key=repr)


def _fresh(tmp_path, name: str, ladder=None):
    eng = open_db(f"sqlite:///{tmp_path / name}", seed_ladder=ladder is None)
    if ladder is not None:
        install_ladder(eng, ladder)
    return eng


@pytest.mark.both_databases
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_worked_example_round_trip(worked_engine, tmp_path, kind):
    add_nasty(worked_engine, "1234.56", month="2027-03", custom={"Boat": "Aurora"})
    path = tmp_path / f"out.{kind}"
    assert export(worked_engine, path) == 6
    target = _fresh(tmp_path, "copy.db", WORKED_LADDER)
    plan, result = import_file(target, path, who="tester")
    assert result.created == 6 and not plan.problems
    assert _figures(target) == _figures(worked_engine)
    assert _prospects(target) == _prospects(worked_engine)
    k = kpis(target)
    assert (k.tv_cents, k.ev_micros) == (2_200_000 + 123_456, 950_000 * 10_000 + 123_456 * 1000)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_follow_ups_time_and_note_come_back(worked_engine, tmp_path, kind):
    """The export wrote the follow-up's day only: its time and note ('14:30, send the quote') were
    lost by moving a pipeline to another database."""
    store = Store(worked_engine)
    add_nasty(worked_engine, "10")
    store.set_follow_up(NASTY["name"], "2026-12-24", time="2pm", note="=send the quote")
    path = tmp_path / f"out.{kind}"
    export(worked_engine, path)
    target = _fresh(tmp_path, "copy.db", WORKED_LADDER)
    plan, _ = import_file(target, path, who="tester")
    assert not plan.problems
    back = Store(target).get(NASTY["name"])
    assert (back.next_follow_up, back.follow_up_time, back.follow_up_note) == (
        date(2026, 12, 24),
        "14:00",
        "=send the quote",
    )
    assert _prospects(target) == _prospects(worked_engine)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_demo_round_trip(demo_engine, tmp_path, kind):
    path = tmp_path / f"demo.{kind}"
    from evpipe.models.queries import prospect_rows

    assert export(demo_engine, path) == len(prospect_rows(demo_engine)) > 10
    target = _fresh(tmp_path, "demo-copy.db")
    import_file(target, path, who="tester")
    assert _figures(target) == _figures(demo_engine)
    assert _prospects(target) == _prospects(demo_engine)


@pytest.mark.both_databases
def test_csv_cells_are_neutralised(worked_engine, tmp_path):
    add_nasty(worked_engine, "10", custom={"Formula": "=1+1", "Handle": "@home"})
    path = tmp_path / "out.csv"
    export(worked_engine, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    rows = list(csv.DictReader(path.open(encoding="utf-8-sig", newline="")))
    nasty = next(r for r in rows if r["company"] == "Acme [Beta]")
    assert nasty["name"] == '\'=HYPERLINK("http://evil","click")'
    assert nasty["phone"] == "'+64 21 555 0101"
    assert nasty["email"] == "jo@home.example" and nasty["Handle"] == "'@home"
    assert nasty["notes"] == "'-5 people tab, and 'quotes'"  # the store keeps no tabs
    assert nasty["Formula"] == "'=1+1"
    assert nasty["value"] == "10.00" and nasty["EV"] == "1.00" and nasty["probability"] == "10%"
    assert list(rows[0])[: len(COLUMNS)] == COLUMNS
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r"


def test_text_xml_cannot_hold_leaves_the_workbook_whole(worked_engine, tmp_path):
    """A name with U+FFFF made `export FILE.xlsx` write a sheet no spreadsheet opens (nor evpipe's
    import: 'not well-formed'). The store drops such characters as it drops control characters;
    one stored before that is left out of the workbook."""
    from openpyxl import load_workbook
    from sqlalchemy import text

    store = Store(worked_engine)
    added = store.add("Odd\uffffName", "10", "Enquiry", notes="a\ufffeb").prospect
    assert added is not None and added.name == "OddName" and added.notes == "ab"
    with worked_engine.begin() as conn:  # as an older evpipe stored it
        conn.execute(text("UPDATE prospect SET company = :c WHERE id = :i"), {"c": "Co\uffff", "i": added.id})
    path = tmp_path / "out.xlsx"
    export(worked_engine, path)
    rows = list(load_workbook(path)["Prospects"].iter_rows(values_only=True))
    assert ("OddName", "Co") in [(r[1], r[2]) for r in rows]
    other = open_db(f"sqlite:///{tmp_path / 'other.db'}")
    assert plan_import(other, path).records  # and it imports


@pytest.mark.both_databases
def test_xlsx_has_kpi_and_ladder_sheets_and_no_formulas(worked_engine, tmp_path):
    from openpyxl import load_workbook

    add_nasty(worked_engine, "10", month="2027-01")
    path = tmp_path / "out.xlsx"
    export(worked_engine, path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["Prospects", "KPIs by month", "Ladder"]
    cells = [c for row in wb["Prospects"].iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    header = [c.value for c in wb["Prospects"][1]]
    assert header == COLUMNS
    a = next(row for row in wb["Prospects"].iter_rows(min_row=2, values_only=True) if row[1] == "A")
    assert a[8] == 10000 and a[9] == 2500 and a[7] == 0.25  # real numbers
    months = {row[0]: row[1:] for row in wb["KPIs by month"].iter_rows(min_row=2, values_only=True)}
    assert months["2027-01"][:3] == (1, 10, 1)
    total_tv = sum(v[1] for v in months.values())
    assert total_tv == pytest.approx(22_010)
    ladder = [row for row in wb["Ladder"].iter_rows(min_row=2, values_only=True)]
    assert [(r[1], r[2], r[3]) for r in ladder] == [
        ("Suspect", 0.05, "open"),
        ("Enquiry", 0.1, "open"),
        ("Quote sent", 0.25, "open"),
        ("Deposit paid", 0.8, "open"),
        ("Won", 1.0, "won"),
        ("Lost", 0.0, "lost"),
    ]
    closed = next(row for row in wb["Prospects"].iter_rows(min_row=2, values_only=True) if row[1] == "D")
    assert closed[14].date() == date(2026, 11, 27)  # a real date cell


def test_export_refuses_other_formats(worked_engine, tmp_path):
    with pytest.raises(DomainError, match="should end in .csv or .xlsx"):
        export(worked_engine, tmp_path / "out.txt")
    with pytest.raises(DomainError, match="does not exist"):
        export(worked_engine, tmp_path / "no" / "out.csv")


def test_crm_export_import_round_trip(engine, tmp_path):
    from tests.test_import import CRM, crm_options

    commit_import(engine, plan_import(engine, CRM / "sales_pipeline.csv", crm_options(), who="tester"), who="tester")
    path = tmp_path / "crm.xlsx"
    assert export(engine, path) == 8800
    target = _fresh(tmp_path, "crm-copy.db")
    plan = plan_import(
        target, path, ImportOptions(add_stages=[("Prospecting", "10"), ("Engaging", "30")]), who="tester"
    )
    assert plan.can_commit, plan.why_not()
    commit_import(target, plan, who="tester")
    assert _figures(target) == _figures(engine)


# Text a rep might type, including what a spreadsheet would run as a formula and what Rich
# would read as markup.
_TEXT = st.lists(st.sampled_from(list("ab Zé€[]/@=+-'\"\t,;|\nü😀") + ["[/x]", "[b]"]), max_size=8).map("".join)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.tuples(
            _TEXT,
            _TEXT,
            st.integers(0, 999_999_999_999),
            st.sampled_from(["Suspect", "Quote sent", "Deposit paid", "Won", "Lost"]),
            st.one_of(st.none(), st.sampled_from(["2026-12", "2027-01", "2027-06"])),
            _TEXT,
        ),
        min_size=1,
        max_size=5,
    ),
    kind=st.sampled_from(["csv", "xlsx"]),
)
def test_round_trip_property(tmp_path_factory, data, kind):
    from evpipe.models.errors import DomainError as Bad
    from evpipe.models.values import clean_text

    tmp = tmp_path_factory.mktemp("rt")
    source = _fresh(tmp, "a.db", WORKED_LADDER)
    store = Store(source)
    for i, (name, company, cents, stage, month, extra) in enumerate(data):
        try:
            name = clean_text(name, field="name", max_len=200, required=True)
        except Bad:
            name = f"p{i}"
        store.add(
            f"{name} {i}",
            Decimal(cents) / 100,
            stage if stage not in ("Won", "Lost") else "Suspect",
            month=month,
            company=company,
            notes=extra,
            custom={"x note": extra} if extra.strip() else {},
        )
        if stage in ("Won", "Lost"):
            store.move(f"{name} {i}", stage.lower())
    path = tmp / f"out.{kind}"
    export(source, path)
    target = _fresh(tmp, "b.db", WORKED_LADDER)
    plan = plan_import(target, path, who="tester")
    assert plan.can_commit, plan.why_not()
    commit_import(target, plan, who="tester")
    assert _figures(target) == _figures(source)
    assert _prospects(target) == _prospects(source)
