"""TextLine (tui/widgets): a line of text that repaints without a layout pass, its lines kept
for the next TextLine that shows the same text the same way."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.content import Content

from evpipe.tui.widgets import TextLine, fit_clauses


class Lines(App):
    CSS = """
    #wide { width: 30; }
    #narrow { width: 12; }
    .right { text-align: right; }
    """

    def compose(self) -> ComposeResult:
        yield TextLine("first", id="wide")
        yield TextLine("first", id="narrow")


def painted(line: TextLine) -> tuple[str, list]:
    (strip,) = line.render_lines(line.region.reset_offset)
    return strip.text, [seg.style for seg in strip if seg.text.strip()]


async def test_text_lines_show_their_own_text_width_and_style():
    app = Lines()
    async with app.run_test(size=(40, 4)) as pilot:
        wide, narrow = app.query_one("#wide", TextLine), app.query_one("#narrow", TextLine)
        assert painted(wide)[0] == "first".ljust(30) and painted(narrow)[0] == "first".ljust(12)
        # the same words, styled: a change of style alone repaints (Content's == sees only text)
        wide.show(Content("first").stylize("bold"))
        await pilot.pause()
        assert painted(wide)[1][0].bold and not painted(narrow)[1][0].bold
        # the narrow line shows what the wide one showed: its own width, not the wide one's lines
        narrow.show(Content("first").stylize("bold"))
        await pilot.pause()
        assert painted(narrow)[0] == "first".ljust(12) and painted(narrow)[1][0].bold
        # the same text aligned otherwise is made again, not taken from the left-aligned one
        narrow.add_class("right")
        await pilot.pause()
        assert painted(narrow)[0] == "first".rjust(12)
        wide.show("a longer line of text that is cut")
        await pilot.pause()
        assert painted(wide)[0].startswith("a longer line of text")


def test_fit_clauses_keeps_whole_clauses_from_the_first():
    said = "month: '2027-13' has no month 13; months run 01-12; type it as 2027-01, jan 2027 or jan"
    assert fit_clauses(said, 200) == said
    assert fit_clauses(said, 60) == "month: '2027-13' has no month 13; months run 01-12"
    assert fit_clauses(said, 40) == "month: '2027-13' has no month 13"
    assert fit_clauses(said, 20) == "month: '2027-13' ha…"
    assert fit_clauses("Ōtaki 日本語; more", 8) == "Ōtaki…"  # (cells, not characters: 日 takes two)
