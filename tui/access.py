"""The typed way for screens and widgets to reach the app: `evpipe_app(self).store`.

Textual types `self.app` as a plain App; the app's own parts (store, engine, reader, who, saver,
data_changed ...) are reached through this, so that a type checker knows them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from .app import EvpipeApp


def evpipe_app(node: DOMNode) -> EvpipeApp:
    """The EvpipeApp `node` runs in."""
    return cast("EvpipeApp", node.app)


__all__ = ["evpipe_app"]
