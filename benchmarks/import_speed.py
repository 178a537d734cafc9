"""How fast `evpipe import` is: the real 8,800-row CRM file and a generated 100,000-row CSV.

Prints, for each file: reading and checking (the preview), writing (the one transaction: prospects,
journal and stage history, bulk inserted), rebuilding the KPI history afterwards (models.history:
backfill and today's snapshot), a re-import of the same file (every row unchanged), and an
export of everything to CSV and XLSX. Target: well under a minute for 100,000 rows (preview and
write). Run: .venv/bin/python benchmarks/import_speed.py [--no-history]
"""

from __future__ import annotations

import csv
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EVPIPE_NOW", "2026-11-27T10:00:00")

from evpipe.models import open_db  # noqa: E402
from evpipe.models.exporter import export  # noqa: E402
from evpipe.models.importer import ImportOptions, after_import, commit_import, plan_import  # noqa: E402

CRM = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "crm"  # the real CRM practice data


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


def run(label: str, db: Path, path: Path, options: ImportOptions, history: bool) -> None:
    engine = open_db(f"sqlite:///{db}")
    t0 = time.perf_counter()
    plan = plan_import(engine, path, options, who="bench")
    t1 = time.perf_counter()
    assert plan.can_commit, plan.why_not()
    result = commit_import(engine, plan, who="bench")
    t2 = time.perf_counter()
    print(f"{label}: {len(plan.records):,} rows")
    print(f"  preview (read + check)     {t1 - t0:7.2f} s")
    print(
        f"  write (one transaction)    {t2 - t1:7.2f} s   {result.created:,} prospects, {result.events:,} journal entries"
    )
    print(f"  import total               {t2 - t0:7.2f} s   ({len(plan.records) / (t2 - t0):,.0f} rows/s)")
    if history:
        t3 = time.perf_counter()
        after_import(engine)
        print(f"  KPI history rebuild        {time.perf_counter() - t3:7.2f} s   (backfill + snapshot)")
    t4 = time.perf_counter()
    again = plan_import(engine, path, options.__class__(**{**options.__dict__, "add_stages": []}), who="bench")
    commit_import(engine, again, who="bench")
    print(f"  re-import, all unchanged   {time.perf_counter() - t4:7.2f} s   ({again.unchanged_count:,} unchanged)")
    for kind in ("csv", "xlsx"):
        t5 = time.perf_counter()
        export(engine, db.with_suffix(f".{kind}"))
        print(f"  export {kind:<4}                {time.perf_counter() - t5:7.2f} s")
    engine.dispose()


def main() -> None:
    history = "--no-history" not in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(
            "CRM sales_pipeline.csv",
            tmp / "crm.db",
            CRM / "sales_pipeline.csv",
            ImportOptions(
                add_stages=[("Prospecting", "10"), ("Engaging", "30")],
                values_file=CRM / "products.csv",
                values_key="product",
            ),
            history,
        )
        big = tmp / "big.csv"
        t = time.perf_counter()
        generate(big, 100_000)
        print(f"(generated {big.stat().st_size / 1e6:.1f} MB, 100,000 rows, in {time.perf_counter() - t:.1f} s)")
        run("generated 100,000-row CSV", tmp / "big.db", big, ImportOptions(), history)


if __name__ == "__main__":
    main()
