"""The pipeline's first screen: what it shows before every row is read.

The ladder, the KPI period, the first page of rows in the month order and the header's KPIs (for
the session's scope and for the user), read so that the screen can be painted at once; every other
row is read afterwards (tui/screens/pipeline.py). The app reads it in a worker as the pipeline
opens, or ahead, while it is still being imported (tui/first_screen_ahead.py): one definition of
what the first screen holds for both.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .changes_feed import kpis_as_of_journal
from .kpi import Kpi, Scope
from .period import Period, current_period
from .pipeline_view import Row, load_first_rows, load_ladder
from .records import StageInfo

#: Rows read first, so that the first screen is painted before all the rows are read.
FIRST_PAGE = 200


@dataclass(frozen=True)
class HeaderHistory:
    """What the header compares the KPIs with (models/week_history.py, models/season.py)."""

    scope_key: str
    week_ago: Kpi | None  # 7 days ago
    weekly_ev: list[int]  # EV at the end of each of the 11 weeks before this one
    last_year: Kpi | None  # the same week last year, when a year of history exists


def header_history(source: Any, scope: Scope) -> HeaderHistory:
    """The header's history for `scope`, read with plain queries."""
    from .season import reading_last_year
    from .week_history import week_history

    week_ago, _, weekly = week_history(source, scope)
    return HeaderHistory(scope.key, week_ago, weekly, reading_last_year(source, scope))


@dataclass(frozen=True)
class FirstScreen:
    """What the pipeline's first screen shows."""

    stages: list[StageInfo]  # the ladder
    archived: list[StageInfo]  # stages taken off it (history may name them)
    period: Period
    rows: list[Row]  # the first page of open prospects with a month, in the month order
    journal_id: int  # the journal's highest id read with the KPIs: they hold every change up to it
    kpi_all: Kpi  # the session's scope: everyone's, or the one owner a rep is limited to
    kpi_mine: Kpi  # the user's own
    history: HeaderHistory | None = None  # the session's scope's, when read with them

    @property
    def complete(self) -> bool:
        """Whether the first page is short: then a pipeline this small is read whole at once."""
        return len(self.rows) < FIRST_PAGE


def read_first_screen(source: Any, *, owner: str | None, who: str, with_history: bool = False) -> FirstScreen:
    """The first screen of the session limited to `owner` (None: everyone's) for user `who`, read
    with plain queries; `with_history`: the header's history too (else the screen reads it once
    the first screen is painted). The page and the KPIs are read side by side: SQLite lets go of
    the interpreter lock."""
    stages, archived = load_ladder(source)
    period = current_period(source)
    open_ids = [s.id for s in stages if s.kind == "open"]
    with ThreadPoolExecutor(1, thread_name_prefix="evpipe-page") as pool:
        page = pool.submit(load_first_rows, source, open_ids, FIRST_PAGE, owner=owner)
        journal_id, (kpi_all, kpi_mine) = kpis_as_of_journal(
            source, Scope(owner=owner, period=period), Scope(owner=who, period=period)
        )
        rows = page.result()
    history = header_history(source, Scope(owner=owner, period=period)) if with_history else None
    return FirstScreen(stages, archived, period, rows, journal_id, kpi_all, kpi_mine, history)


__all__ = ["FIRST_PAGE", "FirstScreen", "HeaderHistory", "header_history", "read_first_screen"]
