"""What live screens cost (issue 11, point 1). Prints each figure next to its target.

    .venv/bin/python benchmarks/live_speed.py                 # 10,000 and 100,000 prospects
    .venv/bin/python benchmarks/live_speed.py --size 1000000

For each size it builds a pipeline (benchmarks/app_speed.py's generator), opens the app headless
as one user and, from another session's store, changes prospects; it measures:

- the change check when nothing changed (`ChangeCheck.poll`, in the worker): target < 1 ms;
- a look that finds one change (read the entries and the rows they touch), in the worker;
- applying one remote change on the UI thread (`PipelineScreen.apply_remote`: header, row,
  repaint of what is visible): must not grow with the pipeline, and must not read the table again
  (the row store is the same object before and after);
- key (another session's write) to the change on screen, end to end (target < 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import discard, pipeline  # noqa: E402  (the cached pipelines, app_speed's generator)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def measure(url: str, changes: int) -> dict[str, float]:
    from evpipe.models import open_db
    from evpipe.models.changes_feed import ChangeCheck
    from evpipe.models.rawdb import SqliteReader, sqlite_file
    from evpipe.models.store import Store
    from evpipe.tui.app import EvpipeApp

    path = sqlite_file(url)
    assert path is not None
    check = ChangeCheck(SqliteReader(path))
    check.latest()
    idle = []
    for _ in range(2000):
        t = time.perf_counter()
        check.poll()
        idle.append(time.perf_counter() - t)
    check.close()

    other = Store(open_db(url), who="sam")
    app = EvpipeApp(url, who="priya")
    applied: list[float] = []
    looks: list[float] = []
    seen: list[float] = []
    same_rows = True

    async def run() -> None:
        nonlocal same_rows
        async with app.run_test(headless=True, size=(80, 24)) as pilot:
            screen = app.pipeline
            while screen is None or not screen.complete:
                await pilot.pause(0.05)
                screen = app.pipeline
            await app.workers.wait_for_complete()
            original = screen.apply_remote

            def timed(message):
                t = time.perf_counter()
                original(message)
                applied.append(time.perf_counter() - t)

            screen.apply_remote = timed
            look = app.live._look_once

            def timed_look():
                t = time.perf_counter()
                look()
                looks.append(time.perf_counter() - t)

            app.live._look_once = timed_look
            rows = screen.view.rows
            await pilot.pause(1.0)
            for i in range(changes):
                pid = screen.table.current_id if i % 2 else screen.view.lines[len(screen.view.lines) // 2]
                before = len(applied)
                t = time.perf_counter()
                if i % 2:
                    other.edit(pid, value=str(1000 + i))
                else:
                    other.move(pid, "lost" if other.get(pid).stage_kind == "won" else "won")
                while len(applied) == before:
                    await asyncio.sleep(0.005)
                seen.append(time.perf_counter() - t)
                await pilot.pause(0.1)
            same_rows = screen.view.rows is rows

    asyncio.run(run())
    found = sorted(looks)[-changes:]  # the looks that found something are the slow ones
    return {
        "idle_median": statistics.median(idle),
        "idle_p99": sorted(idle)[int(len(idle) * 0.99)],
        "look_found": statistics.median(found),
        "apply_median": statistics.median(applied),
        "apply_max": max(applied),
        "seen_median": statistics.median(seen),
        "seen_max": max(seen),
        "same_rows": float(same_rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--size", type=int, default=None, help="one size only (10000, 100000, 1000000)")
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    for size in [args.size] if args.size else args.sizes:
        db = pipeline(size)
        try:
            r = measure(f"sqlite:///{db}", args.changes)
        finally:
            discard(db)
        print(f"{size:,} prospects")
        print(f"  change check, nothing changed: median {ms(r['idle_median'])}, p99 {ms(r['idle_p99'])} (< 1 ms)")
        print(f"  a look that finds a change (worker): median {ms(r['look_found'])}")
        print(
            f"  applying one remote change (UI thread): median {ms(r['apply_median'])}, max {ms(r['apply_max'])}"
            f"; table read again: {'no' if r['same_rows'] else 'YES'}"
        )
        print(
            f"  another session's write to the change applied: median {ms(r['seen_median'])}, max {ms(r['seen_max'])} (< 2 s)"
        )


if __name__ == "__main__":
    main()
