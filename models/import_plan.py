"""Planning an import: read the file, map its columns and stages, read every row, compare with what
an earlier import of the same source stored. Writes nothing."""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlmodel import col as sql_col  # `col` is this module's word for a sheet column

from . import clock
from .errors import DomainError
from .import_cells import cell_text, detect_date_order
from .import_fields import (
    KEPT_FOLLOWS_FILE,
    KEPT_IN_FILE,
    LOST_WORDS,
    SINGLE,
    WON_WORDS,
    column_fields,
    in_file_name,
    name_key,
    numbered_name,
)
from .import_ladder import compare_ladder, file_ladder
from .import_read import Progress, SheetData, read_table
from .import_rows import Lookup, RowReader, load_lookup
from .import_types import (
    ImportOptions,
    ImportPlan,
    Problem,
    Record,
    StageMapping,
    gc_paused,
    record_values,
    shared,
)
from .ladder import LOST, OPEN, WON
from .store_prospects import MAX_CUSTOM_FIELDS
from .tables import Prospect, Stage, pk
from .values import clean_text, currency_of, parse_probability

#: A ladder stage as the importer sees it: (id, name, kind, probability bp, position).
LadderRow = tuple[int, str, str, int, int]
#: The ladder as the plan shows it: (name, kind, bp, new) in ladder order, after the stages to add.
PlanRung = tuple[str, str, int, bool]


def ladder_rows(conn: Connection) -> list[LadderRow]:
    q = (
        select(
            pk(Stage.id),
            sql_col(Stage.name),
            sql_col(Stage.kind),
            sql_col(Stage.probability_bp),
            sql_col(Stage.position),
        )
        .where(sql_col(Stage.archived) == False)  # noqa: E712 (SQL, not Python)
        .order_by(sql_col(Stage.position), sql_col(Stage.id))
    )
    return [(sid, name, kind, bp, position) for sid, name, kind, bp, position in conn.execute(q)]


def _parse_add_stages(
    specs: Iterable[tuple[str, str]], existing: set[str], warnings: list[str]
) -> list[tuple[str, int]]:
    """The stages to add. One on the ladder already (a second import with the same options) is
    not added again, with a warning."""
    out: list[tuple[str, int]] = []
    for name, percent in specs:
        clean = clean_text(name, field="--add-stage", max_len=80, required=True)
        bp = parse_probability(percent, field=f"--add-stage {clean}")
        if clean.casefold() in {n.casefold() for n, _ in out}:
            raise DomainError(f"--add-stage: {clean!r} is given twice", field="add_stage")
        if clean.casefold() in existing:
            warnings.append(f"stage {clean} is on the ladder already; it is not added again")
            continue
        out.append((clean, bp))
    return out


def _plan_ladder(engine: Engine, options: ImportOptions, warnings: list[str]) -> list[PlanRung]:
    """The ladder as it will be: the open stages, then the stages to add, then won and lost."""
    with engine.connect() as conn:
        rows = ladder_rows(conn)
    existing_names = {name.casefold() for _, name, _, _, _ in rows}
    added = _parse_add_stages(options.add_stages, existing_names, warnings)
    opens = [(name, kind, bp, False) for _, name, kind, bp, _ in rows if kind == OPEN]
    closed = [(name, kind, bp, False) for _, name, kind, bp, _ in rows if kind != OPEN]
    return opens + [(n, OPEN, bp, True) for n, bp in added] + closed


def _explicit_stages(options: ImportOptions, ladder: list[PlanRung]) -> dict[str, str]:
    """`--stage-map`: stage names in the file (casefolded) -> ladder stage names."""
    by_key = {name.casefold(): name for name, _, _, _ in ladder}
    explicit = {}
    for file_name, ladder_name in options.stage_map.items():
        target = by_key.get(ladder_name.strip().casefold())
        if target is None:
            raise DomainError(
                f"--stage-map: {ladder_name!r} is not on the ladder; the stages are "
                + ", ".join(n for n, _, _, _ in ladder),
                field="stage_map",
            )
        explicit[file_name.strip().casefold()] = target
    return explicit


