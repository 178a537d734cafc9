"""The import screen (`i`): a file, a preview, then one key to import it all or nothing.

The rep types a path (and, if the file needs them, options exactly as on the command line:
`--values products.csv --values-key product`, `--stage-map Hot=Quote sent` ...). Enter reads the
file in a thread worker and shows the preview: how the file was read, each column's meaning, the
stage mapping, the first rows as they will be stored, the count per stage, and every row that
cannot be taken with its row number and why. Nothing is written until ctrl+s; then the import
runs in one transaction in a worker, with a progress bar, and the KPI history is rebuilt.
Escape leaves without importing. Everything from the file is shown literally, never as markup.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, ProgressBar, Static

from evpipe.models.errors import DomainError
from evpipe.models.names import display_name
from evpipe.models.values import money_style

from ..access import evpipe_app
from ..failed_work import ReportsFailedWork
from ..messages import ImportDone, ImportFailed, ImportProgress, PlanFailed, PlanReady
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable
from ..widgets.path_suggester import PathSuggester

PHASES = {
    "read": "Reading the file",
    "check": "Checking rows",
    "write": "Preparing",
    "save": "Saving",
    "history": "Rebuilding the KPI history",
}


class ImportScreen(ReportsFailedWork, Screen):
    """Import prospects from a CSV or XLSX file."""

    CSS_PATH = "import_screen.tcss"

    BINDINGS = [
        Binding("ctrl+s", "commit", "Import", id="import.commit", priority=True),
        Binding("escape", "cancel", "Cancel", id="import.cancel", priority=True),
        Binding("ctrl+r", "preview", "Preview again", id="import.preview"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.plan: Any = None
        self.busy = False
        self.committing = False
        self._generation = 0

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(
            Text("Import prospects", style="bold") + Text("  CSV or XLSX; enter previews, ctrl+s imports", style="dim"),
            id="import-title",
        )
        with Horizontal(id="import-file-row"):
            yield Label("File", classes="field-label")
            yield Input(
                placeholder="path to a .csv or .xlsx file, e.g. ~/pipeline.xlsx; → completes",
                id="import-file",
                compact=True,
                suggester=PathSuggester(),
            )
        with Horizontal(id="import-options-row"):
            yield Label("Options", classes="field-label")
            yield Input(
                placeholder="as on the command line, e.g. --values products.csv --values-key product",
                id="import-options",
                compact=True,
            )
        yield ProgressBar(id="import-progress", show_eta=False)
        yield Static("", id="import-status")
        with VerticalScroll(id="import-preview"):
            yield Static("", id="import-summary")
            yield DataTable(id="import-columns", cursor_type="none", show_cursor=False)
            yield DataTable(id="import-stages", cursor_type="none", show_cursor=False)
            yield Static("", id="import-counts")
            yield KeyTable(id="import-rows", cursor_type="row", zebra_stripes=True)
            yield Static("", id="import-problems")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#import-progress", ProgressBar).display = False
        for table_id in ("#import-columns", "#import-stages", "#import-rows"):
            self.query_one(table_id, DataTable).display = False
        self.query_one("#import-file", Input).focus()

    # ------------------------------------------------------------ preview

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_preview()

    def _arguments(self) -> list[str]:
        path = self.query_one("#import-file", Input).value.strip()
        if not path:
            raise DomainError("Type the path of a CSV or XLSX file first.")
        if len(path) > 1 and path[0] == path[-1] and path[0] in "'\"":
            path = path[1:-1]
        try:
            extra = shlex.split(self.query_one("#import-options", Input).value)
        except ValueError as exc:
            raise DomainError(f"options: {exc}") from None
        return [str(Path(path).expanduser()), *extra]

    def action_preview(self) -> None:
        if self.committing:
            return
        try:
            args = self._arguments()
        except DomainError as exc:
            self._status(str(exc), error=True)
            return
        self._generation += 1
        self.plan = None
        self.busy = True
        self._status("Reading the file ...")
        self._show_progress("read", 0, 0)
        self.make_plan(args, self._generation)

    @work(thread=True, exclusive=True, group="import-plan", exit_on_error=False, description="import preview")
    def make_plan(self, args: list[str], generation: int) -> None:
        from evpipe.models.importer import plan_import

        from ..cli.args import options_from_args

        def progress(phase: str, done: int, total: int) -> None:
            self.post_message(ImportProgress(phase, done, total))

        try:
            path, options = options_from_args(args)
            plan = plan_import(
                evpipe_app(self).engine, path, options, who=evpipe_app(self).store.who, progress=progress
            )
        except DomainError as exc:
            self.post_message(PlanFailed(str(exc), generation))
        except Exception as exc:  # a file we cannot read at all: say so, never crash the app
            self.post_message(PlanFailed(f"import: could not read the file: {type(exc).__name__}: {exc}", generation))
        else:
            self.post_message(PlanReady(plan, generation))

    @on(ImportProgress)
    def _progress(self, message: ImportProgress) -> None:
        self._show_progress(message.phase, message.done, message.total)

    def _show_progress(self, phase: str, done: int, total: int) -> None:
        bar = self.query_one("#import-progress", ProgressBar)
        bar.display = True
        bar.update(total=total or None, progress=done)
        self._status(PHASES.get(phase, phase) + " ...")

    def _hide_progress(self) -> None:
        self.query_one("#import-progress", ProgressBar).display = False

    @on(PlanFailed)
    def _plan_failed(self, message: PlanFailed) -> None:
        if message.generation != self._generation:
            return
        self.busy = False
        self._hide_progress()
        self._clear_preview()
        self._status(message.error, error=True)

    @on(PlanReady)
    def _plan_ready(self, message: PlanReady) -> None:
        if message.generation != self._generation:
            return
        self.busy = False
        self._hide_progress()
        self.plan = plan = message.plan
        self._render_plan(plan)
        if plan.can_commit:
            self._status(
                f"Ready: ctrl+s imports {plan.new_count:,} new and {plan.update_count:,} updated "
                "prospects in one go; escape leaves without importing."
            )
        else:
            self._status(f"Cannot import yet: {plan.why_not()}.", error=True)

    def _clear_preview(self) -> None:
        self.query_one("#import-summary", Static).update("")
        self.query_one("#import-counts", Static).update("")
        self.query_one("#import-problems", Static).update("")
        for table_id in ("#import-columns", "#import-stages", "#import-rows"):
            table = self.query_one(table_id, DataTable)
            table.clear(columns=True)
            table.display = False

    def _render_plan(self, plan: Any) -> None:
        from evpipe.models.importer import FIELD_LABELS

        self._clear_preview()
        summary = Text()
        summary.append(plan.path.name, style="bold")
        summary.append(f": {plan.sheet_data.described}; {plan.rows_read:,} rows; imported as source ")
        summary.append(plan.source)
        if plan.sheet_data.encoding:
            summary.append("\n")
            summary.append(
                plan.sheet_data.encoding_text, style="yellow" if plan.sheet_data.encoding_how == "detected" else ""
            )
        summary.append(f"\nDates: {plan.date_order_how}")
        if plan.closed_from:
            summary.append(f"\nWon and lost rows: created on {plan.closed_from}, then closed at their close date")
        if plan.options.values_file:
            summary.append(
                f"\nValues: {plan.valued_from_lookup:,} rows valued from {Path(plan.options.values_file).name}"
            )
        if plan.needs_review_count:
            summary.append(f"\nFlagged for review (no value): {plan.needs_review_count:,}", style="yellow")
        self.query_one("#import-summary", Static).update(summary)

        columns = self.query_one("#import-columns", DataTable)
        columns.add_columns("Column", "Imported as")
        for header, f in plan.columns:
            columns.add_row(Text(header), Text(FIELD_LABELS[f], style="dim" if f in ("custom", "derived") else ""))
        columns.display = True

        if plan.stage_mappings:
            stages = self.query_one("#import-stages", DataTable)
            stages.add_columns("Stage in file", "Ladder stage", "How", Text("Rows", justify="right"))
            for m in plan.stage_mappings:
                target = Text(m.ladder_name) if m.ladder_name else Text("not on the ladder", style="bold red")
                stages.add_row(Text(m.file_name), target, Text(m.how), Text(f"{m.rows:,}", justify="right"))
            stages.display = True

        counts = Text("Per stage: ", style="bold")
        counts.append(", ".join(f"{name} {n:,}" for name, n in plan.counts_by_stage if n) or "none")
        counts.append(f"\nNew {plan.new_count:,}, updated {plan.update_count:,}, unchanged {plan.unchanged_count:,}")
        for line in plan.ladder_check.lines() if plan.ladder_check is not None else []:
            counts.append("\nLadder: ", style="bold yellow")
            counts.append(line)  # a Text: stage names never reach markup
        for warning in plan.warnings:
            counts.append("\n! ", style="bold yellow")
            counts.append(warning)
        self.query_one("#import-counts", Static).update(counts)

        rows = self.query_one("#import-rows", DataTable)
        rows.add_columns(
            Text("Row", justify="right"),
            "Name",
            "Company",
            "Stage",
            Text("Value", justify="right"),
            "Month",
            "Owner",
            "Custom fields",
        )
        preview = plan.preview_rows()
        money = money_style(int(r["value"].replace(".", "")) for r in preview)  # the column's one style, in full
        for r in preview:
            cents = int(r["value"].replace(".", ""))
            value = Text(money(cents) + ("*" if r["value_from"] != "file" else ""), justify="right")
            rows.add_row(
                Text(str(r["row"]), justify="right"),
                Text(display_name(r["name"])),
                Text(display_name(r["company"])),
                Text(r["stage"]),
                value,
                Text(r["month"] or ""),
                Text(r["owner"]),
                Text(", ".join(f"{k}={v}" for k, v in r["custom"].items())),
            )
        rows.display = bool(plan.records)

        if plan.problems:
            problems = Text(
                f"{plan.bad_rows:,} rows cannot be taken:" if plan.bad_rows else "Problems:", style="bold red"
            )
            for p in plan.problems[:200]:
                problems.append("\n• ")
                problems.append(p.text())
            if len(plan.problems) > 200:
                problems.append(f"\n... and {len(plan.problems) - 200} more")
            self.query_one("#import-problems", Static).update(problems)

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#import-status", Static)
        status.update(Text(text))
        status.set_class(error, "-error")

    # ------------------------------------------------------------ commit

    def action_commit(self) -> None:
        if self.committing:
            return
        if self.busy:
            self.notify("The preview is still being made.", markup=False, severity="warning")
            return
        if self.plan is None:
            self.notify("Press enter on the file name to see the preview first.", markup=False, severity="warning")
            return
        if not self.plan.can_commit:
            self.notify(f"Not imported: {self.plan.why_not()}", markup=False, severity="error", title="Import")
            return
        self.committing = True
        self._show_progress("write", 0, len(self.plan.records))
        self.write(self.plan)

    @work(thread=True, exclusive=True, group="import-write", exit_on_error=False, description="import")
    def write(self, plan: Any) -> None:
        from evpipe.models.importer import after_import, commit_import, history_not_kept

        def progress(phase: str, done: int, total: int) -> None:
            self.post_message(ImportProgress(phase, done, total))

        saver = evpipe_app(self).saver
        try:
            # under the saver's lock, as a save: the live check cannot read the import's journal
            # entries before they are noted as this session's own (it would tell them back as news)
            with saver.own_lock:
                result = commit_import(evpipe_app(self).engine, plan, who=evpipe_app(self).store.who, progress=progress)
                if result.first_event_id is not None and result.last_event_id is not None:
                    saver.own_ranges.append(range(result.first_event_id, result.last_event_id + 1))
        except DomainError as exc:
            self.post_message(ImportFailed(str(exc)))
            return
        except Exception as exc:  # the transaction rolled back: nothing was written
            self.post_message(ImportFailed(f"import: nothing written: {type(exc).__name__}: {exc}"))
            return
        self.post_message(ImportProgress("history", 0, 0))
        try:
            after_import(evpipe_app(self).engine, result)
        except Exception as exc:  # the import is saved whatever its history meets (a lock, sums past 64 bits)
            self.post_message(ImportDone(result, history_not_kept(exc)))
            return
        self.post_message(ImportDone(result))

    @on(ImportFailed)
    def _failed(self, message: ImportFailed) -> None:
        self.committing = False
        self._hide_progress()
        self._status(message.error, error=True)
        self.notify(message.error, markup=False, severity="error", title="Not imported")

    @on(ImportDone)
    def _done(self, message: ImportDone) -> None:
        self.committing = False
        self._hide_progress()
        data_changed = getattr(self.app, "data_changed", None)
        if data_changed is not None:
            data_changed(None)
        self.notify(message.result.summary, markup=False, title="Imported")
        if message.history_not_kept is not None:
            self.notify(message.history_not_kept, markup=False, severity="warning", title="Imported", timeout=20)
        self.dismiss(message.result)

    def action_cancel(self) -> None:
        if self.committing:
            self.notify(
                "The import is being written; it finishes (or fails) as a whole in a moment.",
                markup=False,
                severity="warning",
            )
            return
        self.workers.cancel_group(self, "import-plan")
        self.dismiss(None)
