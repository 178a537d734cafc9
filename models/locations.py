"""Every path evpipe uses, in one place, and what is at the database's path before anything opens
it: a missing, empty, foreign or broken file is named in one clear line and left as it was."""

from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_config_path, user_data_path

from .errors import DomainError, database_failure, integrity_hint
from .rawdb import FileLook, look_inside, quick_check, sqlite_file
from .share import COMPANIONS, FILE_MODE, is_shared_dir

if TYPE_CHECKING:
    from sqlalchemy import Engine

APP = "evpipe"

#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def data_dir() -> Path:
    return user_data_path(APP, appauthor=False)


def config_dir() -> Path:
    return user_config_path(APP, appauthor=False)


def default_db_path() -> Path:
    return data_dir() / "evpipe.db"


def demo_db_path() -> Path:
    """The demo's own database, rebuilt every time the demo opens; never the user's data."""
    return data_dir() / "demo.db"


def keymap_path() -> Path:
    return config_dir() / "keymap.toml"


def migrations_dir() -> Path:
    return Path(__file__).resolve().parent / "migrations"


def seeds_dir() -> Path:
    """The seeds/ data folder (evpipe.seeds), beside models/ in a checkout and when installed."""
    return Path(__file__).resolve().parent.parent / "seeds"


# ---------------------------------------------------------------- which database


def as_url(target: str) -> str:
    """A path (`~` allowed, relative to the current folder) or a URL, as an SQLAlchemy URL."""
    if "://" in target:
        return target
    return "sqlite:///" + str(Path(target).expanduser().resolve())


def resolve_db(option: str | None) -> str:
    """`--db PATH_OR_URL`, else `EVPIPE_DB`, else the file in the user's data directory.
    Returns an SQLAlchemy URL. An empty `--db` is refused: it is most often a script's unset
    variable, and used to open the user's own pipeline in the data directory instead."""
    if option is not None and not option.strip():
        raise DomainError("--db is empty; give a database file or URL", field="db")
    url = as_url(option or os.environ.get("EVPIPE_DB") or str(default_db_path()))
    if url.split("?")[0] in ("sqlite://", "sqlite:///:memory:"):  # ("added", and gone with the command)
        raise DomainError(f"{url} is a database in memory, gone when evpipe ends; give a file", field="db")
    return url


def demo_url(option: str | None) -> str:
    """The demo's database: `--db` when given, else its own file in the data directory. Never
    `EVPIPE_DB`, which names the user's own pipeline."""
    return as_url(option) if option else as_url(str(demo_db_path()))


#: The file of an SQLite URL (None for another database or an in-memory one): rawdb's rule.
sqlite_path = sqlite_file


def database_file(engine: Engine) -> Path | None:
    """The file of an SQLite engine's database (None for PostgreSQL or an in-memory one)."""
    return sqlite_file(engine.url.render_as_string(hide_password=False))


def is_default_location(url: str) -> bool:
    """True for the default database, the only file evpipe creates without being asked (any other
    path that does not exist is more likely a typing mistake). The demo makes its own."""
    path = sqlite_path(url)
    return path is not None and path == default_db_path().resolve()


def creates_silently(url: str) -> bool:
    """True when opening `url` may create its database without asking: the default location, with
    no file there yet. An empty file there is not made a database unasked (`evpipe init` does it)."""
    path = sqlite_path(url)
    return is_default_location(url) and path is not None and not path.exists()


def db_label(url: str) -> str:
    """How the app names the open database: the file's name, or the URL without its password."""
    path = sqlite_path(url)
    if path is not None:
        label = path.name
    elif "@" in url and "://" in url:  # scheme://user:password@host/db -> scheme://host/db
        scheme, _, rest = url.partition("://")
        label = f"{scheme}://{rest.rpartition('@')[2]}"
    else:
        label = url
    return "".join(c if c.isprintable() else "?" for c in label)


