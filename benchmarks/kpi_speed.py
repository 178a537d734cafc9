"""How fast the KPI engine answers on big pipelines (SQL aggregates, no rows loaded).

Prints, for 10,000 prospects and --size (default 100,000; 1,000,000 works): the KPIs, the
by-month/stage/owner breakdowns, a full recount of today's KPI snapshot (the day's first reading,
and after a stage's probability changes), and one stage move through the store (a transaction with
its journal rows and its delta added to today's snapshot, models/snapshot_deltas.py). The
per-change bookkeeping, a move plus the look the app's snapshot worker and the CLI take after a
burst of changes (`history.keep_current`), is printed against issue 13's target: the same at
--size as at 10,000 (within 2x). Run: .venv/bin/python benchmarks/kpi_speed.py [--size N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ptyterm import figure  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from evpipe.models import open_db  # noqa: E402
from evpipe.models.db import writer  # noqa: E402
from evpipe.models.history import keep_current, record_snapshot  # noqa: E402
from evpipe.models.kpi import Scope, kpis, kpis_by  # noqa: E402
from evpipe.models.period import Period  # noqa: E402
from evpipe.models.store import Store  # noqa: E402
from evpipe.models.tables import Prospect, Stage  # noqa: E402


def build(path: Path, n: int):
    engine = open_db(f"sqlite:///{path}")
    rng = random.Random(n)
    with engine.connect() as conn:
        stages = [sid for (sid,) in conn.execute(select(Stage.id).order_by(Stage.position))]
    now = datetime(2026, 11, 27, 9, 0)
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
        for i in range(n)
    ]
    with writer(engine).begin() as conn:
        conn.execute(insert(Prospect), rows)
    return engine


#: The header's sum: the KPI period of the 12 months up to December 2026.
PERIOD = Scope(period=Period("2026-01", "12m"))


def timed(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="prospects (10000, 100000, 1000000)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"evpipe KPI engine · load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    bookkeeping: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({10_000, args.size}):
            engine = build(Path(tmp) / f"k{n}.db", n)
            store = Store(engine, who="bench")
            print(f"{n:,} prospects")
            print(f"  kpis (TV, EV, EV/TV)     {timed(lambda engine=engine: kpis(engine)):8.1f} ms")
            print(f"  kpis over the KPI period {timed(lambda engine=engine: kpis(engine, PERIOD)):8.1f} ms")
            for by in ("month", "stage", "owner"):
                print(f"  kpis by {by:<6}           {timed(lambda engine=engine, by=by: kpis_by(engine, by)):8.1f} ms")
            snap = timed(lambda engine=engine: record_snapshot(engine), 3)
            print(f"  full recount of today    {snap:8.1f} ms  (day's first reading; in a worker)")
            pid = store.add("Benchmark prospect", "12,000", "Suspect").prospect.id
            keep_current(engine)
            move = timed(lambda store=store, pid=pid: (store.move(pid, "next"), store.undo()))
            print(f"  store.move(next) + undo  {move:8.1f} ms")

            def change(store=store, pid=pid, engine=engine) -> None:
                store.move(pid, "next")
                keep_current(engine)
                store.undo()
                keep_current(engine)

            bookkeeping[n] = timed(change, 15) / 2
            print(f"  a change + keep_current  {bookkeeping[n]:8.1f} ms  (per change)")
            engine.dispose()
    small, big = bookkeeping[10_000], bookkeeping[args.size]
    figure(
        f"per-change bookkeeping at {args.size:,} (10k: {small:.1f} ms)",
        f"{big:.1f} ms {big / small:.1f}x",
        "same as 10k (<= 2x)",
        big <= 2 * small,
        bench="kpi",
    )


if __name__ == "__main__":
    main()
