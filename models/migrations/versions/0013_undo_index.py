"""ix_change_event_undoes: the journal's entries that undo a move, few, found without the journal

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

The review's balance of activity leaves out moves that were undone and their undos (models/undone.py
UNDONE_MOVES_SQL), found from the undo side: the entries with `undoes_id`. Without an index that
read went through the whole journal (a million prospects in daily use: 0.33 s of the review's
seconds). A partial index holds only those entries: nothing to keep up for any other change.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0013'
down_revision: Union[str, None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index(
        'ix_change_event_undoes',
        'change_event',
        ['undoes_id'],
        unique=False,
        sqlite_where=sa.text('undoes_id IS NOT NULL'),
        postgresql_where=sa.text('undoes_id IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_change_event_undoes', table_name='change_event')
