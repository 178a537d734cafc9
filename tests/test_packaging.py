"""The wheel installs one top-level package, `evpipe`: nothing named `models`, `tui` or `seeds` that
another package in the same environment could shadow or merge into."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        cwd=out,
    )
    (built,) = out.glob("evpipe-*.whl")
    return built


def test_the_wheel_has_exactly_one_top_level_package(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        top_level = z.read(f"{info}/top_level.txt").decode().split()
    assert top == {"evpipe"}
    assert top_level == ["evpipe"]
    # What the program needs at run time is inside, and nothing of the checkout's other folders.
    for needed in (
        "evpipe/__init__.py",
        "evpipe/models/ladder.py",
        "evpipe/models/migrations/script.py.mako",
        "evpipe/models/migrations/versions/0001_initial_schema.py",
        "evpipe/tui/app.tcss",
        "evpipe/seeds/ladder.json",
        "evpipe/seeds/demo.json",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("evpipe/tests/", "evpipe/benchmarks/", "evpipe/docs/"))]


def test_the_installed_wheel_runs_from_its_own_copy(wheel: Path, tmp_path: Path):
    """Installed (not editable), `evpipe --help` works and the code comes from site-packages."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import evpipe, evpipe.models.locations as loc; print(evpipe.__file__); "
        "print((loc.seeds_dir() / 'ladder.json').is_file())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    ).stdout.split()
    assert out[0].startswith(str(target)), out
    assert out[1] == "True"
    helped = subprocess.run(
        [sys.executable, "-m", "evpipe.tui.cli", "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert helped.returncode == 0, helped.stderr
    assert "evpipe" in helped.stdout and "import" in helped.stdout
