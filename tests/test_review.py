"""The weekly review: the EV and TV bridge adds up exactly after a mixed week."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from evpipe.models import history, open_db
from evpipe.models.errors import DomainError
from evpipe.models.kpi import Kpi, kpis
from evpipe.models.review import exact_money, parse_since, review
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from tests.conftest import WORKED_LADDER

pytestmark = pytest.mark.both_databases


def C(amount: int) -> int:
    return amount * 100


def M(amount: float) -> int:
    return round(amount * 1_000_000)


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour)


@pytest.fixture
def week(db_url):
    """Before the week (21-27 Nov): A 10,000 Quote sent, B 4,000 Enquiry, C 6,000 Deposit paid,
    D 3,000 Suspect, E 5,000 Quote sent, F 2,000 Enquiry, G 8,000 Suspect. In the week: new H,
    A advanced, C regressed, E won, F lost, B's value edited, Suspect 5% -> 10%, G deleted, and
    D's value edited and the edit undone."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    for name, value, stage in [
        ("A", "10000", "Quote sent"),
        ("B", "4000", "Enquiry"),
        ("C", "6000", "Deposit paid"),
        ("D", "3000", "Suspect"),
        ("E", "5000", "Quote sent"),
        ("F", "2000", "Enquiry"),
        ("G", "8000", "Suspect"),
    ]:
        s.add(name, value, stage, at=at(2))
    s.add("Old win", "1000", "Quote sent", at=at(3))
    s.move("Old win", "won", at=at(10))  # before the week: not in the bridge
    history.record_snapshot(eng, at=at(20, 23))  # the reading at the end of the day before the week
    s.add("H", "7000", "Enquiry", at=at(22))
    s.move("A", "next", at=at(23))
    s.move("C", "back", at=at(23, 11))
    s.move("E", "won", at=at(24))
    s.move("F", "lost", reason="budget", at=at(24, 11))
    s.edit("B", value="5000", at=at(25))
    s.set_probability("Suspect", "10", at=at(25, 11))
    s.delete("G", at=at(26))
    s.edit("D", value="4000", at=at(26, 11))
    s.undo(at=at(26, 12))
    yield eng
    eng.dispose()


def test_bridge_adds_up_exactly_after_a_mixed_week(week):
    r = review(week, "7d")
    assert r.start_at == datetime(2026, 11, 21)
    # Start: 2,500 + 400 + 4,800 + 150 + 1,250 + 200 + 400 + the old win 1,000.
    assert r.start == Kpi(8, C(39_000), M(10_700))
    # End: A 8,000, B 500, C 1,500, D 300, E 5,000 (won), H 700, old win 1,000.
    assert r.end == kpis(week) == Kpi(7, C(37_000), M(17_000))
    ev = {t.category: t.d_ev_micros for t in r.terms}
    assert ev == {
        "new": M(700),
        "advance": M(5_500),
        "win": M(3_750),
        "regress": M(-3_300),
        "lose": M(-200),
        "edit": M(100),
        "prob": M(550),
        "delete": M(-800),
    }
    tv = {t.category: t.d_tv_cents for t in r.terms}
    assert tv == {
        "new": C(7_000),
        "advance": 0,
        "win": 0,
        "regress": 0,
        "lose": C(-2_000),
        "edit": C(1_000),
        "prob": 0,
        "delete": C(-8_000),
    }
    assert sum(ev.values()) == r.end.ev_micros - r.start.ev_micros == M(6_300)
    assert sum(tv.values()) == r.end.tv_cents - r.start.tv_cents == C(-2_000)
    assert sum(t.d_count for t in r.terms) == r.end.count - r.start.count == -1
    assert [t.category for t in r.terms] == ["new", "advance", "win", "regress", "lose", "edit", "prob", "delete"]


def test_start_agrees_with_the_snapshot_and_the_journal(week):
    r = review(week, "7d")
    snap = {s.taken_on: s.kpi for s in history.snapshots(week)}
    assert snap[date(2026, 11, 20)] == r.start
    assert history.kpis_by_journal(week, r.start_at) == r.start


