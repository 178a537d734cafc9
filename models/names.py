"""Which prospect a name typed on the command line means (the one rule; the store applies it).

- A name that matches one prospect's name exactly, ignoring case, is that prospect.
- Otherwise a name that starts one prospect's name, ignoring case, is that prospect
  (`evpipe move harb next` moves "Harbour Cruises" when no other name starts with "harb").
- Several exact matches, or no exact match and several names starting with it, is ambiguous: one
  line lists the candidates (name and id, the first few) and says how to choose.
- None at all: one line that says so and where the names are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import DomainError, NotFound

T = TypeVar("T")

#: How many candidates an ambiguous name lists (the store fetches one more, to know there are more).
SHOWN = 8


def fold(text: str) -> str:
    """A name as it is compared: case ignored (Unicode case folding, so `Ä` matches `ä`)."""
    return text.casefold()


def like_prefix(text: str) -> str:
    """A LIKE pattern for names starting with `text` (with `\\` as the escape character)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


#: What terminals draw in widths of their own: the zero width joiner that makes one glyph of several
#: emoji (a family: two cells in some terminals, six in others), the skin-tone modifiers, the
#: variation selectors that ask for emoji or text presentation (a heart: one cell or two), and the
#: tag characters of a subdivision's flag. rich, which lays out the app's cells, counts a joined
#: sequence as two cells and a heart with its selector as two; xterm and tmux 3.3 did not.
#: A flag (two regional indicators, 🇳🇿) is kept: rich counts each indicator as one cell, and
#: terminals draw the pair in two cells too (tmux 3.3a, xterm and VTE one cell each indicator,
#: kitty, WezTerm and iTerm2 one glyph of two cells), so a flag, or half of one cut off by `fit`,
#: stays where it is counted.
#: The Hangul fillers that rich counts as no cell while terminals draw them blank in one or two
#: (tmux 3.3a: U+3164 in two, the half-width U+FFA0 in one; a name of fillers looks empty) are
#: shown as as many spaces: the blank the name is made of, where the app counts it.
_DRAWN_APART: dict[int, str | None] = {
    **dict.fromkeys([0x200D, 0xFE0E, 0xFE0F, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)]),
    0x3164: "  ",
    0xFFA0: " ",
}


def display_name(text: str) -> str:
    """A name (any user text) as it is shown in columns of cells: without the characters above,
    so that every terminal draws it in the cells the app counts (a family emoji shows as its
    three people, each two cells). Only for display: the name saved stays as it was typed."""
    return text if text.isascii() else text.translate(_DRAWN_APART)


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def resolve_prospect(text: str, candidates: Sequence[T], name_of: Callable[[T], str], id_of: Callable[[T], int]) -> T:
    """The one prospect `text` names among `candidates` (those whose name starts with it, ignoring
    case, as far as the database can tell; compared here again with full case folding)."""
    key = fold(text.strip())
    exact = [c for c in candidates if fold(name_of(c)) == key]
    starting = [c for c in candidates if fold(name_of(c)).startswith(key)]
    if len(exact) == 1:
        return exact[0]
    if not exact and len(starting) == 1:
        return starting[0]
    if not exact and not starting:
        raise NotFound(
            f"prospect: no prospect is named {_shown(text)!r} or has a name starting with it; "
            "`evpipe list` shows names and ids",
            field="prospect",
        )
    several = exact or starting
    listed = ", ".join(f"{name_of(c)} (#{id_of(c)})" for c in several[:SHOWN])
    more = ", ..." if len(several) > SHOWN else ""
    how = "are named" if exact else "have a name starting with"
    raise DomainError(
        f"prospect: {len(several) if len(several) <= SHOWN else f'more than {SHOWN}'} prospects {how} "
        f"{_shown(text)!r}: {listed}{more}; type more of the name or use the id",
        field="prospect",
    )


__all__ = ["SHOWN", "display_name", "fold", "like_prefix", "resolve_prospect"]
