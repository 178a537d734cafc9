"""The one-line tab bar: the top-level screens by number key, the current one highlighted."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from ..screens.registry import ScreenSpec, available


class TabBar(Widget):
    """`1 Pipeline  2 Focus  ...`: press the number (or click) to go there."""

    DEFAULT_CSS = """
    TabBar {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
    }
    """

    current: reactive[str] = reactive("pipeline")

    def __init__(self, current: str = "pipeline", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.specs: list[ScreenSpec] = []
        self.set_reactive(TabBar.current, current)

    def on_mount(self) -> None:
        self.specs = getattr(self.app, "screen_specs", None) or available()

    def render(self) -> Content:
        parts: list[Content] = []
        for spec in self.specs:
            label = f" {spec.key} {spec.title} "
            if spec.name == self.current:
                parts.append(Content.styled(label, "reverse bold"))
            else:
                parts.append(Content.styled(label, f"@click=app.go('{spec.name}')"))
        right = Content.styled(" evpipe ", "bold")
        body = Content("").join(parts)
        gap = self.size.width - body.cell_length - right.cell_length
        if gap > 0:
            body = Content.assemble(body, " " * gap, right)
        return body
