"""How fast the stage board (`8`) answers with a big pipeline. Prints each figure next to its target.

    .venv/bin/python benchmarks/board_speed.py                 # 100,000 prospects
    .venv/bin/python benchmarks/board_speed.py --size 10000 --keys 40

Headless and in-process (Textual's run_test, not a real terminal: benchmarks/app_speed.py measures
the pipeline list that way): it takes the cached pipeline of benchmarks/ptyterm.py (app_speed's
generator), opens the app at 80x24 in a child process, switches to the board and waits until it is
loaded, then times keys inside the event loop, from the moment the key event is posted to the end
of the screen update after it (FrameClock below): the cursor (down and right, then left), and the stage advance `>` (the
card moves to the next column and the KPI header moves at once; the save follows in a worker).
Targets are the pipeline list's: cursor event-loop CPU < 5 ms, advance key to frame median
< 20 ms and p90 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import NOW, discard, pct, pipeline  # noqa: E402


class FrameClock:
    """Times from a posted key to the end of the screen update that follows it."""

    def __init__(self, screen) -> None:
        self.screen = screen
        self.waiting: asyncio.Event | None = None
        self.armed = False
        self.render_time = 0.0
        self.done_at = 0.0
        self.done_cpu = 0.0
        original = screen._compositor_refresh

        def timed_refresh():
            start = time.perf_counter()
            original()
            end = time.perf_counter()
            if self.armed:
                self.armed = False
                self.render_time = end - start
                self.done_at = end
                self.done_cpu = time.thread_time()
                if self.waiting is not None:
                    self.waiting.set()

        screen._compositor_refresh = timed_refresh

    def arm(self) -> asyncio.Event:
        self.waiting = asyncio.Event()
        self.armed = True
        return self.waiting


async def press_and_time(app, clock: FrameClock, key: str, char: str | None, ready=None) -> tuple[float, float]:
    """Post one key; wait for the frame after it (after `ready()` is true, when given).
    Returns (key to finished frame, CPU time the event loop's thread spent on it: handling the key,
    the messages it caused, and rendering the frame; idle waiting for the next frame tick and
    work in other threads do not count)."""
    from textual import events

    t0 = time.perf_counter()
    cpu0 = time.thread_time()
    if ready is None:
        done = clock.arm()
        app.post_message(events.Key(key, char))
        await asyncio.wait_for(done.wait(), 5)
        return clock.done_at - t0, clock.done_cpu - cpu0
    app.post_message(events.Key(key, char))
    deadline = t0 + 5
    while not ready():
        await asyncio.sleep(0.0005)
        if time.perf_counter() > deadline:
            raise TimeoutError(key)
    done = clock.arm()
    await asyncio.wait_for(done.wait(), 5)
    return clock.done_at - t0, clock.done_cpu - cpu0


def run_child(args: list[str]) -> tuple[float, int, str]:
    """Run this script as a child; returns (seconds from launch to READY, or to its exit when it
    says nothing, peak RSS in KiB, stdout)."""
    env = dict(os.environ, EVPIPE_NOW=NOW, EVPIPE_USER="mere")
    launched = time.time()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"child {args} failed:\n{err.decode(errors='replace')[-3000:]}")
    text = out.decode()
    for said in text.splitlines():
        if said.startswith("READY "):
            wall = float(said.split()[1]) - launched
    return wall, usage.ru_maxrss, text


def line(label: str, value: str, target: str, ok: bool) -> None:
    print(f"  {label:<44} {value:>14}   target {target:<14} {'ok' if ok else 'MISSED'}")


def child_board(url: str, keys: int) -> None:
    from evpipe.models.kpi import Scope, kpis
    from evpipe.models.period import current_period
    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.screens.board import BoardScreen

    app = EvpipeApp(url, who="mere")
    out: dict[str, list[float]] = {"load": [], "cursor": [], "cursor_cpu": [], "advance": [], "advance_cpu": []}

    async def run() -> None:
        async with app.run_test(headless=True, size=(80, 24)) as pilot:
            while app.pipeline is None or not app.pipeline.loaded:
                await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            t0 = time.perf_counter()
            await pilot.press("8")
            screen = app.screen
            assert isinstance(screen, BoardScreen)
            while screen.view is None:
                await asyncio.sleep(0.005)
            out["load"].append(time.perf_counter() - t0)
            await app.workers.wait_for_complete()
            await pilot.pause(0.3)
            clock = FrameClock(screen)
            board = screen.board
            for i in range(keys):
                # a key that moves the cursor (one that cannot, at an edge, paints nothing)
                last = len(screen.view.columns) - 1
                key = "down" if i % 2 == 0 else ("right" if board.column < last else "left")
                where = (board.column, list(board.index))
                t, cpu = await press_and_time(
                    app, clock, key, None, ready=lambda where=where: (board.column, board.index) != where
                )
                out["cursor"].append(t)
                out["cursor_cpu"].append(cpu)
                row = board.current_row
                if row is None or board.column >= len(screen.view.columns) - 1:
                    continue
                before = screen.kpi.ev_micros
                t, cpu = await press_and_time(
                    app, clock, "greater_than_sign", ">", ready=lambda row=row: row.id in screen._pending
                )
                out["advance"].append(t)
                out["advance_cpu"].append(cpu)
                assert screen.kpi.ev_micros - before == screen.view.ladder.gain(row), "header moved wrongly"
                assert board.current_row is not None and board.current_row.id == row.id, "the cursor left the card"
                while row.id in screen._pending:
                    await asyncio.sleep(0.001)
                await app.workers.wait_for_complete()
            await app.workers.wait_for_complete()
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            assert screen.kpi == kpis(app.engine, Scope(period=current_period(app.engine))), "header drifted"
            counts = [c.count for c in screen.view.columns]
            out["columns"] = counts  # type: ignore[assignment]

    asyncio.run(run())
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "board":
        return child_board(args.url, args.keys)

    db = pipeline(args.size)
    try:
        wall, rss, text = run_child(["--child", "board", "--url", f"sqlite:///{db}", "--keys", str(args.keys)])
    finally:
        discard(db)
    data = json.loads(text.strip().splitlines()[-1])
    ms = lambda v: v * 1000  # noqa: E731
    print(f"stage board · {args.size:,} prospects · columns hold {', '.join(f'{c:,}' for c in data['columns'])}")
    print(f"  8 to the loaded board: {data['load'][0]:.2f} s (read in a worker; the header and keys answer meanwhile)")
    cur, cpu, adv = data["cursor"], data["cursor_cpu"], data["advance"]
    checks = [
        (f"cursor: event-loop CPU per key, median (n={len(cpu)})", ms(statistics.median(cpu)), 5),
        ("cursor: event-loop CPU per key, p90", ms(pct(cpu, 90)), 5),
        (f"advance key to frame, median (n={len(adv)})", ms(statistics.median(adv)), 20),
        ("advance key to frame, p90", ms(pct(adv, 90)), 50),
    ]
    missed = 0
    for label, value, target in checks:
        line(label, f"{value:.2f} ms", f"< {target} ms", value < target)
        missed += value >= target
    print(
        f"  (cursor: key to finished frame {ms(statistics.median(cur)):.1f} ms median, "
        f"p90 {ms(pct(cur, 90)):.1f} ms, with the wait for the next frame tick; "
        f"advance: event-loop CPU {ms(statistics.median(data['advance_cpu'])):.1f} ms median; peak {rss / 1024:.0f} MiB)"
    )
    print("all targets met" if not missed else f"{missed} target(s) missed")


if __name__ == "__main__":
    main()
