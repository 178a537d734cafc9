"""The stages screen: the ladder, and every way to edit it.

Each rung shows its probability, kind, stale days, and the prospects on it with their value and
EV (summed in SQL). Rename, set the probability (the confirmation says how much EV the change
moves before anything is written), reorder the open rungs, add, remove (its prospects must move
to another open stage, which the screen asks for), set stale days, undo. A ladder whose open
probabilities do not rise is allowed, and its warnings stay on screen until it is fixed.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from evpipe.models import ladder
from evpipe.models.errors import DomainError
from evpipe.models.ladder_table import StageRow, stage_rows
from evpipe.models.store import ChangeResult, StageInfo, ladder_warnings
from evpipe.models.values import (
    WHOLE,
    MoneyStyle,
    clean_text,
    format_amount,
    format_percent,
    money_style,
    parse_probability,
    to_cents,
)

from ..access import evpipe_app
from ..commands import BindingCommands
from ..dialogs import ChoiceDialog, ConfirmDialog, TextPrompt
from ..first_read import ReadsWhenShown, ReadyAfterFirstRead
from ..messages import ChangeFailed, ChangeSaved, ProbabilityEffectReady, StagesLoaded
from ..saving import Change, undoing
from ..widgets import user_text
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable


def _ev(style: MoneyStyle, micros: int, *, signed: bool = False) -> str:
    return style(micros, micros=True, signed=signed)


#: The narrowest a Value or EV column gets: room for any amount in a compact form ('10,000M').
MONEY_MIN_WIDTH = 8


def money_widths(room: int, value_needs: tuple[int, int], ev_needs: tuple[int, int]) -> tuple[int, int]:
    """Widths of the Value and EV columns in `room` cells, from what each needs in full and in
    whole units: both in full when they fit, else in whole units (the Value column first), else
    half each, the one needing less giving its spare to the other (never under MONEY_MIN_WIDTH)."""
    (value_full, value_whole), (ev_full, ev_whole) = value_needs, ev_needs
    for value_w, ev_w in (
        (value_full, ev_full),
        (value_whole, ev_full),
        (value_full, ev_whole),
        (value_whole, ev_whole),
    ):
        if value_w + ev_w <= room:
            return value_w, room - value_w
    half = room // 2
    if value_whole <= half:
        value_w, ev_w = value_whole, room - value_whole
    elif ev_whole <= room - half:
        value_w, ev_w = room - ev_whole, ev_whole
    else:
        value_w, ev_w = half, room - half
    return max(MONEY_MIN_WIDTH, value_w), max(MONEY_MIN_WIDTH, ev_w)


def needs(cents: list[int], title: str) -> tuple[int, int]:
    """The cells a column of these amounts needs in full (cents when one has them) and in whole units."""
    full = money_style(cents)
    return (
        max([len(title)] + [len(full(c)) for c in cents]),
        max([len(title)] + [len(WHOLE(c)) for c in cents]),
    )


def check_stale_days(text: str) -> int:
    raw = text.strip().lower().removesuffix("days").removesuffix("d").strip()
    if not raw.isdigit() or not 0 <= int(raw) <= 3650:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise DomainError(
            f"stale days: {shown!r} is not a number of days; type a whole number from 0 (never stale) to 3650",
            field="stale_days",
        )
    return int(raw)


class StagesScreen(ReadsWhenShown, ReadyAfterFirstRead, Screen):
    """Edit the ladder of stages."""

    CSS_PATH = "stages.tcss"
    COMMANDS = {BindingCommands}

    BINDINGS = [
        Binding("r", "rename", "Rename", id="stages.rename"),
        Binding("p", "probability", "Prob", id="stages.probability"),
        Binding("shift+up,K", "reorder(-1)", "Up", id="stages.move_up", key_display="K"),
        Binding("shift+down,J", "reorder(1)", "Down", id="stages.move_down", key_display="J"),
        Binding("a", "add", "Add", id="stages.add"),
        Binding("d,delete", "remove", "Remove", id="stages.remove"),
        Binding("s", "stale_days", "Stale", id="stages.stale_days"),
        Binding("u", "undo", "Undo", id="stages.undo"),
        Binding("U", "undo_skip", "Skip undo", id="stages.undo_skip", show=False),
        Binding("P", "kpi_period", "KPI period", id="stages.kpi_period", show=False),
    ]

    #: Longer names for the command palette (the footer keeps the short ones).
    ACTION_HELP: dict[str, str] = {
        "rename": "Rename the stage",
        "probability": "Set the stage's probability (shows the EV it moves first)",
        "reorder(-1)": "Move the stage up the list (an earlier rung)",
        "reorder(1)": "Move the stage down the list (a later rung)",
        "add": "Add a stage after this one",
        "remove": "Remove the stage (its prospects move to a stage you choose)",
        "stale_days": "Stale days: how long a prospect here may sit untouched",
        "undo": "Undo your last change",
        "undo_skip": "Skip a refused undo; undo the rest",
        "kpi_period": "KPI period: which won and lost prospects the KPIs count (12m, 2026-01, all)",
    }
    PALETTE_GROUP = "stages"

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[StageRow] = []
        self.warnings: list[str] = []
        self._focus_stage: int | str | None = None  # a stage id, or the name of a stage just added
        self._generation = 0
        #: Why this user may not change the ladder or the settings (a rep), by action: said at the
        #: key, before any question (a rep answered two, then was told "only an owner can ...").
        self._refused: dict[str, str] = {}

    def _refuse(self, action: str) -> bool:
        """Say why this user may not take `action` ("ladder", "settings"); True when refused."""
        why = self._refused.get(action)
        if why is not None:
            self.notify(why[:1].upper() + why[1:] + ".", severity="warning", markup=False)
        return why is not None

    def compose(self) -> ComposeResult:
        yield Static(
            Text("Stages", style="bold")
            + Text("  each rung's chance that a prospect reaching it becomes cash", style="dim"),
            id="stages-title",
        )
        yield KeyTable(id="ladder", cursor_type="row", zebra_stripes=True)
        yield Static("", id="ladder-warnings")
        yield Static(
            Text(
                "r rename  p probability  K/J or shift+up/down reorder  a add  d remove  s stale days  u undo",
                style="dim",
            ),
            id="stages-keys",
        )
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#ladder", DataTable).focus()
        if getattr(evpipe_app(self), "read_only", False):  # (its keys are refused: not offered either)
            self.query_one("#stages-keys", Static).update(
                Text("read-only: the ladder as it stands; it is changed in evpipe itself", style="dim")
            )
        self.load()
        # other sessions' changes (tui/live_sync.py): the counts and sums move, the ladder may too
        signal = getattr(evpipe_app(self), "remote_changed_signal", None)  # (absent in a bare test host)
        if signal is not None:
            signal.subscribe(self, self._changed_remotely)

    def _changed_remotely(self, _message) -> None:
        self.read_stale()
        if self.is_current:
            self.load()

    #: The longest stage name shown in full; longer ones are cut in the table (not in the dialogs).
    NAME_WIDTH_MAX = 40

    LABELS = ["#", "Stage", "Kind", "Prob", "Stale", "Prospects", "Value", "EV"]
    KEYS = ["rung", "name", "kind", "prob", "stale", "count", "value", "ev"]

    #: The narrowest the Stage column gets for the Value and EV columns' sake.
    NAME_WIDTH_MIN = 12

    def _widths(self, cells: list[list[Text]]) -> list[int]:
        """The width of each column of `cells` (as many columns as its rows have): its content's,
        the Stage column's at most NAME_WIDTH_MAX and no wider than leaves the Value and EV columns
        their narrowest (a long stage name pushed them off an 80-column screen)."""
        count = len(cells[0]) if cells else 0
        widths = []
        for i, label in enumerate(self.LABELS[:count]):
            widths.append(max([cell_len(label)] + [row[i].cell_len for row in cells]))
        if "name" in self.KEYS[:count]:
            at = self.KEYS.index("name")
            money = 2 * (MONEY_MIN_WIDTH + 2) if count < len(self.KEYS) else 0  # (not yet among `cells`)
            others = sum(w + 2 for i, w in enumerate(widths) if i != at) + money
            room = (self.size.width or 80) - 2 - 2 * 2 - others - 2
            widths[at] = min(widths[at], self.NAME_WIDTH_MAX, max(self.NAME_WIDTH_MIN, room))
        return widths

    def _add_columns(self, table: DataTable, cells: list[list[Text]]) -> None:
        """Columns sized to their content up front. (A DataTable measuring rows itself can paint
        them at the header's width when two loads land close together.)"""
        widths = self._widths(cells) if cells else [cell_len(label) for label in self.LABELS]
        for i, (label, key, width) in enumerate(zip(self.LABELS, self.KEYS, widths)):
            heading = Text(label, justify="left" if i < 3 else "right")
            table.add_column(heading, key=key, width=width)

    def read_when_shown(self) -> None:
        self.load()

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Reload the ladder. Only the newest load is shown: an older one still running when a
        write lands could otherwise paint the ladder as it was before the write."""
        self.read_begun()
        self._generation += 1
        self._load(self._generation)

    @work(thread=True, group="stages-load", exit_on_error=False, description="load the ladder")
    def _load(self, generation: int) -> None:
        app = evpipe_app(self)
        store = app.store
        rungs = store.ladder()
        rows = stage_rows(app.engine, rungs, owner=app.decide_scope())
        self.post_message(
            StagesLoaded(rows, ladder_warnings(rungs), generation, store.refusals(("ladder", "settings")))
        )

    @on(StagesLoaded)
    def _loaded(self, message: StagesLoaded) -> None:
        if message.generation != self._generation:
            return
        table = self.query_one("#ladder", DataTable)
        keep = self._focus_stage
        if keep is None and self.rows and 0 <= table.cursor_row < len(self.rows):
            keep = self.rows[table.cursor_row].stage.id
        self._focus_stage = None
        self.rows = message.rows
        self.warnings = message.warnings
        self._refused = message.refused or {}
        # Columns are rebuilt with the rows: a DataTable keeps a header painted at the old widths
        # when only the rows are replaced and a column grows.
        cells = []
        for i, row in enumerate(self.rows, start=1):
            s = row.stage
            kind_style = {"won": "green", "lost": "red"}.get(s.kind, "")
            cells.append(
                [
                    Text(str(i), style="dim"),
                    user_text(s.name, no_wrap=True, overflow="ellipsis"),
                    Text(s.kind, style=kind_style),
                    Text(s.percent, justify="right"),
                    Text(f"{s.stale_days}d" if s.stale_days else "never", justify="right"),
                    Text(f"{row.count:,}", justify="right"),
                ]
            )
        # The Value and EV columns share what the other columns leave of the screen; a column
        # whose amounts do not fit its share takes a unit (models.values), the same for all.
        others = sum(w + 2 for w in self._widths(cells))  # each cell has one space either side
        room = (self.size.width or 80) - 2 - others - 2 * 2
        value_w, ev_w = money_widths(
            room,
            needs([r.value_cents for r in self.rows], "Value"),
            needs([to_cents(r.ev_micros, micros=True) for r in self.rows], "EV"),
        )
        value = money_style((r.value_cents for r in self.rows), width=value_w)
        ev = money_style((r.ev_micros for r in self.rows), micros=True, width=ev_w)
        for row, row_cells in zip(self.rows, cells):
            row_cells.append(Text(value(row.value_cents), justify="right"))
            row_cells.append(Text(_ev(ev, row.ev_micros), justify="right"))
        table.clear(columns=True)
        self._add_columns(table, cells)
        for row, row_cells in zip(self.rows, cells):
            table.add_row(*row_cells, key=str(row.stage.id))
        if keep is not None:
            for i, row in enumerate(self.rows):
                if row.stage.id == keep or (isinstance(keep, str) and row.stage.name.casefold() == keep.casefold()):
                    table.move_cursor(row=i, animate=False)
                    break
        self._show_warnings()

    def _show_warnings(self) -> None:
        box = self.query_one("#ladder-warnings", Static)
        if self.warnings:
            text = Text()
            for i, warning in enumerate(self.warnings):
                if i:
                    text.append("\n")
                text.append("! ", style="bold yellow")
                text.append(warning)
            box.update(text)
            box.add_class("-warn")
        else:
            box.update(Text("The ladder rises: each open stage is likelier than the one before.", style="dim"))
            box.remove_class("-warn")

    # ------------------------------------------------------------ writing

    def write(
        self, op: Callable[[], ChangeResult], focus_stage: int | str | None = None, notice: str | None = None
    ) -> None:
        """Save a ladder change through the app's saver (in order, in a worker)."""
        evpipe_app(self).saver.save(Change(op, self, context=(focus_stage, notice)))

    def on_change_saved(self, message: ChangeSaved) -> None:
        result = message.result
        self._focus_stage, notice = message.context
        self.notify(notice or result.summary, markup=False, title="Saved")
        for warning in result.warnings:
            self.notify(warning, markup=False, severity="warning", title="Ladder warning")
        self.load()
        # the app tells every screen once this has run (the message bubbles up to it)

    def on_change_failed(self, message: ChangeFailed) -> None:
        self.notify(message.error, title="Not changed", severity="error", markup=False)
        self.load()

    # ------------------------------------------------------------ helpers

    @property
    def store(self):
        return evpipe_app(self).store

    def current(self) -> StageRow | None:
        table = self.query_one("#ladder", DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            self.notify("No stage is selected.", markup=False, severity="warning")
            return None
        return self.rows[table.cursor_row]

    # ------------------------------------------------------------ actions

    def action_rename(self) -> None:
        if self._refuse("ladder"):
            return
        row = self.current()
        if row is None:
            return
        sid = row.stage.id

        def got(text: str | None) -> None:
            if text is not None and text.strip() != row.stage.name:
                self.write(lambda: self.store.update_stage(sid, name=text), sid)

        self.app.push_screen(
            TextPrompt(
                f"Rename {row.stage.name}",
                "New name",
                initial=row.stage.name,
                validate=lambda t: self._check_name(t, except_id=sid),
            ),
            got,
        )

    def _check_name(self, text: str, *, except_id: int | None = None) -> str:
        name = clean_text(text, field="stage name", max_len=80, required=True)
        for row in self.rows:
            if row.stage.id != except_id and row.stage.name.casefold() == name.casefold():
                raise DomainError(f"stage name: {name!r} is on the ladder already", field="name")
        return name

    def action_probability(self) -> None:
        if self._refuse("ladder"):
            return
        row = self.current()
        if row is None:
            return
        if row.stage.kind == "lost":
            self.notify(
                f"{row.stage.name} is the lost stage; its probability is always 0%.", markup=False, severity="warning"
            )
            return

        def check(text: str) -> int:
            bp = parse_probability(text)
            if bp == row.stage.probability_bp:
                raise DomainError(f"probability: {row.stage.name} is already {format_percent(bp)}", field="probability")
            return bp

        def got(text: str | None) -> None:
            if text is not None:
                self.effect(row, text)

        self.app.push_screen(
            TextPrompt(
                f"Probability of {row.stage.name}",
                f"Percent (now {row.stage.percent}); the chance a prospect here becomes cash",
                initial=row.stage.percent.rstrip("%"),
                validate=check,
            ),
            got,
        )

    @work(thread=True, group="stages-effect", exit_on_error=False, description="what a probability change moves")
    def effect(self, row: StageRow, text: str) -> None:
        try:
            count, ev_micros = self.store.probability_effect(row.stage.id, text)
        except DomainError as exc:
            self.post_message(ChangeFailed(str(exc), cause=exc))
            return
        self.post_message(ProbabilityEffectReady(row, text, parse_probability(text), count, ev_micros))

    @on(ProbabilityEffectReady)
    def _effect_ready(self, message: ProbabilityEffectReady) -> None:
        row, stage = message.row, message.row.stage
        sid = stage.id
        plural = "prospect" if message.count == 1 else "prospects"
        money = money_style((row.value_cents, to_cents(message.ev_micros, micros=True)))  # one sentence
        question = (
            f"Set {stage.name} from {stage.percent} to {format_percent(message.bp)}?\n"
            f"{message.count:,} {plural} on it, worth {money(row.value_cents)}: "
            f"EV {_ev(money, message.ev_micros, signed=True)}."
        )
        if message.count == 0:
            question = (
                f"Set {stage.name} from {stage.percent} to {format_percent(message.bp)}?\n"
                "No prospects are on it now: EV does not move today."
            )
        text, seen = message.text, stage.probability_bp

        def got(yes: bool | None) -> None:
            if yes:  # against the probability the question was asked from: a colleague's is not overwritten
                self.write(lambda: self.store.set_probability(sid, text, expected_bp=seen), sid)

        self.app.push_screen(ConfirmDialog(question, title="Change a probability"), got)

    def action_reorder(self, offset: int) -> None:
        if self._refuse("ladder"):
            return
        row = self.current()
        if row is None:
            return
        if row.stage.kind != "open":
            self.notify(
                f"{row.stage.name}: won and lost stay at the top of the ladder; only open stages move.",
                markup=False,
                severity="warning",
            )
            return
        sid = row.stage.id
        # On screen the first rung is at the top: moving a row up (-1) makes it an earlier rung.
        opens = [r.stage for r in self.rows if r.stage.kind == "open"]
        i = next(i for i, s in enumerate(opens) if s.id == sid)
        j = i + offset
        if not 0 <= j < len(opens):
            edge = "first" if offset < 0 else "last open"
            self.notify(f"{row.stage.name} is the {edge} stage already.", markup=False)
            return
        notice = f"{row.stage.name} now comes {'before' if offset < 0 else 'after'} {opens[j].name}"
        self.write(lambda: self.store.reorder_stage(sid, offset), sid, notice)

    def action_add(self) -> None:
        if self._refuse("ladder"):
            return
        row = self.current()
        opens = [r.stage for r in self.rows if r.stage.kind == "open"]
        after = row.stage if row is not None and row.stage.kind == "open" else (opens[-1] if opens else None)
        where = f"after {after.name}" if after else "as the first rung"

        def got_name(name: str | None) -> None:
            if name is None:
                return

            def got_percent(percent: str | None) -> None:
                if percent is not None:
                    self.write(
                        lambda: self.store.add_stage(name, percent, after=after.id if after else None),
                        self._check_name(name),
                    )

            self.app.push_screen(
                TextPrompt(f"New stage {name}", "Probability in percent, e.g. 40", validate=parse_probability),
                got_percent,
            )

        self.app.push_screen(
            TextPrompt("Add a stage", f"Name of the new stage (it goes {where})", validate=self._check_name),
            got_name,
        )

    def action_remove(self) -> None:
        if self._refuse("ladder"):
            return
        row = self.current()
        if row is None:
            return
        stage = row.stage
        if stage.kind != "open":
            self.notify(f"{stage.name}: the won and lost stages cannot be removed.", markup=False, severity="warning")
            return
        others = [r.stage for r in self.rows if r.stage.kind == "open" and r.stage.id != stage.id]
        if not others:
            self.notify(
                f"{stage.name} is the only open stage; add another before removing it.",
                markup=False,
                severity="warning",
            )
            return
        sid = stage.id
        if row.count == 0:

            def yes(answer: bool | None) -> None:
                if answer:
                    self.write(lambda: self.store.remove_stage(sid), None)

            self.app.push_screen(
                ConfirmDialog(
                    f"Remove {stage.name} from the ladder? No prospects are on it. Its history stays; u undoes.",
                    title="Remove a stage",
                ),
                yes,
            )
            return

        plural = "prospect is" if row.count == 1 else "prospects are"

        def picked(target: StageInfo | None) -> None:
            if target is None:
                return
            d_ev = ladder.ev_micros(row.value_cents, target.kind, target.probability_bp) - ladder.ev_micros(
                row.value_cents, stage.kind, stage.probability_bp
            )
            tid = target.id

            def confirmed(answer: bool | None) -> None:
                if answer:
                    self.write(lambda: self.store.remove_stage(sid, move_to=tid), tid)

            self.app.push_screen(
                ConfirmDialog(
                    f"Remove {stage.name} and move its {row.count:,} prospects to {target.name} "
                    f"({target.percent})? EV {format_amount(d_ev, micros=True, signed=True)}. u undoes.",
                    title="Remove a stage",
                ),
                confirmed,
            )

        self.app.push_screen(
            ChoiceDialog(
                f"Remove {stage.name}",
                f"{row.count:,} {plural} on {stage.name}. A stage with prospects cannot just vanish: "
                "which open stage do they move to?",
                [(f"{s.name} ({s.percent})", s) for s in others],
            ),
            picked,
        )

    def action_stale_days(self) -> None:
        if self._refuse("ladder"):
            return
        row = self.current()
        if row is None:
            return
        sid = row.stage.id

        def got(text: str | None) -> None:
            if text is not None:
                days = check_stale_days(text)
                if days != row.stage.stale_days:
                    self.write(lambda: self.store.update_stage(sid, stale_days=days), sid)

        self.app.push_screen(
            TextPrompt(
                f"Stale days for {row.stage.name}",
                "A prospect here with no activity and no move for longer than this is stale (0: never)",
                initial=str(row.stage.stale_days),
                validate=check_stale_days,
            ),
            got,
        )

    def action_kpi_period(self) -> None:
        if self._refuse("settings"):
            return
        self._read_kpi_period()

    @work(thread=True, group="stages-period", exit_on_error=False, description="read the KPI period")
    def _read_kpi_period(self) -> None:
        from evpipe.models.settings import kpi_period

        period = kpi_period(evpipe_app(self).engine)
        self.app.call_from_thread(self._ask_kpi_period, period.setting, period.label)

    def _ask_kpi_period(self, setting: str, label: str) -> None:
        """Ask for the KPI period (models/period.py), showing the one in force."""
        from evpipe.models.period import parse_setting

        def got(text: str | None) -> None:
            if text is None or parse_setting(text) == setting:
                return
            app = evpipe_app(self)  # the engine is used in the saver's worker, never here

            def op() -> ChangeResult:
                from evpipe.models.settings import set_kpi_period

                period = set_kpi_period(app.engine, text, who=app.store.who)
                return ChangeResult(0, f"KPI period: {period.label} ({period.setting})", "setting")

            self.write(op)

        self.app.push_screen(
            TextPrompt(
                "KPI period",
                f"Now {label} ({setting}). 12m: the last 12 months, rolling; 2026-01: from then on; all",
                initial=setting,
                validate=parse_setting,
            ),
            got,
        )

    def action_undo(self) -> None:
        self.write(undoing(lambda: self.store.undo()), None)

    def action_undo_skip(self) -> None:
        self.write(undoing(lambda: self.store.undo(skip=True), last=False), None)


__all__ = ["StagesScreen", "check_stale_days"]