def _map_stages(
    sheet: SheetData, col: int, explicit: dict[str, str], ladder: list[PlanRung], problems: list[Problem]
) -> tuple[dict[str, str | None], list[StageMapping]]:
    """Each stage name in the file (casefolded) -> the ladder stage it goes on (None: unknown)."""
    by_key = {name.casefold(): name for name, _, _, _ in ladder}
    won_stage = next((n for n, k, _, _ in ladder if k == WON), None)
    lost_stage = next((n for n, k, _, _ in ladder if k == LOST), None)
    seen: dict[str, list[int]] = defaultdict(list)
    spelt: dict[str, str] = {}
    texts: dict[tuple[type, Any], str] = {}  # each distinct cell's text, worked out once (a file has a few stages)
    for number, cells in sheet.rows:
        value = cells[col]
        cell = (type(value), value)
        text = texts.get(cell)
        if text is None:
            text = texts[cell] = re.sub(r"\s+", " ", cell_text(value))
        if text:
            seen[text.casefold()].append(number)
            spelt.setdefault(text.casefold(), text)
    stage_of: dict[str, str | None] = {}
    stage_maps: list[StageMapping] = []
    for key, rows in seen.items():
        shown = spelt[key]
        found: str | None
        if key in explicit:
            found, how = explicit[key], "--stage-map"
        elif key in by_key:
            found, how = by_key[key], "same name"
        elif name_key(key) in WON_WORDS and won_stage:
            found, how = won_stage, "won"
        elif name_key(key) in LOST_WORDS and lost_stage:
            found, how = lost_stage, "lost"
        else:
            found, how = None, "unknown"
            problems.append(
                Problem(
                    f"stage {shown!r} is not on the ladder; map it with --stage-map '{shown}=STAGE' "
                    f"or add it with --add-stage '{shown}=PERCENT'",
                    rows,
                    sheet.headers[col],
                )
            )
        stage_of[key] = found
        stage_maps.append(StageMapping(shown, found, how, len(rows)))
    return stage_of, stage_maps


def _date_order(
    sheet: SheetData, index: dict[str, int], options: ImportOptions, problems: list[Problem]
) -> tuple[str | None, str]:
    """Dates: day first or month first? (the order, how it was decided)."""
    date_cols = [index[f] for f in ("close_date", "created", "follow_up", "expected_month") if f in index]
    order = options.date_order
    order_how = "day first (you said so)" if order == "dmy" else "month first (you said so)" if order else ""
    if order is None:
        try:
            order, order_how = detect_date_order(cells[c] for _, cells in sheet.rows for c in date_cols)
        except DomainError as exc:
            problems.append(Problem(str(exc)))
            order, order_how = None, "inconsistent"
    if not date_cols:
        order_how = "no date columns"
    return order, order_how


def _lookup(options: ImportOptions, headers: list[str]) -> Lookup | None:
    """Values from a lookup file."""
    if options.values_file:
        return load_lookup(options, headers)
    if options.values_key or options.values_column:
        raise DomainError("--values-key and --values-column go with --values LOOKUP_FILE", field="values")
    return None


