"""The evpipe app: top-level screens as modes (number keys, tab bar), the database, the keymap,
and what happens after any change (the pipeline updates, a KPI snapshot is recorded)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.timer import Timer

from evpipe.models.errors import DomainError
from evpipe.models.locations import db_label, is_default_location
from evpipe.models.rawdb import SqliteReader, schema_ready, sqlite_file
from evpipe.models.records import ChangeResult, current_user

from .keymap import load_keymap
from .messages import ChangeSaved, DataChanged
from .saving import Saver
from .screens.registry import ScreenSpec, available
from .widgets.tab_bar import TabBar

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from evpipe.models.store import Store

    from .access import EvpipeParts

#: Record a KPI snapshot at most this often (seconds) while changes come in.
SNAPSHOT_EVERY = 2.0


class EvpipeApp(App):
    """Your sales pipeline as Expected Value."""

    TITLE = "evpipe"
    CSS_PATH = "app.tcss"
    DEFAULT_MODE = "pipeline"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("i", "import", "Import", id="app.import", show=False),
        Binding("R", "retry_save", "Retry save", id="app.retry_save", show=False),
        *[Binding(str(n), f"key_screen('{n}')", f"Screen {n}", show=False, id=f"app.screen_{n}") for n in range(1, 8)],
    ]

    def __init__(self, url: str, *, who: str | None = None, screen: str | None = None, read_only: bool = False) -> None:
        #: Read-only (`evpipe serve` without --allow-writes): write keys hidden and refused, and the
        #: whole process refuses writes (models/readonly.py), before anything opens the database.
        self.read_only = read_only
        if read_only:
            from evpipe.models.readonly import set_read_only

            set_read_only(True)
        if screen is not None:  # the screen to open on (a mode name: `evpipe serve` opens on review)
            self.DEFAULT_MODE = screen
        super().__init__()
        self.url = url
        #: The open database as the tab bar names it (the file's name).
        self.database_label = db_label(url)
        self._database_problem: str | None = None
        self.who = who or current_user()
        self._engine: Engine | None = None
        self._store: Store | None = None
        self._engine_lock = threading.Lock()
        path = sqlite_file(url)
        #: What read-only queries use. An SQLite file already at the newest schema is read with the
        #: standard library, so the first screen never waits for SQLAlchemy to import; the engine
        #: (writes, and everything else) opens on first use, which the pipeline makes happen in a
        #: worker right after its first screen is painted.
        self.reader: Any = SqliteReader(path, read_only=read_only) if path is not None and schema_ready(url) else None
        self.pipeline = None
        #: Published with the ChangeResult (or None: reload everything) after any change; screens
        #: that show data can subscribe to refresh themselves.
        self.data_changed_signal: Signal[ChangeResult | None] = Signal(self, "data-changed")
        #: Every change made on a screen is saved through this, one at a time, in order.
        self.saver = Saver(self)
        self._last_snapshot = 0.0
        self._snapshot_timer: Timer | None = None
        self._keymap_error: str | None = None
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
                    from evpipe.models import open_db

                    try:  # the app never creates a database it was not asked to (the CLI asks first)
                        self._engine = open_db(
                            self.url, create=is_default_location(self.url), seed_ladder=not self.read_only
                        )
                    except DomainError as exc:
                        self._say_database_problem(str(exc))
                        raise
        return self._engine

    def _say_database_problem(self, message: str) -> None:
        """The database cannot be opened (a worker found out): say so once, in words (notify is
        thread-safe)."""
        if self._database_problem == message:
            return
        self._database_problem = message
        self.notify(f"The database cannot be opened: {message}", severity="error", markup=False, timeout=30)

    @property
    def store(self) -> Store:
        if self._store is None:
            from evpipe.models.store import Store

            engine = self.engine
            with self._engine_lock:
                if self._store is None:
                    self._store = Store(engine, who=self.who)
        return self._store

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
        self.screen_change_signal.subscribe(self, self._add_tab_bar)
        if self.read_only:
            from .read_only import hide_write_keys

            self.screen_change_signal.subscribe(self, hide_write_keys)
            hide_write_keys(self.screen)
        if self.DEFAULT_MODE != type(self).DEFAULT_MODE:  # opened on another screen: shown before the signal
            self.call_after_refresh(self._add_tab_bar, self.screen)
        if self._keymap_error:
            self.notify(self._keymap_error, severity="error", markup=False, timeout=10)

    def on_unmount(self) -> None:
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

    def action_retry_save(self) -> None:
        """Try the last change that failed to save (a held lock, a full disk) again."""
        if not self.saver.retry():
            self.notify("Nothing to retry: every change so far was saved or refused.", timeout=4)

    def action_help(self) -> None:
        from .screens.help import HelpScreen, binding_lines, key_label
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
                sections.append((title or name, binding_lines(own, self.keymap, getattr(here, "ACTION_HELP", {}))))
        sections += [
            ("Pipeline", binding_lines(PipelineScreen.BINDINGS, self.keymap, PipelineScreen.ACTION_HELP)),
            ("Moving around the table", binding_lines(ProspectTable.BINDINGS, self.keymap, {})),
            (
                "Everywhere",
                binding_lines(
                    [b for b in self.BINDINGS if isinstance(b, Binding) and not b.id.startswith("app.screen_")],
                    self.keymap,
                    {"quit": "Quit", "help": "This help", "import": "Import prospects"},
                )
                + [
                    f"  {key_label(self.keymap.get(f'app.screen_{s.key}', s.key)):<9} {'Go to ' + s.title:<37} "
                    f"app.screen_{s.key}"
                    for s in self.screen_specs
                ]
                + [f"  {'ctrl+p':<9} {'Command palette: every command by name':<37}"],
            ),
        ]
        self.push_screen(HelpScreen(sections))

    def action_import(self) -> None:
        if self.read_only:  # the command palette's "Import prospects"
            from .read_only import READ_ONLY_NOTICE

            self.notify(READ_ONLY_NOTICE, severity="warning", markup=False, timeout=6)
            return
        from .screens.import_screen import ImportScreen

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

    def data_changed(self, result: ChangeResult | None) -> None:
        """Tell every screen about a change, and keep the KPI history current."""
        if self.pipeline is not None:
            message = DataChanged(result)
            message.forwarded = True  # the app does not handle it again when it bubbles up
            self.pipeline.post_message(message)
        self.data_changed_signal.publish(result)
        self._schedule_snapshot()

    def on_change_saved(self, message: ChangeSaved) -> None:
        """A change saved through the saver, once the screen that made it has shown it."""
        self.data_changed(message.result)

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
        self.record_snapshot()

    @work(thread=True, group="snapshot", exit_on_error=False, description="record KPI snapshot")
    def record_snapshot(self) -> None:
        from evpipe.models.history import record_snapshot

        record_snapshot(self.engine)


def run(url: str) -> None:
    """Open the app on the database at `url` (the `evpipe` and `evpipe demo` commands)."""
    EvpipeApp(url).run()


if TYPE_CHECKING:

    def _has_the_parts_screens_use(app: EvpipeApp) -> EvpipeParts:
        return app  # mypy checks that EvpipeApp provides what tui/access.py promises
