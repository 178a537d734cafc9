"""stage_change.inferred: the open stage of a history row is the importer's guess

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

An imported won or lost row whose file does not say which stage it closed from is created on a
stage the importer chose (docs/import.md, "Won and lost rows") and moved to won or lost from it.
Both history rows are now marked `inferred`, and sighting in does not learn from them.

Databases imported before this revision get the same marks: an import that creates a closed
prospect writes its "new" journal entry and its win or loss one after the other (consecutive ids,
same prospect, both action "import"), which a re-import's move never does. Whether that import
was given --closed-from is not recorded, so such rows are all taken as guesses: sighting in
learns less from them, never something the file did not say.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


_IMPORTED_CLOSED = """
SELECT c.id AS closing, n.id AS created
  FROM change_event c
  JOIN change_event n ON n.id = c.id - 1 AND n.prospect_id = c.prospect_id
 WHERE c.action = 'import' AND c.category IN ('win', 'lose')
   AND n.action = 'import' AND n.category = 'new'
"""


def upgrade() -> None:
    with op.batch_alter_table('stage_change', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inferred', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        sa.text(
            f"UPDATE stage_change SET inferred = :yes WHERE event_id IN (SELECT closing FROM ({_IMPORTED_CLOSED}) x) "
            f"OR event_id IN (SELECT created FROM ({_IMPORTED_CLOSED}) y)"
        ).bindparams(yes=True)
    )


def downgrade() -> None:
    with op.batch_alter_table('stage_change', schema=None) as batch_op:
        batch_op.drop_column('inferred')
