"""A big listing on SQLite read by two processes at once: `evpipe list --json` of a million
prospects is SQLite writing each prospect's JSON text (models/queries.py), about 4 s of one core.

The listing's queries are split by expected month (`queries.listing_parts(by_month=True)`); this
process reads every other one, and a second Python process (`python -m evpipe.models.listing_split`,
started here) reads the others at the same time and hands over their rows' text, in order, through
a pipe, a chunk at a time. Two threads of one process do not help: Python's sqlite3 hands the
interpreter lock over at every row (measured 6.1-6.6 s against 4.5-5.0 s in one).

Both read one view of the data. A connection holds the database's write lock (BEGIN IMMEDIATE)
while the two readers start their read transactions, and lets it go as soon as they have: no
commit can come between their views, and writers wait for that moment only (the second process's
start, some 0.1 s). Where that cannot be done (a read-only database, another write holding the
lock for more than GATE_WAIT, a second process that does not start within START_WAIT) the caller
reads the listing in one process, as for a small pipeline.

The second process writes frames to its standard output: a 4-byte length and the chunk's text,
and a length of 0 after each of its queries. It reads its task (the file, the queries, the chunk
size) as JSON from its standard input."""

from __future__ import annotations

import json
import os
import queue
import select
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DomainError
from .queries import listing_parts
from .rawdb import BEGIN, SqliteReader, fetch_chunks, raw_cursor

#: A listing of at least this many prospects (the largest id, read at once) is read by two processes:
#: the second process's start (0.1 s on a slow machine) is won back from about 40,000 (measured at
#: 25,000, 50,000 and 100,000: 0.37 / 0.58 / 1.0 s in one process, 0.46 / 0.54 / 0.74 s in two).
SPLIT_ROWS = 50_000

#: How long the listing waits for another write to end before it reads in one process, seconds.
GATE_WAIT = 0.25

#: How long the second reader may take to start (holding writers back meanwhile), seconds.
START_WAIT = 5.0

_FRAME = struct.Struct(">I")
_READY = b"R"


class SplitFailed(DomainError):
    """The second reader stopped before its part of the listing was read (the listing written so
    far is cut short: the command ends with this message and a non-zero exit)."""

    def __init__(self, message: str = "the listing's second reader stopped") -> None:
        super().__init__(f"list: {message}; the list is incomplete")


@contextmanager
def split_listing(
    source: Any,
    columns: Callable[[list[tuple[int, str, str, int]]], tuple[str, dict[str, Any]]],
    *,
    owner: str | None = None,
    stage_id: int | None = None,
    size: int = 1000,
) -> Iterator[Iterator[list[bytes]] | None]:
    """The listing's rows (`columns` must give each row's id and its text, as bytes), a chunk of
    texts at a time, in the listing's order, read by two processes; None when it is read in one
    (see the module's note): a small pipeline (below SPLIT_ROWS, or the EVPIPE_SPLIT_ROWS the
    tests set), one core, not an SQLite file, or the one view of the data not to be had."""
    path = _path_of(source)
    threshold = int(os.environ.get("EVPIPE_SPLIT_ROWS", SPLIT_ROWS))
    if path is None or (os.cpu_count() or 1) < 2 or _largest_id(source) < threshold:
        yield None
        return
    gate = _gate(path)
    if gate is None:
        yield None
        return
    worker: subprocess.Popen[bytes] | None = None
    try:
        with raw_cursor(source, transaction=True) as cursor:
            # the read transaction's view starts at its first read (here), while the gate holds the lock
            parts = listing_parts(cursor, columns, owner=owner, stage_id=stage_id, by_month=True)
            theirs = parts[1::2]
            worker = _start(path, theirs, size)
            if worker is None:
                gate.close()
                yield None
                return
            gate.close()  # both views have started: writers may go on
            yield _chunks(cursor, parts, worker, size)
        _finish(worker)
        worker = None
    finally:
        gate.close()
        if worker is not None:
            worker.kill()
            worker.wait()


def _path_of(source: Any) -> Path | None:
    if isinstance(source, SqliteReader):
        return None if source.read_only else source.path
    url = getattr(source, "url", None)
    if url is None or getattr(getattr(source, "dialect", None), "name", None) != "sqlite":
        return None
    from .locations import sqlite_path

    return sqlite_path(url.render_as_string(hide_password=False))


