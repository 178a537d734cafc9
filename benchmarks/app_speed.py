"""How long a user waits for the app, measured in a real pseudo-terminal. Prints each figure next to
the target of issue 13 for its size, and "missed" when it is not met (it never stops on a figure).

    .venv/bin/python benchmarks/app_speed.py                  # 100,000 prospects
    .venv/bin/python benchmarks/app_speed.py --size 1000000 --keys 40 --runs 5

The pipeline is built once per size (bulk insert: realistic spread of stages, months, follow-ups,
owners and notes; each prospect's journal, stage history and contact points; six weeks of daily KPI
readings, as a pipeline in daily use has) and cached in $TMPDIR/evpipe-bench (EVPIPE_BENCH_CACHE);
each run works on a copy. The real `evpipe` runs in a pseudo-terminal of 80x24, TERM=xterm-256color; keys are written
as bytes and the output is decoded by pyte into the screen. Every time is taken from just before
the key's bytes are written to the read that completes the first frame showing the change (checked
on the decoded screen, so a refresh already pending cannot stop the clock early):

- start: launch to the first screen with the KPI header, rows and the status line, against a bare
  Textual app (one line) started the same way, alternately, median of --runs each; also launch to
  the first key answered (the cursor moved) and, in the first launch, to every row loaded;
- stage key `>`: to the frame where the cursor row shows the next stage and the header's EV has
  moved; the header's move must equal the row's EV move (within a unit where the header shows whole
  units, a million prospects' EV being too wide for cents; else counted as wrong); then to the save's
  notice (the row written in a worker), which is dismissed with a click before the next key;
- cursor keys (down then up, scrolling both ways): to the frame where the highlight is on the
  next row;
- filter: each keystroke of "harbour christmas" after `/` to the frame showing the typed text and
  the match count, which must equal the count read from the database (open prospects whose name,
  company, contact or notes hold every word);
- longest pause of the event loop while those keys are pressed: the keys' app runs with
  benchmarks/loop_probe.py (the same command line, and a thread that every 2 ms times how long the
  loop takes to run a no-op); and the same while the rows load after the first screen (a million:
  some seconds), with a cursor key every tenth of a second meanwhile;
- peak memory: VmHWM of the app's process after all of the above.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import EVPIPE, NOW, Term, discard, figure, pct, pipeline  # noqa: E402

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
#: Prospects built at a time (with their journal: about 2.4 entries each).
CHUNK = 20_000


# ---------------------------------------------------------------- building a pipeline


def build(path: Path, count: int, seed: int = 7) -> str:
    """A database at `path` with `count` prospects, inserted in bulk, each with the journal, stage
    history and contact points the app would have written for it: added on the first stage, then
    moved up the ladder a rung at a time to where it stands (a closed one from the rung it
    reached), by its owner, between its creation and its last touch, with none to three calls,
    emails or meetings logged, the last on that touch. Returns its URL."""
    os.environ["EVPIPE_NOW"] = NOW
    from evpipe.models import open_db
    from evpipe.models.bridge import BridgeCategory, move_category
    from evpipe.models.db import driver_rows
    from evpipe.models.history import _record_reconstructed, record_snapshot
    from evpipe.models.journal import RESTAGE_SQL, created_summary, delta, event_row, move_summary, stage_change_row
    from evpipe.models.ladder import kpi_part
    from evpipe.models.store import Store
    from evpipe.models.tables import Activity, ChangeEvent, StageChange, table_of

    url = f"sqlite:///{path}"
    engine = open_db(url)
    stages = Store(engine, who="bench").ladder()
    rungs = sorted((s for s in stages if s.kind == "open"), key=lambda s: s.position)
    rng = random.Random(seed)
    today = date.fromisoformat(NOW[:10])
    now = datetime.fromisoformat(NOW)
    month0 = today.year * 12 + today.month - 1
    ids = {"event": 1, "change": 1, "activity": 1}

    def moment(at: datetime) -> str:  # as SQLAlchemy stores a DateTime on SQLite
        return at.strftime("%Y-%m-%d %H:%M:%S.%f")

    def history(pid: int, name: str, owner: str, value: int, stage, created: datetime, touched: datetime):
        """The journal entries, stage history and contact points of one prospect's way to `stage`."""
        # an open one climbed to its rung; a closed one closed from the rung it reached
        reached = rungs.index(stage) + 1 if stage.kind == "open" else rng.randint(1, len(rungs))
        path = rungs[:reached] + ([] if stage.kind == "open" else [stage])
        events, changes = [], []
        steps = len(path) - 1
        before = None
        last_at = created
        for n, here in enumerate(path):
            at = created + (touched - created) * n / steps if steps else created
            part = kpi_part(value, here.kind, here.probability_bp)
            if before is None:
                d = part
                event = event_row(
                    at=at,
                    who=owner,
                    action="create",
                    category=BridgeCategory.NEW,
                    summary=created_summary(name, "added", here.name, value, d[2]),
                    payload={},
                    prospect_id=pid,
                    stage_id=here.id,
                    d=d,
                )
            else:
                d = delta(kpi_part(value, before.kind, before.probability_bp), part)
                event = event_row(
                    at=at,
                    who=owner,
                    action="move",
                    category=move_category(before.kind, before.position, here.kind, here.position),
                    summary=move_summary(name, before.name, here.name, d[2]),
                    payload={"from": before.id, "to": here.id, "before": {"closed_on": None, "lost_reason": None}},
                    prospect_id=pid,
                    stage_id=here.id,
                    d=d,
                )
            event["id"], event["undone_by_id"] = ids["event"], None
            change = stage_change_row(
                prospect_id=pid,
                at=at,
                who=owner,
                from_stage_id=None if before is None else before.id,
                to_stage_id=here.id,
                value_cents=value,
                from_probability_bp=None if before is None else before.probability_bp,
                to_probability_bp=here.probability_bp,
                reason="created" if before is None else None,
                event_id=ids["event"],
                before=None if before is None else (last_at, False),
            )
            last_at = at
            change["id"] = ids["change"]
            ids["event"] += 1
            ids["change"] += 1
            events.append(event)
            changes.append(change)
            before = here
        # its contact points: a call, email or meeting now and then, the last on its last touch
        activities = []
        calls = rng.choice((0, 1, 1, 2, 2, 3))
        for n in range(calls):
            at = touched - (touched - created) * n / calls
            kind = rng.choice(("call", "email", "meeting"))
            activities.append(
                dict(
                    id=ids["activity"],
                    prospect_id=pid,
                    occurred_at=at,
                    kind=kind,
                    text=f"{kind} about {rng.randint(20, 300)} guests",
                    who=owner,
                    created_at=at,
                    timed=True,
                    voided_at=None,
                    stage_id=None,  # worked out once all are in (RESTAGE_SQL)
                )
            )
            event = event_row(
                at=at,
                who=owner,
                action="activity",
                category=BridgeCategory.ACTIVITY,
                summary=f"{name}: {kind} logged",
                payload={"activity_id": ids["activity"]},
                prospect_id=pid,
            )
            event["id"], event["undone_by_id"] = ids["event"], None
            events.append(event)
            ids["activity"] += 1
            ids["event"] += 1
        return events, changes, activities

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        dialect = engine.dialect
        for first in range(1, count + 1, CHUNK):  # a chunk at a time: a million never sit in memory
            prospects, events, changes, activities = [], [], [], []
            for i in range(first, min(count, first + CHUNK - 1) + 1):
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
                name = f"{place} {rng.choice(KINDS)} #{i}"
                owner = rng.choice(OWNERS)
                e, c, a = history(i, name, owner, value_cents, stage, created, touched)
                events += e
                changes += c
                activities += a
                prospects.append(
                    (
                        i,
                        name,
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
                        owner,
                        moment(created),
                        moment(touched),
                        moment(touched),
                        moment(c[-1]["changed_at"]),
                        touched.date().isoformat() if stage.kind != "open" else None,
                        0,
                        1,
                    )
                )
            cur.executemany(
                "INSERT INTO prospect (id, name, company, contact_name, email, phone, notes, custom_json, "
                "value_cents, stage_id, expected_month, next_follow_up, owner, created_at, updated_at, "
                "last_touch_at, stage_entered_at, closed_on, needs_review, version) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                prospects,
            )
            for table, rows in (
                (table_of(ChangeEvent), events),
                (table_of(StageChange), changes),
                (table_of(Activity), activities),
            ):
                ready = driver_rows(table, rows, dialect)
                assert ready is not None, f"{table.name}: a row does not name every column"
                cur.executemany(ready[0], ready[2])
        cur.execute(RESTAGE_SQL)  # the stage each contact point happened on, as the journal keeps it
        cur.execute("COMMIT")
        cur.close()
    finally:
        raw.close()
    record_snapshot(engine)
    # The KPI history a pipeline in daily use has: a reading at the end of each of the last six
    # weeks' days (the app records one on each day's first change). `review` starts from the
    # reading before its period; without one it replays every prospect (a pipeline with no history).
    _record_reconstructed(engine, [today - timedelta(days=k) for k in range(1, 43)])
    engine.dispose()
    with sqlite3.connect(path) as conn:  # one file, nothing left in the write-ahead log
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return url


