"""Loading the data in seeds/: the default ladder, and the demo pipeline (dates relative to today)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from . import clock
from .db import writer
from .errors import DomainError
from .locations import seeds_dir
from .tables import Activity, ChangeEvent, Prospect, Stage, StageChange
from .values import clean_text, month_add, parse_probability


def _seed_file(name: str) -> dict[str, Any]:
    return json.loads((seeds_dir() / name).read_text(encoding="utf-8"))


def default_ladder() -> list[dict[str, Any]]:
    return _seed_file("ladder.json")["stages"]


def install_ladder(engine: Engine, stages: list[dict[str, Any]] | None = None) -> None:
    """Write a ladder into an empty database (no stages yet)."""
    stages = stages if stages is not None else default_ladder()
    kinds = [s.get("kind", "open") for s in stages]
    if kinds.count("won") != 1 or kinds.count("lost") != 1 or "open" not in kinds:
        raise DomainError("ladder: needs open stages, exactly one won stage and one lost stage")
    with Session(engine) as s:  # a read first: opening a database with a ladder never takes the lock
        if s.scalar(select(col(Stage.id)).limit(1)) is not None:
            return
    with Session(writer(engine)) as s, s.begin():
        if s.scalar(select(col(Stage.id)).limit(1)) is not None:
            return
        for position, spec in enumerate(stages, start=1):
            s.add(
                Stage(
                    name=clean_text(spec["name"], field="stage name", max_len=80, required=True),
                    position=position,
                    probability_bp=parse_probability(spec["probability"]),
                    kind=spec.get("kind", "open"),
                    stale_days=int(spec.get("stale_days", 14)),
                )
            )


def load_demo(engine: Engine, *, who: str = "demo") -> int:
    """Load the demo pipeline into `engine` through the store, so that its history (stage changes,
    the journal) is exactly what a rep would have produced. Returns the number of prospects."""
    from .store import Store

    data = _seed_file("demo.json")
    now = clock.now()
    today = now.date()
    this_month = today.strftime("%Y-%m")

    def at(days_ago: int, hour: int = 10) -> datetime:
        moment = datetime.combine(today - timedelta(days=int(days_ago)), time(hour, 0))
        return min(moment, now)

    # Replay everything in time order, so the journal reads as the rep's ten weeks did.
    steps: list[tuple[datetime, int, str, dict[str, Any]]] = []
    for i, spec in enumerate(data["prospects"]):
        history = spec["history"]
        steps.append((at(history[0]["days_ago"], 9), i, "create", spec))
        for step in history[1:]:
            steps.append((at(step["days_ago"], 11), i, "move", step))
        for act in spec.get("activities", []):
            steps.append((at(act["days_ago"], 10), i, "activity", act))
    steps.sort(key=lambda t: (t[0], t[1]))

    stores: dict[str, Store] = {}
    ids: dict[int, int] = {}
    for moment, i, what, item in steps:
        spec = data["prospects"][i]
        owner = spec.get("owner") or who
        store = stores.setdefault(owner, Store(engine, who=owner))
        if what == "create":
            follow = spec.get("follow_up_days")
            result = store.add(
                spec["name"],
                spec["value"],
                spec["history"][0]["stage"],
                month=month_add(this_month, int(spec["month_offset"])),
                company=spec.get("company", ""),
                contact_name=spec.get("contact_name", ""),
                email=spec.get("email", ""),
                phone=spec.get("phone", ""),
                notes=spec.get("notes", ""),
                custom=spec.get("custom") or {},
                owner=owner,
                follow_up=None if follow is None else today + timedelta(days=int(follow)),
                at=moment,
            )
            assert result.prospect is not None  # an add always returns the prospect it added
            ids[i] = result.prospect.id
        elif what == "move":
            reason = spec.get("lost_reason") if item["stage"] == "Lost" else None
            store.move(ids[i], item["stage"], reason=reason, at=moment)
        else:
            store.log_activity(ids[i], item["kind"], item["text"], when=moment, at=moment)
    return len(ids)


def demo_is_loaded(engine: Engine) -> bool:
    with Session(engine) as s:
        return s.scalar(select(col(Prospect.id)).limit(1)) is not None


def refuse_unless_unused(engine: Engine, what: str) -> None:
    """Raise unless the database holds nothing anyone made: no prospect (deleted ones included),
    contact point, stage change or journal entry (an edited ladder is journalled). Loading the
    demo pipeline is allowed only then, so it never mixes with a rep's data."""
    with Session(engine) as s:
        if s.scalar(select(col(Prospect.id)).limit(1)) is not None:
            raise DomainError(f"{what}: this database has prospects already; seed an empty one (--db NEW.db)")
        history = (
            select(col(Activity.id)).limit(1),
            select(col(StageChange.id)).limit(1),
            select(col(ChangeEvent.id)).limit(1),
        )
        if any(s.scalar(query) is not None for query in history):
            raise DomainError(
                f"{what}: this database has a history of changes already (an edited ladder, say); "
                "seed an empty one (--db NEW.db)"
            )
