"""Reusable widgets of evpipe's screens."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget


class TextLine(Widget):
    """Text of a fixed size (its CSS gives the height) that repaints without a layout pass, unlike
    Static.update. Shown as given: a str is plain text, never markup."""

    DEFAULT_CSS = """
    TextLine {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, content: Content | str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content = Content(content) if isinstance(content, str) else content

    @property
    def content(self) -> Content:
        return self._content

    @property
    def plain(self) -> str:
        return self._content.plain

    def show(self, content: Content | str) -> None:
        content = Content(content) if isinstance(content, str) else content
        if content != self._content:
            self._content = content
            self.refresh()

    def render(self) -> Content:
        return self._content
