"""Everything about one prospect on one page, and every change to it from there.

The founding example's rep asked for all of a prospect's contact points and information in one
place: contact details, custom fields, notes, the activity log, the stage history with the EV each
move added, and the next follow-up. The page is editable with the same keys as the pipeline.

Reads and writes run in thread workers and come back as messages. Writes go one at a time, each
carrying the version of the prospect this page last saw (including this page's own changes), so
a change somebody else made in the meantime is refused (Conflict), announced and reloaded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from evpipe.models import clock, ladder
from evpipe.models.errors import Conflict, DomainError, NotFound, UndoBlocked
from evpipe.models.records import PageData
from evpipe.models.store import ActivityInfo, ChangeResult, ProspectInfo, StageChangeInfo
from evpipe.models.values import (
    ASKS_NEXT_STEP,
    MoneyStyle,
    clean_text,
    default_follow_up,
    format_percent,
    money_style,
    month_label,
    to_cents,
)
from evpipe.models.visibility import OWN_ONLY_LINE

from ..access import evpipe_app
from ..commands import BindingCommands
from ..dialogs import ActivityDialog, ConfirmDialog, FollowUpDialog, NextStep, TextPrompt
from ..first_read import ReadyAfterFirstRead
from ..messages import ChangeFailed, ChangeSaved, ProspectMissing, ProspectPageLoaded, RemoteChanges
from ..saving import Change, undoing
from ..widgets import user_text
from ..widgets.footer import KeyFooter
from .prospect_form import ProspectForm

#: The changes the page lists (the newest); the journal command lists them all.
CHANGES_SHOWN = 30
#: How long a load waits for this session's changes of the prospect on their way (a save waiting
#: for another writer's lock fails after the app's lock wait; the page reads what is there then).
SETTLE_WAIT = 5.0

#: A write waiting its turn: given the prospect's version this page knows, it makes the change.
Op = Callable[[int], ChangeResult]


def follow_up_text(
    day: date | None, today: date, time: str | None = None, note: str | None = None, *, is_open: bool = True
) -> Text:
    """A follow-up as the page shows it: its day and time, how far off it is, and its note. A won or
    lost prospect's follow-up is no longer due (the list's `!` and the focus list say so too):
    shown without "overdue"."""
    if day is None:
        return Text("none set", style="dim")
    label = f"{day:%a} {day.day} {day:%b}" + (f" {day.year}" if day.year != today.year else "")
    label += f" {time}" if time else ""
    if note:
        return follow_up_text(day, today, time, is_open=is_open) + user_text(f"  {note}")
    if not is_open:
        return Text(label, style="dim") + Text("  (closed: no longer due)", style="dim")
    delta = (day - today).days
    if delta < 0:
        return Text(label) + Text(f"  {-delta} day{'s' if delta != -1 else ''} overdue", style="bold red")
    if delta == 0:
        return Text(label) + Text("  today", style="bold yellow")
    return Text(label) + Text(f"  in {delta} day{'s' if delta != 1 else ''}", style="dim")


def _ev(style: MoneyStyle, micros: int, *, signed: bool = False) -> str:
    return style(micros, micros=True, signed=signed)


class ProspectPage(ReadyAfterFirstRead, Screen):
    """One prospect: details, contact points, history; `e n f > < w l u d` change it."""

    CSS_PATH = "prospect_page.tcss"
    COMMANDS = {BindingCommands}
    PALETTE_GROUP = "prospect page"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    BINDINGS = [
        Binding("escape", "back", "Back", id="prospect.back", show=False),  # said in the subtitle
        Binding("e", "edit", "Edit", id="prospect.edit"),
        Binding("n", "log_activity", "Log", id="prospect.log"),
        Binding("f", "follow_up", "Follow", id="prospect.follow_up"),
        Binding("greater_than_sign,full_stop", "advance", "Next", id="prospect.advance", key_display=">"),
        Binding("less_than_sign,comma", "back_stage", "Prev", id="prospect.back_stage", key_display="<"),
        Binding("w", "won", "Won", id="prospect.won"),
        Binding("l", "lost", "Lost", id="prospect.lost"),
        Binding("u", "undo", "Undo", id="prospect.undo"),
        Binding("U", "undo_skip", "Skip undo", id="prospect.undo_skip", show=False),
        Binding("d", "delete", "Delete", id="prospect.delete"),
    ]

    #: Longer names for the command palette (the footer keeps the short ones).
    ACTION_HELP: dict[str, str] = {
        "back": "Back to where the page was opened from",
        "edit": "Edit the prospect",
        "log_activity": "Log a call, email, meeting or note",
        "follow_up": "Set the next follow-up",
        "advance": "Advance one stage",
        "back_stage": "Back one stage",
        "won": "Mark won",
        "lost": "Mark lost (asks why)",
        "undo": "Undo your last change",
        "undo_skip": "Skip a refused undo; undo the rest",
        "delete": "Delete the prospect (undo brings it back)",
    }

    # ------------------------------------------------------------ messages

    # ------------------------------------------------------------ building

    def __init__(self, prospect_id: int) -> None:
        super().__init__()
        self.prospect_id = prospect_id
        self.data: PageData | None = None
        self.pace: Any = None  # models.pace.Pace, read with the page
        self.version: int | None = None
        self._queue: deque[tuple[Op, bool]] = deque()
        self._writing = False
        self._generation = 0
        self._gone = ""  # why there is no prospect to act on (deleted, another owner's), once read

    def compose(self) -> ComposeResult:
        with Vertical(id="page-head"):
            yield Static(Text("Loading...", style="dim"), id="title")
            yield Static("", id="subtitle")
        with VerticalScroll(id="page-body"):
            yield Static("", id="summary")
            with Horizontal(id="details"):
                yield Static("", id="contact", classes="section")
                yield Static("", id="custom", classes="section")
            yield Static("", id="notes", classes="section")
            with Horizontal(id="logs"):
                yield Static("", id="activities", classes="section")
                yield Static("", id="history", classes="section")
            yield Static("", id="changes", classes="section")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#page-body", VerticalScroll).focus()
        self.load()
        app = evpipe_app(self)
        app.data_changed_signal.subscribe(self, self._changed_elsewhere)
        app.remote_changed_signal.subscribe(self, self._changed_remotely)

    def _changed_elsewhere(self, result: ChangeResult | None) -> None:
        """A change saved elsewhere in this app (the edit form, another screen): read it again."""
        if self._writing or self._queue:
            return  # this page's own change is on its way; it reads the page when it lands
        if result is None or (result.prospect is not None and result.prospect.id == self.prospect_id):
            self.load()

    def _changed_remotely(self, message: RemoteChanges) -> None:
        """Another session changed this prospect (or the ladder): read the page again."""
        if message.reload or self.prospect_id in message.prospect_ids or self.prospect_id in message.gone:
            self._changed_elsewhere(None)

    def on_screen_resume(self) -> None:
        if self.data is not None:
            self.load()

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Reload the page. Only the newest load is shown: an older one still running when a write
        lands could otherwise paint the prospect as it was before the write."""
        self._generation += 1
        self._load(self._generation)

    @work(thread=True, group="prospect-load", exit_on_error=False, description="load one prospect")
    def _load(self, generation: int) -> None:
        app = evpipe_app(self)
        # this session's changes of the prospect still on their way (a `>` on the list just before
        # Enter) land first: the page then reads them, and its own changes start from them
        app.saver.settle(self.prospect_id, SETTLE_WAIT)
        store = app.store
        owner = app.decide_scope()
        try:
            prospect = store.get(self.prospect_id)
        except NotFound as exc:
            if owner is not None:  # another owner's is not found either: whose, or whether it is there, is not said
                said = f"There is no prospect #{self.prospect_id} among yours (it may have been deleted): you see {OWN_ONLY_LINE}"
                self.post_message(ProspectMissing(said, generation, hidden=True))
            else:
                by, at = _last_entry(store, self.prospect_id)
                self.post_message(ProspectMissing(str(exc), generation, deleted_by=by, deleted_at=at))
            return
        if owner is not None and prospect.owner != owner:  # nothing of it is shown
            said = f"It is another owner's: you see {OWN_ONLY_LINE}"
            self.post_message(ProspectMissing(said, generation, hidden=True))
            return
        from evpipe.models.journal_read import journal

        changes = journal(store.engine, prospect_id=self.prospect_id, limit=CHANGES_SHOWN + 1)
        data = PageData(
            prospect, store.activities(self.prospect_id), store.history(self.prospect_id), store.ladder(), changes
        )
        from evpipe.models.pace import load_pace

        pace = load_pace(evpipe_app(self).reader, with_prospects=False, of=(self.prospect_id,))
        self.post_message(ProspectPageLoaded(data, generation, pace))

    @on(ProspectPageLoaded)
    def _loaded(self, message: ProspectPageLoaded) -> None:
        if message.generation != self._generation:
            return
        self.data = message.data
        self._gone = ""
        self.pace = message.pace
        if not self._writing:
            self.version = message.data.prospect.version
        self.render_page()
        self._next_write()

    def work_failed(self, worker: Worker, error: BaseException) -> str:
        """Its read failed: before the first read answered, the title says the page could not be
        read, and why, in place of "Loading..." (the keys held for the page then run:
        ReadyAfterFirstRead)."""
        line = super().work_failed(worker, error)
        if worker.group == "prospect-load" and self.data is None:
            self.query_one("#title", Static).update(Text(f"Could not read this prospect: {line}", style="bold"))
            self.query_one("#subtitle", Static).update(Text("esc goes back; the page is read again when it changes."))
        return line

    @on(ProspectMissing)
    def _missing(self, message: ProspectMissing) -> None:
        if message.generation != self._generation:
            return
        self.data = None
        self._gone = (
            "Not one of your prospects: nothing to change here."
            if message.hidden
            else "This prospect is gone (it may have been deleted): nothing to change here; esc goes back."
        )
        if message.hidden:
            self.query_one("#title", Static).update(Text("Not one of your prospects", style="bold"))
            self.query_one("#subtitle", Static).update(Text(f"{message.message}. esc goes back."))
        else:
            # u undoes the rep's own last change, whatever it was: offered only for their own delete
            # (after a colleague's, it took back an edit of another prospect from this page)
            at = f" at {message.deleted_at:%d %b %H:%M}" if message.deleted_at is not None else ""
            if message.deleted_by and message.deleted_by == evpipe_app(self).who:
                why = f"You deleted it{at}; u (undo) brings it back if that is your last change."
            elif message.deleted_by:
                why = f"{message.deleted_by} deleted it{at}; esc goes back."
            else:
                why = "It may have been deleted; esc goes back."
            self.query_one("#title", Static).update(Text("This prospect is gone", style="bold"))
            self.query_one("#subtitle", Static).update(Text(f"{message.message}. {why}"))
        for section in ("#summary", "#contact", "#custom", "#notes", "#activities", "#history", "#changes"):
            self.query_one(section, Static).update("")

    # ------------------------------------------------------------ rendering

    def render_page(self) -> None:
        data = self.data
        assert data is not None
        p = data.prospect
        title = user_text(p.name, style="bold")
        if p.company:
            title += Text("  ·  ") + user_text(p.company)
        self.query_one("#title", Static).update(title)
        sub = Text(
            f"#{p.id}  ·  added {p.created_at:%d %b %Y}  ·  changed {p.updated_at:%d %b %Y %H:%M}  ·  esc back",
            style="dim",
        )
        if p.needs_review:
            sub += Text("  ·  needs review", style="bold yellow")
        self.query_one("#subtitle", Static).update(sub)
        self.query_one("#summary", Static).update(self._summary(data))
        self.query_one("#contact", Static).update(self._contact(p))
        self.query_one("#custom", Static).update(self._custom(p))
        self.query_one("#notes", Static).update(self._notes(p))
        self.query_one("#activities", Static).update(self._activities(data.activities))
        self.query_one("#history", Static).update(self._history(data.history))
        self.query_one("#changes", Static).update(self._changes(data))

    def _summary(self, data: PageData) -> RenderableType:
        p = data.prospect
        today = clock.today()
        grid = Table.grid(padding=(0, 2), expand=True)
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(ratio=2)
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(ratio=3)
        stage = user_text(p.stage_name, style="bold") + Text(f"  {format_percent(p.probability_bp)}")
        if p.stage_kind != "open" and p.closed_on:
            stage += Text(f"  closed {p.closed_on:%d %b %Y}", style="dim")
        nxt = data.next_stage()
        gain = ladder.next_step_gain(p.value_cents, p.probability_bp, nxt.probability_bp) if nxt is not None else 0
        # value, EV and gain written one way, in full (cents when one has cents)
        money = money_style((p.value_cents, to_cents(p.ev_micros, micros=True), to_cents(gain, micros=True)))
        ev = Text(_ev(money, p.ev_micros), style="bold")
        if nxt is not None:
            step = Text(f"EV {_ev(money, gain, signed=True)}", style="bold green" if gain > 0 else "") + user_text(
                f" at {nxt.name}"
            )
        else:
            step = Text("none: closed; < reopens it", style="dim")
        grid.add_row("Value", Text(money(p.value_cents), style="bold"), "Stage", stage)
        grid.add_row("EV", ev, "Next step", step)
        grid.add_row(
            "Expected",
            Text(month_label(p.expected_month) or "no month set"),
            "Follow-up",
            follow_up_text(p.next_follow_up, today, p.follow_up_time, p.follow_up_note, is_open=p.stage_kind == "open"),
        )
        stale = self._stale(data, today) if self.pace is None else Text("")  # else: slow, below
        grid.add_row("Owner", user_text(p.owner or "nobody"), "Last touch", Text(f"{p.last_touch_at:%d %b %Y}") + stale)
        if self.pace is not None and p.stage_kind == "open":
            slow = self.pace.slow(p.id, p.stage_id, p.last_touch_at.date().isoformat())
            words = self.pace.words(p.id, p.stage_id, p.last_touch_at.date().isoformat())
            grid.add_row(
                "",
                Text(""),
                "Pace",
                user_text(("~ slow: " if slow else "") + words, style="bold yellow" if slow else ""),
            )
        if p.stage_kind == "lost":
            why = Text("Lost      ", style="dim") + (
                user_text(p.lost_reason) if p.lost_reason else Text("no reason given", style="dim")
            )
            return Group(grid, why)
        return grid

    @staticmethod
    def _stale(data: PageData, today: date) -> Text:
        stage = data.stage
        p = data.prospect
        if stage is None or p.stage_kind != "open" or stage.stale_days <= 0:
            return Text("")
        idle = (today - p.last_touch_at.date()).days
        if idle > stage.stale_days:
            return Text(f"  stale: {idle} days idle (limit {stage.stale_days})", style="bold yellow")
        return Text("")

    @staticmethod
    def _heading(title: str) -> Text:
        return Text(title, style="bold underline")

    def _contact(self, p: ProspectInfo) -> RenderableType:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        grid.add_row("Person", user_text(p.contact_name or "—"))
        grid.add_row("Phone", user_text(p.phone or "—"))
        grid.add_row("Email", user_text(p.email or "—"))
        return Group(self._heading("Contact"), grid)

    def _custom(self, p: ProspectInfo) -> RenderableType:
        if not p.custom:
            return Group(self._heading("Custom fields"), Text("none", style="dim"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim")
        grid.add_column()
        for key, value in p.custom.items():
            grid.add_row(user_text(key), user_text(value))
        return Group(self._heading("Custom fields"), grid)

    def _notes(self, p: ProspectInfo) -> RenderableType:
        return Group(self._heading("Notes"), user_text(p.notes) if p.notes else Text("none", style="dim"))

    def _activities(self, items: list[ActivityInfo]) -> RenderableType:
        head = self._heading(f"Contact log ({len(items)})")
        if not items:
            return Group(head, Text("nothing logged yet; n logs a call, email, meeting or note", style="dim"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, style="dim")
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        for a in items:
            when = f"{a.occurred_at:%d %b %Y}" + (f" {a.occurred_at:%H:%M}" if a.timed else "")
            table.add_row(when, Text(a.kind), user_text(a.text) + user_text(f"  {a.who}", style="dim"))
        return Group(head, table)

    def _history(self, items: list[StageChangeInfo]) -> RenderableType:
        head = self._heading("Stage history, with the EV each move added")
        if not items:
            return Group(head, Text("none", style="dim"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, style="dim")
        table.add_column(ratio=1)
        table.add_column(no_wrap=True, justify="right")
        money = money_style((c.ev_added_micros for c in items), micros=True)
        for c in items:
            if c.from_stage is None:
                move = Text("added on ") + user_text(c.to_stage) + Text(f" {format_percent(c.to_probability_bp)}")
            else:
                move = (
                    user_text(c.from_stage)
                    + Text(" -> ")
                    + user_text(c.to_stage)
                    + Text(f" {format_percent(c.to_probability_bp)}")
                )
            extra = [c.who]
            if c.reason and c.reason not in ("created",):
                extra.append(c.reason)
            move += user_text("  " + "  ".join(extra), style="dim")
            added = c.ev_added_micros
            style = "green" if added > 0 else ("red" if added < 0 else "dim")
            table.add_row(f"{c.changed_at:%d %b %Y}", move, Text("EV " + _ev(money, added, signed=True), style=style))
        return Group(head, table)

    def _changes(self, data: PageData) -> RenderableType:
        """Every change to the prospect, newest first: who, when, what (from what to what), and
        what it did to EV."""
        items = data.changes[:CHANGES_SHOWN]
        head = self._heading("Every change, newest first")
        if not items:
            return Group(head, Text("none", style="dim"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, style="dim")
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        table.add_column(no_wrap=True, justify="right")
        money = money_style((e.d_ev_micros for e in items), micros=True)
        prefix = f"{data.prospect.name}: "
        for e in items:
            what = e.what.removeprefix(prefix)
            if e.undone:
                what += " (undone)"
            ev = Text("")
            if e.moves_kpis:
                style = "green" if e.d_ev_micros > 0 else ("red" if e.d_ev_micros < 0 else "dim")
                ev = Text("EV " + _ev(money, e.d_ev_micros, signed=True), style=style)
            table.add_row(f"{e.at:%d %b %Y %H:%M}", user_text(e.who), user_text(what), ev)
        more = []
        if len(data.changes) > CHANGES_SHOWN:
            more = [Text(f"older changes: evpipe journal --prospect '#{data.prospect.id}'", style="dim")]
        return Group(head, table, *more)

    # ------------------------------------------------------------ writing

    def submit(self, op: Op, *, leave: bool = False) -> None:
        """Queue one change; changes run one after another, each with the latest known version."""
        self._queue.append((op, leave))
        self._next_write()

    def _next_write(self) -> None:
        # Wait while a write is running, and while the version is unknown (loading after a conflict):
        # a write without a version would skip the check that protects someone else's change.
        if self._writing or not self._queue or self.version is None:
            return
        op, leave = self._queue.popleft()
        self._writing = True
        self.write(op, self.version, leave)

    def write(self, op: Op, version: int | None, leave: bool) -> None:
        """Save through the app's saver (in a worker); `leave`: close the page once saved."""
        call = lambda: self._run(op, version)  # noqa: E731
        evpipe_app(self).saver.save(
            Change(
                undoing(call, last=getattr(op, "undoing_last", True)) if getattr(op, "undoing", False) else call,
                self,
                self.prospect_id,
                context=leave,
            )
        )

    def _run(self, op: Op, version: int | None) -> ChangeResult:
        """Make the change (in the saver's worker)."""
        try:
            return op(version)
        except DomainError as exc:
            if isinstance(exc, NotFound) and (gone := self._deleted_since()) is not None:
                # (a contact point on a prospect deleted a moment ago: "there is no prospect #28"
                # read as a change to make again; this says who took it away, and when)
                raise DomainError(f"{gone}: there is nothing to save it to") from exc
            if not isinstance(exc, (Conflict, UndoBlocked)) and version is not None and self._changed_since(version):
                # The store may refuse for another reason first (e.g. "is Won already") when the
                # real cause is that someone else changed the prospect: say that.
                raise Conflict(str(exc)) from exc
            raise

    def _deleted_since(self) -> str | None:
        """ "priya deleted it at 05 Dec 18:12" when the prospect has been deleted (the journal's
        last entry for it names who and when), else None. In a worker: it reads the database."""
        store = evpipe_app(self).store
        try:
            if not store.get(self.prospect_id, include_deleted=True).deleted:
                return None
        except DomainError:
            return None
        by, at = _last_entry(store, self.prospect_id)
        if at is None:
            return "It was deleted"
        return f"{'You' if by == evpipe_app(self).who else by} deleted it at {at:%d %b %H:%M}"

    def _changed_since(self, version: int) -> bool:
        try:
            return evpipe_app(self).store.get(self.prospect_id, include_deleted=True).version != version
        except DomainError:
            return True

    def on_change_saved(self, message: ChangeSaved) -> None:
        result = message.result
        self._writing = False
        if result.prospect is not None and result.prospect.id == self.prospect_id:
            self.version = result.prospect.version
        self.notify(result.summary, markup=False, title="Saved")
        for warning in result.warnings:
            self.notify(warning, markup=False, severity="warning")
        # the app tells every screen once this has run (the message bubbles up to it)
        if message.context:  # leave the page
            self._queue.clear()
            if self.app.screen is self:
                self.app.pop_screen()
            return
        self._next_write()
        self.load()

    def on_change_failed(self, message: ChangeFailed) -> None:
        self._writing = False
        error = message.cause or DomainError(message.error)
        if isinstance(error, Conflict):
            self._queue.clear()
            name = self.data.prospect.name if self.data else f"#{self.prospect_id}"
            self.notify(
                f"{name} was changed by someone else since this page loaded ({error}). The page now "
                "shows their change; make yours again if it still applies.",
                title="Not saved",
                severity="warning",
                markup=False,
                timeout=8,
            )
            self.version = None
            self.load()
            return
        self.notify(str(error), title="Not saved", severity="error", markup=False)
        self._next_write()
        self.load()

    def _ready(self) -> PageData | None:
        if self.data is None:
            said = self._gone or "The prospect is not loaded yet."
            self.notify(said, markup=False, severity="warning")
            return None
        return self.data

    @property
    def store(self):
        return evpipe_app(self).store

    # ------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def _refused(self, target: str) -> bool:
        """Say what to do instead of a move the prospect cannot make (won, lost), before asking."""
        data = self._ready()
        if data is None:
            return True
        p = data.prospect
        hint = ladder.closed_move_hint(p.name, p.stage_kind, p.stage_name, target)
        if hint is not None:
            self.notify(hint, markup=False, severity="warning", timeout=5)
            return True
        return False

    def _move(self, target: str, reason: str | None = None) -> None:
        if self._ready() is None or (target != "back" and self._refused(target)):
            return
        pid = self.prospect_id
        self.submit(lambda v: self.store.move(pid, target, reason=reason, expected_version=v))

    def action_advance(self) -> None:
        self._move("next")

    def action_back_stage(self) -> None:
        self._move("back")

    def action_won(self) -> None:
        self._move("won")

    def action_lost(self) -> None:
        data = self._ready()
        if data is None or self._refused("lost"):
            return

        def got(reason: str | None) -> None:
            if reason is not None:
                self._move("lost", reason.strip() or None)

        self.app.push_screen(
            TextPrompt(
                f"Mark {data.prospect.name} lost",
                "Why was it lost? (optional)",
                placeholder="e.g. went with another operator, budget cut",
                validate=lambda t: clean_text(t, field="reason", max_len=500),
            ),
            got,
        )

    def action_undo(self) -> None:
        self.submit(undoing(lambda v: self.store.undo()))

    def action_undo_skip(self) -> None:
        self.submit(undoing(lambda v: self.store.undo(skip=True), last=False))

    def action_edit(self) -> None:
        data = self._ready()
        if data is None:
            return
        pid, store = self.prospect_id, self.store

        def save(changes: dict, version: int) -> ChangeResult:
            return store.edit(pid, expected_version=version, **changes)

        # the form saves on the version it was opened on and stays open until saved (a conflicting
        # change since is named there, with what was typed kept); this page reads it again then
        self.app.push_screen(ProspectForm(data.ladder, data.prospect, owner=evpipe_app(self).who, save=save))

    def action_log_activity(self) -> None:
        """Log a contact point; after a call, email or meeting, ask for the next follow-up (escape
        skips it)."""
        data = self._ready()
        if data is None:
            return
        pid, p = self.prospect_id, data.prospect

        def got(answer: tuple[str, str, str] | None) -> None:
            if answer is None:
                return
            kind, text, when = answer
            self.submit(lambda v: self.store.log_activity(pid, kind, text, when=when))
            if kind in ASKS_NEXT_STEP:
                self._ask_follow_up(f"Next step with {p.name}", default_follow_up(clock.today(), p.next_follow_up))

        self.app.push_screen(ActivityDialog(), got)

    def _ask_follow_up(self, title: str, day: date | None) -> None:
        data = self.data
        keep = data is not None and data.prospect.next_follow_up == day
        time = data.prospect.follow_up_time if data is not None and keep else None
        note = data.prospect.follow_up_note if data is not None and keep else None
        pid = self.prospect_id

        def got(step: NextStep | None) -> None:
            if step is not None:
                self.submit(
                    lambda v: self.store.set_follow_up(
                        pid, step.day, time=step.time, note=step.note, expected_version=v
                    )
                )

        self.app.push_screen(FollowUpDialog(title, day, time, note), got)

    def action_follow_up(self) -> None:
        data = self._ready()
        if data is not None:
            self._ask_follow_up(f"Next follow-up for {data.prospect.name}", data.prospect.next_follow_up)

    def action_delete(self) -> None:
        data = self._ready()
        if data is None:
            return
        pid = self.prospect_id

        def got(yes: bool | None) -> None:
            if yes:
                self.submit(lambda v: self.store.delete(pid, expected_version=v), leave=True)

        self.app.push_screen(
            ConfirmDialog(f"Delete {data.prospect.name}? Undo (u) brings it back.", title="Delete prospect"),
            got,
        )


def _last_entry(store: Any, prospect_id: int) -> tuple[str, datetime | None]:
    """Who made a prospect's last journal entry, and when (a deleted one's: who deleted it), or
    ("", None) when it has none. It reads the database: in a worker."""
    from evpipe.models.journal_read import journal

    last = journal(store.engine, prospect_id=prospect_id, limit=1)
    return (last[0].who, last[0].at) if last else ("", None)


__all__ = ["ProspectPage", "follow_up_text"]
