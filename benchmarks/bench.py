"""`make bench`: the benchmarks with issue 13's targets, at one size, and one table of their figures.

    .venv/bin/python benchmarks/bench.py                  # 100,000 prospects
    .venv/bin/python benchmarks/bench.py --size 1000000   # make bench SIZE=1000000

Runs, each in its own process and printing as it goes: app_speed.py (the app in a real
pseudo-terminal), cli_speed.py (the commands), kpi_speed.py (per-change bookkeeping) and
import_speed.py (`evpipe import --commit`). Then prints every figure with its target, "ok" or
"missed", and the load average before and after (the machine may be shared). A benchmark that
fails is named in the table; the others still run. board_speed.py, live_speed.py, pg_speed.py and
import_lock.py run on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("app_speed.py", "cli_speed.py", "kpi_speed.py", "import_speed.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="prospects (10000, 100000, 1000000)")
    args = parser.parse_args()
    before, speed_before = os.getloadavg(), machine_speed()
    started = time.perf_counter()
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "figures.jsonl"
        env = dict(os.environ, EVPIPE_BENCH_TABLE=str(table))
        for script in SCRIPTS:
            print(f"\n== {script} --size {args.size}", flush=True)
            done = subprocess.run([sys.executable, str(HERE / script), "--size", str(args.size)], env=env)
            if done.returncode != 0:
                failed.append(script)
        rows = [json.loads(line) for line in table.read_text().splitlines()] if table.exists() else []
    after, speed_after = os.getloadavg(), machine_speed()
    print(
        f"\n## evpipe at {args.size:,} prospects · {os.cpu_count()} cpus · load average "
        f"{before[0]:.2f} before, {after[0]:.2f} after · {time.perf_counter() - started:.0f} s\n"
    )
    print(
        f"The machine's speed: a loop of ten million additions took {speed_before:.0f} ms before, "
        f"{speed_after:.0f} ms after (the best of three: the processor alone; the bare app's start and key "
        "to frame above tell the rest, launching processes and the terminal's round trips).\n"
    )
    print(f"| {'figure':<52} | {'measured':>18} | {'target':<22} | {'':<6} |")
    print(f"|{'-' * 54}|{'-' * 20}|{'-' * 24}|{'-' * 8}|")
    missed = 0
    for row in rows:
        if row["ok"] is None:
            continue
        verdict = "ok" if row["ok"] else "missed"
        missed += not row["ok"]
        print(f"| {row['label'].strip():<52} | {row['value']:>18} | {row['target']:<22} | {verdict:<6} |")
    for script in failed:
        print(f"| {script + ' failed (see above)':<52} | {'':>18} | {'':<22} | {'missed':<6} |")
    print(f"\n{sum(r['ok'] is not None for r in rows)} figures with a target, {missed + len(failed)} missed")


def machine_speed() -> float:
    """How fast the machine is now, in ms: the best of three loops of ten million additions in
    this Python (a shared machine's speed moves by a factor of two within an hour)."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        sum(range(10_000_000))
        best = min(best, time.perf_counter() - began)
    return best * 1000


if __name__ == "__main__":
    main()
