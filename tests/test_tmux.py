"""The real `evpipe` in a real terminal: tmux at 80x24, TERM=xterm-256color without COLORTERM,
on a database seeded through the command line. Keys go in with send-keys; the screen comes back
with capture-pane; the figures are checked against `evpipe kpi --json`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from evpipe.models.values import format_money, parse_money

EVPIPE = str(Path(sys.executable).parent / "evpipe")
HOSTILE = ["Acme [Beta]", "[/x]", "x [/", "[@click=app.quit]hi[/]"]


def cli(db: Path | str, *args: str) -> str:
    done = subprocess.run([EVPIPE, "--db", str(db), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def seeded(tmp_path, db_backend, new_db_url) -> Path | str:
    """The demo and four hostile names, in a file (SQLite) or a new PostgreSQL database (its URL)."""
    db: Path | str = tmp_path / "tmux.db" if db_backend == "sqlite" else new_db_url()
    cli(db, "seed")
    for i, name in enumerate(HOSTILE):
        cli(
            db,
            "add",
            name,
            "--value",
            f"{1000 * (i + 1)}",
            "--stage",
            "Enquiry",
            "--month",
            "2026-12",
            "--company",
            "[b]Bold[/b]",
        )
    return db


class Tmux:
    """One tmux server of its own (-L), running evpipe at 80x24."""

    def __init__(self, db: Path | str, *, no_color: bool = False, user: str | None = None) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("these tests need tmux installed")
        self.socket = f"evpipe-test-{uuid.uuid4().hex[:10]}"
        env = {k: os.environ[k] for k in ("EVPIPE_NOW", "EVPIPE_USER", "HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
        if user is not None:
            env["EVPIPE_USER"] = user
        colour = "NO_COLOR=1 " if no_color else "-u NO_COLOR "
        # (no COLUMNS or LINES: the test run's own, 80 and 24, would fix the app's size for good,
        # whatever the window's, as Python reads them before the terminal's)
        command = (
            "env -u COLORTERM -u COLUMNS -u LINES "
            + colour
            + "TERM=xterm-256color "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            + f" {shlex.quote(EVPIPE)} --db {shlex.quote(str(db))}"
        )
        self.run("new-session", "-d", "-x", "80", "-y", "24", command)

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self, *, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []))

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", *(["-l"] if literal else []), *keys)

    def wait_for(self, check, timeout: float = 15.0) -> str:
        """The screen once `check(screen)` holds (fails with the last screen after `timeout`)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.1)
        pytest.fail(f"the screen never showed what was expected:\n{text}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def tmux(seeded):
    t = Tmux(seeded)
    try:
        yield t
    finally:
        t.kill()


def kpi(db: Path | str) -> dict:
    return json.loads(cli(db, "kpi", "--json"))


def header(k: dict) -> tuple[str, str, str]:
    """What the KPI header shows for `evpipe kpi --json` figures."""
    tv = format_money(parse_money(k["tv"]))
    ev = format_money(parse_money(k["ev"]))
    return f"TV {tv}", f"EV {ev}", f"EV/TV {k['ev_tv_percent']}%"


def shows(*parts: str):
    return lambda text: all(p in text for p in parts)


def eventually(read, check, timeout: float = 15.0):
    """`read()` once `check` holds of it: the screen moves first, the save lands in a worker."""
    deadline = time.monotonic() + timeout
    value = read()
    while not check(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def prospect(db: Path | str, name: str) -> dict:
    return next(p for p in json.loads(cli(db, "list", "--json")) if p["name"] == name)


@pytest.mark.both_databases
def test_header_matches_cli_and_advance_then_undo(seeded, tmux):
    before = kpi(seeded)
    screen = tmux.wait_for(shows(*header(before), "shown"))
    # the four hostile names, exactly as typed, nothing styled away or run
    tmux.keys("/")
    tmux.keys("[b]bold", literal=True)  # their company, typed as markup: matched as text
    tmux.keys("Enter")
    screen = tmux.wait_for(shows("filter: [b]bold", "4 shown"))
    for name in HOSTILE:
        assert name in screen
    tmux.keys("Escape")
    tmux.wait_for(lambda text: "filter:" not in text)

    # `>` on Kauri Software: EV rises by value x (p(next) - p(now)), on screen and in the CLI
    target = prospect(seeded, "Kauri Software Christmas party")
    stages = {s["name"]: s for s in json.loads(cli(seeded, "stages", "--json"))}
    opens = sorted((s for s in stages.values() if s["kind"] == "open"), key=lambda s: s["position"])
    now = stages[target["stage"]]
    nxt = next(s for s in opens if s["position"] > now["position"])
    tmux.keys("/")
    tmux.keys("Kauri Software", literal=True)
    tmux.keys("Enter")
    tmux.wait_for(shows("1 shown"))
    tmux.keys(">")
    gain = Decimal(target["value"]) * (Decimal(str(nxt["probability"])) - Decimal(str(now["probability"])))
    expected_ev = Decimal(before["ev"]) + gain
    screen = tmux.wait_for(shows(f"EV {format_money(int(expected_ev * 100))}", nxt["name"]))
    after = eventually(lambda: kpi(seeded), lambda k: Decimal(k["ev"]) == expected_ev)
    assert Decimal(after["ev"]) == expected_ev
    assert all(part in screen for part in header(after))
    assert (
        eventually(lambda: prospect(seeded, target["name"]), lambda p: p["stage"] == nxt["name"])["stage"]
        == nxt["name"]
    )

    # `u` puts it back
    tmux.keys("u")
    tmux.wait_for(shows(*header(before)))
    assert eventually(lambda: kpi(seeded), lambda k: k["ev"] == before["ev"])["ev"] == before["ev"]
    assert (
        eventually(lambda: prospect(seeded, target["name"]), lambda p: p["stage"] == target["stage"])["stage"]
        == target["stage"]
    )


def test_keys_do_what_they_say(seeded, tmux):
    tmux.wait_for(shows("shown"))
    # m groups by month with subtotal lines
    tmux.keys("m")
    tmux.wait_for(shows("by month", "Dec 2026 ·"))
    tmux.keys("m")
    # s sorts by EV
    tmux.keys("s")
    tmux.wait_for(shows("sort: EV"))
    # o shows only mine: the four hostile names were added by tester
    tmux.keys("o")
    screen = tmux.wait_for(shows("Mine (tester) · 4 shown"))
    assert all(name in screen for name in HOSTILE)
    # w wins the cursor prospect (home: the biggest EV of mine, 4,000 on Enquiry)
    tmux.keys("Home")
    tmux.keys("w")
    tmux.wait_for(shows("Enquiry -> Won"))
    assert eventually(lambda: prospect(seeded, "[@click=app.quit]hi[/]"), lambda p: p["kind"] == "won")["kind"] == "won"
    # l asks why, and loses it
    tmux.keys("Down")
    tmux.keys("l")
    tmux.wait_for(shows("Lost: "))
    tmux.keys("no budget", literal=True)
    tmux.keys("Enter")
    tmux.wait_for(shows("-> Lost"))
    lost = [p for p in json.loads(cli(seeded, "list", "--json")) if p["kind"] == "lost" and p["name"] in HOSTILE]
    assert len(lost) == 1
    # enter opens the prospect page; escape comes back
    tmux.keys("Enter")
    tmux.wait_for(shows("Stage history"))
    tmux.keys("Escape")
    tmux.wait_for(lambda text: "Stage history" not in text and "Mine (tester)" in text)
    # a opens the form
    tmux.keys("a")
    tmux.wait_for(shows("Add a prospect"))
    tmux.keys("Escape")
    # the list's status line again (a notice over the top lines can hide the form's title)
    tmux.wait_for(lambda text: "Add a prospect" not in text and "Mine (tester)" in text)
    # q quits: the program ends, and with it the tmux session
    tmux.keys("q")
    deadline = time.monotonic() + 10
    ended = False
    while time.monotonic() < deadline and not ended:
        done = subprocess.run(["tmux", "-L", tmux.socket, "has-session"], capture_output=True, timeout=30)
        ended = done.returncode != 0
        time.sleep(0.1)
    assert ended, tmux.screen()


def test_escape_then_a_key_in_one_burst(seeded, tmux):
    # Over a slow link Escape and the next key arrive in one read: Textual took ESC > as ">" (typed
    # into the filter being left) and ESC Enter as Enter (a form submitted instead of closed).
    tmux.wait_for(shows("shown"))
    tmux.keys("/")
    tmux.keys("Harbour Events", literal=True)
    tmux.wait_for(shows("filter: Harbour Events", "Harbour Events Ltd"))
    tmux.keys("-H", "1b", "3e")  # ESC >, one write
    screen = tmux.wait_for(shows("Quote sent -> Date held"))
    assert "filter:" not in screen and "Harbour Events>" not in screen
    tmux.keys("a")
    tmux.wait_for(shows("Add a prospect"))
    tmux.keys("-H", "1b", "0d")  # ESC Enter: the form closes, and Enter opens the prospect's page
    screen = tmux.wait_for(shows("Stage history"))
    assert "Add a prospect" not in screen


def test_a_byte_that_is_not_utf8_is_typed_as_a_replacement_and_the_app_reads_on(seeded, tmux):
    # A terminal that sends Alt as an 8-bit byte (or a garbled line) sent 0xff: Textual's strict
    # decoder raised in the input thread and the app stopped with a UnicodeDecodeError traceback.
    tmux.wait_for(shows("shown"))
    tmux.keys("-H", "ff")
    tmux.keys("/")
    tmux.keys("-H", "48", "61", "ff", "72")  # H a 0xff r, one write
    tmux.wait_for(shows("filter: Ha\ufffdr"))
    tmux.keys("BSpace", "BSpace")
    tmux.keys("rbour Events", literal=True)
    screen = tmux.wait_for(shows("filter: Harbour Events", "Harbour Events Ltd"))
    assert "UnicodeDecodeError" not in screen


def test_a_pasted_text_with_colour_codes_presses_no_key(seeded, tmux, tmp_path):
    # A rep pasted a line copied from a coloured terminal on the pipeline: Textual read the part of
    # the paste after its first ESC as key presses, and "won" marked the prospect under the cursor
    # won. A paste is text, whole: into the filter here, with its colour codes taken out.
    before = kpi(seeded)
    tmux.wait_for(shows(*header(before), "shown"))
    clip = tmp_path / "clip.txt"
    clip.write_bytes(b"Harbour \x1b[32mwon\x1b[0m ok")
    tmux.run("load-buffer", "-b", "clip", str(clip))
    tmux.keys("/")
    tmux.run("paste-buffer", "-p", "-b", "clip")
    screen = tmux.wait_for(shows("filter: Harbour won ok"))
    assert "-> Won" not in screen and "^[" not in screen
    assert kpi(seeded) == before


def test_no_color(seeded):
    """With NO_COLOR set, only shades of grey are sent, and the cursor row still stands out."""
    import re

    t = Tmux(seeded, no_color=True)
    try:
        before = kpi(seeded)
        t.wait_for(shows(*header(before), "shown"))
        raw = t.screen(escapes=True)
        colours = {int(n) for n in re.findall(r"[34]8;5;(\d+)", raw)}
        assert colours and colours <= {0, 7, 8, 15, 16, 231} | set(range(232, 256)), colours
        assert "38;2;" not in raw and "48;2;" not in raw  # no true colour either
        lines = raw.splitlines()
        first, second = lines[4], lines[5]  # the cursor's row, then the next
        assert re.match(r"(\x1b\[[0-9;]*m)+", first) and re.match(r"(\x1b\[[0-9;]*m)+", second)
        assert re.match(r"(\x1b\[[0-9;]*m)+", first)[0] != re.match(r"(\x1b\[[0-9;]*m)+", second)[0]
        t.keys(">")
        t.wait_for(lambda text: f"EV {format_money(parse_money(before['ev']))}" not in text)
        after = eventually(lambda: kpi(seeded), lambda k: Decimal(k["ev"]) > Decimal(before["ev"]))
        assert Decimal(after["ev"]) > Decimal(before["ev"])
    finally:
        t.kill()


@pytest.mark.both_databases
def test_insight_screens_open_by_number_and_focus_keys_move_the_header(seeded, tmux):
    """Issue 4 as a person meets it: 2-6 open Focus, Forecast, Trend, Sighting-in and Review at
    80x24, the charts are drawn, and `>` on the focus list saves and moves the KPI header."""
    before = kpi(seeded)
    tmux.wait_for(shows(*header(before), "shown"))
    tmux.keys("3")
    screen = tmux.wait_for(shows("Forecast", "WAPE", "forecast", "actual"))
    assert "┤" in screen and "█" in screen  # the bar chart's axis and bars
    tmux.keys("4")
    screen = tmux.wait_for(shows("Trend", "TV and EV", "EV/TV %"))
    assert "┤" in screen
    tmux.keys("5")
    tmux.wait_for(shows("Sighting in", "Brier", "Suspect", "Deposit paid"))
    tmux.keys("6")
    tmux.wait_for(shows("Review", "What moved EV", "Overdue"))

    tmux.keys("2")
    screen = tmux.wait_for(shows("Focus", "overdue", *header(before)))
    first = next(line for line in screen.splitlines() if "overdue " in line and "Focus" not in line)
    name = first.split("  ")[0].strip()
    target = next(p for p in json.loads(cli(seeded, "list", "--json")) if p["name"].startswith(name))
    stages = sorted(
        (s for s in json.loads(cli(seeded, "stages", "--json")) if s["kind"] == "open"), key=lambda s: s["position"]
    )
    now = next(s for s in stages if s["name"] == target["stage"])
    nxt = next(s for s in stages if s["position"] > now["position"])
    gain = Decimal(target["value"]) * (Decimal(str(nxt["probability"])) - Decimal(str(now["probability"])))
    expected = Decimal(before["ev"]) + gain
    tmux.keys(">")
    tmux.wait_for(shows(f"EV {format_money(int(expected * 100))}"))
    after = eventually(lambda: kpi(seeded), lambda k: Decimal(k["ev"]) == expected)
    assert Decimal(after["ev"]) == expected


def test_forecast_screen_like_for_like_and_explained(seeded):
    """Issue 9, point 3, as a rep meets it at 80x24 without colour: the forecast opens on the
    current month with the months to come below, a month that has ended with a prospect still open
    is marked and the prospect named, and the screen says what its columns mean."""
    cli(seeded, "add", "Overdue [charter]", "--value", "3000", "--stage", "Enquiry", "--month", "2026-10")
    data = json.loads(cli(seeded, "forecast", "--json"))
    oct_ = next(m for m in data["months"] if m["month"] == "2026-10")
    assert oct_["provisional"] and [p["name"] for p in oct_["still_open"]] == ["Overdue [charter]"]
    for no_color in (False, True):
        t = Tmux(seeded, no_color=no_color)
        try:
            t.wait_for(shows("shown"))
            t.keys("3")
            screen = t.wait_for(shows("Forecast", "WAPE", "Nov 2026 *", "Oct 2026 ?"))
            # The table is filled first and scrolled to the current month once it has its full
            # height (a moment later on a busy machine): wait for the view it settles on.
            screen = t.wait_for(lambda text: "Nov 2025" not in text and shows("Nov 2026 *", "Jan 2027")(text))
            lines = screen.splitlines()
            assert next(i for i, x in enumerate(lines) if "Nov 2026 *" in x) < next(
                i for i, x in enumerate(lines) if "Jan 2027" in x
            )
            assert "? Oct 2026: 1 still open, not a miss yet: Overdue [charter]" in screen
            for words in ("Frozen:", "Actual:", "Acc:", "Bias:", "Signed:"):
                assert words in screen, words
        finally:
            t.kill()


def test_a_damaged_database_is_said_on_screen(seeded):
    """Issue 15, point 7: pages of the prospects' table damaged (they pass the checks made before
    the screen opens): the app's background check says so, naming the file and the next step."""
    import sqlite3

    connection = sqlite3.connect(seeded)
    (root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'prospect'").fetchone()
    connection.close()
    data = bytearray(seeded.read_bytes())
    data[(root - 1) * 4096 : root * 4096] = b"\x5a" * 4096
    seeded.write_bytes(bytes(data))
    t = Tmux(seeded)
    try:
        text = eventually(t.screen, shows("The database has a problem:", "integrity_check"), timeout=40)
        flat = " ".join(text.replace("▌", " ").split())  # the notice wraps inside its box
        assert "is damaged" in flat and "restore it from a backup" in flat, text
        assert "Traceback" not in text and "q Quit" in text  # the notice sits over the tab bar
    finally:
        t.kill()


def _cursor_name(t: Tmux) -> str:
    """The name of the prospect under an app's cursor: its page's title (then back)."""
    t.keys("Enter")
    screen = t.wait_for(shows("esc back"), timeout=15)
    title = next(line.strip() for line in screen.splitlines() if line.strip())
    t.keys("Escape")
    t.wait_for(shows("shown"))
    return title


def test_two_users_see_each_others_changes_live(seeded):
    """Issue 11, point 1: priya's app shows sam's move (made in his app) and a CLI move within 2 s,
    with a notice naming who did what, the header as the CLI counts it, the cursor staying put."""
    priya, sam = Tmux(seeded, user="priya"), Tmux(seeded, user="sam")
    try:
        before = kpi(seeded)
        priya.wait_for(shows(*header(before), "shown"))
        sam.wait_for(shows(*header(before), "shown"))
        for _ in range(3):
            priya.keys("Down")
        on = _cursor_name(priya)
        # sam advances Kauri Software in his app
        sam.keys("/")
        sam.keys("Kauri Software", literal=True)
        sam.keys("Enter")
        sam.wait_for(shows("1 shown"))
        sam.keys(">")
        started = time.monotonic()
        priya.wait_for(shows("sam: Kauri Software Christmas party ->"), timeout=15)
        took = time.monotonic() - started
        assert took < 2.5, took  # within 2 s (plus the time a capture takes)
        after = eventually(lambda: kpi(seeded), lambda k: k["ev"] != before["ev"])
        priya.wait_for(shows(*header(after)))
        # a move through the command line, by a third user
        name = "Acme [Beta]"
        done = subprocess.run(
            [EVPIPE, "--db", str(seeded), "move", name, "next"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "EVPIPE_USER": "alex"},
        )
        assert done.returncode == 0, done.stderr
        started = time.monotonic()
        priya.wait_for(shows("alex: Acme [Beta] -> Quote sent"), timeout=15)
        took_cli = time.monotonic() - started
        assert took_cli < 2.5, took_cli
        priya.wait_for(shows(*header(kpi(seeded))))
        assert _cursor_name(priya) == on  # the cursor stayed on its prospect
        print(f"live: sam's move shown after {took:.2f} s, the command line's after {took_cli:.2f} s")
    finally:
        priya.kill()
        sam.kill()


def test_notices_still_show_after_a_teammate_s_burst_of_the_same_words(seeded, tmux):
    """A teammate moved one prospect on and back six times, and the notices said the same two
    lines again and again: each said again took the place of the one before, whose empty holder
    Textual left on the notices' rack. After a few, no notice showed on the pipeline again, and a
    save that failed later was taken back without a word (tui/toast_rack.py)."""
    tmux.wait_for(shows("shown"))
    env = {**os.environ, "EVPIPE_USER": "priya"}
    for _ in range(6):
        for way in ("next", "back"):
            subprocess.run([EVPIPE, "--db", str(seeded), "move", "Harbour", way], env=env, check=True, timeout=60)
            time.sleep(0.2)
    time.sleep(7)  # every notice of the burst has timed out
    subprocess.run([EVPIPE, "--db", str(seeded), "follow", "Harbour", "2026-12-22"], env=env, check=True, timeout=60)
    tmux.wait_for(shows("priya: Harbour Events Ltd Christmas party: next follow-up"), timeout=10)


# ---------------------------------------------------------------- issue 10: the rep's daily loop


def test_loop_log_a_call_then_schedule_the_next_step(seeded):
    """Issue 10.4 at 80x24 without colour: n on a prospect page logs a call typed in one burst,
    then asks for the next follow-up, prefilled; a second burst gives its time and note."""
    t = Tmux(seeded, no_color=True)
    try:
        t.wait_for(shows("shown"))
        t.keys("/")
        t.keys("Kauri Software", literal=True)
        t.keys("Enter")
        t.wait_for(shows("1 shown"))
        t.keys("Enter")  # straight after the filter's enter: it lands on the table
        t.wait_for(shows("Stage history"))
        t.keys("n")
        t.wait_for(shows("Log a contact point"))
        t.keys("Called, wants a quote", "Tab", "C-u", "today 9:15", "Enter")  # one write
        screen = t.wait_for(shows("Next step with Kauri Software"))
        assert "2026-11-28" in screen  # the follow-up set, still ahead
        t.keys("C-u", "+1w", "Tab", "2pm", "Tab", "send the quote", "Enter")
        screen = t.wait_for(shows("Fri 4 Dec 14:00", "09:15 call"))
        p = eventually(
            lambda: prospect(seeded, "Kauri Software Christmas party"), lambda p: p["next_follow_up"] == "2026-12-04"
        )
        assert p["next_follow_up"] == "2026-12-04"
    finally:
        t.kill()


def test_loop_focus_in_date_order(seeded, tmux):
    """Issue 10.5: the focus list's overdue follow-ups go oldest first."""
    tmux.wait_for(shows("shown"))
    tmux.keys("2")
    screen = tmux.wait_for(shows("Focus", "overdue"))
    days = [int(m[1]) for m in re.finditer(r"overdue (\d+) days?", screen)]
    assert len(days) >= 2 and days == sorted(days, reverse=True), screen  # most days overdue first


def test_loop_keys_never_surprise(seeded):
    """Issue 10.6 at 80x24 (xterm-256color, no COLORTERM): q and ? in the footer, q back from a
    page, a lost prospect says what to do instead, a burst in the add form, the gain sort's mark,
    the import path completing."""
    t = Tmux(seeded)
    try:
        t.wait_for(lambda text: text.splitlines()[-1].split()[:4] == ["q", "Quit", "?", "Help"])
        t.wait_for(shows("shown"))  # the rows are in: enter opens the first one
        t.keys("Enter")
        t.wait_for(
            lambda text: "Stage history" in text and text.splitlines()[-1].split()[:4] == ["q", "Back", "?", "Help"]
        )
        t.keys("q")
        t.wait_for(lambda text: "Stage history" not in text and "shown" in text)
        t.keys("/")
        t.keys("stage:lost Parnell", literal=True)  # a stage filter brings the lost ones into the list
        t.keys("Enter")
        t.wait_for(shows("1 shown"))
        t.keys("l")
        screen = t.wait_for(shows("< reopens it"))
        assert "Why was it lost" not in screen
        t.keys("Escape")
        t.wait_for(lambda text: "filter:" not in text)
        for _ in range(10):
            t.keys("s")
            time.sleep(0.3)  # each s moves the sort on once; let the status line follow
            screen = t.wait_for(lambda text: "sort:" in text)
            if "next-step gain" in screen:
                break
        assert "Gain↓" in screen and "Follo…" not in screen
        t.keys("a")
        t.wait_for(shows("Add a prospect"))
        t.keys("Sam Lee", "Tab", "sam@example.com", "Tab", "Tab", "Tab", "Tab", "5000", "Enter")  # one write
        t.wait_for(shows("Sam Lee: added"))
        sam = eventually(lambda: prospect(seeded, "Sam Lee"), lambda p: p is not None)
        assert sam["company"] == "sam@example.com" and sam["value"] == "5000.00"
        t.keys("i")
        t.wait_for(shows("Import prospects"))
        folder = str(Path(__file__).parent / "fixtures" / "crm")
        t.keys(folder + "/sal", literal=True)
        t.wait_for(shows("sales_pipeline.csv"))
        t.keys("Right", "Enter")
        screen = t.wait_for(shows("Cannot import yet:", "first, stage"), timeout=60)
        assert "--stage-map" in screen
    finally:
        t.kill()


def test_loop_charts_readable_without_colour(seeded):
    """Issue 10.7: with NO_COLOR the trend and forecast charts tell their series apart by marker,
    and their value axes read in round numbers with thousands separators."""
    t = Tmux(seeded, no_color=True)
    try:
        t.wait_for(shows("shown"))
        t.keys("4")
        screen = t.wait_for(shows("• TV", "x EV", "┤"))
        ticks = [line.split("┤")[0].strip() for line in screen.splitlines() if "┤" in line]
        assert any("," in tick for tick in ticks), ticks
        assert all(tick.replace(",", "").rstrip("%").isdigit() for tick in ticks if tick), ticks
        t.keys("3")
        t.wait_for(shows("█ forecast", "░ actual"))
    finally:
        t.kill()


def test_loop_cli_names_forgive(seeded):
    """Issue 10.8, in a terminal: a unique start of a name, in any case, names the prospect; an
    ambiguous one lists the candidates in one line."""
    socket = f"evpipe-test-{uuid.uuid4().hex[:10]}"
    command = (
        f"{shlex.quote(EVPIPE)} --db {shlex.quote(str(seeded))} move kauri next; "
        f"{shlex.quote(EVPIPE)} --db {shlex.quote(str(seeded))} move a next; sleep 30"
    )
    subprocess.run(["tmux", "-L", socket, "new", "-d", "-x", "80", "-y", "24", command], check=True, timeout=30)
    try:
        deadline = time.monotonic() + 30
        screen = ""
        while time.monotonic() < deadline and "type more of the name" not in screen:
            time.sleep(0.2)
            screen = subprocess.run(
                ["tmux", "-L", socket, "capture-pane", "-p"], capture_output=True, text=True, timeout=30
            ).stdout
        said = " ".join(screen.split())  # the terminal wraps the one line
        assert "Kauri Software Christmas party:" in said, screen
        assert "evpipe: prospect: 4 prospects have a name starting with 'a'" in said, screen
        assert "type more of the name or use the id" in said, screen
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)


def test_loop_help_teaches(seeded, tmux):
    """Issue 10.9: ? explains the marks and lists the screens."""
    tmux.wait_for(shows("shown"))
    tmux.keys("?")
    tmux.wait_for(shows("evpipe keys"))
    tmux.keys("End")
    end = tmux.wait_for(shows("Edit the stage ladder", "app.screen_7", 'like this:  "pipeline.advance"'), timeout=30)
    tmux.keys("PageUp")  # a page less one line: the top line at the end is the bottom one now
    tmux.wait_for(lambda screen: help_rows(screen)[-1] == help_rows(end)[0], timeout=30)
    tmux.keys("PageUp")
    tmux.wait_for(shows("a follow-up overdue", "stale: no contact"), timeout=30)


def help_rows(screen: str) -> list[str]:
    """The help's scrolling lines: inside the box, under its title, above its hint, no scroll bar."""
    lines = screen.splitlines()
    top = next(n for n, line in enumerate(lines) if "evpipe keys" in line)
    bottom = next(n for n, line in enumerate(lines) if "esc closes" in line)
    return [line[1:-4].rstrip() for line in lines[top + 1 : bottom]]


def test_loop_notices_never_hide_the_row(seeded):
    """Issue 10.10 at 80x24, with and without colour: the notice of a move sits over the tab bar
    and header, and the moved row still shows its new stage."""
    for no_color in (False, True):
        t = Tmux(seeded, no_color=no_color)
        try:
            t.wait_for(shows("shown"))
            t.keys("/")
            t.keys("Kauri Software", literal=True)
            t.keys("Enter")
            t.wait_for(shows("1 shown"))
            t.keys(">")
            screen = t.wait_for(shows("Kauri Software Christmas party: "))
            lines = screen.splitlines()
            notice = next(i for i, line in enumerate(lines) if "Kauri Software Christmas party: " in line)
            assert notice < 4, screen  # over the tab bar and the KPI header
            row = next(line for line in lines[4:] if line.startswith("  Kauri") or line.startswith("~ Kauri"))
            assert "Kauri Software" in row and len(row.split()) > 4, screen
        finally:
            t.kill()


def test_demo_band_and_last_year_at_80x24_without_colour(tmp_path):
    """Issue 16: on the demo (15 months of history), the forecast screen shows the selected month
    as a range with a text band, and the trend screen overlays last year, at 80x24 with NO_COLOR."""
    import re

    from evpipe.models.demo import build_demo

    db = tmp_path / "demo.db"
    build_demo(f"sqlite:///{db}", own=True)
    data = json.loads(cli(db, "forecast", "--json"))
    dec = next(m for m in data["months"] if not m["complete"])  # the current month, where the screen opens
    t = Tmux(db, no_color=True)
    try:
        t.wait_for(shows("shown"))
        t.keys("3")
        screen = t.wait_for(shows("Nov: EV", "80% between", "P10 ", "P90 "), timeout=30)
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        band = next(line for line in lines if "P10 " in line)
        assert "[" in band and "]" in band and "*" in band and band.count("|") >= 1
        assert f"P10 {format_money(parse_money(dec['p10']), decimals=False)}" in band
        assert f"P90 {format_money(parse_money(dec['p90']), decimals=False)}" in band
        t.keys("4")
        t.wait_for(shows("Trend", "l Last year"), timeout=30)
        t.keys("l")
        screen = t.wait_for(shows("+ TV last yr", "o EV last yr", "• TV", "x EV", "this time"), timeout=30)
        # last year's markers, distinct from this year's without colour (tui/widgets/charts.py)
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        raw = t.screen(escapes=True)
        colours = {int(n) for n in re.findall(r"[34]8;5;(\d+)", raw)}
        assert colours <= {0, 7, 8, 15, 16, 231} | set(range(232, 256)), colours  # greys only
    finally:
        t.kill()


def test_the_app_runs_in_a_lean_interpreter(tmux):
    """`evpipe` opens the app in Python started again with -OO (tui/launch.py), which leaves the
    libraries' docstrings out of its memory; `make bytecode` compiled the modules for it. The
    pane's process is that interpreter, and the app answers keys in it."""
    tmux.wait_for(lambda s: "EV/TV" in s)
    pid = tmux.run("display-message", "-p", "#{pane_pid}").strip()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert argv[1:5] == [b"-OO", b"-P", b"-m", b"evpipe.tui.cli"], argv
    tmux.keys("?")
    tmux.wait_for(lambda s: "evpipe keys" in s)


def test_frames_painted_key_by_key_leave_what_a_whole_repaint_shows(seeded, tmux):
    """The pipeline paints only what a key changed (tui/paint.py, KeptLines): after keys one at a
    time and in a burst, a stage key and its notice gone, the terminal, colours included, is what
    the app paints when it draws the whole screen again (a resize to 100 columns and back)."""
    tmux.wait_for(shows("shown"))
    for key in ("Down", "Down", "Up"):
        tmux.keys(key)
        time.sleep(0.15)
    tmux.keys("Down", "Down", "Down", "Up")  # one burst
    tmux.keys(">")
    tmux.wait_for(shows(" -> "))
    tmux.wait_for(lambda text: " -> " not in text, 20)  # the notice has gone
    tmux.keys("Down")
    before = _still(tmux)
    plain = tmux.screen()
    tmux.run("resize-window", "-x", "100")
    wider = tmux.wait_for(lambda text: text != plain)  # drawn whole at 100 columns
    tmux.run("resize-window", "-x", "80")
    tmux.wait_for(lambda text: text != wider)  # and whole again at 80
    after = _still(tmux)
    assert after == before


def _still(t: Tmux) -> str:
    """The screen with its colours once it has stayed the same for 0.3 s (every frame of the keys
    or the resize has come, on a slow machine too)."""
    deadline = time.monotonic() + 15
    last = t.screen(escapes=True)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = t.screen(escapes=True)
        if now == last:
            return now
        last = now
    return last
