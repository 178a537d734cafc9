"""kpi_snapshot.server_at: the server's clock when a live reading was written

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

On PostgreSQL a trigger adds a rep's change to today's reading (models/history_guard.py). Which
day is today was the rep's app's to say, so a rep from psql could name another one. Now every live
reading (a recount, or kept by a change) says when the server's clock read it (UTC), beside the
app's moment (`taken_at`): the trigger takes today's moment as the latest reading's plus the time
the server has seen pass since. NULL: a reading rebuilt from the journal, or recorded before this.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0012'
down_revision: Union[str, None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('kpi_snapshot', sa.Column('server_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    # in place (SQLite 3.35 and later, PostgreSQL): a batch copy of the table would drop the table
    # that kpi_snapshot_month's rows point at
    op.execute('ALTER TABLE kpi_snapshot DROP COLUMN server_at')
