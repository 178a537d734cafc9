"""What keeping the KPI history costs per change, at different pipeline sizes (issue 13, point 2).

For each size: one stage move through the store (its transaction: the journal, the history row and
the KPI snapshot's share of it), and the bookkeeping the app and the CLI run after a burst of
changes (`models.history.keep_current`: nothing more than a look when today's snapshot is kept up
to date), then a full recount (`record_snapshot`, still run after a ladder change, an import, or
the first change of a day). Each figure is the median of several runs.

Run: .venv/bin/python benchmarks/snapshot_speed.py [--size 10000 --size 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
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
            move_undo = timed(change, args.repeat)
            both = timed(change_and_bookkeeping, args.repeat)
            print(f"  store.move + undo (2 changes)             {move_undo:8.1f} ms")
            print(f"  the same, each followed by its bookkeeping {both:8.1f} ms")
            print(f"  bookkeeping per change                    {(both - move_undo) / 2:8.1f} ms")
            full = timed(lambda engine=engine: history.record_snapshot(engine), 5)
            print(f"  full recount (record_snapshot)            {full:8.1f} ms")
            engine.dispose()


if __name__ == "__main__":
    main()
