"""The command line streams what it lists (issue 13, point 7): `list --json` and `list` write rows
as the database gives them, with the same bytes as when the whole list was built in memory, and a
command's memory does not grow with the pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len, set_cell_size

from evpipe.models import clock, open_db
from evpipe.models.queries import prospect_rows
from evpipe.models.store import Store
from evpipe.models.values import clean_text, format_money, format_percent, money_str
from evpipe.tui.cli import main
from evpipe.tui.cli.main import emit_json, emit_json_array, emit_json_records

ROOT = Path(__file__).resolve().parent.parent

#: Names that JSON and a terminal must each handle: quotes, backslashes, wide characters, an emoji,
#: markup, a name longer than the table's 40 cells (ASCII and wide).
NAMES = [
    'Harbour "Christmas" party',
    "Back\\slash \\n not a newline",
    "Ōtāhuhu wedding",
    "漢字の会社 launch",
    "Rocket 🚀 cruise",
    "[bold]markup[/] {braces}: colon, comma",
    "A" * 60,
    "長い名前" * 12,
    "trailing spaces are trimmed   ",
]


def run(db: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def db(db_path, db_url) -> str:
    """A pipeline with awkward names, every kind of stage, months and follow-ups or none, two owners."""
    eng = open_db(db_url)
    s = Store(eng, who="tester")
    stages = [st.name for st in s.ladder()]
    for i in range(60):
        name = NAMES[i % len(NAMES)] + f" #{i}"
        s.add(
            name,
            f"{(i * 7919) % 250000 + 1}.{i % 100:02d}",
            stages[i % len(stages)],
            month=None if i % 5 == 0 else f"2027-{i % 12 + 1:02d}",
            follow_up=None if i % 3 == 0 else f"2027-01-{i % 28 + 1:02d}",
            owner="sam" if i % 2 else "mere",
            company=f"Co {i}",
        )
    eng.dispose()
    return str(db_path) if db_url.startswith("sqlite") else db_url


def whole_json(db: str, **query) -> str:
    """`list --json` as it was written before it streamed: one list, built whole, dumped at once."""
    eng = open_db(db if "://" in db else f"sqlite:///{db}")
    try:
        rows = prospect_rows(eng, **query)
    finally:
        eng.dispose()
    data = [
        {
            "id": r.id,
            "name": r.name,
            "company": r.company,
            "stage": r.stage,
            "kind": r.kind,
            "probability": r.probability_bp / 10_000,
            "value": money_str(r.value_cents),
            "ev": money_str(r.ev_micros, micros=True),
            "month": r.month,
            "owner": r.owner,
            "next_follow_up": r.next_follow_up.isoformat() if r.next_follow_up else None,
        }
        for r in rows
    ]
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def whole_table(db: str, **query) -> str:
    """`list` as it was written before it streamed: every cell in memory, widths from all of them."""
    eng = open_db(db if "://" in db else f"sqlite:///{db}")
    try:
        rows = prospect_rows(eng, **query)
    finally:
        eng.dispose()

    def safe(text):
        return clean_text(text or "", field="text", max_len=10**9)

    def clip(text, width):
        return text if cell_len(text) <= width else set_cell_size(text, width - 1).rstrip() + "…"

    headers = ["id", "name", "stage", "p", "value", "EV", "month", "owner"]
    body = [
        [
            str(r.id),
            clip(safe(r.name), 40),
            safe(r.stage),
            format_percent(r.probability_bp),
            format_money(r.value_cents),
            format_money(r.ev_micros, micros=True),
            r.month or "",
            safe(r.owner),
        ]
        for r in rows
    ]
    right = {0, 3, 4, 5}
    widths = [max([cell_len(h)] + [cell_len(row[i]) for row in body]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            (" " * (w - cell_len(c)) + c) if i in right else (c + " " * (w - cell_len(c)))
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in body]) + "\n"


@pytest.mark.both_databases
def test_list_json_is_the_same_bytes_as_the_whole_list(db):
    assert run(db, "list", "--json") == whole_json(db)
    assert run(db, "list", "--json", "--owner", "sam") == whole_json(db, owner="sam")
    assert json.loads(run(db, "list", "--json", "--owner", "nobody")) == []
    assert run(db, "list", "--json", "--owner", "nobody") == "[]\n"


@pytest.mark.both_databases
def test_list_json_with_awkward_stage_names_and_one_stage(db):
    """The stage's lines of each record are written once a stage (by Python, with the database
    writing the rest on SQLite): names with quotes, a backslash, a percent sign and wide letters
    come out as the json module writes them, and one stage alone is listed in the same order."""
    eng = open_db(db if "://" in db else f"sqlite:///{db}")
    try:
        s = Store(eng, who="tester")
        ladder = s.ladder()
        s.update_stage(ladder[0].name, name='Quote "sent" 100% \\ ½ 漢字')
        s.update_stage(ladder[-1].name, name="Lost %s %d '")
        stage_id = ladder[1].id
    finally:
        eng.dispose()
    assert run(db, "list", "--json") == whole_json(db)
    assert '"stage": "Quote \\"sent\\" 100% \\\\ ½ 漢字"' in run(db, "list", "--json")
    assert run(db, "list", "--json", "--stage", ladder[1].name) == whole_json(db, stage_id=stage_id)


def test_sqlite_json_quote_is_the_json_modules_text():
    """`list --json` on SQLite has SQLite quote each text (rawdb.json_quote): the same text as
    json.dumps(..., ensure_ascii=False) for every character a name could hold (control characters,
    quotes, backslashes, DEL, line and paragraph separators, wide letters, emoji), and for none."""
    import random
    import sqlite3

    from evpipe.models.rawdb import json_quote

    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0, 0x80)] + ["\u2028", "\u2029", "½", "漢", "🚀", "\ufeff", "\u00a0"]
    texts = ["", '"', "\\", "a%sb", None] + ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(3000)]
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (a TEXT)")
    connection.executemany("INSERT INTO t VALUES (?)", [(t,) for t in texts])
    made = [r[0] for r in connection.execute(f"SELECT {json_quote('a')} FROM t ORDER BY rowid")]
    assert made == [json.dumps(t, ensure_ascii=False) for t in texts]


def test_the_listing_is_read_in_its_order_never_sorted(db_path):
    """Each query of the listing walks the listing index (models/queries.py): SQLite neither sorts
    the prospects nor looks a row up in the table for each (what made a million take 10 s)."""
    import sqlite3

    from evpipe.models.queries import _LADDER_SQL, _MONTH_PARTS
    from evpipe.tui.cli.prospects import prospect_json_sql

    eng = open_db(f"sqlite:///{db_path}")
    eng.dispose()
    connection = sqlite3.connect(db_path)
    stages = connection.execute(_LADDER_SQL).fetchall()
    for columns, params in (prospect_json_sql(stages), ("p.id, s.name, p.value_cents", {})):
        for owner in ("", " AND p.owner = 'sam'"):
            for month, order in _MONTH_PARTS:
                sql = (
                    f"SELECT {columns} FROM prospect p JOIN stage s ON s.id = p.stage_id WHERE p.deleted_at IS NULL"
                    f"{owner} AND p.stage_id IN (1, 2) AND {month} ORDER BY {order}"
                )
                plan = " | ".join(r[3] for r in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params))
                assert "COVERING INDEX ix_prospect_listing" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.both_databases
def test_list_table_is_the_same_bytes_as_the_whole_table(db):
    out = run(db, "list")
    assert out == whole_table(db)
    assert "漢字の会社" in out and "…" in out  # wide names, and names cut at 40 cells, were in it
    assert run(db, "list", "--owner", "mere") == whole_table(db, owner="mere")


def test_list_filter_streams_only_the_matches(db):
    everything = json.loads(run(db, "list", "--json"))
    matched = json.loads(run(db, "list", "--json", "--filter", "owner:sam 🚀"))
    assert matched == [r for r in everything if r["owner"] == "sam" and "🚀" in r["name"]]
    assert matched  # the filter found some
    lines = run(db, "list", "--filter", "owner:sam 🚀").splitlines()
    assert len(lines) == 2 + len(matched)


def test_emit_json_array_matches_emit_json_across_batches(capsys):
    """Every way the writer can end a batch: items flat or nested, none, one, a batch and one more."""
    flat = [{"id": i, "name": f'n "{i}"\n\\', "p": i / 7, "none": None, "ok": i % 2 == 0, "é": "漢"} for i in range(7)]
    nested = [{"a": [1, {"b": None}], "c": {}}, [], {}, "text", 3]
    for items, is_flat in ((flat, True), (flat, False), (nested, False), ([], True), (flat[:1], True)):
        for batch in (1, 2, 3, 500):
            emit_json(items)
            want = capsys.readouterr().out
            emit_json_array(iter(items), flat_objects=is_flat, batch=batch)
            assert capsys.readouterr().out == want, (items, batch)


def test_emit_json_records_matches_emit_json_across_batches(capsys):
    """Records of plain values written through the C encoder in one call a batch, and the records
    that hold something else (a list, a dict, a date, a NUL in text): the bytes of `emit_json`."""
    keys = ("id", "name", "p", "none", "ok", "é", 'a "%s" key', "big")
    flat = [(i, f'n "{i}"\n\\\x00%s', i / 7, None, i % 2 == 0, "漢", "-0.00", 10**30) for i in range(7)]
    odd = [(1, [1, {"b": None}], {}, {"x": 1}, [], date(2026, 11, 27), float("nan"), float("inf"))]
    for records in (flat, odd, flat + odd + flat, [], flat[:1]):
        for batch in (1, 2, 3, 1000):
            emit_json([dict(zip(keys, r)) for r in records])
            want = capsys.readouterr().out
            emit_json_records(keys, iter(records), batch=batch)
            assert capsys.readouterr().out == want, (records, batch)
    emit_json([{}, {}])
    want = capsys.readouterr().out
    emit_json_records((), [(), ()])
    assert capsys.readouterr().out == want


def test_emit_json_with_streamed_lists_matches_the_whole_document(capsys):
    """A list written as its items come, anywhere in a document (a value, an item, nested, the
    document itself, empty), and text that looks like the mark: the bytes of the whole document."""
    from evpipe.tui.cli.main import Streamed

    items = [{"id": i, "name": f'"{i}"\x00:0', "tags": ["a", {"b": None}], "p": i / 3} for i in range(5)]
    docs = [
        lambda wrap: {"months": [{"month": "2026-11", "still_open": wrap(items), "n": 1} for _ in "ab"], "total": {}},
        lambda wrap: [wrap(items), wrap([]), wrap([[1, 2], []]), "\x00:0"],
        lambda wrap: wrap(items),
        lambda wrap: wrap([]),
        lambda wrap: {"a": {"b": {"c": wrap(["x"] * 1200)}}},
    ]
    for doc in docs:
        emit_json(doc(list))
        want = capsys.readouterr().out
        emit_json(doc(lambda xs: Streamed(iter(xs))))
        assert capsys.readouterr().out == want


_NO_SQLALCHEMY = (
    "import sys\n"
    "from evpipe.tui.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')), file=sys.stderr)\n"
)


def _cli_imports(db, *args: str) -> tuple[str, str]:
    """`evpipe --db DB ARGS` in a process of its own: (its output, the SQLAlchemy and SQLModel
    modules it imported, as the list's text: "[]" when none)."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_SQLALCHEMY, "--db", db, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        check=True,
    )
    return done.stdout, done.stderr.strip().splitlines()[-1]


