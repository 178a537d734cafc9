"""The add / edit form for one prospect, with inline validation.

Adding, the form never writes: it dismisses with the keyword arguments for `Store.add(**d)` and
the caller runs the write in a worker. Editing, it is given `save` (the changed fields and the
version the form was opened on -> `Store.edit`), hands it to the app's saver and stays open until
the change is saved: a change someone made since to the same fields is refused with who changed
what (the store merges one to other fields), and the form keeps everything typed, so that ctrl+s
can save it over theirs or esc leave theirs. Every field is checked as it is typed with the same parsers the store
uses (models.values), so what the form accepts the store accepts; an error shows under its field
and everything typed stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from evpipe.models.errors import Conflict, DomainError
from evpipe.models.store import MAX_CUSTOM_FIELDS, ProspectInfo, StageInfo
from evpipe.models.values import (
    clean_email,
    clean_text,
    format_money,
    format_percent,
    money_str,
    month_label,
    parse_expected_month,
    parse_follow_up,
    parse_money,
)

from ..access import evpipe_app
from ..dialogs import FIELD_KEYS, ConfirmDialog, Dialog
from ..failed_work import ReportsFailedWork
from ..messages import ChangeFailed, ChangeSaved
from ..saving import Change

if TYPE_CHECKING:
    from evpipe.models.records import ChangeResult

#: Saving an edit: (the changed fields, the version of the prospect they were typed on) -> the
#: store's result; run in the saver's worker.
SaveEdit = Callable[[dict[str, Any], int], "ChangeResult"]

#: How long "Some fields need fixing" shows; ctrl+s again meanwhile does not say it again.
FIX_NOTICE_SECONDS = 5.0


class WrappedArea(TextArea):
    """A soft-wrapped TextArea that paints its lines again when its width changes. Textual's wraps
    the text anew on a resize but keeps the lines it painted at the old width: after the terminal
    was narrowed mid-form the notes showed their old first line cut at the edge (words missing),
    and widened again, the narrow wrapping."""

    def _on_resize(self) -> None:
        super()._on_resize()
        self.refresh()


#: (field id, label, placeholder) of the one-line text fields, in form order.
TEXT_FIELDS = [
    ("name", "Name", "what the sale is, e.g. Harbour Events Christmas party"),
    ("company", "Company", ""),
    ("contact_name", "Contact", "the person you deal with"),
    ("email", "Email", ""),
    ("phone", "Phone", ""),
    ("value", "Value", "9500, 9,500.00 or $9 500"),
]
DATE_FIELDS = [
    ("month", "Expected month", "2027-01, jan 2027 or jan"),
    ("follow_up", "Next follow-up", "2026-12-04, 4/12/2026, fri, +3d; blank: none"),
    ("owner", "Owner", "the rep"),
]


@dataclass(frozen=True)
class Checked:
    """One field's value after checking: what the store will be given, and a short reading of it."""

    value: Any
    reading: str = ""


def _check_name(text: str) -> Checked:
    return Checked(clean_text(text, field="name", max_len=200, required=True))


def _plain(field: str, max_len: int) -> Callable[[str], Checked]:
    def check(text: str) -> Checked:
        return Checked(clean_text(text, field=field, max_len=max_len))

    return check


def _check_email(text: str) -> Checked:
    return Checked(clean_email(text))


def _check_value(text: str) -> Checked:
    cents = parse_money(text)
    return Checked(cents, format_money(cents))


def _check_month(text: str) -> Checked:
    month = parse_expected_month(text, field="expected month")  # (blank or none: no month)
    return Checked(month, month_label(month) if month is not None else "none")


def _check_follow_up(text: str) -> Checked:
    day = parse_follow_up(text, field="next follow-up")  # (it clears as everywhere: blank, none, clear, -)
    if day is None:
        return Checked(None, "none")
    return Checked(day, f"{day:%a} {day.day} {day:%b %Y}")


def parse_custom(text: str) -> dict[str, str]:
    """Custom fields typed as `name: value` lines. A line indented by two spaces continues the
    value above it (a value of several lines). Blank lines are skipped; a line without a colon, an
    empty name or a name given twice is an error that says which line."""
    out: dict[str, str] = {}
    last: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("  ") and last is not None:
            out[last] = clean_text(out[last] + "\n" + line[2:], field=f"custom field {last}", max_len=5000)
            continue
        if ":" not in line:
            shown = line.strip() if len(line.strip()) <= 30 else line.strip()[:27] + "..."
            raise DomainError(
                f"custom fields: line {number} {shown!r} needs a name, a colon and the text, such as Guests: 80",
                field="custom",
            )
        key, value = line.split(":", 1)
        key = clean_text(key, field=f"custom fields: line {number}: the name", max_len=80, required=True)
        if key.casefold() in (k.casefold() for k in out):
            raise DomainError(f"custom fields: line {number}: {key!r} is given twice", field="custom")
        out[key] = clean_text(value, field=f"custom field {key}", max_len=5000)
        last = key
    if len(out) > MAX_CUSTOM_FIELDS:
        raise DomainError(f"custom fields: at most {MAX_CUSTOM_FIELDS} per prospect", field="custom")
    return out


