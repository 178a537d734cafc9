"""TextLine (tui/widgets): a line of text that repaints without a layout pass, its lines kept
for the next TextLine that shows the same text the same way."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.content import Content
from textual.geometry import Region
from textual.strip import Strip

from evpipe.tui.widgets import KeptLines, TextLine, fit_clauses


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


async def test_lines_made_directly_are_the_ones_textual_makes():
    """TextLine makes a simple text's lines itself (a stage key's KPI box: 0.3 ms less); they must
    be Visual.to_strips's, segment for segment, styles and selection offsets included, and the
    texts it cannot make so (too long, aligned, a link) go to Textual."""
    from textual.visual import Visual

    app = Lines()
    async with app.run_test(size=(40, 4)) as pilot:
        line = app.query_one("#wide", TextLine)
        style = line.visual_style
        made = 0
        for content in (
            Content(""),
            Content("plain [bold]not markup[/]"),
            Content.assemble(("EV ", "$text-muted"), ("$412,345.67", "bold"), "\n", ("+$1,234.00 7d", "green")),
            Content.assemble(("TV ", "$text-muted"), "\n"),
            Content("Ōtaki 日本語 · jo@example.com"),
            Content("exactly thirty cells of text.."),
            Content("thirty-one cells of text, one over"),
            Content.from_markup("[@click=app.bell]a link[/]"),
        ):
            line.show(content)
            await pilot.pause()
            for height in (1, 2):
                direct = line._lines_that_fit(content, 30, height, style)
                textual = Visual.to_strips(line, content, 30, height, style)
                if direct is None:
                    continue
                made += 1
                assert [list(s) for s in direct] == [list(s) for s in textual], content.plain
                assert [s.cell_length for s in direct] == [s.cell_length for s in textual]
        assert made == 12  # all but the line too long and the link, at both heights
        line.show(Content("x " * 20))
        line.styles.text_align = "right"
        await pilot.pause()
        assert line._lines_that_fit(line.content, 30, 1, style) is None


async def test_a_line_cut_at_its_parts_keeps_the_parts_that_fit_whole():
    """The pipeline's detail line (contact, email, phone, flags, ' · '-separated) too long for the
    width keeps the parts that fit, at any width, rather than a word cut where wrapping fell."""

    class Detail(App):
        def compose(self) -> ComposeResult:
            yield TextLine("", cut_at=" · ", id="detail")

    app = Detail()
    async with app.run_test(size=(45, 3)) as pilot:
        line = app.query_one("#detail", TextLine)
        line.show("Priya Kauri · priya.kauri@example.co.nz · 021 555 1234")
        await pilot.pause()
        (strip,) = line.render_lines(line.region.reset_offset)
        assert strip.text == "Priya Kauri · priya.kauri@example.co.nz".ljust(45)  # not "· 021" cut
        await pilot.resize_terminal(70, 3)
        await pilot.pause()
        (strip,) = line.render_lines(line.region.reset_offset)
        assert strip.text == "Priya Kauri · priya.kauri@example.co.nz · 021 555 1234".ljust(70)
        await pilot.resize_terminal(10, 3)
        await pilot.pause()
        (strip,) = line.render_lines(line.region.reset_offset)
        assert strip.text == "Priya Kau…"
        assert line.plain == "Priya Kauri · priya.kauri@example.co.nz · 021 555 1234"  # kept whole


async def test_kept_lines_come_back_only_while_nothing_about_them_changed():
    """KeptLines hands a frame the lines it handed the last one only while they would be made the
    same: a new text, a repaint, a new theme (backgrounds) or a new crop makes them again."""
    app = Lines()
    async with app.run_test(size=(40, 4)) as pilot:
        line = app.query_one("#wide", TextLine)
        crop = line.region.reset_offset
        first = line.render_lines(crop)
        assert line.render_lines(crop) is first  # nothing changed: the very same lines
        line.show("second")
        await pilot.pause()
        second = line.render_lines(crop)
        assert second is not first and second[0].text.startswith("second")
        line.refresh()
        assert line.render_lines(crop) is not second
        again = line.render_lines(crop)
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause()
        themed = line.render_lines(crop)
        assert themed is not again and themed[0].text == again[0].text
        assert [s.style for s in themed[0]] != [s.style for s in again[0]]
        half = line.render_lines(Region(0, 0, 10, 1))
        assert half[0].text == "second".ljust(10)


class Rows(KeptLines):
    """Six lines of text; counts the lines it is asked to make."""

    DEFAULT_CSS = "Rows { height: 6; }"

    def __init__(self) -> None:
        super().__init__()
        self.texts = [f"row {i}" for i in range(6)]
        self.made: list[int] = []

    def render_line(self, y: int) -> Strip:
        self.made.append(y)
        return Strip(Content(self.texts[y]).render_segments())


class RowsApp(App):
    def compose(self) -> ComposeResult:
        yield Rows()


async def test_kept_lines_with_two_lines_changed_make_those_two_and_hand_over_a_whole_frame():
    """Two lines of six changed (a cursor move): only those two are made again, and the frame gets
    the lines a full render makes."""
    app = RowsApp()
    async with app.run_test(size=(20, 8)) as pilot:
        rows = app.query_one(Rows)
        crop = rows.region.reset_offset
        rows.render_lines(crop)
        rows.made.clear()
        rows.texts[2], rows.texts[3] = "row 2, now", "row 3, now"
        rows.refresh(Region(0, 2, 20, 2))
        part = rows.render_lines(crop)
        assert rows.made == [2, 3]
        rows._styles_cache.clear()
        rows._kept = None
        whole = rows.render_lines(crop)
        assert [s.text for s in part] == [s.text for s in whole]
        assert [list(s) for s in part] == [list(s) for s in whole]
        assert part[2].text.startswith("row 2, now") and part[5].text.startswith("row 5")
        await pilot.pause()
