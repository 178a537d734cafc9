"""The help screen (`?`): every key binding, with its id (for the keymap file) and what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from evpipe.models.locations import keymap_path


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


#: What the marks on the screens mean (the help's "Marks" section).
MARKS = (
    "  !         a follow-up overdue (the Due column shows its day)",
    "  ~         stale: no contact and no stage move for longer than its stage",
    "            allows (Stages screen: days until stale)",
    "  ▲ ▼ 7d    in the header: the change over the last 7 days (today and the",
    "            six days before), e.g. ▲ +1,700 7d",
    "  ↑ ↓       the column the list is sorted by (s cycles the sorts; sorted by",
    "            next-step gain, the EV column shows the gain: Gain↓)",
    "  Due       the day of the next follow-up",
    "  * ?       Forecast: * a month not over yet; ? ended, with prospects still",
    "            open (provisional)",
)


def binding_lines(bindings: list[Binding], keymap: dict[str, str], descriptions: dict[str, str]) -> list[str]:
    lines = []
    for b in bindings:
        keys = keymap.get(b.id, b.key) if b.id else b.key
        action = b.action.partition("(")[0]
        text = descriptions.get(action, b.description or action)
        lines.append(f"  {key_label(keys):<9} {text:<37} {b.id}")
    return lines


class HelpScreen(ModalScreen[None]):
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
            with VerticalScroll():
                for title, lines in self.sections:
                    yield Static(Content.styled(title, "bold underline"))
                    yield Static("\n".join(lines) + "\n", markup=False)
                yield Static(
                    f'Remap a key by its id (right column) in {keymap_path()}:\n  "pipeline.advance" = "right,>"',
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
