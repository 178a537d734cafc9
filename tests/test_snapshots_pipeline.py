"""Screen snapshots of the pipeline screen: the table, the grouped view, the help screen and a
filtered view, at 80x24 and 120x40.

Deterministic: the clock is pinned (conftest's EVPIPE_NOW), the data is the demo pipeline (built
relative to that clock) plus the four hostile names, the KPI history is backfilled from the
journal, and the text cursor does not blink. Regenerate with
`pytest tests/test_snapshots_pipeline.py --snapshot-update` and look at the SVGs in
tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from apphelpers import settle

from evpipe.models import history
from evpipe.models.seed import load_demo
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp


async def settle_loaded(pilot) -> None:
    """Settle until every row is on screen, with the filter's cursor not blinking."""
    await settle(
        pilot,
        until=lambda app: app.pipeline is not None and app.pipeline.complete and not app.pipeline._loading,
        blink=False,
        last_pause=0,
    )


SIZES = [(80, 24), (120, 40)]
HOSTILE = ["Acme [Beta]", "[/x]", "x [/", "[@click=app.quit]hi[/]"]


@pytest.fixture
def demo_url(engine, db_url):
    load_demo(engine)
    me = Store(engine, who="tester")
    at = datetime(2026, 11, 20, 9, 0)
    for i, name in enumerate(HOSTILE):
        me.add(
            name,
            str(1000 * (i + 1)),
            "Enquiry",
            month="2026-12",
            company="[b]Bold[/b] Co",
            contact_name="[red]Red[/red]",
            at=at,
        )
    history.backfill(engine)
    history.record_snapshot(engine)
    return db_url


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_pipeline_screen(snap_compare, demo_url, size):
    assert snap_compare(EvpipeApp(demo_url, who="tester"), terminal_size=size, run_before=settle_loaded)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_grouped_by_month(snap_compare, demo_url, size):
    async def group(pilot):
        await settle_loaded(pilot)
        await pilot.press("m")
        await settle_loaded(pilot)

    assert snap_compare(EvpipeApp(demo_url, who="tester"), terminal_size=size, run_before=group)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filtered_and_sorted_by_gain(snap_compare, demo_url, size):
    async def narrow(pilot):
        await settle_loaded(pilot)
        await pilot.press("s", "s", "s")  # next-step gain
        await settle_loaded(pilot)
        await pilot.press("slash", *"[", "enter")
        await settle_loaded(pilot)

    assert snap_compare(EvpipeApp(demo_url, who="tester"), terminal_size=size, run_before=narrow)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, demo_url, size):
    async def help_(pilot):
        await settle_loaded(pilot)
        await pilot.press("question_mark")
        await settle_loaded(pilot)

    assert snap_compare(EvpipeApp(demo_url, who="tester"), terminal_size=size, run_before=help_)