def test_each_term_lists_the_prospects_behind_it(week):
    r = review(week, "7d")
    names = {t.category: [(i.name, i.d_ev_micros) for i in t.items] for t in r.terms}
    assert names["new"] == [("H", M(700))]
    assert names["advance"] == [("A", M(5_500))]
    assert names["regress"] == [("C", M(-3_300))]
    assert names["win"] == [("E", M(3_750))]
    assert names["lose"] == [("F", M(-200))]
    assert names["delete"] == [("G", M(-800))]
    assert names["prob"] == [("Suspect", M(550))]  # a stage, not a prospect
    # B's edit, then D's edit and its undo (the undo carries the edit's category): D nets to zero.
    assert names["edit"] == [("B", M(100)), ("D", 0)]
    d = next(i for i in r.term("edit").items if i.name == "D")
    assert d.changes == 2
    assert r.wins[0].value_cents == C(5_000)


def test_review_since_a_date_and_json_adds_up(week):
    r = review(week, "2026-11-24")
    assert r.start_at == datetime(2026, 11, 24)
    data = r.to_json()
    from decimal import Decimal

    for key in ("ev", "tv"):
        b = data["bridge"][key]
        assert sum(Decimal(v) for v in b["terms"].values()) == Decimal(b["end"]) - Decimal(b["start"])
        assert Decimal(b["change"]) == Decimal(b["end"]) - Decimal(b["start"])
    assert set(data["bridge"]["ev"]["terms"]) == {"win", "lose", "edit", "prob", "delete"}
    assert data["start"]["tv"] == "46000.00"  # the 39,000 before the week and H


def test_whole_history_review_starts_from_nothing(week):
    r = review(week, "2026-11-01")
    assert r.start == Kpi()
    assert sum(t.d_ev_micros for t in r.terms) == r.end.ev_micros


def test_parse_since():
    today = date(2026, 11, 27)
    assert parse_since("7d", today=today) == datetime(2026, 11, 21)
    assert parse_since("1d", today=today) == datetime(2026, 11, 27)
    assert parse_since("2w", today=today) == datetime(2026, 11, 14)
    assert parse_since("1/11/2026", today=today) == datetime(2026, 11, 1)
    for bad in ("0d", "soon", "2026-13-01", "2026-12-25"):
        with pytest.raises(DomainError, match="since"):
            parse_since(bad, today=today)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1900-01-01", "is in the year 1900; evpipe takes dates from 1990 to 2100"),
        ("30/02/2026", "February 2026 has 28 days"),
        ("2026-13-01", "has no month 13"),
        ("soon", "is not a period or a date; type 7d"),
    ],
)
def test_a_date_evpipe_does_not_take_is_said_as_such_not_as_no_date(typed, said):
    """`review --since 1900-01-01` (and `journal --since`) said the date was "not a period or a
    date"; what is wrong with it (its year, its day) is the line now, as for every other date."""
    with pytest.raises(DomainError) as caught:
        parse_since(typed, today=date(2026, 11, 27))
    assert str(caught.value).startswith(f"since: {typed!r}") and said in str(caught.value), str(caught.value)


def test_exact_money():
    assert exact_money(M(9_500)) == "9500.00"
    assert exact_money(1_234_567_800) == "1234.5678"
    assert exact_money(-M(0.5)) == "-0.50"
    assert exact_money(0) == "0.00"


def test_follow_ups_in_the_review(week):
    s = Store(week, who="tester")
    s.set_follow_up("A", date(2026, 11, 25), at=at(25))
    s.set_follow_up("B", date(2026, 11, 30), at=at(25))
    r = review(week)
    assert [i.name for i in r.overdue] == ["A"] and [i.name for i in r.due] == ["B"]
    # Untouched since 2 Nov (worked ladder: 14 days allowed): B's edit is no contact; D, C moved are not stale.
    assert [i.name for i in r.stale] == ["B", "D"]
    assert r.focus[0].name == "A"


def test_a_win_undone_in_the_period_is_not_a_win(week):
    s = Store(week, who="tester")
    s.move("B", "won", at=at(27, 9))
    s.undo(at=at(27, 9))
    r = review(week, "7d")
    assert [w.name for w in r.wins] == ["E"]
    assert [(i.name, i.d_ev_micros) for i in r.term("win").items] == [("E", M(3_750)), ("B", 0)]
    from evpipe.tui.cli.insight import review_markdown

    md = review_markdown(r)
    assert "1 sale won worth 5,000" in md and "| Wins | +3,750 | 0 | E |" in md


