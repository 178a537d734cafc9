"""The focus list: order, reasons, next-step gain, limits."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from evpipe.models import open_db
from evpipe.models.focus import count_follow_ups, focus, follow_ups
from evpipe.models.seed import install_ladder
from evpipe.models.store import Store
from tests.conftest import WORKED_LADDER

pytestmark = pytest.mark.both_databases


def M(amount: float) -> int:
    return round(amount * 1_000_000)


@pytest.fixture
def todo(db_url):
    """Today is Fri 27 Nov 2026. Worked ladder (stale after 14 days on every rung)."""
    eng = open_db(db_url, seed_ladder=False)
    install_ladder(eng, WORKED_LADDER)
    s = Store(eng, who="tester")
    recent = datetime(2026, 11, 26, 9)
    s.add("P1", "10000", "Quote sent", follow_up=date(2026, 11, 24), at=recent)  # 3 days overdue
    s.add("P2", "4000", "Suspect", follow_up=date(2026, 11, 20), at=recent)  # 7 days overdue
    s.add("P3", "6000", "Deposit paid", follow_up=date(2026, 11, 30), at=recent)  # due Monday
    s.add("P4", "20000", "Enquiry", follow_up=date(2026, 12, 10), at=datetime(2026, 10, 1, 9))  # stale 57 days
    s.add("P5", "50000", "Enquiry", at=datetime(2026, 11, 27, 9))  # nothing due: by gain
    s.add("P6", "1000", "Suspect", at=datetime(2026, 11, 27, 9))
    s.add("Won one", "9000", "Won", follow_up=date(2026, 11, 1), at=recent)  # closed: never listed
    s.add("Lost one", "9000", "Lost", follow_up=date(2026, 11, 1), at=recent)
    yield eng
    eng.dispose()


def test_order_and_reasons(todo):
    items = focus(todo)
    assert [i.name for i in items] == ["P2", "P1", "P3", "P4", "P5", "P6"]
    assert [i.reason for i in items] == [
        "overdue follow-up (7 days)",
        "overdue follow-up (3 days)",
        "due this week (Mon 30 Nov)",
        "stale for 57 days",
        "next step worth +7,500 EV",
        "next step worth +50 EV",
    ]
    assert items[1].reasons == ["overdue follow-up (3 days)", "next step worth +5,500 EV"]


def test_next_step_gain(todo):
    gains = {i.name: i.gain_micros for i in focus(todo)}
    assert gains == {
        "P1": M(10_000 * (0.80 - 0.25)),
        "P2": M(4_000 * (0.10 - 0.05)),
        "P3": M(6_000 * (1.00 - 0.80)),  # the next step of the top open rung is the won stage
        "P4": M(20_000 * (0.25 - 0.10)),
        "P5": M(50_000 * (0.25 - 0.10)),
        "P6": M(1_000 * (0.10 - 0.05)),
    }
    assert {i.name: i.next_stage for i in focus(todo)}["P3"] == "Won"


def test_overdue_and_due_go_by_date_then_by_the_biggest_gain(todo):
    s = Store(todo, who="tester")
    s.set_follow_up("P5", date(2026, 11, 24))  # overdue on P1's date, and worth more than P1
    assert [i.name for i in focus(todo, limit=3)] == ["P2", "P5", "P1"]
    # due: the one due today sits above one due next week, whatever their gains
    s.set_follow_up("P6", date(2026, 11, 27))  # today, gain 50
    s.set_follow_up("P4", date(2026, 12, 2))  # Wednesday, gain 3,000
    due = [i.name for i in focus(todo) if i.group == "due"]
    assert due == ["P6", "P3", "P4"]


def test_stale_and_the_rest_still_go_by_gain(todo):
    s = Store(todo, who="tester")
    s.add("P7", "1000", "Enquiry", at=datetime(2026, 9, 1, 9))  # stale longer, worth less
    stale = [i.name for i in focus(todo) if i.group == "stale"]
    assert stale == ["P4", "P7"]


def test_limit_and_owner(todo):
    assert [i.name for i in focus(todo, limit=2)] == ["P2", "P1"]
    s = Store(todo, who="tester")
    s.edit("P4", owner="ann")
    assert [i.name for i in focus(todo, owner="ann")] == ["P4"]
    assert focus(todo, owner="nobody") == []


def test_a_touch_clears_staleness(todo):
    s = Store(todo, who="tester")
    s.log_activity("P4", "call", "caught up")
    assert {i.name: i.group for i in focus(todo)}["P4"] == "gain"


def test_never_stale_when_the_stage_allows_any_time(todo):
    s = Store(todo, who="tester")
    s.update_stage("Enquiry", stale_days=0)
    assert {i.name: i.group for i in focus(todo)}["P4"] == "gain"


def test_follow_up_lists(todo):
    assert [i.name for i in follow_ups(todo, "overdue")] == ["P2", "P1"]  # oldest first
    assert [i.name for i in follow_ups(todo, "due")] == ["P3"]
    assert [(i.name, i.reason) for i in follow_ups(todo, "stale")] == [("P4", "stale for 57 days")]
    assert count_follow_ups(todo) == {"overdue": 2, "due": 1, "stale": 1}


def test_json(todo):
    data = focus(todo, limit=2)[1].to_json()
    assert data["name"] == "P1" and data["gain"] == "5500.00" and data["value"] == "10000.00"
    assert data["probability"] == 0.25 and data["group"] == "overdue" and data["next_follow_up"] == "2026-11-24"


def test_empty(engine):
    assert focus(engine) == []


def test_enough_overdue_read_by_date_keep_the_whole_lists_order(todo):
    """With as many overdue as asked for, focus reads them by the follow-up index alone: its head
    must be the whole list's, ties on date and gain going to the longest untouched, then the id."""
    s = Store(todo, who="tester")
    for name, touched in (("T1", datetime(2026, 11, 20, 9)), ("T2", datetime(2026, 11, 10, 9))):
        s.add(name, "4000", "Suspect", follow_up=date(2026, 11, 20), at=touched)  # P2's date and gain
    s.add("T3", "4000", "Suspect", follow_up=date(2026, 11, 20), at=datetime(2026, 11, 10, 9))  # T2's twin
    whole = [i.name for i in focus(todo, limit=50)]
    assert whole[:4] == ["T2", "T3", "T1", "P2"]
    for limit in (1, 2, 3, 4, 5):
        assert [i.name for i in focus(todo, limit=limit)] == whole[:limit]


