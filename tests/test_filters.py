"""Structured filters (models/filters.py): `/` in the app and `evpipe list --filter` read the same
strings by the same rule. Parsing, each field, bad filters in one line, the completion hint, the
columnar match against the per-row rule, the CLI against the rule, and the app's filter box."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from apphelpers import RecordingApp, settle, shows
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpipe.models import clock, open_db
from evpipe.models.errors import DomainError
from evpipe.models.filters import FIELD_HINT, hint, parse_filter
from evpipe.models.pipeline_view import Ladder, Row, RowStore, haystack, load_ladder, load_rows
from evpipe.models.records import StageInfo
from evpipe.models.store import Store
from evpipe.tui.cli import main

TODAY = date(2026, 11, 27)  # conftest pins the clock here
STAGES = [
    StageInfo(1, "Suspect", 1, 500, "open", 21),
    StageInfo(2, "Enquiry", 2, 1000, "open", 14),
    StageInfo(3, "Quote sent", 3, 2500, "open", 10),
    StageInfo(4, "Date held", 4, 5000, "open", 0),
    StageInfo(5, "Won", 5, 10000, "won", 0),
    StageInfo(6, "Lost", 6, 0, "lost", 0),
]
LADDER = Ladder.of(STAGES)


def parse(text: str):
    return parse_filter(text, STAGES, TODAY)


# ---------------------------------------------------------------- parsing


def test_fields_parse():
    f = parse("stage:quote owner:Sam month:2027-03 harbour")
    assert f.stage_ids == (frozenset({3}),)
    assert f.owners == (("sam",),)
    assert f.months == ((("2027-03", "2027-03"),),)
    assert f.words == ("harbour",)
    assert f.structured and not f.empty
    # a stage by the start of any word of its name, ignoring case
    assert parse("stage:SENT").stage_ids == (frozenset({3}),)
    assert parse("stage:d").stage_ids == (frozenset({4}),)  # Date held
    assert parse("stage:won").names_closed and not parse("stage:quote").names_closed
    # a field twice: either value
    assert parse("stage:quote stage:date").stage_ids == (frozenset({3, 4}),)
    assert parse("due:overdue due:week").due == ("overdue", "week")
    assert parse("stale").stale and parse("STALE").stale
    # not a field: searched as typed
    assert parse("10:30").words == ("10:30",)


def test_months_read_as_everywhere_else():
    # month:mar is the next March: in November 2026 that is March 2027 (models/values.py's rule)
    assert parse("month:mar").months == ((("2027-03", "2027-03"),),)
    assert parse("month:nov").months == ((("2026-11", "2026-11"),),)  # this month is this year's
    assert parse("month:2027-03..2027-06").months == ((("2027-03", "2027-06"),),)
    assert parse("month:mar..jun").months == ((("2027-03", "2027-06"),),)
    assert parse("month:dec..nov").months == ((("2026-12", "2027-11"),),)  # to the November after
    assert parse("month:2027-03..").months == ((("2027-03", None),),)
    assert parse("month:..2027-01").months == (((None, "2027-01"),),)
    assert parse("month:none").months == ((None,),)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("foo:bar", "filter: foo: is not a field; the fields are stage:, owner:, month:, due:, stale"),
        ("stage:zzz", "filter: no stage starts with 'zzz'; the stages are Suspect, Enquiry, Quote sent"),
        ("month:13", "filter: month: '13' is not a month"),
        ("month:2027-06..2027-03", "filter: month:2027-06..2027-03 ends before it starts"),
        ("month:..", "filter: month: needs a month on at least one side"),
        ("due:soon", "filter: due:soon is not known; use due:overdue or due:week"),
        ("stage:", "filter: stage: needs a value, e.g. stage:quote"),
    ],
)
def test_a_bad_filter_says_what_is_wrong_in_one_line(text, says):
    with pytest.raises(DomainError) as caught:
        parse(text)
    message = str(caught.value)
    assert message.startswith(says) and "\n" not in message


def test_the_hint_shows_the_fields_and_each_fields_values():
    assert hint("", STAGES) == FIELD_HINT
    assert hint("harbour st", STAGES) == FIELD_HINT  # a field's name begun
    assert hint("harbour ", STAGES) == FIELD_HINT
    assert hint("stage:", STAGES) == "stages: Suspect, Enquiry, Quote sent, Date held, Won, Lost"
    assert hint("stage:qu", STAGES) == "stages: Quote sent"
    assert "overdue" in hint("due:", STAGES) and "week" in hint("due:", STAGES)
    assert "mar" in hint("month:", STAGES)
    assert hint("harbour", STAGES) == ""


# ---------------------------------------------------------------- the rule, one row and every row


def row(pid, stage=2, month="2027-03", follow=None, owner="sam", touched="2026-11-20", name="Harbour") -> Row:
    return Row(pid, name, "Co", stage, 100_000, month, follow, owner, touched, 0, 1)


def test_each_field_on_one_row():
    def holds(text, r):
        return parse(text).holds(r, LADDER, haystack(r.name, r.company, "", ""), TODAY)

    assert holds("stage:enq", row(1)) and not holds("stage:quote", row(1))
    assert holds("owner:sa", row(1)) and not holds("owner:mere", row(1))
    assert holds("month:mar", row(1)) and not holds("month:apr", row(1)) and not holds("month:none", row(1))
    assert holds("month:none", row(1, month=None)) and not holds("month:2027-01..", row(1, month=None))
    assert holds("due:overdue", row(1, follow="2026-11-26")) and not holds("due:overdue", row(1, follow="2026-11-27"))
    assert holds("due:week", row(1, follow="2026-11-27")) and holds("due:week", row(1, follow="2026-12-03"))
    assert not holds("due:week", row(1, follow="2026-12-04")) and not holds("due:week", row(1))
    assert not holds("due:overdue", row(1, stage=5, follow="2026-11-01"))  # closed: never overdue
    # stale: untouched longer than the stage allows (Enquiry 14 days); Date held never goes stale
    assert holds("stale", row(1, touched="2026-11-12")) and not holds("stale", row(1, touched="2026-11-13"))
    assert not holds("stale", row(1, stage=4, touched="2020-01-01"))
    assert holds("harbour stage:enq owner:s", row(1)) and not holds("harbour stage:enq owner:x", row(1))


days = st.dates(min_value=TODAY - timedelta(days=40), max_value=TODAY + timedelta(days=40)).map(date.isoformat)
months = st.sampled_from(["2026-10", "2026-11", "2027-01", "2027-03", "2027-06", None])
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([s.id for s in STAGES]),
        months,
        st.none() | days,
        st.sampled_from(["sam", "Samuel", "mere", "aroha"]),
        days,
        st.sampled_from(["Harbour party", "Kauri wedding", "harbour KAURI", "Tui"]),
    ),
    max_size=30,
)
terms = st.sampled_from(
    [
        "stage:enq",
        "stage:quote",
        "stage:won",
        "stage:s",
        "owner:sam",
        "owner:m",
        "month:mar",
        "month:2026-10..2027-01",
        "month:none",
        "month:2027-03..",
        "due:overdue",
        "due:week",
        "stale",
        "harbour",
        "kauri",
        "party",
        "HARBOUR",
    ]
)
filters = st.lists(terms, max_size=4).map(" ".join)


@given(rows_strategy, filters)
def test_the_columnar_match_is_the_per_row_rule(data, text):
    store = RowStore()
    for i, (stage, month, follow, owner, touched, name) in enumerate(data, start=1):
        store.put(Row(i, name, "", stage, 1000, month, follow, owner, touched, 0, 1))
    f = parse(text)
    expected = {r.id for r in store.values() if f.holds(r, LADDER, haystack(r.name, r.company, "", ""), TODAY)}
    assert f.select(store, LADDER, TODAY) == expected


# ---------------------------------------------------------------- the command line


def run(db_url: str, *args: str):
    return CliRunner().invoke(main, ["--db", db_url, *args])


def listed(db_url: str, text: str) -> list[str]:
    result = run(db_url, "list", "--filter", text, "--json")
    assert result.exit_code == 0, result.stderr
    return [p["name"] for p in json.loads(result.stdout)]


@pytest.fixture
def rep_db(engine, db_url) -> str:
    s = Store(engine, who="sam")
    s.add("Harbour party", "9500", "Quote sent", month="2027-03", follow_up="2026-11-20")
    s.add("Kauri wedding", "14500", "Enquiry", month="2027-01", owner="mere", follow_up="2026-11-30")
    s.add("Tui launch", "3000", "Suspect", month="2027-06", at=datetime(2026, 10, 1, 9, 0))
    s.add("Old win", "2000", "Quote sent", month="2026-11")
    s.move("Old win", "won")
    return db_url


def test_list_filter_on_the_command_line(rep_db):
    assert listed(rep_db, "stage:quote") == ["Harbour party"]
    assert listed(rep_db, "stage:won") == ["Old win"]
    assert listed(rep_db, "owner:mere") == ["Kauri wedding"]
    assert listed(rep_db, "month:mar") == ["Harbour party"]
    assert listed(rep_db, "month:2027-01..2027-06") == ["Kauri wedding", "Harbour party", "Tui launch"]
    assert listed(rep_db, "due:overdue") == ["Harbour party"]
    assert listed(rep_db, "due:week") == ["Kauri wedding"]
    assert listed(rep_db, "stale") == ["Tui launch"]  # untouched since 1 October on Suspect (21 days)
    assert listed(rep_db, "harbour stage:quote owner:sam") == ["Harbour party"]
    assert listed(rep_db, "harbour owner:mere") == []
    text = run(rep_db, "list", "--filter", "stage:enq").stdout
    assert "Kauri wedding" in text and "Harbour party" not in text


def test_a_bad_filter_on_the_command_line_is_one_line(rep_db):
    result = run(rep_db, "list", "--filter", "stage:zzz")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "evpipe: filter: no stage starts with 'zzz'; the stages are Suspect, Enquiry, Quote sent, Date held, "
        "Deposit paid, Won, Lost"
    ]


prospects_strategy = st.lists(
    st.tuples(
        st.sampled_from(["Suspect", "Enquiry", "Quote sent", "Date held", "Won", "Lost"]),
        st.sampled_from(["2026-10", "2026-12", "2027-03", "2027-05", None]),
        st.none() | st.integers(-20, 20),
        st.sampled_from(["sam", "mere", "samuel"]),
        st.integers(0, 40),
        st.sampled_from(["Harbour party", "Kauri wedding", "Tui launch", "harbour kauri"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prospects_strategy, filters)
def test_the_command_line_lists_what_the_rule_lets_through(data, text):
    """`evpipe list --filter` against the filter's per-row rule, on a real database."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'p.db'}"
        engine = open_db(url)
        try:
            s = Store(engine, who="tester")
            for i, (stage, month, follow, owner, idle, name) in enumerate(data):
                touched = clock.now() - timedelta(days=idle)
                follow_up = (TODAY + timedelta(days=follow)).isoformat() if follow is not None else None
                closed = stage in ("Won", "Lost")
                p = s.add(
                    f"{name} {i}",
                    "1000",
                    "Enquiry" if closed else stage,
                    month=month,
                    owner=owner,
                    follow_up=follow_up,
                    at=touched,
                ).prospect
                if closed:
                    s.move(p.id, stage.lower(), at=touched)
            stages, archived = load_ladder(engine)
            ladder = Ladder.of(stages, extra=archived)
            rows, _ = load_rows(engine)
            try:
                f = parse_filter(text, stages, TODAY)
            except DomainError:
                return
            expected = sorted(
                rows[pid].name for pid in rows if f.holds(rows[pid], ladder, rows.hay[rows._pos(pid)], TODAY)
            )
            assert sorted(listed(url, text)) == expected
        finally:
            engine.dispose()