def _balance(r) -> dict[str, tuple[int, int, int, int]]:
    return {b.stage: (b.added, b.advanced, b.touched, b.untouched) for b in r.balance}


def test_a_move_undone_in_the_period_is_no_advance_and_its_undo_nothing(week):
    """A rep presses > on B by mistake and undoes it; and moves H back by mistake and undoes that
    (the undo, Suspect -> Enquiry, is a move forward): the balance of activity is as it was, no
    advance from Enquiry nor from Suspect, and neither prospect touched (journal `undone_move`)."""
    before = _balance(review(week, "7d"))
    s = Store(week, who="tester")
    s.move("B", "next", at=datetime(2026, 11, 27, 9, 0))
    s.undo(at=datetime(2026, 11, 27, 9, 1))
    s.move("H", "back", at=datetime(2026, 11, 27, 9, 2))
    s.undo(at=datetime(2026, 11, 27, 9, 3))
    after = _balance(review(week, "7d"))
    assert after == before
    # (added, advanced, touched, untouched): no advance from Suspect or Enquiry in the week
    assert before == {
        "Suspect": (0, 0, 0, 1),
        "Enquiry": (1, 0, 0, 1),
        "Quote sent": (0, 2, 0, 0),
        "Deposit paid": (0, 0, 0, 0),
    }


def test_a_call_made_while_a_mistaken_move_stood_was_on_the_stage_never_left(week):
    """Sam moves B on to Quote sent by mistake, Priya calls B, and Sam undoes his move: the call was
    made on Enquiry, the stage B never left (journal RESTAGE_SQL, `undone_move`)."""
    before = _balance(review(week, "7d"))
    Store(week, who="sam").move("B", "next", at=datetime(2026, 11, 27, 9, 0))
    call = datetime(2026, 11, 27, 9, 1)
    Store(week, who="priya").log_activity("B", "call", "hello", when=call, at=call)
    Store(week, who="sam").undo(at=datetime(2026, 11, 27, 9, 2))
    after = _balance(review(week, "7d"))
    added, advanced, touched, untouched = before["Enquiry"]
    assert after["Enquiry"] == (added, advanced, touched + 1, untouched - 1)
    assert {k: v for k, v in after.items() if k != "Enquiry"} == {k: v for k, v in before.items() if k != "Enquiry"}


def test_a_move_undone_then_made_again_counts_once(week):
    """B moved on by mistake, the move undone, then made again: one advance from Enquiry (and B,
    on Quote sent now, no longer waits untouched on Enquiry)."""
    before = _balance(review(week, "7d"))
    s = Store(week, who="tester")
    s.move("B", "next", at=datetime(2026, 11, 27, 9, 0))
    s.undo(at=datetime(2026, 11, 27, 9, 1))
    s.move("B", "next", at=datetime(2026, 11, 27, 9, 2))
    after = _balance(review(week, "7d"))
    added, advanced, touched, untouched = before["Enquiry"]
    assert after["Enquiry"] == (added, advanced + 1, touched, untouched - 1)
    assert {k: v for k, v in after.items() if k != "Enquiry"} == {k: v for k, v in before.items() if k != "Enquiry"}


