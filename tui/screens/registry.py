"""The top-level screens: reachable by number keys, shown in the tab bar and the command palette.

Every screen here exists. They are named by import string and imported when first shown, for
start-up speed: importing them all would load SQLAlchemy (and plotting) before the first screen
is painted. Each screen class takes no arguments and reads the app's engine and store.
"""

from __future__ import annotations

import importlib
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

    def create(self) -> Screen:
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)()


SCREENS: list[ScreenSpec] = [
    ScreenSpec(
        "1",
        "pipeline",
        "Pipeline",
        "evpipe.tui.screens.pipeline:PipelineScreen",
        "Every prospect, the KPIs, and stage moves in one key",
    ),
    ScreenSpec(
        "2",
        "focus",
        "Focus",
        "evpipe.tui.screens.focus:FocusScreen",
        "What to work on next: overdue follow-ups and the biggest next-step gains",
    ),
    ScreenSpec("3", "forecast", "Forecast", "evpipe.tui.screens.forecast:ForecastScreen", "Expected value by month"),
    ScreenSpec("4", "trend", "Trend", "evpipe.tui.screens.trend:TrendScreen", "TV, EV and EV/TV over time"),
    ScreenSpec(
        "5",
        "calibrate",
        "Sighting-in",
        "evpipe.tui.screens.calibrate:CalibrateScreen",
        "Stage probabilities against what really happened",
    ),
    ScreenSpec("6", "review", "Review", "evpipe.tui.screens.review:ReviewScreen", "The week's EV bridge"),
    ScreenSpec("7", "stages", "Stages", "evpipe.tui.screens.stages:StagesScreen", "Edit the stage ladder"),
    ScreenSpec(
        "8",
        "board",
        "Board",
        "evpipe.tui.screens.board:BoardScreen",
        "A column per open stage, its prospects as cards; stage keys move them",
    ),
    ScreenSpec(
        "9",
        "activity",
        "Activity",
        "evpipe.tui.screens.activity:ActivityScreen",
        "Who did what, newest first, with each change's effect on TV and EV",
    ),
]


def available() -> list[ScreenSpec]:
    """The top-level screens, in number order."""
    return list(SCREENS)
