"""The `evpipe` group and what every command shares: the context (the database, opened on first
use), domain errors as a message and an exit code, JSON, tables and safe user text.

Commands live beside this module (database, prospects, ladder, insight, io, demo) and are
registered on the group in tui/cli/__init__.py; each takes `--db` after its name as well. Heavy modules (SQLAlchemy, Textual, the store) are imported inside
the commands, so `evpipe --help` and a quick `evpipe add` start fast."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import wraps
from itertools import chain, islice
from typing import Any, NoReturn

import click

from evpipe.models.errors import DomainError, SumTooLarge, WriteLocked
from evpipe.models.names import display_name

EXIT_ERROR = 1


#: Commands whose job is to make a database: they create the file they are pointed at. Every
#: other command, and the app without asking, refuses a path that does not exist (a typing
#: mistake must not look like an empty pipeline).
MAKES_A_DATABASE = frozenset({"init", "seed", "restore"})


class Ctx:
    """What every command needs: the database URL, opened on first use."""

    def __init__(self, db: str | None, command: str | None = None) -> None:
        #: `--db`, given before or after the command's name (else EVPIPE_DB, else the default).
        self.db_option = db
        self.command = command
        self._engine = None
        self._reader = None

    @property
    def url(self) -> str:
        from evpipe.models.locations import resolve_db

        return resolve_db(self.db_option)

    @property
    def may_create(self) -> bool:
        """Whether opening may create the database: the default location always, a path that was
        named (--db, EVPIPE_DB) only for the commands that make a database."""
        from evpipe.models.locations import creates_silently, sqlite_path

        url = self.url
        if creates_silently(url) or self.command == "init":
            return True
        path = sqlite_path(url)
        # seed and restore make a new file in a folder that exists; folders, and an empty file that
        # is there already, only `init` makes into a database
        return self.command in MAKES_A_DATABASE and (path is None or (not path.exists() and path.parent.is_dir()))

    @property
    def engine(self):
        if self._engine is None:
            from evpipe.models import open_db
            from evpipe.models.db import CLI_LOCK_TIMEOUT, lock_wait

            self._engine = open_db(self.url, create=self.may_create, lock_timeout=lock_wait(CLI_LOCK_TIMEOUT))
        return self._engine

    @property
    def reader(self):
        """What a read-only command reads through: an SQLite file already at the newest schema is
        read with the standard library (models/rawdb.py's SqliteReader), so the command never waits
        for SQLAlchemy to import; anything else (a new or older file, a server) is the engine,
        opened, created or upgraded as ever. The file is checked first either way."""
        if self._reader is None:
            from evpipe.models.locations import check_database, sqlite_path
            from evpipe.models.rawdb import SqliteReader, schema_ready
            from evpipe.models.readonly import is_read_only

            url = self.url
            path = sqlite_path(url)
            if self._engine is None and path is not None:
                check_database(url, create=self.may_create)
            if self._engine is None and path is not None and schema_ready(url):
                self._reader = SqliteReader(path, read_only=is_read_only())
            else:
                self._reader = self.engine
        return self._reader

    def close(self) -> None:
        """As the command ends: the database's connections closed (SQLite folds its write-ahead log
        back into the file as the last one closes), the same on every way out."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._reader = None

    def store(self):
        from evpipe.models.store import Store

        store = Store(self.engine)
        if store.note and not getattr(self, "_noted", False):
            self._noted = True
            click.echo(f"evpipe: {store.note}", err=True)
        return store

    @property
    def who(self) -> str:
        """Who this command acts as (models/roles.py)."""
        return self.store().who

    def owner_scope(self, owner: str | None) -> str | None:
        """The owner whose prospects a read shows: `owner` as asked, or, for a rep whom the owner
        lets see only their own (`evpipe members reps-see own`), always that rep."""
        from evpipe.models.rawdb import dialect_name
        from evpipe.models.visibility import any_members

        source = self.reader
        if dialect_name(source) == "sqlite" and not any_members(source):
            return owner  # no members: no one is a rep (sees_only), and acting as anyone needs no note
        from evpipe.models.members import visible_owner

        who = self.who
        only = visible_owner(self.engine, who)
        if only is None:
            return owner
        if owner not in (None, only):
            raise DomainError(f"you see only your own prospects (the owner's setting); you are a rep, {who}")
        return only

    def whole_database(self, command: str) -> None:
        """Refuse a copy of the whole database (a backup, a dump, a migration) to a rep whom the
        owner lets see only their own prospects: it would hold everyone's."""
        if self.owner_scope(None) is not None:
            from evpipe.models.visibility import OWN_ONLY_LINE

            raise DomainError(
                f"{command}: it copies the whole database, everyone's prospects, and you see {OWN_ONLY_LINE}; "
                "`evpipe export FILE` writes yours"
            )

    def month_starts(self) -> None:
        """Before a forecast is judged: record the month starts that no change has recorded yet
        (models.month_starts.record_month_starts). A held lock or a database this user may not
        write: the forecast reads without them, and says so on stderr."""
        from evpipe.models import clock
        from evpipe.models.month_starts import record_month_starts

        why = record_month_starts(self.reader, lambda: self.engine, clock.today())
        if why is not None:
            self._not_judged(why)

    @staticmethod
    def _not_judged(why: str) -> None:
        click.echo(f"evpipe: the months that began since the last change are not judged yet ({why})", err=True)

    def changed(self) -> None:
        """After a write: keep the KPI history up to date (the change kept today's snapshot as it
        was saved, models/snapshot_deltas.py; this recounts only when there is none). The change
        is saved by then, so a snapshot that cannot get the lock is a warning, not a failure: the
        next change records it."""
        from evpipe.models.history import keep_current

        try:
            keep_current(self.engine)
        except WriteLocked as exc:
            click.echo(f"evpipe: saved; today's KPI reading waits for the next change ({exc.reason})", err=True)
        except SumTooLarge as exc:  # (the day's first reading, a recount: the change was saved before it)
            click.echo(f"evpipe: saved, but today's KPI reading was not: {exc.why}", err=True)