def test_the_stale_list_puts_the_longest_untouched_first_then_the_biggest_gain(todo):
    s = Store(todo, who="tester")
    s.add("P7", "1000", "Enquiry", at=datetime(2026, 9, 1, 9))  # untouched longer than P4, worth less
    s.add("P8", "90000", "Enquiry", at=datetime(2026, 9, 1, 17))  # the same day as P7, worth more
    s.add("P9", "500", "Enquiry", at=datetime(2026, 11, 2, 9))  # 25 days: stale, the most recent
    assert [(i.name, i.idle_days) for i in follow_ups(todo, "stale")] == [
        ("P8", 87),
        ("P7", 87),
        ("P4", 57),
        ("P9", 25),
    ]


def test_a_follow_up_due_today_or_this_week_says_its_time(todo):
    """A follow-up set for a time of day (`f`, or the next step after a call) showed on the focus
    list as "due today" alone: the rep's 9:00 call looked like any other of the day."""
    s = Store(todo, who="tester")
    s.set_follow_up("P5", date(2026, 11, 27), time="9am", note="call back")
    s.set_follow_up("P6", date(2026, 11, 30), time="14:30")
    items = {i.name: i for i in focus(todo)}
    assert (items["P5"].reason, items["P5"].short_reason) == ("follow-up due today at 09:00", "due today 09:00")
    assert (items["P6"].reason, items["P6"].short_reason) == ("due this week (Mon 30 Nov 14:30)", "due Mon 30 Nov")
    assert items["P3"].reason == "due this week (Mon 30 Nov)"  # no time given
