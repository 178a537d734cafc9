"""Writing an output file (export, dump, backup): private, and whole or not at all.

The file is written beside its destination as `.NAME.part`, created readable by its owner only
(like the database: an export holds the same customers and amounts), and moved into place only
when it is complete. Any failure, a full disk included, removes the partial file and says what
happened in one line; nothing half-written is ever left behind.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DomainError
from .share import COMPANIONS, output_mode

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_failure(exc: OSError) -> str:
    """Why writing a file failed, in words."""
    if exc.errno in _NO_ROOM:
        return "there is no room left on the disk (free some space and try again)"
    if exc.errno in _NOT_ALLOWED:
        return "you may not write there (choose a folder of your own)"
    return exc.strerror or str(exc)


def check_destination(dest: str | Path, what: str, *, force: bool, database: Path | None = None) -> Path:
    """The checks every output file (export, dump, backup) goes through before anything is
    written, in one place: not a folder; not the database or one of SQLite's working files beside
    it (`database`: an SQLite database's file; writing over its -wal or -journal loses or
    corrupts what it holds, even with --force); an existing file only with `force`, and only a
    regular file (never a device, a pipe or a socket, which --force would otherwise replace) with
    no SQLite -wal or -journal beside it (another database, in use); in a folder that exists.
    Returns the path, with ~ expanded."""
    dest = Path(dest).expanduser()
    if dest.is_dir():
        raise DomainError(f"{what}: {dest} is a folder; give a file name", field="file")
    if database is not None and _is_working_file(dest, database):
        raise DomainError(
            f"{what}: {dest} is the database itself or a file SQLite keeps beside it; choose another name",
            field="file",
        )
    try:
        mode = os.stat(dest).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise DomainError(f"{what}: could not look at {dest}: {write_failure(exc)}", field="file") from None
    if mode is not None:
        if not stat.S_ISREG(mode):
            raise DomainError(
                f"{what}: {dest} is not a plain file (a device, a pipe or a socket); give a file name", field="file"
            )
        if not force:
            raise DomainError(f"{what}: {dest} exists; choose another name or add --force", field="file")
        journal = _live_journal(dest)
        if journal is not None:
            raise DomainError(
                f"{what}: {dest} is an SQLite database in use, or left with changes not yet in it ({journal} "
                "beside it): replacing it would lose them and damage the new file; close what has it open, "
                "or choose another name",
                field="file",
            )
    if not dest.parent.exists():
        raise DomainError(f"{what}: the folder {dest.parent} does not exist", field="file")
    return dest


def _live_journal(dest: Path) -> Path | None:
    """The -wal or -journal file beside `dest`, when there is one: `dest` is then an SQLite
    database someone has open (or one a crash left with changes in it). Moving a new file into
    its place even with --force lost the writes of whoever had it open, and SQLite then read that
    old -wal into the new file, damaging it."""
    for suffix in ("-wal", "-journal"):
        beside = Path(f"{dest}{suffix}")
        if beside.exists():
            return beside
    return None


def _is_working_file(dest: Path, database: Path) -> bool:
    """Whether `dest` is `database` or one of its SQLite working files, by name (links resolved)
    or, for a file that exists, by being the same file (a hard link)."""
    base = str(database.expanduser().resolve())
    names = ("", *COMPANIONS)
    target = dest.resolve()
    if any(target == Path(base + suffix) for suffix in names):
        return True
    for suffix in names:
        try:
            if os.path.samefile(dest, base + suffix):
                return True
        except OSError:
            continue
    return False


@contextmanager
def private_output(dest: Path, what: str) -> Iterator[Path]:
    """Yield the temporary path to write `dest` through; move it into place when the block ends
    without error. `what` names the command in messages ('export', 'dump', 'backup')."""
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        tmp.unlink(missing_ok=True)
        mode = output_mode(dest)  # the owner's; group-readable too in a folder shared with a group
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, mode)
        os.close(fd)
        os.chmod(tmp, mode)  # whatever the umask
        yield tmp
        os.replace(tmp, dest)
    except OSError as exc:
        raise DomainError(
            f"{what}: could not write {dest}: {write_failure(exc)}; nothing was written", field="file"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["check_destination", "private_output", "write_failure"]
