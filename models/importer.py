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
  forecast-vs-actual have something to work with. Unless the user named that stage, it is a guess:
  both history rows are marked `inferred`, and sighting in does not learn from them.
- Every new prospect gets an "import" journal entry (category "new") with its exact effect on the
  KPIs, and closed ones a second one (category "win" or "lose"); updates on re-import get "edit"
  and move entries. So the KPI bridges add up exactly.

The parts, each in its own module: column names and synonyms (import_fields), reading a file
(import_read) and its cells (import_cells), one row into a record (import_rows), the plan
(import_plan), its commit (import_commit, journalled by models/journal.py), and the types they
share (import_types). From 3,000 rows (SHARE_ROWS) the reading and the making of new prospects are shared
with a fork of the process (models/forked.py), with the same result. This module keeps the names
callers use.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from .import_commit import after_import, commit_import, history_not_kept
from .import_fields import FIELD_LABELS, FIELDS, field_for, guess_field, header_key, name_key
from .import_plan import plan_import
from .import_read import Progress, SheetData, read_table
from .import_rows import load_lookup
from .import_types import PREVIEW_ROWS, ImportOptions, ImportPlan, ImportResult, Problem, Record, StageMapping
from .values import MAX_CUSTOM_FIELDS


def import_file(
    engine: Engine,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    who: str,
    progress: Progress | None = None,
) -> tuple[ImportPlan, ImportResult]:
    """Plan and commit in one call (scripts and tests); raises when the plan cannot be committed."""
    plan = plan_import(engine, path, options, who=who, progress=progress)
    result = commit_import(engine, plan, who=who, progress=progress)
    after_import(engine, result)
    return plan, result


__all__ = [
    "FIELDS",
    "FIELD_LABELS",
    "MAX_CUSTOM_FIELDS",
    "PREVIEW_ROWS",
    "ImportOptions",
    "ImportPlan",
    "ImportResult",
    "Problem",
    "Progress",
    "Record",
    "SheetData",
    "StageMapping",
    "after_import",
    "commit_import",
    "field_for",
    "guess_field",
    "history_not_kept",
    "header_key",
    "import_file",
    "load_lookup",
    "name_key",
    "plan_import",
    "read_table",
]