pass_ctx = click.make_pass_decorator(Ctx)


#: Control characters (a newline, an escape code) that would break the one line an error gets;
#: a damaged database's own error text can hold them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def fail(message: str) -> None:
    click.echo(f"evpipe: {_CONTROL.sub(' ', message)}", err=True)
    sys.exit(EXIT_ERROR)


def domain_errors(fn: Callable) -> Callable:
    """Turn domain errors into a clear message on stderr and a non-zero exit."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DomainError, WriteLocked) as exc:
            fail(str(exc))
        except BrokenPipeError:  # `evpipe list | head`: the reader has gone; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except Exception as exc:
            line = database_error(exc)
            if line is None:
                raise
            fail(line)

    return wrapper


def database_error(exc: BaseException) -> str | None:
    """One line for an error the database itself raised (damaged, the disk full, read-only, locked
    for too long ...), naming the database and the next step; None for any other error."""
    import sqlite3

    from evpipe.models.errors import database_failure

    module = type(exc).__module__
    if not (isinstance(exc, sqlite3.Error) or module.startswith("sqlalchemy")):
        return None
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    click_ctx = click.get_current_context(silent=True)
    ctx = click_ctx.find_object(Ctx) if click_ctx is not None else None
    if ctx is None:
        return database_failure(exc, "the database") or f"the database failed: {reason}"
    from evpipe.models.locations import db_label, sqlite_path

    path = sqlite_path(ctx.url)
    name = path if path is not None else db_label(ctx.url)
    role = None if path is not None else _url_user(ctx.url)
    return database_failure(exc, name, role) or f"the database {name} failed: {reason}"


def _url_user(url: str) -> str | None:
    """The role a server URL names (else the server's default, PGUSER or the login name)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).username or os.environ.get("PGUSER") or None
    except Exception:
        return None


class Streamed:
    """A list inside a document for `emit_json` that is written as its items come, never held."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def emit_json(data: Any) -> None:
    """`data` as indented JSON. A `Streamed` list in it is written item by item, with the bytes the
    whole list would have made: the document is made with a mark in its place (a string no other
    text can be: it holds a NUL and a random token), then written up to each mark, the list's items
    indented as deep as the mark."""
    streamed: list[Streamed] = []
    token = f"\x00{os.urandom(8).hex()}:"

    def mark(o: Any) -> Any:
        if isinstance(o, Streamed):
            streamed.append(o)
            return f"{token}{len(streamed) - 1}"
        return str(o)

    text = json.dumps(data, indent=2, ensure_ascii=False, default=mark)
    if not streamed:
        click.echo(text)
        return
    quoted = json.dumps(token, ensure_ascii=False)[:-1]  # the mark as JSON writes it, without its closing quote
    pieces = text.split(quoted)
    click.echo(pieces[0], nl=False)
    for piece in pieces[1:]:
        number, rest = piece.split('"', 1)
        line_start = text.rfind("\n", 0, text.find(quoted + number + '"')) + 1
        depth = len(text[line_start:]) - len(text[line_start:].lstrip(" "))
        _write_list(streamed[int(number)].items, " " * depth)
        click.echo(rest, nl=False)
    click.echo("")


def _write_list(items: Iterable[Any], indent: str, batch: int = 500) -> None:
    """A list at `indent` in an indented document, as json.dumps nests it, `batch` items at a time."""
    inner = "\n" + indent + "  "
    head = "[" + inner
    wrote = False
    items = iter(items)
    while part := list(islice(items, batch)):
        text = ("," + inner).join(
            json.dumps(item, indent=2, ensure_ascii=False, default=str).replace("\n", inner) for item in part
        )
        click.echo(head + text, nl=False)
        head = "," + inner
        wrote = True
    click.echo("\n" + indent + "]" if wrote else "[]", nl=False)


def emit_json_array(items: Iterable[Any], *, flat_objects: bool = False, batch: int = 500) -> None:
    """`emit_json(list(items))`, byte for byte, written as the items come: a list of a million
    prospects never sits in memory. JSON text holds no raw newline, so an item's own lines indented
    by two are what nesting it in the list makes of them. `flat_objects`: every item is a non-empty
    dict of plain values (no dict or list inside); the C encoder then writes `batch` of them at a
    time, each item on its own indented line, and the only "}" before a newline ends an object."""
    flat = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",\n    ", ": ")).encode
    head = "[\n  "
    wrote = False
    items = iter(items)
    while part := list(islice(items, batch)):
        if flat_objects:
            text = "{\n    " + flat(part)[2:-2].replace("},\n    {", "\n  },\n  {\n    ") + "\n  }"
        else:
            text = ",\n  ".join(
                json.dumps(item, indent=2, ensure_ascii=False, default=str).replace("\n", "\n  ") for item in part
            )
        click.echo(head + text, nl=False)
        head = ",\n  "
        wrote = True
    click.echo("\n]" if wrote else "[]")


def json_record_template(keys: Sequence[str]) -> str:
    """One record of `emit_json_records` as a printf template (Python's % operator, or SQLite's
    printf): its lines as `emit_json` indents them, a `%s` for the JSON text of each value, in the
    order of `keys`."""
    # a key is written as JSON writes it; a % in it is kept from the template's own
    lines = [f"    {json.dumps(k, ensure_ascii=False).replace('%', '%%')}: %s" for k in keys]
    return "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"


def emit_json_texts(chunks: Iterable[list[bytes]]) -> None:
    """`emit_json_records` of records whose JSON text is made already, as UTF-8 bytes (each by
    `json_record_template`, e.g. by the database), a chunk of them at a time: the same bytes,
    written by `Output` while the next chunks are read."""
    head = b"[\n  "
    with Output() as out:
        for texts in chunks:
            if texts:
                out.write(head + b",\n  ".join(texts))
                head = b",\n  "
        out.write(b"[]\n" if head == b"[\n  " else b"\n]\n")


#: Linux's fcntl to set a pipe's buffer size (F_SETPIPE_SZ), and the size asked for: 1 MiB, what
#: an unprivileged process may ask by default (/proc/sys/fs/pipe-max-size).
_F_SETPIPE_SZ = 1031
PIPE_BUFFER = 1 << 20


class Output:
    """Standard output written by a thread of its own, so that a long listing's next rows are read
    while the last ones are written: into a pipe (`evpipe list --json | jq`), each write waits for
    the reader to take 64 KiB at a time, and the database stood still meanwhile (a million
    prospects: 7.5 s through a pipe against 5.7 s into a file). A pipe's buffer is also made 1 MiB
    where Linux allows. At most `depth` chunks wait (memory stays flat); an error writing (the
    reader gone: BrokenPipeError) is raised in the caller at its next write or at the end."""

    def __init__(self, depth: int = 8) -> None:
        import queue
        import stat
        import threading

        if sys.stdout is None:  # started with its output closed (`>&-`): nowhere to write
            raise DomainError("standard output is closed: give the command somewhere to write (a file or a pipe)")
        sys.stdout.flush()  # what was written as text goes first
        self.stream = sys.stdout.buffer
        try:
            if stat.S_ISFIFO(os.fstat(self.stream.fileno()).st_mode):
                import fcntl

                fcntl.fcntl(self.stream.fileno(), _F_SETPIPE_SZ, PIPE_BUFFER)
        except (OSError, ValueError, AttributeError):  # not a pipe, not Linux, or not allowed: as it is
            pass
        self.error: BaseException | None = None
        self.queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self.thread = threading.Thread(target=self._run, name="evpipe-output", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.stream.write(data)
                except BaseException as exc:  # handed to the caller (see the class's note)
                    self.error = exc
        if self.error is None:
            try:
                self.stream.flush()
            except BaseException as exc:
                self.error = exc

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(data)

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


#: The values `emit_json_records` writes at the C encoder's pace; any other goes through json.dumps.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def emit_json_records(keys: Sequence[str], records: Iterable[Sequence[Any]], *, batch: int = 1000) -> None:
    """`emit_json([dict(zip(keys, r)) for r in records])`, byte for byte, written as the records
    come (a list of a million prospects never sits in memory): each record is a tuple of values in
    the order of `keys`. No dict is made: the values of `batch` records are encoded in one call of
    the json module's (C) encoder, with a separator JSON text can never hold (a raw NUL: inside a
    string it is escaped), then put into the records' lines, the same for every record."""
    encode = json.JSONEncoder(ensure_ascii=False, default=str, separators=("\x00", ": ")).encode
    template = json_record_template(keys)
    head = "[\n  "
    wrote = False
    records = iter(records)
    while part := list(islice(records, batch)):
        values = list(chain.from_iterable(part))
        if values and set(map(type, values)) <= _PLAIN:
            text = ",\n  ".join([template] * len(part)) % tuple(encode(values)[1:-1].split("\x00"))
        else:  # a list or a dict inside (its own indented lines), or no keys: each record on its own
            text = ",\n  ".join(
                json.dumps(dict(zip(keys, r)), indent=2, ensure_ascii=False, default=str).replace("\n", "\n  ")
                for r in part
            )
        click.echo(head + text, nl=False)
        head = ",\n  "
        wrote = True
    click.echo("\n]" if wrote else "[]")


