"""Small typed modal dialogs: yes/no, one line of text, a contact point, a choice from a list.

Every dialog is keyboard-only and returns a value through `dismiss` (frogmouth's
`ModalScreen[...]` pattern). Whatever text a dialog shows that came from a user (a prospect's
name in a question, a stage name in a list) is shown literally, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select
from textual.widgets.option_list import Option

from evpipe.models import clock
from evpipe.models.errors import DomainError
from evpipe.models.store import ACTIVITY_KINDS
from evpipe.models.values import clean_text, parse_follow_up, parse_past_date, parse_past_moment, parse_time

T = TypeVar("T")

#: Tab and shift+tab between the fields of a form, as priority bindings: the app runs them as it
#: reads the key, before it hands the next key to the focused field. As ordinary bindings they ran
#: only after the field had passed the tab back up, so keys typed in one burst over a slow link
#: (`Sam Lee<Tab>sam@example.com`) all landed in the first field.
FIELD_KEYS = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="form.next_field"),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True, id="form.previous_field"),
]

DIALOG_CSS = """
{name} {{
    align: center middle;
    background: $background 60%;
}}
{name} > Vertical {{
    width: 64;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: round $primary;
    background: $surface;
    padding: 0 1;
}}
{name} Label {{
    width: 100%;
}}
{name} .title {{
    text-style: bold;
    width: 100%;
    margin-bottom: 1;
}}
{name} .keys {{
    color: $text-muted;
    margin-top: 1;
    width: 100%;
}}
{name} .error {{
    color: $text-error;
    width: 100%;
    display: none;
}}
{name} .error.-shown {{
    display: block;
}}
{name} Input, {name} Select {{
    width: 100%;
}}
{name} .field-label {{
    width: 100%;
}}
"""


def _css(name: str) -> str:
    return DIALOG_CSS.format(name=name)


class Dialog(ModalScreen[T]):
    """A modal screen that answers once. Keys that come in one burst with the one that closed it
    (a second Enter over a slow link) still reach it before it is gone, and Textual's `dismiss`
    would then call the caller back a second time and pop whatever screen is on top by then: the
    question the first answer opened, or the last screen (the app stopped: ScreenStackError)."""

    _answered = False

    def dismiss(self, result: T | None = None) -> AwaitComplete:
        if self._answered:
            return AwaitComplete.nothing()
        self._answered = True
        return super().dismiss(result)


class ConfirmDialog(Dialog[bool]):
    """Ask a yes/no question. `y` or `enter` answer yes; `n` or `escape` answer no."""

    DEFAULT_CSS = _css("ConfirmDialog")

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="dialog.yes"),
        Binding("n,escape", "answer(False)", "No", id="dialog.no"),
    ]

    def __init__(self, question: str, *, title: str = "Please confirm") -> None:
        super().__init__()
        self.question = question
        self.dialog_title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.dialog_title, classes="title", markup=False)
            yield Label(self.question, id="question", markup=False)
            yield Label("y/enter: yes    n/escape: no", classes="keys", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextPrompt(Dialog[str | None]):
    """Ask for one line of text. `enter` checks it with `validate` (a DomainError shows its message
    under the input and keeps the text); `escape` cancels with None."""

    DEFAULT_CSS = _css("TextPrompt")

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(
        self,
        title: str,
        label: str,
        initial: str = "",
        placeholder: str = "",
        validate: Callable[[str], object] | None = None,
    ) -> None:
        super().__init__()
        self.prompt_title = title
        self.label = label
        self.initial = initial
        self.placeholder = placeholder
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.prompt_title, classes="title", markup=False)
            yield Label(self.label, classes="field-label", markup=False)
            yield Input(self.initial, placeholder=self.placeholder, id="text")  # typing replaces it
            yield Label("", id="error", classes="error", markup=False)
            yield Label("enter: OK    escape: cancel", classes="keys", markup=False)

    def show_error(self, message: str) -> None:
        error = self.query_one("#error", Label)
        error.update(message)
        error.set_class(bool(message), "-shown")

    @on(Input.Changed, "#text")
    def clear_error(self) -> None:
        self.show_error("")

    @on(Input.Submitted, "#text")
    def submit(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if self.validate is not None:
            try:
                self.validate(text)
            except DomainError as exc:
                self.show_error(str(exc))
                return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ActivityDialog(Dialog[tuple[str, str, str] | None]):
    """Log a contact point: its kind (call, email, meeting, note), what happened, and when
    (default today). Returns (kind, text, when-text) or None."""

    DEFAULT_CSS = _css("ActivityDialog")

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="dialog.save"),
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
        *FIELD_KEYS,
    ]

    def __init__(self, *, kind: str = "call") -> None:
        super().__init__()
        self.initial_kind = kind if kind in ACTIVITY_KINDS else "call"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Log a contact point", classes="title", markup=False)
            yield Label("Kind", classes="field-label", markup=False)
            yield Select(
                [(Text(kind.capitalize()), kind) for kind in ACTIVITY_KINDS],
                value=self.initial_kind,
                allow_blank=False,
                id="kind",
                compact=True,
            )
            yield Label("What happened", classes="field-label", markup=False)
            yield Input(placeholder="e.g. Called, they want a quote for 80 guests", id="text")
            yield Label("", id="text-error", classes="error", markup=False)
            yield Label("When", classes="field-label", markup=False)
            yield Input("today", placeholder="today, yesterday 14:30, 3 days ago, fri 2pm, 2026-11-20", id="when")
            yield Label("", id="when-error", classes="error", markup=False)
            yield Label("enter on the last field or ctrl+s: save    escape: cancel", classes="keys", markup=False)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#text", Input))

    def _error(self, which: str, message: str) -> None:
        label = self.query_one(f"#{which}-error", Label)
        label.update(message)
        label.set_class(bool(message), "-shown")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.input.id in ("text", "when"):
            self._error(event.input.id, "")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "text":
            self.set_focus(self.query_one("#when", Input))  # now, before the next key
        else:
            self.action_save()

    def check(self) -> tuple[str, str, str] | None:
        kind = self.query_one("#kind", Select).value
        text = self.query_one("#text", Input).value
        when = self.query_one("#when", Input).value
        ok = True
        try:
            clean_text(text, field="what happened", max_len=20_000, required=True)
        except DomainError as exc:
            self._error("text", str(exc))
            ok = False
        moment, timed = None, False
        try:  # a day, and optionally its time of day (not later today: the save would refuse it)
            moment, timed = parse_past_moment(when, clock.now())
        except DomainError as exc:
            self._error("when", str(exc))
            ok = False
        if not ok or moment is None:
            return None
        return str(kind), text, moment.date().isoformat() + (f" {moment:%H:%M}" if timed else "")

    def action_save(self) -> None:
        result = self.check()
        if result is None:
            if self.query_one("#text-error", Label).has_class("-shown"):
                self.set_focus(self.query_one("#text", Input))
            else:
                self.set_focus(self.query_one("#when", Input))
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        """Close without logging; what was typed in "What happened" is asked about first (the
        edit form asks the same: escape lost a long note at once)."""
        if not self.query_one("#text", Input).value.strip():
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(ConfirmDialog("Discard what you typed?", title="Not logged"), answered)


@dataclass(frozen=True)
class NextStep:
    """The next follow-up as the rep gave it, checked: a day (None clears it), a time, a note."""

    day: date | None
    time: str | None
    note: str | None


class FollowUpDialog(Dialog[NextStep | None]):
    """Ask for the next follow-up: its day (prefilled), optionally its time and what it is about.
    `enter` saves; `escape` skips (None: the follow-up stays as it was)."""

    DEFAULT_CSS = _css("FollowUpDialog")

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="dialog.save"),
        Binding("escape", "cancel", "Skip", id="dialog.cancel"),
        *FIELD_KEYS,
    ]

    def __init__(self, title: str, day: date | None, time: str | None = None, note: str | None = None) -> None:
        super().__init__()
        self.dialog_title = title
        self.initial = (day.isoformat() if day else "", time or "", note or "")

    def compose(self) -> ComposeResult:
        day, time, note = self.initial
        with Vertical(id="dialog"):
            yield Label(self.dialog_title, classes="title", markup=False)
            yield Label("Next follow-up (blank or none: no follow-up)", classes="field-label", markup=False)
            yield Input(day, placeholder="fri, +3d, 2w, 15 jan, 2027-01-15", id="day")
            yield Label("", id="day-error", classes="error", markup=False)
            yield Label("Time (optional)", classes="field-label", markup=False)
            yield Input(time, placeholder="14:30 or 2pm", id="time")
            yield Label("", id="time-error", classes="error", markup=False)
            yield Label("About (optional)", classes="field-label", markup=False)
            yield Input(note, placeholder="e.g. send the quote, call back about dates", id="note")
            yield Label("", id="note-error", classes="error", markup=False)
            yield Label("enter: save    tab: next field    escape: skip", classes="keys", markup=False)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#day", Input))

    def _error(self, which: str, message: str) -> None:
        label = self.query_one(f"#{which}-error", Label)
        label.update(message)
        label.set_class(bool(message), "-shown")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.input.id in ("day", "time", "note"):
            self._error(event.input.id, "")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def check(self) -> NextStep | None:
        values: dict[str, object] = {}
        readers: dict[str, Callable[[str], object]] = {
            "day": parse_follow_up,
            "time": lambda t: parse_time(t, field="time"),
            "note": lambda t: clean_text(t, field="about", max_len=500) or None,
        }
        for which, read in readers.items():
            try:
                values[which] = read(self.query_one(f"#{which}", Input).value)
            except DomainError as exc:
                self._error(which, str(exc))
                self.set_focus(self.query_one(f"#{which}", Input))
                return None
        day = values["day"]
        assert day is None or isinstance(day, date)
        if day is None:  # no follow-up: no time or note either
            return NextStep(None, None, None)
        return NextStep(day, values["time"], values["note"])  # type: ignore[arg-type]

    def action_save(self) -> None:
        answer = self.check()
        if answer is not None:
            self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceDialog(Dialog[T | None], Generic[T]):
    """Pick one of a few options (for example the stage a removed stage's prospects move to).
    `enter` picks the highlighted one; `escape` cancels with None."""

    DEFAULT_CSS = (
        _css("ChoiceDialog")
        + """
    ChoiceDialog OptionList { height: auto; max-height: 12; }
    """
    )

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, question: str, options: list[tuple[str, T]]) -> None:
        super().__init__()
        self.choice_title = title
        self.question = question
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.choice_title, classes="title", markup=False)
            yield Label(self.question, markup=False)
            yield OptionList(
                *[Option(Text(label), id=str(i)) for i, (label, _) in enumerate(self.options)], id="choices"
            )
            yield Label("up/down: choose    enter: OK    escape: cancel", classes="keys", markup=False)

    def on_mount(self) -> None:
        choices = self.query_one("#choices", OptionList)
        choices.highlighted = 0 if self.options else None
        self.set_focus(choices)

    @on(OptionList.OptionSelected, "#choices")
    def picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.options[event.option_index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)


__all__ = [
    "FIELD_KEYS",
    "ActivityDialog",
    "FollowUpDialog",
    "NextStep",
    "ChoiceDialog",
    "ConfirmDialog",
    "TextPrompt",
    "parse_follow_up",
    "parse_past_date",
]
