"""The typed way for screens and widgets to reach the app: `evpipe_app(self).store`.

Textual types `self.app` as a plain App; the app's own parts (store, engine, reader, who, saver,
data_changed ...) are reached through this, so that a type checker knows them. `EvpipeParts`
describes them as a protocol, so this module does not import the app (which imports the
screens): no import cycle, not even one for typing only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from textual.dom import DOMNode
    from textual.signal import Signal

    from evpipe.models.records import ChangeResult
    from evpipe.models.store import Store

    from .messages import RemoteChanges
    from .saving import Saver


class EvpipeParts(Protocol):
    """What screens and widgets use of EvpipeApp, beyond Textual's App."""

    who: str
    saver: Saver
    scope_owner: str | None
    data_changed_signal: Signal[ChangeResult | None]
    remote_changed_signal: Signal[RemoteChanges]

    @property
    def engine(self) -> Engine: ...

    @property
    def store(self) -> Store: ...

    @property
    def reader(self) -> Any: ...

    def data_changed(self, result: ChangeResult | None) -> None: ...

    def decide_scope(self) -> str | None: ...

    def keep_month_starts(self) -> None: ...

    def say_database_problem(self, message: str, opening: bool = True) -> None: ...

    def database_answers(self) -> None: ...

    def freeze_after_full_pass(self) -> None: ...


def evpipe_app(node: DOMNode) -> EvpipeParts:
    """The EvpipeApp `node` runs in, typed by the parts screens use."""
    return cast("EvpipeParts", node.app)


__all__ = ["EvpipeParts", "evpipe_app"]
