"""The evpipe app: top-level screens as modes (number keys, tab bar), the database, the keymap,
and what happens after any change (the pipeline updates, a KPI snapshot is recorded)."""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.filter import Monochrome
from textual.notifications import Notify
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Select, TextArea
from textual.widgets._select import SelectOverlay

from evpipe.models.errors import DomainError
from evpipe.models.locations import DatabaseProblem, creates_silently, db_label
from evpipe.models.rawdb import SqliteReader, sqlite_file
from evpipe.models.records import ChangeResult, current_user

from . import first_screen_ahead, paint, toast_rack
from .escape_burst import read_escape_apart
from .keymap import load_keymap
from .live_sync import POLL_EVERY, LiveSync
from .messages import ChangeFailed, ChangeSaved, DataChanged, NoticesAnswered, RemoteChanges
from .readable_greys import ReadableMonochrome
from .saving import Saver
from .screens.registry import ScreenSpec, available
from .widgets.tab_bar import TabBar

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from evpipe.models.store import Store

    from .access import EvpipeParts

#: The whole-file check waits at most this long (seconds) for the pipeline's first screen.
FIRST_SCREEN_WAIT = 3.0

#: Record a KPI snapshot at most this often (seconds) while changes come in.
SNAPSHOT_EVERY = 2.0

#: How long a saved change's notice shows (seconds).
SAVED_NOTICE = 4


#: The longest a key waits for the screen it is for to be put together (App._settle_messages).
SETTLE_LIMIT = 0.5
#: How many times a key waits for the screen shown to settle when that opens another (App._settle_shown).
SETTLE_ROUNDS = 8
#: The longest keys typed ahead wait for a screen to be ready for them (App._hold_key).
KEY_HOLD_LIMIT = 2.0


#: The cycle collector's thresholds while the app runs: Python's defaults for its young passes;
#: its full passes are the app's own (`EvpipeApp._full_pass_when_quiet`), never Python's.
GC_THRESHOLDS = (700, 10, 1_000_000_000)
#: A full pass is due after this many passes of the middle generation (Python's own threshold),
#: and made once no key nor click has come for QUIET_FOR seconds (looked at every QUIET_FOR / 2),
#: or at once when it has waited for OVERDUE of them (a minute or more of keys without a break).
FULL_PASS_DUE = 10
QUIET_FOR = 1.0
OVERDUE = 200


