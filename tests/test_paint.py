"""tui/paint.py: a partial frame asks only the widgets it repaints, and paints what Textual paints;
a pipeline key paints its frame inside its own handling, unless keys are waiting."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from apphelpers import settle
from sqlmodel import Session, select
from test_app_pipeline import pipeline  # noqa: F401 (the fixture)
from textual import events
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widgets import Static

from evpipe.models.tables import Prospect
from evpipe.tui import paint
from evpipe.tui.app import EvpipeApp
from evpipe.tui.widgets import TextLine
from evpipe.tui.widgets.prospect_table import ProspectTable


class Asked(Static):
    """A Static that counts how often a frame asks it for its lines."""

    asked = 0

    def render_lines(self, crop: Region):
        self.asked += 1
        return super().render_lines(crop)


class Three(App):
    CSS = "Static { height: 3; } #middle { height: 5; }"

    def compose(self) -> ComposeResult:
        yield Asked("top [b]bold[/b]", id="top")
        yield Asked("middle", id="middle")
        yield Asked("bottom", id="bottom")


def painted(app: App, update) -> str:
    """The bytes a partial frame writes to the terminal."""
    return update.render_segments(app.console) if update is not None else ""


@asynccontextmanager
async def three_running():
    """Three, running in a test terminal of 30x12 with tui/paint.py installed: (app, its pilot,
    its widgets top, middle and bottom)."""
    paint.install()
    app = Three()
    async with app.run_test(size=(30, 12)) as pilot:
        await pilot.pause()
        yield app, pilot, [app.query_one(f"#{n}", Asked) for n in ("top", "middle", "bottom")]


def painted_textuals_way(app: App, dirty: set[Region]) -> str:
    """The bytes a partial frame of the regions `dirty` writes when Textual's own compositor
    method asks every widget in the box around them."""
    compositor = app.screen._compositor
    compositor._dirty_regions.update(dirty)
    try:
        Compositor._get_renders = paint._textual_get_renders  # type: ignore[method-assign]
        return painted(app, compositor.render_partial_update())
    finally:
        paint.install()


async def test_a_partial_frame_asks_only_the_widgets_it_repaints_and_paints_the_same():
    async with three_running() as (app, pilot, (top, middle, bottom)):
        compositor = app.screen._compositor
        middle.update("middle, changed")
        await pilot.pause()
        before = top.asked, bottom.asked
        # the frame of that change asked the middle one only (top and bottom are off its lines)
        middle.update("middle, again")
        middle.refresh()
        compositor.update_widgets({middle})
        dirty = set(compositor._dirty_regions)
        ours = painted(app, compositor.render_partial_update())
        assert (top.asked, bottom.asked) == before
        assert "middle, again" in ours
        # Textual's own way asks all three, and writes the very same bytes
        middle.refresh()
        theirs = painted_textuals_way(app, dirty)
        assert (top.asked, bottom.asked) == (before[0] + 1, before[1] + 1)
        assert ours == theirs


async def test_a_frame_of_two_changes_far_apart_asks_only_their_widgets_and_paints_the_same():
    """The box around two repainted widgets holds the one between them: it is not asked (its
    lines would be thrown away: a frame writes only the regions repainted), and the frame writes
    what Textual's does, which asks it too."""
    async with three_running() as (app, _pilot, (top, middle, bottom)):
        compositor = app.screen._compositor
        before = top.asked, middle.asked, bottom.asked
        top.update("top, changed")
        bottom.update("bottom, changed")
        compositor.update_widgets({top, bottom})
        dirty = set(compositor._dirty_regions)
        ours = painted(app, compositor.render_partial_update())
        assert (top.asked, middle.asked, bottom.asked) == (before[0] + 1, before[1], before[2] + 1)
        assert "top, changed" in ours and "bottom, changed" in ours
        theirs = painted_textuals_way(app, dirty)
        assert middle.asked == before[1] + 1  # (Textual's way asks it)
        assert ours == theirs


async def test_a_full_frame_still_asks_every_widget():
    async with three_running() as (app, _pilot, (top, _middle, bottom)):
        before = top.asked, bottom.asked
        lines = app.screen._compositor.render_strips()
        assert (top.asked, bottom.asked) == (before[0] + 1, before[1] + 1)
        assert "".join(s.text for s in lines[0]).startswith("top bold")


async def test_a_pipeline_key_paints_its_frame_while_it_is_handled(pipeline, monkeypatch):  # noqa: F811
    calls: list[bool] = []
    real = paint.paint_now

    def spy(app):
        done = real(app)
        calls.append(done)
        if done:
            # painted: nothing is left for Textual's own turn (the table and the detail line
            # no longer ask the screen for a repaint, the screen has nothing dirty)
            table = app.query_one(ProspectTable)
            detail = app.query_one("#detail", TextLine)
            assert not table._repaint_required and not detail._repaint_required
            assert not app.screen._dirty_widgets
        return done

    monkeypatch.setattr(paint, "paint_now", spy)
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(ProspectTable)
        first = table.current_row.name
        await pilot.press("down")
        await settle(pilot)
        assert calls and calls[-1] is True
        assert table.current_row.name != first
        # the frame shows the cursor's prospect on the detail line
        shown = "".join(s.text for s in app.screen._compositor.render_strips()[table.region.bottom])
        assert "Mere Kauri" in shown


