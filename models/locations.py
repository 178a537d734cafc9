"""Every path evpipe uses, in one place."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP = "evpipe"


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


def resolve_db(option: str | None) -> str:
    """`--db PATH_OR_URL`, else `EVPIPE_DB`, else the file in the user's data directory.
    Returns an SQLAlchemy URL."""
    target = option or os.environ.get("EVPIPE_DB") or str(default_db_path())
    if "://" in target:
        return target
    return "sqlite:///" + str(Path(target).expanduser().resolve())


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///") :])
    return None


def ensure_private_file(path: Path) -> None:
    """Create the database file (and its folder) readable by its owner only."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def seeds_dir() -> Path:
    """The seeds/ data folder (evpipe.seeds), beside models/ in a checkout and when installed."""
    return Path(__file__).resolve().parent.parent / "seeds"
