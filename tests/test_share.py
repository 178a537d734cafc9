"""Sharing one database between Unix accounts (issue 11, point 6): `evpipe share` sets a folder up
for a group and checks one; two real accounts write through the command line and read each
other's changes; an account that may not open the file gets one clear line.

The two-account test needs root (it creates two users and a group, and removes them afterwards,
even when the test fails). CI runs the suite as root; run as anyone else, that test fails with a
clear message under CI=true, and otherwise tests what one account can (the setup and its checks on
files this user owns) and says, as a warning, what it left out.

The accounts must be able to run this checkout's evpipe. Its virtualenv's interpreter usually
lives under /root (pyenv), which other accounts cannot enter; the test then runs the system's
python of the same version (the venv's packages are built for that ABI) with the venv's
site-packages added. If the checkout or the venv is itself under a folder the accounts cannot enter
(a clone in /root), the test grants search permission (o+x, never read) on those folders for its
duration and puts the modes back afterwards.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from evpipe.models.share import check_share, is_shared_dir, output_mode
from evpipe.tui.cli import main

ROOT = os.geteuid() == 0
CHECKOUT = Path(__file__).resolve().parent.parent
SITE = Path(sysconfig.get_paths()["purelib"])


def run(*args: str, code: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout, result.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _umask_back():
    """evpipe sets a group-usable umask on a database in a shared folder (for the whole process,
    as it should); the tests after these get theirs back."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


# ---------------------------------------------------------------- what one account can test