# ---------------------------------------------------------------- the app's filter box

KEY_NAMES = {":": "colon", " ": "space", ".": "full_stop", "-": "minus"}


async def type_text(pilot, text: str) -> None:
    await pilot.press(*(KEY_NAMES.get(ch, ch) for ch in text))


async def test_the_filter_box_reads_fields_hints_and_says_what_is_wrong(rep_db, engine):
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        screen = app.pipeline
        await pilot.press("slash")
        await settle(pilot)
        assert "fields: stage:quote owner:sam" in await shows(app, pilot, "fields:")
        await type_text(pilot, "stage:")
        assert "stages: Suspect, Enquiry" in await shows(app, pilot, "stages:")
        await type_text(pilot, "quo")
        await settle(pilot)
        names = [screen.view.rows[i].name for i in screen.view.lines]
        assert names == ["Harbour party"]
        text = await shows(app, pilot, "1 shown", "filter: stage:quo")
        # a word, a second field: AND
        await type_text(pilot, " owner:mere")
        await settle(pilot)
        assert list(screen.view.lines) == []
        # a bad filter: said under the box, and the rows are those of the words before it (they
        # were those of the last text read, `stage:quo due`: none)
        for _ in range(len("owner:mere")):
            await pilot.press("backspace")
        await type_text(pilot, "due:soon")
        await settle(pilot)
        text = await shows(app, pilot, "due:soon is not known", "filter: stage:quo ·")
        assert "due:soon is not known" in text and "filter: stage:quo ·" in text
        assert [screen.view.rows[i].name for i in screen.view.lines] == ["Harbour party"]
        # a message longer than its line: the clauses that fit whole (it was cut mid-sentence)
        for _ in range(len("due:soon")):
            await pilot.press("backspace")
        await type_text(pilot, "month:2027-13")
        text = await shows(app, pilot, "no month 13")
        said = next(line for line in text.splitlines() if "no month 13" in line)
        assert said.strip() == "filter: month: '2027-13' has no month 13; months run 01-12"
        # stage:won shows won prospects although closed ones are out of the way
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("slash")
        await type_text(pilot, "stage:won")
        await settle(pilot)
        assert [screen.view.rows[i].name for i in screen.view.lines] == ["Old win"]
        text = await shows(app, pilot, "with won and lost")
        await pilot.press("escape")
        await settle(pilot)
        text = await shows(app, pilot, "open only")
        assert "Old win" not in text
