"""The stage keys (advance, back, won, lost) where a list of prospects has a cursor."""

from __future__ import annotations


class StageKeys:
    """Mixin for a screen with `_current()` (the cursor's prospect, with a `name`, or None after
    telling the user) and `_move(target, reason=None)` (save a stage move)."""

    def action_advance(self) -> None:
        self._move("next")

    def action_back(self) -> None:
        self._move("back")

    def action_won(self) -> None:
        self._move("won")

    def action_lost(self) -> None:
        current = self._current()
        if current is None:
            return
        from ..dialogs import TextPrompt

        def done(reason: str | None) -> None:
            if reason is not None:
                self._move("lost", reason or None)

        self.app.push_screen(
            TextPrompt(
                f"Lost: {current.name}", "Why was it lost? (optional)", placeholder="e.g. went with a competitor"
            ),
            done,
        )
