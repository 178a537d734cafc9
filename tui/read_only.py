"""The app read-only (`evpipe serve` without `--allow-writes`): which keys write, hidden and refused.

The store refuses every write in a read-only process (models/readonly.py); this is the app's side of
it: the keys that would change something are left out of the footer, and pressing one says why in a
notice instead of starting a change that the store would refuse. Keys are named by their binding
ids (the ids the keymap uses), so a renamed key is still known.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode

from evpipe.models.readonly import READ_ONLY_MESSAGE

#: Every binding that changes the database, by id.
WRITE_KEYS = frozenset(
    {
        "app.import",
        "app.retry_save",
        *(
            f"pipeline.{k}"
            for k in ("advance", "back", "won", "lost", "undo", "add", "edit", "log", "follow_up", "delete")
        ),
        *(f"focus.{k}" for k in ("advance", "back", "won", "lost", "undo")),
        *(
            f"prospect.{k}"
            for k in ("edit", "log", "follow_up", "advance", "back_stage", "won", "lost", "undo", "delete")
        ),
        *(
            f"stages.{k}"
            for k in ("rename", "probability", "move_up", "move_down", "add", "remove", "stale_days", "undo")
        ),
        "stages.kpi_period",
        *(f"board.{k}" for k in ("advance", "back", "won", "lost", "undo")),
        *(f"members.{k}" for k in ("add", "role", "remove", "reps_see")),
        "forecast.target",
        *(f"{screen}.undo_skip" for screen in ("pipeline", "focus", "prospect", "stages", "calibrate")),
        *(f"calibrate.{k}" for k in ("accept", "accept_all", "undo")),
    }
)

#: The notice a write key gives in a read-only app.
READ_ONLY_NOTICE = READ_ONLY_MESSAGE.replace("; nothing was saved", ": that key changes nothing here")

#: The notice `i` gives in a browser's session of `evpipe serve --allow-writes`: the import screen
#: reads any path the server's account may read (its preview showed the lines of a private key),
#: and the browser's user is not that account.
BROWSER_IMPORT_NOTICE = (
    "import: in a browser, evpipe opens no file on the server (its files are not yours to read); "
    "import on the server with: evpipe import FILE"
)


def write_actions(node: DOMNode) -> frozenset[str]:
    """The actions of `node`'s own key bindings that write (as the bindings name them)."""
    return frozenset(
        b.action for b in getattr(type(node), "BINDINGS", []) if isinstance(b, Binding) and b.id in WRITE_KEYS
    )


def writes(node: DOMNode, action: str) -> bool:
    """Whether `action`, run on `node` (a screen, the app), is one of its write keys."""
    return action in write_actions(node)


def hide_write_keys(node: DOMNode) -> None:
    """Leave `node`'s write keys out of its footer: its `check_action` says no to them (the app's
    `run_action` refuses them with a notice before this is asked)."""
    blocked = write_actions(node)
    if not blocked or getattr(node, "_evpipe_read_only", False):
        return
    own = node.check_action

    def check_action(action: str, parameters: tuple[Any, ...]) -> bool | None:
        return False if action in blocked else own(action, parameters)

    node.check_action = check_action  # type: ignore[method-assign]
    node._evpipe_read_only = True  # type: ignore[attr-defined]
    node.refresh_bindings()
