"""The user's key remapping: an optional TOML file of `binding-id = "keys"`.

`models.locations.keymap_path()` (e.g. ~/.config/evpipe/keymap.toml):

    "pipeline.advance" = "right,>"
    "pipeline.lost" = "L"

Every binding in evpipe has an id (the ones in `?`, the help screen); the file remaps them with
Textual's `App.set_keymap`.
"""

from __future__ import annotations

from pathlib import Path

from evpipe.models.errors import DomainError
from evpipe.models.locations import keymap_path


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """The remapping in the keymap file ({} when there is no file). A broken file is a DomainError
    naming the file and the problem."""
    path = path or keymap_path()
    if not path.exists():
        return {}
    import tomllib  # (only when there is a file: most never write one)

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DomainError(f"keymap {path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DomainError(f"keymap {path}: is not valid TOML ({exc})") from None
    keymap: dict[str, str] = {}
    for binding_id, keys in data.items():
        if not isinstance(keys, str) or not keys.strip():
            raise DomainError(f'keymap {path}: {binding_id} should be keys in quotes, e.g. "ctrl+n,>"')
        keymap[str(binding_id)] = ",".join(k.strip() for k in keys.split(",") if k.strip())
    return keymap