def ensure_private_file(path: Path) -> None:
    """Create the database file (and its folder) readable by its owner only, or by its owner and
    the folder's group in a folder shared with a group (models/share.py)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = FILE_MODE if is_shared_dir(path.parent) else 0o600
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, mode)
    os.close(fd)
    os.chmod(path, mode)


# ---------------------------------------------------------------- what is at the path


class DatabaseProblem(DomainError):
    """The database cannot be opened as it is (its message names the file and the next step).
    Nothing was changed."""


class NoDatabase(DatabaseProblem):
    """No database there yet: the file does not exist, or is empty. `evpipe init` makes one."""


def known_revisions() -> set[str]:
    """The schema revisions this evpipe knows (its migrations, named `NNNN_what.py`)."""
    return {p.name.split("_", 1)[0] for p in (migrations_dir() / "versions").glob("[0-9]*_*.py")}


def _init_hint(path: Path) -> str:
    return f"evpipe init {shlex.quote(str(path))}"


#: Files whose first bytes were read, by (device, inode): the descriptor stays open for the
#: process's life. Closing any descriptor of a file drops every POSIX lock this process holds on
#: it, SQLite's included: another evpipe closing the database would then take this process's
#: connections for gone and remove the write-ahead log under them. So a file SQLite may have open
#: here is read through a descriptor that is never closed (one per file, a few bytes each).
_HEAD_FDS: dict[tuple[int, int], int] = {}


def read_head(path: Path, size: int) -> bytes:
    """The first `size` bytes of the file at `path`, read without ever closing a descriptor of
    it (see _HEAD_FDS). OSError when it cannot be read."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    fd = _HEAD_FDS.get(key)
    if fd is None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        _HEAD_FDS[key] = fd
    return os.pread(fd, size, 0)


def _usable(companion: Path) -> bool:
    """Whether SQLite's file beside the database can be read and written, or is not there."""
    return not companion.exists() or os.access(companion, os.R_OK | os.W_OK)


def discard_new_database(path: Path) -> None:
    """Remove the database file a command created at `path`, and SQLite's files beside it, when
    the command then failed with nothing written (restore, migrate): all or nothing leaves no
    empty database behind for the next command to take for the real one."""
    for leftover in (path, *(Path(f"{path}{suffix}") for suffix in COMPANIONS)):
        leftover.unlink(missing_ok=True)


