"""The command palette (ctrl+p): every screen and every pipeline action, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand

from tui.screens.help import key_label

if TYPE_CHECKING:
    from tui.app import EvpipeApp


def screen_commands(app: "EvpipeApp") -> Iterable[SystemCommand]:
    for spec in app.screen_specs:
        yield SystemCommand(
            f"Go to {spec.title}", f"Key {spec.key}: {spec.description}",
            lambda name=spec.name: app.action_go(name),
        )
    yield SystemCommand("Keys", "Key ?: every key binding and its id", app.action_help)
    yield SystemCommand("Import prospects", "Key i: import from a spreadsheet or CSV file", app.action_import)


def pipeline_commands(app: "EvpipeApp") -> Iterable[SystemCommand]:
    """The pipeline screen's actions; they act on the prospect under the cursor."""
    from tui.screens.pipeline import PipelineScreen

    keymap = app.keymap
    for binding in PipelineScreen.BINDINGS:
        action = binding.action
        keys = key_label(keymap.get(binding.id, binding.key))
        title = PipelineScreen.ACTION_HELP.get(action, binding.description)

        def run(action: str = action) -> None:
            app.run_pipeline_action(action)

        yield SystemCommand(title, f"Pipeline, key {keys}", run)
