"""Issue 10, points 1-3, in a real terminal (tmux at 80x24, TERM=xterm-256color without COLORTERM):
the stage board with six open stages (navigate, move a card, the header follows, sideways
scrolling), the `c` toggle of won and lost, and a structured filter; figures checked against the
command line. The helpers are test_tmux's."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from test_tmux import Tmux, cli, eventually, header, kpi, prospect, seeded, shows  # noqa: F401

from evpipe.models.values import format_money


def card_order(db: Path, stage: str) -> list[dict]:
    """A column's cards as the board orders them: by expected month (none last), then name."""
    found = [p for p in json.loads(cli(db, "list", "--json")) if p["stage"] == stage]
    return sorted(found, key=lambda p: (p["month"] is None, p["month"] or "", p["name"].lower(), p["id"]))


def test_board_navigate_move_a_card_and_scroll_sideways(seeded):  # noqa: F811  (the fixture of test_tmux)
    cli(seeded, "stages", "add", "Proposal", "60", "--after", "Date held")  # six open stages
    stages = {s["name"]: s for s in json.loads(cli(seeded, "stages", "--json"))}
    before = kpi(seeded)
    target = card_order(seeded, "Quote sent")[0]
    t = Tmux(seeded)
    try:
        t.wait_for(shows(*header(before), "shown"))
        t.keys("8")
        screen = t.wait_for(shows("Suspect", "Quote sent", "1 more ▶", *header(before)))
        assert "Deposit pa" not in screen  # the sixth column is out of view at 80 columns
        t.keys("Right", "Right")
        t.keys(">")
        gain = Decimal(target["value"]) * (
            Decimal(str(stages["Date held"]["probability"])) - Decimal(str(stages["Quote sent"]["probability"]))
        )
        expected_ev = Decimal(before["ev"]) + gain
        screen = t.wait_for(shows(f"EV {format_money(int(expected_ev * 100))}", "Date held"))
        moved = eventually(lambda: prospect(seeded, target["name"]), lambda p: p["stage"] == "Date held")
        assert moved["stage"] == "Date held"
        after = eventually(lambda: kpi(seeded), lambda k: Decimal(k["ev"]) == expected_ev)
        assert all(part in t.wait_for(shows(*header(after))) for part in header(after))
        # the card is in the Date held column now (the fourth), the cursor with it (the board's
        # lines, not the save's notice, which names the prospect too once the save is in)
        lines = [line for line in screen.splitlines() if target["name"][:12] in line and "│" in line]
        assert lines and all(line.index(target["name"][:12]) > 3 * 16 for line in lines)
        # right to the last column: the board scrolls, keeping the cursor's column in view
        t.keys("Right", "Right")
        screen = t.wait_for(shows("◀ 1 more", "Deposit pa"))
        assert "Suspect" not in screen and "Proposal" in screen
        t.keys("Left", "Left", "Left", "Left", "Left")
        t.wait_for(shows("Suspect", "1 more ▶"))
    finally:
        t.kill()


def test_c_toggles_won_and_lost_in_the_list(seeded):  # noqa: F811  (the fixture of test_tmux)
    everyone = json.loads(cli(seeded, "list", "--json"))
    open_count = sum(1 for p in everyone if p["kind"] == "open")
    closed = [p for p in everyone if p["kind"] != "open"]
    assert closed, "the demo has won and lost prospects"
    before = kpi(seeded)
    t = Tmux(seeded)
    try:
        screen = t.wait_for(shows(f"{open_count} shown", "open only", *header(before)))
        assert "c Closed" in screen
        t.keys("c")
        screen = t.wait_for(shows(f"{len(everyone)} shown", "with won and lost"))
        assert all(part in screen for part in header(before))  # the header does not move
        t.keys("c")
        t.wait_for(shows(f"{open_count} shown", "open only", *header(before)))
    finally:
        t.kill()


def test_a_structured_filter_shows_what_the_command_line_lists(seeded):  # noqa: F811  (the fixture of test_tmux)
    text = "stage:quote owner:sam"
    listed = json.loads(cli(seeded, "list", "--filter", text, "--json"))
    assert listed and all(p["stage"] == "Quote sent" and p["owner"] == "sam" for p in listed)
    t = Tmux(seeded)
    try:
        t.wait_for(shows("shown"))
        t.keys("/")
        t.wait_for(shows("fields: stage:quote"))  # the completion hint
        t.keys(text, literal=True)
        t.keys("Enter")
        screen = t.wait_for(shows(f"{len(listed)} shown", "filter: stage:quote", f"\n {text}"))
        for p in listed:
            assert p["name"][:20] in screen
        # a filter that cannot be read says why in one line
        t.keys("/")
        t.keys(" due:soon", literal=True)
        t.wait_for(shows("filter: due:soon is not known; use due:overdue or due:week"))
        t.keys("Escape")
        t.wait_for(lambda s: "filter:" not in s)
    finally:
        t.kill()