# ---------------------------------------------------------------- reading the screen

DOWN, UP = b"\x1b[B", b"\x1b[A"
SHOWN = re.compile(r"(first )?([\d,]+) shown")
# the header's EV figure, not the sparkline's label beside it ("EV 7w": seven weeks of EV)
HEADER_EV = re.compile(r"(?<![/\w])EV (-?[\d,]+(?:\.\d+)?)(?![\w.])")


def bare() -> None:
    """The bare Textual app: one line, nothing else."""
    from textual.app import App
    from textual.widgets import Static

    class Bare(App):
        def compose(self):
            yield Static("bare textual app")

    Bare().run()


def bare_keys() -> None:
    """The floor of a key: a bare Textual app with one widget of 20 lines whose highlight moves
    one line per down or up key (only the two lines that changed are refreshed)."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.app import App
    from textual.binding import Binding
    from textual.geometry import Region
    from textual.strip import Strip
    from textual.widget import Widget

    plain, lit = Style(), Style(bgcolor="blue", bold=True)

    class Lines(Widget, can_focus=True):
        BINDINGS = [Binding("down", "move(1)"), Binding("up", "move(-1)")]
        DEFAULT_CSS = "Lines { height: 20; }"
        cursor = 0

        def render_line(self, y: int) -> Strip:
            text = f"line {y:02d}".ljust(self.size.width)
            return Strip([Segment(text, lit if y == self.cursor else plain)])

        def action_move(self, step: int) -> None:
            old, self.cursor = self.cursor, max(0, min(19, self.cursor + step))
            self.refresh(Region(0, old, self.size.width, 1), Region(0, self.cursor, self.size.width, 1))

    class Bare(App):
        def compose(self):
            yield Lines()

    Bare().run()


def floor(n: int) -> list[float]:
    """Key to frame in the bare one-widget app (bare_keys): what any Textual app costs here."""
    term = Term([sys.executable, str(Path(__file__).resolve()), "--bare-keys"])
    out: list[float] = []
    if term.wait(lambda: "line 19" in term.text(), 30) is None:
        term.close(quit_key=None)
        return out

    def lit() -> int:
        backs = [term.bg(y, 2) for y in range(20)]
        lone = [y for y, b in enumerate(backs) if backs.count(b) == 1]
        return lone[0] if len(lone) == 1 else -1

    term.settle(0.3)
    step = 1
    for _ in range(n):
        here = lit()
        if here + step not in range(20):
            step = -step
        t0 = term.key(DOWN if step > 0 else UP)
        t = term.wait(lambda want=here + step: lit() == want, 5)
        if t is not None:
            out.append(t - t0)
        term.settle(0.03)
    term.close(quit_key=b"\x03")
    return out


def money(text: str | None) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "")) if text else None
    except InvalidOperation:
        return None


def same_move(header: Decimal, row: Decimal, before: Decimal, after: Decimal) -> bool:
    """Whether the header's EV moved as the row's did: to the cent when the header shows cents;
    within a unit when its figure is too wide for them (a million prospects: EV 1,890,070,382),
    each of its two figures rounded to whole units."""
    whole = before.as_tuple().exponent == 0 and after.as_tuple().exponent == 0
    return abs(header - row) < 1 if whole else header == row


class Pipeline:
    """The pipeline screen as the decoded terminal shows it."""

    def __init__(self, term: Term, stages: list[str]) -> None:
        self.term = term
        self.stages = sorted(stages, key=len, reverse=True)  # the longest name that fits wins

    def status(self) -> tuple[int, str] | None:
        lines = self.term.lines()
        for y in range(len(lines) - 1, 3, -1):
            if "sort:" in lines[y] and SHOWN.search(lines[y]):
                return y, lines[y]
        return None

    def first_screen(self) -> bool:
        return self.header_ev() is not None and self.status() is not None and self.table() is not None

    def loaded(self) -> bool:
        found = self.status()
        return found is not None and "loading" not in found[1]

    def count(self) -> int | None:
        found = self.status()
        match = SHOWN.search(found[1]) if found else None
        return int(match.group(2).replace(",", "")) if match and not match.group(1) else None

    def header_ev(self) -> Decimal | None:
        """The header's EV: after its label, or under it when the figures are too wide for one line."""
        lines = self.term.lines()
        match = HEADER_EV.search(lines[1])
        if match:
            return money(match.group(1))
        label = re.search(r"(?<![/\w])EV(?![/\w])", lines[1])
        if label is None:
            return None
        below = re.match(r"\s*(-?[\d,]+(?:\.\d+)?)", lines[2][label.start() :])
        return money(below.group(1)) if below else None

    def table(self) -> tuple[int, int, int, int, int] | None:
        """(first row line, last row line, stage column, end of the EV column, cursor line or -1)."""
        lines = self.term.lines()
        head = next((y for y in range(2, 8) if "Name" in lines[y] and "Stage" in lines[y]), None)
        found = self.status()
        if head is None or found is None:
            return None
        ev = re.search(r"\bEV\b", lines[head])
        if ev is None:
            return None
        first, last = head + 1, found[0] - 2  # the line above the status line is the cursor's detail
        if last < first:
            return None
        # the cursor's line: the one background among the rows that no other row has
        backs = [self.term.bg(y, 40) for y in range(first, last + 1)]
        lone = [i for i, b in enumerate(backs) if backs.count(b) == 1]
        cursor = first + lone[0] if len(lone) == 1 and last > first else -1
        return first, last, lines[head].index("Stage"), ev.end(), cursor

    def rows(self) -> list[str]:
        t = self.table()
        return self.term.lines()[t[0] : t[1] + 1] if t else []

    def cursor(self) -> tuple[int, list[str]] | None:
        t = self.table()
        if t is None or t[4] < 0:
            return None
        return t[4] - t[0], self.term.lines()[t[0] : t[1] + 1]

    def cell(self, line: str) -> tuple[str | None, Decimal | None]:
        """A row's stage and EV."""
        t = self.table()
        if t is None:
            return None, None
        stage = next((s for s in self.stages if line[t[2] :].startswith(s)), None)
        before = line[: t[3]].split()
        return stage, money(before[-1]) if before else None