def _largest_id(source: Any) -> int:
    with raw_cursor(source) as cursor:
        return int(cursor.execute("SELECT max(id) FROM prospect").fetchone()[0] or 0)


def _gate(path: Path) -> sqlite3.Connection | None:
    """A connection holding the write lock (None when it cannot be had at once: a listing never
    waits for a long write, it is read in one process then): see the module's note."""
    try:
        gate = sqlite3.connect(path, timeout=GATE_WAIT, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        gate.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        gate.close()
        return None
    return gate


def _start(path: Path, parts: list[tuple[str, dict[str, Any]]], size: int) -> subprocess.Popen[bytes] | None:
    """The second reader, started and in its read transaction; None when it could not be."""
    task = json.dumps({"path": str(path), "parts": parts, "size": size}).encode()
    if not sys.executable:  # an embedded Python: no interpreter to start
        return None
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError:
        return None
    assert worker.stdin is not None and worker.stdout is not None
    ready = b""
    try:
        worker.stdin.write(task)
        worker.stdin.close()
        if select.select([worker.stdout], [], [], START_WAIT)[0]:
            ready = worker.stdout.read(1)
    except OSError:
        pass
    if ready != _READY:
        worker.kill()
        worker.wait()
        return None
    return worker


def _chunks(
    cursor: Any, parts: list[tuple[str, dict[str, Any]]], worker: subprocess.Popen[bytes], size: int
) -> Iterator[list[bytes]]:
    """Every part in order: this process's read here, the second reader's taken from its pipe by a
    thread (`_relay`) that keeps up to AHEAD chunks of them, so that it reads on meanwhile."""
    taken: queue.Queue[bytes | None | SplitFailed] = queue.Queue(AHEAD)
    relay = threading.Thread(target=_relay, args=(worker, taken), name="evpipe-listing-relay", daemon=True)
    relay.start()
    for n, (sql, params) in enumerate(parts):
        if n % 2 == 0:
            for chunk in fetch_chunks(cursor, sql, params, size):
                yield [text for _, text in chunk]
            continue
        while (data := taken.get()) is not None:
            if isinstance(data, SplitFailed):
                raise SplitFailed(_why(worker))
            yield [data]


#: How many of the second reader's chunks (a thousand prospects each, some 0.3 MB) wait at most.
AHEAD = 64


def _relay(worker: subprocess.Popen[bytes], taken: queue.Queue[bytes | None | SplitFailed]) -> None:
    """The second reader's frames, as they come: each chunk's text, None at the end of each of its
    queries, and SplitFailed if it stops before its last query's end."""
    assert worker.stdout is not None
    pipe = worker.stdout
    while True:
        head = pipe.read(_FRAME.size)
        if len(head) == _FRAME.size:
            (length,) = _FRAME.unpack(head)
            data = pipe.read(length) if length else None
            if data is None or len(data) == length:
                taken.put(data)
                continue
        taken.put(SplitFailed())  # its end (after its last query nobody reads this), or cut short
        return


def _finish(worker: subprocess.Popen[bytes]) -> None:
    """The second reader has given every part: it ends, and well."""
    if worker.wait() != 0:
        raise SplitFailed(_why(worker))


def _why(worker: subprocess.Popen[bytes]) -> str:
    worker.kill()
    worker.wait()
    said = worker.stderr.read().decode(errors="replace").strip().splitlines() if worker.stderr else []
    return "the listing's second reader stopped" + (f" ({said[-1].strip()})" if said else "")


# ---------------------------------------------------------------- the second reader


def _serve() -> int:
    task = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    # a plain connection: it only reads (no journal mode to set, which could wait for the gate)
    connection = sqlite3.connect(task["path"], timeout=30, isolation_level=None)
    cursor = connection.cursor()
    cursor.execute(BEGIN)
    cursor.execute("SELECT 1 FROM stage LIMIT 1").fetchall()  # its view starts here, under the gate
    out.write(_READY)
    out.flush()
    pack = _FRAME.pack
    end = pack(0)
    for sql, params in task["parts"]:
        for chunk in fetch_chunks(cursor, sql, params, task["size"]):
            data = b",\n  ".join([text for _, text in chunk])
            out.write(pack(len(data)) + data)
        out.write(end)
    out.flush()
    connection.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_serve())
    except BrokenPipeError:  # the listing was stopped: nothing more to say
        sys.exit(0)
