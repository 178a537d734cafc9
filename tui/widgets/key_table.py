"""The app's lists: Textual's DataTable with the keys a keyboard user moves by everywhere else in
evpipe (j and k, as the pipeline, the board and the help do)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class KeyTable(DataTable):
    """A DataTable that also moves its cursor with j and k. Without them, `jj>` typed on the focus
    list left the cursor on the first row and advanced that prospect instead of the third."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
    ]

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> RowKey:
        """On a row one line high, a text too long for its column ends in "…" (it was cut wherever
        the column ended: `Pacific Reinsurance Chri`), unless it says how it overflows itself. A row
        of `height=None` grows to hold its texts whole, as before."""
        for cell in cells if height == 1 else ():
            if isinstance(cell, Text) and cell.overflow is None:
                cell.no_wrap, cell.overflow = True, "ellipsis"
        return super().add_row(*cells, height=height, key=key, label=label)
