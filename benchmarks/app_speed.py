"""How fast the app answers with big pipelines. Prints each figure next to its target.

    .venv/bin/python benchmarks/app_speed.py            # 10,000 and 100,000 prospects
    .venv/bin/python benchmarks/app_speed.py --sizes 100000 --keys 60

For each size it builds a pipeline in a temporary database (bulk SQL insert, realistic spread of
stages, months, follow-ups, owners and notes), then runs, each in its own process:

- startup: `evpipe` opening on that database until the pipeline's first screen (tab bar, KPI
  header, rows) is painted and takes keys, against a bare Textual app that paints one line
  (target: within 2.5x the bare app; each the median of --runs launches);
- keys, timed inside the event loop from the moment the key event is posted (not Pilot's
  press/pause, which sleep and measure themselves):
  - stage advance (`>`): to the end of the screen update showing the new row and header
    (targets: median < 20 ms, p90 < 50 ms); the save in the database follows in a worker;
  - cursor move: the CPU time the event loop's thread spends on the key (handling it and the
    messages it causes, and rendering the frame), target < 5 ms; key to finished frame is printed
    too, which adds the wait for Textual's next 60 fps frame tick;
  - filter: each keystroke of a search to the painted results (target < 100 ms);
- peak memory: ru_maxrss of each process (target < 150 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = "2026-11-27T10:00:00"

WORDS = [
    "Harbour",
    "Kauri",
    "Tui",
    "Pohutukawa",
    "Rangitoto",
    "Waitemata",
    "Ponsonby",
    "Devonport",
    "Onehunga",
    "Takapuna",
    "Parnell",
    "Remuera",
    "Mission",
    "Bay",
    "Kohimarama",
    "Herne",
    "Grey",
    "Lynn",
    "Albany",
    "Howick",
    "Manukau",
    "Henderson",
    "Titirangi",
    "Piha",
    "Muriwai",
    "Waiheke",
    "Matakana",
    "Coromandel",
    "Tamaki",
    "Epsom",
    "Newmarket",
    "Britomart",
]
KINDS = (
    "Christmas party",
    "wedding",
    "staff outing",
    "conference shuttle",
    "school trip",
    "birthday cruise",
    "product launch",
    "charity gala",
    "reunion",
    "sunset cruise",
    "team offsite",
    "awards night",
)
SUFFIX = ("Ltd", "Group", "Trust", "Club", "School", "Partners", "Holdings", "Co-op")
FIRST = ("Aroha", "Mere", "Sam", "Lisa", "Hemi", "Grace", "Tama", "Sione", "Priya", "Lucien", "Kiri", "Ben")
LAST = ("Williams", "Kauri", "Fong", "Walker", "Hughes", "Patel", "Tane", "Reid", "Moreau", "Ngata", "Smith")
OWNERS = ("mere", "sam", "aroha", "ben", "priya", "hemi", "grace", "tama")
# share of prospects per stage of the default ladder (Suspect .. Deposit paid, Won, Lost)
STAGE_WEIGHTS = (30, 24, 18, 10, 6, 7, 5)


# ---------------------------------------------------------------- building a pipeline


def build(path: Path, count: int, seed: int = 7) -> str:
    """A database at `path` with `count` prospects, inserted in bulk. Returns its URL."""
    os.environ["EVPIPE_NOW"] = NOW
    from evpipe.models import open_db
    from evpipe.models.history import record_snapshot
    from evpipe.models.store import Store

    url = f"sqlite:///{path}"
    engine = open_db(url)
    stages = Store(engine, who="bench").ladder()
    rng = random.Random(seed)
    today = date.fromisoformat(NOW[:10])
    now = datetime.fromisoformat(NOW)
    month0 = today.year * 12 + today.month - 1
    rows = []
    for i in range(1, count + 1):
        stage = rng.choices(stages, weights=STAGE_WEIGHTS)[0]
        place = rng.choice(WORDS)
        company = f"{place} {rng.choice(WORDS)} {rng.choice(SUFFIX)}"
        value_cents = int(rng.lognormvariate(8.6, 0.8)) * 100
        m = month0 + rng.randint(-4, 12)
        month = f"{m // 12:04d}-{m % 12 + 1:02d}"
        follow = None
        if stage.kind == "open" and rng.random() < 0.7:
            follow = (today + timedelta(days=rng.randint(-12, 40))).isoformat()
        touched = now - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 600))
        created = touched - timedelta(days=rng.randint(0, 90))
        contact = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        rows.append(
            (
                f"{place} {rng.choice(KINDS)} #{i}",
                company,
                contact,
                f"{contact.split()[0].lower()}@{place.lower()}.co.nz",
                f"+64 21 555 {i % 10000:04d}",
                f"Met at the {rng.choice(WORDS)} expo; wants {rng.randint(20, 300)} guests.",
                "{}",
                value_cents,
                stage.id,
                month,
                follow,
                rng.choice(OWNERS),
                created.isoformat(sep=" "),
                touched.isoformat(sep=" "),
                touched.isoformat(sep=" "),
                today.isoformat() if stage.kind != "open" else None,
                0,
                1,
            )
        )
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany(
            "INSERT INTO prospect (name, company, contact_name, email, phone, notes, custom_json, value_cents, "
            "stage_id, expected_month, next_follow_up, owner, created_at, updated_at, last_touch_at, closed_on, "
            "needs_review, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        cur.execute("COMMIT")
        cur.close()
    finally:
        raw.close()
    record_snapshot(engine)
    engine.dispose()
    return url


# ---------------------------------------------------------------- children (each its own process)


def child_bare() -> None:
    from textual.app import App
    from textual.widgets import Static

    class Bare(App):
        def compose(self):
            yield Static("evpipe")

        def on_mount(self) -> None:
            self.call_after_refresh(ready, self)

    Bare().run(headless=True, size=(80, 24))


def ready(app) -> None:
    """The first screen is painted and takes keys: say when, then leave."""
    print(f"READY {time.time():.6f}", flush=True)
    app.exit()


def child_startup(url: str) -> None:
    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.screens.pipeline import PipelineScreen

    loaded = PipelineScreen.on_rows_loaded

    def on_rows_loaded(self, message):
        if not getattr(self, "_ready_said", False):
            # ahead of the screen's own after-paint callback, which starts reading every row
            self._ready_said = True
            self.app.call_after_refresh(ready, self.app)
        loaded(self, message)

    PipelineScreen.on_rows_loaded = on_rows_loaded
    EvpipeApp(url, who="mere").run(headless=True, size=(80, 24))


class FrameClock:
    """Times from a posted key to the end of the screen update that follows it."""

    def __init__(self, screen) -> None:
        self.screen = screen
        self.waiting: asyncio.Event | None = None
        self.armed = False
        self.render_time = 0.0
        self.done_at = 0.0
        self.done_cpu = 0.0
        original = screen._compositor_refresh

        def timed_refresh():
            start = time.perf_counter()
            original()
            end = time.perf_counter()
            if self.armed:
                self.armed = False
                self.render_time = end - start
                self.done_at = end
                self.done_cpu = time.thread_time()
                if self.waiting is not None:
                    self.waiting.set()

        screen._compositor_refresh = timed_refresh

    def arm(self) -> asyncio.Event:
        self.waiting = asyncio.Event()
        self.armed = True
        return self.waiting


async def press_and_time(app, clock: FrameClock, key: str, char: str | None, ready=None) -> tuple[float, float]:
    """Post one key; wait for the frame after it (after `ready()` is true, when given).
    Returns (key to finished frame, CPU time the event loop's thread spent on it: handling the key,
    the messages it caused, and rendering the frame; idle waiting for the next frame tick and
    work in other threads do not count)."""
    from textual import events

    t0 = time.perf_counter()
    cpu0 = time.thread_time()
    if ready is None:
        done = clock.arm()
        app.post_message(events.Key(key, char))
        await asyncio.wait_for(done.wait(), 5)
        return clock.done_at - t0, clock.done_cpu - cpu0
    app.post_message(events.Key(key, char))
    deadline = t0 + 5
    while not ready():
        await asyncio.sleep(0.0005)
        if time.perf_counter() > deadline:
            raise TimeoutError(key)
    done = clock.arm()
    await asyncio.wait_for(done.wait(), 5)
    return clock.done_at - t0, clock.done_cpu - cpu0


def child_keys(url: str, keys: int) -> None:
    from evpipe.models.kpi import Scope, kpis
    from evpipe.models.period import current_period
    from evpipe.tui.app import EvpipeApp
    from evpipe.tui.widgets.kpi_header import KpiHeader

    app = EvpipeApp(url, who="mere")
    out: dict[str, list[float]] = {
        "advance": [],
        "advance_cpu": [],
        "cursor": [],
        "cursor_cpu": [],
        "filter": [],
        "saved": [],
    }

    async def run() -> None:
        async with app.run_test(headless=True, size=(80, 24)) as pilot:
            screen = app.pipeline
            while not screen.loaded:
                await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            clock = FrameClock(screen)
            table = screen.table
            header = screen.query_one(KpiHeader)
            for _ in range(keys):
                # cursor move
                t, cpu = await press_and_time(app, clock, "down", None)
                out["cursor"].append(t)
                out["cursor_cpu"].append(cpu)
                await app.workers.wait_for_complete()
                row = table.current_row
                stage = screen.view.ladder.stage(row.stage_id)
                if stage.kind != "open":
                    continue
                before_ev = screen.kpi_all.ev_micros
                t0 = time.perf_counter()
                t, cpu = await press_and_time(app, clock, "greater_than_sign", ">")
                out["advance"].append(t)
                out["advance_cpu"].append(cpu)
                assert screen.kpi_all.ev_micros - before_ev == screen.view.ladder.gain(row), "header moved wrongly"
                assert header.texts["kpi-ev"].startswith("EV ")
                pending = row.id
                while pending in screen._pending:
                    await asyncio.sleep(0.0005)
                out["saved"].append(time.perf_counter() - t0)
                await app.workers.wait_for_complete()
                await pilot.pause(0.02)
            await app.workers.wait_for_complete()
            await pilot.pause(2.5)  # let the debounced KPI snapshot of the moves above be written
            await app.workers.wait_for_complete()
            assert screen.kpi_all == kpis(app.engine, Scope(period=current_period(app.engine))), (
                "header drifted from the database"
            )
            # filter as you type
            await pilot.press("slash")
            await pilot.pause(0.1)
            text = ""
            for ch in "harbour christmas":
                text += ch
                want = text.strip()

                def ready(want=want) -> bool:
                    return (
                        screen.view.matches is not None
                        and screen.filter_text == want
                        and screen._last_filter_applied == want
                    )

                if ch == " ":
                    await pilot.press("space")
                    continue
                t, _ = await press_and_time(app, clock, ch, ch, ready=ready)
                out["filter"].append(t)
                out.setdefault("filter_keys", []).append(want)
            out["matches"] = [len(screen.view.lines)]

    asyncio.run(run())
    print(json.dumps(out))


def run_child(args: list[str]) -> tuple[float, int, str]:
    """Run this script as a child; returns (seconds from launch to READY, or to its exit when it
    says nothing, peak RSS in KiB, stdout)."""
    env = dict(os.environ, EVPIPE_NOW=NOW, EVPIPE_USER="mere")
    launched = time.time()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"child {args} failed:\n{err.decode(errors='replace')[-3000:]}")
    text = out.decode()
    for said in text.splitlines():
        if said.startswith("READY "):
            wall = float(said.split()[1]) - launched
    return wall, usage.ru_maxrss, text


# ---------------------------------------------------------------- the report


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def line(label: str, value: str, target: str, ok: bool) -> None:
    print(f"  {label:<44} {value:>14}   target {target:<14} {'ok' if ok else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--keys", type=int, default=60, help="advance/cursor key presses per size")
    parser.add_argument("--runs", type=int, default=5, help="startup runs per app (the median is shown)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "build":
        return print(build(Path(args.url), args.size))
    if args.child == "bare":
        return child_bare()
    if args.child == "startup":
        return child_startup(args.url)
    if args.child == "keys":
        return child_keys(args.url, args.keys)

    print(f"evpipe app speed · python {sys.version.split()[0]} · {os.cpu_count()} cpus")
    bare_walls = []
    for _ in range(args.runs):
        wall, rss, _ = run_child(["--child", "bare"])
        bare_walls.append(wall)
    bare = statistics.median(bare_walls)
    print(
        f"bare Textual app, start to first paint and exit: {bare * 1000:.0f} ms (median of {args.runs}), "
        f"peak {rss / 1024:.0f} MiB"
    )
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            path = Path(tmp) / f"pipeline_{size}.db"
            t = time.perf_counter()
            # built in a child: a parent grown by building would make every child's peak memory
            # read high (ru_maxrss counts the pages a child shares with its parent at fork)
            url = run_child(["--child", "build", "--url", str(path), "--size", str(size)])[2].strip().splitlines()[-1]
            print(
                f"\n{size:,} prospects (built in {time.perf_counter() - t:.1f} s, "
                f"{path.stat().st_size / 2**20:.0f} MiB on disk)"
            )
            walls, peaks = [], []
            for _ in range(args.runs):
                wall, rss, _ = run_child(["--child", "startup", "--url", url])
                walls.append(wall)
                peaks.append(rss)
            start = statistics.median(walls)
            checks = []
            checks.append(
                (
                    "start to first interactive screen",
                    f"{start * 1000:.0f} ms ({start / bare:.2f}x)",
                    "<= 2.5x bare",
                    start <= 2.5 * bare,
                )
            )
            wall, rss, out = run_child(["--child", "keys", "--url", url, "--keys", str(args.keys)])
            data = json.loads(out.strip().splitlines()[-1])
            ms = lambda v: v * 1000  # noqa: E731
            adv = data["advance"]
            checks.append(
                (
                    f"advance key to frame, median (n={len(adv)})",
                    f"{ms(statistics.median(adv)):.1f} ms",
                    "< 20 ms",
                    ms(statistics.median(adv)) < 20,
                )
            )
            checks.append(("advance key to frame, p90", f"{ms(pct(adv, 90)):.1f} ms", "< 50 ms", ms(pct(adv, 90)) < 50))
            print(
                f"  (advance: event-loop CPU {ms(statistics.median(data['advance_cpu'])):.1f} ms median; "
                f"saved in the database {ms(statistics.median(data['saved'])):.1f} ms median after the key)"
            )
            cur, cur_cpu = data["cursor"], data["cursor_cpu"]
            checks.append(
                (
                    "cursor move: event-loop CPU per key, median",
                    f"{ms(statistics.median(cur_cpu)):.2f} ms",
                    "< 5 ms",
                    ms(statistics.median(cur_cpu)) < 5,
                )
            )
            checks.append(
                (
                    "cursor move: event-loop CPU per key, p90",
                    f"{ms(pct(cur_cpu, 90)):.2f} ms",
                    "< 5 ms",
                    ms(pct(cur_cpu, 90)) < 5,
                )
            )
            print(
                f"  (cursor: key to finished frame {ms(statistics.median(cur)):.1f} ms median, "
                f"p90 {ms(pct(cur, 90)):.1f} ms; that includes waiting for Textual's next 60 fps frame tick)"
            )
            flt = data["filter"]
            checks.append(
                (
                    f"filter keystroke to results, max (n={len(flt)})",
                    f"{ms(max(flt)):.1f} ms",
                    "< 100 ms",
                    ms(max(flt)) < 100,
                )
            )
            slowest = max(range(len(flt)), key=flt.__getitem__)
            print(
                f"  (filter: median {ms(statistics.median(flt)):.1f} ms, slowest {data['filter_keys'][slowest]!r}; "
                f"'harbour christmas' matched {data['matches'][0]:,} lines)"
            )
            peak = max(max(peaks), rss) / 1024
            checks.append(("peak memory (ru_maxrss)", f"{peak:.0f} MiB", "< 150 MiB", peak < 150))
            for label, value, target, ok in checks:
                line(label, value, target, ok)
                missed += not ok
    print(f"\n{'all targets met' if not missed else f'{missed} target(s) missed'}")


if __name__ == "__main__":
    main()
