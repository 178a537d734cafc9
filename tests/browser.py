"""Shared by the browser tests: Debian's Chromium driven by Playwright, and `evpipe serve` run as a
user would run it.

Chromium is /usr/bin/chromium (`.ci/ensure-chromium` installs it; Playwright never downloads a
browser here). The app's screen in the page is drawn by xterm.js on a canvas, so the tests read it
the way the page's terminal does: every byte the page receives on its websocket goes through a
terminal emulator (pyte) of the size the page asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyte
import pytest

EVPIPE = str(Path(sys.executable).parent / "evpipe")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Generous: the machine is shared and each browser session starts a Python process.
WAIT = 30.0


def env_for(home: Path) -> dict[str, str]:
    """The environment of every evpipe the tests start: a pinned clock, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVPIPE_", "XDG_"))}
    env.update(
        EVPIPE_NOW="2026-11-27T10:00:00",
        EVPIPE_USER="server-account",
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        NO_COLOR="1",
    )
    return env


def cli(env: dict[str, str], db: Path, *args: str) -> str:
    done = subprocess.run([EVPIPE, "--db", str(db), *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drain(pipe, into: list[str]) -> None:
    for line in pipe:
        into.append(line.rstrip("\n"))


class Served:
    """`evpipe serve` running in the background, with the links it printed."""

    def __init__(self, env: dict[str, str], db: Path, *options: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [EVPIPE, "--db", str(db), "serve", "--port", str(self.port), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        for pipe, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            threading.Thread(target=_drain, args=(pipe, into), daemon=True).start()
        deadline = time.monotonic() + WAIT
        while not any(line.startswith("Ctrl+C") for line in self.lines):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                pytest.fail(f"evpipe serve did not start: {self.lines} {self.errors}")
            time.sleep(0.1)
        self._wait_listening(deadline)

    def _wait_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        pytest.fail("evpipe serve never listened")

    def cookie(self) -> str:
        """The session cookie ("name=value") the server gives for the first link's token."""
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            link = urlsplit(self.links()[0])
            connection.request("GET", f"{link.path}?{link.query}")
            response = connection.getresponse()
            response.read()
            return response.getheader("Set-Cookie", "").split(";")[0]
        finally:
            connection.close()

    def index_status(self) -> int:
        """The start page's status for a new browser with the token (no script runs: no session)."""
        import http.client

        cookie = self.cookie()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            connection.request("GET", "/", headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def status_for_host(self, host: str) -> int:
        """The status of a request with the token that names another host (DNS rebinding)."""
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            link = urlsplit(self.links()[0])
            connection.request("GET", f"{link.path}?{link.query}", headers={"Host": host})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def links(self) -> list[str]:
        return [w for line in self.lines for w in line.split() if w.startswith("http://") and "?token=" in w]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Terminal:
    """What the page's terminal shows: the websocket's bytes through pyte, at the page's size."""

    def __init__(self, page) -> None:
        self.page = page
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.sockets: list[str] = []
        page.on("websocket", self._opened)

    def _opened(self, ws) -> None:
        self.sockets.append(ws.url)
        query = parse_qs(urlsplit(ws.url).query)
        if "width" in query:
            self.screen.resize(int(query["height"][0]), int(query["width"][0]))
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload) -> None:
        if isinstance(payload, str):
            message = json.loads(payload)
            if message[0] == "resize":
                self.screen.resize(message[1]["height"], message[1]["width"])

    def _received(self, payload) -> None:
        if isinstance(payload, bytes):
            self.stream.feed(payload)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, condition: Callable[[str], bool] | str, timeout: float = WAIT) -> str:
        check = condition if callable(condition) else (lambda text: condition in text)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if check(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"the page's terminal never showed what was expected; it shows:\n{text}")
            self.page.wait_for_timeout(200)

    def press(self, *keys: str) -> None:
        self.page.focus(".xterm-helper-textarea")  # xterm.js's keyboard input (a click would also click the app)
        for key in keys:
            self.page.keyboard.press(key)


def need_chromium() -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("the browser tests need Debian's chromium: bash .ci/ensure-chromium installs it")


def launch(playwright, user_data_dir: Path):
    """Chromium, headless, in a new empty profile; never Playwright's own browser build."""
    need_chromium()
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 730, "height": 470},  # about 80 x 24 cells
    )
