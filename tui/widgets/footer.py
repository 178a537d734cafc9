"""The footer every screen shows: `q` and `?` first, so that they never drop off at 80 columns.

Textual's footer lists the keys in binding order, the screen's before the app's, and cuts what does
not fit: at 80x24 that was `q` and `?`. This one puts the app's quit-or-back and help keys first,
then the screen's keys as they are bound. On a page opened from a screen (a prospect page, a
form, the import screen) `q` goes back, and the footer says so.

It is one widget that paints one line, not a widget per key: Textual's footer mounted and styled
about twenty key widgets (each with two styled parts) on every screen and again whenever the keys
changed, a third of the widgets the app built before its first screen. Only whole keys are shown;
the command palette's key sits at the right end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

from . import KeptLines

if TYPE_CHECKING:
    from textual.binding import Binding
    from textual.screen import Screen

#: The keys shown first, in this order (their actions).
FIRST = ("quit_or_back", "help")

#: What separates the command palette's key from the others.
_BAR = "▏"


class KeyFooter(KeptLines, can_focus=False):
    """One line of the keys the screen answers: `q` (quit, or back on a pushed page) and `?`
    (help) first, then the screen's and the app's other shown keys, the palette's at the right."""

    COMPONENT_CLASSES = {"footer-key--key", "footer-key--description", "footer-key--bar"}

    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        & > .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .footer-key--bar {
            color: $foreground 20%;
        }
    }
    """

    def __init__(
        self,
        *,
        compact: bool = False,
        show_command_palette: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        #: Less space around each key (the prospect page and the stages screen, where more keys are bound).
        self.compact = compact
        self.show_command_palette = show_command_palette
        #: (key as shown, description, enabled) of each key, and the palette's; None: read again.
        self._keys: tuple[list[tuple[str, str, bool]], tuple[str, str, bool] | None] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self._keys = None
            self.refresh()

    def _read_keys(self) -> tuple[list[tuple[str, str, bool]], tuple[str, str, bool] | None]:
        active = self.screen.active_bindings
        by_action: dict[str, tuple[Binding, bool]] = {}
        for _node, binding, enabled, _tooltip in active.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled))
        first = [by_action.pop(action) for action in FIRST if action in by_action]
        pushed = len(self.app.screen_stack) > 1
        display = self.app.get_key_display
        keys = [
            (display(b), "Back" if b.action == "quit_or_back" and pushed else b.description, enabled)
            for b, enabled in [*first, *by_action.values()]
        ]
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                palette = (display(binding), binding.description, enabled)
                keys = [k for k in keys if k[0] != palette[0]]
        return keys, palette

    def _part(self, key: str, description: str, enabled: bool, *, bare: bool = False) -> Text:
        """One key and what it does; `bare`: no space before the key (the palette's, after the bar)."""
        key_style = self.get_component_rich_style("footer-key--key")
        description_style = self.get_component_rich_style("footer-key--description")
        if not enabled:
            key_style, description_style = key_style + Style(dim=True), description_style + Style(dim=True)
        if self.compact or bare:
            return Text.assemble((key, key_style), (f" {description}" if description else "", description_style), " ")
        return Text.assemble((f" {key} ", key_style), (f"{description} " if description else "", description_style))

    def render(self) -> Text:
        if self._keys is None:
            self._keys = self._read_keys()
        keys, palette = self._keys
        width = self.size.width
        end = Text()
        if palette is not None:
            key, description, enabled = palette
            end = Text.assemble(
                (_BAR, self.get_component_rich_style("footer-key--bar")),
                self._part(key, description, enabled, bare=True),
            )
        line = Text(no_wrap=True, overflow="crop", end="")
        room = width - end.cell_len
        for key in keys:
            part = self._part(*key)
            if part.cell_len > room:
                break
            line.append_text(part)
            room -= part.cell_len
        if end and room >= 0:
            line.append(" " * room)
            line.append_text(end)
        return line


__all__ = ["FIRST", "KeyFooter"]
