"""The KPI header kept current between reads of its sums (models/header_sums.py): every change
counted once, whichever lands first, the sums or the change's save."""

from __future__ import annotations

from datetime import datetime

from evpipe.models.header_sums import HeaderSums, journal_delta_is_the_headers
from evpipe.models.kpi import Kpi
from evpipe.models.period import ALL_TIME, Period
from evpipe.models.records import ChangeResult, ProspectInfo

BASE = Kpi(3, 30_000, 9_000_000)


def saved(event_id: int, delta: tuple[int, int, int], *, kind: str = "open", category: str = "move") -> ChangeResult:
    moment = datetime(2026, 11, 27, 9, 0)
    p = ProspectInfo(
        id=7,
        name="Harbour Events",
        company="",
        contact_name="",
        email="",
        phone="",
        notes="",
        custom={},
        value_cents=5_000,
        stage_id=2,
        stage_name="Quote",
        stage_kind=kind,
        probability_bp=5_000,
        expected_month="2026-12",
        next_follow_up=None,
        owner="sam",
        created_at=moment,
        updated_at=moment,
        last_touch_at=moment,
        closed_on=None,
        lost_reason=None,
        needs_review=False,
        version=1,
    )
    count, tv, ev = delta
    return ChangeResult(event_id, category, category, p, d_count=count, d_tv_cents=tv, d_ev_micros=ev)


def fresh(hold: int = 10) -> HeaderSums:
    sums = HeaderSums(lambda: (None, "sam"))
    ticket = sums.want_read()
    assert ticket is not None and not sums.read(BASE, BASE, hold, ticket)
    return sums


def test_a_change_saved_after_the_sums_were_read_and_before_they_land_is_added_back():
    sums = fresh()
    sums.show(7, (0, 0, 1_000), "sam")
    win = sums.want_read()  # a win elsewhere: the sums are read (with the journal up to 11)...
    sums.saved(saved(12, (0, 0, 1_500)), (0, 0, 1_000), "sam", headers=True)  # ...the move's save lands first
    assert sums.all == BASE.moved(0, 0, 1_500)
    assert not sums.read(BASE.moved(1, 100, 100), BASE, 11, win)  # sums without the move (id 12)
    assert sums.all == BASE.moved(1, 100, 1_600)
    assert sums.hold == 11
    later = sums.want_read()
    assert not sums.read(BASE.moved(1, 100, 1_600), BASE, 12, later)  # a later read holds it
    assert sums.all == BASE.moved(1, 100, 1_600)  # counted once


def test_a_change_the_sums_hold_is_not_counted_again():
    sums = fresh()
    sums.show(7, (0, 0, 1_000), "sam")
    assert not sums.read(BASE.moved(0, 0, 1_500), BASE, 12, sums.want_read())  # read after the save
    assert sums.all == BASE.moved(0, 0, 2_500)  # its shown part added back: its save is on its way
    sums.saved(saved(12, (0, 0, 1_500)), (0, 0, 1_000), "sam", headers=True)
    assert sums.all == BASE.moved(0, 0, 1_500)
    sums.journalled(12, (0, 0, 1_500), "sam")  # (the same entry told again: the prospect page, a live look)
    assert sums.all == BASE.moved(0, 0, 1_500)
    sums.journalled(13, (1, 200, 300), "sam")
    assert sums.all == BASE.moved(1, 200, 1_800) and sums.mine == BASE.moved(1, 200, 300)


def test_a_change_shown_and_not_saved_stays_counted_until_its_save_or_failure():
    sums = fresh()
    sums.show(7, (0, 0, 1_000), "sam")
    assert not sums.read(BASE, BASE, 11, sums.want_read())
    assert sums.all == BASE.moved(0, 0, 1_000)
    sums.settle(7, (0, 0, 1_000))  # failed: the screen takes its part back and reads again
    assert not sums.read(BASE, BASE, 11, sums.want_read())
    assert sums.all == BASE


def test_reads_asked_go_one_at_a_time_and_the_one_asked_meanwhile_begins_when_it_lands():
    sums = fresh()
    first = sums.want_read()
    assert first is not None and sums.asked == first
    assert sums.want_read() is None and sums.want_read() is None  # one more, once
    sums.journalled(12, (1, 10, 10), None)  # while the first is on its way: kept for it
    assert sums.read(BASE, BASE, 11, first)  # lands: begin the one asked for meanwhile
    assert sums.all == BASE.moved(1, 10, 10) and not sums.asked
    second = sums.want_read()
    sums.journalled(13, (1, 10, 10), None)
    assert not sums.read(BASE.moved(2, 20, 20), BASE, 13, second)
    assert sums.all == BASE.moved(2, 20, 20)
    third = sums.want_read()
    assert third is not None and not sums.read_failed(third)  # the header keeps what it shows
    assert sums.all == BASE.moved(2, 20, 20) and sums.want_read() is not None


def test_a_read_begun_earlier_and_landing_later_is_not_shown_and_one_read_later_loses_nothing():
    """Two reads on their way (the board's own with its cards, and its header's): the one begun
    first is not shown once the other is (a setting such as the KPI period may have changed
    between them). The one begun later may still have read an older journal (its thread ran
    first): what the header took on meanwhile is added back to it, held by the sums shown or not."""
    sums = fresh()
    board = sums.begin()
    header = sums.want_read()
    assert header is not None and header > board
    sums.journalled(12, (1, 10, 10), "sam")
    assert not sums.read(BASE.moved(1, 10, 10), BASE, 12, header)  # read after 12
    sums.journalled(12, (1, 10, 10), "sam")  # (told again: held)
    assert sums.all == BASE.moved(1, 10, 10)
    assert not sums.read(Kpi(1, 1, 1), Kpi(1, 1, 1), 9, board)  # begun first, landing last: not shown
    assert sums.all == BASE.moved(1, 10, 10) and sums.hold == 12
    early, late = sums.begin(), sums.begin()
    sums.journalled(13, (1, 5, 5), "sam")
    assert not sums.read(BASE.moved(2, 15, 15), BASE, 13, early)  # read after 13
    sums.journalled(14, (1, 1, 1), "sam")
    assert not sums.read(BASE.moved(1, 10, 10), BASE, 12, late)  # begun later, read before 13
    assert sums.all == BASE.moved(3, 16, 16) and sums.hold == 12  # 13 and 14 added back


def test_a_change_that_may_leave_the_period_keeps_its_shown_part_until_summed_again():
    period = Period("2025-12", "12m")
    assert journal_delta_is_the_headers(None, saved(1, (0, 0, 0), kind="won", category="win"))
    assert journal_delta_is_the_headers(ALL_TIME, saved(1, (0, 0, 0), kind="won", category="win"))
    assert journal_delta_is_the_headers(period, saved(1, (0, 0, 0)))
    assert not journal_delta_is_the_headers(period, saved(1, (0, 0, 0), kind="won", category="win"))
    assert not journal_delta_is_the_headers(period, saved(1, (0, 0, 0), category="reopen"))
    sums = fresh()
    sums.show(7, (0, 0, 4_000), "sam")
    win = sums.want_read()
    sums.saved(saved(12, (0, 0, 5_000), kind="won", category="win"), (0, 0, 4_000), "sam", headers=False)
    assert sums.all == BASE.moved(0, 0, 4_000)  # as shown, until the sums come
    assert not sums.read(BASE.moved(0, 0, 100), BASE, 11, win)  # read before the win was saved
    assert sums.all == BASE.moved(0, 0, 4_100)