def safe(text: str | None) -> str:
    """User text for a terminal: no escape sequences or control characters."""
    if text and text.isascii() and text.isprintable():  # nothing to drop: what clean_text leaves
        return text.strip()
    from evpipe.models.values import clean_text

    return clean_text(text or "", field="text", max_len=10**9)


def clip(text: str, width: int) -> str:
    """`text` cut to at most `width` terminal cells (a CJK character or an emoji takes two), with an
    ellipsis when cut."""
    if text.isascii() and text.isprintable():  # one cell a character: what rich would cut
        return text if len(text) <= width else text[: width - 1].rstrip() + "…"
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1).rstrip() + "…"


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """Columns aligned by the cells each text takes on a terminal (wide CJK and emoji count two)."""
    return "\n".join(table_lines(headers, lambda: rows, right))


def _cells(text: str) -> int:
    """The cells `text` takes on a terminal (plain ASCII, the usual case, one each)."""
    if text.isascii() and text.isprintable():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def table_lines(
    headers: list[str], rows: Callable[[], Iterable[list[str]]], right: set[int] = frozenset()
) -> Iterator[str]:
    """`table`'s lines one by one, over rows read twice (`rows()` gives them afresh each time):
    once for the widths of the columns, once to write them, so that none is kept in memory."""
    widths = [_cells(h) for h in headers]
    for row in map(_drawn, rows()):
        joined = "".join(row)
        for i, n in enumerate(map(len if joined.isascii() and joined.isprintable() else _cells, row)):
            if n > widths[i]:
                widths[i] = n
    align = [(i in right, w) for i, w in enumerate(widths)]

    def line(cells: list[str]) -> str:
        joined = "".join(cells)
        size = len if joined.isascii() and joined.isprintable() else _cells
        return "  ".join(
            " " * (w - size(c)) + c if r else c + " " * (w - size(c)) for c, (r, w) in zip(cells, align)
        ).rstrip()

    yield line(headers)
    yield line(["-" * w for w in widths])
    for row in map(_drawn, rows()):
        yield line(row)


