"""The app's lists: Textual's DataTable with the keys a keyboard user moves by everywhere else in
evpipe (j and k, as the pipeline, the board and the help do)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class KeyTable(DataTable):
    """A DataTable that also moves its cursor with j and k. Without them, `jj>` typed on the focus
    list left the cursor on the first row and advanced that prospect instead of the third."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
    ]
