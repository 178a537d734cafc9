"""The activity screen (key 9): who did what, newest first, with what each change did to TV and EV.

The journal (models.journal_read) is read in pages of PAGE entries in a worker; moving onto the
last row reads the next page, so a key press never costs more than a page however long the
journal is. Enter opens the prospect a change was made to; `w` shows one person's changes (or
everyone's); `m` opens the members screen (models/roles.py: who may do what). A rep whom the owner
lets see only their own prospects sees only the changes to those.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static
from textual.worker import Worker

from evpipe.models.journal_read import PAGE, JournalEntry
from evpipe.models.values import money_style
from evpipe.models.visibility import OWN_ONLY_LINE

from ..access import evpipe_app
from ..dialogs import ChoiceDialog
from ..messages import JournalLoaded, RepsLoaded
from ..widgets import user_text
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable
from .live import LiveScreen

MONEY_WIDTH = 8  # the TV and EV columns


class ActivityScreen(LiveScreen):
    """Every change, newest first."""

    DEFAULT_CSS = """
    ActivityScreen #activity-title { height: 1; padding: 0 1; background: $panel; }
    ActivityScreen #activity-table { height: 1fr; }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", id="activity.open", show=False),
        Binding("w", "who", "Who", id="activity.who"),
        Binding("m", "members", "Members", id="activity.members"),
        # (priority: the table's own Home and End scroll sideways, which a list of changes never does)
        Binding("home", "first", "First", id="activity.first", show=False, priority=True),
        Binding("end", "last", "Last", id="activity.last", show=False, priority=True),
    ]
    ACTION_HELP = {
        "first": "The newest change (the top of the list)",
        "last": "The oldest change listed (more are read as the cursor nears the end)",
        "open": "Open the prospect of the change under the cursor",
        "who": "Show one person's changes, or everyone's",
        "members": "Members and their roles (the owner changes them)",
    }

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[JournalEntry] = []
        #: Whose changes are listed; None: everyone's.
        self.who: str | None = None
        self.more = False
        self.reps: list[str] = []
        self._generation = 0
        self._loading_more = False
        self._read = False  # the first page has come (until then the count says it is loading)
        self._failed: str | None = None  # why the first page could not be read

    def compose(self) -> ComposeResult:
        yield Static("", id="activity-title", markup=False)
        yield KeyTable(id="activity-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#activity-table", DataTable)

    def _what_width(self, width: int) -> int:
        # when 12, who 8, TV and EV 9 each, 2 cells of padding per column, the scrollbar
        return max(20, width - (12 + 8 + 2 * MONEY_WIDTH) - 2 * 5 - 2)

    def _columns(self) -> None:
        self._shown_width = self._what_width(self.size.width or 80)
        table = self.table
        table.clear(columns=True)
        table.add_column("When", key="when", width=12)
        table.add_column("Who", key="who", width=8)
        table.add_column("What", key="what", width=self._shown_width)
        table.add_column(Text("TV", justify="right"), key="tv", width=MONEY_WIDTH)
        table.add_column(Text("EV", justify="right"), key="ev", width=MONEY_WIDTH)

    def on_resize(self) -> None:
        if self.is_mounted and self._what_width(self.size.width) != getattr(self, "_shown_width", None):
            self._columns()
            self._rows(keep=self._cursor_id())

    def on_mount(self) -> None:
        self._columns()
        self._title()
        self.table.focus()
        self.follow_changes()

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Read the newest page again (after a change, or when shown)."""
        self._generation += 1
        self._load(self._generation, self.who, None)

    @work(thread=True, group="activity-load", exit_on_error=False, description="the journal")
    def _load(self, generation: int, who: str | None, before_id: int | None) -> None:
        from evpipe.models.journal_read import journal, journal_authors

        app = evpipe_app(self)
        engine = app.engine
        owner = app.decide_scope()  # a rep the owner lets see only their own: changes to theirs
        entries = journal(engine, who=who, owner=owner, before_id=before_id, limit=PAGE + 1)
        more = len(entries) > PAGE
        self.post_message(JournalLoaded(entries[:PAGE], generation, append=before_id is not None, more=more))
        if before_id is None:
            self.post_message(RepsLoaded(journal_authors(engine)))

    def work_failed(self, worker: Worker, error: BaseException) -> str:
        line = super().work_failed(worker, error)
        self._failed = line
        self._title()
        return line

    @on(RepsLoaded)
    def _reps(self, message: RepsLoaded) -> None:
        self.reps = message.names

    @on(JournalLoaded)
    def _loaded(self, message: JournalLoaded) -> None:
        if message.generation != self._generation:
            return
        keep = self._cursor_id()
        self._read = True
        self._loading_more = False
        if message.append:
            self.entries += message.entries
            self.more = message.more
        else:
            # the newest page again: keep the older pages already read (their "more" still holds)
            oldest = message.entries[-1].id if message.entries else None
            older = [e for e in self.entries if oldest is not None and e.id < oldest]
            self.entries = message.entries + older
            if not older:
                self.more = message.more
        self._rows(keep=keep)
        self._title()

    def _cursor_id(self) -> int | None:
        row = self.table.cursor_row
        return self.entries[row].id if 0 <= row < len(self.entries) and self.table.row_count else None

    def _rows(self, *, keep: int | None = None) -> None:
        table = self.table
        table.clear()
        tv = money_style((e.d_tv_cents for e in self.entries), width=MONEY_WIDTH, signed=True)
        ev = money_style((e.d_ev_micros for e in self.entries), micros=True, width=MONEY_WIDTH, signed=True)
        cursor = 0
        for n, e in enumerate(self.entries):
            what = e.what + (" (undone)" if e.undone else "")
            moved = e.moves_kpis
            table.add_row(
                Text(f"{e.at:%d %b %H:%M}", style="dim"),
                user_text(e.who),
                user_text(what, style="dim" if e.undone else ""),
                _signed(tv(e.d_tv_cents, signed=True), e.d_tv_cents) if moved and e.d_tv_cents else Text(""),
                _signed(ev(e.d_ev_micros, micros=True, signed=True), e.d_ev_micros) if moved else Text(""),
                key=str(e.id),
                height=None,  # a long change wraps onto a second line rather than being cut
            )
            if e.id == keep:
                cursor = n
        if self.entries:
            table.move_cursor(row=cursor, animate=False)

    def _title(self) -> None:
        whose = f"{self.who}'s changes" if self.who else "Everyone's changes"
        count = f"{len(self.entries)}{'+' if self.more else ''}" if self._read else "loading…"
        if not self._read and self._failed is not None:
            count = f"could not load: {self._failed}"
        if evpipe_app(self).scope_owner is not None:  # (one line at 80 columns: no room for the keys)
            whose = f"{self.who}'s changes to {OWN_ONLY_LINE}" if self.who else f"Changes to {OWN_ONLY_LINE}"
            title = Text.assemble(("Activity", "bold"), f"  {whose}, newest ({count})")
        else:
            title = Text.assemble(
                ("Activity", "bold"), f"  {whose}, newest first ({count})", ("  enter opens its prospect", "dim")
            )
        self.query_one("#activity-title", Static).update(title)

    @on(DataTable.RowHighlighted, "#activity-table")
    def _near_the_end(self, event: DataTable.RowHighlighted) -> None:
        """On the last row, read the next (older) page."""
        if self.more and not self._loading_more and event.cursor_row >= len(self.entries) - 1 and self.entries:
            self._loading_more = True
            self._load(self._generation, self.who, self.entries[-1].id)

    # ------------------------------------------------------------ actions

    @on(DataTable.RowSelected, "#activity-table")
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_first(self) -> None:
        if self.table.row_count:
            self.table.move_cursor(row=0)

    def action_last(self) -> None:
        if self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1)

    def action_open(self) -> None:
        row = self.table.cursor_row
        if not (0 <= row < len(self.entries)):
            return
        entry = self.entries[row]
        if entry.prospect_id is None:
            self.notify("That change is to the ladder, not to a prospect (7: Stages).", markup=False, timeout=4)
            return
        from .prospect_page import ProspectPage

        self.app.push_screen(ProspectPage(entry.prospect_id))

    def action_who(self) -> None:
        def done(choice: str | None) -> None:
            if choice is None:
                return
            self.who = choice or None
            self.entries = []
            self.more = False
            self.load()
            self._title()

        options: list[tuple[str, str]] = [("Everyone", "")] + [(name, name) for name in self.reps]
        self.app.push_screen(ChoiceDialog("Activity", "Whose changes?", options), done)

    def action_members(self) -> None:
        from .members import MembersScreen

        self.app.push_screen(MembersScreen())


def _signed(text: str, amount: int) -> Text:
    return Text(text, style="green" if amount > 0 else "red" if amount < 0 else "dim", justify="right")