@pytest.fixture
def calls(monkeypatch) -> list[bool]:
    """What each paint_now answered (True: it painted), in order."""
    answers: list[bool] = []
    real = paint.paint_now
    monkeypatch.setattr(paint, "paint_now", lambda app: answers.append(real(app)) or answers[-1])
    return answers


async def test_keys_waiting_are_painted_once_after_the_last(pipeline, calls):  # noqa: F811
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(ProspectTable)
        start = table.cursor
        # three keys in one burst: the first two find keys waiting and leave the painting
        for _ in range(3):
            app.post_message(events.Key("down", None))
        await settle(pilot)
        assert table.cursor == start + 3
        assert calls == [False, False, True]


async def test_nothing_is_painted_at_once_while_painting_is_held(pipeline, calls):  # noqa: F811
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        with app.batch_update():
            await pilot.press("down")
            assert calls == [False]
        await settle(pilot)
        assert app.query_one(ProspectTable).current_row.name == "Kauri Software"


async def test_a_stage_key_paints_at_once_and_is_saved(pipeline, calls):  # noqa: F811
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(ProspectTable)
        assert table.current_row.name == "Harbour Events"  # Quote sent
        await pilot.press("greater_than_sign")
        # painted inside the key, although the save's start after the frame was waiting in the
        # app's queue (call_after_refresh)
        assert calls == [True]
        await settle(pilot)
        with Session(pipeline) as session:
            saved = session.exec(select(Prospect).where(Prospect.name == "Harbour Events")).one()
            assert app.query_one(ProspectTable).current_row.stage_id == saved.stage_id


class Scrolled(App):
    CSS = "#line { height: 1; }"

    def compose(self) -> ComposeResult:
        yield TextLine("a line", id="line")
        with VerticalScroll(id="scroll"):
            for i in range(40):
                yield TextLine(f"item {i}")


async def test_a_filter_keystroke_paints_its_results_and_count_as_they_are_shown(pipeline, monkeypatch):  # noqa: F811
    """The filter's results, their count and the text typed are painted as they are put on screen
    (FrameHold.release_painted), in the search's worker's message or in the key's own handling,
    not at Textual's next frame slot, up to a 60th of a second after they were ready."""
    from evpipe.tui.screens.pipeline import PipelineScreen

    after: list[tuple[bool, bool, bool, int]] = []
    real = PipelineScreen._show_filtered

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        status = self.query_one("#status", TextLine)
        after.append(
            (
                self.table._repaint_required,
                status._repaint_required,
                bool(self.app.screen._dirty_widgets),
                self.app._batch_count,
            )
        )

    monkeypatch.setattr(PipelineScreen, "_show_filtered", spy)
    app = EvpipeApp(str(pipeline.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await settle(pilot)
        for key in "ha":  # the first search in the worker, then the last matches narrowed
            await pilot.press(key)
            await settle(pilot)
        assert len(after) == 2
        assert after == [(False, False, False, 0)] * 2  # nothing left to paint, nothing held
        shown = "\n".join("".join(s.text for s in strip) for strip in app.screen._compositor.render_strips())
        assert "Harbour Events" in shown and "1 shown" in shown


async def test_the_screen_and_a_scroll_bar_hand_over_the_lines_they_handed_before():
    """The screen's background and a scroll bar (Textual's, not KeptLines), asked by a partial
    frame over them, hand over the very lines of the frame before, until they change (the bar
    moves)."""
    paint.install()
    app = Scrolled()
    async with app.run_test(size=(30, 12)) as pilot:
        await pilot.pause()
        scroll = app.query_one("#scroll", VerticalScroll)
        bar = scroll.vertical_scrollbar
        seen: list[tuple[object, list]] = []
        real = paint.kept_lines

        def spy(widget, crop, render):
            lines = real(widget, crop, render)
            seen.append((widget, lines))
            return lines

        paint.kept_lines = spy
        try:
            for i in range(2):
                scroll.query(TextLine).first().show(f"first item, {i}")
                scroll.refresh()  # (a repaint over the bar's columns too)
                await pilot.pause()
            bars = [lines for widget, lines in seen if widget is bar]
            assert len(bars) >= 2 and bars[-1] is bars[-2]  # the bar did not move: the same lines
            assert any(widget is app.screen for widget, _ in seen)
            scroll.scroll_end(animate=False)
            await pilot.pause()
            moved = [lines for widget, lines in seen if widget is bar][-1]
            assert moved is not bars[-1]
            assert [list(s) for s in moved] != [list(s) for s in bars[-1]]
        finally:
            paint.kept_lines = real
