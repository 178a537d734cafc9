"""The weekly review screen: how the KPIs moved over the last 7 days (or a chosen period) and why.

The bridge (models.review): EV and TV of new prospects, advances, wins, regressions, losses,
reopened, value edits, probability changes, deletions; the terms add up exactly to the change.
Enter on a term lists the prospects behind it. Below: follow-ups overdue and due this week, stale
prospects, and the best next steps; enter on one opens its page. `s` chooses the period, `r` the
rep: one rep's review counts the changes they made (everyone else's are one term), and every
prospect behind a term names who moved it.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static

from evpipe.models.errors import DomainError
from evpipe.models.focus import GAIN_PHRASE, FocusItem
from evpipe.models.names import display_name
from evpipe.models.review import Review, Term, parse_since, review
from evpipe.models.values import MoneyStyle, balanced_cents, money_style, to_cents
from evpipe.models.visibility import OWN_ONLY_LINE

from ..access import evpipe_app
from ..dialogs import ChoiceDialog, Dialog, TextPrompt
from ..messages import RepsLoaded, ReviewFailed, ReviewLoaded, from_worker, superseded
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable
from ..widgets.kpi_header import ratio_text as _ratio
from .live import LiveScreen

MONEY_WIDTH = 9  # the bridge's EV and TV columns
TERM_MONEY_WIDTH = 10  # the EV, TV and value columns of a term's prospects


def _ev(style: MoneyStyle, micros: int, *, signed: bool = False) -> str:
    return style(micros, micros=True, signed=signed and micros != 0)


def _money(style: MoneyStyle, cents: int, *, signed: bool = False) -> str:
    return style(cents, signed=signed and cents != 0)


def _styled(amount_text: str, amount: int) -> Text:
    return Text(amount_text, justify="right", style="green" if amount > 0 else "red" if amount < 0 else "dim")


def why_text(item: FocusItem, best_next: bool, width: int) -> str:
    """Why a prospect is on the to-do list, in `width` cells: shorter words and the gain with a
    unit when the full reason does not fit, never an amount cut off."""
    why = "; ".join(item.reasons) if best_next else item.reason
    if len(why) <= width or not best_next:
        return why
    lead = "" if item.group == "gain" else item.short_reason + "; "
    room = width - len(lead) - len(GAIN_PHRASE.format(""))
    if room < 6:
        lead, room = "", width - len(GAIN_PHRASE.format(""))
    gain = money_style((item.gain_micros,), micros=True, width=max(room, 1), signed=True)
    return lead + GAIN_PHRASE.format(gain(item.gain_micros, micros=True, signed=True))


class TermProspects(Dialog[int | None]):
    """The prospects (or stages) behind one term of the bridge; enter opens a prospect."""

    CSS_PATH = "review.tcss"

    BINDINGS = [Binding("escape,q", "dismiss_none", "Close", id="review.term.close")]

    def __init__(self, term: Term) -> None:
        super().__init__()
        self.term = term

    def compose(self) -> ComposeResult:
        with Vertical(id="term-box"):
            term = self.term
            style = money_style((term.d_tv_cents, to_cents(term.d_ev_micros, micros=True)))
            yield Label(
                f"{term.label}: EV {_ev(style, term.d_ev_micros, signed=True)}, "
                f"TV {_money(style, term.d_tv_cents, signed=True)}",
                id="term-title",
                markup=False,
            )
            yield KeyTable(id="term-items", cursor_type="row", zebra_stripes=True)
            yield Label("enter: open  escape: close", id="term-keys", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#term-items", DataTable)
        table.add_column(
            "Prospect" if any(i.kind == "prospect" for i in self.term.items) else "Stage", key="name", width=34
        )
        items = self.term.items
        w = TERM_MONEY_WIDTH
        ev = money_style((i.d_ev_micros for i in items), micros=True, width=w, signed=True)
        tv = money_style((i.d_tv_cents for i in items), width=w, signed=True)
        value = money_style((i.value_cents for i in items if i.kind == "prospect"), width=w)
        table.add_column(Text("EV", justify="right"), key="ev", width=w)
        table.add_column(Text("TV", justify="right"), key="tv", width=w)
        table.add_column(Text("Value now", justify="right"), key="value", width=w)
        for item in items:
            table.add_row(
                Text(display_name(f"{item.name} ({item.by_text})" if item.by else item.name)),
                _styled(_ev(ev, item.d_ev_micros, signed=True), item.d_ev_micros),
                _styled(_money(tv, item.d_tv_cents, signed=True), item.d_tv_cents),
                Text(_money(value, item.value_cents) if item.kind == "prospect" else "", justify="right"),
                key=f"{item.kind}:{item.id}",
            )
        table.focus()

    @on(DataTable.RowSelected, "#term-items")
    def _open(self, event: DataTable.RowSelected) -> None:
        kind, _, ident = str(event.row_key.value).partition(":")
        if kind == "prospect":
            self.dismiss(int(ident))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ReviewScreen(LiveScreen):
    """The week's EV bridge and what to do next."""

    LOADING = ("review-title", "Review", "the week")

    CSS_PATH = "review.tcss"

    BINDINGS = [
        Binding("s", "since", "Period", id="review.since"),
        Binding("r", "rep", "Rep", id="review.rep"),
        Binding("tab", "app.focus_next", "Next list", id="review.next_list", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.since = "7d"
        #: The rep whose changes the bridge counts; None: everyone's.
        self.who: str | None = None
        self.reps: list[str] = []
        self.review: Review | None = None
        self.todo_ids: list[int | None] = []

    def compose(self) -> ComposeResult:
        yield self.loading_line()
        yield Static("", id="review-kpis", markup=False)
        yield KeyTable(id="bridge", cursor_type="row", zebra_stripes=True)
        yield KeyTable(id="todo", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def _widths(self, width: int) -> tuple[int, int, int]:
        """(who, prospect, why) column widths: 80 columns first, a wider terminal widens them."""
        spare = max(0, width - 80)
        return 30 + spare, 30 + spare // 2, 30 + spare - spare // 2

    def _columns(self) -> None:
        self._shown_widths = who_w, name_w, why_w = self._widths(self.size.width or 80)
        bridge = self.query_one("#bridge", DataTable)
        bridge.clear(columns=True)
        bridge.add_column("What moved EV", key="term", width=20)
        bridge.add_column(Text("EV", justify="right"), key="ev", width=MONEY_WIDTH)
        bridge.add_column(Text("TV", justify="right"), key="tv", width=MONEY_WIDTH)
        bridge.add_column("Behind it (enter lists)", key="who", width=who_w)
        todo = self.query_one("#todo", DataTable)
        todo.clear(columns=True)
        todo.add_column("Next", key="section", width=9)
        todo.add_column("Prospect", key="name", width=name_w)
        todo.add_column("Why", key="why", width=why_w)

    def on_resize(self) -> None:
        if self.is_mounted and self._widths(self.size.width) != getattr(self, "_shown_widths", None):
            self._columns()
            if self.review is not None:
                self._show_review()

    def on_mount(self) -> None:
        self._columns()
        bridge = self.query_one("#bridge", DataTable)
        bridge.focus()
        self.follow_changes()

    @work(thread=True, exclusive=True, group="review-load", exit_on_error=False, description="the review")
    def load(self) -> None:
        since, who = self.since, self.who
        app = evpipe_app(self)
        try:  # a rep the owner lets see only their own: the review of their prospects
            # SQLite: read through connections of its own, closed after (models/rawdb.py READ_CACHE);
            # the engine only if the period's start must be replayed from the journal
            r = review(app.reader, since, who=who, owner=app.decide_scope(), replay_from=lambda: app.engine)
        except DomainError as exc:
            self.post_message(ReviewFailed(str(exc)))
            return
        self.post_message(from_worker(ReviewLoaded(r, since)))
        from evpipe.models.journal_read import journal_authors

        self.post_message(RepsLoaded(journal_authors(evpipe_app(self).engine)))

    @on(RepsLoaded)
    def _reps(self, message: RepsLoaded) -> None:
        self.reps = message.names

    @on(ReviewFailed)
    def _failed(self, message: ReviewFailed) -> None:
        self.app.notify(message.error, markup=False, severity="error")

    @on(ReviewLoaded)
    def _loaded(self, message: ReviewLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        if message.since != self.since or message.review.who != self.who:
            return
        self.review = message.review
        self._show_review()

    def _show_review(self) -> None:
        r = self.review
        first, last = r.start_at.date(), r.end_at.date()
        shown = self.query_one("#review-title", Static)
        room = shown.size.width or 78
        # the fullest title that fits its line: a period reaching back into another year took the
        # "(s: period, r: rep)" off the end of an 80-column line
        for weekdays, purpose in ((True, True), (True, False), (False, False)):
            title = Text("Review", style="bold")
            day = "%a %d %b" if weekdays else "%d %b"
            # the first day's year too when it is not the last's: 400 days back read as five weeks
            start = first.strftime(day if first.year == last.year else f"{day} %Y")
            title.append(f"  {start} – {last.strftime(day + ' %Y')}", style="")
            if r.who:
                title.append(f"  {r.who}'s changes", style="bold")
            title.append("  how the KPIs moved" if purpose and not r.who and r.owner is None else "", style="dim")
            title.append("  (s: period, r: rep)", style="dim")
            if title.cell_len <= room:
                break
        shown.update(title)
        d_ev = r.end.ev_micros - r.start.ev_micros
        d_tv = r.end.tv_cents - r.start.tv_cents
        evs = money_style((r.start.ev_micros, r.end.ev_micros, d_ev), micros=True)  # a sentence: exact
        tvs = money_style((r.end.tv_cents, d_tv))
        ev_part = Text.assemble(
            ("EV ", "dim"),
            (f"{_ev(evs, r.start.ev_micros)} → {_ev(evs, r.end.ev_micros)} ", "bold"),
            (_ev(evs, d_ev, signed=True), "green" if d_ev > 0 else "red" if d_ev < 0 else "dim"),
        )
        tv_part = Text.assemble(
            ("TV ", "dim"),
            (f"{_money(tvs, r.end.tv_cents)} ", "bold"),
            (_money(tvs, d_tv, signed=True), "green" if d_tv > 0 else "red" if d_tv < 0 else "dim"),
        )
        ratio_part = Text.assemble(("EV/TV ", "dim"), (f"{_ratio(r.start)} → {_ratio(r.end)}", "bold"))
        # each figure whole on a line: one that does not fit beside the last starts a new line
        # (wrapped by the terminal, "TV" and "EV/TV 42.33% →" ended a line at 80 columns once EV
        # reached the hundreds of thousands, their figures on the next)
        width = (self.size.width or self.app.size.width) - 2  # (the line's padding)
        kpis, line = Text(), 0
        for part in (ev_part, tv_part, ratio_part):
            if line and line + 2 + part.cell_len > width:
                kpis.append("\n")
                line = 0
            elif line:
                kpis.append("  ")
                line += 2
            kpis.append_text(part)
            line += part.cell_len
        if r.season:
            kpis.append(f"\n{r.season}", style="bold")
        if r.owner is not None:  # (the title has no room for it at 80 columns)
            kpis.append(f"\n{OWN_ONLY_LINE.capitalize()}", style="dim")
        self.query_one("#review-kpis", Static).update(kpis)

        bridge = self.query_one("#bridge", DataTable)
        keep = bridge.cursor_row
        bridge.clear()
        # the terms to the cent, adding up to the change as shown, as `evpipe review` prints them
        # (models.values.balanced_cents): two terms of 0.125 read 0.13 and 0.12 under 0.25
        term_cents = balanced_cents([t.d_ev_micros for t in r.terms], micros=True)
        change_cents = to_cents(d_ev, micros=True)
        ev = money_style([*term_cents, change_cents], width=MONEY_WIDTH, signed=True)
        tv = money_style([t.d_tv_cents for t in r.terms] + [d_tv], width=MONEY_WIDTH, signed=True)
        for t, cents in zip(r.terms, term_cents):
            moved = [i for i in t.items if i.d_ev_micros or i.d_tv_cents or i.d_count]
            names = ", ".join(i.name for i in moved[:3]) + (f" +{len(moved) - 3}" if len(moved) > 3 else "")
            bridge.add_row(
                Text(t.label),
                _styled(_money(ev, cents, signed=True), t.d_ev_micros),
                _styled(_money(tv, t.d_tv_cents, signed=True), t.d_tv_cents),
                Text(names, style="dim"),
                key=t.category,
            )
        bridge.add_row(
            Text("Change", style="bold"),
            _styled(_money(ev, change_cents, signed=True), d_ev),
            _styled(_money(tv, d_tv, signed=True), d_tv),
            Text("nothing changed" if not r.terms else "", style="dim"),
            key="__change",
        )
        bridge.move_cursor(row=min(max(keep, 0), bridge.row_count - 1), animate=False)

        todo = self.query_one("#todo", DataTable)
        todo.clear()
        self.todo_ids = []
        sections = (
            ("Overdue", r.overdue, "bold red"),
            ("Due", r.due, "yellow"),
            ("Stale", r.stale, "magenta"),
            ("Best next", r.focus, "green"),
        )
        for label, items, style in sections:
            if not items:
                todo.add_row(Text(label, style=style), Text("none", style="dim"), Text(""), key=f"empty:{label}")
                self.todo_ids.append(None)
                continue
            for n, item in enumerate(items):
                why = why_text(item, label == "Best next", self._shown_widths[2])
                todo.add_row(
                    Text(label if n == 0 else "", style=style),
                    Text(display_name(item.name)),
                    Text(why),
                    key=f"{label}:{item.id}",
                )
                self.todo_ids.append(item.id)
        self._show_balance(todo, r)

    def _show_balance(self, todo: DataTable, r: Review) -> None:
        """The balance of activity per stage, against a typical week of the last quarter (in brackets)."""
        for n, b in enumerate(r.balance):
            why = (
                f"+{b.added} ({b.typical[0]:g}) added, {b.advanced} ({b.typical[1]:g}) on, "
                f"{b.touched} ({b.typical[2]:g}) touched, {b.untouched} idle"
            )
            todo.add_row(
                Text("Balance" if n == 0 else "", style="cyan"),
                Text(b.stage),
                Text(why, no_wrap=True, overflow="ellipsis"),
                key=f"balance:{b.stage}",
            )
            self.todo_ids.append(None)

    # ------------------------------------------------------------ actions

    @on(DataTable.RowSelected, "#bridge")
    def _term_selected(self, event: DataTable.RowSelected) -> None:
        if self.review is None:
            return
        term = self.review.term(str(event.row_key.value))
        if term is None or not term.items:
            return
        self.app.push_screen(TermProspects(term), self._open_prospect)

    @on(DataTable.RowSelected, "#todo")
    def _todo_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.todo_ids) and self.todo_ids[event.cursor_row] is not None:
            self._open_prospect(self.todo_ids[event.cursor_row])

    def _open_prospect(self, prospect_id: int | None) -> None:
        if prospect_id is None:
            return
        from .prospect_page import ProspectPage

        self.app.push_screen(ProspectPage(prospect_id))

    def action_rep(self) -> None:
        """Choose whose changes the bridge counts: everyone's, or one rep's."""

        def done(choice: str | None) -> None:
            if choice is not None:
                self.who = choice or None
                self.load()

        options: list[tuple[str, str]] = [("Everyone", "")] + [(name, name) for name in self.reps]
        self.app.push_screen(ChoiceDialog("Review of", "Whose changes does the bridge count?", options), done)

    def action_since(self) -> None:
        def validate(text: str) -> None:
            parse_since(text.strip() or "7d")

        def done(text: str | None) -> None:
            if text is not None:
                self.since = text.strip() or "7d"
                self.load()

        self.app.push_screen(
            TextPrompt(
                "Review period", "Since: 7d, 2w, 30d or a date such as 1/11/2026", initial=self.since, validate=validate
            ),
            done,
        )
