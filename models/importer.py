"""Importing a spreadsheet of prospects: preview first, then one all-or-nothing transaction.

    plan = plan_import(engine, "pipeline.xlsx", ImportOptions(...))   # reads, writes nothing
    plan.problems, plan.preview_rows(), plan.counts_by_stage ...        # show them
    result = commit_import(engine, plan, who="ann")                     # one transaction

The rules (docs/import.md explains them for users):

- Columns are mapped to fields from their headers (`guess_field`), or as the user says. Columns
  evpipe does not know become custom fields, so nothing typed is dropped.
- Stage names are matched to the ladder by name (any case); "won"/"closed won" and
  "lost"/"closed lost" go to the ladder's won and lost stages. Any other name is a problem until
  the user maps it (`stage_map`) or adds it to the ladder (`add_stages`).
- The stable key of a row is its id column's value; without an id column, its name and company
  (case and spacing ignored), with "#2", "#3" for repeats within the file. Prospects are found
  again by (source, key); source is the file's name unless the user gives one.
- A value that is empty, or 0 on a lost row, is unknown: it comes from the lookup file when one is
  given; otherwise an empty value imports as 0 flagged `needs_review`.
- A won or lost row becomes a prospect created on the stage it closed from (`closed_from`: by
  default the highest open stage among the file's open rows, else the ladder's last open stage) at
  its created date, moved to won or lost at its close date, so that history, calibration and
  forecast-vs-actual have something to work with.
- Every new prospect gets an "import" journal entry (category "new") with its exact effect on the
  KPIs, and closed ones a second one (category "win" or "lose"); updates on re-import get "edit"
  and move entries. So the KPI bridges add up exactly.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Engine, func, insert, select, update
from sqlmodel import Session

from . import clock
from .db import writer
from .errors import DomainError
from .import_cells import (
    cell_text,
    detect_date_order,
    parse_cell_bool,
    parse_cell_date,
    parse_cell_money,
    parse_cell_month,
)
from .import_read import Progress, SheetData, read_table
from .tables import ChangeEvent, Prospect, Stage, StageChange
from .values import clean_text, format_money, format_percent, money_str, parse_probability

MAX_CUSTOM_FIELDS = 50
PREVIEW_ROWS = 10

#: Fields a column can be mapped to, with what the user may type for each (`--map COL=FIELD`).
FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id", "key", "external_id", "opportunity_id", "deal_id", "prospect_id", "record_id", "evpipe_id"),
    "name": ("name", "prospect", "prospect_name", "opportunity", "opportunity_name", "deal", "deal_name", "title"),
    "company": ("company", "account", "account_name", "company_name", "organisation", "organization",
                "customer", "client", "business"),
    "contact_name": ("contact", "contact_name", "contact_person", "person", "full_name"),
    "email": ("email", "e_mail", "email_address", "mail"),
    "phone": ("phone", "telephone", "tel", "mobile", "phone_number", "cell"),
    "value": ("value", "amount", "close_value", "deal_value", "estimated_value", "est_value", "deal_amount",
              "value_nzd", "value_usd", "value_aud", "value_eur", "value_gbp"),
    "stage": ("stage", "deal_stage", "sales_stage", "pipeline_stage", "status", "opportunity_stage"),
    "expected_month": ("expected_month", "month", "close_month", "expected_close_month", "forecast_month"),
    "close_date": ("close_date", "closed_on", "closed", "closing_date", "date_closed", "expected_close",
                   "expected_close_date", "closed_date", "won_date"),
    "created": ("created", "engage_date", "created_at", "created_on", "date_created", "created_date",
                "open_date", "opened", "start_date", "first_contact", "date_added"),
    "owner": ("owner", "sales_agent", "agent", "rep", "sales_rep", "salesperson", "sales_person",
              "account_manager", "assigned_to", "deal_owner", "opportunity_owner"),
    "notes": ("notes", "note", "comments", "comment", "description", "remarks"),
    "follow_up": ("follow_up", "next_follow_up", "follow_up_date", "next_step_date", "next_contact"),
    "lost_reason": ("lost_reason", "reason_lost", "loss_reason", "lost_because"),
    "needs_review": ("needs_review", "review"),
    "derived": ("probability", "ev", "expected_value", "weighted_value", "stage_kind", "kind",
                "probability_percent", "updated", "updated_at"),
    "custom": ("custom",),
    "ignore": ("ignore", "skip", "none"),
}
FIELD_LABELS = {
    "id": "stable key (id)", "name": "name", "company": "company", "contact_name": "contact",
    "email": "email", "phone": "phone", "value": "value", "stage": "stage", "expected_month": "expected month",
    "close_date": "close date", "created": "created date", "owner": "owner", "notes": "notes",
    "follow_up": "next follow-up", "lost_reason": "lost reason", "needs_review": "needs review",
    "derived": "not imported (evpipe works it out)", "custom": "custom field", "ignore": "not imported (you said so)",
}
_SYNONYMS = {alias: f for f, aliases in FIELDS.items() for alias in aliases}
_SINGLE = [f for f in FIELDS if f not in ("derived", "custom", "ignore")]
_WON_WORDS = {"won", "win", "closedwon", "closed", "wonclosed", "sold"}
_LOST_WORDS = {"lost", "lose", "closedlost", "lostclosed", "dead"}


def header_key(text: str) -> str:
    """'Close Value (NZD)' -> 'close_value_nzd'."""
    return re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")


def name_key(text: str) -> str:
    """For matching names that are spelt slightly differently: 'GTX Pro' == 'GTXPro' == 'gtx-pro'."""
    return re.sub(r"[\W_]+", "", text.casefold())


def guess_field(header: str) -> str | None:
    """The field a column header names, or None (a custom field)."""
    key = header_key(header)
    return _SYNONYMS.get(key)


def field_for(word: str) -> str:
    key = header_key(word)
    if key in FIELDS:
        return key
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    raise DomainError(
        f"--map: {word!r} is not a field; use one of " + ", ".join(f for f in FIELDS if f != "derived"),
        field="map",
    )


# ---------------------------------------------------------------- options and plan


@dataclass
class ImportOptions:
    sheet: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # column -> field (overrides the guess)
    stage_map: dict[str, str] = field(default_factory=dict)  # file stage -> ladder stage
    date_order: str | None = None  # "dmy", "mdy" or None (decide from the data)
    values_file: str | Path | None = None
    values_key: str | None = None  # "product" or "product=lookup_column"
    values_column: str | None = None
    source: str | None = None
    add_stages: list[tuple[str, str]] = field(default_factory=list)  # (name, percent) appended to the ladder
    closed_from: str | None = None
    skip_bad: bool = False


@dataclass
class Problem:
    """Rows that cannot be taken, and why. `rows` empty: a problem of the whole file."""

    message: str
    rows: list[int] = field(default_factory=list)
    column: str | None = None

    def text(self, limit: int = 12) -> str:
        if not self.rows:
            return self.message
        if len(self.rows) == 1:
            return f"row {self.rows[0]}: {self.message}"
        shown = ", ".join(str(r) for r in self.rows[:limit])
        more = f" and {len(self.rows) - limit} more" if len(self.rows) > limit else ""
        return f"rows {shown}{more} ({len(self.rows):,} rows): {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "column": self.column, "message": self.message, "text": self.text()}


@dataclass(slots=True)
class Record:
    """One row as it will be stored."""

    row: int
    key: str
    name: str
    stage: str  # the ladder stage's name, casefolded
    value_cents: int
    value_from: str  # "file", "lookup" or "unknown"
    owner: str
    company: str = ""
    contact_name: str = ""
    email: str = ""
    phone: str = ""
    notes: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    expected_month: str | None = None
    next_follow_up: date | None = None
    created: date | None = None
    closed_on: date | None = None
    lost_reason: str | None = None
    needs_review: bool = False


@dataclass
class StageMapping:
    file_name: str
    ladder_name: str | None
    how: str
    rows: int


@dataclass
class ImportPlan:
    path: Path
    source: str
    sheet_data: SheetData
    options: ImportOptions
    columns: list[tuple[str, str]]  # (header, field)
    stage_mappings: list[StageMapping]
    date_order: str | None
    date_order_how: str
    records: list[Record]
    problems: list[Problem]
    warnings: list[str]
    ladder: list[tuple[str, str, int, bool]]  # (name, kind, bp, new) in ladder order, after added stages
    closed_from: str | None
    new_count: int = 0
    update_count: int = 0
    unchanged_count: int = 0
    deleted_skipped: int = 0
    missing_from_file: int = 0
    valued_from_lookup: int = 0
    needs_review_count: int = 0
    custom_columns: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.sheet_data.rows) + len(self.sheet_data.shape_problems)

    @property
    def bad_rows(self) -> int:
        return len({r for p in self.problems for r in p.rows})

    @property
    def file_problems(self) -> list[Problem]:
        return [p for p in self.problems if not p.rows]

    @property
    def can_commit(self) -> bool:
        if self.file_problems or not self.records:
            return False
        return not self.problems or self.options.skip_bad

    def why_not(self) -> str:
        if self.file_problems:
            return "; ".join(p.message for p in self.file_problems)
        if not self.records:
            return "no row can be taken"
        if self.problems and not self.options.skip_bad:
            return (f"{self.bad_rows:,} of {self.rows_read:,} rows cannot be taken; fix them in the file, or "
                    "import the others with --skip-bad")
        return ""

    @property
    def counts_by_stage(self) -> list[tuple[str, int]]:
        counts = Counter(r.stage for r in self.records)
        return [(name, counts.get(name.casefold(), 0)) for name, _, _, _ in self.ladder]

    def stage_name(self, key: str) -> str:
        for name, _, _, _ in self.ladder:
            if name.casefold() == key:
                return name
        return key

    def preview_rows(self, n: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
        out = []
        for r in self.records[:n]:
            out.append({
                "row": r.row, "key": r.key, "name": r.name, "company": r.company, "stage": self.stage_name(r.stage),
                "value": money_str(r.value_cents), "value_from": r.value_from, "month": r.expected_month,
                "owner": r.owner, "created": r.created.isoformat() if r.created else None,
                "closed_on": r.closed_on.isoformat() if r.closed_on else None,
                "contact": r.contact_name, "email": r.email, "phone": r.phone,
                "needs_review": r.needs_review, "custom": dict(r.custom),
            })
        return out

    def to_json(self, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
        return {
            "file": str(self.path), "source": self.source, "read_as": self.sheet_data.described,
            "rows": self.rows_read,
            "columns": [{"column": h, "field": f, "meaning": FIELD_LABELS[f]} for h, f in self.columns],
            "stages": [{"in_file": m.file_name, "ladder": m.ladder_name, "how": m.how, "rows": m.rows}
                       for m in self.stage_mappings],
            "dates": self.date_order_how,
            "closed_from": self.closed_from,
            "counts_by_stage": {name: n for name, n in self.counts_by_stage},
            "new": self.new_count, "updated": self.update_count, "unchanged": self.unchanged_count,
            "deleted_skipped": self.deleted_skipped, "missing_from_file": self.missing_from_file,
            "valued_from_lookup": self.valued_from_lookup, "needs_review": self.needs_review_count,
            "preview": self.preview_rows(rows),
            "problems": [p.to_json() for p in self.problems],
            "bad_rows": self.bad_rows,
            "warnings": self.warnings,
            "can_commit": self.can_commit,
            "why_not": self.why_not() or None,
        }


@dataclass(frozen=True)
class ImportResult:
    source: str
    created: int
    updated: int
    unchanged: int
    moved: int
    events: int
    skipped_rows: int
    d_count: int
    d_tv_cents: int
    d_ev_micros: int
    first_event_id: int | None
    last_event_id: int | None
    stages_added: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        parts = [f"{self.created} new"]
        if self.updated:
            parts.append(f"{self.updated} updated")
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        if self.skipped_rows:
            parts.append(f"{self.skipped_rows} bad rows skipped")
        ev = format_money(self.d_ev_micros, micros=True, signed=True, decimals=False)
        tv = format_money(self.d_tv_cents, signed=True, decimals=False)
        return f"imported {self.source}: " + ", ".join(parts) + f"; TV {tv}, EV {ev}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "moved": self.moved, "events": self.events, "skipped_rows": self.skipped_rows,
            "d_count": self.d_count, "d_tv": money_str(self.d_tv_cents), "d_ev": money_str(self.d_ev_micros, micros=True),
            "stages_added": list(self.stages_added), "summary": self.summary,
        }


# ---------------------------------------------------------------- lookup of values


def _split_key(spec: str) -> tuple[str, str]:
    if "=" in spec:
        a, b = spec.split("=", 1)
        return a.strip(), b.strip()
    return spec.strip(), spec.strip()


def _find_header(headers: list[str], wanted: str, what: str, file_name: str) -> int:
    for i, h in enumerate(headers):
        if h == wanted:
            return i
    for i, h in enumerate(headers):
        if h.casefold() == wanted.casefold() or header_key(h) == header_key(wanted):
            return i
    raise DomainError(f"{what}: {file_name} has no column {wanted!r}; its columns are {', '.join(headers)}",
                      field=what)


def load_lookup(options: ImportOptions, headers: list[str]) -> tuple[int, dict[str, int], str]:
    """(the key column's index in the main file, {normalised key: cents}, lookup file name)."""
    if not options.values_key:
        raise DomainError("--values-key: say which column joins the files, e.g. --values-key product",
                          field="values_key")
    main_col, lookup_col = _split_key(options.values_key)
    key_index = _find_header(headers, main_col, "--values-key", "the file")
    table = read_table(options.values_file)
    lookup_name = Path(options.values_file).name
    lk = _find_header(table.headers, lookup_col, "--values-key", lookup_name)
    if options.values_column:
        vc = _find_header(table.headers, options.values_column, "--values-column", lookup_name)
    else:
        candidates = [i for i, h in enumerate(table.headers)
                      if header_key(h) in ("sales_price", "price", "list_price", "unit_price", "value", "amount")]
        if len(candidates) != 1:
            raise DomainError(
                f"--values-column: say which column of {lookup_name} holds the value; its columns are "
                + ", ".join(table.headers), field="values_column",
            )
        vc = candidates[0]
    prices: dict[str, int] = {}
    for number, cells in table.rows:
        key = name_key(cell_text(cells[lk]))
        if not key:
            continue
        try:
            cents = parse_cell_money(cells[vc], column=table.headers[vc])
        except DomainError as exc:
            raise DomainError(f"--values: {lookup_name} row {number}: {exc}", field="values") from None
        if cents is None:
            continue
        if key in prices and prices[key] != cents:
            raise DomainError(
                f"--values: {lookup_name} row {number}: {cell_text(cells[lk])!r} has two different values",
                field="values",
            )
        prices[key] = cents
    if table.shape_problems:
        n, why = table.shape_problems[0]
        raise DomainError(f"--values: {lookup_name} row {n} {why}", field="values")
    return key_index, prices, lookup_name


# ---------------------------------------------------------------- planning


def _ladder(session_or_conn) -> list[tuple[int, str, str, int, int]]:
    q = (select(Stage.id, Stage.name, Stage.kind, Stage.probability_bp, Stage.position)
         .where(Stage.archived == False).order_by(Stage.position, Stage.id))  # noqa: E712
    return [tuple(r) for r in session_or_conn.execute(q)]


def _parse_add_stages(specs: Iterable[tuple[str, str]], existing: set[str],
                      warnings: list[str]) -> list[tuple[str, int]]:
    """The stages to add. One on the ladder already (a second import with the same options) is
    not added again, with a warning."""
    out = []
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


def _column_fields(headers: list[str], overrides: dict[str, str]) -> list[tuple[str, str]]:
    chosen: dict[int, str] = {}
    for column, wanted in overrides.items():
        index = _find_header(headers, column, "--map", "the file")
        chosen[index] = field_for(wanted)
    out: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for i, h in enumerate(headers):
        f = chosen.get(i)
        if f is None:
            f = guess_field(h) or "custom"
            if f in _SINGLE and (f in taken or f in chosen.values()):
                f = "custom"  # a second 'notes' column stays as it is, a custom field
        elif f in _SINGLE and f in taken:
            raise DomainError(f"--map: columns {taken[f]!r} and {h!r} both map to {f}", field="map")
        if f in _SINGLE:
            taken[f] = h
        out.append((h, f))
    return out


def plan_import(engine: Engine, path: str | Path, options: ImportOptions | None = None, *,
                who: str = "", progress: Progress | None = None, today: date | None = None) -> ImportPlan:
    """Read `path` and work out what importing it would do. Writes nothing."""
    options = options or ImportOptions()
    today = today or clock.today()
    path = Path(path)
    sheet = read_table(path, sheet=options.sheet, progress=progress)
    headers = sheet.headers
    columns = _column_fields(headers, options.mapping)
    index = {f: i for i, (_, f) in enumerate(columns) if f in _SINGLE}
    custom_idx = [i for i, (_, f) in enumerate(columns) if f == "custom"]
    problems: list[Problem] = []
    warnings: list[str] = []
    source = clean_text(options.source or path.name, field="--source", max_len=200, required=True)

    for number, why in sheet.shape_problems:
        problems.append(Problem(f"{why}", [number]))
    custom_names = [clean_text(headers[i], field="column name", max_len=80) or f"column {i + 1}" for i in custom_idx]
    if len(custom_idx) > MAX_CUSTOM_FIELDS:
        problems.append(Problem(
            f"the file has {len(custom_idx)} columns evpipe does not know; a prospect keeps at most "
            f"{MAX_CUSTOM_FIELDS} custom fields; leave some out with --map 'COLUMN=ignore'"))

    # The ladder as it will be: the current one plus the stages to add.
    with engine.connect() as conn:
        ladder_rows = _ladder(conn)
    existing_names = {name.casefold() for _, name, _, _, _ in ladder_rows}
    added = _parse_add_stages(options.add_stages, existing_names, warnings)
    opens = [(name, kind, bp, False) for _, name, kind, bp, _ in ladder_rows if kind == "open"]
    closed = [(name, kind, bp, False) for _, name, kind, bp, _ in ladder_rows if kind != "open"]
    ladder = opens + [(n, "open", bp, True) for n, bp in added] + closed
    by_key = {name.casefold(): (name, kind) for name, kind, _, _ in ladder}
    won_stage = next((n for n, k, _, _ in ladder if k == "won"), None)
    lost_stage = next((n for n, k, _, _ in ladder if k == "lost"), None)
    first_open = next((n for n, k, _, _ in ladder if k == "open"), None)

    # Stage mapping.
    stage_maps: list[StageMapping] = []
    stage_of: dict[str, str | None] = {}
    explicit = {}
    for file_name, ladder_name in options.stage_map.items():
        target = by_key.get(ladder_name.strip().casefold())
        if target is None:
            raise DomainError(
                f"--stage-map: {ladder_name!r} is not on the ladder; the stages are "
                + ", ".join(n for n, _, _, _ in ladder), field="stage_map",
            )
        explicit[file_name.strip().casefold()] = target[0]
    if "stage" in index:
        col = index["stage"]
        seen: dict[str, list[int]] = defaultdict(list)
        spelt: dict[str, str] = {}
        for number, cells in sheet.rows:
            text = re.sub(r"\s+", " ", cell_text(cells[col]))
            if text:
                seen[text.casefold()].append(number)
                spelt.setdefault(text.casefold(), text)
        for key, rows in seen.items():
            shown = spelt[key]
            if key in explicit:
                target, how = explicit[key], "--stage-map"
            elif key in by_key:
                target, how = by_key[key][0], "same name"
            elif name_key(key) in _WON_WORDS and won_stage:
                target, how = won_stage, "won"
            elif name_key(key) in _LOST_WORDS and lost_stage:
                target, how = lost_stage, "lost"
            else:
                target, how = None, "unknown"
                problems.append(Problem(
                    f"stage {shown!r} is not on the ladder; map it with --stage-map '{shown}=STAGE' "
                    f"or add it with --add-stage '{shown}=PERCENT'", rows, headers[col]))
            stage_of[key] = target
            stage_maps.append(StageMapping(shown, target, how, len(rows)))
    else:
        warnings.append(f"the file has no stage column; every row goes on {first_open} (the first rung)")

    # Dates: day first or month first?
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

    # Values from a lookup file.
    lookup: tuple[int, dict[str, int], str] | None = None
    if options.values_file:
        lookup = load_lookup(options, headers)
    elif options.values_key or options.values_column:
        raise DomainError("--values-key and --values-column go with --values LOOKUP_FILE", field="values")

    # Rows.
    records: list[Record] = []
    by_key_rows: dict[str, int] = {}
    repeat: Counter[str] = Counter()
    lookup_misses: dict[str, list[int]] = defaultdict(list)
    total = len(sheet.rows)
    has_id = "id" in index

    def get(cells: list[Any], f: str) -> Any:
        i = index.get(f)
        return None if i is None else cells[i]

    for count, (number, cells) in enumerate(sheet.rows, start=1):
        if progress is not None and count % 5000 == 0:
            progress("check", count, total)
        row_problems: list[Problem] = []

        def bad(exc: DomainError, f: str) -> None:
            row_problems.append(Problem(str(exc), [number], headers[index[f]] if f in index else None))

        def text(f: str, max_len: int) -> str:
            if f not in index:
                return ""
            try:
                return clean_text(cell_text(get(cells, f)), field=headers[index[f]], max_len=max_len)
            except DomainError as exc:
                bad(exc, f)
                return ""

        name = text("name", 200)
        company = text("company", 200)
        key_text = text("id", 200)
        if not name:
            # No name: the company and the id together tell a deal apart ("Cancity (1C1I7A6R)").
            name = f"{company} ({key_text})" if company and key_text else company or key_text
            if len(name) > 200:
                name = name[:200]
        if not name:
            row_problems.append(Problem("has no name, company or id, so it cannot be told apart", [number]))
        # stage
        stage = first_open.casefold() if first_open else ""
        if "stage" in index:
            raw_stage = re.sub(r"\s+", " ", cell_text(get(cells, "stage")))
            if raw_stage:
                target = stage_of.get(raw_stage.casefold())
                if target is None:
                    stage = ""  # reported once per stage name above
                else:
                    stage = target.casefold()
        kind = by_key[stage][1] if stage in by_key else "open"
        # dates
        dates: dict[str, date | None] = {}
        for f in ("close_date", "created", "follow_up"):
            try:
                dates[f] = parse_cell_date(get(cells, f), column=headers[index[f]], order=order, today=today) \
                    if f in index else None
            except DomainError as exc:
                bad(exc, f)
                dates[f] = None
        month = None
        if "expected_month" in index:
            try:
                month = parse_cell_month(get(cells, "expected_month"), column=headers[index["expected_month"]],
                                         order=order, today=today)
            except DomainError as exc:
                bad(exc, "expected_month")
        if month is None and dates["close_date"] is not None and "expected_month" not in index:
            month = dates["close_date"].strftime("%Y-%m")
        # value
        value_from = "file"
        cents: int | None = None
        if "value" in index:
            try:
                cents = parse_cell_money(get(cells, "value"), column=headers[index["value"]])
            except DomainError as exc:
                bad(exc, "value")
                cents = 0
        unknown = cents is None or (cents == 0 and kind == "lost" and lookup is not None)
        replaced = None
        if unknown and lookup is not None:
            key_col, prices, _ = lookup
            product = name_key(cell_text(cells[key_col]))
            if product in prices:
                if cents is not None:  # the file's 0 is kept, as a custom field
                    replaced = cell_text(get(cells, "value"))
                cents, value_from = prices[product], "lookup"
            else:
                lookup_misses[cell_text(cells[key_col]) or "(empty)"].append(number)
        needs_review = False
        if "needs_review" in index:
            try:
                needs_review = parse_cell_bool(get(cells, "needs_review"), column=headers[index["needs_review"]])
            except DomainError as exc:
                bad(exc, "needs_review")
        if cents is None:
            cents, value_from, needs_review = 0, "unknown", True
        # custom fields
        custom: dict[str, str] = {}
        for i, cname in zip(custom_idx, custom_names):
            value = cell_text(cells[i])
            if value:
                try:
                    custom[cname] = clean_text(value, field=f"custom field {cname}", max_len=5000)
                except DomainError as exc:
                    row_problems.append(Problem(str(exc), [number], headers[i]))
        if replaced is not None:
            custom[f"{headers[index['value']]} (in file)"[:80]] = replaced
        owner = text("owner", 80) if "owner" in index else None
        rec = Record(
            row=number, key="", name=name, stage=stage, value_cents=cents, value_from=value_from,
            owner=who if owner is None else owner, company=company, contact_name=text("contact_name", 200),
            email=text("email", 200), phone=text("phone", 80), notes=text("notes", 20_000), custom=custom,
            expected_month=month, next_follow_up=dates["follow_up"], created=dates["created"],
            closed_on=dates["close_date"] if kind in ("won", "lost") else None,
            lost_reason=(text("lost_reason", 500) or None) if kind == "lost" else None,
            needs_review=needs_review,
        )
        # the stable key
        if has_id and key_text:
            key = key_text
        elif has_id:
            key = ""
            row_problems.append(Problem(f"has no {headers[index['id']]} (the id column), so a later import "
                                        "could not find it again", [number], headers[index["id"]]))
        else:
            base = f"{name_key(name)}|{name_key(company)}"
            repeat[base] += 1
            key = base if repeat[base] == 1 else f"{base}#{repeat[base]}"
        if key and has_id:
            if key in by_key_rows:
                row_problems.append(Problem(f"id {key!r} is on row {by_key_rows[key]} already", [number],
                                            headers[index["id"]]))
            else:
                by_key_rows[key] = number
        rec.key = key
        if row_problems or not stage:
            problems.extend(row_problems)
            continue
        records.append(rec)

    for product, rows in lookup_misses.items():
        warnings.append(Problem(f"{product!r} is not in {lookup[2]}; imported at 0 and flagged for review",
                                rows).text())
    no_stage = sum(1 for _, cells in sheet.rows if "stage" in index and not cell_text(cells[index["stage"]]))
    if no_stage:
        warnings.append(f"{no_stage} rows have no stage; they go on {first_open} (the first rung)")
    closed_from = None
    if any(by_key[r.stage][1] != "open" for r in records):
        closed_from = _closed_from(options.closed_from, records, ladder, by_key)
    plan = ImportPlan(
        path=path, source=source, sheet_data=sheet, options=options, columns=columns, stage_mappings=stage_maps,
        date_order=order, date_order_how=order_how, records=records, problems=_ordered(problems), warnings=warnings,
        ladder=ladder, closed_from=closed_from, custom_columns=custom_names,
    )
    plan.valued_from_lookup = sum(1 for r in records if r.value_from == "lookup")
    plan.needs_review_count = sum(1 for r in records if r.needs_review)
    unknown_values = sum(1 for r in records if r.value_from == "unknown")
    if unknown_values:
        warnings.append(f"{unknown_values} rows have no value; they import at 0 flagged for review "
                        "(or value them from a lookup file with --values)")
    late = sum(1 for r in records if r.closed_on and r.created and r.closed_on < r.created)
    if late:
        warnings.append(f"{late} rows close before their created date; they are taken as created on the close date")
    _compare_existing(engine, plan)
    if progress is not None:
        progress("check", total, total)
    return plan


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Problems of the whole file first, then by the first row they concern."""
    return sorted(problems, key=lambda p: (bool(p.rows), p.rows[:1]))


def _closed_from(wanted: str | None, records: list[Record], ladder, by_key) -> str:
    opens = [n for n, k, _, _ in ladder if k == "open"]
    if wanted:
        hit = by_key.get(wanted.strip().casefold())
        if hit is None or hit[1] != "open":
            raise DomainError(f"--closed-from: {wanted!r} is not an open stage; the open stages are "
                              + ", ".join(opens), field="closed_from")
        return hit[0]
    used = {r.stage for r in records if by_key[r.stage][1] == "open"}
    for name in reversed(opens):
        if name.casefold() in used:
            return name
    return opens[-1]


_COMPARED = ("name", "company", "contact_name", "email", "phone", "notes", "owner", "expected_month",
             "next_follow_up", "lost_reason", "needs_review")
_FIELD_OF = {"name": "name", "company": "company", "contact_name": "contact_name", "email": "email",
             "phone": "phone", "notes": "notes", "owner": "owner", "expected_month": "expected_month",
             "next_follow_up": "follow_up", "lost_reason": "lost_reason", "needs_review": "needs_review"}


def _compare_existing(engine: Engine, plan: ImportPlan) -> None:
    with engine.connect() as conn:
        existing = _existing(conn, plan.source)
    keys = {r.key for r in plan.records}
    plan.missing_from_file = sum(1 for k, row in existing.items() if k not in keys and row["deleted_at"] is None)
    stage_ids = {name.casefold(): None for name, *_ in plan.ladder}
    with engine.connect() as conn:
        for sid, name, *_ in _ladder(conn):
            stage_ids[name.casefold()] = sid
    for r in plan.records:
        old = existing.get(r.key)
        if old is None:
            plan.new_count += 1
        elif old["deleted_at"] is not None:
            plan.deleted_skipped += 1
        elif _changes(plan, r, old, stage_ids.get(r.stage) or -1):
            plan.update_count += 1
        else:
            plan.unchanged_count += 1
    if plan.deleted_skipped:
        plan.warnings.append(f"{plan.deleted_skipped} rows match prospects deleted in evpipe since the last "
                             "import; they stay deleted")
    if plan.missing_from_file:
        plan.warnings.append(f"{plan.missing_from_file} prospects imported from {plan.source} before are not in "
                             "this file; they are left as they are")


def _existing(conn, source: str) -> dict[str, dict[str, Any]]:
    cols = [Prospect.id, Prospect.external_key, Prospect.stage_id, Prospect.value_cents, Prospect.deleted_at,
            Prospect.custom_json, Prospect.closed_on, Prospect.version] + [getattr(Prospect, c) for c in _COMPARED]
    q = select(*cols).where(Prospect.source == source, Prospect.external_key.is_not(None))
    out = {}
    for row in conn.execute(q):
        d = row._asdict()
        out[d["external_key"]] = d
    return out


def _mapped(plan: ImportPlan) -> set[str]:
    return {f for _, f in plan.columns}


def _changes(plan: ImportPlan, r: Record, old: dict[str, Any], stage_id: int | None) -> dict[str, Any]:
    """The fields a re-import changes (only fields the file has), including 'value_cents',
    'custom_json', 'closed_on' and 'stage_id'."""
    mapped = _mapped(plan)
    out: dict[str, Any] = {}
    for col in _COMPARED:
        f = _FIELD_OF[col]
        if col == "expected_month":
            if "expected_month" not in mapped and "close_date" not in mapped:
                continue
        elif col == "needs_review":
            if r.value_from == "unknown":
                continue  # an unknown value leaves the stored value, and its flag, alone
        elif f not in mapped and col != "name":
            continue
        new = getattr(r, col)
        if new != old[col]:
            out[col] = new
    if r.value_from != "unknown" and r.value_cents != old["value_cents"]:
        out["value_cents"] = r.value_cents
    old_custom = json.loads(old["custom_json"] or "{}")
    custom = dict(old_custom)
    kept_zero = [f"{h} (in file)"[:80] for h, f in plan.columns if f == "value"]
    for name in dict.fromkeys([*plan.custom_columns, *r.custom, *(kept_zero if r.value_from == "file" else [])]):
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


# ---------------------------------------------------------------- committing


def _moment(day: date | None, fallback: datetime) -> datetime:
    if day is None:
        return fallback
    return min(datetime.combine(day, time(0)), fallback)


def commit_import(engine: Engine, plan: ImportPlan, *, who: str, at: datetime | None = None,
                  progress: Progress | None = None, chunk: int = 5000) -> ImportResult:
    """Write the plan in one transaction: all of it, or (on any error) nothing."""
    if not plan.can_commit:
        raise DomainError(f"import: nothing written: {plan.why_not()}", field="file")
    at = at or clock.now()
    from .store import _kpi_part, _move_category

    with Session(writer(engine)) as s, s.begin():
        conn = s.connection()
        # 1. stages to add (appended after the last open stage, like `evpipe stages add`)
        ladder_rows = _ladder(conn)
        names_now = {name.casefold() for _, name, *_ in ladder_rows}
        added = [(n, bp) for n, _, bp, new in plan.ladder if new]
        next_event = (conn.execute(select(func.max(ChangeEvent.id))).scalar() or 0) + 1
        events: list[dict[str, Any]] = []
        for name, bp in added:
            if name.casefold() in names_now:
                raise DomainError(f"--add-stage: {name!r} was added to the ladder since the preview; "
                                  "preview again", field="add_stage")
            opens = [r for r in _ladder(conn) if r[2] == "open"]
            position = (opens[-1][4] + 1) if opens else 1
            conn.execute(update(Stage).where(Stage.position >= position, Stage.archived == False)  # noqa: E712
                         .values(position=Stage.position + 1))
            new_id = conn.execute(insert(Stage).values(name=name, position=position, probability_bp=bp,
                                                       kind="open", stale_days=14, archived=False)).inserted_primary_key[0]
            # action "import": `evpipe undo` does not take an import apart piece by piece
            events.append(dict(id=next_event, at=at, who=who, action="import", category="ladder", prospect_id=None,
                               stage_id=new_id, d_count=0, d_tv_cents=0, d_ev_micros=0,
                               summary=f"stage {name} added at {format_percent(bp)} (import of {plan.source})"[:500],
                               payload="{}", undoes_id=None, undone_by_id=None))
            next_event += 1
        stages = {name.casefold(): (sid, name, kind, bp, pos) for sid, name, kind, bp, pos in _ladder(conn)}
        stage_by_id = {v[0]: v for v in stages.values()}
        missing = {r.stage for r in plan.records} - set(stages)
        if missing:
            raise DomainError(f"import: stage {sorted(missing)[0]!r} left the ladder since the preview; "
                              "preview again", field="stage")
        closed_from = stages[plan.closed_from.casefold()] if plan.closed_from else None
        existing = _existing(conn, plan.source)
        next_prospect = (conn.execute(select(func.max(Prospect.id))).scalar() or 0) + 1
        next_change = (conn.execute(select(func.max(StageChange.id))).scalar() or 0) + 1
        prospects: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        created = updated = unchanged = moved = 0
        total = [0, 0, 0]
        total_rows = len(plan.records)
        seen_keys: set[str] = set()

        def journal(**kw: Any) -> int:
            nonlocal next_event
            kw.setdefault("undoes_id", None)
            kw.setdefault("undone_by_id", None)
            kw.setdefault("stage_id", None)
            kw["summary"] = kw["summary"][:500]
            events.append(dict(id=next_event, who=who, action="import", **kw))
            next_event += 1
            for i, k in enumerate(("d_count", "d_tv_cents", "d_ev_micros")):
                total[i] += kw[k]
            return next_event - 1

        def ev_phrase(micros: int) -> str:
            return "EV " + format_money(micros, micros=True, signed=True, decimals=False)

        for n, r in enumerate(plan.records, start=1):
            if progress is not None and n % chunk == 0:
                progress("write", n, total_rows)
            if r.key in seen_keys:  # cannot happen with a checked plan; guards a hand-made one
                raise DomainError(f"import: row {r.row}: key {r.key!r} repeats", field="id")
            seen_keys.add(r.key)
            sid, sname, kind, bp, spos = stages[r.stage]
            old = existing.get(r.key)
            if old is None:
                pid = next_prospect
                next_prospect += 1
                created += 1
                start = closed_from if kind != "open" and closed_from else (sid, sname, kind, bp)
                created_at = _moment(r.created, at)
                closed_at = None
                if kind != "open":
                    closed_at = _moment(r.closed_on, at) if r.closed_on else at
                    created_at = min(created_at, closed_at)
                closed_on = (r.closed_on or at.date()) if kind != "open" else None
                prospects.append(dict(
                    id=pid, name=r.name, company=r.company, contact_name=r.contact_name, email=r.email,
                    phone=r.phone, notes=r.notes, custom_json=json.dumps(r.custom, ensure_ascii=False, sort_keys=True),
                    value_cents=r.value_cents, stage_id=sid, expected_month=r.expected_month,
                    next_follow_up=r.next_follow_up, owner=r.owner, created_at=created_at, updated_at=at,
                    last_touch_at=closed_at or created_at, closed_on=closed_on,
                    lost_reason=r.lost_reason if kind == "lost" else None, deleted_at=None,
                    needs_review=r.needs_review, source=plan.source, external_key=r.key, version=1,
                ))
                part = _kpi_part(r.value_cents, _StageView(start[2], start[3]))
                eid = journal(at=created_at, category="new", prospect_id=pid, stage_id=start[0],
                              d_count=part[0], d_tv_cents=part[1], d_ev_micros=part[2],
                              summary=f"{r.name}: imported on {start[1]} at "
                                      f"{format_money(r.value_cents, decimals=False)}, {ev_phrase(part[2])}",
                              payload=json.dumps({"source": plan.source, "row": r.row, "key": r.key,
                                                  "value_from": r.value_from}))
                changes.append(dict(id=next_change, prospect_id=pid, changed_at=created_at, who=who, from_stage_id=None,
                                    to_stage_id=start[0], value_cents=r.value_cents, from_probability_bp=None,
                                    to_probability_bp=start[3], reason="imported", event_id=eid))
                next_change += 1
                if start[0] != sid:
                    end = _kpi_part(r.value_cents, _StageView(kind, bp))
                    delta = tuple(a - b for a, b in zip(end, part))
                    eid = journal(at=closed_at, category=_move_category(_StageView(start[2], start[3], 0),
                                                                        _StageView(kind, bp, 1)),
                                  prospect_id=pid, stage_id=sid, d_count=delta[0], d_tv_cents=delta[1],
                                  d_ev_micros=delta[2],
                                  summary=f"{r.name}: {start[1]} -> {sname} (imported), {ev_phrase(delta[2])}",
                                  payload=json.dumps({"from": start[0], "to": sid, "source": plan.source,
                                                      "row": r.row}))
                    changes.append(dict(id=next_change, prospect_id=pid, changed_at=closed_at, who=who,
                                        from_stage_id=start[0], to_stage_id=sid, value_cents=r.value_cents,
                                        from_probability_bp=start[3], to_probability_bp=bp,
                                        reason=(r.lost_reason or "imported") if kind == "lost" else "imported",
                                        event_id=eid))
                    next_change += 1
                continue
            if old["deleted_at"] is not None:
                continue
            diff = _changes(plan, r, old, sid)
            if not diff:
                unchanged += 1
                continue
            updated += 1
            old_stage = stage_by_id.get(old["stage_id"]) or _archived_stage(conn, old["stage_id"])
            new_stage_id = diff.pop("stage_id", None)
            row_update = {"b_id": old["id"], "version": old["version"] + 1, "updated_at": at}
            value_before = old["value_cents"]
            value_after = diff.get("value_cents", value_before)
            edit_fields = {k: v for k, v in diff.items() if k != "closed_on"}
            if edit_fields:
                before_part = _kpi_part(value_before, _StageView(old_stage[2], old_stage[3]))
                after_part = _kpi_part(value_after, _StageView(old_stage[2], old_stage[3]))
                delta = tuple(a - b for a, b in zip(after_part, before_part))
                what = ", ".join(k.replace("_cents", "").replace("_json", "").replace("_", " ") for k in edit_fields)
                summary = f"{r.name}: {what} changed (import)"
                if "value_cents" in edit_fields:
                    summary += (f", value {format_money(value_before, decimals=False)} -> "
                                f"{format_money(value_after, decimals=False)}, {ev_phrase(delta[2])}")
                journal(at=at, category="edit", prospect_id=old["id"], d_count=delta[0], d_tv_cents=delta[1],
                        d_ev_micros=delta[2], summary=summary,
                        payload=json.dumps({"before": {k: old.get(k) for k in edit_fields}, "after": edit_fields,
                                            "source": plan.source, "row": r.row}, default=str))
            if new_stage_id is not None:
                moved += 1
                before_part = _kpi_part(value_after, _StageView(old_stage[2], old_stage[3]))
                after_part = _kpi_part(value_after, _StageView(kind, bp))
                delta = tuple(a - b for a, b in zip(after_part, before_part))
                category = _move_category(_StageView(old_stage[2], old_stage[3], old_stage[4]),
                                          _StageView(kind, bp, spos))
                eid = journal(at=at, category=category, prospect_id=old["id"], stage_id=sid, d_count=delta[0],
                              d_tv_cents=delta[1], d_ev_micros=delta[2],
                              summary=f"{r.name}: {old_stage[1]} -> {sname} (import), {ev_phrase(delta[2])}",
                              payload=json.dumps({"from": old["stage_id"], "to": sid, "source": plan.source,
                                                  "row": r.row}))
                changes.append(dict(id=next_change, prospect_id=old["id"], changed_at=at, who=who,
                                    from_stage_id=old["stage_id"], to_stage_id=sid, value_cents=value_after,
                                    from_probability_bp=old_stage[3], to_probability_bp=bp, reason="imported",
                                    event_id=eid))
                next_change += 1
                row_update["stage_id"] = sid
                row_update["last_touch_at"] = at
                if kind == "open":
                    row_update["closed_on"] = None
                    row_update["lost_reason"] = None
                else:
                    row_update["closed_on"] = r.closed_on or at.date()
            elif "closed_on" in diff and kind != "open":
                row_update["closed_on"] = diff["closed_on"]
            row_update.update(edit_fields)
            updates.append(row_update)

        if progress is not None:
            progress("write", total_rows, total_rows)
        # bulk writes, in chunks so that progress moves
        to_save = len(prospects) + len(events) + len(changes) + len(updates)
        saved = 0
        for table, rows in ((Prospect, prospects), (ChangeEvent, events), (StageChange, changes)):
            for i in range(0, len(rows), chunk):
                conn.execute(insert(table), rows[i:i + chunk])
                saved += len(rows[i:i + chunk])
                if progress is not None:
                    progress("save", saved, to_save)
        if updates:
            from sqlalchemy import bindparam

            groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            for u in updates:
                groups[tuple(sorted(u))].append(u)
            for keys, rows in groups.items():
                stmt = update(Prospect.__table__).where(Prospect.__table__.c.id == bindparam("b_id")).values(
                    {k: bindparam(k) for k in keys if k != "b_id"})
                conn.execute(stmt, rows)
        if progress is not None:
            progress("save", to_save, to_save)
        event_ids = [e["id"] for e in events]
    skipped = plan.bad_rows
    return ImportResult(
        source=plan.source, created=created, updated=updated, unchanged=unchanged, moved=moved,
        events=len(events), skipped_rows=skipped, d_count=total[0], d_tv_cents=total[1], d_ev_micros=total[2],
        first_event_id=min(event_ids) if event_ids else None, last_event_id=max(event_ids) if event_ids else None,
        stages_added=tuple(n for n, _ in added),
    )


@dataclass(frozen=True)
class _StageView:
    """Just enough of a stage for store._kpi_part and store._move_category."""

    kind: str
    probability_bp: int
    position: int = 0


def _archived_stage(conn, stage_id: int) -> tuple[int, str, str, int, int]:
    row = conn.execute(select(Stage.id, Stage.name, Stage.kind, Stage.probability_bp, Stage.position)
                       .where(Stage.id == stage_id)).one()
    return tuple(row)


def after_import(engine: Engine) -> None:
    """Give the imported history its KPI snapshots (backfill when the history module has it)."""
    from . import history

    backfill = getattr(history, "backfill", None)
    if backfill is not None:
        backfill(engine)
    history.record_snapshot(engine)


def import_file(engine: Engine, path: str | Path, options: ImportOptions | None = None, *, who: str,
                progress: Progress | None = None) -> tuple[ImportPlan, ImportResult]:
    """Plan and commit in one call (scripts and tests); raises when the plan cannot be committed."""
    plan = plan_import(engine, path, options, who=who, progress=progress)
    result = commit_import(engine, plan, who=who, progress=progress)
    after_import(engine)
    return plan, result

