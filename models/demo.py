"""The demo database: the demo pipeline from seeds/ in a database of its own, rebuilt fresh on
request, and never written over a database that holds data the demo did not put there.

A demo database carries a mark (the `demo` setting): `building` while the demo loads, then
`built:N`, N being the journal's last entry once loaded. Only a marked database is ever rebuilt;
a path given with `--db` is rebuilt only while nobody has changed it since (its journal still ends
at N). The demo's own file in the data directory is the demo's sandbox: it is rebuilt each time,
whatever was tried in it.

The demo database holds about 15 months of history for the founding ferry business (`load_history`): the
pipeline of ten weeks from seeds/demo.json, and before it a generated past of charters expected in
each of the 15 months before last, as many as the season brings (a summer peak in December to
February, a lean winter in June to August), each created weeks ahead, moved up the ladder at a
stage's own pace and won or lost, with a contact point now and then. It is made from a fixed seed
(the same every time) and written through the journal's bulk writer (models/journal.py, the
importer's), so that the KPI history rebuilt from it (`history.backfill`) is consistent with it:
every figure of issue 16 (the trend against last year, the pace of each stage, the frozen bands)
shows something real on `make run`.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session, col

from . import clock, history, open_db
from .db import writer
from .errors import DomainError
from .journal import BulkJournal, created_summary, delta, move_category, move_summary, restage, restay
from .ladder import LOST, OPEN, WON, kpi_part
from .locations import NoDatabase, check_database, sqlite_path
from .seed import demo_is_loaded, load_demo, refuse_unless_unused
from .settings import set_setting
from .snapshot_deltas import forget_day
from .tables import Activity, ChangeEvent, Prospect, Stage, StageChange, pk
from .values import month_add

#: The setting that marks a database as the demo's own (so that a fresh build may delete it).
DEMO_MARKER = "demo"
BUILDING = "building"
BUILT = "built:"


def seed_demo(engine: Engine) -> int:
    """Load the demo pipeline into a database nobody has used yet (refusing one with prospects or
    a history of changes) and give its history KPI snapshots; the number of prospects."""
    refuse_unless_unused(engine, "seed")
    count = load_demo(engine)
    _snapshots(engine)
    return count


def _snapshots(engine: Engine) -> None:
    """Freshly loaded history gets its weekly KPI snapshots, and one for now."""
    history.backfill(engine)
    history.record_snapshot(engine)


def _last_change(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.max(col(ChangeEvent.id)))) or 0)


def _may_replace(url: str, path: Path, *, own: bool, fresh: bool) -> None:
    """Raise unless the existing file at `path` is a demo database the demo may rebuild (`fresh`)
    or reopen. Reads it without changing it."""
    try:
        look = check_database(url)
    except NoDatabase:
        look = None  # an empty file is nobody's demo either
    mark = look.settings.get(DEMO_MARKER) if look is not None else None
    if mark is None:
        raise DomainError(
            f"{path} is not a demo database; the demo opens only in a new file or in one it built itself "
            "(plain `evpipe demo` uses its own), so nothing was changed"
        )
    if own or not fresh or mark == BUILDING:
        return
    built = int(mark[len(BUILT) :]) if mark.startswith(BUILT) and mark[len(BUILT) :].isdigit() else -1
    if built < 0 or look is None or look.last_change > built:
        raise DomainError(
            f"{path} is a demo database with changes made in it since it was built; the demo will not "
            "rebuild over them: reopen it as it is with `evpipe demo --keep`, or delete the file yourself"
        )


def build_demo(url: str, *, fresh: bool = True, own: bool = False) -> None:
    """Make the database at `url` a demo database, refusing any file that is not one. `fresh`:
    delete a demo database there first, then load the demo pipeline; else reopen it as it is
    (loading the demo if it is not there yet). `own`: `url` is the demo's own file, rebuilt even
    after changes made in it; else a path given by the user, rebuilt only while unchanged."""
    path = sqlite_path(url)
    if path is None:
        raise DomainError("the demo needs a database file: give --db a path, not a URL")
    if path.exists():
        _may_replace(url, path, own=own, fresh=fresh)
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    engine = open_db(url)
    try:
        if not demo_is_loaded(engine):
            set_setting(engine, DEMO_MARKER, BUILDING)  # first, so that an interrupted build is still the demo's
            load_demo(engine)
            load_history(engine)
            _snapshots(engine)
            set_setting(engine, DEMO_MARKER, f"{BUILT}{_last_change(engine)}")
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the generated past

#: Months of generated history, up to the month before last (the ten weeks of seeds/demo.json follow).
HISTORY_MONTHS = 15
#: How busy each expected month is (NZ: summer from December, winter from June), prospects per month.
SEASON = {1: 42, 2: 36, 3: 27, 4: 18, 5: 12, 6: 8, 7: 8, 8: 9, 9: 15, 10: 22, 11: 30, 12: 42}
#: Days a prospect usually stays on each open rung, and the chance it is lost there (so that the
#: default ladder's probabilities fit what happened: 5% of Suspects are won, 80% of Deposits paid).
PACE = (10, 9, 7, 12, 18)
LOSS = (0.5, 0.6, 0.5, 0.375, 0.2)
_SEED = 16
_OCCASIONS = (
    "Christmas party",
    "staff outing",
    "wedding",
    "client evening",
    "school trip",
    "birthday cruise",
    "sunset cruise",
    "conference transfer",
    "product launch",
    "farewell cruise",
    "team day",
    "reunion",
)
_HOSTS = (
    "Aotea Accounting",
    "Brightwater Dental",
    "Coromandel Growers",
    "Devonport Rotary",
    "Eastside Motors",
    "Fernleaf Architects",
    "Gulf Harbour Marina",
    "Harbour City Tennis",
    "Island Bay Yoga",
    "Jellicoe Partners",
    "Kowhai Kindergarten",
    "Lighthouse Realty",
    "Manukau Rugby Club",
    "Northcote Library",
    "Onepoto Rowing",
    "Ponsonby Bakers",
    "Quay Street Legal",
    "Rangitoto College",
    "Southern Cross Tours",
    "Tui Ridge Vineyard",
    "Upland Engineering",
    "Viaduct Events",
)
_VALUES = (2400, 3200, 4500, 5800, 7200, 8500, 9800, 12000, 14500, 18000, 22000, 26000, 32000)
_OWNERS = ("sam", "mere", "priya")
_NOTES = ("Called about numbers", "Sent the brochure", "Talked menus", "Checked the tide times", "Emailed a quote")
_LOST = ("Went with a cheaper operator", "Event cancelled", "Chose a venue on land", "No reply after the quote")


def load_history(engine: Engine, *, seed: int = _SEED) -> int:
    """Write the generated past (module docstring) in one transaction; the number of prospects."""
    rng = random.Random(seed)
    now = clock.now()
    this_month = now.strftime("%Y-%m")
    with engine.connect() as conn:
        stages = [
            (int(i), str(n), str(k), int(bp), int(pos))
            for i, n, k, bp, pos in conn.execute(
                select(pk(Stage.id), col(Stage.name), col(Stage.kind), col(Stage.probability_bp), col(Stage.position))
                .where(col(Stage.archived).is_(False))
                .order_by(col(Stage.position))
            )
        ]
        next_event = int(conn.scalar(select(func.max(col(ChangeEvent.id)))) or 0) + 1
        next_change = int(conn.scalar(select(func.max(col(StageChange.id)))) or 0) + 1
        next_prospect = int(conn.scalar(select(func.max(col(Prospect.id)))) or 0) + 1
    rungs = [s for s in stages if s[2] == OPEN]
    won = next(s for s in stages if s[2] == WON)
    lost = next(s for s in stages if s[2] == LOST)
    journal = BulkJournal("demo", next_event, next_change)
    prospects: list[dict] = []
    activities: list[dict] = []
    latest = now - timedelta(days=1)
    for offset in range(-HISTORY_MONTHS, -1):
        month = month_add(this_month, offset)
        first = date(int(month[:4]), int(month[5:]), 1)
        for k in range(SEASON[first.month]):
            pid = next_prospect + len(prospects)
            name = f"{rng.choice(_HOSTS)} {rng.choice(_OCCASIONS)}"
            value = rng.choice(_VALUES) * 100
            owner = _OWNERS[(k + first.month) % len(_OWNERS)]
            t = datetime.combine(first - timedelta(days=rng.randint(5, 70)), datetime.min.time()).replace(hour=9)
            rung = rng.choices((0, 1, 2), weights=(3, 5, 2))[0]
            stage = rungs[min(rung, len(rungs) - 1)]
            part = kpi_part(value, stage[2], stage[3])
            eid = journal.event(
                at=t,
                category="new",
                prospect_id=pid,
                stage_id=stage[0],
                d=part,
                summary=created_summary(name, "added", stage[1], value, part[2]),
                payload={"demo": "history"},
            )
            journal.stage_change(
                prospect_id=pid,
                at=t,
                from_stage_id=None,
                to_stage_id=stage[0],
                value_cents=value,
                from_probability_bp=None,
                to_probability_bp=stage[3],
                reason=None,
                event_id=eid,
            )
            created, moves, lost_reason = t, 0, None
            while True:
                pace = PACE[min(rung, len(PACE) - 1)]
                stay = timedelta(days=max(1, round(pace * rng.uniform(0.35, 2.0))), hours=rng.randint(0, 6))
                if rng.random() < 0.6 and t + stay / 2 < latest:
                    touch = t + stay / 2
                    activities.append(
                        dict(
                            prospect_id=pid,
                            occurred_at=touch,
                            kind=rng.choice(("call", "email", "meeting")),
                            text=rng.choice(_NOTES),
                            who=owner,
                            created_at=touch,
                        )
                    )
                t = min(t + stay, latest + timedelta(minutes=moves))
                if rng.random() < LOSS[min(rung, len(LOSS) - 1)]:
                    to = lost
                    lost_reason = rng.choice(_LOST)
                elif rung + 1 >= len(rungs):
                    to = won
                else:
                    to = rungs[rung + 1]
                after = kpi_part(value, to[2], to[3])
                d = delta(part, after)
                eid = journal.event(
                    at=t,
                    category=move_category(stage[2], stage[4], to[2], to[4]),
                    prospect_id=pid,
                    stage_id=to[0],
                    d=d,
                    summary=move_summary(name, stage[1], to[1], d[2]),
                    payload={"from": stage[0], "to": to[0], "demo": "history"},
                )
                journal.stage_change(
                    prospect_id=pid,
                    at=t,
                    from_stage_id=stage[0],
                    to_stage_id=to[0],
                    value_cents=value,
                    from_probability_bp=stage[3],
                    to_probability_bp=to[3],
                    reason=lost_reason,
                    event_id=eid,
                )
                moves += 1
                stage, part = to, after
                if to[2] != OPEN:
                    break
                rung += 1
            prospects.append(
                dict(
                    id=pid,
                    name=name,
                    company=name,
                    value_cents=value,
                    stage_id=stage[0],
                    expected_month=month,
                    owner=owner,
                    created_at=created,
                    updated_at=t,
                    last_touch_at=t,
                    stage_entered_at=journal.latest[pid][0],
                    closed_on=t.date(),
                    lost_reason=lost_reason,
                    custom_json=json.dumps({"Source": "Past season"}),
                    version=1 + moves,
                )
            )
    with writer(engine).begin() as conn:
        forget_day(conn, clock.now().date())  # today's KPI reading, if any, is counted again (kpi.current_kpis)
        conn.execute(insert(Prospect), prospects)
        conn.execute(insert(ChangeEvent), journal.events)
        conn.execute(insert(StageChange), journal.changes)
        restay(conn, journal.out_of_order)
        if activities:
            conn.execute(insert(Activity), activities)
            restage(conn)  # the stage each happened on
    return len(prospects)