def moved(before: tuple[int, list[str]], step: int, now: tuple[int, list[str]] | None) -> bool:
    """Whether the screen shows the cursor one row down (step 1) or up (-1) from `before`: on the
    next row in place, or with the rows scrolled under it (at the edge of the view the next row
    comes into sight as the rows move)."""
    if now is None:
        return False
    (y0, rows0), (y1, rows1) = before, now
    want = y0 + step
    if len(rows1) != len(rows0) or not -1 <= want <= len(rows0):
        return False
    if 0 <= want < len(rows0) and rows1[y1] != rows0[want]:
        return False
    if rows1 == rows0:
        return y1 == want
    shift = want - y1  # the rows scrolled by this many lines
    if shift == 0:
        return False
    return rows1[: len(rows1) - shift] == rows0[shift:] if shift > 0 else rows1[-shift:] == rows0[: len(rows0) + shift]


# ---------------------------------------------------------------- measuring


def env_for(db: str) -> list[str]:
    return [EVPIPE, "--db", db]


def ladder(db: str) -> list[tuple[str, str]]:
    """(name, kind) of the stages in ladder order, from the database file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return list(conn.execute("SELECT name, kind FROM stage WHERE NOT archived ORDER BY position"))


def matches(db: str, texts: list[str]) -> dict[str, int]:
    """The filter's answer, read from the database apart from the app: open prospects whose name,
    company, contact or notes hold every word of the text, ignoring case."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        hay = [
            "\n".join((a or "", b or "", c or "", d or "")).casefold()
            for a, b, c, d in conn.execute(
                "SELECT p.name, p.company, p.contact_name, p.notes FROM prospect p JOIN stage s ON s.id = p.stage_id "
                "WHERE s.kind = 'open'"
            )
        ]
    out: dict[str, int] = {}
    for text in texts:
        words = text.casefold().split()
        hay = [h for h in hay if all(w in h for w in words)]  # each text extends the last
        out[text] = len(hay)
    return out


