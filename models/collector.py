"""Python's cycle collector paused around a step that makes many long-lived objects.

A full pass of the collector walks every object the process holds. A step that makes hundreds of
thousands of them (an import's rows, the app's first import of SQLAlchemy and the store) sets off
passes that each walk them all again, and none of it is garbage. `paused()` turns the collector
off for the step, and on again after it when it was on before. Steps may overlap, in any thread:
the collector comes back on when the last one ends.

In a one-shot command (`one_shot`: `evpipe import`, which ends with os._exit and frees nothing
one object at a time), what a step made is also kept (`keep`) and frozen out of the collector
before it is on again: freeing the 100,000-row import's rows at the end of its steps took 0.3 s,
and a collector on again over them, had they been kept unfrozen, a pass of 0.2 s.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: [steps running (in any thread), whether the collector was on when the first began]
_state: list[int] = [0, 0]
_lock = threading.Lock()

#: Whether this process is a one-shot command (`one_shot`), and what it keeps until it ends.
_one_shot = False
_kept: list[object] = []


def one_shot() -> None:
    """Say that this process is one command that ends without freeing what it made (tui/cli/main.py
    `run` leaves with os._exit): `keep` holds objects from then on, and a step's end freezes them."""
    global _one_shot
    _one_shot = True


def keep(thing: object) -> None:
    """In a one-shot command, hold `thing` until the process ends rather than free its objects one
    by one when the last reference goes; elsewhere (the app, a test) nothing."""
    if _one_shot:
        _kept.append(thing)


@contextmanager
def paused() -> Iterator[None]:
    """The collector off while the block runs (and on after it if it was on before). In a one-shot
    command, a block that ends without an error freezes what is there before the collector is on
    again: what it made is held to the end, and no pass need walk it."""
    with _lock:
        if _state[0] == 0:
            _state[1] = gc.isenabled()
            gc.disable()
        _state[0] += 1
    ended = False
    try:
        yield
        ended = True
    finally:
        with _lock:
            _state[0] -= 1
            if _state[0] == 0 and _state[1]:
                if ended and _one_shot:
                    gc.freeze()
                gc.enable()


__all__ = ["keep", "one_shot", "paused"]
