"""The stage keys (advance, back, won, lost) where a list of prospects has a cursor."""

from __future__ import annotations


class StageKeys:
    """Mixin for a screen with `_current()` (the cursor's prospect, with a `name`, or None after
    telling the user) and `_move(target, reason=None)` (save a stage move)."""

    def _closed_hint(self, current, target: str) -> str | None:
        """What to do instead when the cursor's prospect is closed and cannot make this move
        (models.ladder.closed_move_hint); a screen whose rows can be closed says it."""
        return None

    def _refused(self, target: str) -> bool:
        current = self._current()
        if current is None:
            return True
        hint = self._closed_hint(current, target)
        if hint is not None:
            self.notify(hint, markup=False, severity="warning", timeout=5)
            return True
        return False

    def action_advance(self) -> None:
        if not self._refused("next"):
            self._move("next")

    def action_back(self) -> None:
        self._move("back")

    def action_won(self) -> None:
        if not self._refused("won"):
            self._move("won")

    def action_lost(self) -> None:
        if self._refused("lost"):
            return
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