def startup(db: str, runs: int, stages: list[str]) -> dict[str, list[float]]:
    """Launch to first screen, alternating with the bare app; and to first key, to every row."""
    out: dict[str, list[float]] = {"bare": [], "start": [], "first_key": [], "all_rows": [], "peak": []}
    for _ in range(runs):
        term = Term([sys.executable, str(Path(__file__).resolve()), "--bare"])
        t = term.wait(lambda term=term: "bare textual app" in term.text(), 30)
        if t is not None:
            out["bare"].append(t - term.started)
        term.close(quit_key=None)

        term = Term(env_for(db))
        view = Pipeline(term, stages)
        t = term.wait(view.first_screen, 120)
        if t is not None:
            out["start"].append(t - term.started)
            before = view.cursor()
            if before is not None:
                term.key(DOWN)
                t = term.wait(lambda before=before, view=view: moved(before, 1, view.cursor()), 60)
                if t is not None:
                    out["first_key"].append(t - term.started)
            if not out["all_rows"]:  # once: at a million rows it takes a while
                t = term.wait(view.loaded, 300)
                if t is not None:
                    out["all_rows"].append(t - term.started)
        out["peak"].append(term.peak_kib() / 1024)
        term.close()
    return out


def keys(db: str, n: int, stages: list[tuple[str, str]], with_filter: bool = True) -> dict:
    """One app: cursor keys, stage keys, filter keystrokes. Times in seconds; misses counted."""
    names = [s for s, _ in stages]
    nxt = {a: b for (a, ka), (b, kb) in zip(stages, stages[1:]) if ka == "open" and kb == "open"}
    out: dict = {"cursor": [], "advance": [], "saved": [], "filter": [], "filter_keys": [], "wrong": 0, "lost": 0}
    probe = Path(tempfile.mkdtemp(prefix="evpipe-probe-")) / "pauses"
    probe.touch()
    # the same command line as `evpipe`, with a probe timing the event loop's pauses (loop_probe.py)
    term = Term(
        [sys.executable, str(ROOT / "benchmarks" / "loop_probe.py"), "--db", db], env={"EVPIPE_LOOP_PROBE": str(probe)}
    )
    view = Pipeline(term, names)
    shown = term.wait(view.first_screen, 120) is not None
    # keys as the rows load (a million: some seconds after the first screen): the cursor down and
    # up again, a key every tenth of a second; the loop's pauses meanwhile are a figure of their own
    loading = time.perf_counter()
    out["loading_keys"] = 0
    while shown and not view.loaded() and time.perf_counter() - loading < 600:
        term.key(DOWN if out["loading_keys"] % 2 == 0 else UP)
        out["loading_keys"] += 1
        term.settle(0.1, 0.5)
    loaded = time.perf_counter()
    if not shown or term.wait(view.loaded, 600) is None:
        print(f"the app did not show its whole pipeline; the screen was:\n{term.text()}", flush=True)
        out["lost"] += 1
        n, with_filter = 0, False  # no keys: every figure below reads "no frame", missed
    term.settle(0.5, 10)
    began = time.perf_counter()

    # cursor: down a page and a half (scrolling), then back up
    step, run = 1, 0
    for _ in range(n):
        before = view.cursor()
        if before is None:
            out["lost"] += 1
            term.settle()
            continue
        if before[0] + step < 0:
            step = 1
        t0 = term.key(DOWN if step > 0 else UP)
        t = term.wait(lambda before=before, step=step: moved(before, step, view.cursor()), 5)
        if t is None:
            out["lost"] += 1
        else:
            out["cursor"].append(t - t0)
        term.settle(0.03)
        run += 1
        if run == 25:
            step, run = -step, 0

    # stage key: the row under the cursor to the next open stage
    tries = 0
    while len(out["advance"]) < n and tries < 4 * n:
        tries += 1
        cur = view.cursor()
        if cur is None:
            out["lost"] += 1
            term.key(DOWN)
            term.settle()
            continue
        stage, row_ev = view.cell(cur[1][cur[0]])
        ev = view.header_ev()
        if stage not in nxt or row_ev is None or ev is None:
            term.key(DOWN)
            term.wait(lambda cur=cur: moved(cur, 1, view.cursor()), 5)
            term.settle(0.03)
            continue
        want = nxt[stage]
        y = cur[0]

        def shown(y=y, want=want, ev=ev) -> bool:
            rows = view.rows()
            return y < len(rows) and view.cell(rows[y])[0] == want and view.header_ev() not in (None, ev)

        t0 = term.key(b">")
        t = term.wait(shown, 5)
        if t is None:
            out["lost"] += 1
            term.key(b"\x1b")  # whatever opened, close it
            term.settle(0.2)
            continue
        out["advance"].append(t - t0)
        new_ev, new_row_ev = view.header_ev(), view.cell(view.rows()[y])[1]
        if new_ev is None or new_row_ev is None or not same_move(new_ev - ev, new_row_ev - row_ev, ev, new_ev):
            out["wrong"] += 1
        # the save's notice over the tab bar; a click dismisses it so the next one cannot hide the header
        t = term.wait(lambda: "->" in term.lines()[0], 10)
        if t is not None:
            out["saved"].append(t - t0)
            term.key(b"\x1b[<0;40;1M\x1b[<0;40;1m")
            term.wait(lambda: "->" not in term.lines()[0] and "Pipeline" in term.lines()[0], 10)
        term.settle(0.03)
        here = view.cursor()
        term.key(DOWN)
        term.wait(lambda here=here: here is not None and moved(here, 1, view.cursor()), 5)
        term.settle(0.03)

    if with_filter:
        text = "harbour christmas"
        prefixes = [text[: i + 1] for i in range(len(text)) if text[i] != " "]
        want = matches(db, [p.strip() for p in prefixes])
        term.key(b"/")
        term.wait(lambda: any(line.strip() == "/ Filter" or "/ Filter" in line for line in term.lines()[-2:]), 5)
        term.settle(0.2)
        typed = ""
        for ch in text:
            typed += ch
            if ch == " ":
                term.key(b" ")
                term.settle(0.1)
                continue
            expect = want[typed.strip()]

            def painted(typed=typed, expect=expect) -> bool:
                lines = term.lines()
                return view.count() == expect and any(line.strip() == typed.strip() for line in lines[-5:])

            t0 = term.key(ch.encode())
            t = term.wait(painted, 10)
            if t is None:
                out["lost"] += 1
            else:
                out["filter"].append(t - t0)
                out["filter_keys"].append(typed)
            term.settle(0.03)
        out["matches"] = want[text]
    ended = time.perf_counter()
    if with_filter:
        term.key(b"\x1b")
        term.settle(0.2)
    out["peak"] = term.peak_kib() / 1024
    term.close()
    pauses = [line.split() for line in probe.read_text().splitlines() if line.strip()]
    out["pause"] = max((float(took) for start, took in pauses if began <= float(start) <= ended), default=0.0)
    out["loading_pause"] = max(
        (float(took) for start, took in pauses if loading <= float(start) <= loaded), default=0.0
    )
    shutil.rmtree(probe.parent, ignore_errors=True)
    return out


