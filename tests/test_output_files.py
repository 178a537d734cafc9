"""Every output file (export, dump, backup) is private like the database, and a write that fails,
a full disk included, leaves nothing behind and says so in one line (issue 15, points 8 and 9)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evpipe.models.store import Store
from evpipe.tui.cli import main


@pytest.fixture
def filled(engine):
    store = Store(engine, who="tester")
    for i in range(400):
        store.add(f"Prospect {i:03d}", str(1000 + i), "Enquiry", notes="a note long enough to fill a file " * 3)
    return engine


@pytest.mark.parametrize(
    "command, name", [("export", "out.csv"), ("export", "out.xlsx"), ("dump", "out.json"), ("backup", "copy.db")]
)
def test_output_files_are_owner_only_whatever_the_umask(filled, tmp_path: Path, command: str, name: str):
    url = filled.url.render_as_string(hide_password=False)
    dest = tmp_path / name
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(main, ["--db", url, command, str(dest)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize(
    "command, name", [("export", "out.csv"), ("export", "out.xlsx"), ("dump", "out.json"), ("backup", "copy.db")]
)
def test_a_write_that_runs_out_of_room_leaves_nothing_and_says_so(filled, tmp_path: Path, command: str, name: str):
    """The disk 'fills up' after 20 kB: the process may not grow any file beyond that (RLIMIT_FSIZE)."""
    url = filled.url.render_as_string(hide_password=False)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / name
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
        "from evpipe.tui.cli import main\n"
        "sys.argv = ['evpipe', *sys.argv[1:]]\n"
        "main()\n"
    )
    # the database is read before the limit matters: it is larger than 20 kB already
    proc = subprocess.run(
        [sys.executable, "-c", code, "--db", url, command, str(dest)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "nothing was written" in lines[0]
    assert "no room left on the disk" in lines[0] or "the disk refused the write (is it full" in lines[0]
    assert list(out.iterdir()) == []  # no file, no .part
