"""`evpipe serve` (issue 14) in a real headless Chromium: the owner's view shows the KPIs, changes
nothing, and lets nobody else in.

One read-only server (one session at a time) on a demo database serves the first tests; the last
starts one with --allow-writes. Each browser session is an app process: the tests wait generously.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from browser import EVPIPE, WAIT, Served, Terminal, cli, env_for, launch
from playwright.sync_api import sync_playwright

from evpipe.tui.cli.serve import is_loopback, parse_user_tokens, same_origin


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="module")
def env(home):
    return env_for(home)


@pytest.fixture(scope="module")
def pristine(env, home):
    """The demo pipeline, seeded once (the seed's last connection closed: the file is whole)."""
    db = home / "pristine.db"
    cli(env, db, "seed")
    return db


@pytest.fixture(scope="module")
def demo(pristine, home):
    db = home / "owner.db"
    shutil.copyfile(pristine, db)
    return db


@pytest.fixture(scope="module")
def served(env, demo):
    server = Served(env, demo, "--max-sessions", "1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium(home):
    with sync_playwright() as p:
        context = launch(p, home / "chromium-profile")
        yield context
        context.close()


@pytest.fixture
def browser(chromium, served):
    """The browser with no cookies, once the server has no session left from an earlier test."""
    chromium.clear_cookies()
    yield chromium
    for page in chromium.pages:
        page.close()
    wait_free(served)


def wait_free(served: Served) -> None:
    """Until the server has a free session again (closing a page ends its app process)."""
    deadline = time.monotonic() + WAIT
    while served.index_status() == 503:
        if time.monotonic() > deadline:
            pytest.fail("a closed page's session never ended")
        time.sleep(0.3)


def database_state(db) -> list[list[tuple]]:
    """Everything a write would change: every row of the prospects, the ladder, the journal, the
    stage history, the contacts, the settings and the KPI history."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return [
            connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("prospect", "stage", "change_event", "stage_change", "activity", "setting", "kpi_snapshot")
        ]


def amount(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def test_review_shows_the_kpis_and_a_write_key_changes_nothing(browser, served, env, demo, tmp_path):
    kpi = json.loads(cli(env, demo, "kpi", "--json"))
    before = database_state(demo)
    page = browser.new_page()
    term = Terminal(page)
    response = page.goto(served.links()[0])
    assert response is not None and response.ok
    assert "token" not in page.url  # the token left the address bar for a cookie
    # the review, with the owner's other screens a key away in the tab bar
    shown = term.wait_for(
        lambda t: " Review  " in t and " → " in t and "Quit" in t and "1 Pip" in t and "6 Review" in t
    )
    ev = re.search(r"EV ([\d,.]+) → ([\d,.]+)", shown)
    tv = re.search(r"TV ([\d,.]+)", shown)
    ratio = re.search(r"EV/TV [\d.]+% → ([\d.]+)%", shown)
    assert ev and tv and ratio, shown
    assert amount(ev.group(2)) == Decimal(kpi["ev"])
    assert amount(tv.group(1)) == Decimal(kpi["tv"])
    assert ratio.group(1) == kpi["ev_tv_percent"]

    term.press("1")  # the pipeline, where `w` would win the prospect under the cursor
    pipeline = term.wait_for(lambda t: "Everyone's" in t and "Filter" in t)
    footer = pipeline.splitlines()[-1]
    assert "Advance" not in footer and "Won" not in footer and "Add" not in footer  # write keys hidden
    # the table's first rows as the browser paints them (lines 5 to 12: the notice that follows
    # sits over the top four, the tab bar and the KPI header)
    box = page.locator(".xterm-screen").bounding_box()
    assert box is not None
    line = box["height"] / term.screen.lines
    rows = {"x": box["x"], "y": box["y"] + 5 * line, "width": box["width"], "height": 7 * line}
    first_row = page.screenshot(path=tmp_path / "before.png", clip=rows)
    term.press("w")
    term.wait_for(lambda t: "read-only" in t and "nothing here" in t)  # a notice says why
    after = page.screenshot(path=tmp_path / "after.png", clip=rows)
    assert after == first_row  # the rows look exactly as they did: nothing was won
    assert database_state(demo) == before


def test_no_token_no_entry(browser, served):
    page = browser.new_page()
    response = page.goto(served.base + "/")
    assert response is not None and response.status == 403
    assert "No access" in page.content()
    response = page.goto(served.base + "/?token=not-the-token")
    assert response is not None and response.status == 403
    assert page.request.get(served.base + "/static/js/textual.js").status == 403  # not from the cache
    # a websocket without the cookie is refused before any app process starts
    result = page.evaluate(OPEN_SOCKET, f"ws://127.0.0.1:{served.port}/ws")
    assert result == "refused"


def test_a_foreign_origin_is_refused_even_with_the_cookie(browser, served):
    name, _, value = served.cookie().partition("=")
    browser.add_cookies([{"name": name, "value": value, "url": served.base + "/", "sameSite": "Strict"}])
    page = browser.new_page()
    # another web page on this machine (another port: the same site, so the cookie goes along)
    other = f"http://127.0.0.1:{served.port + 1}/"
    page.route(other, lambda route: route.fulfill(status=200, content_type="text/html", body="<p>elsewhere</p>"))
    page.goto(other)
    assert page.evaluate(OPEN_SOCKET, f"ws://127.0.0.1:{served.port}/ws") == "refused"
    # and it is the Origin that is refused: the same handshake, cookie and all, says so
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=WAIT)
    headers = {
        "Cookie": served.cookie(),
        "Origin": other.rstrip("/"),
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    connection.request("GET", "/ws", headers=headers)
    response = connection.getresponse()
    assert response.status == 403 and "came from another site" in response.read().decode()
    connection.close()
    # a name that resolves here but is not loopback's (DNS rebinding) is refused too
    assert served.status_for_host(f"evil.example:{served.port}") == 403
    assert served.status_for_host(f"localhost:{served.port}") == 303  # as through an SSH tunnel


def test_sessions_are_capped_and_say_so(browser, served):
    first = browser.new_page()
    term = Terminal(first)
    first.goto(served.links()[0])
    term.wait_for(" Review  ")
    second = browser.new_page()
    response = second.goto(served.base + "/")
    assert response is not None and response.status == 503
    assert "All 1 sessions of this evpipe are in use" in second.content()


OPEN_SOCKET = """url => new Promise(done => {
    const ws = new WebSocket(url);
    ws.onopen = () => { ws.close(); done("opened"); };
    ws.onerror = () => done("refused");
})"""


def test_with_writes_a_browser_names_its_user_and_changes_are_journaled_under_it(env, home, chromium, pristine):
    db = home / "writes.db"
    shutil.copyfile(pristine, db)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        last = connection.execute("SELECT max(id) FROM change_event").fetchone()[0]
    server = Served(env, db, "--allow-writes", "--screen", "pipeline")
    try:
        chromium.clear_cookies()
        page = chromium.new_page()
        term = Terminal(page)
        page.goto(server.links()[0])
        assert "Who are you?" in page.content()  # nothing runs before a name is given
        page.fill("input[name=name]", "Olivia <Owner>")
        page.click("button")
        term.wait_for(lambda t: "Everyone's" in t and "Advance" in t)  # the write keys are there
        term.press("w")  # win the prospect under the cursor
        deadline = WAIT
        who = None
        while deadline > 0 and who is None:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                row = connection.execute("SELECT who FROM change_event WHERE id > ?", (last,)).fetchone()
            who = row[0] if row else None
            page.wait_for_timeout(250)
            deadline -= 0.25
        assert who == "Olivia <Owner>"  # the browser's user, not the server's account
    finally:
        server.stop()  # with the page still open: stopping the server ends its app process too
    deadline = time.monotonic() + WAIT
    while sessions_on(db):
        assert time.monotonic() < deadline, "an app process outlived evpipe serve"
        time.sleep(0.3)
    page.close()


def sessions_on(db) -> list[str]:
    """The app processes of `evpipe serve` running on `db` (read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve-session" in words and any(str(db).encode() in w for w in words):
            found.append(cmdline.parent.name)
    return found


# ---------------------------------------------------------------- without a browser


def test_a_malformed_origin_is_refused_like_a_foreign_one(served):
    """'http://[::1' made urlsplit raise in the guard: a 500, and a traceback in the server's log."""
    import http.client

    errors_before = len(served.errors)
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=WAIT)
    try:
        headers = {
            "Cookie": served.cookie(),
            "Origin": "http://[::1",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        connection.request("POST", "/name", body="name=x", headers=headers)
        response = connection.getresponse()
        assert response.status == 403 and "came from another site" in response.read().decode()
    finally:
        connection.close()
    assert not any("Traceback" in line for line in served.errors[errors_before:])
    assert same_origin(f"http://127.0.0.1:{served.port}", f"127.0.0.1:{served.port}")
    assert not same_origin("", f"127.0.0.1:{served.port}")


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]") and is_loopback("127.3.4.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("evil.example")


def test_user_tokens_must_be_long_and_named():
    assert parse_user_tokens(("sam=" + "a" * 20, "priya=" + "b" * 20)) == {"a" * 20: "sam", "b" * 20: "priya"}
    for bad in ("sam", "=" + "a" * 20, "sam=short", "sam=" + "a" * 19 + "!"):
        with pytest.raises(Exception, match="--user-token"):
            parse_user_tokens((bad,))


def test_another_host_needs_public_and_warns(env, demo):
    def serve(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [EVPIPE, "--db", str(demo), "serve", *options], capture_output=True, text=True, env=env, timeout=60
        )

    done = serve("--host", "0.0.0.0")
    assert done.returncode == 1
    assert done.stderr.startswith("evpipe: --host 0.0.0.0: not a loopback address") and "--public" in done.stderr
    # 192.0.2.1 is a documentation address, on no machine: the warning, then one line, never a port open
    done = serve("--host", "192.0.2.1", "--public", "--port", "8790")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("warning: listening on 192.0.2.1, not only on this machine")
    assert lines[-1].startswith("evpipe: cannot listen on 192.0.2.1:8790") and len(lines) == 2
    assert "Traceback" not in done.stderr


def test_a_port_in_use_is_one_line_and_no_link(env, demo):
    """The link and "Ctrl+C stops it." were printed before the bind failed: a link to whatever
    held the port, above the error."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [EVPIPE, "--db", str(demo), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"evpipe: cannot listen on 127.0.0.1:{port}") and len(done.stderr.splitlines()) == 1


def test_per_user_tokens_give_each_user_a_link_of_their_own(env, demo):
    import http.client

    sam, priya = "s" * 8 + "-sam-token-1234", "p" * 8 + "_priya_token_99"
    server = Served(env, demo, "--allow-writes", "--user-token", f"sam={sam}", "--user-token", f"priya={priya}")
    try:
        links = {line.split(":", 1)[0].strip(): line.split()[-1] for line in server.lines if "?token=" in line}
        assert links == {"sam": f"{server.base}/?token={sam}", "priya": f"{server.base}/?token={priya}"}

        def start_page(token: str) -> tuple[int, str]:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
            try:
                connection.request("GET", f"/?token={token}")
                response = connection.getresponse()
                response.read()
                if response.status != 303:
                    return response.status, ""
                cookie = response.getheader("Set-Cookie", "").split(";")[0]
                assert "HttpOnly" in response.getheader("Set-Cookie", "")
                connection.request("GET", "/", headers={"Cookie": cookie})
                response = connection.getresponse()
                return response.status, response.read().decode()
            finally:
                connection.close()

        status, html = start_page(priya)
        assert status == 200 and "<title>evpipe · owner.db · priya</title>" in html  # no name form: the token names her
        assert start_page("x" * 24)[0] == 403
    finally:
        server.stop()


def test_what_the_app_delivers_is_downloaded_behind_the_guard(served):
    """The palette's screenshot is delivered to the browser through /download/KEY, a route the
    server lacked: nothing arrived. It answers behind the guard, as every page does."""
    import http.client

    for cookie, status, said in ((served.cookie(), 404, "Download with key 'nosuchkey' not found"), ("", 403, "")):
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=WAIT)
        try:
            connection.request("GET", "/download/nosuchkey", headers={"Cookie": cookie} if cookie else {})
            response = connection.getresponse()
            assert response.status == status and said in response.read().decode()
        finally:
            connection.close()