@gc_paused
def plan_import(
    engine: Engine,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    who: str = "",
    progress: Progress | None = None,
    today: date | None = None,
) -> ImportPlan:
    """Read `path` and work out what importing it would do. Writes nothing."""
    options = options or ImportOptions()
    path = Path(path)
    sheet = read_table(path, sheet=options.sheet, progress=progress, encoding=options.encoding, limits=options.limits)
    headers = sheet.headers
    columns = column_fields(headers, options.mapping)
    index = {f: i for i, (_, f) in enumerate(columns) if f in SINGLE}
    custom_idx = [i for i, (_, f) in enumerate(columns) if f == "custom"]
    warnings: list[str] = []
    source = clean_text(options.source or path.name, field="--source", max_len=200, required=True)
    problems = [Problem(f"{why}", [number]) for number, why in sheet.shape_problems]
    taken: set[str] = set()
    custom_names = [
        numbered_name(clean_text(headers[i], field="column name", max_len=80) or f"column {i + 1}", taken, 80)
        for i in custom_idx
    ]
    # the custom fields that keep a cell evpipe stores otherwise (or not at all), named apart from the others
    kept_names = {f: numbered_name(in_file_name(headers[index[f]]), taken, 80) for f in KEPT_IN_FILE if f in index}
    if len(custom_idx) > MAX_CUSTOM_FIELDS:
        problems.append(
            Problem(
                f"the file has {len(custom_idx)} columns evpipe does not know; a prospect keeps at most "
                f"{MAX_CUSTOM_FIELDS} custom fields; leave some out with --map 'COLUMN=ignore'"
            )
        )
    ladder = _plan_ladder(engine, options, warnings)
    first_open = next((n for n, k, _, _ in ladder if k == OPEN), None)
    explicit = _explicit_stages(options, ladder)
    stage_of: dict[str, str | None] = {}
    stage_maps: list[StageMapping] = []
    if "stage" in index:
        stage_of, stage_maps = _map_stages(sheet, index["stage"], explicit, ladder, problems)
    else:
        warnings.append(f"the file has no stage column; every row goes on {first_open} (the first rung)")
    order, order_how = _date_order(sheet, index, options, problems)
    lookup = _lookup(options, headers)
    reader = RowReader(
        headers=headers,
        index=index,
        custom_idx=custom_idx,
        custom_names=custom_names,
        stage_of=stage_of,
        kinds={name.casefold(): kind for name, kind, _, _ in ladder},
        first_open=first_open,
        order=order,
        today=today or clock.today(),
        lookup=lookup,
        who=who,
        kept_names=kept_names,
    )
    rungs, rungs_from = file_ladder(sheet, columns)
    no_stage = sum(1 for _, cells in sheet.rows if not cell_text(cells[index["stage"]])) if "stage" in index else 0
    rows_total = len(sheet.rows) + len(sheet.shape_problems)
    currencies = _currencies_warning(sheet, index["value"], headers[index["value"]]) if "value" in index else []
    records = _read_rows(sheet, reader, problems, progress)  # (lets the sheet's rows go)
    plan = ImportPlan(
        path=path,
        source=source,
        sheet_data=sheet,
        options=options,
        columns=columns,
        stage_mappings=stage_maps,
        date_order=order,
        date_order_how=order_how,
        records=records,
        problems=_ordered(problems),
        warnings=warnings,
        ladder=ladder,
        closed_from=None,
        custom_columns=custom_names,
        kept_names=kept_names,
        rows_total=rows_total,
    )
    _row_warnings(plan, reader, no_stage, lookup, first_open)
    warnings.extend(currencies)
    _compare_existing(engine, plan)
    _value_counts(plan)
    with engine.connect() as conn:
        plan.ladder_check = compare_ladder(conn, plan, rungs, rungs_from)
    if options.adopt_ladder and (plan.ladder_check is None or not plan.ladder_check.differences):
        warnings.append(
            "--adopt-ladder: the file's ladder is the same as this one (or it carries none); nothing to adopt"
        )
    if progress is not None:
        progress("check", rows_total, rows_total)
    return plan


def _read_rows(sheet: SheetData, reader: RowReader, problems: list[Problem], progress: Progress | None) -> list[Record]:
    """Each row as a record. A row's cells are let go as soon as it is read (the preview keeps the
    records, not the sheet), so a large file is never held twice. A big file's last rows are
    parsed by a fork of this process meanwhile (models/forked.py); this one keys them after its
    own, in file order (`RowReader.keyed`), so the records are the same as read here alone."""
    records: list[Record] = []
    rows = sheet.rows

    def own_part(start: int, end: int, pace: int) -> None:
        _read_part(rows, start, end, reader, records, problems, progress, pace)

    answer = shared(len(rows), lambda split: functools.partial(_parse_rows, reader, rows, split), own_part)
    if answer is not None:
        parsed, misses, kept = answer
        for product, numbers in misses.items():
            reader.lookup_misses[product].extend(numbers)
        for f, numbers in kept.items():
            reader.kept[f].extend(numbers)
        for values, *rest in parsed:
            _take(reader.keyed((Record(*values), *rest)), records, problems)
    rows.clear()
    return records


def _read_part(
    rows: list[tuple[int, list[Any]]],
    start: int,
    end: int,
    reader: RowReader,
    records: list[Record],
    problems: list[Problem],
    progress: Progress | None,
    pace: int = 1,
) -> None:
    """rows[start:end] read into `records` and `problems`; progress says `pace` rows read for
    each of these (2 while a fork parses as many at the same time)."""
    total = len(rows)
    for count in range(start + 1, end + 1):
        number, cells = rows[count - 1]
        rows[count - 1] = _READ
        if progress is not None and count % 5000 == 0:
            progress("check", min(start + (count - start) * pace, total), total)
        _take(reader.read(number, cells), records, problems)


def _take(read: tuple[Record | None, list[Problem]], records: list[Record], problems: list[Problem]) -> None:
    rec, row_problems = read
    if rec is None:
        problems.extend(row_problems)
    else:
        records.append(rec)


