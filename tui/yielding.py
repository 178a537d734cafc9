"""How a worker's long passes let the UI thread in.

A pass over a million rows in one call into C (an `array` of `compress`, a `max`, a mask) holds
the interpreter lock until it ends: 20-100 ms at a million prospects, during which no key is
answered and no frame is painted. Such passes take a `pause` and run in slices, calling it
between two (models/pipeline_view.py, models/filters.py, tui/widgets/prospect_table.py
`row_spans`). The pause made here sleeps YIELD_SLEEP once YIELD_EVERY has passed since it last
did: a short sleep hands the lock over (sleep(0) gives it back before a waiting thread wakes),
so that a key, a frame or the event loop waiting for it goes first; not at every slice: on a busy
machine each sleep can cost a few ms before the worker runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: How long a worker sleeps to hand the interpreter lock over.
YIELD_SLEEP = 0.0002
#: How long a worker works between two such sleeps.
YIELD_EVERY = 0.004


def yielding() -> Callable[[], None]:
    """A `pause` for one worker's slices of work (not shared between threads)."""
    last = time.perf_counter()

    def pause() -> None:
        nonlocal last
        if time.perf_counter() - last >= YIELD_EVERY:
            time.sleep(YIELD_SLEEP)
            last = time.perf_counter()

    return pause


__all__ = ["YIELD_EVERY", "YIELD_SLEEP", "yielding"]
