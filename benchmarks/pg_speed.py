"""The same pipeline on SQLite and on PostgreSQL: how long each command and the app take.

    .venv/bin/python benchmarks/pg_speed.py                   # 100,000 prospects
    .venv/bin/python benchmarks/pg_speed.py --size 10000 --runs 3

Builds the pipeline in SQLite (benchmarks/app_speed.py's builder: realistic stages, months,
follow-ups, owners, notes), copies it to PostgreSQL with `evpipe migrate` (timed: it also proves
the copy), then times on each database, each the median of --runs:

- `evpipe kpi`, `evpipe list`, `evpipe forecast`, `evpipe review`: launch to exit of the command;
- app start and stage key to frame, in a real pseudo-terminal (benchmarks/app_speed.py): launch to
  the pipeline's first screen; `>` to the frame showing the new stage and header, and to the save's
  notice (median and p90 of --keys presses).

PostgreSQL: the server `EVPIPE_BENCH_PG_URL` names (a database that may be replaced), else a
throwaway one started by .ci/ensure-postgres and stopped at the end. The app on SQLite paints its
first screen with the standard library's sqlite3; on PostgreSQL it first loads SQLAlchemy and
psycopg, which the app start figure includes.

Measured 2 Dec 2026 (afternoon; the app's two figures then headless, before the pseudo-terminal)
on a 2-core machine with three other developers' editors and
occasional tests running (load average about 1): 100,000 prospects, copied to PostgreSQL 15 by
`evpipe migrate` (counts, journal and KPIs proved equal) in 6.4 s; median of 3 (key: of 20 presses):

                          SQLite        PostgreSQL
    kpi                     542 ms         719 ms
    list                  3,763 ms       4,104 ms
    forecast              2,115 ms       2,398 ms
    review                1,442 ms       1,376 ms
    app start               519 ms       1,578 ms
    stage key to frame    14.1 ms (p90 17.7)   14.9 ms (p90 30.7); saved 14 ms vs 19 ms
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import app_speed  # noqa: E402  (the app in a pseudo-terminal)
from ptyterm import discard, pipeline  # noqa: E402  (the cached pipelines)

EVPIPE = [sys.executable, "-m", "evpipe.tui.cli"]
COMMANDS = (("kpi", ["kpi"]), ("list", ["list"]), ("forecast", ["forecast"]), ("review", ["review"]))


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[3:])} failed: {done.stderr.strip()[-2000:]}")
    return took


def measure(url: str, runs: int, keys: int, env: dict[str, str], stages: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, command in COMMANDS:
        times = [timed([*EVPIPE, "--db", url, *command], env) for _ in range(runs)]
        out[label] = f"{statistics.median(times) * 1000:,.0f} ms"
    # the app in a real pseudo-terminal (benchmarks/app_speed.py): launch to first screen, stage key to frame
    started = app_speed.startup(url, runs, [n for n, _ in stages])["start"]
    out["app start"] = f"{statistics.median(started) * 1000:,.0f} ms" if started else "no screen"
    data = app_speed.keys(url, keys, stages, with_filter=False)
    adv, saved = data["advance"], data["saved"]
    out["stage key to frame"] = (
        f"{statistics.median(adv) * 1000:.1f} ms (p90 {app_speed.pct(adv, 90) * 1000:.1f})"
        f", saved {statistics.median(saved) * 1000:.0f} ms"
        if adv and saved
        else "no frame"
    )
    return out


class Server:
    """The PostgreSQL database to copy into: given, or on a throwaway server."""

    def __init__(self) -> None:
        self.folder: str | None = None
        given = os.environ.get("EVPIPE_BENCH_PG_URL")
        if given:
            self.url = given
            return
        done = subprocess.run(
            ["bash", str(ROOT / ".ci" / "ensure-postgres"), "start", "--owner", str(os.getpid())],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"could not start PostgreSQL: {done.stderr}")
        found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        self.url, self.folder = found["url"], found["dir"]

    def stop(self) -> None:
        if self.folder:
            subprocess.run(["bash", str(ROOT / ".ci" / "ensure-postgres"), "stop", self.folder], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keys", type=int, default=30)
    args = parser.parse_args()
    env = dict(os.environ, EVPIPE_NOW=app_speed.NOW, EVPIPE_USER="mere")
    print(f"evpipe on SQLite and PostgreSQL · {args.size:,} prospects · python {sys.version.split()[0]}")
    server = Server()
    try:
        db = pipeline(args.size)
        try:
            sqlite_url = f"sqlite:///{db}"
            stages = app_speed.ladder(str(db))
            copy = timed([*EVPIPE, "--db", sqlite_url, "migrate", "--to", server.url, "--force"], env)
            print(f"copied to PostgreSQL by `evpipe migrate` (counts, journal and KPIs proved equal) in {copy:.1f} s")
            rows = {"SQLite": measure(sqlite_url, args.runs, args.keys, env, stages)}
            rows["PostgreSQL"] = measure(server.url, args.runs, args.keys, env, stages)
        finally:
            discard(db)
    finally:
        server.stop()
    labels = list(rows["SQLite"])
    print(f"\n  {'':<20} {'SQLite':>32} {'PostgreSQL':>32}")
    for label in labels:
        print(f"  {label:<20} {rows['SQLite'][label]:>32} {rows['PostgreSQL'][label]:>32}")


if __name__ == "__main__":
    main()
