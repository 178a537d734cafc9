"""`evpipe` with a probe of its event loop, for benchmarks/app_speed.py: runs the same command line
as the `evpipe` script, and a thread that every 2 ms asks the app's event loop to run a no-op and
times how long the loop takes to get to it. A wait over 2 ms is a pause: the loop was busy (a key's
work, a frame, a garbage collection, another thread holding the GIL). The pauses are written, with
their start on the system's monotonic clock (time.perf_counter, which app_speed.py reads too), to
the file EVPIPE_LOOP_PROBE names, one "start seconds" line each, as they happen.

    EVPIPE_LOOP_PROBE=/tmp/pauses .venv/bin/python benchmarks/loop_probe.py --db PATH

The probe's own cost is one call a 2 ms, a few microseconds each.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

PERIOD = 0.002


def watch(loop: asyncio.AbstractEventLoop, out) -> None:
    done = threading.Event()
    while not loop.is_closed():
        done.clear()
        start = time.perf_counter()
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:  # the loop closed meanwhile
            return
        if not done.wait(10):
            continue
        took = time.perf_counter() - start
        if took > PERIOD:
            out.write(f"{start:.6f} {took:.6f}\n")
            out.flush()
        time.sleep(PERIOD)


def main() -> None:
    """`evpipe` as its script runs it (tui/launch.py: with -OO where the script starts the app so;
    then tui/cli/main.py `run`), with the probe put on the event loop
    once the app is about to start: asyncio is imported no sooner than the app imports it, after
    `run_app` has left OpenSSL out on an SQLite database (`leave_out_openssl`). The probe imported
    asyncio first, which loaded `ssl` and libcrypto into the measured process: 3.4 MiB that the
    app itself never holds, counted in app_speed.py's peak memory."""
    from evpipe.tui.launch import lean_command

    if lean_command(sys.argv[1:]) is not None:  # the interpreter the `evpipe` script gives the app
        os.execv(sys.executable, [sys.executable, "-OO", "-P", __file__, *sys.argv[1:]])
    out = open(os.environ["EVPIPE_LOOP_PROBE"], "a", encoding="utf-8")  # noqa: SIM115  (open for the process's life)
    cli = importlib.import_module("evpipe.tui.cli.main")
    run_app = cli.run_app

    def probed_app(url: str) -> None:
        cli.leave_out_openssl(url)
        import asyncio

        run_forever = asyncio.BaseEventLoop.run_forever
        started: list[asyncio.AbstractEventLoop] = []

        def probed(self):
            if not started:  # the app's loop: the first to run
                started.append(self)
                threading.Thread(target=watch, args=(self, out), daemon=True).start()
            return run_forever(self)

        asyncio.BaseEventLoop.run_forever = probed  # type: ignore[method-assign]
        run_app(url)

    cli.run_app = probed_app
    sys.argv[0] = "evpipe"
    cli.run()


if __name__ == "__main__":
    main()
