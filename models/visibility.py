"""What a rep may see: everyone's prospects, or only their own (docs/domain.md, "Members and roles").

The owner chooses, for every rep at once (`evpipe members reps-see own|all`, stored as the setting
`reps_see`). The rule is `sees_only`: a rep, when the owner chose "own", sees only the prospects
they own; owners, managers, and everyone on a database without members see all of them.

Only the standard library and models' plain modules: the app asks `reps_see_setting` before its
first screen is painted (one plain query), and only when it says "own" does it open SQLAlchemy to
learn who the user is (models/members.py `visible_owner`).
"""

from __future__ import annotations

from typing import Any

from .rawdb import fetch_all

#: The setting that says what a rep sees: "all" (everyone's prospects, the default) or "own".
REPS_SEE_KEY = "reps_see"
REPS_SEE = ("all", "own")

#: What a screen says when its figures are limited by the owner's setting.
OWN_ONLY_LINE = "your prospects only (the owner's setting)"

#: The same, where a status line of 80 columns has other things to say (the pipeline's, the
#: board's): why is said when the rep asks for everyone's (OWN_ONLY_LINE, in the notice).
OWN_ONLY_SHORT = "your prospects only"


def reps_see_value(value: object) -> str:
    """The setting as stored, read: 'own', or 'all' for anything else (not set, unknown)."""
    return str(value) if value in REPS_SEE else "all"


def sees_only(who: str, role: str | None, reps_see: str) -> str | None:
    """The one owner whose prospects `who` may see: their own name, for a rep when the owner chose
    'own'; else None (everyone's)."""
    return who if role == "rep" and reps_see == "own" else None  # "rep": models/roles.py REP


def reps_see_setting(source: Any) -> str:
    """What reps see on this database ('all' or 'own'), read with one plain query (`source`: an
    engine, a connection or models.rawdb's SqliteReader)."""
    found = fetch_all(source, "SELECT value FROM setting WHERE key = :key", {"key": REPS_SEE_KEY})
    return reps_see_value(found[0][0] if found else None)


def any_members(source: Any) -> bool:
    """Whether the database has members at all (one plain query): without any, no one is a rep and
    everyone sees every prospect (`sees_only` with no role)."""
    return bool(fetch_all(source, "SELECT 1 FROM member LIMIT 1"))


__all__ = [
    "OWN_ONLY_LINE",
    "OWN_ONLY_SHORT",
    "REPS_SEE",
    "REPS_SEE_KEY",
    "any_members",
    "reps_see_setting",
    "reps_see_value",
    "sees_only",
]
