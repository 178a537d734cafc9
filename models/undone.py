"""Which stage changes are of a move that was undone, or of the move that undid one: the one rule
(`undone_move`), in its two forms.

Apart from the journal writer (models/journal.py, which re-exports them and is where the rule is
read) so that what only reads the history (the review's balance of activity) imports no SQLModel
with them, as models/bridge.py is.

An undo of a move is journalled as a move that `undoes` it, and the move undone is marked
`undone_by` it (`SessionJournal.event` writes both ends at once); an undo is never undone itself.
"""

from __future__ import annotations


def undone_move(change: str) -> str:
    """Whether the stage change `change` (its table's name or alias in the query) is of a move that
    was undone, or of the move that undid one, as a SQL condition: the one rule.

    Both stay in the history (undo never erases, and between them the prospect stood on the other
    stage: the pipeline as it stood, models/replay.py, walks them), but for what the history tells
    of the prospect's way through the ladder it never left its stage: neither ends a stay nor
    starts one (`restay`, `last_change`: its time on the stage runs on from when it entered it),
    and neither is evidence of where an outcome closed from (models/calibration.py). An undo of a
    move is journalled as a move that `undoes` it; a skipped one (`undo --skip`) stands."""
    return (
        f"EXISTS (SELECT 1 FROM change_event um WHERE um.id = {change}.event_id AND um.action = 'move' "
        "AND (um.undoes_id IS NOT NULL OR EXISTS (SELECT 1 FROM change_event ub "
        "WHERE ub.id = um.undone_by_id AND ub.action = 'move')))"
    )


#: `undone_move`'s second form, for a query that reads many stage changes (a quarter's, the review's
#: balance of activity): the ids of the stage changes it holds for, as a SELECT, found from the
#: undo side, the few moves that undid one (`undoes_id`) with the move each undid, and their stage
#: changes by the prospect's history (a move's change is of the move's prospect): the same changes
#: as the first form, as both ends of an undo are written at once (module docstring). The first form
#: looks up each change's journal entry, a table lookup a row, where the review reads the changes
#: from an index that holds every column it reads (ix_stage_change_at); this form reads the journal
#: once, and the changes kept out by their id (in every SQLite index).
UNDONE_MOVES_SQL = (
    "SELECT usc.id FROM change_event ub JOIN change_event um ON um.id = ub.undoes_id "
    "JOIN stage_change usc ON usc.prospect_id = ub.prospect_id AND usc.event_id IN (ub.id, um.id) "
    "WHERE ub.undoes_id IS NOT NULL AND ub.action = 'move' AND um.action = 'move' AND um.undone_by_id = ub.id"
)
