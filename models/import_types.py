"""What an import works with: the user's options, the plan (records, problems, warnings) and the
result of committing it."""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date
from operator import attrgetter
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from . import collector
from .forked import Forked
from .import_fields import FIELD_LABELS
from .import_read import ReadLimits, SheetData
from .values import format_amount, format_percent, money_str

PREVIEW_ROWS = 10

_P = ParamSpec("_P")
_R = TypeVar("_R")


#: From how many rows an import's reading, and its preparation of new prospects, are shared with
#: a fork of this process (models/forked.py): below it, forking and handing the rows back cost
#: more than they save (measured whole commands: 3,000 rows 0.74 -> 0.71 s, the 8,800-row CRM
#: sample 1.19 -> 1.09 s). The tests set EVPIPE_SHARE_ROWS to take that path with a few rows.
SHARE_ROWS = 3_000

_T = TypeVar("_T")


def worth_sharing(rows: int) -> bool:
    """Whether a step over `rows` rows is shared with a fork (SHARE_ROWS, or EVPIPE_SHARE_ROWS)."""
    return rows >= int(os.environ.get("EVPIPE_SHARE_ROWS", SHARE_ROWS))


def shared(
    total: int,
    fork_part: Callable[[int], Callable[[], _T]],
    own_part: Callable[[int, int, int], object],
) -> _T | None:
    """A step over `total` rows, shared with a fork of this process from SHARE_ROWS rows on:
    `own_part(start, end, pace)` does rows [start, end) here (`pace`: 2 while the fork works at
    the same time, for progress), and `fork_part(split)` is the work that does the rows from
    `split` on in the fork, whose answer is returned. A little less than half goes to the fork: it
    also pickles what it made, and this process reads it. Without a fork, or when it gives no
    answer in time (several times what this process's own share took), this process does those
    rows too and None is returned."""
    split, helper = total, None
    if worth_sharing(total):
        helper = Forked.start(fork_part(total * 27 // 50))
        split = total if helper is None else total * 27 // 50
    if helper is None:
        own_part(0, total, 1)
        return None
    began = time.monotonic()
    try:
        own_part(0, split, 2)
        ok, answer = helper.answer(Forked.patience(time.monotonic() - began))
    finally:
        helper.close()
    if ok:
        return cast(_T, answer)
    own_part(split, total, 1)
    return None


def gc_paused(step: Callable[_P, _R]) -> Callable[_P, _R]:
    """An import step that runs with Python's cycle collector paused, and on again after it when it
    was on before: a step makes hundreds of thousands of rows, records and journal entries, all
    kept until it ends, and each collection would go over every one of them again (a second or
    more of a 100,000-row import). Nothing it makes is a cycle left to collect."""

    @functools.wraps(step)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with collector.paused():
            return step(*args, **kwargs)

    return paused


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
    encoding: str | None = None  # a CSV's text encoding (None: UTF-8, or detected)
    adopt_ladder: bool = False  # take the file's stage probabilities (models/import_ladder.py)
    limits: ReadLimits = field(default_factory=ReadLimits)  # what a file may hold (rows, columns, cell, MB)


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
    value_from: str  # "file", "lookup", "unknown" or "stored" (`value_unknown`)
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
    follow_up_time: str | None = None  # 'HH:MM', with a follow-up only
    follow_up_note: str | None = None

    @property
    def value_unknown(self) -> bool:
        """The file gives no value (and no lookup did): a new prospect is valued 0 and flagged for
        review ("unknown"); one imported before keeps the value stored in evpipe, and its flag
        ("stored": the record holds them, as the preview shows them)."""
        return self.value_from in ("unknown", "stored")


#: A record's fields in order, as a tuple (`Record(*values)` makes it again): how a fork hands
#: parsed rows back (models/import_plan.py), pickled in C rather than through the dataclass's
#: state, a Python call per field (0.57 -> 0.2 s for 46,000 records, both ways).
record_values = attrgetter(*(f.name for f in fields(Record)))


@dataclass
class StageMapping:
    file_name: str
    ladder_name: str | None
    how: str
    rows: int


@dataclass
class LadderCheck:
    """The file's ladder against the database's, for the rows the import takes."""

    source: str  # where the file's ladder was read, in words
    differences: list[tuple[str, int, int]] = field(default_factory=list)  # (stage here, file bp, here bp)
    mixed: list[str] = field(default_factory=list)  # stages here that file stages of two probabilities map to
    tv_cents: int = 0
    ev_here_micros: int = 0  # the imported rows' EV with this database's ladder
    ev_file_micros: int = 0  # ... with the file's
    existing_count: int = 0  # prospects already on the differing stages
    existing_shift_micros: int = 0  # how adopting moves their EV
    adopt: bool = False

    @property
    def same(self) -> bool:
        return not self.differences and not self.mixed

    def lines(self) -> list[str]:
        """What the preview says (nothing when the ladders agree)."""
        if self.same:
            return []
        out = []
        if self.differences:
            out.append(
                f"The file's ladder ({self.source}) gives {len(self.differences)} stage"
                f"{'s' if len(self.differences) != 1 else ''} another probability than this database: "
                + "; ".join(
                    f"{name} {format_percent(file_bp)} in the file, {format_percent(here_bp)} here"
                    for name, file_bp, here_bp in self.differences
                )
                + "."
            )
            ev_here = format_amount(self.ev_here_micros, micros=True)
            ev_file = format_amount(self.ev_file_micros, micros=True)
            if self.adopt:
                out.append(
                    f"Adopting the file's probabilities: the imported rows show EV {ev_file} (TV "
                    f"{format_amount(self.tv_cents)}), as they did where the file was made"
                    + (
                        f"; the {self.existing_count:,} prospects already on those stages move by EV "
                        f"{format_amount(self.existing_shift_micros, micros=True, signed=True)}."
                        if self.existing_count
                        else "."
                    )
                )
            else:
                out.append(
                    f"With this database's ladder the imported rows show EV {ev_here} (TV "
                    f"{format_amount(self.tv_cents)}); with the file's ladder they showed EV {ev_file}. "
                    "To take the file's probabilities, import with --adopt-ladder"
                    + (
                        f" (it also moves the EV of the {self.existing_count:,} prospects already on those "
                        f"stages by {format_amount(self.existing_shift_micros, micros=True, signed=True)})."
                        if self.existing_count
                        else "."
                    )
                )
        if self.mixed:
            out.append(
                "Stages mapped from file stages of different probabilities keep their probability here: "
                + ", ".join(self.mixed)
                + "."
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "same": self.same,
            "differences": [
                {"stage": name, "file": file_bp / 10_000, "here": here_bp / 10_000}
                for name, file_bp, here_bp in self.differences
            ],
            "mixed": self.mixed,
            "tv": money_str(self.tv_cents),
            "ev_here": money_str(self.ev_here_micros, micros=True),
            "ev_file": money_str(self.ev_file_micros, micros=True),
            "existing_prospects": self.existing_count,
            "existing_ev_shift": money_str(self.existing_shift_micros, micros=True),
            "adopt": self.adopt,
            "text": self.lines(),
        }


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
    #: field -> the custom field keeping its cell when evpipe stores something else (`KEPT_IN_FILE`)
    kept_names: dict[str, str] = field(default_factory=dict)
    ladder_check: LadderCheck | None = None  # the file's ladder against this one (models/import_ladder.py)
    rows_total: int | None = None  # rows read, kept when the sheet's rows are let go after planning

    @property
    def closed_from_inferred(self) -> bool:
        """Won and lost rows go on `closed_from` by the importer's guess, not by the user's word
        (--closed-from): the file says a row was won or lost, never which stage it closed from."""
        return self.closed_from is not None and not self.options.closed_from

    @property
    def rows_read(self) -> int:
        if self.rows_total is not None:
            return self.rows_total
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
        unmapped = [m for m in self.stage_mappings if m.ladder_name is None]
        if unmapped and (not self.records or not self.options.skip_bad):
            # the fix that applies: map the file's stages (most rows first), not skip every row
            unmapped.sort(key=lambda m: -m.rows)
            first = unmapped[0]
            more = f" (and {len(unmapped) - 1} more stages)" if len(unmapped) > 1 else ""
            fix = (
                f"stage {first.file_name!r} ({first.rows:,} row{'s' if first.rows != 1 else ''}) is not on the "
                f"ladder{more}: map it with --stage-map '{first.file_name}=STAGE' or add it with "
                f"--add-stage '{first.file_name}=PERCENT'"
            )
            if self.bad_rows:
                return f"{self.bad_rows:,} of {self.rows_read:,} rows cannot be taken; first, {fix}"
            return fix
        if not self.records:
            return "no row can be taken"
        if self.problems and not self.options.skip_bad:
            return (
                f"{self.bad_rows:,} of {self.rows_read:,} rows cannot be taken; fix them in the file, or "
                "import the others with --skip-bad"
            )
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
            out.append(
                {
                    "row": r.row,
                    "key": r.key,
                    "name": r.name,
                    "company": r.company,
                    "stage": self.stage_name(r.stage),
                    "value": money_str(r.value_cents),
                    "value_from": r.value_from,
                    "month": r.expected_month,
                    "owner": r.owner,
                    "created": r.created.isoformat() if r.created else None,
                    "closed_on": r.closed_on.isoformat() if r.closed_on else None,
                    "contact": r.contact_name,
                    "email": r.email,
                    "phone": r.phone,
                    "needs_review": r.needs_review,
                    "custom": dict(r.custom),
                }
            )
        return out

    def to_json(self, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "source": self.source,
            "read_as": self.sheet_data.described,
            "rows": self.rows_read,
            "columns": [{"column": h, "field": f, "meaning": FIELD_LABELS[f]} for h, f in self.columns],
            "stages": [
                {"in_file": m.file_name, "ladder": m.ladder_name, "how": m.how, "rows": m.rows}
                for m in self.stage_mappings
            ],
            "dates": self.date_order_how,
            "closed_from": self.closed_from,
            "closed_from_inferred": self.closed_from_inferred,
            "counts_by_stage": {name: n for name, n in self.counts_by_stage},
            "new": self.new_count,
            "updated": self.update_count,
            "unchanged": self.unchanged_count,
            "deleted_skipped": self.deleted_skipped,
            "missing_from_file": self.missing_from_file,
            "valued_from_lookup": self.valued_from_lookup,
            "needs_review": self.needs_review_count,
            "preview": self.preview_rows(rows),
            "problems": [p.to_json() for p in self.problems],
            "bad_rows": self.bad_rows,
            "warnings": self.warnings,
            "can_commit": self.can_commit,
            "why_not": self.why_not() or None,
            "ladder": self.ladder_check.to_json() if self.ladder_check else None,
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
    #: The KPI history planned by a fork while the import wrote (models/import_commit.py
    #: `_History`), for `after_import` to write; None: it rebuilds the history itself.
    history: Any = field(default=None, repr=False, compare=False)

    @property
    def summary(self) -> str:
        parts = [f"{self.created} new"]
        if self.updated:
            parts.append(f"{self.updated} updated")
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        if self.skipped_rows:
            parts.append(f"{self.skipped_rows} bad rows skipped")
        ev = format_amount(self.d_ev_micros, micros=True, signed=True)
        tv = format_amount(self.d_tv_cents, signed=True)
        return f"imported {self.source}: " + ", ".join(parts) + f"; TV {tv}, EV {ev}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "events": self.events,
            "skipped_rows": self.skipped_rows,
            "d_count": self.d_count,
            "d_tv": money_str(self.d_tv_cents),
            "d_ev": money_str(self.d_ev_micros, micros=True),
            "stages_added": list(self.stages_added),
            "summary": self.summary,
        }