def test_a_move_undone_in_the_period_is_not_behind_its_term(week):
    """B moved on by mistake and H lost by mistake, both undone in the week: the bridge still
    journals them (netting to nothing), but neither is a prospect behind Advances or Losses, in
    the markdown or the text review; a move undone and made again is behind its term once."""
    from evpipe.tui.cli.insight import review_markdown, review_text

    s = Store(week, who="tester")
    s.move("B", "next", at=datetime(2026, 11, 27, 9, 0))
    s.undo(at=datetime(2026, 11, 27, 9, 1))
    s.move("H", "lost", reason="oops", at=datetime(2026, 11, 27, 9, 2))
    s.undo(at=datetime(2026, 11, 27, 9, 3))
    r = review(week, "7d")
    adv, lose = r.term("advance"), r.term("lose")
    assert [(i.name, i.changes, i.d_ev_micros, i.undone) for i in adv.items] == [
        ("A", 1, M(5_500), False),
        ("B", 2, 0, True),
    ]
    assert [i.name for i in adv.standing] == ["A"] and [i.name for i in lose.standing] == ["F"]
    md = review_markdown(r)
    advances = md.split("Advances:")[1].split("##")[0]
    assert "1 prospect moved up the ladder" in md and "- A:" in advances and "- B:" not in advances
    assert "Lost: F (2,000)." in md
    text = review_text(r)
    listed = text.split("\nAdvances:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[-1] for line in listed] == ["A"]
    assert "Losses:\n" in text and "H" not in text.split("\nLosses:\n")[1].split("\n\n")[0]
    s.move("B", "next", at=datetime(2026, 11, 27, 9, 4))
    adv = review(week, "7d").term("advance")
    assert sorted((i.name, i.changes, i.undone) for i in adv.standing) == [("A", 1, False), ("B", 3, False)]


def test_the_undone_move_rule_s_two_forms_agree(week):
    """journal.undone_move (a condition on one stage change) and UNDONE_MOVES_SQL (the set of them)
    hold for the same changes: a move undone and its undo, not a move whose undo was skipped, nor
    a move that stands."""
    from evpipe.models.journal import UNDONE_MOVES_SQL, undone_move
    from evpipe.models.rawdb import fetch_all

    s = Store(week, who="tester")
    s.move("B", "next", at=datetime(2026, 11, 27, 9, 0))
    s.undo(at=datetime(2026, 11, 27, 9, 1))
    s.move("H", "next", at=datetime(2026, 11, 27, 9, 2))
    s.skip_undo(at=datetime(2026, 11, 27, 9, 3))  # H's move stands
    by_row = {i for (i,) in fetch_all(week, f"SELECT id FROM stage_change WHERE {undone_move('stage_change')}")}
    as_set = {i for (i,) in fetch_all(week, UNDONE_MOVES_SQL)}
    b_moves = {
        i
        for (i,) in fetch_all(
            week,
            "SELECT sc.id FROM stage_change sc JOIN prospect p ON p.id = sc.prospect_id "
            "WHERE p.name = 'B' AND sc.from_stage_id IS NOT NULL",
        )
    }
    assert by_row == as_set == b_moves and len(b_moves) == 2


def test_an_item_names_everyone_who_changed_it_once_in_name_order(week):
    """B's value edited by three people (one of them twice) in the week: one item, its changes
    and EV summed, its authors named once each, by name with case folded."""
    for who, value, day in (("sam", "5200", 26), ("Ann", "5400", 26), ("sam", "5600", 27), ("bob", "5800", 27)):
        Store(week, who=who).edit("B", value=value, at=at(day, 13))
    edit = review(week, "7d").term("edit")
    b = next(i for i in edit.items if i.name == "B")
    assert b.by == ("Ann", "bob", "sam", "tester")
    assert (b.changes, b.d_tv_cents, b.value_cents) == (5, C(1_800), C(5_800))
    d = next(i for i in edit.items if i.name == "D")
    assert d.by == ("tester",)


def test_the_text_and_markdown_bridges_add_up(engine):
    """Each term was rounded to whole units on its own: New prospects +303 and Probability changes
    +163 under a total change of +465. The terms keep their cents now, and add up as printed."""
    from decimal import Decimal

    from evpipe.tui.cli.insight import review_markdown, review_text

    s = Store(engine, who="tester")
    s.add("Z", "6500", "Enquiry", at=datetime(2026, 11, 1, 9))
    s.set_probability("Enquiry", "12.5", at=datetime(2026, 11, 24, 10))
    s.add("B1", "1000", "Suspect", at=datetime(2026, 11, 25, 10))
    s.add("B2", "1010", "Quote sent", at=datetime(2026, 11, 25, 11))
    r = review(engine, "7d")

    def amount(text: str) -> Decimal:
        return Decimal(text.strip("*").replace(",", ""))

    text = review_text(r)
    rows = text.split("EV bridge")[1].split("\n\n")[0].splitlines()[3:]
    terms = [amount(line.split()[-3]) for line in rows if not line.startswith("total change")]
    total = amount(next(line for line in rows if line.startswith("total change")).split()[2])
    assert terms == [Decimal("302.50"), Decimal("162.50")] and sum(terms) == total == Decimal(465)
    table = review_markdown(r).split("## What moved expected value")[1].split("\n\n")[1]
    cells = [line.split("|")[2].strip() for line in table.splitlines() if "---" not in line]
    assert [amount(c) for c in cells[1:]] == [Decimal("302.50"), Decimal("162.50"), Decimal(465)]


def test_bridge_terms_with_half_cents_add_up_as_printed(engine):
    """Two terms of 125.125 each (1,001 at 12.5%) read +125.13 twice under a total of +250.25:
    the cent the rounding leaves over goes to one of them."""
    from evpipe.tui.cli.insight import review_text

    s = Store(engine, who="tester")
    s.set_probability("Enquiry", "12.5", at=datetime(2026, 11, 1, 9))
    s.add("Old", "1000", "Enquiry", at=datetime(2026, 11, 1, 10))
    s.add("New", "1001", "Enquiry", at=datetime(2026, 11, 25, 10))
    s.edit("Old", value="2001", at=datetime(2026, 11, 25, 11))
    text = review_text(review(engine, "7d"))
    rows = text.split("EV bridge")[1].split("\n\n")[0].splitlines()[3:]
    terms = [line.split()[-3] for line in rows if not line.startswith("total change")]
    assert sorted(terms) == ["+125.12", "+125.13"], text
    assert next(line for line in rows if line.startswith("total change")).split()[2] == "+250.25"


def test_balanced_cents():
    from evpipe.models.values import balanced_cents

    m = 10_000  # micros in a cent
    assert balanced_cents([12_512_500 * 10, 12_512_500 * 10], micros=True) == [12_513, 12_512]
    assert balanced_cents([30_250 * m, 16_250 * m], micros=True) == [30_250, 16_250]  # whole cents: as they are
    assert balanced_cents([-5_000, -5_000, 14_999], micros=True) == [0, -1, 1]  # adds up to 0.4999 -> 0
    assert balanced_cents([]) == []


def test_the_undone_moves_are_found_without_reading_the_journal(tmp_path):
    """The review's balance finds the undone moves from the few entries that undo one, through
    their partial index (migration 0013): without it the read went through the whole journal
    (0.33 s of a million prospects' review)."""
    import sqlite3

    from evpipe.models import open_db
    from evpipe.models.undone import UNDONE_MOVES_SQL

    open_db(f"sqlite:///{tmp_path / 'plan.db'}").dispose()
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {UNDONE_MOVES_SQL}")]
    assert any("ix_change_event_undoes" in step for step in plan), plan
    assert not any(step.startswith("SCAN ub") for step in plan), plan


def test_a_forked_review_reads_what_the_threads_read(week, db_backend, db_path, forks, monkeypatch):
    """`evpipe review` on an SQLite file has forked copies of itself read the balance and the
    open prospects' parts (models/forked.py) beside the bridge: the same review as the threads'
    of an engine; and where no copy can start, the same again, read by the command itself. On
    PostgreSQL the command reads through its engine: threads, and no fork."""
    from evpipe.models.forked import Forked
    from evpipe.models.rawdb import SqliteReader

    call = at(27, 9)
    Store(week, who="priya").log_activity("B", "call", "keen", when=call, at=call)  # B touched on Enquiry
    threads = review(week, "7d")
    assert _balance(threads)["Enquiry"] == (1, 0, 1, 0)
    if db_backend == "postgresql":
        assert review(week, "7d", forked=True) == threads and forks == []
        return
    reader = SqliteReader(db_path)
    assert review(reader, "7d", forked=True) == threads
    assert len(forks) == 2 and None not in forks  # the balance and the open prospects' parts
    assert review(reader, "7d") == threads and len(forks) == 2  # (threads: no fork)
    monkeypatch.setattr(Forked, "start", staticmethod(lambda work: None))  # (no fork to be had)
    assert review(reader, "7d", forked=True) == threads