def test_kpi_and_list_read_a_current_file_without_sqlalchemy(db):
    """`kpi`, `list --json`, `focus` and `forecast` on an SQLite file at the newest schema import no
    SQLAlchemy (half a second of every run); their output is what they wrote with it."""
    for args in (
        ["kpi"],
        ["kpi", "--json", "--by", "owner"],
        ["list", "--json"],
        ["list", "--owner", "sam"],
        ["focus"],
        ["focus", "--json", "--owner", "sam", "--limit", "7"],
        ["forecast"],
        ["forecast", "--json", "--owner", "mere"],
    ):
        out, imported = _cli_imports(db, *args)
        assert imported == "[]", (args, imported)
        assert out == run(db, *args)


def test_review_reads_a_current_file_without_sqlalchemy(db):
    """`review` on an SQLite file at the newest schema whose KPI history has a reading of the day
    before the period imports no SQLAlchemy; without one it replays through the engine. Either way
    it says what the review read through SQLAlchemy says."""
    from evpipe.models.history import record_snapshot
    from evpipe.models.review import review

    def cli(*args: str) -> tuple[str, list[str]]:
        out, imported = _cli_imports(db, *args)
        return out, [imported]

    eng = open_db(f"sqlite:///{db}")
    try:
        replayed, imported = cli("review", "--format", "json")
        assert imported != ["[]"]  # no reading before the period: the start is replayed, by SQLAlchemy
        assert json.loads(replayed) == json.loads(json.dumps(review(eng).to_json()))
        record_snapshot(eng, at=clock.now() - timedelta(days=7))  # a reading of the day before the 7 days
        for args in (["review", "--format", "json"], ["review", "--who", "tester", "--format", "json"]):
            out, imported = cli(*args)
            assert imported == ["[]"], args
            who = "tester" if "--who" in args else None
            assert json.loads(out) == json.loads(json.dumps(review(eng, who=who).to_json())), args
        out, imported = cli("review")
        assert imported == ["[]"] and out == run(db, "review")
    finally:
        eng.dispose()


