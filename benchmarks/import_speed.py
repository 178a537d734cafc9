"""How long `evpipe import FILE --commit` takes, the whole command as a user runs it: reading and
checking, the one transaction, and the KPI-history rebuild it does before it returns. Prints each
figure next to issue 13's target ("missed" when over).

    .venv/bin/python benchmarks/import_speed.py                 # the CRM sample and 100,000 rows
    .venv/bin/python benchmarks/import_speed.py --size 1000000  # the CRM sample and 1,000,000 rows

Files: the real 8,800-row CRM practice file (tests/fixtures/crm, with its product price list) and
a generated CSV of --size rows (a rep's export: two custom columns, a tenth won or lost with
day-first close dates). Each goes into a new database (`evpipe init`, not timed), then the timed
command runs in its own process; its peak memory is the child's ru_maxrss. The rows written are
counted afterwards. A second import of the same file (every row unchanged) is timed too. The CRM
sample, a second's import, is timed three times (`--runs`), each into a new database, and the
median is its figure, as cli_speed.py's commands are; the generated file once.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import EVPIPE, NOW, figure  # noqa: E402

CRM = ROOT / "tests" / "fixtures" / "crm"  # the real CRM practice data
CRM_ARGS = [
    "--add-stage",
    "Prospecting=10",
    "--add-stage",
    "Engaging=30",
    "--values",
    str(CRM / "products.csv"),
    "--values-key",
    "product",
]


def generate(path: Path, n: int) -> None:
    """A rep-style CSV: name, company, contact, email, value, stage, month, close date, owner, notes,
    two custom columns; a tenth of the rows won or lost with day-first close dates."""
    rng = random.Random(n)
    stages = ["Suspect", "Enquiry", "Quote sent", "Date held", "Deposit paid"]
    owners = ["sam", "priya", "mere", "tane", "jo"]
    start = date(2025, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "ID",
                "Name",
                "Company",
                "Contact",
                "Email",
                "Value",
                "Stage",
                "Expected month",
                "Close date",
                "Created",
                "Owner",
                "Notes",
                "Boat",
                "Guests",
            ]
        )
        for i in range(n):
            roll = rng.random()
            stage = "Won" if roll < 0.06 else "Lost" if roll < 0.1 else rng.choice(stages)
            created = start + timedelta(days=rng.randrange(0, 600))
            closed = (
                (created + timedelta(days=rng.randrange(1, 90))).strftime("%d/%m/%Y")
                if stage in ("Won", "Lost")
                else ""
            )
            w.writerow(
                [
                    f"R{i:06d}",
                    f"Event {i}",
                    f"Company {i % 7000}",
                    f"Person {i % 900}",
                    f"p{i}@example.com",
                    f"{rng.randrange(100, 50_000):,}.{rng.randrange(100):02d}",
                    stage,
                    f"2027-{rng.randrange(1, 13):02d}",
                    closed,
                    created.strftime("%d/%m/%Y"),
                    rng.choice(owners),
                    "" if i % 3 else "called, keen",
                    rng.choice(["Aurora", "Matariki"]),
                    str(rng.randrange(20, 400)),
                ]
            )


def command(db: Path, *args: str) -> tuple[float, float]:
    """Run `evpipe --db DB ARGS`; (seconds from launch to exit, peak memory in MiB)."""
    env = dict(os.environ, EVPIPE_NOW=NOW, EVPIPE_USER="bench")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [EVPIPE, "--db", str(db), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"evpipe {' '.join(args)} failed: {err.decode(errors='replace').strip()[-2000:]}")
    return took, usage.ru_maxrss / 1024


def run(label: str, tmp: Path, path: Path, extra: list[str], target: float | None, runs: int = 1) -> int:
    """Import `path` into a new database (`runs` times, each into a new one: the median is the
    figure), the whole command, then again unchanged. Misses."""
    rows = sum(1 for _ in csv.reader(path.open(encoding="utf-8", errors="replace"))) - 1
    times: list[float] = []
    peaks: list[float] = []
    for n in range(runs):
        db = tmp / f"{path.stem}-{n}.db"
        command(db, "init", str(db))
        took, peak = timed_import(db, path, extra)
        times.append(took)
        peaks.append(peak)
    took, peak = statistics.median(times), max(peaks)
    if runs > 1:
        print(f"{label}: {runs} runs, {', '.join(f'{t:.2f}' for t in times)} s")
    with sqlite3.connect(db) as conn:
        written = conn.execute("SELECT count(*) FROM prospect").fetchone()[0]
        snapshots = conn.execute("SELECT count(*) FROM kpi_snapshot").fetchone()[0]
    print(f"{label}: {rows:,} rows in the file, {written:,} prospects and {snapshots:,} KPI snapshots written")
    ok = None if target is None else took < target
    figure(
        f"import --commit {label}, whole command" + (f" (n={runs})" if runs > 1 else ""),
        f"{took:.2f} s",
        f"< {target:g} s" if target is not None else "",
        ok,
        bench="import",
    )
    figure("  peak memory of that command", f"{peak:.0f} MiB", bench="import")
    without_stages = [a for i, a in enumerate(extra) if "--add-stage" not in (a, extra[i - 1] if i else "")]
    again, _ = timed_import(db, path, without_stages)  # the stages are there now
    figure("  the same file again (every row unchanged)", f"{again:.2f} s", bench="import")
    return ok is False


def timed_import(db: Path, path: Path, extra: list[str]) -> tuple[float, float]:
    """The import as a user who trusts the file runs it: a generated million rows (130 MB) are past
    the import's default limits (models/import_read.py ReadLimits), raised for it as they would."""
    megabytes = math.ceil(path.stat().st_size / 1e6) + 1
    limits = ["--max-rows", "2000000", "--max-mb", str(max(megabytes, 100))]
    return command(db, "import", str(path), "--commit", *limits, *extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="rows of the generated file")
    parser.add_argument("--runs", type=int, default=3, help="imports of the CRM sample (the median is shown)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"evpipe import speed · load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        missed += run("CRM sample", tmp_path, CRM / "sales_pipeline.csv", CRM_ARGS, 1.0, runs=args.runs)
        big = tmp_path / f"generated_{args.size}.csv"
        t = time.perf_counter()
        generate(big, args.size)
        print(f"(generated {big.stat().st_size / 1e6:.1f} MB, {args.size:,} rows, in {time.perf_counter() - t:.1f} s)")
        target = 8.0 if args.size == 100_000 else None
        missed += run(f"{args.size:,} rows", tmp_path, big, [], target)
    print("all targets met" if not missed else f"{missed} target(s) missed")


if __name__ == "__main__":
    main()
