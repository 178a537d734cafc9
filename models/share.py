"""Sharing one database between Unix accounts: a folder a group owns (README, "Sharing with your
team").

A shared folder belongs to the group, is group-writable and setgid (so every file made in it, the
database's `-wal`, `-shm` and `-journal` files included, belongs to the group too); the database
and those files are 0660 (the owner and the group read and write, nobody else). evpipe running on
a database in such a folder sets its umask to 0o007, so that anything it creates there stays
usable by the group, and its own output files there (exports, dumps, backups) are group-readable.

`share` sets a folder up (or repairs one, as far as the caller may: its owner, or root) and
`check_share` says what is wrong with one, each problem with the command that fixes it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import DomainError

#: The database's companion files SQLite makes beside it.
COMPANIONS = ("-wal", "-shm", "-journal")
DIR_MODE = 0o2770
FILE_MODE = 0o660
SHARED_UMASK = 0o007
DB_NAME = "evpipe.db"


def is_shared_dir(folder: Path) -> bool:
    """A folder set up for a group: setgid and group-writable."""
    try:
        st = folder.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_ISGID) and bool(st.st_mode & stat.S_IWGRP)


def use_shared_umask(db_path: Path) -> bool:
    """In a shared folder: set the umask so that new files stay group-usable (0o007). Returns
    whether it did."""
    if is_shared_dir(db_path.parent):
        os.umask(SHARED_UMASK)
        return True
    return False


def output_mode(dest: Path) -> int:
    """The mode of an output file (export, dump, backup): the owner's only, or group-readable too
    in a shared folder."""
    return 0o640 if is_shared_dir(dest.parent) else 0o600


def split_target(target: Path) -> tuple[Path, Path]:
    """(folder, database) of what `evpipe share` was given: a database file (`.db`, or a file that
    exists), else a folder, whose database is `evpipe.db`."""
    target = target.expanduser().resolve()
    if target.is_file() or target.suffix in (".db", ".sqlite", ".sqlite3"):
        return target.parent, target
    return target, target / DB_NAME


def group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise DomainError(
            f"share: there is no group {group!r}; create it (sudo groupadd {shlex.quote(group)}) and add each "
            f"user to it (sudo usermod -aG {shlex.quote(group)} USER)",
            field="group",
        ) from None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def in_group(gid: int) -> bool:
    return os.geteuid() == 0 or gid in os.getgroups() or os.getegid() == gid


@dataclass(frozen=True)
class Problem:
    path: Path
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}; fix: {self.fix}"


def check_share(folder: Path, db: Path, group: str) -> list[Problem]:
    """What stops the group from using the database in `folder`, each with its fix (empty: the
    setup is right)."""
    gid = group_id(group)
    g = shlex.quote(group)
    problems: list[Problem] = []
    me = _user_name(os.geteuid())
    if not in_group(gid):
        problems.append(
            Problem(Path(me), f"you are not in the group {group}", f"sudo usermod -aG {g} {me}, then log in again")
        )
    try:
        st = folder.stat()
    except FileNotFoundError:
        return [
            *problems,
            Problem(folder, "the folder does not exist", f"evpipe share {shlex.quote(str(folder))} --group {g}"),
        ]
    except PermissionError:
        return [*problems, Problem(folder, "you cannot reach the folder (permission denied)", "ask its owner")]
    q = shlex.quote(str(folder))
    if not stat.S_ISDIR(st.st_mode):
        return [*problems, Problem(folder, "is not a folder", "give the folder that holds the database")]
    if st.st_gid != gid:
        problems.append(
            Problem(folder, f"belongs to the group {_group_name(st.st_gid)}, not {group}", f"chgrp {g} {q}")
        )
    if not st.st_mode & stat.S_ISGID:
        problems.append(Problem(folder, f"is not setgid, so new files would not belong to {group}", f"chmod g+s {q}"))
    if st.st_mode & 0o070 != 0o070:
        problems.append(
            Problem(
                folder,
                f"the group cannot read, write and enter it (mode {stat.filemode(st.st_mode)}); SQLite makes its "
                "-wal and -shm files there",
                f"chmod g+rwx {q}",
            )
        )
    if st.st_mode & 0o007:
        problems.append(Problem(folder, "anyone on the machine can look into it", f"chmod o-rwx {q}"))
    for path in (db, *(Path(f"{db}{s}") for s in COMPANIONS)):
        try:
            fst = path.stat()
        except FileNotFoundError:
            if path == db:
                problems.append(Problem(db, "there is no database yet", f"evpipe share {q} --group {g}"))
            continue
        except PermissionError:
            problems.append(Problem(path, "you cannot reach it (permission denied)", "ask the folder's owner"))
            continue
        p = shlex.quote(str(path))
        if fst.st_gid != gid:
            problems.append(
                Problem(path, f"belongs to the group {_group_name(fst.st_gid)}, not {group}", f"chgrp {g} {p}")
            )
        if fst.st_mode & 0o060 != 0o060:
            problems.append(
                Problem(
                    path,
                    f"the group cannot read and write it (mode {stat.filemode(fst.st_mode)}, owner "
                    f"{_user_name(fst.st_uid)})",
                    f"chmod g+rw {p}",
                )
            )
        if fst.st_mode & 0o007:
            problems.append(Problem(path, "anyone on the machine can read it", f"chmod o-rwx {p}"))
    return problems


def share(target: Path, group: str) -> tuple[Path, list[str], list[Problem]]:
    """Set up (or repair) `target` for `group`: the folder (made if missing) group-owned, setgid
    and 0770, the database (made if missing, by the caller: see `evpipe share`) and its companion
    files group-owned and 0660. Returns the database's path, what was done, and what is still
    wrong (changes the caller may not make: another user's files, a group they are not in)."""
    folder, db = split_target(target)
    gid = group_id(group)
    if not in_group(gid):
        raise DomainError(
            f"share: you are not in the group {group}; ask an administrator: sudo usermod -aG "
            f"{shlex.quote(group)} {_user_name(os.geteuid())} (then log in again)",
            field="group",
        )
    done: list[str] = []
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        done.append(f"made the folder {folder}")
    for path, mode in ((folder, DIR_MODE), (db, FILE_MODE), *((Path(f"{db}{s}"), FILE_MODE) for s in COMPANIONS)):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        try:
            if st.st_gid != gid:
                os.chown(path, -1, gid)
                done.append(f"{path}: group {group}")
            if stat.S_IMODE(st.st_mode) != mode:
                os.chmod(path, mode)
                done.append(f"{path}: mode {stat.filemode(mode | stat.S_IFMT(st.st_mode))}")
        except PermissionError:
            pass  # not ours to change: check_share names it, with its fix
    return db, done, check_share(folder, db, group)


__all__ = [
    "COMPANIONS",
    "Problem",
    "check_share",
    "group_id",
    "is_shared_dir",
    "output_mode",
    "share",
    "split_target",
    "use_shared_umask",
]
