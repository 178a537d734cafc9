"""Screen snapshots of the prospect page, the form and the stages screen at 80x24 and 120x40.

Deterministic: the clock is pinned (conftest's EVPIPE_NOW), the data is fixed below, and every
write carries an explicit time. Regenerate with `pytest tests/test_snapshots_forms.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from apphelpers import settle
from textual.app import App
from textual.widgets import Input

import evpipe.tui.app
from evpipe.models import open_db
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp
from evpipe.tui.screens.prospect_form import ProspectForm
from evpipe.tui.screens.prospect_page import ProspectPage
from evpipe.tui.screens.stages import StagesScreen

HOSTILE = "[@click=app.quit]hi[/]"
SIZES = [(80, 24), (120, 40)]


class Host(App):
    """A bare app showing one screen: the form and the stages screen alone, whatever the pipeline
    screen beneath them looks like."""

    def __init__(self, url: str, make_screen) -> None:
        super().__init__()
        self.engine = open_db(url)
        self.who = "tester"
        self.store = Store(self.engine, who="tester")
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(self))

    def data_changed(self, result) -> None:  # pragma: no cover - snapshots do not write
        pass

    def decide_scope(self) -> str | None:
        """Whose prospects the screens show: everyone's (no member limits the tester)."""
        return None


class PageApp(EvpipeApp):
    """The real app with the prospect page opened over the pipeline, as `enter` does."""

    CSS_PATH = str(Path(evpipe.tui.app.__file__).parent / EvpipeApp.CSS_PATH)

    def __init__(self, url: str, prospect_id: int) -> None:
        super().__init__(url, who="tester")
        self.prospect_id = prospect_id

    def on_mount(self) -> None:
        self.push_screen(ProspectPage(self.prospect_id))


@pytest.fixture
def pipeline(db_url) -> tuple[str, int]:
    """The default ladder and one hostile prospect with a history and a contact log."""
    engine = open_db(db_url)
    s = Store(engine, who="mere")
    r = s.add(
        HOSTILE,
        "12500",
        "Enquiry",
        month="2027-02",
        company="Acme [Beta]",
        contact_name="[/x]",
        email="events@acme.example",
        phone="+64 9 555 0100",
        owner="mere",
        notes="x [/ -- wants two vessels for the summer party; budget signed off by the board.",
        custom={"[b]bold[/b]": "yes", "Guests": "180"},
        follow_up="2026-11-24",
        at=datetime(2026, 10, 2, 9, 0),
    )
    pid = r.prospect.id
    s.log_activity(
        pid,
        "call",
        "First call: [red]keen[/red], asked for a quote",
        when="2026-10-05",
        at=datetime(2026, 10, 5, 11, 0),
    )
    s.move(pid, "next", at=datetime(2026, 10, 9, 15, 0))
    s.log_activity(pid, "email", "Quote sent for two vessels", when="2026-10-09", at=datetime(2026, 10, 9, 15, 5))
    s.move(pid, "next", at=datetime(2026, 11, 16, 10, 30))
    s.log_activity(
        pid, "meeting", "Walked the wharf with their events team", when="2026-11-16", at=datetime(2026, 11, 16, 10, 35)
    )
    s.add("Second", "4000", "Suspect", owner="mere", at=datetime(2026, 11, 1, 9, 0))
    engine.dispose()
    return db_url, pid


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_prospect_page(snap_compare, pipeline, size):
    url, pid = pipeline
    assert snap_compare(PageApp(url, pid), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_edit_form(snap_compare, pipeline, size):
    url, pid = pipeline

    def make(app):
        return ProspectForm(app.store.ladder(), app.store.get(pid), owner="tester")

    assert snap_compare(Host(url, make), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_add_form_with_errors(snap_compare, pipeline, size):
    """The add form after a failed save: each error under its field, everything typed kept."""
    url, _ = pipeline

    async def type_and_save(pilot) -> None:
        await settle(pilot)
        form = pilot.app.screen
        form.query_one("#name", Input).value = "Acme [Beta] launch"
        form.query_one("#value", Input).value = "9,5x"
        form.query_one("#month", Input).value = "jan"
        form.query_one("#follow_up", Input).value = "31/02/2027"
        await pilot.press("ctrl+s")
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    def make(app):
        return ProspectForm(app.store.ladder(), owner="tester")

    assert snap_compare(Host(url, make), terminal_size=size, run_before=type_and_save)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stages_screen(snap_compare, pipeline, size):
    url, _ = pipeline
    assert snap_compare(Host(url, lambda app: StagesScreen()), terminal_size=size, run_before=settle)