def _on_read_only_mount(path: Path) -> bool:
    """Whether `path` lies on a file system mounted read-only, where no chmod makes it writable
    (the advice evpipe gave for it)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_database(url: str, *, create: bool = False) -> FileLook | None:
    """Make sure `url` is a database evpipe can open, without changing anything: raises NoDatabase
    for a file that does not exist or is empty (unless `create`: the caller was asked to make one),
    and DatabaseProblem for a folder, a file evpipe cannot read or write, a file that is not an
    SQLite database, an SQLite database that is not evpipe's, or one written by a newer evpipe.
    Returns what is inside (None for a file still to be made, or a URL that is not a file)."""
    path = sqlite_path(url)
    if path is None:
        return None
    try:
        path.stat()
    except PermissionError:
        raise DatabaseProblem(
            f"cannot reach {path}: permission denied on its folder; ask the folder's owner for access "
            "(for a team: evpipe share FOLDER --group GROUP)"
        ) from None
    except OSError:
        pass
    if not path.exists():
        if create:
            return None
        folder = "" if path.parent.is_dir() else f" (nor the folder {path.parent})"
        raise NoDatabase(
            f"there is no database at {path}{folder}; check the path, or create one there with: {_init_hint(path)}"
        )
    if path.is_dir():
        raise DatabaseProblem(
            f"{path} is a folder, not a database file; give a file in it, "
            f"e.g. {path / 'evpipe.db'} (to create it: {_init_hint(path / 'evpipe.db')})"
        )
    if not path.is_file():  # reading a named pipe waits for a writer forever; /dev/null reads as empty
        raise DatabaseProblem(
            f"{path} is not a file but a device, a named pipe or a socket; give an evpipe database file "
            "(nothing was changed)"
        )
    if not os.access(path, os.R_OK):
        raise DatabaseProblem(
            f"cannot read {path} (permission denied); evpipe needs to read and write it: "
            "ask its owner, or run chmod u+rw on it if it is yours"
        )
    if not os.access(path, os.W_OK):
        if _on_read_only_mount(path):
            raise DatabaseProblem(
                f"{path} is on a file system mounted read-only (a snapshot, a CD, a read-only share); evpipe "
                "needs to write to it: copy it to a folder you can write in and open the copy (nothing was changed)"
            )
        raise DatabaseProblem(
            f"{path} is read-only; evpipe needs to write to it: run chmod u+w on it if it is yours, "
            "or ask its owner (nothing was changed)"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK) and not all(
        Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm")
    ):
        raise DatabaseProblem(
            f"cannot write in the folder {path.parent}, where evpipe keeps the journal files of "
            f"{path.name}; ask the folder's owner, or move the database to a folder you can write in"
        )
    for companion in (Path(f"{path}{suffix}") for suffix in COMPANIONS):
        # SQLite deletes these files when its last connection to the database closes, which another
        # thread or session may do at any moment: a file that went between the two looks is not a
        # refusal (it failed as unwritable a test now and then), so it is looked at again
        if not _usable(companion) and not _usable(companion):  # a second look: see above
            raise DatabaseProblem(
                f"{companion} (SQLite's file beside the database) is not writable for you, so the database "
                f"cannot be opened; its owner can fix the folder with: evpipe share {shlex.quote(str(path.parent))} "
                "--group GROUP"
            )
    header = read_head(path, len(SQLITE_HEADER))
    if not header:
        if create:
            return None
        raise NoDatabase(
            f"{path} is an empty file, not an evpipe database; check the path, or make it one with: {_init_hint(path)}"
        )
    if header != SQLITE_HEADER:
        raise DatabaseProblem(
            f"{path} is not a database (not an SQLite file); check the path given by --db or EVPIPE_DB"
        )
    short = _cut_short(path)
    if short:
        raise DatabaseProblem(f"{path} is damaged ({short}); {integrity_hint(path)}; nothing was changed")
    try:
        look = look_inside(path)
    except sqlite3.Error as exc:
        if "locked" in str(exc):
            raise DatabaseProblem(f"{path} is locked by another program ({exc}); try again in a moment") from None
        said = database_failure(exc, path)
        if said is not None and not said.startswith(f"{path} is damaged"):  # (a full disk: not the file)
            raise DatabaseProblem(said) from None
        raise DatabaseProblem(
            f"{path} is damaged (SQLite: {exc}); {integrity_hint(path)}; nothing was changed"
        ) from None
    except UnicodeDecodeError:  # SQLite's own message quotes the damaged bytes
        raise DatabaseProblem(
            f"{path} is damaged (SQLite cannot read its schema); {integrity_hint(path)}; nothing was changed"
        ) from None
    if not look.tables:
        if create:
            return look
        raise NoDatabase(
            f"{path} is an empty SQLite database, not yet evpipe's; check the path, or make it one with: "
            f"{_init_hint(path)}"
        )
    if look.revision is None:
        raise DatabaseProblem(
            f"{path} is an SQLite database but not evpipe's (it has other tables); check the path, "
            f"or start a new one with: evpipe init NEW.db"
        )
    known = known_revisions()
    if look.revision not in known:
        raise DatabaseProblem(
            f"{path} was written by a newer evpipe (schema {look.revision}; this one knows up to "
            f"{max(known)}); upgrade evpipe to open it (pip install -U evpipe), nothing was changed"
        )
    return look


def _cut_short(path: Path) -> str | None:
    """Why the file is shorter than its own header says (a copy cut off, a disk that filled up),
    or None. The header's page count is trusted only as SQLite trusts it (its "valid for" counter
    matches the change counter), and only with no write-ahead log beside the file, which may hold
    pages the file has not got yet."""
    try:
        if Path(f"{path}-wal").stat().st_size > 0:
            return None
    except FileNotFoundError:  # none, or SQLite's last connection just folded it into the file
        pass
    header = read_head(path, 100)
    size = path.stat().st_size
    if len(header) < 100:
        return f"cut short: {size} bytes, less than an SQLite header"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return None  # not a page size: SQLite says what is wrong
    pages = int.from_bytes(header[28:32], "big")
    trusted = header[24:28] == header[92:96] and pages > 0
    if trusted and size < pages * page_size:
        return f"cut short: {size:,} bytes of the {pages * page_size:,} it should have"
    if size % page_size:
        return f"cut short: {size:,} bytes, not a whole number of {page_size}-byte pages"
    return None


def damaged_pages(url: str) -> str | None:
    """A full look at every page of the database at `url` (SQLite's quick check), for a background
    check: the one line to show when some are damaged, else None. Nothing is changed."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    try:
        found = quick_check(path)
    except sqlite3.Error as exc:
        found = [str(exc)]
    if not found:
        return None
    first = " ".join(found[0].replace("*** in database main ***", "").split())
    if len(first) > 100:  # (cut at a word: "... error code 11 On tre" read as a word of its own)
        first = first[:100].rsplit(" ", 1)[0] + " ..."
    return f"{path} is damaged (SQLite: {first}); {integrity_hint(path)}"
