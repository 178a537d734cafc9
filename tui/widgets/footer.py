"""The footer every screen shows: `q` and `?` first, so that they never drop off at 80 columns.

Textual's footer lists the keys in binding order, the screen's before the app's, and cuts what does
not fit: at 80x24 that was `q` and `?`. This one puts the app's quit-or-back and help keys first,
then the screen's keys as they are bound. On a page opened from a screen (a prospect page, a
form, the import screen) `q` goes back, and the footer says so.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: The keys shown first, in this order (their actions).
FIRST = ("quit_or_back", "help")


class KeyFooter(Footer):
    """A footer whose first keys are always `q` (quit, or back on a pushed page) and `?` (help)."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        by_action: dict[str, tuple] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        first = [by_action.pop(action) for action in FIRST if action in by_action]
        self.styles.grid_size_columns = len(first) + len(by_action)
        pushed = len(self.app.screen_stack) > 1
        for binding, enabled, tooltip in [*first, *by_action.values()]:
            description = "Back" if binding.action == "quit_or_back" and pushed else binding.description
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                yield FooterKey(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    classes="-command-palette",
                    disabled=not enabled,
                    tooltip=binding.tooltip or binding.description,
                )


__all__ = ["FIRST", "KeyFooter"]
