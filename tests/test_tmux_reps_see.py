"""Issue 11, point 5, in a real terminal (tmux at 80x24, TERM=xterm-256color without COLORTERM): a
rep whom the owner lets see only their own prospects (`evpipe members reps-see own`) opens evpipe
and sees only theirs, their KPIs in the header, and the status line saying why; the board the
same. Figures are checked against the command line. The helpers are test_tmux's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from test_tmux import EVPIPE, Tmux, header, seeded, shows  # noqa: F401

from evpipe.models.roles import login_name


def cli_as(db: Path | str, user: str, *args: str) -> str:
    """`evpipe` run as `user` (EVPIPE_USER: honoured for the login name, and for an owner's login)."""
    env = {**os.environ, "EVPIPE_USER": user}
    done = subprocess.run([EVPIPE, "--db", str(db), *args], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_rep_limited_to_their_own_sees_only_theirs(seeded):  # noqa: F811  (the fixture of test_tmux)
    me = login_name()  # the owner: the account the tests run as, so EVPIPE_USER may name the rep
    cli_as(seeded, me, "members", "add", me, "--role", "owner")
    for rep in ("sam", "priya", "mere"):
        cli_as(seeded, me, "members", "add", rep, "--role", "rep")
    cli_as(seeded, me, "members", "reps-see", "own")
    everyone = json.loads(cli_as(seeded, me, "list", "--json"))
    hers = [p for p in everyone if p["owner"] == "priya" and p["kind"] == "open"]
    others = [p for p in everyone if p["owner"] != "priya" and p["kind"] == "open"]
    assert hers and len(others) > 15, "the demo has open prospects of priya's and many of others'"
    # what the command line gives priya: her prospects and her KPIs (it honours the setting)
    assert {p["name"] for p in json.loads(cli_as(seeded, "priya", "list", "--json"))} == {
        p["name"] for p in everyone if p["owner"] == "priya"
    }
    her_kpi = json.loads(cli_as(seeded, "priya", "kpi", "--json"))
    team_kpi = json.loads(cli_as(seeded, me, "kpi", "--json"))
    assert her_kpi["ev"] != team_kpi["ev"]
    t = Tmux(seeded, user="priya")
    try:
        screen = t.wait_for(shows("Your prospects only", f"{len(hers)} shown", *header(her_kpi)))
        # the status line says so and still fits 80 columns, the settings at its end included
        status = next(line for line in screen.splitlines() if "Your prospects only" in line)
        assert status.rstrip().endswith("open only"), status
        for p in hers:
            assert p["name"][:14] in screen
        for p in others:  # the list would show many of theirs: none is there
            assert p["name"][:14] not in screen, p["name"]
        assert header(team_kpi)[1] not in screen  # not the team's EV
        # `/owner:sam` finds nothing: the filter narrows within her prospects, never past them
        t.keys("/")
        t.keys("owner:sam", literal=True)
        t.keys("Enter")
        t.wait_for(shows("0 shown", "No prospects match"))
        t.keys("Escape")
        t.wait_for(shows(f"{len(hers)} shown"))
        # the board: her cards, her KPIs, the same line
        t.keys("8")
        screen = t.wait_for(shows("Suspect", "Your prospects only", *header(her_kpi)))
        for p in others:
            assert p["name"][:12] not in screen, p["name"]
    finally:
        t.kill()
