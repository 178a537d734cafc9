"""The one-line tab bar: the top-level screens by number key, the current one highlighted, and on
the right the name of the open database; for a few seconds after a change is saved, its notice."""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.reactive import reactive
from textual.timer import Timer

from evpipe.models.names import display_name

from ..screens.registry import ScreenSpec, available
from . import KeptLines


class TabBar(KeptLines):
    """`1 Pipeline  2 Focus  ...   evpipe.db`: press the number (or click) to go there. When the
    width is short the tabs close up, then the other tabs' titles are cut (`3 Fore…`) to leave the
    name a few cells, and the database's name is cut (with `…`) last.

    `say` shows a saved change's notice in its place for a few seconds (a click on it takes it
    away), looking as a toast over it did. A toast is a widget mounted and later removed, each a
    new layout of the whole screen (three of them, 6.5 ms each at 100,000 prospects, for every
    stage key) while keys come in; here it is one line painted again."""

    COMPONENT_CLASSES = {"tab-bar--notice", "tab-bar--notice-mark"}
    # (no text to select: a click that starts and ends a selection repaints the whole screen twice)
    ALLOW_SELECT = False

    DEFAULT_CSS = """
    TabBar {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
    }
    /* as Textual's toast of a notice (information) looks */
    TabBar > .tab-bar--notice {
        background: $panel-lighten-1;
        color: $foreground;
    }
    TabBar > .tab-bar--notice-mark {
        background: $panel-lighten-1;
        color: $success;
    }
    """

    current: reactive[str] = reactive("pipeline")

    def __init__(self, current: str = "pipeline", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.specs: list[ScreenSpec] = []
        self.set_reactive(TabBar.current, current)
        self.notice: str | None = None  # the notice shown in place of the tabs (`say`)
        self._drawn: tuple[tuple, Content] | None = None  # the tabs as last laid out, and for what
        self._notice_timer: Timer | None = None

    def say(self, text: str, seconds: float) -> None:
        """Show `text` in place of the tabs for `seconds` (a newer notice replaces it)."""
        if self._notice_timer is not None:
            self._notice_timer.stop()
        self.notice = text
        self._notice_timer = self.set_timer(seconds, self.unsay, name="notice")
        self.refresh()

    def unsay(self) -> None:
        """The tabs again, in place of the notice."""
        if self._notice_timer is not None:
            self._notice_timer.stop()
            self._notice_timer = None
        if self.notice is not None:
            self.notice = None
            self.refresh()

    def on_click(self, event: events.Click) -> None:
        if self.notice is not None:  # (as a toast is dismissed); the tabs are under it
            event.stop()
            self.unsay()

    def on_mount(self) -> None:
        self.specs = getattr(self.app, "screen_specs", None) or available()
        url = getattr(self.app, "url", None)
        if url:
            self.tooltip = f"Database: {url.removeprefix('sqlite:///')}"

    def _tabs(self, *, compact: bool, cut: int | None = None) -> Content:
        """Full: ` 1 Pipeline  2 Focus `; compact: `1 Pipeline 2 Focus` (one space between); `cut`:
        compact, with the other tabs' titles cut to that many cells (`3 Fore…`; 1 or less: the
        number alone)."""
        parts: list[Content] = []
        for spec in self.specs:
            title = spec.title
            if cut is not None and spec.name != self.current and len(title) > cut:
                title = title[: cut - 1] + "…" if cut > 1 else ""
            label = f"{spec.key} {title}".rstrip() if compact else f" {spec.key} {title} "
            if spec.name == self.current:
                parts.append(Content.styled(label, "reverse bold"))
            else:
                parts.append(Content.styled(label, f"@click=app.go('{spec.name}')"))
        return Content(" " if compact else "").join(parts)

    def render(self) -> Content:
        if self.notice is not None:
            # (one line, cut with `…` where a toast took two; drawn as terminals draw it: names.display_name)
            text = Content(" " + display_name(self.notice)).truncate(
                max(0, self.size.width - 1), ellipsis=True, pad=True
            )
            return Content.assemble(
                Content.styled("▌", self.get_visual_style("tab-bar--notice-mark", partial=True)),
                text.stylize(self.get_visual_style("tab-bar--notice", partial=True)),
            )
        name = getattr(self.app, "database_label", None) or "evpipe"
        width = self.size.width
        key = (width, self.current, name, tuple(self.specs))
        if self._drawn is None or self._drawn[0] != key:  # (the tabs again after each notice: the same)
            self._drawn = (key, self._lay_out(name, width))
        return self._drawn[1]

    def _lay_out(self, name: str, width: int) -> Content:
        """The tabs and the database's name in `width` cells."""
        body = self._tabs(compact=False)
        if body.cell_length + Content(name).cell_length + 2 > width:
            body = self._tabs(compact=True)
        # the name still needs a few cells (its stem, or 10): the other tabs' titles give way first
        need = min(Content(f" {name.rpartition('.')[0] or name}").cell_length, 10)
        cut = max((len(s.title) for s in self.specs), default=0)
        while width - body.cell_length < need and cut > 0:
            cut -= 1
            body = self._tabs(compact=True, cut=cut)
        room = width - body.cell_length
        stem, dot, _suffix = name.rpartition(".")
        stem = stem if dot and stem else name
        for text in (f" {name} ", f" {stem} ", f" {name}", f" {stem}"):
            if Content(text).cell_length <= room:
                label = Content.styled(text, "bold")
                break
        else:
            if room < 6:
                return body
            label = Content.styled(" " + name, "bold").truncate(room, ellipsis=True)
        return Content.assemble(body, " " * (room - label.cell_length), label)
