"""The forecast screen at 80x24 (issue 9, point 3): it opens with the current month in view and the
months to come below it, marks provisional months and lists their open prospects (names shown as
typed, never as markup), and says on the screen what Frozen, Actual, Signed, Acc, Bias and WAPE mean."""

from __future__ import annotations

from datetime import datetime

from apphelpers import screen_text, settle, shows
from textual.widgets import DataTable

from evpipe.models import history
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp

HOSTILE = "[@click=app.quit]hi[/]"


async def test_forecast_screen_at_80x24(engine):
    s = Store(engine, who="tester")
    s.add("Gala", "10000", "Quote sent", month="2026-10", at=datetime(2026, 7, 1, 9))
    s.move("Gala", "won", at=datetime(2026, 8, 15, 9))  # booked ahead
    s.add(HOSTILE, "4000", "Enquiry", month="2026-10", at=datetime(2026, 8, 20, 9))  # still open
    s.add("Summer cruise", "6000", "Quote sent", month="2027-01", at=datetime(2026, 9, 1, 9))
    history.backfill(engine)
    history.record_snapshot(engine)

    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "ForecastScreen"
        table = screen.query_one("#forecast-table", DataTable)
        assert table.cursor_row == 12 and screen.fc.months[12].month == "2026-11"
        text = await shows(app, pilot, "Dec 2026")  # placed once the table is laid out
        lines = text.splitlines()
        assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
        # The current month near the top, the last two ended above it, the months to come below.
        month_rows = [i for i, line in enumerate(lines) if line.strip()[:8] in {"Sep 2026", "Oct 2026", "Nov 2026"}]
        assert len(month_rows) == 3, text
        assert "Nov 2025" not in text and "Dec 2026" in text and "Jan 2027" in text
        nov_line = next(line for line in lines if "Nov 2026 *" in line)
        assert lines.index(nov_line) < lines.index(next(line for line in lines if "Jan 2027" in line))
        # October has ended with a prospect still open: marked, and the prospect named as typed.
        oct_line = next(line for line in lines if "Oct 2026" in line)
        assert "Oct 2026 ?" in oct_line and "10,000" in oct_line
        assert f"? Oct 2026: 1 still open, not a miss yet: {HOSTILE}" in text
        assert app.is_running  # the name was not run as markup
        # What the columns mean, in words, without colour.
        for words in (
            "Frozen: the month's EV on its 1st",
            "Actual: what the month's prospects won",
            "Acc:",
            "Bias: + expected too much",
            "Signed: won in month",
            "? ended, prospects still open",
            "WAPE",
        ):
            assert words in text, words
        # Enter on the provisional month lists its prospects, the open one first.
        await pilot.press("up")
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "MonthProspects"
        text = screen_text(app)
        assert HOSTILE in text and "Gala" in text
        assert text.index(HOSTILE) < text.index("Gala")


async def test_the_forecast_screen_records_a_month_start_no_change_recorded(engine):
    # No change since 25 October: November's start (its frozen forecast) was never recorded, and
    # the screen showed "—" for it until some unrelated write.
    s = Store(engine, who="tester")
    s.add("B", "3000", "Quote sent", month="2026-11", at=datetime(2026, 9, 10, 9))
    history.record_snapshot(engine, at=datetime(2026, 9, 10, 9))
    s.move("B", "won", at=datetime(2026, 10, 25, 9))
    history.record_snapshot(engine, at=datetime(2026, 10, 25, 9))
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot, until=lambda a: getattr(a.screen, "fc", None) is not None)
        nov = next(m for m in app.screen.fc.months if m.month == "2026-11")
        assert nov.frozen_ev_micros == 3000 * 10**6  # at 1 November: B won already