def _drawn(row: list[str]) -> list[str]:
    """A row's cells as every terminal draws them in the cells counted (models.names.display_name:
    a family emoji's joiners, skin tones and emoji selectors left out; the data is unchanged)."""
    return row if "".join(row).isascii() else [display_name(c) for c in row]


# ---------------------------------------------------------------- the group

DB_HELP = "Database file or URL (else $EVPIPE_DB, else your data directory)."


def _db_after_the_command(click_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        click_ctx.find_object(Ctx).db_option = value


def _with_db_option(command: click.Command) -> None:
    """`--db` after the command's name too (`evpipe kpi --db X`), on it and its subcommands."""
    if not any(p.name == "db" for p in command.params):
        command.params.append(
            click.Option(
                ["--db"],
                metavar="PATH_OR_URL",
                expose_value=False,
                callback=_db_after_the_command,
                help=DB_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_db_option(sub)


class EvpipeGroup(click.Group):
    """The `evpipe` group: every command registered on it takes `--db` after its name as well."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _with_db_option(cmd)
        super().add_command(cmd, name)


@click.group(cls=EvpipeGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="PATH_OR_URL", help=DB_HELP)
@click.version_option(package_name="evpipe")
@click.pass_context
def main(click_ctx: click.Context, db: str | None) -> None:
    """evpipe: your sales pipeline as Expected Value.

    Run without a command to open the app."""
    click_ctx.obj = Ctx(db, click_ctx.invoked_subcommand)
    click_ctx.call_on_close(click_ctx.obj.close)
    if (
        garbled := _not_utf8([*sys.argv[1:], os.environ.get("EVPIPE_USER", ""), os.environ.get("EVPIPE_DB", "")])
    ) is not None:
        fail(f"{os.fsencode(garbled)!r} is not UTF-8 text (check the terminal's or the script's encoding)")
    if _OWN_PROCESS and click_ctx.invoked_subcommand not in (None, "serve"):  # (nor does a command on SQLite)
        try:
            leave_out_openssl(click_ctx.obj.url)
        except DomainError:
            pass  # (a bad --db: the command says so)
    if click_ctx.invoked_subcommand is None:
        need_terminal()
        try:
            url = click_ctx.obj.url
            ready_for_the_app(click_ctx.obj)
        except DomainError as exc:
            fail(str(exc))
        run_app(url)


def _not_utf8(texts: list[str]) -> str | None:
    """The first of these that came in bytes that are not UTF-8 (Python keeps such bytes as lone
    surrogates, which no database or file takes): said in one line before anything is done."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text
    return None


def ready_for_the_app(ctx: Ctx) -> None:
    """Before the app opens: its database is there and current. A named path that holds no
    database yet is created only if the user says so at a prompt; anything wrong with the file is
    one line (raised), before the screen is taken over."""
    from evpipe.models.locations import NoDatabase, check_database
    from evpipe.models.rawdb import schema_ready

    url = ctx.url
    try:
        check_database(url, create=ctx.may_create)  # the standard library only, like schema_ready
    except NoDatabase as exc:
        if not click.confirm(_create_question(url), default=False, err=True):
            raise exc from None
        ctx.command = "init"  # the user asked for it
    if not schema_ready(url):  # new, older or not SQLite: create or upgrade it now
        _ = ctx.engine


def _create_question(url: str) -> str:
    from evpipe.models.locations import sqlite_path

    path = sqlite_path(url)
    assert path is not None  # only a file can be missing
    if path.exists():
        return f"{path} is empty. Make it a new evpipe database?"
    folder = "" if path.parent.is_dir() else f" (and the folder {path.parent})"
    return f"There is no database at {path}. Create a new one there{folder}?"


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def need_terminal() -> None:
    if not has_terminal():
        fail(
            "the app needs a terminal; from scripts and cron use the commands "
            "(`evpipe kpi`, `evpipe list`, `evpipe review` ...; `evpipe --help` lists them)"
        )


def run_app(url: str) -> None:
    need_terminal()
    leave_out_openssl(url)
    from .. import first_screen_ahead

    first_screen_ahead.begin(url)  # (the pipeline's first screen, read while the app is imported)
    from ..app import run

    run(url)


#: Whether this process is the `evpipe` command's own (`run`), not a caller's that runs the group
#: in its own (a test's runner): only its own leaves modules out (`leave_out_openssl`).
_OWN_PROCESS = False


def own_process() -> bool:
    """Whether this process is the `evpipe` command's own (`run`), which ends with os._exit."""
    return _OWN_PROCESS


def leave_out_openssl(url: str) -> None:
    """Before the app imports asyncio (Textual's loop) and SQLAlchemy, on an SQLite database: Python's
    `ssl` and `_hashlib` are not loaded, the two modules that load OpenSSL's libcrypto, which was
    3.4 MiB of the app's resident memory (4 of its peak at 100,000 prospects: 116 -> 112 MiB). The
    app opens no network connection: asyncio leaves TLS out when `ssl` cannot be imported, and
    hashlib (SQLAlchemy's cache keys, models/grants.py) takes Python's own sha1, md5, sha256 ...
    Every command on SQLite but `serve` leaves them out too: loading them was 8 ms of each command.
    A server database is reached through its driver's library, which may well load libcrypto
    itself (psycopg's Python one imports `ssl`): there nothing is left out."""
    if not url.startswith("sqlite"):
        return
    for name in ("ssl", "_ssl", "_hashlib"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  (None: "import it" raises ImportError)


def run() -> NoReturn:
    """The `evpipe` command (pyproject.toml's script, through tui/launch.py): the group, then an exit without the
    interpreter's teardown. Python frees every module and object one by one as it ends: 70 ms once
    SQLAlchemy is in (an import's whole command is 1 s), for nothing the next process needs. What
    that teardown does that matters is done first, in its order: threads finished (Python's own
    shutdown step), exit handlers run, the streams flushed. The database is closed as the group's
    context ends (`Ctx.close`).

    The cycle collector runs less often in a command (after 20,000 new objects, not 700): its
    start imports SQLAlchemy and SQLModel, some 15,000 objects that stay, and the default ran
    passes over them all the while (30 ms of the CRM import's second). The app sets Python's
    defaults back as it starts (tui/app.py GC_THRESHOLDS)."""
    import gc

    global _OWN_PROCESS
    _OWN_PROCESS = True
    gc.set_threshold(20_000, 10, 10)
    try:
        main(prog_name="evpipe")
        code: object = 0  # (click always ends in SystemExit; this is for a main that returns)
    except SystemExit as exc:
        code = exc.code
    except BrokenPipeError:  # `evpipe --help | head -1`: the reader has gone; say nothing more
        code = 0
    except OSError as exc:  # what click writes itself (--help, --version) to a full disk
        code = f"evpipe: {exc.strerror or exc}"
    leave(code)


def leave(code: object) -> NoReturn:
    """End the process with `code` (SystemExit's: None is 0, a number is the status, anything else
    is printed to stderr and is 1), skipping the teardown of modules and objects (`run`)."""
    import atexit
    import gc
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    if status:
        # a command stopped in the middle of a statement (ctrl+c) leaves it open in the traceback's
        # reference cycle: SQLite closes the connection, and folds its -wal file back, only once
        # the collector frees it, which the teardown skipped here would have done (what an import's
        # step froze too: models/collector.py one_shot)
        gc.unfreeze()
        gc.collect()
    shutdown = getattr(threading, "_shutdown", None)  # joins non-daemon threads, as Python's exit does
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with it closed (`>&-`): nothing was written to it
            continue
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went (`| head`), or the stream was closed
            pass
        except OSError as exc:  # what was left to write did not fit (a full disk): said, and not 0
            if stream is sys.stdout and status == 0:
                status = 1
                try:
                    print(f"evpipe: {exc.strerror or exc}", file=sys.stderr, flush=True)
                except (OSError, ValueError):
                    pass
    os._exit(status)
