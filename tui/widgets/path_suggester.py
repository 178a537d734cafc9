"""Completing a file's path as it is typed (the import screen's File field).

The Input shows the rest of the first match dimmed after the cursor; `right` (or `end`) takes it.
Folders complete with a trailing `/`, so completing goes on into them; files are offered only when
they are spreadsheets evpipe imports. The folder is listed in a thread, never on the UI's loop.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.suggester import Suggester

#: The files worth completing to.
IMPORTABLE = (".csv", ".xlsx", ".xlsm", ".txt", ".tsv")
#: A folder with more entries than this is read only this far (a completion, not a search).
MOST = 5000


def complete_path(typed: str) -> str | None:
    """`typed` completed to the first entry of its folder that starts with its last part (folders
    first, then importable files, each alphabetically; hidden ones only when the part starts with a
    dot), or None. A `~` stays as typed."""
    if not typed or typed.endswith(os.sep) and not Path(typed).expanduser().is_dir():
        return None
    folder_text, _, start = typed.rpartition(os.sep)
    folder = Path(os.path.expanduser(folder_text + os.sep if folder_text or typed.startswith(os.sep) else "."))
    try:
        entries = []
        with os.scandir(folder) as it:
            for n, entry in enumerate(it):
                if n >= MOST:
                    break
                entries.append(entry)
    except OSError:
        return None
    found: list[tuple[int, str]] = []
    for entry in entries:
        name = entry.name
        if not name.startswith(start) or name == start or (name.startswith(".") and not start.startswith(".")):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            found.append((0, name + os.sep))
        elif name.lower().endswith(IMPORTABLE):
            found.append((1, name))
    if not found:
        return None
    _, best = min(found)
    return typed + best[len(start) :]


class PathSuggester(Suggester):
    """Suggests the rest of a path from the file system (see `complete_path`)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value)


__all__ = ["IMPORTABLE", "PathSuggester", "complete_path"]
