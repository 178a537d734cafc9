"""The file's side of an import plan: read the file, map its columns and stages, read every row,
say what the rows tell the user. Of the database it reads only the ladder (`ladder_rows`, through
anything models/rawdb.py `fetch_all` reads), and nothing here imports SQLAlchemy: `evpipe import`
starts this reading in a fork before SQLAlchemy is imported (tui/cli/import_ahead.py), and
models/import_plan.py adds what the database says."""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .errors import DomainError
from .import_cells import cell_text, detect_date_order
from .import_fields import (
    KEPT_IN_FILE,
    LOST_WORDS,
    SINGLE,
    WON_WORDS,
    column_fields,
    in_file_name,
    name_key,
    numbered_name,
)
from .import_read import Progress, SheetData, read_table
from .import_rows import Lookup, RowReader, load_lookup
from .import_rungs import FileRung, file_ladder
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
from .rawdb import fetch_all
from .values import MAX_CUSTOM_FIELDS, clean_text, currency_of, parse_probability

#: A ladder stage as the importer sees it: (id, name, kind, probability bp, position).
LadderRow = tuple[int, str, str, int, int]
#: The ladder as the plan shows it: (name, kind, bp, new) in ladder order, after the stages to add.
PlanRung = tuple[str, str, int, bool]


#: The ladder as an import reads it: the stages not archived, in ladder order.
_LADDER_SQL = "SELECT id, name, kind, probability_bp, position FROM stage WHERE archived = :no ORDER BY position, id"


def ladder_rows(source: Any) -> list[LadderRow]:
    """The ladder an import maps onto, from an SQLAlchemy Connection or Engine, or a plain
    SQLite reader (models/rawdb.py `fetch_all`: the read made ahead in a fork)."""
    return [
        (int(i), name, kind, int(bp), int(pos))
        for i, name, kind, bp, pos in fetch_all(source, _LADDER_SQL, {"no": False})
    ]


@dataclass
class SheetPlan:
    """What the file gives a plan (`plan_sheet`): the plan before it is compared with the
    database, the ladder the file carries and where it was read, and what it was read with: the
    ladder (as `ladder_rows` reads it), the user (an empty owner cell is theirs) and the day."""

    plan: ImportPlan
    rungs: list[FileRung]
    rungs_from: str
    stages: list[LadderRow]
    who: str
    today: date

    def packed(self) -> tuple[SheetPlan, list[tuple[Any, ...]]]:
        """As a fork hands it back: the records as their values (`record_values`), pickled in C."""
        bare = copy.copy(self.plan)
        bare.records = []
        return dataclasses.replace(self, plan=bare), [record_values(r) for r in self.plan.records]

    @staticmethod
    def unpacked(packed: tuple[SheetPlan, list[tuple[Any, ...]]]) -> SheetPlan:
        """`packed`'s sheet plan again, its records made from their values."""
        sheet, values = packed
        sheet.plan.records = [Record(*v) for v in values]
        return sheet


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


def _plan_ladder(stages: list[LadderRow], options: ImportOptions, warnings: list[str]) -> list[PlanRung]:
    """The ladder as it will be: the open stages, then the stages to add, then won and lost."""
    existing_names = {name.casefold() for _, name, _, _, _ in stages}
    added = _parse_add_stages(options.add_stages, existing_names, warnings)
    opens = [(name, kind, bp, False) for _, name, kind, bp, _ in stages if kind == OPEN]
    closed = [(name, kind, bp, False) for _, name, kind, bp, _ in stages if kind != OPEN]
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
def plan_sheet(
    path: Path,
    options: ImportOptions,
    stages: list[LadderRow],
    *,
    who: str,
    today: date,
    progress: Progress | None = None,
    share: bool = True,
) -> SheetPlan:
    """Read `path` and plan its import onto the ladder `stages` (`ladder_rows`), as `who` on
    `today`; nothing is compared with the database yet. `share`: a big file's rows are read with
    a fork's help (`shared`)."""
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
    ladder = _plan_ladder(stages, options, warnings)
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
        today=today,
        lookup=lookup,
        who=who,
        kept_names=kept_names,
    )
    rungs, rungs_from = file_ladder(sheet, columns)
    no_stage = sum(1 for _, cells in sheet.rows if not cell_text(cells[index["stage"]])) if "stage" in index else 0
    rows_total = len(sheet.rows) + len(sheet.shape_problems)
    currencies = _currencies_warning(sheet, index["value"], headers[index["value"]]) if "value" in index else []
    records = _read_rows(sheet, reader, problems, progress, share)  # (lets the sheet's rows go)
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
    return SheetPlan(plan, rungs, rungs_from, stages, who, today)


def _read_rows(
    sheet: SheetData, reader: RowReader, problems: list[Problem], progress: Progress | None, share: bool = True
) -> list[Record]:
    """Each row as a record. A row's cells are let go as soon as it is read (the preview keeps the
    records, not the sheet), so a large file is never held twice. A big file's last rows are
    parsed by a fork of this process meanwhile (models/forked.py); this one keys them after its
    own, in file order (`RowReader.keyed`), so the records are the same as read here alone."""
    records: list[Record] = []
    rows = sheet.rows

    def own_part(start: int, end: int, pace: int) -> None:
        _read_part(rows, start, end, reader, records, problems, progress, pace)

    answer = None
    if share:
        answer = shared(len(rows), lambda split: functools.partial(_parse_rows, reader, rows, split), own_part)
    else:
        own_part(0, len(rows), 1)
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