def test_money_text_by_integers_is_the_decimal_text():
    """`money_str` on whole numbers (integer arithmetic) against the Decimal rule it stands for:
    rounding half-up at a half cent of EV, negative amounts, '-0.00' for a negative EV under half a
    cent, and amounts beyond a float's precision."""
    from decimal import ROUND_HALF_UP, Decimal

    amounts = [0, 1, -1, 49, 50, 51, -49, -50, -51, 4999, 5000, 5001, -4999, -5000, -5001, 10**20 + 1, -(10**20) - 1]
    amounts += [(-1) ** i * (i * 7919) ** 3 for i in range(2000)]
    for a in amounts:
        cents = format((Decimal(a) / 100).quantize(Decimal("0.01")), "f")
        micros = format((Decimal(a) / 1_000_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")
        assert (money_str(a), money_str(a, micros=True)) == (cents, micros), a
    assert money_str(Decimal(1250)) == "12.50" and money_str(-4000, micros=True) == "-0.00"


def test_money_text_made_by_sqlite_is_money_str():
    """`list --json` on SQLite has SQLite write the amounts (rawdb.money_text): the same text as
    `money_str` for cents and for EV micros, at every rounding edge and sign, up to the largest
    EV a prospect can have."""
    import random
    import sqlite3

    from evpipe.models.rawdb import money_text
    from evpipe.models.values import MAX_VALUE_CENTS

    rng = random.Random(5)
    edges = [0, 1, -1, 49, 50, 51, -49, -50, -51, 4999, 5000, 5001, -4999, -5000, -5001, 9999, 10000, 10001]
    largest = MAX_VALUE_CENTS * 10_000
    amounts = edges + [largest, -largest] + [rng.randint(-largest, largest) for _ in range(3000)]
    amounts += [rng.randint(0, 10**6) * 10_000 + rng.choice([4999, 5000, 5001]) for _ in range(500)]
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (a INTEGER)")
    connection.executemany("INSERT INTO t VALUES (?)", [(a,) for a in amounts])
    made = connection.execute(f"SELECT a, {money_text('a')}, {money_text('a', micros=True)} FROM t").fetchall()
    assert [(a, money_str(a), money_str(a, micros=True)) for a in amounts] == made


def _peak_kib(db: str, *args: str) -> int:
    """Peak memory (max RSS, KiB) of a real `evpipe` process writing to /dev/null."""
    code = (
        "import resource, sys\n"
        "from evpipe.tui.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", db, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, EVPIPE_NOW="2026-11-27T10:00:00"),
        check=True,
    )
    return int(done.stderr.strip().splitlines()[-1])


def test_list_memory_does_not_grow_with_the_pipeline(tmp_path, monkeypatch):
    """30,000 prospects list in about the memory of 1,000: when the list was built whole, the JSON
    took about 3.5 KiB a prospect (+100 MiB here), the table about 1.5 KiB."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setenv("EVPIPE_NOW", "2026-11-27T10:00:00")  # the builder sets it; put back after
    from app_speed import build

    small, big = tmp_path / "small.db", tmp_path / "big.db"
    build(small, 1_000)
    build(big, 30_000)
    for args in (("list", "--json"), ("list",)):
        grew = _peak_kib(str(big), *args) - _peak_kib(str(small), *args)
        assert grew < 15 * 1024, (args, grew)


@pytest.mark.both_databases
def test_review_starts_from_the_nearest_reading_with_the_replays_figures(engine, monkeypatch):
    """A month of daily work (adds, moves, a probability change, an owner handed over, a delete and
    its undo, a win, a loss, a value edit), read on most days but not all: the review's start, from
    the nearest reading plus the journal since, is the full replay's figure for every period, for
    the team and for each owner; and it does not replay when a reading is there to start from."""
    from datetime import datetime, timedelta

    from evpipe.models import history, review
    from evpipe.models.kpi import Kpi, Scope

    s = Store(engine, who="tester")
    stages = [st.name for st in s.ladder() if st.kind == "open"]
    unread = {9, 10, 16, 20, 21, 22}
    for day in range(1, 28):
        at = datetime(2026, 11, day, 10)
        p = s.add(
            f"Deal {day}",
            str(1000 + day * 137),
            stages[day % len(stages)],
            month=f"2026-{11 + day % 2:02d}",
            owner="sam" if day % 2 else "mere",
            at=at,
        ).prospect
        if day % 2 == 0 and day > 2:
            s.move(f"Deal {day - 1}", "next", at=at + timedelta(hours=1))
        if day == 5:
            s.set_probability(stages[1], 35, at=at + timedelta(hours=2))
        if day == 8:
            s.edit("Deal 3", owner="mere", at=at + timedelta(hours=2))
        if day == 11:
            s.delete("Deal 4", at=at + timedelta(hours=2))
        if day == 12:
            s.undo(at=at + timedelta(hours=2))
        if day == 14:
            s.move("Deal 6", "won", at=at + timedelta(hours=2))
        if day == 15:
            s.move("Deal 7", "lost", reason="price", at=at + timedelta(hours=2))
        if day == 17:
            s.edit(p.id, value="99999", at=at + timedelta(hours=2))
        if day not in unread:
            history.record_snapshot(engine, at=datetime(2026, 11, day, 18))
    monkeypatch.setenv("EVPIPE_NOW", "2026-11-27T19:00:00")
    replayed = []
    real = history.kpis_before

    def counted(*args, **kw):
        replayed.append(args[1])
        return real(*args, **kw)

    monkeypatch.setattr(history, "kpis_before", counted)  # the review imports it when it replays
    for days in range(1, 28):
        start_at = review.parse_since(f"{days}d")
        for owner in (None, "mere", "sam"):
            scope = Scope(owner=owner)
            want = real(engine, start_at, scope)
            assert review.start_kpis(engine, start_at, scope) == want, (days, owner)
            assert want != Kpi() or days == 27 or (owner == "mere" and days == 26)  # before the first
    # replayed only before an owner's first reading, and for an owner after a day not read
    odd = [at for at in replayed if not (at <= datetime(2026, 11, 2) or at.day - 1 in unread)]
    assert not odd, odd
    assert len(replayed) < 27, len(replayed)


@pytest.mark.both_databases
def test_focus_and_follow_ups_by_the_follow_up_index_are_the_same_lists(db_url, monkeypatch):
    """Focus and the follow-up lists read the overdue and due by the follow-up index, and the stale
    by reading the table straight through: the same prospects in the same order as sorting every
    open prospect, for any limit and owner, with fewer overdue than the limit too."""
    from evpipe.models import clock, focus
    from evpipe.models.rawdb import raw_cursor

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setenv("EVPIPE_NOW", "2026-11-27T10:00:00")
    from app_speed import build

    if db_url.startswith("sqlite"):
        eng = open_db(build(Path(db_url.removeprefix("sqlite:///")), 3_000))
    else:  # the same pipeline through the store (the builder writes SQLite)
        eng = open_db(db_url)
        s = Store(eng, who="tester")
        for i in range(300):
            s.add(
                f"P{i}",
                str(1000 + i * 37 % 900),
                None,
                owner="sam" if i % 3 else "mere",
                follow_up=f"2026-11-{i % 30 + 1:02d}",
            )

    def everything_sorted(owner, limit):
        pace = focus.load_pace(eng, with_prospects=False)
        with raw_cursor(eng) as cur:
            q = focus._query(cur, clock.today(), owner, pace)
            dated = f"CASE WHEN {q.group} < 2 THEN prospect.next_follow_up ELSE NULL END"
            order = (
                f"{q.group}, {dated}, {q.gain} DESC, prospect.next_follow_up IS NULL, prospect.next_follow_up, "
                f"{q.idle} DESC, prospect.id"
            )
            return focus._items(cur, f"{q.select} ORDER BY {order} LIMIT {limit}", q.params, q.nexts, pace)

    def follow_ups_sorted(which, owner):
        pace = focus.load_pace(eng, with_prospects=False) if which == "stale" else None
        with raw_cursor(eng) as cur:
            q = focus._query(cur, clock.today(), owner, pace)
            order = f"{q.idle} DESC" if which == "stale" else "prospect.next_follow_up"
            plain = "prospect JOIN stage ON stage.id = prospect.stage_id"  # by whatever index the database likes
            sql = (
                f"{q.select.replace(f'FROM {q.tables} WHERE', f'FROM {plain} WHERE')} AND {getattr(q, which)} "
                f"ORDER BY {order}, {q.gain} DESC, prospect.id LIMIT 50"
            )
            return [i.id for i in focus._items(cur, sql, q.params, q.nexts, pace)]

    overdue = len(focus.follow_ups(eng, "overdue", limit=100_000))
    assert overdue > 5
    for owner in (None, "mere", "sam"):
        for limit in (1, 5, 20, overdue - 1, overdue, overdue + 1, 1000):
            assert focus.focus(eng, limit=limit, owner=owner) == everything_sorted(owner, limit), (owner, limit)
        for which in ("overdue", "due", "stale"):
            assert [i.id for i in focus.follow_ups(eng, which, owner=owner)] == follow_ups_sorted(which, owner)
    eng.dispose()


def test_normal_range_sums_the_same_fractions():
    """The normal range's mean and spread, summed in integers over one denominator, are the exact
    fractions summed one prospect at a time."""
    import math
    import random
    from fractions import Fraction

    from evpipe.models.forecast_range import FULL_BP, Normal

    rng = random.Random(13)
    items = [(rng.randint(1, 10**9), rng.randint(1, FULL_BP - 1)) for _ in range(5000)]
    n = Normal(123_456, items)
    mean = Fraction(123_456) + sum((Fraction(v * bp, FULL_BP) for v, bp in items), Fraction(0))
    var = sum((Fraction(v * v * bp * (FULL_BP - bp), FULL_BP * FULL_BP) for v, bp in items), Fraction(0))
    assert (n.mean, n.sd) == (float(mean), math.sqrt(var))
    assert [n.quantile(q) for q in (10, 50, 90)] == sorted(n.quantile(q) for q in (10, 50, 90))


def _evpipe(db: str, *args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from evpipe.tui.cli import main; main(sys.argv[1:])", "--db", db, *args]


def test_list_json_through_a_pipe_is_the_same_bytes_and_a_reader_may_stop(db):
    """`list --json | reader`: the rows are written by a thread of their own while the next are read
    (a pipe's reader makes each write wait), into a pipe made 1 MiB on Linux. A slow reader gets
    the same bytes; one that stops early (`| head`) ends the command quietly, with success."""
    env = dict(os.environ, EVPIPE_NOW="2026-11-27T10:00:00")
    slow = subprocess.Popen(
        _evpipe(db, "list", "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    assert slow.stdout is not None and slow.stderr is not None
    got = b""
    while piece := slow.stdout.read(97):  # a small read at a time: the writer waits on the pipe
        got += piece
    assert slow.wait() == 0 and slow.stderr.read() == b""
    assert got.decode() == whole_json(db)

    # far more than any pipe holds (21 MB), through the command line's own error handling
    code = (
        "from evpipe.tui.cli.main import domain_errors, emit_json_texts\n"
        "domain_errors(lambda: emit_json_texts([[b'1'] * 3000 for _ in range(2300)]))()\n"
    )
    quitter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert quitter.stdout is not None and quitter.stderr is not None
    assert quitter.stdout.read(10) == b"[\n  1,\n  1"
    quitter.stdout.close()  # the reader has gone
    assert quitter.wait(timeout=60) == 0
    assert quitter.stderr.read() == b""  # no traceback, no message


def test_sums_over_months_read_the_live_stage_index_and_a_months_few_rows_the_listing_index(db_path):
    """The KPI sums over a range of months (a forecast's, the KPI period's) walk the live-stage
    index, testing each entry's month: the listing index, ordered by month after deleted_at, would
    be chosen for the range and read every listed column into a temporary b-tree (3.5x slower at a
    million prospects)."""
    import sqlite3

    from evpipe.models.kpi import Scope

    eng = open_db(f"sqlite:///{db_path}")
    eng.dispose()
    connection = sqlite3.connect(db_path)
    scopes = (Scope(month_from="2026-01", month_to="2027-06"), Scope(owner="sam", month_from="2026-01"))
    for scope in scopes:
        for key in ("", "p.expected_month, ", "p.stage_id, "):
            where, params = scope.sql(sums=True)
            sql = f"SELECT {key}p.stage_id, count(*), sum(p.value_cents) FROM prospect p WHERE {where} GROUP BY {key}p.stage_id"
            plan = " | ".join(r[3] for r in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "ix_prospect_listing" not in plan and "stage_value" in plan, plan


# ---------------------------------------------------------------- a big listing read by two processes


def test_a_big_listing_read_by_two_processes_is_the_same_bytes(db, monkeypatch):
    """`list --json` of a big SQLite pipeline is read by this process and a second one, every
    other month each (models/listing_split.py): the same bytes as one process writes, for
    everyone, one owner, one stage and an owner with nothing. The tests make every pipeline big."""
    import evpipe.models.listing_split as split

    owners = [None, "sam", "nobody"]
    one = {who: run(db, "list", "--json", *(("--owner", who) if who else ())) for who in owners}
    started = []
    real_start = split._start

    def start(path, parts, size):
        worker = real_start(path, parts, size)
        started.append((worker, len(parts)))
        return worker

    monkeypatch.setattr(split, "_start", start)
    monkeypatch.setenv("EVPIPE_SPLIT_ROWS", "0")
    for who, text in one.items():
        assert run(db, "list", "--json", *(("--owner", who) if who else ())) == text == whole_json(db, owner=who)
    assert len(started) == 3 and all(w is not None and w.returncode == 0 and n > 1 for w, n in started)
    stage = Store(open_db(f"sqlite:///{db}"), who="tester").ladder()[1]
    assert run(db, "list", "--json", "--stage", stage.name) == whole_json(db, stage_id=stage.id)
    # a filter lists what it matched: read in one process
    assert json.loads(run(db, "list", "--json", "--filter", "cruise")) and len(started) == 4


def test_a_big_listing_while_another_write_holds_the_database_is_read_in_one_process(db, monkeypatch):
    """The two readers' one view needs the write lock for a moment: a listing never waits for a
    long write for it, it reads the way a small one does (a read is never kept out by a writer)."""
    import sqlite3
    import time

    import evpipe.models.listing_split as split

    monkeypatch.setenv("EVPIPE_SPLIT_ROWS", "0")
    expected = whole_json(db)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE prospect SET notes = 'being written' WHERE id = 1")
    monkeypatch.setattr(split, "_start", lambda *a: pytest.fail("the write lock was not to be had"))
    try:
        began = time.perf_counter()
        assert run(db, "list", "--json") == expected  # the write is not committed: not seen
        assert time.perf_counter() - began < split.GATE_WAIT + 5
    finally:
        writer.rollback()
        writer.close()


def test_a_second_reader_that_stops_fails_the_listing_in_one_line(db, monkeypatch):
    """A second reader that dies half-way leaves the list cut short: the command says so in one
    line and fails, rather than writing a list that looks whole."""
    import evpipe.models.listing_split as split

    monkeypatch.setenv("EVPIPE_SPLIT_ROWS", "0")
    dies = "import sys; sys.stdin.read(); sys.stdout.write('R'); sys.stdout.flush(); sys.exit('disk I/O error')"
    real_popen = subprocess.Popen
    monkeypatch.setattr(split.subprocess, "Popen", lambda args, **kw: real_popen([sys.executable, "-c", dies], **kw))
    result = CliRunner().invoke(main, ["--db", db, "list", "--json"])
    assert result.exit_code == 1
    assert (
        result.stderr == "evpipe: list: the listing's second reader stopped (disk I/O error); the list is incomplete\n"
    )


def test_a_big_listing_through_a_pipe_whose_reader_stops(db):
    """`evpipe list --json | head` with two readers: the command ends quietly, with success, and
    leaves no second reader running."""
    env = dict(os.environ, EVPIPE_NOW="2026-11-27T10:00:00", EVPIPE_SPLIT_ROWS="0")
    proc = subprocess.Popen(_evpipe(db, "list", "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(5) == b"[\n  {"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""
    running = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            running.append(cmdline.read_bytes())
        except OSError:  # gone meanwhile
            pass
    assert not [c for c in running if b"evpipe.models.listing_split" in c]


def test_the_two_readers_see_one_view_while_others_write(db, monkeypatch):
    """Another session commits all the while, moving value between a prospect the second reader
    lists and one this process lists: every listing adds up to the same total, as one view of the
    data does. (Without the write lock held while the two views start, every listing here was off.)"""
    import sqlite3
    import threading
    from decimal import Decimal

    monkeypatch.setenv("EVPIPE_SPLIT_ROWS", "0")
    conn = sqlite3.connect(db, isolation_level=None)
    months = [m for (m,) in conn.execute("SELECT DISTINCT expected_month FROM prospect ORDER BY 1") if m]
    on_open = (
        "SELECT p.id FROM prospect p JOIN stage s ON s.id = p.stage_id"
        " WHERE p.expected_month = ? AND s.kind = 'open' AND p.deleted_at IS NULL"
    )
    pair = [conn.execute(on_open, (m,)).fetchone() for m in months[:2]]
    assert None not in pair  # the open prospects' first and second month: one for each reader
    total = conn.execute("SELECT sum(value_cents) FROM prospect WHERE deleted_at IS NULL").fetchone()[0]
    conn.close()
    stop = threading.Event()
    commits = []

    def other_session() -> None:
        w = sqlite3.connect(db, isolation_level=None, timeout=30)
        while not stop.is_set():
            w.execute("BEGIN IMMEDIATE")
            w.execute("UPDATE prospect SET value_cents = value_cents + 100 WHERE id = ?", pair[0])
            w.execute("UPDATE prospect SET value_cents = value_cents - 100 WHERE id = ?", pair[1])
            w.execute("COMMIT")
            commits.append(1)
        w.close()

    writer = threading.Thread(target=other_session)
    writer.start()
    try:
        sums = []
        # (on a busy machine the writer may get few turns: list until it has written often enough)
        deadline = time.monotonic() + 90
        while len(sums) < 4 or (len(commits) <= 20 and time.monotonic() < deadline):
            rows = json.loads(run(db, "list", "--json"))
            sums.append(sum(Decimal(r["value"]) * 100 for r in rows))
    finally:
        stop.set()
        writer.join()
    assert len(commits) > 20  # the other session did write meanwhile
    assert sums == [total] * len(sums)


def test_a_second_reader_that_does_not_start_leaves_the_listing_to_one_process(db, monkeypatch):
    """Writers wait while the second reader starts: one that does not say it is ready within
    START_WAIT is stopped, and this process lists everything itself."""
    import time

    import evpipe.models.listing_split as split

    monkeypatch.setenv("EVPIPE_SPLIT_ROWS", "0")
    monkeypatch.setattr(split, "START_WAIT", 0.5)
    stuck = "import time; time.sleep(60)"
    started = []
    real_popen = subprocess.Popen

    def popen(args, **kw):
        started.append(real_popen([sys.executable, "-c", stuck], **kw))
        return started[-1]

    monkeypatch.setattr(split.subprocess, "Popen", popen)
    began = time.perf_counter()
    assert run(db, "list", "--json") == whole_json(db)
    assert time.perf_counter() - began < 10
    assert len(started) == 1 and started[0].poll() is not None  # stopped, not left running
