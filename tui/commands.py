"""The command palette (ctrl+p): every screen and every pipeline action, by name.

This module knows neither the app nor the pipeline screen (both import it, directly or through
the screens that use `BindingCommands`): the app passes itself and the pipeline screen's class in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

from .screens.help import key_label
from .screens.registry import ScreenSpec


class PaletteApp(Protocol):
    """What the palette's app-wide commands need of the app."""

    @property
    def screen_specs(self) -> Sequence[ScreenSpec]: ...
    @property
    def keymap(self) -> Mapping[str, str]: ...

    def action_go(self, name: str) -> Any: ...
    def action_help(self) -> Any: ...
    def action_import(self) -> Any: ...
    def action_members(self) -> Any: ...
    def run_pipeline_action(self, action: str) -> None: ...


class ActionScreen(Protocol):
    """A screen class whose bindings the palette lists, with a title per action."""

    @property
    def BINDINGS(self) -> Sequence[BindingType]: ...
    @property
    def ACTION_HELP(self) -> Mapping[str, str]: ...


def screen_commands(app: PaletteApp) -> Iterable[SystemCommand]:
    for spec in app.screen_specs:
        yield SystemCommand(
            f"Go to {spec.title}",
            f"Key {spec.key}: {spec.description}",
            lambda name=spec.name: app.action_go(name),
        )
    yield SystemCommand("Keys", "Key ?: every key binding and its id", app.action_help)
    yield SystemCommand("Import prospects", "Key i: import from a spreadsheet or CSV file", app.action_import)
    yield SystemCommand(
        "Members", "Who may use this database, and their roles (9 Activity, then m)", app.action_members
    )


def pipeline_commands(app: PaletteApp, pipeline: ActionScreen) -> Iterable[SystemCommand]:
    """The pipeline screen's actions (`pipeline` is its class); they act on the prospect under the
    cursor."""
    keymap = app.keymap
    for binding in pipeline.BINDINGS:
        action = binding.action
        keys = key_label(keymap.get(binding.id, binding.key))
        title = pipeline.ACTION_HELP.get(action, binding.description)

        def run(action: str = action) -> None:
            app.run_pipeline_action(action)

        yield SystemCommand(title, f"Pipeline, key {keys}", run)


class BindingCommands(Provider):
    """The command palette's entries for the screen it was opened on: one per binding, so every
    key of the prospect page, the stages screen and the insight screens can also be found by
    name (ctrl+p)."""

    def _commands(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        keymap = getattr(self.app, "keymap", {}) or {}
        out = []
        for binding in getattr(type(screen), "BINDINGS", []):
            if not isinstance(binding, Binding) or not binding.description:
                continue
            keys = keymap.get(binding.id, binding.key_display or binding.key)
            helps = getattr(screen, "ACTION_HELP", {})
            title = helps.get(binding.action) or helps.get(binding.action.partition("(")[0], binding.description)
            out.append((title, f"({keys}) {getattr(screen, 'PALETTE_GROUP', '')}".rstrip(), binding.action))
        return out

    def _run(self, action: str):
        screen = self.screen

        async def run() -> None:
            await screen.run_action(action)

        return run

    async def discover(self) -> Hits:
        for title, help_text, action in self._commands():
            yield DiscoveryHit(title, self._run(action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._run(action), help=help_text)
