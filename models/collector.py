"""Python's cycle collector paused around a step that makes many long-lived objects.

A full pass of the collector walks every object the process holds. A step that makes hundreds of
thousands of them (an import's rows, the app's first import of SQLAlchemy and the store) sets off
passes that each walk them all again, and none of it is garbage. `paused()` turns the collector
off for the step, and on again after it when it was on before. Steps may overlap, in any thread:
the collector comes back on when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: [steps running (in any thread), whether the collector was on when the first began]
_state: list[int] = [0, 0]
_lock = threading.Lock()


@contextmanager
def paused() -> Iterator[None]:
    """The collector off while the block runs (and on after it if it was on before)."""
    with _lock:
        if _state[0] == 0:
            _state[1] = gc.isenabled()
            gc.disable()
        _state[0] += 1
    try:
        yield
    finally:
        with _lock:
            _state[0] -= 1
            if _state[0] == 0 and _state[1]:
                gc.enable()


__all__ = ["paused"]