def test_share_sets_up_a_folder_for_a_group_and_explains_what_is_wrong(tmp_path):
    group = grp.getgrgid(os.getegid()).gr_name  # a group this user is in
    folder = tmp_path / "team"
    out, _ = run("share", str(folder), "--group", group)
    db = folder / "evpipe.db"
    assert f"{db} is shared with the group {group}" in out
    assert mode(folder) == 0o2770 and folder.stat().st_gid == os.getegid()
    assert mode(db) == 0o660
    assert is_shared_dir(folder)
    assert check_share(folder, db, group) == []
    # the app and the CLI write there with a group-usable umask: SQLite's files stay 0660
    run("--db", str(db), "add", "Acme", "--value", "1000")
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{db}{suffix}")
        if companion.exists():
            assert mode(companion) == 0o660, suffix
    # evpipe's own output files are group-readable in a shared folder, owner-only elsewhere
    assert output_mode(folder / "x.csv") == 0o640 and output_mode(tmp_path / "x.csv") == 0o600
    run("--db", str(db), "export", str(folder / "all.csv"))
    assert mode(folder / "all.csv") == 0o640
    # a broken setup: each problem with its fix, one line each, exit 1
    os.chmod(folder, 0o0755)
    os.chmod(db, 0o644)
    result = CliRunner().invoke(main, ["share", str(folder), "--group", group, "--check"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any("is not setgid" in x and f"fix: chmod g+s {folder}" in x for x in lines)
    assert any("the group cannot read, write and enter it" in x and "chmod g+rwx" in x for x in lines)
    assert any(f"{db}: the group cannot read and write it" in x and f"chmod g+rw {db}" in x for x in lines)
    assert any(f"{folder}: anyone on the machine can look into it; fix: chmod o-rwx {folder}" in x for x in lines)
    assert any(f"{db}: anyone on the machine can read it" in x for x in lines)
    assert lines[-1] == f"evpipe: 5 problems left: the group {group} cannot share {db} yet"
    # and `share` repairs it
    run("share", str(folder), "--group", group)
    assert mode(folder) == 0o2770 and mode(db) == 0o660
    # a group that does not exist: one line
    _, err = run("share", str(folder), "--group", "no-such-group-" + uuid.uuid4().hex[:6], code=1)
    assert err.startswith("evpipe: share: there is no group") and len(err.splitlines()) == 1


# ---------------------------------------------------------------- two real accounts


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


@pytest.fixture
def accounts():
    """A group and two users in it, with unique names; removed afterwards, even on failure."""
    tag = uuid.uuid4().hex[:6]
    group, users = f"evg{tag}", [f"eva{tag}", f"evb{tag}"]
    made: list[tuple[str, str]] = []
    try:
        _sh("groupadd", group)
        made.append(("groupdel", group))
        for user in users:
            _sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups", group, user)
            made.insert(0, ("userdel", user))
        yield group, users
    finally:
        for command, name in made:
            _sh(command, name, check=False)


def _opened_for_others(paths: list[Path]) -> list[tuple[Path, int]]:
    """Give every folder above `paths` search permission for others (o+x) where it lacks it;
    return what was changed, to put back."""
    changed = []
    for path in paths:
        for folder in [path, *path.parents]:
            if folder.is_dir() and not mode(folder) & stat.S_IXOTH:
                changed.append((folder, mode(folder)))
                os.chmod(folder, mode(folder) | stat.S_IXOTH)
    return changed


class As:
    """Run this checkout's `evpipe` as another account (runuser), with its login name as who."""

    def __init__(self, user: str, python: str, home: Path) -> None:
        self.user, self.python, self.home = user, python, home

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess:
        script = f"import site, sys; site.addsitedir({str(SITE)!r}); from evpipe.tui.cli import main; main()"
        env = [
            "PATH=/usr/bin:/bin",
            f"HOME={self.home}",
            f"XDG_DATA_HOME={self.home}",
            f"EVPIPE_NOW={os.environ['EVPIPE_NOW']}",
        ]
        proc = subprocess.run(
            ["runuser", "-u", self.user, "--", "env", "-i", *env, self.python, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return proc


def _python_for(user: str, home: Path) -> str:
    """An interpreter `user` can run this checkout with (see the module's docstring)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
    for python in candidates:
        if not Path(python).exists():
            continue
        probe = As(user, python, home)
        script = f"import site; site.addsitedir({str(SITE)!r}); import evpipe.tui.cli, sqlalchemy"
        proc = subprocess.run(
            ["runuser", "-u", probe.user, "--", "env", "-i", "PATH=/usr/bin:/bin", python, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode == 0:
            return python
    raise AssertionError(f"no interpreter among {candidates} can run this checkout as {user}")


def test_two_accounts_share_one_database(accounts, tmp_path):
    if not ROOT:
        message = "the two-account test needs root (it creates users and a group); CI runs it as root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        warnings.warn(f"{message}: only the one-account checks ran (test_share_sets_up_...)", stacklevel=1)
        return
    group, (alice, bob) = accounts
    base = Path(tempfile.mkdtemp(prefix="evpipe-share-", dir="/tmp"))
    changed = _opened_for_others([SITE, CHECKOUT])
    try:
        os.chmod(base, 0o755)
        homes = {u: base / f"home-{u}" for u in (alice, bob)}
        for user, home in homes.items():
            home.mkdir()
            shutil.chown(home, user=user)
        python = _python_for(alice, homes[alice])
        as_alice, as_bob = As(alice, python, homes[alice]), As(bob, python, homes[bob])

        # before sharing: alice's own database is hers alone (0600); bob gets one line, no traceback
        private = homes[alice] / "mine.db"
        os.chmod(homes[alice], 0o755)
        as_alice("init", str(private))
        assert mode(private) == 0o600
        denied = as_bob("--db", str(private), "list", code=1)
        assert denied.stderr.startswith(f"evpipe: cannot read {private} (permission denied)")
        assert len(denied.stderr.splitlines()) == 1 and "Traceback" not in denied.stderr

        # root sets the folder up for the group; both accounts write and read each other's changes
        folder = base / "team"
        out, _ = run("share", str(folder), "--group", group)
        db = folder / "evpipe.db"
        assert f"is shared with the group {group}" in out
        assert (mode(folder), grp.getgrgid(folder.stat().st_gid).gr_name) == (0o2770, group)
        as_alice("--db", str(db), "add", "Alpha", "--value", "1000")
        as_bob("--db", str(db), "add", "Bravo", "--value", "2000", "--stage", "Enquiry")
        as_bob("--db", str(db), "move", "Alpha", "next")
        listed = json.loads(as_alice("--db", str(db), "list", "--json").stdout)
        assert {(p["name"], p["owner"], p["stage"]) for p in listed} == {
            ("Alpha", alice, "Enquiry"),
            ("Bravo", bob, "Enquiry"),
        }
        journal = json.loads(as_alice("--db", str(db), "journal", "--json").stdout)
        assert [(e["who"], e["action"], e["prospect"]) for e in journal] == [
            (bob, "move", "Alpha"),
            (bob, "create", "Bravo"),
            (alice, "create", "Alpha"),
        ]
        # every file SQLite made there is the group's and 0660
        for path in folder.iterdir():
            assert grp.getgrgid(path.stat().st_gid).gr_name == group, path
            assert mode(path) == 0o660, (path, oct(mode(path)))
        # roles with real login names: alice makes herself owner and bob a rep; EVPIPE_USER cannot
        # make bob the owner, and a rep's ladder change is refused in one line
        as_alice("--db", str(db), "members", "add", alice, "--role", "owner")
        as_alice("--db", str(db), "members", "add", bob, "--role", "rep")
        refused = as_bob("--db", str(db), "stages", "set", "Suspect", "7", code=1)
        assert refused.stderr == "evpipe: only an owner can change the ladder; you are a rep\n"
        as_alice("--db", str(db), "stages", "set", "Suspect", "7")
        assert "7%" in as_bob("--db", str(db), "stages").stdout
        # the check finds nothing wrong; a file made group-unwritable is named with its fix
        run("share", str(folder), "--group", group, "--check")
        os.chmod(db, 0o600)
        broken = as_bob("--db", str(db), "list", code=1)
        assert broken.stderr.startswith(f"evpipe: cannot read {db} (permission denied)")
        _, err = run("share", str(folder), "--group", group, "--check", code=1)
        assert f"{db}: the group cannot read and write it" in err and f"chmod g+rw {db}" in err
    finally:
        for folder, old in reversed(changed):
            os.chmod(folder, old)
        shutil.rmtree(base, ignore_errors=True)
