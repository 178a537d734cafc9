"""How long the command line takes on a big pipeline: `list --json`, `review`, `forecast`, `focus`
and `kpi`, each the whole command (launch to exit, output written to a pipe that is read), and its
peak memory (the child's ru_maxrss). Prints each figure next to issue 13's target. Also the
month's first `forecast`, a few days after the pipeline's newest KPI reading and past a month's
end (ptyterm.MONTH_LATER), on a fresh copy each run: it records the month start first.

    .venv/bin/python benchmarks/cli_speed.py                   # 100,000 prospects
    .venv/bin/python benchmarks/cli_speed.py --size 1000000 --runs 1

The pipeline is benchmarks/app_speed.py's, cached per size (benchmarks/ptyterm.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import EVPIPE, MONTH_LATER, NOW, discard, figure, pipeline  # noqa: E402

COMMANDS = (
    ("list --json", ["list", "--json"]),
    ("review", ["review"]),
    ("forecast", ["forecast"]),
    ("focus", ["focus"]),
    ("kpi", ["kpi"]),
)


def command(db: Path, args: list[str], now: str = NOW) -> tuple[float, float, int]:
    """(seconds from launch to exit, peak MiB, bytes written) of `evpipe --db DB ARGS`."""
    env = dict(os.environ, EVPIPE_NOW=now, EVPIPE_USER="mere")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [EVPIPE, "--db", str(db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    assert proc.stdout is not None and proc.stderr is not None
    written = 0
    while chunk := proc.stdout.read(1 << 16):
        written += len(chunk)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"evpipe {' '.join(args)} failed: {err.decode(errors='replace').strip()[-2000:]}")
    return took, usage.ru_maxrss / 1024, written


def code_under_test() -> str:
    """The folder of the evpipe package the commands run (as EVPIPE's interpreter finds it)."""
    where = "import evpipe, os; print(os.path.dirname(os.path.realpath(evpipe.__file__)))"
    done = subprocess.run([sys.executable, "-c", where], capture_output=True, text=True, cwd=ROOT, check=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="prospects (10000, 100000, 1000000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (the median is shown)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"evpipe commands · {args.size:,} prospects · load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    print(f"evpipe from {code_under_test()}", flush=True)  # PYTHONPATH may point at another checkout
    big = args.size >= 1_000_000
    limit, memory = (5.0, 150.0) if big else (1.0, None)
    missed = 0
    db = pipeline(args.size)
    try:
        for label, argv in COMMANDS:
            runs = [command(db, argv) for _ in range(args.runs)]
            took = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            ok = took < limit and (memory is None or peak <= memory)
            target = f"< {limit:g} s" + (f", <= {memory:.0f} MiB" if memory else "")
            figure(
                f"`{label}`, whole command (n={args.runs})",
                f"{took:.2f} s {peak:.0f} MiB",
                target,
                ok,
                bench="cli",
            )
            if label == "list --json":
                size = runs[0][2]
                figure("  `list --json` output", f"{size / 2**20:.0f} MiB, {size / args.size:,.0f} B/row", bench="cli")
            missed += not ok
    finally:
        discard(db)
    runs = []
    for _ in range(args.runs):
        fresh = pipeline(args.size)
        try:
            runs.append(command(fresh, ["forecast"], now=MONTH_LATER))
        finally:
            discard(fresh)
    took, peak = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
    ok = took < limit and (memory is None or peak <= memory)
    target = f"< {limit:g} s" + (f", <= {memory:.0f} MiB" if memory else "")
    figure(f"`forecast`, the month's first (n={args.runs})", f"{took:.2f} s {peak:.0f} MiB", target, ok, bench="cli")
    missed += not ok
    print("all targets met" if not missed else f"{missed} target(s) missed")


if __name__ == "__main__":
    main()
