"""A real pseudo-terminal for the benchmarks: a program runs in it at 80x24 with
TERM=xterm-256color, keys go in as bytes, and what it writes is decoded by pyte into the screen a
user would see. Times are taken here, outside the program: from writing a key to reading the bytes
of the frame that shows what the key should change.

Also the shared bits of the benchmarks: the cached pipeline databases (one per size, built once),
percentiles, and the line each figure is printed on (also collected for `make bench`'s table).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-27T10:00:00"
#: A few days later, past a month's end: the month start that day's first change or forecast
#: records (the pipelines are built on NOW, their newest KPI reading on that day).
MONTH_LATER = "2026-12-02T10:00:00"
EVPIPE = str(Path(sys.executable).parent / "evpipe")
COLS, LINES = 80, 24


class Term:
    """One program in a pseudo-terminal of its own, with the screen pyte decodes from its output."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLS, 0, 0))
        full = dict(os.environ, TERM="xterm-256color", EVPIPE_NOW=NOW, EVPIPE_USER="mere", **(env or {}))
        full.pop("COLORTERM", None)
        full.pop("NO_COLOR", None)
        self.screen = pyte.Screen(COLS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=full, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self.closed = False
        self.last_read = self.started
        self.last_key = self.started
        self._lines: list[str] | None = None

    # -------------------------------------------------------------- reading

    def _read(self, timeout: float) -> bool:
        """Read what is there within `timeout` seconds, feed it to the screen; False when nothing came."""
        if self.closed:
            time.sleep(max(0.0, timeout))
            return False
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:  # the program left: its side of the terminal is closed
            data = b""
        if not data:
            self.closed = True
            return False
        # A frame of a few KiB comes in several reads (the terminal hands over 4 KiB at a time): all
        # that is waiting is read before any of it is decoded, so that pyte's decoding of one part
        # (a ms or more of Python) is not counted as the program's time to write the next
        while select.select([self.master], [], [], 0)[0]:
            try:
                more = os.read(self.master, 1 << 16)
            except OSError:
                break
            if not more:
                break
            data += more
        self.last_read = time.perf_counter()
        self.stream.feed(data)
        self._lines = None
        return True

    def _drain(self) -> None:
        """The rest of a frame already written: read until nothing more is waiting."""
        while self._read(0.0):
            pass

    def wait(self, cond: Callable[[], bool], timeout: float = 10.0) -> float | None:
        """Read until `cond()` holds on the screen; the time of the read that completed that frame
        (perf_counter), or None if it did not hold within `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        # After a key, the screen cannot show its answer before the program has written again, so
        # the first look waits for that: looking first (a few ms of parsing the screen) would let
        # a frame that came meanwhile be read, and timed, only when the look is over
        if self.last_key <= self.last_read and cond():
            return time.perf_counter()
        while time.perf_counter() < deadline:
            if self._read(deadline - time.perf_counter()) and cond():
                self._drain()
                return self.last_read
            if self.closed:
                return None
        return None

    def settle(self, quiet: float = 0.05, limit: float = 3.0) -> None:
        """Read until the program has written nothing for `quiet` seconds (at most `limit`)."""
        end = time.perf_counter() + limit
        while time.perf_counter() < end and self._read(min(quiet, end - time.perf_counter())):
            pass

    # -------------------------------------------------------------- writing

    def key(self, data: bytes) -> float:
        """Write a key's bytes; the time just before writing."""
        t = time.perf_counter()
        os.write(self.master, data)
        self.last_key = t
        return t

    # -------------------------------------------------------------- the screen

    def lines(self) -> list[str]:
        """The screen's lines (parsed once per read: the looks for a frame ask for them often)."""
        if self._lines is None:
            self._lines = list(self.screen.display)
        return self._lines

    def bg(self, y: int, x: int) -> str:
        return self.screen.buffer[y][x].bg

    def text(self) -> str:
        return "\n".join(self.lines())

    # -------------------------------------------------------------- the process

    def peak_kib(self) -> int:
        """The program's peak resident memory so far (VmHWM), in KiB."""
        try:
            for row in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if row.startswith("VmHWM:"):
                    return int(row.split()[1])
        except OSError:
            pass
        return 0

    def close(self, quit_key: bytes | None = b"q") -> None:
        """Leave: the quit key, then SIGTERM and SIGKILL if the program is still there."""
        if self.proc.poll() is None and quit_key and not self.closed:
            try:
                os.write(self.master, quit_key)
            except OSError:
                pass
            end = time.perf_counter() + 5
            while self.proc.poll() is None and time.perf_counter() < end:
                self._read(0.05)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        self.proc.wait()
        os.close(self.master)


# ------------------------------------------------------------------ figures


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def figure(label: str, value: str, target: str = "", ok: bool | None = None, *, bench: str = "") -> None:
    """Print one figure next to its target, 'ok' or 'missed'; for `make bench` (benchmarks/bench.py)
    also append it to the file EVPIPE_BENCH_TABLE names."""
    verdict = "" if ok is None else ("ok" if ok else "missed")
    print(f"  {label:<50} {value:>16}   {('target ' + target) if target else '':<22} {verdict}", flush=True)
    table = os.environ.get("EVPIPE_BENCH_TABLE")
    if table:
        with open(table, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"bench": bench, "label": label, "value": value, "target": target, "ok": ok}) + "\n")


# ------------------------------------------------------------------ cached pipelines

#: Bump when the generator changes: cached databases are keyed by it, the size and the schema.
GENERATOR = "6"


def cache_dir() -> Path:
    path = Path(os.environ.get("EVPIPE_BENCH_CACHE", Path(tempfile.gettempdir()) / "evpipe-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def schema_key() -> str:
    """The migrations that exist: a new one makes new databases (else the app would upgrade the
    cached file on opening it, inside the timings)."""
    versions = sorted(p.name for p in (ROOT / "models" / "migrations" / "versions").glob("*.py"))
    return hashlib.sha1("\n".join(versions).encode()).hexdigest()[:10]


def pipeline(size: int, fresh: bool = True) -> Path:
    """A database with `size` prospects (benchmarks/app_speed.py's generator), built once per size
    and schema and kept in the cache folder; with `fresh`, a copy of it that a benchmark may change."""
    pristine = cache_dir() / f"pipeline_{size}_g{GENERATOR}_{schema_key()}.db"
    if not pristine.exists():
        t = time.perf_counter()
        partial = pristine.with_suffix(".building")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
        # built in a child: this process stays small, and so do the children it starts
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "app_speed.py"), "--build", str(partial), "--size", str(size)],
            env=dict(os.environ, EVPIPE_NOW=NOW),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"building {size:,} prospects failed:\n{done.stderr[-3000:]}")
        partial.rename(pristine)
        print(
            f"(built {size:,} prospects in {time.perf_counter() - t:.1f} s, "
            f"{pristine.stat().st_size / 2**20:.0f} MiB, cached as {pristine})",
            flush=True,
        )
    if not fresh:
        return pristine
    work = Path(tempfile.mkdtemp(prefix="evpipe-bench-")) / f"pipeline_{size}.db"
    shutil.copyfile(pristine, work)
    # on the disk before anything is timed, as a user's database has long been: the first
    # checkpoint of a command (SQLite's fsync of the file) paid for writing out the whole copy
    # (a gigabyte at a million: 2.7 of the month's first forecast's 5.1 s)
    with work.open("rb+") as copy:
        os.fsync(copy.fileno())
    return work


def discard(db: Path) -> None:
    """Remove a working copy from pipeline() and its folder."""
    shutil.rmtree(db.parent, ignore_errors=True)