def _parse_rows(
    reader: RowReader, rows: list[tuple[int, list[Any]]], start: int
) -> tuple[list[tuple[Any, ...]], dict[str, list[int]], dict[str, list[int]]]:
    """The fork's work: rows[start:] parsed (not keyed), each record as its values
    (`record_values`), and the lookup's misses and the cells kept as they are in the file
    (`RowReader.kept`) among them."""
    reader.lookup_misses.clear()
    reader.kept.clear()
    parsed = [(record_values(rec), *rest) for rec, *rest in map(reader.parse, *zip(*rows[start:]))]
    return parsed, dict(reader.lookup_misses), dict(reader.kept)


_READ: tuple[int, list[Any]] = (0, [])


def _row_warnings(
    plan: ImportPlan, reader: RowReader, no_stage: int, lookup: Lookup | None, first_open: str | None
) -> None:
    """What the rows tell the user without keeping them out; and where closed rows start from."""
    warnings, records = plan.warnings, plan.records
    for product, rows in reader.lookup_misses.items():
        assert lookup is not None
        warnings.append(
            Problem(f"{product!r} is not in {lookup[2]}; imported at 0 and flagged for review", rows).text()
        )
    warnings.extend(reader.kept_warnings({r.row for r in records}))
    if no_stage:
        warnings.append(f"{no_stage} rows have no stage; they go on {first_open} (the first rung)")
    if any(reader.kinds[r.stage] != OPEN for r in records):
        plan.closed_from = _closed_from(plan.options.closed_from, records, plan.ladder)
    late = sum(1 for r in records if r.closed_on and r.created and r.closed_on < r.created)
    if late:
        warnings.append(f"{late} rows close before their created date; they are taken as created on the close date")


def _currencies_warning(sheet: Any, column: int, header: str) -> list[str]:
    """A warning when the value column's amounts name more than one currency ('$1,000' and
    '¥1,000'): evpipe keeps one currency and converts nothing, so each number is taken as written
    and they were summed as if the same money, without a word."""
    found: dict[str, list[int]] = {}
    for number, cells in sheet.rows:
        cell = cells[column] if column < len(cells) else None
        if isinstance(cell, str) and (currency := currency_of(cell)) is not None:
            found.setdefault(currency, []).append(number)
    if len(found) < 2:
        return []

    def where(rows: list[int]) -> str:
        shown = ", ".join(str(r) for r in rows[:5])
        return (
            f"row {shown}"
            if len(rows) == 1
            else f"rows {shown}" + (f" and {len(rows) - 5:,} more" if len(rows) > 5 else "")
        )

    named = "; ".join(f"{currency} in {where(rows)}" for currency, rows in found.items())
    return [
        f"{header}: the amounts name {len(found)} currencies ({named}); evpipe converts none, so each "
        "number is taken as written and summed with the others: convert them to one currency in the file first"
    ]


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


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Problems of the whole file first, then by the first row they concern."""
    return sorted(problems, key=lambda p: (bool(p.rows), p.rows[:1]))


def _closed_from(wanted: str | None, records: list[Record], ladder: list[PlanRung]) -> str:
    """The open stage won and lost rows are created on before they close: the one the user gives,
    else the highest open stage among the file's open rows, else the ladder's last open stage."""
    by_key = {name.casefold(): (name, kind) for name, kind, _, _ in ladder}
    opens = [n for n, k, _, _ in ladder if k == OPEN]
    if wanted:
        hit = by_key.get(wanted.strip().casefold())
        if hit is None or hit[1] != OPEN:
            raise DomainError(
                f"--closed-from: {wanted!r} is not an open stage; the open stages are " + ", ".join(opens),
                field="closed_from",
            )
        return hit[0]
    used = {r.stage for r in records if by_key[r.stage][1] == OPEN}
    for name in reversed(opens):
        if name.casefold() in used:
            return name
    return opens[-1]


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


def _compare_existing(engine: Engine, plan: ImportPlan) -> None:
    with engine.connect() as conn:
        existing = existing_rows(conn, plan.source)
    keys = {r.key for r in plan.records}
    plan.missing_from_file = sum(1 for k, row in existing.items() if k not in keys and row["deleted_at"] is None)
    stage_ids: dict[str, int | None] = {name.casefold(): None for name, *_ in plan.ladder}
    with engine.connect() as conn:
        for sid, name, *_ in ladder_rows(conn):
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
