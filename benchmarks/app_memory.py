"""Where the app's memory goes: the real app, run headless (`App.run_test`, 80x24) on a copy of the
cached benchmark pipeline, with its resident memory (/proc/self/status: VmRSS, VmHWM) after each
phase, and what the pipeline screen's rows take once all are loaded.

    .venv/bin/python benchmarks/app_memory.py                 # 100,000 prospects
    .venv/bin/python benchmarks/app_memory.py --size 1000000
    .venv/bin/python benchmarks/app_memory.py --trace         # and tracemalloc's biggest lines

Phases: the imports, the first screen, every row loaded (and 2 s later), cursor keys, stage keys,
the filter typed as benchmarks/app_speed.py types it and cleared, a sort, grouping by month and
back, the focus list, the board. The app is set up as `evpipe` sets it up (tui/app.py, settle_allocator). VmHWM
is what benchmarks/app_speed.py reports as the app's peak; the figures here say which phase made it.
Like the `evpipe` script (tui/launch.py), it runs itself again with -OO where that has its modules
(EVPIPE_LEAN=0: not).
With --trace, tracemalloc runs from the start (the app is slower and its RSS larger, so the RSS
figures of such a run are not the app's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import NOW, discard, pipeline  # noqa: E402

MIB = 2**20


def status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


class Phases:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def say(self, label: str) -> None:
        s = status()
        traced = ""
        if tracemalloc.is_tracing():
            now, peak = tracemalloc.get_traced_memory()
            traced = f"  traced {now / MIB:5.1f} (peak {peak / MIB:5.1f})"
        print(
            f"{time.perf_counter() - self.start:6.1f} s  {label:<28} RSS {s['VmRSS'] / 1024:4.0f} MiB  "
            f"peak {s['VmHWM'] / 1024:4.0f} MiB  (anonymous {s['RssAnon'] / 1024:4.0f}, files {s['RssFile'] / 1024:3.0f})"
            f"{traced}",
            flush=True,
        )


def in_memory(column) -> int:
    """Bytes a TextColumn holds in memory: its offsets, and its buffer unless that is on file."""
    held = sys.getsizeof(column.starts) + sys.getsizeof(column.ends)
    return held + (0 if column.spilled else sys.getsizeof(column.data))


def row_figures(view) -> list[tuple[str, int]]:
    """(what, bytes) of the rows the pipeline view holds: the RowStore's columns, its texts and
    words, and the view's orders and lines."""
    rows = view.rows
    arrays = ("ids", "company", "stage", "value", "month", "follow", "owner", "touched", "updated", "version")
    columns = sum(sys.getsizeof(getattr(rows, name)) for name in arrays) + sys.getsizeof(rows.alive)
    names, hay = in_memory(rows.names), in_memory(rows.hay)
    words = (
        sys.getsizeof(rows.words)
        + sum(sys.getsizeof(w) for w in rows.words if w is not None)
        + sys.getsizeof(rows._word_index)
    )
    order = view._order
    base = view._base[1] if view._base is not None else None
    lines = view.lines if view.lines is not base else None
    held = [a for a in (order, base, lines) if a is not None]
    return [
        (f"columns ({len(arrays) + 1} arrays)", columns),
        ("names (TextColumn)" + (", on file" if rows.names.spilled else ""), names),
        ("search texts (TextColumn)" + (", on file" if rows.hay.spilled else ""), hay),
        ("words (companies, months, days, owners)", words),
        ("sorted ids, ids before the filter, lines", sum(map(sys.getsizeof, held))),
    ]


async def drive(url: str, phases: Phases, size: int) -> None:
    from evpipe.tui.app import EvpipeApp

    app = EvpipeApp(url)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        while not getattr(screen, "loaded", False):
            await pilot.pause(0.01)
            screen = app.screen
        phases.say("first screen")
        while not getattr(app.screen, "complete", False):
            await pilot.pause(0.02)
        phases.say("every row loaded")
        await pilot.pause(2)
        phases.say("2 s later")
        view = app.screen.view  # type: ignore[attr-defined]
        figures = row_figures(view)
        for what, size_bytes in figures:
            print(
                f"           {what:<42} {size_bytes / MIB:6.1f} MiB  {size_bytes / max(1, len(view.rows)):5.0f} B a row"
            )
        total = sum(b for _, b in figures)
        print(
            f"           {'the rows, in all':<42} {total / MIB:6.1f} MiB  {total / max(1, len(view.rows)):5.0f} B a row"
        )
        if tracemalloc.is_tracing():
            print("           tracemalloc, the biggest lines:")
            for stat in tracemalloc.take_snapshot().statistics("lineno")[:15]:
                print(f"             {stat.size / MIB:6.1f} MiB {stat.count:8d}  {stat.traceback}")
        for _ in range(40):
            await pilot.press("down")
        await pilot.pause(0.5)
        phases.say("cursor keys")
        for _ in range(10):
            await pilot.press(">")
            await pilot.pause(0.2)
            await pilot.press("down")
        await pilot.pause(1)
        phases.say("stage keys")
        await pilot.press("slash")
        for ch in "harbour christmas":
            await pilot.press("space" if ch == " " else ch)
            await pilot.pause(0.1)
        await pilot.pause(1)
        await pilot.press("escape")
        await pilot.pause(0.5)
        phases.say("filter typed and cleared")
        await pilot.press("s")
        await pilot.pause(2 if size < 500_000 else 10)
        phases.say("sorted by EV")
        await pilot.press("m")
        await pilot.pause(1)
        await pilot.press("m")
        await pilot.pause(1)
        phases.say("grouped by month and back")
        await pilot.press("2")
        await pilot.pause(3 if size < 500_000 else 15)
        phases.say("the focus list")
        await pilot.press("8")
        await pilot.pause(3 if size < 500_000 else 15)
        phases.say("the board")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="prospects (10000, 100000, 1000000)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc from the start (slow)")
    args = parser.parse_args()
    from evpipe.tui.launch import lean_command

    if lean_command([]) is not None:  # the interpreter the `evpipe` script gives the app (-OO)
        os.execv(sys.executable, [sys.executable, "-OO", "-P", __file__, *sys.argv[1:]])
    os.environ.setdefault("EVPIPE_NOW", NOW)
    os.environ.setdefault("EVPIPE_USER", "mere")
    if args.trace:
        tracemalloc.start()
    db = pipeline(args.size)
    phases = Phases()
    print(f"evpipe app memory · {args.size:,} prospects · python {sys.version.split()[0]}", flush=True)
    try:
        phases.say("before the app's imports")
        from evpipe.tui.app import settle_allocator

        settle_allocator()
        phases.say("the app imported")
        asyncio.run(drive(f"sqlite:///{db}", phases, args.size))
        phases.say("the app closed")
    finally:
        discard(db)


if __name__ == "__main__":
    main()
