"""Planning an import: the file's side (models/import_sheet.py), then what the database says:
the ladder it maps onto, and what an earlier import of the same source stored (new, updated,
unchanged). Writes nothing."""

from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlmodel import col as sql_col  # `col` is this module's word for a sheet column

from . import clock
from .import_fields import KEPT_FOLLOWS_FILE
from .import_ladder import compare_ladder
from .import_read import Progress
from .import_sheet import LadderRow, SheetPlan, ladder_rows, plan_sheet
from .import_types import ImportOptions, ImportPlan, Record, gc_paused
from .ladder import OPEN
from .tables import Prospect


@gc_paused
def plan_import(
    engine: Engine,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    who: str = "",
    progress: Progress | None = None,
    today: date | None = None,
    ahead: SheetPlan | None = None,
) -> ImportPlan:
    """Read `path` and work out what importing it would do. Writes nothing. `ahead`: the file's
    side read already (tui/cli/import_ahead.py, with these options), taken when it was read with
    the ladder, user and day this plan has; else the file is read here."""
    options = options or ImportOptions()
    path = Path(path)
    today = today or clock.today()
    with engine.connect() as conn:
        stages = ladder_rows(conn)
    if ahead is not None and (ahead.stages, ahead.who, ahead.today) == (stages, who, today):
        sheet = ahead
    else:
        sheet = plan_sheet(path, options, stages, who=who, today=today, progress=progress)
    plan = sheet.plan
    _compare_existing(engine, plan, stages)
    _value_counts(plan)
    with engine.connect() as conn:
        plan.ladder_check = compare_ladder(conn, plan, sheet.rungs, sheet.rungs_from)
    if options.adopt_ladder and (plan.ladder_check is None or not plan.ladder_check.differences):
        plan.warnings.append(
            "--adopt-ladder: the file's ladder is the same as this one (or it carries none); nothing to adopt"
        )
    if progress is not None:
        progress("check", plan.rows_read, plan.rows_read)
    return plan


def _value_counts(plan: ImportPlan) -> None:
    """How the rows are valued, once the rows imported before hold their stored value."""
    records = plan.records
    plan.valued_from_lookup = sum(1 for r in records if r.value_from == "lookup")
    plan.needs_review_count = sum(1 for r in records if r.needs_review)
    unknown_values = sum(1 for r in records if r.value_from == "unknown")
    if unknown_values:
        plan.warnings.append(
            f"{unknown_values} rows have no value; they import at 0 flagged for review "
            "(or value them from a lookup file with --values)"
        )
    stored = sum(1 for r in records if r.value_from == "stored")
    if stored:
        plan.warnings.append(
            f"{stored} rows imported before have no value in the file; they keep the value stored in evpipe"
        )


_COMPARED = (
    "name",
    "company",
    "contact_name",
    "email",
    "phone",
    "notes",
    "owner",
    "expected_month",
    "next_follow_up",
    "follow_up_time",
    "follow_up_note",
    "lost_reason",
    "needs_review",
)
_FIELD_OF = {
    "name": "name",
    "company": "company",
    "contact_name": "contact_name",
    "email": "email",
    "phone": "phone",
    "notes": "notes",
    "owner": "owner",
    "expected_month": "expected_month",
    "next_follow_up": "follow_up",
    "follow_up_time": "follow_up_time",
    "follow_up_note": "follow_up_note",
    "lost_reason": "lost_reason",
    "needs_review": "needs_review",
}


def _compare_existing(engine: Engine, plan: ImportPlan, stages: list[LadderRow]) -> None:
    """New, updated and unchanged rows, against what an earlier import of the source stored;
    `stages`: the ladder the plan was made on (`ladder_rows`, read once for the plan)."""
    with engine.connect() as conn:
        existing = existing_rows(conn, plan.source)
    keys = {r.key for r in plan.records}
    plan.missing_from_file = sum(1 for k, row in existing.items() if k not in keys and row["deleted_at"] is None)
    stage_ids: dict[str, int | None] = {name.casefold(): None for name, *_ in plan.ladder}
    for sid, name, *_ in stages:
        stage_ids[name.casefold()] = sid
    kinds = {name.casefold(): kind for name, kind, *_ in plan.ladder}
    new_closed = 0
    for r in plan.records:
        old = existing.get(r.key)
        if old is None:
            plan.new_count += 1
            if kinds[r.stage] != OPEN:
                new_closed += 1
            continue
        if old["deleted_at"] is not None:
            plan.deleted_skipped += 1
            continue
        if r.value_from == "unknown":
            # no value in the file: the value stored in evpipe stays, and its flag (`changes`); the
            # record holds them, so that the preview shows what the commit leaves
            r.value_cents, r.needs_review, r.value_from = old["value_cents"], old["needs_review"], "stored"
        if changes(plan, r, old, stage_ids.get(r.stage) or -1):
            plan.update_count += 1
        else:
            plan.unchanged_count += 1
    if new_closed and plan.closed_from_inferred:
        plan.warnings.append(
            f"{new_closed} won and lost rows do not say which stage they closed from; they go on "
            f"{plan.closed_from} until their close date (for the KPI history), marked as a guess, and "
            "sighting in does not learn from them; if they all closed from one stage, say which with "
            "--closed-from STAGE"
        )
    if plan.deleted_skipped:
        plan.warnings.append(
            f"{plan.deleted_skipped} rows match prospects deleted in evpipe since the last import; they stay deleted"
        )
    if plan.missing_from_file:
        plan.warnings.append(
            f"{plan.missing_from_file} prospects imported from {plan.source} before are not in "
            "this file; they are left as they are"
        )


