"""What keeping the KPI history costs per change, at different pipeline sizes (issue 13, point 2).

For each size: a stage move and its undo through the store without any KPI bookkeeping, then
with it (each change's delta added to today's snapshot in its transaction, models/snapshot_deltas.py,
and what the app and the CLI run after a burst, `models.history.keep_current`: a look when today's
snapshot is kept), the difference per change, and a full recount (`record_snapshot`, still run for
the day's first reading and after a stage's probability changes). Each figure is the median of
several runs. Before snapshots were kept from deltas, the bookkeeping was a recount after each burst.

Run: .venv/bin/python benchmarks/snapshot_speed.py [--size 10000 --size 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from evpipe.models import history, open_db  # noqa: E402
from evpipe.models.db import writer  # noqa: E402
from evpipe.models.store import Store  # noqa: E402
from evpipe.models.tables import Prospect, Stage  # noqa: E402


def build(path: Path, n: int):
    engine = open_db(f"sqlite:///{path}")
    rng = random.Random(n)
    with engine.connect() as conn:
        stages = [sid for (sid,) in conn.execute(select(Stage.id).order_by(Stage.position))]
    now = datetime(2026, 11, 27, 9, 0)
    for start in range(0, n, 100_000):
        rows = [
            dict(
                name=f"Prospect {i}",
                company=f"Company {i % 5000}",
                value_cents=rng.randrange(100_00, 50_000_00),
                stage_id=rng.choice(stages),
                expected_month=f"2027-{rng.randrange(1, 13):02d}",
                owner=rng.choice(["sam", "priya", "mere", "tane"]),
                created_at=now,
                updated_at=now,
                last_touch_at=now,
            )
            for i in range(start, min(n, start + 100_000))
        ]
        with writer(engine).begin() as conn:
            conn.execute(insert(Prospect), rows)
    return engine


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


@contextmanager
def no_deltas():
    """The store's writes without the KPI snapshot's bookkeeping (models/snapshot_deltas.py), to
    measure what that bookkeeping adds to a change."""
    deltas = sys.modules.get("evpipe.models.snapshot_deltas")
    if deltas is None:  # before snapshots were kept from deltas: nothing to leave out
        yield
        return
    watch = deltas.watch
    deltas.watch = lambda session: None
    try:
        yield
    finally:
        deltas.watch = watch


def after_change(engine) -> None:
    """What the app's snapshot worker and the CLI run after a burst of changes."""
    keep = getattr(history, "keep_current", None)
    (keep or history.record_snapshot)(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="prospects (repeatable; default 10k and 100k)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.size or [10_000, 100_000]:
            engine = build(Path(tmp) / f"s{n}.db", n)
            store = Store(engine, who="bench")
            history.record_snapshot(engine)  # today's reading exists, as after the day's first change
            pid = store.add("Benchmark prospect", "12,000", "Suspect").prospect.id
            after_change(engine)

            def change(store=store, pid=pid) -> None:
                store.move(pid, "next")
                store.undo()

            def change_and_bookkeeping(store=store, pid=pid, engine=engine) -> None:
                store.move(pid, "next")
                after_change(engine)
                store.undo()
                after_change(engine)

            print(f"{n:,} prospects")
            with no_deltas():
                alone = timed(change, args.repeat)
            both = timed(change_and_bookkeeping, args.repeat)
            print(f"  store.move + undo, no KPI bookkeeping      {alone:8.1f} ms")
            print(f"  the same, with the KPI bookkeeping        {both:8.1f} ms")
            print(f"  bookkeeping per change                    {(both - alone) / 2:8.1f} ms")
            look = timed(lambda engine=engine: after_change(engine), args.repeat)
            print(f"  of which the look after a burst           {look:8.1f} ms")
            full = timed(lambda engine=engine: history.record_snapshot(engine), 5)
            print(f"  full recount (record_snapshot)            {full:8.1f} ms")
            engine.dispose()


if __name__ == "__main__":
    main()
