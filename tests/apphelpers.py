"""What the app tests share: the real app recording what it tells the user, and reading the screen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import evpipe.tui.app
from evpipe.tui.app import EvpipeApp

#: A subclass of the app would look for the stylesheet beside its own (test) file.
APP_CSS = str(Path(evpipe.tui.app.__file__).parent / EvpipeApp.CSS_PATH)


class RecordingApp(EvpipeApp):
    """The real app on `engine`'s database, as user `tester` (or `who`), keeping every change and notice."""

    CSS_PATH = APP_CSS

    def __init__(self, engine, who: str = "tester") -> None:
        super().__init__(engine.url.render_as_string(hide_password=False), who=who)
        self.changes: list[object] = []
        self.notices: list[str] = []

    def data_changed(self, result) -> None:
        self.changes.append(result)
        super().data_changed(result)

    def notify(self, message, *args, **kwargs):
        self.notices.append(str(message))
        return super().notify(message, *args, **kwargs)

    def say_saved(self, result) -> None:
        from evpipe.tui.widgets.tab_bar import TabBar

        if self.screen.query_children(TabBar):  # (said as a toast, notify records it; so the warnings)
            self.notices.append(result.summary)
        super().say_saved(result)


def notices_shown(app) -> list[str]:
    """The notices on screen: the toasts, and a saved change's in the tab bar (TabBar.say)."""
    from evpipe.tui.widgets.tab_bar import TabBar

    bars = app.screen.query(TabBar)
    said = bars.first().notice if bars else None
    return [n.message for n in app._notifications] + ([said] if said is not None else [])


def slow_moves(monkeypatch, seconds: float = 0.2) -> None:
    """Each stage move saved `seconds` late: the keys come faster than a save (a shared file, a
    busy disk)."""
    import time

    from evpipe.models.store import Store

    slow = Store.move

    def move(self, *args, **kwargs):
        time.sleep(seconds)
        return slow(self, *args, **kwargs)

    monkeypatch.setattr(Store, "move", move)


def screen_text(app) -> str:
    """What the screen shows, as text, line by line."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def _workers_done(app) -> None:
    """Wait for the app's workers. One cancelled on purpose (a newer one in its exclusive group took
    over) is finished work, not a failure; a worker that failed still fails the test."""
    import asyncio

    from textual.worker import WorkerCancelled, WorkerFailed

    results = await asyncio.gather(*[worker.wait() for worker in list(app.workers)], return_exceptions=True)
    for result in results:
        if isinstance(result, WorkerFailed):
            raise result.error from result  # the worker's own traceback: where it failed
        if isinstance(result, BaseException) and not isinstance(result, WorkerCancelled):
            raise result


async def settle(
    *app_and_pilot: Any,
    rounds: int = 4,
    last_pause: float = 0.02,
    until: Callable[[Any], bool] | None = None,
    blink: bool = True,
) -> None:
    """Let workers finish, their messages land and the screen repaint: `settle(pilot)` or
    `settle(app, pilot)`. `until`: stop early once it holds for the app (then up to 50 rounds);
    `blink=False` stops the input cursors blinking (for snapshots)."""
    pilot = app_and_pilot[-1]
    app = pilot.app
    for _ in range(50 if until is not None else rounds):
        await _workers_done(app)
        await pilot.pause()
        if until is not None and until(app):
            break
    if not blink:
        from textual.widgets import Input

        for box in app.screen.query(Input):
            box.cursor_blink = False
    await pilot.pause(last_pause)


async def shows(app, pilot, *texts: str) -> str:
    """The screen's text once it shows every one of `texts` (repaints can trail a worker's message;
    a loaded machine needs generous waits, as `until` gives: up to about 10 s)."""
    for _ in range(500):
        text = screen_text(app)
        if all(t in text for t in texts):
            return text
        await pilot.pause(0.02)
    return screen_text(app)


async def press(app, pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


async def until(app, pilot, check: Callable[[], Any], timeout: float = 15.0) -> bool:
    """Poll until `check()` holds (a loaded machine needs generous waits); its last answer."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return True
        await pilot.pause(0.05)
    return bool(check())


def save_lands_before_the_sums(monkeypatch, screen_module, moved_id: int, screens: list) -> threading.Event:
    """A KPI header's sums read again (a win's) before a move of `moved_id` is saved, and reaching
    the screen (`screens[0]`, once the test puts it there) after that move's save has: the order
    that lost the move once in three full runs of the suite (models/header_sums.py).
    `screen_module`: the screen's module, whose `kpis_as_of_journal` reads the sums. Returns the
    event set once those sums are read."""
    from evpipe.models import store_prospects

    read = threading.Event()
    real_sums, real_move = screen_module.kpis_as_of_journal, store_prospects.ProspectWrites.move

    def sums(*args):
        got = real_sums(*args)
        if screens:  # (the win's: the screen was read before)
            read.set()
            deadline = time.monotonic() + 5
            while screens[0]._pending and time.monotonic() < deadline:  # its save reaches the screen first
                time.sleep(0.01)
        return got

    def move(self, prospect_id, *args, **kwargs):
        if prospect_id == moved_id:
            read.wait(5)  # saved once the win's sums are read
        return real_move(self, prospect_id, *args, **kwargs)

    monkeypatch.setattr(screen_module, "kpis_as_of_journal", sums)
    monkeypatch.setattr(store_prospects.ProspectWrites, "move", move)
    return read


class HeldRead:
    """`module.name` (a read a screen's worker makes) patched so that its next call reads (or
    gives `stale`), then waits for `release()` before it returns; the calls after it read as
    ever. For a read that a newer one cancels and that lands after it (tui/messages.py
    `superseded`). Wait for `read` with `until`, not `settle`: settle waits for every worker."""

    def __init__(self, monkeypatch, module, name: str, stale: Any = None) -> None:
        self.read, self._release = threading.Event(), threading.Event()
        real = getattr(module, name)
        waiting = True  # (the next call from a worker's thread; the test's own calls read as ever)

        def held(*args, **kwargs):
            nonlocal waiting
            if not waiting or threading.current_thread() is threading.main_thread():
                return real(*args, **kwargs)
            waiting = False
            got = real(*args, **kwargs) if stale is None else stale
            self.read.set()
            self._release.wait(5)
            return got

        monkeypatch.setattr(module, name, held)

    def release(self) -> None:
        self._release.set()
