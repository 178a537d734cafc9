"""The help screen (`?`): every key binding, with its id (for the keymap file) and what it does."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any, NamedTuple

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from evpipe.models.locations import keymap_path

from ..dialogs import Dialog


def key_label(keys: str) -> str:
    """'greater_than_sign,full_stop' -> '> .'"""
    names = {
        "greater_than_sign": ">",
        "less_than_sign": "<",
        "full_stop": ".",
        "comma": ",",
        "slash": "/",
        "question_mark": "?",
        "escape": "esc",
        "enter": "enter",
    }
    return " ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


#: The widest line the help writes: an 80-column terminal less the box's border, padding and
#: scroll bar is 74, so no line wraps there (a wrapped line loses its indent, and wrapping changes
#: the help's height once the scroll bar appears, so paging would land on a different line). A
#: narrower terminal has the help laid out again for its width (`lay_out`).
HELP_WIDTH = 72

#: Where an entry's text starts: two spaces, the key in nine, one space.
TEXT_COLUMN = 12


#: Where a binding's id starts (the column a keymap file's reader looks down).
ID_COLUMN = 50

#: The narrowest the text may be beside the ids: narrower, the ids go under their text.
MIN_TEXT = 16


class Entry(NamedTuple):
    """One line of the help before it is laid out: the key, what it does, its id (if any)."""

    key: str
    text: str
    ident: str = ""


def id_column(entries: Iterable[Entry], width: int = HELP_WIDTH) -> int | None:
    """Where the ids start in lines at most `width` wide: at ID_COLUMN, or further left so that the
    longest id fits; None when the text beside them would be narrower than MIN_TEXT (the ids then
    go under their text)."""
    longest = max((len(e.ident) for e in entries), default=0)
    column = min(ID_COLUMN, width - longest)
    return column if column - 1 - TEXT_COLUMN >= MIN_TEXT else None


def entry_lines(e: Entry, width: int = HELP_WIDTH, ids_at: int | None = ID_COLUMN) -> list[str]:
    """One help entry in lines at most `width` wide: the key, its text wrapped under itself (with
    an id, within the column before the id, which is on the first line; `ids_at` None: the id on
    a line of its own under the text)."""
    beside = bool(e.ident) and ids_at is not None
    room = max(1, (ids_at - 1 if beside and ids_at is not None else width) - TEXT_COLUMN)
    wrapped = textwrap.wrap(e.text, room) or [""]
    # keys wider than their column ('shift+up K') get a line of their own: the text and the id
    # stay in their columns under them, as every other entry's
    above = [f"  {e.key}"] if len(e.key) > TEXT_COLUMN - 3 else []
    shown = "" if above else e.key
    first = f"  {shown:<9} {wrapped[0]:<{room}} {e.ident}" if beside else f"  {shown:<9} {wrapped[0]}"
    under = [" " * TEXT_COLUMN + e.ident] if e.ident and not beside else []
    return above + [first.rstrip()] + [" " * TEXT_COLUMN + line for line in wrapped[1:]] + under


def lay_out(entries: list[Entry], width: int = HELP_WIDTH, ids_at: int | None = ID_COLUMN) -> list[str]:
    return [line for e in entries for line in entry_lines(e, width, ids_at)]


def entry(key: str, text: str, ident: str = "") -> list[str]:
    """One help entry's lines at HELP_WIDTH (see `entry_lines`)."""
    return entry_lines(Entry(key, text, ident))


#: What the marks on the screens mean (the help's "Marks" section).
MARKS = (
    ("!", "a follow-up overdue (the Due column shows its day)"),
    ("~", "stale: no contact and no stage move for longer than its stage allows (Stages screen: days until stale)"),
    ("▲ ▼ 7d", "in the header: the change over the last 7 days (today and the six days before), e.g. ▲ +1,700 7d"),
    (
        "↑ ↓",
        "the column the list is sorted by (s cycles the sorts; sorted by next-step gain, "
        "the EV column shows the gain: Gain↓)",
    ),
    ("Due", "the day of the next follow-up"),
    ("* ?", "Forecast: * a month not over yet; ? ended, with prospects still open (provisional)"),
)


def mark_entries() -> list[Entry]:
    return [Entry(key, text) for key, text in MARKS]


def binding_entries(bindings: list[Binding], keymap: dict[str, str], descriptions: dict[str, str]) -> list[Entry]:
    entries = []
    for b in bindings:
        keys = keymap.get(b.id, b.key) if b.id else b.key
        action = b.action.partition("(")[0]
        text = descriptions.get(action, b.description or action)
        entries.append(Entry(key_label(keys), text, b.id or ""))
    return entries


class HelpView(VerticalScroll):
    """The help's sections, laid out again for the width they have whenever it changes: at 60
    columns the lines made for 80 wrapped, each id on a line of its own under its key."""

    def __init__(self, sections: list[tuple[str, list[Entry]]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sections = sections
        self.width = HELP_WIDTH

    def compose(self) -> ComposeResult:
        for title, _entries in self.sections:
            yield Static(Content.styled(title, "bold underline"))
            yield Static(self._text(_entries), classes="entries", markup=False)
        yield Static(
            f'Remap a key by its id (the dotted name with it) in the keymap file\n{keymap_path()}\nlike this:  "pipeline.advance" = "right,>"',
            classes="hint",
            markup=False,
        )

    def _text(self, entries: list[Entry]) -> str:
        every = [e for _, section in self.sections for e in section]  # the ids in one column throughout
        return "\n".join(lay_out(entries, self.width, id_column(every, self.width))) + "\n"

    def on_resize(self, event: events.Resize) -> None:
        # the room for text whether or not the scroll bar shows, so its coming changes nothing
        width = min(HELP_WIDTH, event.size.width - self.styles.scrollbar_size_vertical)
        if width == self.width or width < 1:
            return
        self.width = width
        for (_, entries), static in zip(self.sections, self.query(".entries").results(Static)):
            static.update(self._text(entries))


class HelpScreen(Dialog[None]):
    """Lists the bindings it is given, grouped by where they work."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
    }
    HelpScreen > Vertical {
        width: 100%;
        max-width: 100;
        height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen VerticalScroll {
        height: 1fr;
    }
    HelpScreen .title {
        text-style: bold;
    }
    HelpScreen .hint {
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
        Binding("down,j", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("up,k", "scroll(-1)", "Up", show=False, id="help.up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="help.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="help.page_up"),
        Binding("home", "edge(-1)", "Top", show=False, id="help.top"),
        Binding("end", "edge(1)", "End", show=False, id="help.end"),
    ]

    def __init__(self, sections: list[tuple[str, list[Entry]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("evpipe keys", classes="title", markup=False)
            # not focusable: its own page keys (a whole page, no overlap) would answer instead of
            # the screen's, depending on whether focus had reached it when a key came
            yield HelpView(self.sections, can_focus=False)
            yield Static(
                "esc closes · j k pgup pgdn home end scroll · ctrl+p finds any command", classes="hint", markup=False
            )

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, delta: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=delta, animate=False)

    def action_page(self, direction: int) -> None:
        view = self.query_one(VerticalScroll)
        view.scroll_relative(y=direction * max(1, view.size.height - 1), animate=False)

    def action_edge(self, direction: int) -> None:
        view = self.query_one(VerticalScroll)
        view.scroll_end(animate=False) if direction > 0 else view.scroll_home(animate=False)
