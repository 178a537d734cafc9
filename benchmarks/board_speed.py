"""How fast the stage board (`8`) answers with a big pipeline. Prints each figure next to its target.

    .venv/bin/python benchmarks/board_speed.py                 # 100,000 prospects
    .venv/bin/python benchmarks/board_speed.py --size 10000 --keys 40

It builds a pipeline as benchmarks/app_speed.py does (same generator), opens the app at 80x24 in a
child process, switches to the board and waits until it is loaded, then times keys inside the
event loop, from the moment the key event is posted to the end of the screen update after it
(app_speed's FrameClock): the cursor (down and right, then left), and the stage advance `>` (the
card moves to the next column and the KPI header moves at once; the save follows in a worker).
Targets are the pipeline list's: cursor event-loop CPU < 5 ms, advance key to frame median
< 20 ms and p90 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import app_speed  # noqa: E402  (the pipeline generator, FrameClock and the child runner)


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
            clock = app_speed.FrameClock(screen)
            board = screen.board
            for i in range(keys):
                # a key that moves the cursor (one that cannot, at an edge, paints nothing)
                last = len(screen.view.columns) - 1
                key = "down" if i % 2 == 0 else ("right" if board.column < last else "left")
                where = (board.column, list(board.index))
                t, cpu = await app_speed.press_and_time(
                    app, clock, key, None, ready=lambda where=where: (board.column, board.index) != where
                )
                out["cursor"].append(t)
                out["cursor_cpu"].append(cpu)
                row = board.current_row
                if row is None or board.column >= len(screen.view.columns) - 1:
                    continue
                before = screen.kpi.ev_micros
                t, cpu = await app_speed.press_and_time(
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
    if args.child == "build":
        return print(app_speed.build(Path(args.url), args.size))
    if args.child == "board":
        return child_board(args.url, args.keys)

    app_speed.__file__ = __file__  # run_child runs this script as the child
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"pipeline_{args.size}.db"
        url = app_speed.run_child(["--child", "build", "--url", str(path), "--size", str(args.size)])[2]
        url = url.strip().splitlines()[-1]
        wall, rss, text = app_speed.run_child(["--child", "board", "--url", url, "--keys", str(args.keys)])
    data = json.loads(text.strip().splitlines()[-1])
    ms = lambda v: v * 1000  # noqa: E731
    print(f"stage board · {args.size:,} prospects · columns hold {', '.join(f'{c:,}' for c in data['columns'])}")
    print(f"  8 to the loaded board: {data['load'][0]:.2f} s (read in a worker; the header and keys answer meanwhile)")
    cur, cpu, adv = data["cursor"], data["cursor_cpu"], data["advance"]
    checks = [
        (f"cursor: event-loop CPU per key, median (n={len(cpu)})", ms(statistics.median(cpu)), 5),
        ("cursor: event-loop CPU per key, p90", ms(app_speed.pct(cpu, 90)), 5),
        (f"advance key to frame, median (n={len(adv)})", ms(statistics.median(adv)), 20),
        ("advance key to frame, p90", ms(app_speed.pct(adv, 90)), 50),
    ]
    missed = 0
    for label, value, target in checks:
        app_speed.line(label, f"{value:.2f} ms", f"< {target} ms", value < target)
        missed += value >= target
    print(
        f"  (cursor: key to finished frame {ms(statistics.median(cur)):.1f} ms median, "
        f"p90 {ms(app_speed.pct(cur, 90)):.1f} ms, with the wait for the next frame tick; "
        f"advance: event-loop CPU {ms(statistics.median(data['advance_cpu'])):.1f} ms median; peak {rss / 1024:.0f} MiB)"
    )
    print("all targets met" if not missed else f"{missed} target(s) missed")


if __name__ == "__main__":
    main()
