"""Store operations: every change a user makes, each one transaction returning plain objects.

Every write records a `ChangeEvent` in the journal with its exact effect on the KPIs
(count, TV in cents, EV in micros) and what undo needs. Every stage move also writes a
`StageChange` (history). Undo never erases: it records the reverse change.

`Store` is put together from its seams: the reads and lookups (store_base.py), prospect writes
(store_prospects.py), ladder writes (store_ladder.py) and undo (store_undo.py); the journal rows
are written by models/journal.py and the ladder's rules come from models/ladder.py.
"""

from __future__ import annotations

from .journal import BridgeCategory
from .records import ActivityInfo, ChangeResult, ProspectInfo, StageChangeInfo, StageInfo, current_user
from .store_ladder import ladder_warnings
from .store_prospects import ACTIVITY_KINDS, MAX_CUSTOM_FIELDS
from .store_undo import Undo
from .values import FULL_BP


class Store(Undo):
    """All reads and writes of prospects and the ladder, for one user.

    Undo builds on the ladder writes, which build on the prospect writes, which build on the
    reads (store_base.StoreBase): one class per seam, each in its own module."""


__all__ = [
    "ACTIVITY_KINDS",
    "FULL_BP",
    "MAX_CUSTOM_FIELDS",
    "ActivityInfo",
    "BridgeCategory",
    "ChangeResult",
    "ProspectInfo",
    "StageChangeInfo",
    "StageInfo",
    "Store",
    "current_user",
    "ladder_warnings",
]
