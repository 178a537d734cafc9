"""The top-level screens: reachable by number keys, shown in the tab bar and the command palette.

Screens are named by import string, so a screen module that is not there (yet) never breaks the
app: `available()` lists only those whose module exists. Each screen class takes no arguments and
reads `self.app.engine` and `self.app.store`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen


@dataclass(frozen=True)
class ScreenSpec:
    key: str  # the number key
    name: str  # the mode name
    title: str  # shown in the tab bar
    factory: str  # "module:Class"
    description: str = ""

    @property
    def module(self) -> str:
        return self.factory.partition(":")[0]

    def exists(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def create(self) -> "Screen":
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)()


SCREENS: list[ScreenSpec] = [
    ScreenSpec("1", "pipeline", "Pipeline", "evpipe.tui.screens.pipeline:PipelineScreen",
               "Every prospect, the KPIs, and stage moves in one key"),
    ScreenSpec("2", "focus", "Focus", "evpipe.tui.screens.focus:FocusScreen",
               "What to work on next: overdue follow-ups and the biggest next-step gains"),
    ScreenSpec("3", "forecast", "Forecast", "evpipe.tui.screens.forecast:ForecastScreen",
               "Expected value by month"),
    ScreenSpec("4", "trend", "Trend", "evpipe.tui.screens.trend:TrendScreen", "TV, EV and EV/TV over time"),
    ScreenSpec("5", "calibrate", "Sighting-in", "evpipe.tui.screens.calibrate:CalibrateScreen",
               "Stage probabilities against what really happened"),
    ScreenSpec("6", "review", "Review", "evpipe.tui.screens.review:ReviewScreen", "The week's EV bridge"),
    ScreenSpec("7", "stages", "Stages", "evpipe.tui.screens.stages:StagesScreen", "Edit the stage ladder"),
]


def available() -> list[ScreenSpec]:
    """The screens whose module exists, in number order."""
    return [spec for spec in SCREENS if spec.exists()]


def by_key(key: str) -> ScreenSpec | None:
    return next((s for s in available() if s.key == key), None)


def by_name(name: str) -> ScreenSpec | None:
    return next((s for s in available() if s.name == name), None)
