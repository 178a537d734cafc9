"""How long `evpipe import --commit` holds the write lock, and what that costs everyone else.

For the real CRM file (tests/fixtures/crm) and a generated 100,000-row CSV, runs the real command
(`evpipe import FILE --commit`, in its own process) on a database of its own, while, in this
process:

- a prober tries to take the write lock every millisecond without waiting (BEGIN IMMEDIATE with a
  busy timeout of 0, then ROLLBACK at once): the times it fails are the times someone held the lock;
- `evpipe kpi` runs again and again in processes of its own (a read: it should never wait);
- an app-style save (the store's `edit`, on an engine like the app's) runs every 0.2 s.

Prints the command's whole time, the longest hold of the write lock (the import's one transaction;
the KPI history's short writes follow it) and their total, and the slowest `kpi` and save during
the import against their times on the idle database. Target: the lock held for well under the
command's time, no read slower than idle by more than noise, no save waiting more than the longest
hold. Run: .venv/bin/python benchmarks/import_lock.py [--size N]
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("EVPIPE_NOW", "2026-11-27T10:00:00")

from import_speed import CRM, generate  # noqa: E402

from evpipe.models import open_db  # noqa: E402
from evpipe.models.store import Store  # noqa: E402

EVPIPE = [sys.executable, "-m", "evpipe.tui.cli"]


class Prober(threading.Thread):
    """Samples whether the write lock is free, every millisecond, without ever waiting for it."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.samples: list[tuple[float, bool]] = []  # (when, the lock was held)
        self.stop = threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        connection.execute("PRAGMA busy_timeout=0")
        while not self.stop.is_set():
            now = time.perf_counter()
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("ROLLBACK")
                self.samples.append((now, False))
            except sqlite3.OperationalError:
                self.samples.append((now, True))
            time.sleep(0.001)
        connection.close()

    def holds(self) -> list[float]:
        """How long each hold lasted: from the first probe that found the lock held to the next one
        that found it free (a loaded machine may sample late, never in the middle of a hold)."""
        out: list[float] = []
        start = None
        for t, held in self.samples:
            if held and start is None:
                start = t
            elif not held and start is not None:
                out.append(t - start)
                start = None
        return out


def timed_kpi(db: Path) -> float:
    t = time.perf_counter()
    subprocess.run([*EVPIPE, "--db", str(db), "kpi"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t


class Loop(threading.Thread):
    """Runs `fn` again and again (every `every` seconds at most) until stopped; keeps its times."""

    def __init__(self, fn, every: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.fn, self.every = fn, every
        self.times: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                self.times.append(self.fn())
            except Exception as exc:  # noqa: BLE001 - counted and shown
                self.times.append(time.perf_counter() - t)
                self.failures.append(str(exc))
            self.stop.wait(self.every)


def measure(label: str, db: Path, args: list[str]) -> None:
    url = f"sqlite:///{db}"
    engine = open_db(url)  # like the app's engine (30 s lock wait)
    store = Store(engine, who="rep")
    pid = store.add("Rep's own deal", "1000", "Enquiry").prospect.id
    n = [1000]

    def save() -> float:
        n[0] += 1
        t = time.perf_counter()
        store.edit(pid, value=str(n[0]))
        return time.perf_counter() - t

    idle_kpi = statistics.median(timed_kpi(db) for _ in range(3))
    idle_save = statistics.median(save() for _ in range(5))

    prober, kpi_loop, save_loop = Prober(db), Loop(lambda: timed_kpi(db), every=0.5), Loop(save, every=0.2)
    for thread in (prober, kpi_loop, save_loop):
        thread.start()
    t = time.perf_counter()
    proc = subprocess.run(
        [*EVPIPE, "--db", str(db), "import", *args, "--commit"], capture_output=True, text=True, cwd=ROOT
    )
    whole = time.perf_counter() - t
    for thread in (prober, kpi_loop, save_loop):
        thread.stop.set()
    for thread in (prober, kpi_loop, save_loop):
        thread.join()
    engine.dispose()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: the import failed: {proc.stderr}")
    holds = sorted(prober.holds(), reverse=True)
    print(f"{label}:")
    print(f"  evpipe import --commit, whole command   {whole:7.2f} s")
    print(
        f"  write lock held, longest               {holds[0] if holds else 0:7.2f} s"
        f"   (total {sum(holds):.2f} s in {len(holds)} holds)"
    )
    print(
        f"  concurrent `evpipe kpi`, slowest       {max(kpi_loop.times):7.2f} s"
        f"   (idle {idle_kpi:.2f} s; {len(kpi_loop.times)} runs during the import)"
    )
    print(
        f"  concurrent app-style save, slowest     {max(save_loop.times):7.3f} s"
        f"   (idle {idle_save:.3f} s; {len(save_loop.times)} saves during the import,"
        f" {len(save_loop.failures)} failed)"
    )
    for failure in sorted(set(kpi_loop.failures + save_loop.failures)):
        print(f"  failed: {failure}")


def main() -> None:
    flag = next((f for f in ("--size", "--rows") if f in sys.argv), None)
    rows = int(sys.argv[sys.argv.index(flag) + 1]) if flag else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        measure(
            "CRM sales_pipeline.csv",
            folder / "crm.db",
            [
                str(CRM / "sales_pipeline.csv"),
                "--add-stage",
                "Prospecting=10",
                "--add-stage",
                "Engaging=30",
                "--values",
                str(CRM / "products.csv"),
                "--values-key",
                "product",
            ],
        )
        big = folder / "big.csv"
        generate(big, rows)
        measure(f"generated {rows:,}-row CSV", folder / "big.db", [str(big), "--max-rows", str(max(rows, 200_000))])


if __name__ == "__main__":
    main()
