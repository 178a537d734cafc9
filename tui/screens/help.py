"""The help screen (`?`): every key binding, with its id (for the keymap file) and what it does."""

from __future__ import annotations

import textwrap

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
#: the help's height once the scroll bar appears, so paging would land on a different line).
HELP_WIDTH = 72

#: Where an entry's text starts: two spaces, the key in nine, one space.
TEXT_COLUMN = 12


#: Where a binding's id starts (the column a keymap file's reader looks down).
ID_COLUMN = 50


def entry(key: str, text: str, ident: str = "") -> list[str]:
    """One help entry: the key, its text wrapped under itself within `HELP_WIDTH` (or, with an
    id, within the column before the id), the id on the first line."""
    room = (ID_COLUMN - 1 if ident else HELP_WIDTH) - TEXT_COLUMN
    wrapped = textwrap.wrap(text, room) or [""]
    # keys wider than their column ('shift+up K') get a line of their own: the text and the id
    # stay in their columns under them, as every other entry's
    above = [f"  {key}"] if len(key) > TEXT_COLUMN - 3 else []
    shown = "" if above else key
    first = f"  {shown:<9} {wrapped[0]:<{room}} {ident}" if ident else f"  {shown:<9} {wrapped[0]}"
    return above + [first.rstrip()] + [" " * TEXT_COLUMN + line for line in wrapped[1:]]


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


def mark_lines() -> list[str]:
    return [line for key, text in MARKS for line in entry(key, text)]


def binding_lines(bindings: list[Binding], keymap: dict[str, str], descriptions: dict[str, str]) -> list[str]:
    lines = []
    for b in bindings:
        keys = keymap.get(b.id, b.key) if b.id else b.key
        action = b.action.partition("(")[0]
        text = descriptions.get(action, b.description or action)
        lines += entry(key_label(keys), text, b.id)
    return lines


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

    def __init__(self, sections: list[tuple[str, list[str]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("evpipe keys", classes="title", markup=False)
            # not focusable: its own page keys (a whole page, no overlap) would answer instead of
            # the screen's, depending on whether focus had reached it when a key came
            with VerticalScroll(can_focus=False):
                for title, lines in self.sections:
                    yield Static(Content.styled(title, "bold underline"))
                    yield Static("\n".join(lines) + "\n", markup=False)
                yield Static(
                    f'Remap a key by its id (right column) in the keymap file\n{keymap_path()}\nlike this:  "pipeline.advance" = "right,>"',
                    classes="hint",
                    markup=False,
                )
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
