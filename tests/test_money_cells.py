"""Amounts are never cut off (issue 9, point 5).

One rule, in models/values.py: an amount reads as it is (cents when it has them); a column too
narrow for all its amounts in that form shows them in whole units, then all with one unit (k, M,
B) and the finest decimals that fit. Here: the rule itself, the phrases (notices, journal, CLI),
and every screen at 80x24 on a pipeline whose values span 1 to 9,999,999,999.99, read back from
what is on the screen.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest
from apphelpers import screen_text, settle
from click.testing import CliRunner
from rich.cells import cell_len
from textual.widgets import DataTable

from evpipe.models import history
from evpipe.models.journal import created_summary, edit_summary, ev_phrase
from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.values import (
    EXACT,
    MAX_VALUE_CENTS,
    WHOLE,
    MoneyStyle,
    format_amount,
    money_style,
    money_style_for,
    parse_money,
    to_cents,
)
from evpipe.tui.app import EvpipeApp
from evpipe.tui.cli import main
from evpipe.tui.widgets import prospect_table
from evpipe.tui.widgets.kpi_header import KpiHeader
from evpipe.tui.widgets.prospect_table import ProspectTable, columns_for

# ---------------------------------------------------------------- the rule


def test_an_amount_reads_as_it_is():
    assert format_amount(1_275_050) == "12,750.50"
    assert format_amount(1_300_000) == "13,000"
    assert format_amount(MAX_VALUE_CENTS) == "9,999,999,999.99"  # never rounded above the maximum
    assert format_amount(-1_000, signed=True) == "-10" and format_amount(0, signed=True) == "+0"
    style = money_style([100, 1_275_050, 650_000], width=10)
    assert style == EXACT and [style(c) for c in (100, 1_275_050, 650_000)] == ["1", "12,750.50", "6,500"]


def test_a_narrow_column_drops_cents_then_takes_one_unit_for_all():
    # 999,999.50 does not fit in 9 cells: whole units for the whole column
    style = money_style([1_275_050, 99_999_950], width=9)
    assert style == WHOLE and style(1_275_050) == "12,751" and style(99_999_950) == "1,000,000"
    # whole amounts that fit stay whole, whatever cents a smaller amount has
    assert money_style([1_275_050, 99_999_900], width=9) == EXACT
    # 1,250,000 does not fit in 7 cells: the column takes a unit, every amount with it, the
    # finest that fits (thousands without decimals before millions with two)
    style = money_style([125_000_000, 31_250_000, 100], width=7)
    assert [style(c) for c in (125_000_000, 31_250_000, 100)] == ["1,250k", "313k", "1"]
    style = money_style([125_000_000, 31_250_000, 100], width=5)
    assert [style(c) for c in (125_000_000, 31_250_000, 100)] == ["1.25M", "0.31M", "1"]
    # the largest value in the pipeline's 10 cells
    style = money_style([MAX_VALUE_CENTS, 100], width=10)
    assert style.compact and style(MAX_VALUE_CENTS) == "10,000.00M"


def test_a_small_amount_beside_a_huge_one_keeps_two_digits():
    # One prospect of 10 billion put the Value column in millions: 1,200 read '0.00M' and 9,500
    # '0.01M' (the tester's report). An amount with one significant digit or none in the column's
    # unit takes the largest smaller unit where it has two, if that fits; zero stays zero.
    style = money_style([MAX_VALUE_CENTS, 100], width=10)
    amounts = (120_000, 950_000, 25_000, 100, 0, 10_000_000, -4_000_000)
    assert [style(c) for c in amounts] == ["1.20k", "9.50k", "0.25k", "1", "0.00M", "0.10M", "-40.00k"]
    assert style(-4_000_000, signed=True) == "-40.00k" and style(120_000, signed=True) == "+1.20k"
    style = money_style([125_000_000, 100], width=7)  # thousands without decimals
    assert [style(c) for c in (500_000, 4_999, 1_000_000)] == ["5,000", "49.99", "10k"]
    # where the smaller unit does not fit the column, the amount keeps the column's unit
    style = money_style([125_000_000, 100], width=4)
    assert style == MoneyStyle(2, 1) and [style(c) for c in (400_000, 4_000_000)] == ["4.0k", "0.0M"]


def test_signed_columns_count_the_sign():
    style = money_style([31_250_000 * 10_000, -10_500_000 * 10_000], micros=True, width=7, signed=True)
    assert style(31_250_000 * 10_000, micros=True, signed=True) == "+312.5k"
    assert style(-10_500_000 * 10_000, micros=True, signed=True) == "-105.0k"


@pytest.mark.parametrize("width", range(5, 18))
@pytest.mark.parametrize(
    "amounts",
    [[1, MAX_VALUE_CENTS], [100, 1_275_050, 125_000_000], [99_999, 100_000_000_000_00], [0], [-MAX_VALUE_CENTS, 5]],
)
def test_every_amount_fits_its_column_and_reads_back(amounts, width):
    style = money_style(amounts, width=width, signed=True)
    for cents in amounts:
        text = style(cents, signed=True)
        assert len(text) <= width, (text, width)
        assert_reads_back(text, Decimal(cents) / 100)


def test_micros_round_half_up_to_the_cent_first():
    assert to_cents(12_345, micros=True) == 1 and to_cents(14_999, micros=True) == 1
    assert to_cents(15_000, micros=True) == 2 and to_cents(-15_000, micros=True) == -2
    assert money_style_for(0, 0) == EXACT and money_style_for(0, 0, width=1) == EXACT


# ---------------------------------------------------------------- phrases: notices, journal, CLI


def test_the_ev_phrase_keeps_its_cents():
    # 12,750.50 -> 13,000 on Deposit paid (80%): EV +199.60, not +200
    d_ev = (1_300_000 - 1_275_050) * 8000
    assert ev_phrase(d_ev) == "EV +199.60"
    assert ev_phrase(1_200 * 100 * 10_000) == "EV +1,200"
    assert (
        edit_summary("Acme", ["value_cents"], 1_275_050, 1_300_000, d_ev)
        == "Acme: value changed, value 12,750.50 -> 13,000, EV +199.60"
    )
    assert created_summary("Acme", "added", "Suspect", 120_000, 120_000 * 500) == (
        "Acme: added on Suspect at 1,200, EV +60"
    )


def test_the_edit_notice_in_the_store(engine):
    s = Store(engine, who="tester")
    p = s.add("Acme", "12,750.50", "Deposit paid").prospect
    result = s.edit(p.id, value="13000")
    assert result.summary.endswith("value 12,750.50 -> 13,000, EV +199.60")


def test_the_cli_confirms_the_value_it_stores(engine, db_path):
    runner = CliRunner()
    db = str(db_path)
    out = runner.invoke(main, ["--db", db, "add", "Huge", "--value", "9,999,999,999.99", "--stage", "Won"])
    assert out.exit_code == 0, out.output
    assert "9,999,999,999.99" in out.output and "10,000,000,000" not in out.output
    out = runner.invoke(main, ["--db", db, "edit", "Huge", "--value", "12750.50"])
    assert out.exit_code == 0, out.output
    assert "9,999,999,999.99 -> 12,750.50" in out.output
    assert parse_money("9,999,999,999.99") == MAX_VALUE_CENTS


# ---------------------------------------------------------------- every screen at 80x24

#: Values from 1 to the largest a prospect can carry, some with cents.
SPAN = [
    ("Tiny one", "1", "Suspect"),
    ("Cents deal", "12,750.50", "Deposit paid"),
    ("Mid deal", "105,000", "Quote sent"),
    ("Gainer", "1,250,000", "Enquiry"),
    ("Big quote", "312,500.75", "Date held"),
    ("Hundred million", "123,456,789.01", "Quote sent"),
    ("Largest", "9,999,999,999.99", "Enquiry"),
    ("Second largest", "9,999,999,999.99", "Date held"),
    ("Won big", "8,765,432,109.87", "Enquiry"),
    ("Lost big", "5,000,000,000", "Quote sent"),
]


@pytest.fixture
def span(engine, db_url):
    s = Store(engine, who="tester")
    for i, (name, value, stage) in enumerate(SPAN):
        s.add(
            name,
            value,
            stage,
            month=f"2026-{11 + i % 2:02d}",
            follow_up="2026-11-20" if i % 3 == 0 else ("2026-11-30" if i % 3 == 1 else None),
            at=datetime(2026, 10, 1, 9),
        )
    s.move("Gainer", "Quote sent", at=datetime(2026, 11, 24, 9))
    s.move("Won big", "won", at=datetime(2026, 11, 25, 9))
    s.move("Lost big", "lost", reason="budget", at=datetime(2026, 11, 25, 10))
    s.edit("Cents deal", value="13000", at=datetime(2026, 11, 26, 9))
    s.edit("Cents deal", value="12,750.50", at=datetime(2026, 11, 26, 10))
    history.backfill(engine)
    history.record_snapshot(engine)
    return db_url


_UNIT = re.compile(r"^[+-]?\d{1,3}(,\d{3})*(\.\d{1,2})?[kMB]$")
_PLAIN = re.compile(r"^[+-]?\d{1,3}(,\d{3})*(\.\d{2})?$")
#: A figure as evpipe writes money: grouped digits, or a unit. Cut ones look like '1,250,0' or '9,99…'.
_FIGURE = re.compile(r"(?<![\w.,])[+-]?\d[\d,]*(?:\.\d+)?[kMB…]?(?![\w,])")


def assert_reads_back(text: str, amount: Decimal) -> None:
    """`text` is `amount` in full (to the cent, or to the unit when it has none), or carries a unit."""
    if _UNIT.match(text):
        scale = {"k": 3, "M": 6, "B": 9}[text[-1]]
        shown = Decimal(text[:-1].replace(",", "")).scaleb(scale)
        decimals = len(text[:-1].partition(".")[2])
        assert abs(shown - amount) <= Decimal(1).scaleb(scale - decimals) / 2, (text, amount)
        return
    assert _PLAIN.match(text), f"{text!r} is not a whole amount"
    shown = Decimal(text.replace(",", ""))
    assert abs(shown - amount) <= (Decimal("0.005") if "." in text else Decimal("0.5")), (text, amount)


def cut_figures(text: str) -> list[str]:
    """Figures on the screen that are not whole: a digit group shorter than three, or an ellipsis."""
    bad = []
    for token in _FIGURE.findall(text):
        if "," not in token and "…" not in token:
            continue  # plain numbers: counts, days, percentages
        if not (_UNIT.match(token) or _PLAIN.match(token)):
            bad.append(token)
    return bad


_MONEY_TITLES = ("Value", "EV", "TV", "Gain", "Value now")
_HAS_FIGURE = re.compile(r"\d,\d{3}|\d[kMB]\b|\d\.\d\d\b")


def money_tables_fit(app) -> list[str]:
    """Every DataTable cell of a money column, or holding an amount, is no wider than its column
    (a DataTable crops what does not fit, without a mark)."""
    bad = []
    for table in app.screen.query(DataTable):
        for column in table.columns.values():
            if column.auto_width:
                continue  # as wide as its widest cell
            title = str(column.label).strip().rstrip("↓↑")
            for row_key in table.rows:
                cell = str(table.get_cell(row_key, column.key))
                if title not in _MONEY_TITLES and not _HAS_FIGURE.search(cell):
                    continue
                if cell_len(cell) > column.width:
                    bad.append(f"{title}: {cell!r} ({cell_len(cell)} > {column.width})")
    return bad


async def test_no_screen_cuts_an_amount_at_80x24(span):
    app = EvpipeApp(span, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        for key in "1234567":
            await pilot.press(key)
            await settle(pilot)
            text = without_header(app)
            assert cut_figures(text) == [], (key, text)
            assert money_tables_fit(app) == [], key
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("m")  # grouped by month: the subtotals too
        await settle(pilot)
        text = without_header(app)
        assert "open or won" in text and cut_figures(text) == [], text


@pytest.mark.parametrize("width", [56, 60, 64, 72, 80, 100])
async def test_the_header_never_cuts_a_figure(engine, span, width):
    # At 60 columns a TV of 100,464,299.57 showed as "100,464,299.5" (its last digit cut): each box's
    # figure and change take a unit when the box is narrower than they need.
    app = EvpipeApp(span, who="tester")
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        header = app.screen.query_one(KpiHeader)
        lines = screen_text(app).splitlines()[header.region.y : header.region.y + header.region.height]
        text = "\n".join(lines)
        assert cut_figures(text) == [], text
        assert lines[0].split()[:1] == ["TV"] and lines[1].lstrip().startswith(("▲", "▼", "●", "no")), text
        tv = kpis(engine).tv_cents
        assert_reads_back(lines[0].split()[1], Decimal(tv) / 100)


def without_header(app) -> str:
    """The screen's text but the KPI header's lines (the header is issue 9's point 2)."""
    lines = screen_text(app).splitlines()
    for header in app.screen.query(KpiHeader):
        region = header.region
        lines = lines[: region.y] + [""] * region.height + lines[region.y + region.height :]
    return "\n".join(lines)


def assert_table_reads_back(table: ProspectTable) -> None:
    """Every prospect's Value and EV on the pipeline table's lines read back in full (or with a unit)."""
    view = table.view
    width = table.scrollable_content_region.width
    starts, at = {}, 0
    for c in columns_for(width):
        starts[c.key] = (at, at + c.width)
        at += c.width + 1
    for item in view.lines:
        if not isinstance(item, int):
            continue  # a month's subtotal line
        row = view.rows[item]
        line = "".join(seg.text for seg in table._render_row(row, False, width))
        a, b = starts["value"]
        assert_reads_back(line[a:b].strip(), Decimal(row.value_cents) / 100)
        a, b = starts["ev"]
        ev = Decimal(to_cents(view.ladder.ev(row), micros=True)) / 100
        assert_reads_back(line[a:b].strip(), ev)


async def test_the_pipeline_columns_read_back(span):
    app = EvpipeApp(span, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        assert_table_reads_back(app.screen.query_one(ProspectTable))


async def test_focus_and_review_read_back(span):
    app = EvpipeApp(span, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("2")
        await settle(pilot)
        table = app.screen.query_one("#focus-table", DataTable)
        assert table.row_count >= 5
        for item, row_key in zip(app.screen.items, table.rows):
            assert_reads_back(str(table.get_cell(row_key, "value")), Decimal(item.value_cents) / 100)
            gain = Decimal(to_cents(item.gain_micros, micros=True)) / 100
            assert_reads_back(str(table.get_cell(row_key, "gain")), gain)
        await pilot.press("6")
        await settle(pilot)
        review = app.screen.review
        bridge = app.screen.query_one("#bridge", DataTable)
        for term, row_key in zip(review.terms, bridge.rows):
            assert_reads_back(str(bridge.get_cell(row_key, "tv")), Decimal(term.d_tv_cents) / 100)
            ev = Decimal(to_cents(term.d_ev_micros, micros=True)) / 100
            assert_reads_back(str(bridge.get_cell(row_key, "ev")), ev)


# ---------------------------------------------------------------- snapshots

SCREENS = {"pipeline": "1", "focus": "2", "review": "6"}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_snapshot_span_80x24(snap_compare, span, screen):
    async def open_screen(pilot):
        await settle(
            pilot,
            until=lambda a: a.pipeline is not None and a.pipeline.complete and not a.pipeline._loading,
            blink=False,
            last_pause=0,
        )
        await pilot.press(SCREENS[screen])
        await settle(pilot, blink=False, last_pause=0)

    assert snap_compare(EvpipeApp(span, who="tester"), terminal_size=(80, 24), run_before=open_screen)


def test_the_tables_spans_match_every_row():
    """row_spans (passes in C per stage) agrees with a plain loop over the rows."""
    import random

    from evpipe.models.ladder import ev_micros
    from evpipe.models.pipeline_view import Ladder, PipelineView, RowStore
    from evpipe.models.records import StageInfo
    from evpipe.tui.widgets.prospect_table import row_spans

    bps = [500, 1000, 1250, 3333, 8000, 10_000, 0]
    kinds = ["open"] * 5 + ["won", "lost"]
    ladder = Ladder.of([StageInfo(i, f"s{i}", i, bp, kind, 0) for i, (bp, kind) in enumerate(zip(bps, kinds), 1)])
    rng = random.Random(9)
    for scale in (1, 100, 10_000):
        rows = RowStore()
        for pid in range(1, 400):
            value = rng.randint(0, 5000) * scale
            rows.append_raw(pid, "n", "", rng.randint(1, 7), value, None, None, "o", "2026-11-01", 0, 1, "n")
        view = PipelineView(ladder)
        view.rows = rows
        value, ev = row_spans(view.rows, view.ladder)
        evs = [
            to_cents(ev_micros(v, ladder.kind(s), ladder.bp(s)), micros=True) for s, v in zip(rows.stage, rows.value)
        ]
        assert (value.low, value.high, value.cents_high) == (
            0,
            max(rows.value),
            max(v for v in rows.value if v % 100) if scale == 1 else 0,
        )
        assert ev.high == max(evs) and bool(ev.cents_high) == any(e % 100 for e in evs)
        assert ev.cents_high >= max([e for e in evs if e % 100], default=0)
        # in slices, the worker letting the UI thread in between: the same spans
        pauses: list[int] = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(prospect_table, "PICK_SLICE", 37)
            sliced = row_spans(view.rows, view.ladder, pause=lambda pauses=pauses: pauses.append(1))
        assert len(pauses) == 11  # (399 rows, 37 a slice)
        for whole, part in zip((value, ev), sliced):
            assert (part.low, part.high, part.cents_low, part.cents_high) == (
                whole.low,
                whole.high,
                whole.cents_low,
                whole.cents_high,
            )


def _value_cell(table: ProspectTable, name: str) -> str:
    """What the Value column shows on `name`'s line."""
    width = table.scrollable_content_region.width
    at = 0
    for c in columns_for(width):
        if c.key == "value":
            break
        at += c.width + 1
    view = table.view
    row = next(view.rows[i] for i in view.lines if isinstance(i, int) and view.rows[i].name == name)
    line = "".join(seg.text for seg in table._render_row(row, False, width))
    return line[at : at + c.width].strip()


async def test_a_column_narrows_again_when_its_largest_amount_is_edited_away(engine, db_url):
    """An edit widens a money column at once; one that takes away its largest amount (a typo of
    ten billion put right, or that prospect deleted) narrows it again once every row is counted
    in a worker. Before, every Value stayed in M ("0.00M" for 4,900) until the app was opened
    again."""
    store = Store(engine, who="tester")
    store.add("Typo deal", "4900", "Suspect", month="2026-12")
    store.add("Steady deal", "12,000", "Suspect", month="2026-12")
    app = EvpipeApp(db_url, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen, table = app.screen, app.screen.query_one(ProspectTable)
        assert _value_cell(table, "Steady deal") == "12,000"
        screen._apply_prospect(store.edit("Typo deal", value="9,999,999,999").prospect)
        await settle(pilot)
        assert _value_cell(table, "Steady deal") == "12.00k"  # (the column in M: 10,000.00M)
        screen._apply_prospect(store.edit("Typo deal", value="4,900").prospect)
        await settle(pilot, until=lambda a: _value_cell(table, "Steady deal") == "12,000")
        assert _value_cell(table, "Typo deal") == "4,900"
        screen._apply_prospect(store.edit("Typo deal", value="9,999,999,999").prospect)
        await settle(pilot)
        assert _value_cell(table, "Steady deal") == "12.00k"  # (the column in M: 10,000.00M)
        screen._apply_prospect(store.delete("Typo deal").prospect)
        await settle(pilot, until=lambda a: _value_cell(table, "Steady deal") == "12,000")


def test_the_headers_7_day_change_reads_as_it_is():
    """The header's 7-day change keeps its cents while they fit its cells: an EV up 0.25 read
    "▲ +0 7d". Whole amounts stay whole; one too wide for the cells takes a unit."""
    from evpipe.tui.widgets.kpi_header import money_change

    assert money_change(250_000, 0, micros=True).plain == "▲ +0.25 7d"
    assert money_change(0, 250_000, micros=True).plain == "▼ -0.25 7d"
    assert money_change(150_000, 0).plain == "▲ +1,500 7d"
    wide = money_change(999_999_999_999, 0).plain  # 9,999,999,999.99: wider than the cells
    assert wide.endswith(" 7d") and len(wide.removeprefix("▲ ").removesuffix(" 7d")) <= 13, wide


async def test_a_count_the_rows_changed_under_twice_keeps_what_they_widened(engine, db_url):
    """The recount of the money columns runs in a worker while rows may change: changed under
    it, it counts once more; changed again, it keeps the widest of the count and what the
    changes widened (never too narrow), rather than count again at every key of a burst."""
    from evpipe.tui.widgets.prospect_table import MoneySpan

    store = Store(engine, who="tester")
    store.add("Steady deal", "12,000", "Suspect", month="2026-12")
    app = EvpipeApp(db_url, who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        table = app.screen.query_one(ProspectTable)
        view = table.view
        wide = MoneySpan()
        wide.add(999_999_999_999)
        table._spans = (wide, table._spans[1])
        narrow = (MoneySpan(), MoneySpan())
        narrow[0].add(1_200_000)
        table._take_count(view.rows, view.ladder, view.rows.changes - 1, narrow, False)
        assert table._spans[0].high == 999_999_999_999  # joined: the widening kept
        table._take_count(view.rows, view.ladder, view.rows.changes, narrow, False)
        assert table._spans[0].high == 1_200_000  # unchanged since: taken as counted
