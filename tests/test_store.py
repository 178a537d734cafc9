"""Store operations: validation, stage moves and their history, undo, concurrency."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from evpipe.models.errors import Conflict, DomainError, NotFound, NothingToUndo
from evpipe.models.kpi import kpis
from evpipe.models.store import Store
from evpipe.models.tables import ChangeEvent, Prospect, StageChange

pytestmark = pytest.mark.both_databases


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar() for t in (Prospect, StageChange, ChangeEvent)
        )


# ---------------------------------------------------------------- validation: message, and nothing written


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name="", value="100"), "name: cannot be empty"),
        (dict(name="   ", value="100"), "name: cannot be empty"),
        (dict(name="x", value="-5"), "negative"),
        (dict(name="x", value="abc"), "not an amount"),
        (dict(name="x", value="12,5O0"), "not an amount"),
        (dict(name="x", value="1.234"), "not an amount"),
        (dict(name="x", value="99999999999"), "too large"),
        (dict(name="x", value=""), "an amount is required"),
        (dict(name="x", value="100", stage="Nowhere"), "'Nowhere' is not on the ladder; the stages are Suspect"),
        (dict(name="x", value="100", month="2027-13"), "no month 13"),
        (dict(name="x", value="100", month="soon"), "not a month"),
        (dict(name="x", value="100", follow_up="31/02/2027"), "February 2027 has 28 days"),
        (dict(name="x", value="100", follow_up="2027-02-30"), "February 2027 has 28 days"),
        (dict(name="x", value="100", follow_up="someday"), "not a date"),
        (dict(name="x" * 201, value="100"), "the most is 200"),
        (dict(name="x", value="100", owner=" "), "owner: cannot be empty; give the rep's name"),
        (dict(name="x", value="100", email="jo at example"), "'jo at example' is not an email address"),
    ],
)
def test_add_rejects_bad_input_and_writes_nothing(store, engine, kwargs, fragment):
    before = counts(engine)
    with pytest.raises(DomainError) as err:
        store.add(**kwargs)
    assert fragment in str(err.value)
    assert counts(engine) == before


def test_an_owner_cannot_be_emptied(store, engine):
    pid = store.add("Kauri", "100").prospect.id
    before = counts(engine)
    with pytest.raises(DomainError, match="owner: cannot be empty"):
        store.edit(pid, owner="")
    assert counts(engine) == before and store.get(pid).owner == store.who


@pytest.mark.parametrize(
    "percent, fragment",
    [("150", "outside 0-100"), ("-1", "outside 0-100"), ("abc", "not a percentage"), ("12.345", "not a percentage")],
)
def test_probability_outside_range_rejected(store, engine, percent, fragment):
    store.add("A", "1000", "Quote sent")
    before = kpis(engine)
    with pytest.raises(DomainError) as err:
        store.set_probability("Quote sent", percent)
    assert fragment in str(err.value)
    assert kpis(engine) == before
    assert store.stage("Quote sent").probability_bp == 2500


def test_edit_rejects_bad_value_and_keeps_the_old_one(store):
    pid = store.add("A", "1000", "Quote sent").prospect.id
    with pytest.raises(DomainError):
        store.edit(pid, value="12,5O0", name="B")
    p = store.get(pid)
    assert (p.name, p.value_cents, p.version) == ("A", 100000, 1)


def test_unknown_prospect(store):
    with pytest.raises(NotFound, match="no prospect is named 'Ghost'"):
        store.move("Ghost", "next")
    with pytest.raises(NotFound, match="no prospect #99"):
        store.move(99, "next")


def test_ambiguous_name_asks_for_the_id(store):
    store.add("Same", "1")
    store.add("Same", "2")
    with pytest.raises(DomainError, match="2 prospects are named 'Same'"):
        store.move("Same", "next")


def test_markup_and_escape_codes_in_names_are_kept_literally_but_control_codes_dropped(store):
    p = store.add("[@click=app.quit]hi[/]", "1").prospect
    assert p.name == "[@click=app.quit]hi[/]"
    q = store.add("Evil\x1b[31mRed\x07", "1").prospect
    assert q.name == "EvilRed"


def test_ladder_that_does_not_rise_is_warned_about(store):
    result = store.set_probability("Date held", "20")
    assert any("Date held (20%) is not above Quote sent (25%)" in w for w in result.warnings)
    assert store.ladder_warnings()


# ---------------------------------------------------------------- stage moves


def test_moves_write_history_with_value_and_probability(store, engine):
    pid = store.add("Harbour Events", "6000", "Quote sent").prospect.id
    r = store.move(pid, "next")
    assert r.summary == "Harbour Events: Quote sent -> Date held, EV +1,500"
    assert r.d_ev_micros == 600000 * (5000 - 2500)
    r = store.move(pid, "back")
    assert r.category == "regress"
    store.move(pid, "Deposit paid")
    r = store.move(pid, "won")
    assert r.category == "win" and r.prospect.closed_on == date(2026, 11, 27)
    hist = store.history(pid)
    assert [(h.from_stage, h.to_stage) for h in hist] == [
        (None, "Quote sent"),
        ("Quote sent", "Date held"),
        ("Date held", "Quote sent"),
        ("Quote sent", "Deposit paid"),
        ("Deposit paid", "Won"),
    ]
    assert all(h.who == "tester" and h.value_cents == 600000 for h in hist)
    assert hist[1].ev_added_micros == 600000 * 2500


def test_next_from_top_open_rung_is_won_and_back_reopens(store):
    pid = store.add("X", "100", "Deposit paid").prospect.id
    assert store.move(pid, "next").prospect.stage_name == "Won"
    with pytest.raises(DomainError, match="reopen it"):
        store.move(pid, "next")
    assert store.move(pid, "back").prospect.stage_name == "Deposit paid"


def test_reopen_after_won_then_lost_goes_back_to_the_open_stage_it_left(store):
    """Won, then Lost (a deal that fell through after all): reopening looked one move back, found
    Won, and put it on the last open stage (Deposit paid) rather than where it was (Quote sent)."""
    pid = store.add("X", "100", "Quote sent").prospect.id
    store.move(pid, "won")
    store.move(pid, "lost", reason="fell through")
    assert store.move(pid, "reopen").prospect.stage_name == "Quote sent"
    store.move(pid, "lost", reason="again")
    store.move(pid, "won")
    assert store.move(pid, "back").prospect.stage_name == "Quote sent"


def test_reopen_refuses_an_open_prospect_and_leaves_it_where_it_is(store):
    """`evpipe move X reopen` on an open prospect moved it to the stage it last came from (up or
    down) or to the last open stage: Suspect -> Deposit paid."""
    pid = store.add("X", "100", "Suspect").prospect.id
    store.move(pid, "next")
    for _ in range(2):
        with pytest.raises(DomainError, match="is open already, on Enquiry"):
            store.move(pid, "reopen")
    fresh = store.add("Y", "100", "Quote sent").prospect.id
    with pytest.raises(DomainError, match="is open already, on Quote sent"):
        store.move(fresh, "reopen")
    assert [store.get(i).stage_name for i in (pid, fresh)] == ["Enquiry", "Quote sent"]
    assert store.move(pid, "won").prospect.stage_name == "Won"
    assert store.move(pid, "reopen").prospect.stage_name == "Enquiry"


def test_back_from_first_rung_is_refused(store):
    pid = store.add("X", "100", "Suspect").prospect.id
    with pytest.raises(DomainError, match="already on the first stage"):
        store.move(pid, "back")


def test_lose_with_reason_then_reopen(store, engine):
    pid = store.add("X", "1000", "Quote sent").prospect.id
    r = store.lose(pid, "Went with a bus tour")
    assert r.prospect.lost_reason == "Went with a bus tour"
    assert kpis(engine).tv_cents == 0
    r = store.reopen(pid)
    assert r.prospect.stage_name == "Quote sent" and r.prospect.lost_reason is None
    assert r.category == "reopen"


# ---------------------------------------------------------------- undo


def test_undo_reverses_by_recording_the_reverse(store, engine):
    pid = store.add("A", "10000", "Quote sent").prospect.id
    start = kpis(engine)
    store.move(pid, "next")
    r = store.undo()
    assert r.prospect.stage_name == "Quote sent"
    assert kpis(engine) == start
    hist = store.history(pid)
    assert [h.to_stage for h in hist] == ["Quote sent", "Date held", "Quote sent"]
    assert hist[-1].reason == "undo"
    # The undone change is marked, never erased.
    with engine.connect() as conn:
        rows = conn.execute(
            select(ChangeEvent.action, ChangeEvent.undone_by_id, ChangeEvent.undoes_id).order_by(ChangeEvent.id)
        ).all()
    assert [r[0] for r in rows] == ["create", "move", "move"]
    assert rows[1][1] == 3 and rows[2][2] == 2


def test_undo_walks_back_each_kind_of_change(store, engine):
    pid = store.add("A", "10000", "Quote sent", follow_up="2026-12-01").prospect.id
    store.edit(pid, value="12000", company="Harbour")
    store.set_follow_up(pid, "2026-12-05")
    store.log_activity(pid, "call", "Rang about dates")
    store.lose(pid, "price")
    store.set_probability("Quote sent", "30")
    store.delete(pid)
    assert kpis(engine).count == 0
    store.undo()  # delete
    assert store.get(pid).stage_name == "Lost"
    store.undo()  # probability
    assert store.stage("Quote sent").probability_bp == 2500
    store.undo()  # lost
    assert store.get(pid).stage_name == "Quote sent" and store.get(pid).lost_reason is None
    store.undo()  # activity
    assert store.activities(pid) == []
    store.undo()  # follow-up
    assert store.get(pid).next_follow_up == date(2026, 12, 1)
    store.undo()  # edit
    p = store.get(pid)
    assert (p.value_cents, p.company) == (1_000_000, "")
    store.undo()  # add
    with pytest.raises(NotFound):
        store.get(pid)
    with pytest.raises(NothingToUndo):
        store.undo()
    assert kpis(engine).count == 0


def test_undo_is_per_user(engine):
    sam, priya = Store(engine, who="sam"), Store(engine, who="priya")
    a = sam.add("Sam's", "100").prospect.id
    priya.add("Priya's", "200")
    sam.undo()
    with pytest.raises(NotFound):
        sam.get(a)
    assert priya.get("Priya's").value_cents == 20000


def test_undo_ladder_changes(store):
    store.add_stage("Site visit", "40", after="Quote sent")
    names = [s.name for s in store.ladder()]
    assert names.index("Site visit") == names.index("Quote sent") + 1
    store.undo()
    assert "Site visit" not in [s.name for s in store.ladder()]
    store.update_stage("Enquiry", name="Enquiry received")
    store.undo()
    assert store.stage("Enquiry").name == "Enquiry"


def test_remove_stage_moves_its_prospects_and_undo_brings_the_stage_back(store, engine):
    pid = store.add("A", "1000", "Date held").prospect.id
    with pytest.raises(DomainError, match="say which stage they move to"):
        store.remove_stage("Date held")
    before = kpis(engine)
    store.remove_stage("Date held", move_to="Quote sent")
    assert store.get(pid).stage_name == "Quote sent"
    assert "Date held" not in [s.name for s in store.ladder()]
    store.undo()
    assert store.get(pid).stage_name == "Date held"
    assert kpis(engine) == before


# ---------------------------------------------------------------- two sessions, one prospect


def test_stale_edit_is_refused(engine):
    sam, priya = Store(engine, who="sam"), Store(engine, who="priya")
    pid = sam.add("Shared", "1000").prospect.id
    seen_by_sam = sam.get(pid)
    priya.edit(pid, value="2000", expected_version=seen_by_sam.version)
    with pytest.raises(Conflict, match="changed by someone else"):
        sam.edit(pid, value="3000", expected_version=seen_by_sam.version)
    assert sam.get(pid).value_cents == 200000


def test_two_sessions_writing_at_once_both_land(db_url):
    """Two processes' worth of writers on one file: BEGIN IMMEDIATE + busy timeout serialise them."""
    import threading

    from evpipe.models import open_db

    engines = [open_db(db_url), open_db(db_url)]
    pid = Store(engines[0], who="a").add("Busy", "100", "Suspect").prospect.id
    errors = []

    def work(engine, who):
        s = Store(engine, who=who)
        try:
            for _ in range(20):
                s.log_activity(pid, "note", f"{who} was here")
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e, w)) for e, w in zip(engines, "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(Store(engines[0]).activities(pid)) == 40
    assert Store(engines[0]).get(pid).version == 41


def test_activity_in_the_future_refused(store):
    pid = store.add("A", "1").prospect.id
    with pytest.raises(DomainError, match="cannot be in the future"):
        store.log_activity(pid, "call", "x", when=datetime(2027, 1, 1))
    with pytest.raises(DomainError, match="not a kind of contact"):
        store.log_activity(pid, "fax", "x")


def test_undo_of_a_contact_point_takes_its_touch_back_too(store):
    """A stale prospect whose call is taken back is stale again: the call no longer touched it
    (the list's `~` and focus read `last_touch_at`)."""
    pid = store.add("A", "10000", "Quote sent", at=datetime(2026, 11, 2, 9)).prospect.id
    store.log_activity(pid, "call", "Rang", when="2026-11-04 10:00", at=datetime(2026, 11, 5, 9))
    store.log_activity(pid, "email", "Sent", at=datetime(2026, 12, 2, 10))
    assert store.get(pid).last_touch_at == datetime(2026, 12, 2, 10)
    store.undo(at=datetime(2026, 12, 2, 10, 5))
    assert store.get(pid).last_touch_at == datetime(2026, 11, 4, 10)
    store.undo(at=datetime(2026, 12, 2, 10, 6))
    assert store.get(pid).last_touch_at == datetime(2026, 11, 2, 9)  # back to its add
