"""Notices that keep showing: a toast taken off its rack takes its holder with it.

Textual (pinned, pyproject.toml) wraps each toast in a ToastHolder. A toast that times out removes
its holder; but when the rack is shown notifications again (`ToastRack.show`) it removes the toasts
of those gone by removing the toast alone, and its empty holder stays on the rack. That happens
whenever a notification leaves the app's list but by its own toast's timer: the app's notices said
again take the place of the same words (`EvpipeApp._on_notify`), those the database answering
again makes untrue go (`on_notices_answered`), and a toast that timed out on another screen. Once
a few empty holders were on the pipeline's rack, no notice showed on it again: a teammate's
burst of changes (`>` and `<` on one prospect, the same words again and again) left the session
showing none for good, "Not saved" included, while the row and the header took a failed save
back without a word. `install` makes the rack remove the holder with the toast.
"""

from __future__ import annotations

from textual.notifications import Notifications
from textual.widgets._toast import Toast, ToastHolder, ToastRack

_textual_show = ToastRack.show


def _show(self: ToastRack, notifications: Notifications) -> None:
    """ToastRack.show, the holders of the toasts it drops removed with them."""
    for toast in self.query(Toast):
        if toast._notification not in notifications and isinstance(toast.parent, ToastHolder):
            toast.parent.remove()
    _textual_show(self, notifications)


def install() -> None:
    """Replace ToastRack.show (EvpipeApp does as it is made; again is harmless)."""
    ToastRack.show = _show  # type: ignore[method-assign]
