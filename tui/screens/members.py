"""The members screen: who may use the database and their roles (models/members.py, models/roles.py).

Everyone may look; only an owner changes anything (`a` add, `r` role, `d` remove, `s` what reps
see), and models/roles.py refuses anyone else's change in its own words. Each change is saved by
the app's saver in a worker; the table always shows what the database holds (it is read again
after every change, saved or refused, and after one made in another session), so a refused change
leaves it as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from evpipe.models.members import MemberInfo
from evpipe.models.records import ChangeResult
from evpipe.models.roles import ROLES

from ..access import evpipe_app
from ..commands import BindingCommands
from ..dialogs import ChoiceDialog, ConfirmDialog, TextPrompt
from ..first_read import ReadyAfterFirstRead
from ..messages import ChangeFailed, ChangeSaved, MembersLoaded, RemoteChanges, from_worker, superseded
from ..saving import Change
from ..widgets import user_text
from ..widgets.footer import KeyFooter
from ..widgets.key_table import KeyTable

ROLE_HELP = {
    "owner": "owner: everything, the ladder, settings, members, imports, restores",
    "manager": "manager: changes every prospect",
    "rep": "rep: changes the prospects they own",
}


class MembersScreen(ReadyAfterFirstRead, Screen):
    """Members and their roles."""

    COMMANDS = {BindingCommands}
    DEFAULT_CSS = """
    MembersScreen #members-title { height: 1; padding: 0 1; background: $panel; }
    MembersScreen #members-note { height: auto; padding: 0 1; color: $text-muted; }
    MembersScreen #members-table { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="members.back"),
        Binding("a", "add", "Add", id="members.add"),
        Binding("r", "role", "Role", id="members.role"),
        Binding("d", "remove", "Remove", id="members.remove"),
        Binding("s", "reps_see", "Reps see", id="members.reps_see"),
    ]
    ACTION_HELP = {
        "add": "Add a member (owner only; the first member is you, as owner)",
        "role": "Change the role of the member under the cursor (owner only)",
        "remove": "Remove the member under the cursor (owner only)",
        "reps_see": "What reps see: everyone's prospects or only their own (owner only)",
    }

    def __init__(self) -> None:
        super().__init__()
        self.members: list[MemberInfo] = []
        self.you = ""
        self.first = ""  # who the first member must be: you, or your login (first_owner)
        self.reps_see = "all"

    def compose(self) -> ComposeResult:
        yield Static(Text("Members", style="bold"), id="members-title")
        yield Static("", id="members-note")
        yield KeyTable(id="members-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#members-table", DataTable)
        table.add_column("Member", key="name", width=20)
        table.add_column("Role", key="role", width=8)
        table.add_column("Added", key="added", width=11)
        table.add_column("By", key="by", width=20)
        table.focus()
        evpipe_app(self).remote_changed_signal.subscribe(self, self._changed_remotely)
        self.load()

    def _changed_remotely(self, message: RemoteChanges) -> None:
        """A member added, removed or given another role, or what reps see set, elsewhere (another
        owner's session, `evpipe members`): read again (tui/live_sync.py looks twice a second)."""
        if message.settings:
            self.load()

    @work(thread=True, exclusive=True, group="members-load", exit_on_error=False, description="the members")
    def load(self) -> None:
        from evpipe.models.members import first_owner, members, reps_see
        from evpipe.models.roles import login_name

        app = evpipe_app(self)
        engine, who = app.engine, app.store.who
        loaded = MembersLoaded(members(engine), who, reps_see(engine), first_owner(engine, who, login_name()))
        self.post_message(from_worker(loaded))

    @on(MembersLoaded)
    def _loaded(self, message: MembersLoaded) -> None:
        if superseded(message):  # (read before a newer read of this screen began: messages.superseded)
            return
        self.members, self.you, self.reps_see = message.members, message.you, message.reps_see
        self.first = message.first
        table = self.query_one("#members-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for m in self.members:
            table.add_row(
                user_text(m.name, style="bold" if m.name == self.you else ""),
                Text(m.role),
                Text(f"{m.added_at:%d %b %Y}", style="dim"),
                user_text(m.added_by, style="dim"),
                key=m.name,
            )
        if self.members:
            table.move_cursor(row=min(max(keep, 0), len(self.members) - 1), animate=False)
        role = next((m.role for m in self.members if m.name == self.you), None)
        if not self.members:
            note = (
                f"No members: everyone may do everything. You are {self.you}; a adds you as the owner, then the others."
            )
            if self.first != self.you:  # (EVPIPE_USER names someone else: the login counts once there are members)
                note += f" The first owner is your login, {self.first}."
        else:
            you = f"You are {self.you}, " + (f"{role}." if role else "not a member: you may change nothing.")
            sees = "everyone's prospects" if self.reps_see == "all" else "only their own prospects"
            note = f"{you} Reps see {sees} (s). a add, r role, d remove, esc back."
        self.query_one("#members-note", Static).update(Text(note))

    # ------------------------------------------------------------ writing

    def write(self, op: Callable[[], ChangeResult]) -> None:
        evpipe_app(self).saver.save(Change(op, self))

    def on_change_saved(self, message: ChangeSaved) -> None:
        self.notify(message.result.summary, markup=False, title="Saved")
        self.load()

    def on_change_failed(self, message: ChangeFailed) -> None:
        self.notify(message.error, title="Not changed", severity="error", markup=False)
        self.load()

    def _current(self) -> MemberInfo | None:
        row = self.query_one("#members-table", DataTable).cursor_row
        return self.members[row] if 0 <= row < len(self.members) else None

    def _choose_role(self, question: str, then: Callable[[str], None]) -> None:
        def done(role: str | None) -> None:
            if role is not None:
                then(role)

        self.app.push_screen(ChoiceDialog("Role", question, [(ROLE_HELP[r], r) for r in ROLES]), done)

    def action_add(self) -> None:
        app = evpipe_app(self)

        def named(name: str | None) -> None:
            if not name or not name.strip():
                return

            def add(role: str) -> None:
                def op() -> ChangeResult:
                    from evpipe.models.members import add_member
                    from evpipe.models.roles import login_name

                    m = add_member(app.engine, app.store.who, name, role, login=login_name())
                    return ChangeResult(0, f"{m.name} is now a member, as {m.role}", "setting")

                self.write(op)

            self._choose_role(f"{name.strip()}'s role:", add)

        initial = "" if self.members else (self.first or self.you)
        self.app.push_screen(
            TextPrompt("Add a member", "Their login name (as `whoami` prints it)", initial=initial), named
        )

    def action_role(self) -> None:
        member = self._current()
        if member is None:
            return
        app = evpipe_app(self)

        def change(role: str) -> None:
            def op() -> ChangeResult:
                from evpipe.models.members import set_role

                m = set_role(app.engine, app.store.who, member.name, role)
                return ChangeResult(0, f"{m.name} is now {m.role}", "setting")

            self.write(op)

        self._choose_role(f"{member.name} is {member.role} now; new role:", change)

    def action_remove(self) -> None:
        member = self._current()
        if member is None:
            return
        app = evpipe_app(self)

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return

            def op() -> ChangeResult:
                from evpipe.models.members import remove_member

                remove_member(app.engine, app.store.who, member.name)
                return ChangeResult(0, f"{member.name} is no longer a member", "setting")

            self.write(op)

        self.app.push_screen(ConfirmDialog(f"Remove {member.name} ({member.role}) from the members?"), confirmed)

    def action_reps_see(self) -> None:
        app = evpipe_app(self)

        def chosen(value: str | None) -> None:
            if value is None or value == self.reps_see:
                return

            def op() -> ChangeResult:
                from evpipe.models.members import set_reps_see

                set_reps_see(app.engine, app.store.who, value)
                return ChangeResult(
                    0, f"Reps now see {'everyone' if value == 'all' else 'only their own'}'s prospects", "setting"
                )

            self.write(op)

        self.app.push_screen(
            ChoiceDialog(
                "What reps see",
                "Which prospects does a rep see?",
                [("Everyone's prospects", "all"), ("Only their own", "own")],
            ),
            chosen,
        )