# ---------------------------------------------------------------- the report


def targets(size: int) -> dict[str, float]:
    big = size >= 1_000_000
    return {
        "start": 2.5 if big else 2.0,
        "filter_p50": 60 if big else 30,
        "filter_max": float("inf") if big else 50,
        "peak": 200 if big else 100,
    }


def report_floor(keys: list[float], bench: str = "app") -> None:
    """The bare one-widget app's key to frame: the floor the figures below stand on."""
    if keys:
        figure(
            f"bare Textual app: key to frame, p50 / p90 (n={len(keys)})",
            f"{statistics.median(keys) * 1000:.1f} / {pct(keys, 90) * 1000:.1f} ms",
            bench=bench,
        )
    else:
        figure("bare Textual app: key to frame", "no frame", bench=bench)


def report(size: int, s: dict[str, list[float]], k: dict, bench: str = "app") -> int:
    """Print the figures against the targets; the number missed."""
    target = targets(size)
    missed = 0

    def check(label: str, value: str, tgt: str, ok: bool) -> None:
        nonlocal missed
        figure(label, value, tgt, ok, bench=bench)
        missed += not ok

    ms = lambda v: v * 1000  # noqa: E731
    if s["start"] and s["bare"]:
        bare_ms, start_ms = ms(statistics.median(s["bare"])), ms(statistics.median(s["start"]))
        ratio = start_ms / bare_ms
        check(
            f"start to first screen (bare {bare_ms:.0f} ms, n={len(s['start'])})",
            f"{start_ms:.0f} ms {ratio:.2f}x",
            f"<= {target['start']}x bare",
            ratio <= target["start"],
        )
    else:
        check("start to first screen", "no screen", f"<= {target['start']}x bare", False)
    if s["first_key"]:
        figure("  start to first key answered", f"{ms(statistics.median(s['first_key'])):.0f} ms", bench=bench)
    if s["all_rows"]:
        figure("  start to every row loaded", f"{ms(statistics.median(s['all_rows'])):.0f} ms", bench=bench)
    adv = k["advance"]
    if adv:
        check(
            f"stage key to frame, p50 (n={len(adv)})",
            f"{ms(statistics.median(adv)):.1f} ms",
            "<= 4 ms",
            ms(statistics.median(adv)) <= 4,
        )
        check("stage key to frame, p90", f"{ms(pct(adv, 90)):.1f} ms", "<= 8 ms", ms(pct(adv, 90)) <= 8)
    else:
        check("stage key to frame", "no frame", "<= 4 ms", False)
    if k["saved"]:
        figure("  stage key to the save's notice, p50", f"{ms(statistics.median(k['saved'])):.0f} ms", bench=bench)
    check("header's EV move equal to the row's", f"{k['wrong']} wrong", "0", k["wrong"] == 0)
    cur = k["cursor"]
    if cur:
        check(
            f"cursor key to frame, p50 (n={len(cur)})",
            f"{ms(statistics.median(cur)):.1f} ms",
            "<= 3 ms",
            ms(statistics.median(cur)) <= 3,
        )
        figure("  cursor key to frame, p90 / max", f"{ms(pct(cur, 90)):.1f} / {ms(max(cur)):.1f} ms", bench=bench)
    else:
        check("cursor key to frame", "no frame", "<= 3 ms", False)
    flt = k["filter"]
    if flt:
        p50, top = ms(statistics.median(flt)), ms(max(flt))
        check(
            f"filter key to results + count, p50 (n={len(flt)})",
            f"{p50:.1f} ms",
            f"<= {target['filter_p50']} ms",
            p50 <= target["filter_p50"],
        )
        slowest = k["filter_keys"][max(range(len(flt)), key=flt.__getitem__)]
        if target["filter_max"] != float("inf"):
            check(
                f"filter key to results + count, max ({slowest!r})",
                f"{top:.1f} ms",
                f"<= {target['filter_max']:.0f} ms",
                top <= target["filter_max"],
            )
        else:
            figure(f"  filter key to results + count, max ({slowest!r})", f"{top:.1f} ms", bench=bench)
        figure("  'harbour christmas' matches", f"{k['matches']:,}", bench=bench)
    pause = ms(k["pause"])
    check("longest pause of the event loop while keys pressed", f"{pause:.1f} ms", "<= 20 ms", pause <= 20)
    if k["loading_keys"]:
        pause = ms(k["loading_pause"])
        check(f"  the same as the rows load ({k['loading_keys']} keys)", f"{pause:.1f} ms", "<= 20 ms", pause <= 20)
    else:
        figure("  the same as the rows load", "loaded at once", bench=bench)
    peak = max([k["peak"], *s["peak"]])
    check("peak memory of the app (VmHWM)", f"{peak:.0f} MiB", f"<= {target['peak']} MiB", peak <= target["peak"])
    check("keys whose frame never came (5 s)", f"{k['lost']}", "0", k["lost"] == 0)
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="prospects (10000, 100000, 1000000)")
    parser.add_argument("--keys", type=int, default=40, help="cursor keys and stage keys each")
    parser.add_argument("--runs", type=int, default=5, help="launches of each app for the start (median)")
    parser.add_argument("--build", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare-keys", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help="only the bare app's key to frame (the floor)")
    args = parser.parse_args()
    if args.bare:
        return bare()
    if args.bare_keys:
        return bare_keys()
    if args.build:
        build(Path(args.build), args.size)
        return None
    load = os.getloadavg()
    print(
        f"evpipe app speed in a pseudo-terminal (80x24) · {args.size:,} prospects · python {sys.version.split()[0]} · "
        f"{os.cpu_count()} cpus · load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    bare_cursor = floor(args.keys)
    if args.floor:
        report_floor(bare_cursor)
        return None
    db = pipeline(args.size)
    try:
        stages = ladder(str(db))
        s = startup(str(db), args.runs, [n for n, _ in stages])
        k = keys(str(db), args.keys, stages)
    finally:
        discard(db)
    report_floor(bare_cursor)
    missed = report(args.size, s, k)
    print(f"{'all targets met' if not missed else f'{missed} target(s) missed'}")


if __name__ == "__main__":
    main()