def existing_rows(conn: Connection, source: str) -> dict[str, dict[str, Any]]:
    """The prospects an earlier import of `source` stored, by stable key."""
    cols = [
        sql_col(Prospect.id),
        sql_col(Prospect.external_key),
        sql_col(Prospect.stage_id),
        sql_col(Prospect.value_cents),
        sql_col(Prospect.deleted_at),
        sql_col(Prospect.custom_json),
        sql_col(Prospect.closed_on),
        sql_col(Prospect.version),
    ] + [getattr(Prospect, c) for c in _COMPARED]
    q = select(*cols).where(sql_col(Prospect.source) == source, sql_col(Prospect.external_key).is_not(None))
    result = conn.execute(q)
    names = list(result.keys())
    out = {}
    for row in result:
        d = dict(zip(names, row))
        out[d["external_key"]] = d
    return out


#: A follow-up's time and note, compared only with the follow-up they belong to.
_OF_FOLLOW_UP = ("follow_up_time", "follow_up_note")


@functools.lru_cache(maxsize=8)
def _compared(columns: tuple[tuple[str, str], ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """For a file's columns (header, field): the fields it maps and the prospect columns a
    re-import compares (in `_COMPARED`'s order; needs_review is left out again for a row of unknown
    value). Worked out once per import, not once per row."""
    mapped = frozenset(f for _, f in columns)
    compared = tuple(
        col
        for col in _COMPARED
        if (
            ("expected_month" in mapped or "close_date" in mapped)
            if col == "expected_month"
            else col in ("name", "needs_review")
            or (_FIELD_OF[col] in mapped and (col not in _OF_FOLLOW_UP or "follow_up" in mapped))
        )
    )
    return mapped, compared


def changes(plan: ImportPlan, r: Record, old: dict[str, Any], stage_id: int | None) -> dict[str, Any]:
    """The fields a re-import changes (only fields the file has), including 'value_cents',
    'custom_json', 'closed_on' and 'stage_id'."""
    mapped, compared = _compared(tuple(plan.columns))
    out: dict[str, Any] = {}
    for col in compared:
        if col == "needs_review" and r.value_unknown:
            continue  # an unknown value leaves the stored value, and its flag, alone
        new = getattr(r, col)
        if new != old[col]:
            out[col] = new
    if not r.value_unknown and r.value_cents != old["value_cents"]:
        out["value_cents"] = r.value_cents
    old_custom = json.loads(old["custom_json"] or "{}")
    custom = dict(old_custom)
    # a file's 0 replaced by a looked-up value is kept; a value from the file has none to keep
    kept_zero = [plan.kept_names["value"]] if "value" in plan.kept_names and r.value_from == "file" else []
    # a close date or lost reason kept on a row where evpipe does not store it goes when the file's does
    follows = [plan.kept_names[f] for f in KEPT_FOLLOWS_FILE if f in plan.kept_names]
    for name in dict.fromkeys([*plan.custom_columns, *r.custom, *kept_zero, *follows]):
        if name in r.custom:
            custom[name] = r.custom[name]
        else:
            custom.pop(name, None)
    if custom != old_custom:
        out["custom_json"] = json.dumps(custom, ensure_ascii=False, sort_keys=True)
    if "stage" in mapped and stage_id is not None and stage_id != old["stage_id"]:
        out["stage_id"] = stage_id
    if "close_date" in mapped and r.closed_on is not None and r.closed_on != old["closed_on"]:
        out["closed_on"] = r.closed_on
    return out