class EvpipeApp(App):
    """Your sales pipeline as Expected Value."""

    TITLE = "evpipe"
    CSS_PATH = "app.tcss"
    DEFAULT_MODE = "pipeline"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit_or_back", "Quit", id="app.quit"),  # the footer says "Back" on a pushed page
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("i", "import", "Import", id="app.import", show=False),
        Binding("R", "retry_save", "Retry save", id="app.retry_save", show=False),
        *[Binding(str(n), f"key_screen('{n}')", f"Screen {n}", show=False, id=f"app.screen_{n}") for n in range(1, 10)],
    ]

    def __init__(
        self,
        url: str,
        *,
        who: str | None = None,
        live_every: float | None = POLL_EVERY,
        screen: str | None = None,
        read_only: bool = False,
        in_browser: bool = False,
    ) -> None:
        paint.install()  # (partial frames ask only the widgets they repaint)
        toast_rack.install()  # (a notice dropped takes its holder: notices keep showing)
        #: Read-only (`evpipe serve` without --allow-writes): write keys hidden and refused, and the
        #: whole process refuses writes (models/readonly.py), before anything opens the database.
        self.read_only = read_only
        #: A browser's session of `evpipe serve`: its user may not be the server's account, so the
        #: app opens no file of the server's for them (the import's file and lookup).
        self.in_browser = in_browser
        if read_only:
            from evpipe.models.readonly import set_read_only

            set_read_only(True)
        if screen is not None:  # the screen to open on (a mode name: `evpipe serve` opens on review)
            self.DEFAULT_MODE = screen
        # Python's own collector thresholds for the hours the app runs (the command line starts
        # with fewer passes, tui/cli/main.py `run`): its pauses are measured with these
        gc.set_threshold(*GC_THRESHOLDS)
        super().__init__()
        if self.no_color:  # coloured words stay readable in NO_COLOR's greys (tui/readable_greys.py)
            self._filters = [ReadableMonochrome() if type(f) is Monochrome else f for f in self._filters]
        self.url = url
        #: The open database as the tab bar names it (the file's name).
        self.database_label = db_label(url)
        self._database_problem: str | None = None
        #: What the notices saying it said, taken off the screen when the database answers again.
        self._problem_notices: list[str] = []
        self._problem_lock = threading.Lock()  # (said from workers, answered on the app's thread)
        #: Who the app acts as: until the store has asked the database (models/roles.py: the login
        #: name, or EVPIPE_USER where it is honoured), the name the environment gives.
        self.who = who or current_user()
        self._who_from_login = who is None  # on a server database, the connection's role replaces it
        self._who_given = who
        self._engine: Engine | None = None
        self._store: Store | None = None
        self._engine_lock = threading.Lock()
        #: The one owner whose prospects this session shows (a rep whom the owner lets see only
        #: their own: `evpipe members reps-see own`, models/visibility.py), or None: everyone's.
        #: Decided once, by the first worker that reads prospects (`decide_scope`), before it
        #: reads them; screens read it once their worker has.
        self.scope_owner: str | None = None
        self._scope_known = False
        self._scope_lock = threading.Lock()
        path = sqlite_file(url)
        opening = first_screen_ahead.opening(url)
        #: What is wrong with the file at the database's path (the file-level checks the command
        #: line makes, standard library only and a few bytes read), found before anything opens it:
        #: opening first could make a bad folder look usable (SQLite creates its files beside the
        #: database). Said on screen once the app runs; nothing then opens the file.
        self._file_problem: str | None = opening.problem
        #: What read-only queries use. An SQLite file already at the newest schema is read with the
        #: standard library, so the first screen never waits for SQLAlchemy to import; the engine
        #: (writes, and everything else) opens on first use, which the pipeline makes happen in a
        #: worker right after its first screen is painted.
        self.reader: Any = SqliteReader(path, read_only=read_only) if path is not None and opening.readable else None
        self.pipeline = None
        #: Published with the ChangeResult (or None: reload everything) after any change; screens
        #: that show data can subscribe to refresh themselves.
        self.data_changed_signal: Signal[ChangeResult | None] = Signal(self, "data-changed")
        #: Every change made on a screen is saved through this, one at a time, in order.
        self.saver = Saver(self)
        self._quit_waiting = False  # q pressed while a change was being saved (`action_quit`)
        self._quit_asked = False  # ctrl+q asked whether to lose a form's unsaved edit (`action_quit`)
        #: Changes other sessions made, looked for every half second (tui/live_sync.py), and
        #: published here once the pipeline has applied them.
        self.live = LiveSync(self, live_every)
        self._live_wait: Timer | None = None  # (until the first screen is painted: on_mount)
        self._live_started = False
        self.remote_changed_signal: Signal[RemoteChanges] = Signal(self, "remote-changed")
        self._last_snapshot = 0.0
        self._last_input = 0.0  # when the last key or click came (`_full_pass_when_quiet`)
        self._freeze_after_pass = False  # (`freeze_after_full_pass`)
        self._snapshot_timer: Timer | None = None
        self._keymap_error: str | None = None
        #: The screen each key handed on to a widget was typed on (see `_on_key`).
        self._typed_on: weakref.WeakKeyDictionary[events.Key, Screen] = weakref.WeakKeyDictionary()
        #: Keys typed for a screen not ready for them yet (see `_hold_key`), in the order typed.
        self._held_keys: list[events.Key] = []
        #: The widget the next keys wait for the focus to reach, and until when (`_want_focus`)
        self._focus_wanted: tuple[Widget, float] | None = None
        self._hold_timer: Timer | None = None
        #: The key replayed last was held again (`_hold_for_callbacks`).
        self._held_again = False
        self._replaying = False
        self.keymap: dict[str, str] = {}
        try:
            self.keymap = load_keymap()
        except DomainError as exc:
            self._keymap_error = str(exc)
        if self.keymap:
            self.set_keymap(self.keymap)
        #: The top-level screens there are (fixed for this run).
        self.screen_specs: list[ScreenSpec] = available()
        for spec in self.screen_specs:
            self.add_mode(spec.name, self._factory(spec))

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, opened (creating or upgrading the database) on first use."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    from evpipe.models import collector, open_db

                    # SQLAlchemy, SQLModel and the store imported (some 35,000 objects) with the
                    # collector off, and frozen before it is on again: a full pass set off among
                    # them walked the whole process (29 ms of the UI thread's time as the rows
                    # loaded), and a first pass over the young ones piled up meanwhile 24 ms
                    with collector.paused():
                        try:  # the app never creates a database it was not asked to (the CLI asks first)
                            if self._file_problem is not None:
                                raise DatabaseProblem(self._file_problem)
                            engine = open_db(
                                self.url, create=creates_silently(self.url), seed_ladder=not self.read_only
                            )
                        except DomainError as exc:
                            self.say_database_problem(str(exc))
                            raise
                        self._watch_for_damage(engine)
                        if self._who_from_login and engine.dialect.name != "sqlite":
                            from evpipe.models.identity import current_user as role

                            self.who = role(engine)  # who the server says we are (models/identity.py)
                        self._engine = engine
                        # the write path now loaded stays for the session: left out of the
                        # collector's full passes, which walked it each time (12 ms, landing among
                        # key presses; pipeline.py's next reload lets go of what this kept)
                        gc.freeze()
        return self._engine

    def say_database_problem(self, message: str, opening: bool = True) -> None:
        """The database cannot be opened, or is damaged (a worker found out): say so once, in
        words (notify is thread-safe)."""
        if " is damaged (" in message:  # (every damage line: models/errors.py, models/locations.py)
            self.saver.refuse_all(message)  # writing on into it could spread the damage, and hide it
        if self._database_problem == message:
            return
        self._database_problem = message
        said = f"The database cannot be opened: {message}" if opening else f"The database has a problem: {message}"
        with self._problem_lock:
            self._problem_notices.append(said)
        self.notify(said, severity="error", markup=False, timeout=120)

    def database_answers(self) -> None:
        """A read succeeded after the database had a problem (the server back after an outage):
        said, the notices of the problem taken off the screen (they stayed up to two minutes,
        saying a problem that was over), and a problem met again later is said again (it was
        said once per text, ever)."""
        if self._database_problem is None:
            return
        self._database_problem = None
        with self._problem_lock:
            notices, self._problem_notices = self._problem_notices, []
        self.post_message(NoticesAnswered(notices))
        self.notify("The database answers again.", markup=False, timeout=8)

    def _on_notify(self, event: Notify) -> None:
        """A notice put on screen (Textual's handler of `notify`'s message, on the UI thread, in
        the order given); one already there with the same words, title and severity is taken off
        first, so that it is said again (its time on screen starts over) without a second copy.
        Each key of a burst that met the same refusal ("No prospect here", once `>` held down had
        won the row) stacked a copy of it over the screen."""
        new = event.notification
        same = [
            n
            for n in self._notifications
            if n.message == new.message and n.title == new.title and n.severity == new.severity
        ]
        for notice in same:
            self._unnotify(notice, refresh=False)
        super()._on_notify(event)

    def on_notices_answered(self, message: NoticesAnswered) -> None:
        gone = [n for n in self._notifications if n.message in message.notices]
        for notice in gone:
            self._unnotify(notice, refresh=False)
        if gone:
            self._refresh_notifications()

    def _watch_for_damage(self, engine: Engine) -> None:
        """A damaged page met by any query of the engine is said on screen, with the next step
        (a failed save says its own reason as well)."""
        from sqlalchemy import event

        from evpipe.models.errors import database_failure

        name = sqlite_file(self.url) or self.database_label

        def damaged(context) -> None:
            line = database_failure(context.original_exception, name)
            if line is not None and line.startswith(f"{name} is damaged"):
                self.say_database_problem(line, opening=False)

        event.listen(engine, "handle_error", damaged)

    @work(thread=True, group="check", exit_on_error=False, description="check the database")
    def _check_database(self) -> None:
        """At start: what the file-level checks found as the app was made (said on screen), then,
        in the background, every page of the file, so that a damaged file is said on screen
        rather than shown as an empty pipeline. The pages are read once the pipeline's first
        screen is there (or after `FIRST_SCREEN_WAIT` seconds): reading a big file whole beside
        the first screen's queries held that screen back (a second at a million prospects)."""
        from evpipe.models.locations import damaged_pages

        if self._file_problem is not None:
            self.say_database_problem(self._file_problem)
            return
        waited_until = time.monotonic() + FIRST_SCREEN_WAIT
        while time.monotonic() < waited_until and not (self.pipeline is not None and self.pipeline.loaded):
            if not self.is_running:
                return
            time.sleep(0.05)
        problem = damaged_pages(self.url)
        if problem is not None:
            self.say_database_problem(problem, opening=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            from evpipe.models.store import Store

            engine = self.engine
            with self._engine_lock:
                if self._store is None:
                    self._store = Store(engine, who=self._who_given)
                    self._store.own_events = self.saver.written  # (one session: its saves' ids)
                    self.who = self._store.who
                    if self._store.note:
                        self.notify(self._store.note, severity="warning", markup=False, timeout=10)
        return self._store

    def decide_scope(self) -> str | None:
        """The owner this session's screens are limited to (`scope_owner`), decided on the first
        call. Workers only: it may read the database. One plain query says whether the owner
        limits reps at all; only then is the store opened (who the user is, and their role)."""
        if not self._scope_known:
            with self._scope_lock:
                if not self._scope_known:
                    from evpipe.models.visibility import reps_see_setting

                    owner = None
                    if reps_see_setting(self.reader) == "own":
                        from evpipe.models.members import visible_owner

                        owner = visible_owner(self.engine, self.store.who)
                    self.scope_owner = owner
                    self._scope_known = True
        return self.scope_owner

    def scope_decided(self, owner: str | None) -> None:
        """The session's scope decided elsewhere (the first screen read ahead, where reps see
        every prospect: tui/first_screen_ahead.py), unless a worker decided it already."""
        with self._scope_lock:
            if not self._scope_known:
                self.scope_owner = owner
                self._scope_known = True

    @property
    def reader(self) -> Any:
        return self._reader if self._reader is not None else self.engine

    @reader.setter
    def reader(self, value: Any) -> None:
        self._reader = value

    def _factory(self, spec: ScreenSpec):
        def make() -> Screen:
            screen = spec.create()
            if spec.name == "pipeline":
                self.pipeline = screen
            return screen

        return make

    def on_mount(self) -> None:
        self._check_database()
        self.set_interval(QUIET_FOR / 2, self._full_pass_when_quiet, name="collector's full pass")
        self.screen_change_signal.subscribe(self, self._add_tab_bar)
        if self.read_only:
            from .read_only import hide_write_keys

            self.screen_change_signal.subscribe(self, hide_write_keys)
            hide_write_keys(self.screen)
        if self.DEFAULT_MODE != type(self).DEFAULT_MODE:  # opened on another screen: shown before the signal
            self.call_after_refresh(self._add_tab_bar, self.screen)
        if self._keymap_error:
            self.notify(self._keymap_error, severity="error", markup=False, timeout=10)
        # the looks for other sessions' changes start once the first screen is painted
        # (`first_screen_read`), or after FIRST_SCREEN_WAIT seconds whatever that screen says
        if not self._live_started:
            self._live_wait = self.set_timer(FIRST_SCREEN_WAIT, self._start_live, name="first look for changes")

    def _full_pass_when_quiet(self) -> None:
        """The cycle collector's full pass, made here between bursts of keys. It walks every
        object not frozen (the rows are: `pipeline._freeze_loaded_rows`), most of them the lines
        the screens keep painted, each a Strip with seven caches: 18,000 objects at 100,000
        prospects after a filter's keystrokes, 10-19 ms of the UI thread. Python's own passes
        (GC_THRESHOLDS) fell among key presses and were the longest pause there. Not while a step
        has the collector off (models/collector.py: a load, the write path's first import). One
        asked for by `freeze_after_full_pass` is due at once, and freezes what it leaves."""
        due = gc.get_count()[2]  # (passes of the middle generation since the last full one)
        if (due < FULL_PASS_DUE and not self._freeze_after_pass) or not gc.isenabled():
            return
        if time.monotonic() - self._last_input < QUIET_FOR and due < OVERDUE:
            return
        gc.collect()
        if self._freeze_after_pass:
            self._freeze_after_pass = False
            gc.freeze()

    def freeze_after_full_pass(self) -> None:
        """What the process holds was let go of the collector's freeze (gc.unfreeze, a reload of
        the pipeline's rows): the next full pass, made once no key has come for a second, collects
        what is garbage among it and freezes the rest again."""
        self._freeze_after_pass = True

    def first_screen_read(self) -> None:
        """A screen shows its first read (tui/first_read.py): the looks for other sessions'
        changes start after the frame that paints it. The first look opens the write path
        (SQLAlchemy's import: a tenth of a second of the interpreter), which the first screen's
        reads and paint would otherwise share the interpreter with. (A first screen read ahead
        may show before the app's own mount.)"""
        if not self._live_started:
            self.call_after_refresh(self._start_live)

    def _start_live(self) -> None:
        if self._live_started:
            return
        self._live_started = True
        first_screen_ahead.discard()  # (a read made before the first look is not taken after it)
        if self._live_wait is not None:
            self._live_wait.stop()
            self._live_wait = None
        self.live.start()

    async def on_event(self, event: events.Event) -> None:
        """Keys for a text field are handled here, one after another, as they arrive.

        Textual hands a key to the focused field's own queue, and runs a binding (tab to the next
        field, backspace, enter, ctrl+u) only when the field passes the key back up to the app. Keys
        typed in one burst, as they arrive over a slow SSH link, were then all in the field's queue
        before the first binding ran: `Sam Lee<Tab>sam@example.com` went into one field, a
        backspace deleted the wrong letter. Here the field takes its own keys (letters; a text
        area's enter and tab) and then the bindings run, in the app's order, before the next key.
        """
        if isinstance(event, events.InputEvent):
            self._last_input = time.monotonic()
        key = isinstance(event, events.Key) and not event.is_forwarded
        if key and self._hold_key(event):
            return
        focused = self.focused if key else None
        if key and (focused is None or isinstance(focused, (Input, TextArea, Select, SelectOverlay))):
            # What the field, its screen (or a screen just opened, nothing focused yet) have been
            # sent already runs first: the focus that selects a prefilled text, an enter that moved
            # on to another field or closed a form, a dialog putting the cursor in its first field.
            if await self._settle_shown():
                self._hold_for_callbacks(event)
                return
            focused = self.focused
        if isinstance(focused, (Input, TextArea)) and isinstance(event, events.Key) and self.screen.maximized is None:
            await self._key_for_field(focused, event)
            return
        if (
            key
            and isinstance(event, events.Key)
            and focused is not None
            # (a drop-down list too: Enter opened it only once its binding ran, after the keys
            # typed after it had gone to the closed list, so Enter Down Down Enter in one burst
            # left the list open on the first choice)
            and (
                getattr(self.screen, "BINDINGS_FIRST", False)
                or (isinstance(focused, (Select, SelectOverlay)) and not event.is_printable)
            )
            and self.screen.maximized is None
        ):
            await self._key_for_bindings(focused, event)
            return
        if key:
            self._typed_on[event] = self.screen  # (a key Textual hands on to the focused widget)
        await super().on_event(event)

    async def _key_for_bindings(self, focused: Widget, event: events.Key) -> None:
        """A key on a screen that asks for it (BINDINGS_FIRST: the pipeline, whose focused table
        has no key handler of its own) runs its binding at once, as Textual would once the key came
        back from the focused widget's queue and up through its screen: that round trip was half
        a millisecond of each stage and cursor key. A key no binding takes goes the usual way. Its
        frame is painted before this returns (tui/paint.py)."""
        self.app_focus = True
        self.screen._clear_tooltip()
        if await self._bound(event.key):
            paint.paint_now(self)
            # A drop-down list: Textual moves the focus to the list it opened, and back to it once
            # a choice is taken, later, after the keys already typed; those keys wait for it.
            if isinstance(focused, Select) and focused.expanded:
                self._want_focus(focused.query_one(SelectOverlay))
            elif isinstance(focused, SelectOverlay) and event.key == "enter" and isinstance(focused.parent, Select):
                self._want_focus(focused.parent)
            return
        self._typed_on[event] = self.screen
        focused._forward_event(event)

    async def _bound(self, key: str) -> bool:
        """App._check_bindings with priority, then without (as Textual checks a key), on one
        binding chain: Textual works the chain out for each (a copy of each node's bindings, the
        keymap applied to each), a tenth of a millisecond of every key on this machine."""
        chain = self.screen._binding_chain
        modal = next((index for index, (node, _) in enumerate(chain, 1) if node.is_modal), len(chain))
        for priority, namespaces in ((True, chain[::-1]), (False, chain[:modal])):
            for namespace, bindings in namespaces:
                for binding in bindings.key_to_bindings.get(key, ()):
                    if binding.priority == priority and await self.run_action(binding.action, namespace):
                        return True
        return False

    async def _key_for_field(self, field: Input | TextArea, event: events.Key) -> None:
        self.app_focus = True
        self.screen._clear_tooltip()
        if await self._check_bindings(event.key, priority=True):
            return
        await field._on_key(event)  # the field's own handling: inserting the letter
        if not event._stop_propagation:
            await self._check_bindings(event.key)

    async def _on_key(self, event: events.Key) -> None:
        """A key back from the widget it was handed to, for the bindings. Textual hands a key to
        the focused widget's queue, and its binding runs when it comes back here: the keys typed
        after it in the same burst are all handed to that widget first. When the key's binding
        opened a dialog (`l` asks why the prospect was lost), those keys come back here too, for
        a screen they were not typed on, and were lost: `l` and the reason typed in one write
        over SSH lost the prospect with no reason. Such a key goes to the screen now shown, as if
        typed there: into its field, once the screen has put itself together."""
        typed_on = self._typed_on.pop(event, None)
        if typed_on is not None and typed_on is not self.screen and self.screen.maximized is None:
            if self._hold_key(event):
                event.prevent_default()
                return
            if await self._settle_shown():
                event.prevent_default()
                self._hold_for_callbacks(event)
                return
            focused = self.focused
            if isinstance(focused, (Input, TextArea)):
                event.prevent_default()  # (App._on_key, which Textual runs after this, would run its binding again)
                await self._key_for_field(focused, events.Key(event.key, event.character))
        # else App._on_key runs the bindings, as for any key

    # -------------------------------------------------------- keys typed ahead

    def _hold_key(self, event: events.Key) -> bool:
        """Whether `event` waits: the screen shown is not ready for keys yet (`keys_ready`: a
        screen until its first read ends, tui/first_read.py), or keys typed before it wait. Enter
        and `n` typed in one burst opened the page and refused `n` ("not loaded yet"); the letters
        of the note after it then ran as the page's keys (`l` asks why the prospect was lost, and
        the rest went in as the reason). Held keys run in order when the screen says it is ready
        (`release_keys`), or after KEY_HOLD_LIMIT seconds whatever the screen says."""
        if self._replaying or (
            not self._held_keys and getattr(self.screen, "keys_ready", True) and not self._awaiting_focus()
        ):
            return False
        self._held_keys.append(events.Key(event.key, event.character))
        if self._hold_timer is None:
            self._hold_timer = self.set_timer(KEY_HOLD_LIMIT, self._hold_over, name="keys held")
        return True

    def _hold_for_callbacks(self, event: events.Key) -> None:
        """A dialog closed as `event` waited for it to settle (an enter typed before it answered
        it): what the dialog's caller does next, often the next question (a contact point's next
        follow-up), is called back after this key. The key, and those typed after it, wait for that,
        in the order typed."""
        self._held_keys.insert(0, events.Key(event.key, event.character))  # (first: it came first)
        self._held_again = True
        if self._hold_timer is None:
            self._hold_timer = self.set_timer(KEY_HOLD_LIMIT, self._hold_over, name="keys held")
        self.call_next(self._replay_keys)

    def release_keys(self) -> None:
        """The screen shown is ready for keys: the ones held for it run (called by the screen)."""
        if self._held_keys:
            self.call_later(self._replay_keys)

    def _hold_over(self) -> None:
        self._hold_timer = None
        self.call_later(self._replay_keys, True)

    def _want_focus(self, widget: Widget) -> None:
        """The keys typed next wait until `widget` has the focus (Textual gives it later), at most
        KEY_HOLD_LIMIT seconds; then they run in order (`_replay_keys`)."""
        self._focus_wanted = (widget, time.monotonic() + KEY_HOLD_LIMIT)
        self._focus_poll()

    def _awaiting_focus(self) -> bool:
        if self._focus_wanted is None:
            return False
        widget, deadline = self._focus_wanted
        if self.focused is widget or not widget.is_attached or time.monotonic() > deadline:
            self._focus_wanted = None
            return False
        return True

    def _focus_poll(self) -> None:
        if self._awaiting_focus():
            self.set_timer(0.01, self._focus_poll, name="keys wait for the focus")
        elif self._held_keys:
            self.call_later(self._replay_keys)

    async def _replay_keys(self, anyway: bool = False) -> None:
        """The held keys, in order, as if typed now; a key that opens another screen not ready
        yet holds the ones after it again (unless the time limit is over: `anyway`)."""
        while self._held_keys:
            if not anyway and (not getattr(self.screen, "keys_ready", True) or self._awaiting_focus()):
                return
            event = self._held_keys.pop(0)
            self._replaying = True
            self._held_again = False
            try:
                await self.on_event(event)
            finally:
                self._replaying = False
            if self._held_again:  # (it waits for a dialog's caller: a replay follows that)
                return
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None

    async def _settle_shown(self) -> bool:
        """Let the screen shown and its focused field handle what they were sent, and again for the
        screen and field that are in front then, a few times over; whether a screen closed
        meanwhile. An enter typed before this key, still on its way up from a dialog's field,
        closes the dialog: `n`, a note, enter and the next follow-up typed in one burst put the
        follow-up into the field of the dialog closing, which then refused the whole text and
        logged nothing."""
        closed = False
        for _ in range(SETTLE_ROUNDS):
            screen, focused = self.screen, self.focused
            await self._settle_messages(focused or screen)
            closed = closed or screen not in self.screen_stack
            if self.screen is screen and self.focused is focused:
                break
        return closed

    @staticmethod
    async def _settle_messages(widget: Widget) -> None:
        """Let `widget` and the widgets around it, up to its screen, handle what they were sent. A
        screen just opened (a dialog, by the key before) is first put together, so that a key
        typed ahead for it (see `_on_key`) finds its first field focused: at most SETTLE_LIMIT
        seconds for that; a screen slower to open gets the key as it is."""
        pumps = [node for node in widget.ancestors_with_self if isinstance(node, Widget)]
        deadline = time.monotonic() + SETTLE_LIMIT
        spins = 0
        while not all(pump.is_mounted for pump in pumps):
            if time.monotonic() > deadline:
                return
            spins += 1
            await asyncio.sleep(0 if spins < 200 else 0.001)  # (then a pause, not a busy loop)
        for _ in range(200):
            if all(pump._message_queue.empty() for pump in pumps):
                return
            await asyncio.sleep(0)

    def on_unmount(self) -> None:
        self.live.stop()
        if self._engine is not None:
            self._engine.dispose()

    # -------------------------------------------------------- screens

    def _add_tab_bar(self, screen: Screen) -> None:
        """Top-level screens all show the tab bar; the ones that do not compose one get one."""
        for spec in self.screen_specs:
            stack = self._screen_stacks.get(spec.name) or []
            if stack and stack[0] is screen:
                bars = screen.query(TabBar)
                if not bars:
                    screen.mount(TabBar(spec.name), before=0 if screen.children else None)
                else:
                    for bar in bars:
                        bar.current = spec.name
                return

    async def run_action(self, action: Any, default_namespace: Any = None, namespaces: Any = None) -> bool:
        """Every key binding's action runs through here: a read-only app refuses its write keys
        with a notice (and the key counts as handled)."""
        if self.read_only and isinstance(action, str):
            from .read_only import READ_ONLY_NOTICE, writes

            if writes(default_namespace or self, action):
                self.notify(READ_ONLY_NOTICE, severity="warning", markup=False, timeout=6)
                return True
        return await super().run_action(action, default_namespace, namespaces)

    def action_go(self, name: str) -> None:
        self.switch_mode(name)

    def action_key_screen(self, key: str) -> None:
        spec = next((s for s in self.screen_specs if s.key == key), None)
        if spec is None:
            self.notify(f"Screen {key} is not available yet", severity="warning", markup=False)
            return
        self.switch_mode(spec.name)

    def action_quit_or_back(self) -> None:
        """`q` quits from a top-level screen; on a page opened from one (a prospect page, a form, a
        dialog, the help) it goes back, as `escape` does there."""
        if len(self.screen_stack) <= 1:
            self.quit_after_saves()
            return
        screen = self.screen
        # a form or a dialog cancels its own way (the import screen stops its worker first)
        for name in ("cancel", "close"):
            action = getattr(screen, f"action_{name}", None)
            if action is not None:
                action()
                return
        if isinstance(screen, ModalScreen):
            screen.dismiss(None)
        else:
            self.pop_screen()

    async def action_quit(self) -> None:
        """ctrl+q (Textual's quit, from any screen): while a form holds what was typed and not saved
        it asks first, as the form's own esc does; quitting there at once lost the edit without a
        word. ctrl+q again, or y, quits."""
        dirty = any(getattr(screen, "is_dirty", False) for screen in self.screen_stack)
        if not dirty or self._quit_asked:
            self.quit_after_saves()
            return
        from .dialogs import ConfirmDialog

        def answered(quit_anyway: bool | None) -> None:
            self._quit_asked = False
            if quit_anyway:
                self.quit_after_saves()

        self._quit_asked = True
        self.push_screen(
            ConfirmDialog("Quit and lose the changes you typed in the form?", title="Unsaved changes"), answered
        )

    def quit_after_saves(self) -> None:
        """Quit once the changes on their way are saved: a held lock can keep one waiting for
        seconds, and quitting at once left the screen blank meanwhile and the change unsaved
        without a word. The notice says so; q again quits at once (a change that fails then is
        printed when the app has closed, see `run`). A change that fails while waiting stops the
        quit: its notice is on screen, and R tries it again."""
        if self._quit_waiting or not self.saver.busy:
            self.saver.closing = True
            if self.saver.busy:  # (q twice: said once the terminal is back, as the process waits)
                from rich.text import Text

                self.exit(message=Text(FINISHING_SAVE))
            else:
                self.exit()
            return
        self._quit_waiting = True
        self.notify("Saving your last change before quitting; q again quits now.", markup=False, timeout=30)

    def _quit_once_saved(self) -> None:
        if self._quit_waiting and not self.saver.busy:
            self.saver.closing = True
            self.exit()

    def on_change_failed(self, message: ChangeFailed) -> None:
        if self._quit_waiting:
            self._quit_waiting = False
            self.notify(
                "Not quitting: a change was not saved (see above). R tries it again; q quits without it.",
                severity="warning",
                markup=False,
                timeout=10,
            )

    def action_retry_save(self) -> None:
        """Try every change that failed to save (a held lock, a full disk) again, in order."""
        tried = self.saver.retry()
        if not tried:
            self.notify("Nothing to retry: every change so far was saved or refused.", timeout=4)
        elif tried > 1:
            self.notify(f"Trying {tried} changes again, in the order they were made.", markup=False, timeout=4)

    def action_command_palette(self) -> None:
        """The command palette, but not over a question or a form: opened there, a command ran
        behind it (the add form over a stage's question) and the question waited on, answered yes
        by the next enter once the rep came back to it."""
        if isinstance(self.screen, ModalScreen):
            self.notify("Answer or close this first (esc), then ctrl+p", markup=False, timeout=3)
            return
        super().action_command_palette()

    def action_help(self) -> None:
        from .screens.help import Entry, HelpScreen, binding_entries, key_label, mark_entries
        from .screens.pipeline import PipelineScreen
        from .widgets.prospect_table import ProspectTable

        sections = []
        here = self.screen
        if not isinstance(here, PipelineScreen):
            # the keys of the screen in front first (the focus list, the stages, a prospect page ...)
            title = None
            if len(self.screen_stack) == 1:  # a top-level screen: its tab's name
                title = next((s.title for s in self.screen_specs if s.name == self.current_mode), None)
            own = [b for b in type(here).BINDINGS if isinstance(b, Binding) and b.id]
            if own:
                name = re.sub(r"(?<!^)(?=[A-Z])", " ", type(here).__name__.removesuffix("Screen")).capitalize()
                sections.append((title or name, binding_entries(own, self.keymap, getattr(here, "ACTION_HELP", {}))))
        sections += [
            ("Pipeline", binding_entries(PipelineScreen.BINDINGS, self.keymap, PipelineScreen.ACTION_HELP)),
            ("Moving around the table", binding_entries(ProspectTable.BINDINGS, self.keymap, {})),
            (
                "Everywhere",
                binding_entries(
                    [b for b in self.BINDINGS if isinstance(b, Binding) and not b.id.startswith("app.screen_")],
                    self.keymap,
                    {
                        "quit_or_back": "Quit (on a pushed page: back)",
                        "help": "This help",
                        "import": "Import prospects",
                    },
                )
                + [Entry("ctrl+p", "Command palette: every command by name")],
            ),
            ("Marks on the screens", mark_entries()),
            (
                "Screens (number keys, or ctrl+p)",
                [
                    e
                    for s in self.screen_specs
                    for e in (
                        Entry(key_label(self.keymap.get(f"app.screen_{s.key}", s.key)), s.title, f"app.screen_{s.key}"),
                        Entry("", s.description),
                    )
                ],
            ),
        ]
        self.push_screen(HelpScreen(sections))

    def action_members(self) -> None:
        from .screens.members import MembersScreen

        self.push_screen(MembersScreen())

    def action_import(self) -> None:
        if self.read_only:  # the command palette's "Import prospects"
            from .read_only import READ_ONLY_NOTICE

            self.notify(READ_ONLY_NOTICE, severity="warning", markup=False, timeout=6)
            return
        if self.in_browser:
            from .read_only import BROWSER_IMPORT_NOTICE

            self.notify(BROWSER_IMPORT_NOTICE, severity="warning", markup=False, timeout=8)
            return
        from .screens.import_screen import ImportScreen

        if any(isinstance(screen, ImportScreen) for screen in self.screen_stack):
            return  # `i` on the import screen (its preview focused) stacked a second, empty one over it
        self.push_screen(ImportScreen())

    def run_pipeline_action(self, action: str) -> None:
        """Run one of the pipeline screen's actions (from the command palette)."""
        if self.current_mode != "pipeline":
            self.switch_mode("pipeline")
        if self.pipeline is not None:
            getattr(self.pipeline, f"action_{action}")()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from .commands import pipeline_commands, screen_commands
        from .screens.pipeline import PipelineScreen

        yield from super().get_system_commands(screen)
        yield from screen_commands(self)
        if not self.read_only:  # the pipeline's commands all change a prospect
            yield from pipeline_commands(self, PipelineScreen)

    # -------------------------------------------------------- after any change

    def on_remote_changes(self, message: RemoteChanges) -> None:
        """Changes other sessions made: the pipeline applies them, the other screens hear of them
        (remote_changed_signal: those showing read again, the others when shown), and a notice
        says who did what."""
        if self.pipeline is not None:
            self.pipeline.apply_remote(message)
        self.remote_changed_signal.publish(message)
        if message.notice:
            self.notify(message.notice, markup=False, timeout=6)

    def data_changed(self, result: ChangeResult | None) -> None:
        """Tell every screen about a change, and keep the KPI history current."""
        # (None: everything is read again, after an import; its journal entries are this
        # session's own already, noted as they were written: tui/screens/import_screen.py)
        if result is not None and result.event_id > self.live.after:
            self.saver.note_own((result.event_id,))  # made here (calibration writes in its own worker)
        if self.pipeline is not None:
            message = DataChanged(result)
            message.forwarded = True  # the app does not handle it again when it bubbles up
            self.pipeline.post_message(message)
        self.data_changed_signal.publish(result)
        self._schedule_snapshot()

    def say_saved(self, result: ChangeResult) -> None:
        """A saved change's notice (its summary, then each warning): the summary in the tab bar of
        the screen on top for SAVED_NOTICE seconds (TabBar.say: no layout of the screen), or a
        toast where there is none (a dialog); the warnings as toasts."""
        bars = self.screen.query_children(TabBar)
        if bars:
            bars.first().say(result.summary, SAVED_NOTICE)
        else:
            self.notify(result.summary, markup=False, timeout=SAVED_NOTICE)
        for warning in result.warnings:
            self.notify(warning, markup=False, severity="warning")

    def on_change_saved(self, message: ChangeSaved) -> None:
        """A change saved through the saver, once the screen that made it has shown it."""
        self.data_changed(message.result)
        self._quit_once_saved()

    def on_data_changed(self, message: DataChanged) -> None:
        if not getattr(message, "forwarded", False):
            self.data_changed(message.result)

    def _schedule_snapshot(self) -> None:
        if self._snapshot_timer is not None:
            return
        wait = max(0.0, SNAPSHOT_EVERY - (time.monotonic() - self._last_snapshot))
        self._snapshot_timer = self.set_timer(max(0.01, wait), self._snapshot_due, name="kpi snapshot")

    def _snapshot_due(self) -> None:
        self._snapshot_timer = None
        if self.read_only:  # nothing changed here; the KPI history is the writers' to keep
            return
        self._last_snapshot = time.monotonic()
        self.keep_snapshot()

    def keep_month_starts(self) -> None:
        """In a screen's worker, before a forecast is judged: record the month starts no change has
        recorded yet (a month that began without a write), as `evpipe forecast` does
        (models.month_starts.record_month_starts). A held lock, or a database this session does not
        write: the screen reads without them."""
        from evpipe.models import clock
        from evpipe.models.month_starts import record_month_starts

        if not self.read_only:
            record_month_starts(self.reader, lambda: self.engine, clock.today())

    @work(thread=True, group="snapshot", exit_on_error=False, description="keep today's KPI snapshot")
    def keep_snapshot(self) -> None:
        """Once per burst of changes, in a worker: each change has kept today's KPI snapshot
        already (models/snapshot_deltas.py), so this only looks, unless it has to recount (the
        day's first change, a stage's probability changed)."""
        from evpipe.models.history import keep_current

        keep_current(self.engine)


#: glibc's mallopt parameters (malloc.h): the most arenas, and the size from which a block is
#: mapped apart (and given back to the system when freed).
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def settle_allocator() -> None:
    """Before the app starts its threads, on glibc only: one malloc arena for every thread, and
    blocks of 128 KiB and more always mapped apart. The app holds every prospect's row for hours
    while workers read and search beside the UI thread: by default each worker thread gets an
    arena of its own, which keeps what the worker freed (the rows read in chunks, a sort's ids),
    and glibc raises the size it maps apart each time such a block is freed, so later big arrays
    land in the heap between live objects. At 100,000 prospects that was 7 MiB of the app's
    resident memory once every row was loaded (114 -> 107 MiB)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: another C library keeps its own ways)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, 1)
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


#: Said as the app quits with a change still being saved (q twice): the process ends once the save
#: does, which waits for the write lock another evpipe holds; the screen was blank meanwhile.
FINISHING_SAVE = (
    "evpipe: finishing the change being saved: it waits for the write lock another evpipe holds, up to "
    "the lock wait (30 s unless EVPIPE_LOCK_TIMEOUT says otherwise); if it cannot be saved, that is said here"
)


def run(url: str) -> None:
    """Open the app on the database at `url` (the `evpipe` and `evpipe demo` commands)."""
    settle_allocator()
    read_escape_apart()
    app = EvpipeApp(url)
    app.run()
    for why in app.saver.lost:  # (failed as the app closed: never on screen)
        print(f"evpipe: a change was not saved: {why}", file=sys.stderr)
    if app.saver.lost or app.return_code:  # (a crash, whose traceback Textual printed, is not 0)
        sys.exit(1)


if TYPE_CHECKING:

    def _has_the_parts_screens_use(app: EvpipeApp) -> EvpipeParts:
        return app  # mypy checks that EvpipeApp provides what tui/access.py promises
