"""the next step where the last one is logged: a follow-up's time and note, a contact point's time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

- prospect.follow_up_time: the time of day of the next follow-up ("14:30"), or NULL for none.
- prospect.follow_up_note: what the next follow-up is about, or NULL.
- activity.timed: the contact point's time of day was given by the rep (its occurred_at is then
  that time); false when only its day was given (occurred_at's time then only orders the log).
  Existing contact points were logged by day: false.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_up_time', sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column('follow_up_note', sa.String(length=500), nullable=True))
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timed', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of `prospect` would drop a table
    # other tables' foreign keys point at.
    op.execute('ALTER TABLE activity DROP COLUMN timed')
    op.execute('ALTER TABLE prospect DROP COLUMN follow_up_note')
    op.execute('ALTER TABLE prospect DROP COLUMN follow_up_time')