def format_custom(custom: dict[str, str]) -> str:
    """The text parse_custom reads back to the same fields (later lines of a value indented)."""
    return "\n".join(f"{key}: " + str(value).replace("\n", "\n  ") for key, value in custom.items())


CHECKS: dict[str, Callable[[str], Checked]] = {
    "name": _check_name,
    "company": _plain("company", 200),
    "contact_name": _plain("contact", 200),
    "email": _check_email,
    "phone": _plain("phone", 80),
    "value": _check_value,
    "month": _check_month,
    "follow_up": _check_follow_up,
    "owner": _plain("owner", 80),
    "notes": _plain("notes", 20_000),
    "custom": lambda text: Checked(parse_custom(text)),
}

#: The fields whose reading (what the typed text was understood as) is shown beside them.
READ_BACK = ("value", "month", "follow_up")


class ProspectForm(ReportsFailedWork, Dialog[dict | None]):
    """Add a prospect (prospect=None) or edit one. Dismisses with the kwargs to write, or None."""

    CSS_PATH = "prospect_form.tcss"

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        *FIELD_KEYS,
    ]

    def __init__(
        self,
        ladder: list[StageInfo],
        prospect: ProspectInfo | None = None,
        owner: str = "",
        *,
        save: SaveEdit | None = None,
    ) -> None:
        super().__init__()
        self.ladder = [s for s in ladder if s.kind in ("open", "won", "lost")]
        self.prospect = prospect
        self.default_owner = owner
        self.initial = self._initial_texts()
        self.save = save if prospect is not None else None
        #: The version the typed values are based on: the one opened, or after a refusal the one
        #: that refused them (so that saving again means "mine over theirs").
        self.base_version = prospect.version if prospect is not None else 0
        self.saving = False
        self._change: Change | None = None  # the save on its way, or the last that failed
        self._fix_said = -FIX_NOTICE_SECONDS  # when "Some fields need fixing" was last said

    # ------------------------------------------------------------ building

    def _initial_texts(self) -> dict[str, str]:
        p = self.prospect
        if p is None:
            return {
                "name": "",
                "company": "",
                "contact_name": "",
                "email": "",
                "phone": "",
                "value": "",
                "month": "",
                "follow_up": "",
                "owner": self.default_owner,
                "notes": "",
                "custom": "",
            }
        return {
            "name": p.name,
            "company": p.company,
            "contact_name": p.contact_name,
            "email": p.email,
            "phone": p.phone,
            "value": format_money(p.value_cents),
            "month": p.expected_month or "",
            "follow_up": p.next_follow_up.isoformat() if p.next_follow_up else "",
            "owner": p.owner,
            "notes": p.notes,
            "custom": format_custom(p.custom),
        }

    @property
    def editing(self) -> bool:
        return self.prospect is not None

    def _row(self, field: str, label: str, placeholder: str) -> ComposeResult:
        with Horizontal(classes="row", id=f"row-{field}"):
            yield Label(label, classes="field-label", markup=False)
            yield Input(self.initial[field], placeholder=placeholder, id=field, compact=True, select_on_focus=False)
            if field in READ_BACK:
                yield Label("", id=f"{field}-reading", classes="reading", markup=False)
        yield Label("", id=f"{field}-error", classes="error", markup=False)

    def compose(self) -> ComposeResult:
        p = self.prospect
        with Vertical(id="form"):
            if p is None:
                yield Label("Add a prospect", id="form-title", markup=False)
            else:
                yield Static(Content.from_markup("Edit [b]$name[/b]", name=p.name), id="form-title")
            with VerticalScroll(id="fields"):
                if p is not None:  # why an edit was not saved (someone changed the same field)
                    yield Label("", id="conflict-error", classes="error", markup=False)
                for field, label, placeholder in TEXT_FIELDS:
                    yield from self._row(field, label, placeholder)
                with Horizontal(classes="row", id="row-stage"):
                    yield Label("Stage", classes="field-label", markup=False)
                    if p is None:
                        opens = [s for s in self.ladder if s.kind == "open"]
                        first = opens[0].id if opens else (self.ladder[0].id if self.ladder else Select.NULL)
                        yield Select(
                            [(Text(f"{s.name} ({s.percent})"), s.id) for s in self.ladder],
                            value=first,
                            allow_blank=False,
                            id="stage",
                            compact=True,
                        )
                    else:
                        yield Label(
                            Text(f"{p.stage_name} ({self._percent(p)})  ", style="bold")
                            + Text("move it with > < w l", style="dim"),
                            id="stage-fixed",
                        )
                for field, label, placeholder in DATE_FIELDS:
                    yield from self._row(field, label, placeholder)
                yield Label("Notes", classes="area-label", markup=False)
                yield WrappedArea(
                    self.initial["notes"], id="notes", soft_wrap=True, tab_behavior="focus", show_line_numbers=False
                )
                yield Label("", id="notes-error", classes="error", markup=False)
                yield Label("Custom fields, one per line as  name: value", classes="area-label", markup=False)
                yield WrappedArea(
                    self.initial["custom"], id="custom", soft_wrap=True, tab_behavior="focus", show_line_numbers=False
                )
                yield Label("", id="custom-error", classes="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
                yield Label("ctrl+s save  tab next field  esc cancel", id="form-keys", markup=False)

    @staticmethod
    def _percent(p: ProspectInfo) -> str:
        return format_percent(p.probability_bp)

    def on_mount(self) -> None:
        for field in READ_BACK:
            if self.initial[field]:
                self.check_field(field, quiet=True)
        self.set_focus(self.query_one("#name", Input))

    # ------------------------------------------------------------ reading the fields

    def text_of(self, field: str) -> str:
        if field in ("notes", "custom"):
            return self.query_one(f"#{field}", TextArea).text
        return self.query_one(f"#{field}", Input).value

    def texts(self) -> dict[str, str]:
        return {field: self.text_of(field) for field in CHECKS}

    def stage_value(self) -> int | None:
        if self.editing:
            return None
        value = self.query_one("#stage", Select).value
        return None if value is Select.NULL else int(value)

    @property
    def is_dirty(self) -> bool:
        if self.texts() != self.initial:
            return True
        if not self.editing:
            opens = [s for s in self.ladder if s.kind == "open"]
            first = opens[0].id if opens else None
            return self.stage_value() != first
        return False

    def show_error(self, field: str, message: str) -> None:
        error = self.query_one(f"#{field}-error", Label)
        error.update(message)
        error.set_class(bool(message), "-shown")
        widget = self.query_one(f"#{field}")
        widget.set_class(bool(message), "-invalid")

    def check_field(self, field: str, *, quiet: bool = False) -> Checked | None:
        """Check one field; show its error (or clear it) and its reading. None when it is wrong."""
        text = self.text_of(field)
        try:
            checked = CHECKS[field](text)
        except DomainError as exc:
            if not quiet or text.strip():
                self.show_error(field, str(exc))
            if field in READ_BACK:
                self.query_one(f"#{field}-reading", Label).update("")
            return None
        self.show_error(field, "")
        if field in READ_BACK:
            reading = checked.reading if text.strip() and checked.reading != text.strip() else ""
            self.query_one(f"#{field}-reading", Label).update(reading)
        return checked

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        field = event.input.id
        if field not in CHECKS:
            return
        # Check as you type, but do not shout "required" at an empty field before it is saved.
        if field == "name" and not event.value.strip():
            self.show_error("name", "")
            return
        if field == "value" and not event.value.strip():
            self.show_error("value", "")
            self.query_one("#value-reading", Label).update("")
            return
        self.check_field(field)

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        """`enter` in a one-line field saves the form (every field is checked first)."""
        event.stop()
        self.action_save()

    @on(TextArea.Changed)
    def _area_changed(self, event: TextArea.Changed) -> None:
        field = event.text_area.id
        if field in CHECKS:
            self.check_field(field)

    # ------------------------------------------------------------ saving

    def collect(self) -> dict[str, Any] | None:
        """Check every field; return the kwargs to write, or None (and show every error)."""
        values: dict[str, Any] = {}
        bad: list[str] = []
        for field in CHECKS:
            if self.editing and self.text_of(field) == self.initial[field]:
                # Untouched: it is what the database holds, even if it came from an import or an
                # older evpipe that checked less. Editing one field never fails on another.
                self.show_error(field, "")
                continue
            checked = self.check_field(field)
            if checked is None:
                bad.append(field)
            else:
                values[field] = checked.value
        if bad:
            self.set_focus(self.query_one(f"#{bad[0]}"))
            self.query_one(f"#{bad[0]}-error", Label).scroll_visible(animate=False)
            return None
        if not self.editing:
            stage = self.stage_value()
            return {
                "name": values["name"],
                "value": money_str(values["value"]),
                "stage": stage,
                "month": values["month"],
                "company": values["company"],
                "contact_name": values["contact_name"],
                "email": values["email"],
                "phone": values["phone"],
                "notes": values["notes"],
                "custom": values["custom"],
                "owner": values["owner"] or None,
                "follow_up": values["follow_up"],
            }
        p = self.prospect
        assert p is not None
        current = {
            "name": p.name,
            "company": p.company,
            "contact_name": p.contact_name,
            "email": p.email,
            "phone": p.phone,
            "value": p.value_cents,
            "month": p.expected_month,
            "follow_up": p.next_follow_up,
            "owner": p.owner,
            "notes": p.notes,
            "custom": p.custom,
        }
        changed = {field: value for field, value in values.items() if value != current[field]}
        if "value" in changed:
            changed["value"] = money_str(changed["value"])
        return changed

    def action_save(self) -> None:
        result = self.collect()
        if result is None:
            # once while it shows: ctrl+s pressed again on the same errors stacked the notices over
            # the form's title and first fields (each field says what is wrong under it)
            now = time.monotonic()
            if now - self._fix_said >= FIX_NOTICE_SECONDS:
                self._fix_said = now
                self.notify(
                    "Some fields need fixing; nothing was saved yet.",
                    severity="warning",
                    markup=False,
                    timeout=FIX_NOTICE_SECONDS,
                )
            return
        if self.editing and not result:
            self.notify("Nothing changed.", markup=False)
            self.dismiss(None)
            return
        if self.save is not None:
            self._send(result)
            return
        self.dismiss(result)

    # ------------------------------------------------------------ saving an edit from the form

    def _send(self, fields: dict[str, Any]) -> None:
        if self.saving:
            return
        self.saving = True
        save, version = self.save, self.base_version
        assert save is not None and self.prospect is not None
        self.query_one("#form-keys", Label).update("saving…")
        self._change = Change(lambda: save(fields, version), self, self.prospect.id)
        evpipe_app(self).saver.save(self._change)

    def on_change_saved(self, message: ChangeSaved) -> None:
        message.stop()
        self.saving = False
        result = message.result
        self.app.notify(result.summary, markup=False, timeout=4)
        for warning in result.warnings:
            self.app.notify(warning, markup=False, severity="warning", timeout=6)
        evpipe_app(self).data_changed(result)  # the pipeline, the prospect page, the KPI history
        self.dismiss(None)

    def on_change_failed(self, message: ChangeFailed) -> None:
        message.stop()
        self.saving = False
        self.query_one("#form-keys", Label).update("ctrl+s save  tab next field  esc cancel")
        if isinstance(message.cause, Conflict):
            self.show_conflict(
                f"Not saved: {message.error}. What you typed is still here: ctrl+s saves it over "
                "that, esc leaves it as it is."
            )
            self._rebase(message.error)
            return
        if message.retryable:
            # the form keeps what was typed and saves it again itself: not `R`'s to save later too
            # (after esc had let it go), and not "undone on screen", which it is not
            if self._change is not None:
                evpipe_app(self).saver.withdraw(self._change)
            self.show_conflict(
                f"Not saved: {message.reason}. What you typed is still here: ctrl+s tries again, esc leaves it."
            )
            return
        self.show_conflict(f"Not saved: {message.error}")

    def show_conflict(self, text: str) -> None:
        """Say at the top of the form why the save did not happen (the typed values stay)."""
        label = self.query_one("#conflict-error", Label)
        label.update(text)
        label.set_class(bool(text), "-shown")
        label.scroll_visible(animate=False)

    @work(thread=True, exclusive=True, group="form-rebase", exit_on_error=False, description="read the prospect")
    def _rebase(self, refused: str) -> None:
        assert self.prospect is not None
        try:
            latest = evpipe_app(self).store.get(self.prospect.id)
        except DomainError:
            # (deleted since, say: the refusal already names who did it and when, which "there is
            # no prospect #29" put in its place had not)
            self.app.call_from_thread(
                self.show_conflict,
                f"Not saved: {refused}. It is not there to save to any more: esc closes the form.",
            )
            return
        self.app.call_from_thread(self._rebased, latest)

    def _rebased(self, latest: ProspectInfo) -> None:
        """Saving again now compares what was typed with the prospect as it is now."""
        self.prospect = latest
        self.base_version = latest.version

    def action_cancel(self) -> None:
        if self.saving:
            # (discarding now would not stop the save: another writer may hold it, and it goes in then)
            self.app.notify(
                "Saving what you typed: the form closes once it is saved, or says why not.",
                markup=False,
                severity="warning",
            )
            return
        if not self.is_dirty:
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(ConfirmDialog("Discard the changes you typed?", title="Unsaved changes"), answered)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


__all__ = ["ProspectForm", "format_custom", "parse_custom"]
