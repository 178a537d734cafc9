"""kpi_snapshot.months_of: a reconstructed snapshot may have an earlier one's month rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

A history rebuilt from the journal (an import, the demo) repeats a few sets of months in most of
its snapshots: the weeks after the last change, the owners whose prospects did not move. The CRM
practice file's history had 202,790 month rows in 2,054 different sets, and writing them was a
fifth of its import. Now each set is written once, under the first snapshot that has it, and the
others name that snapshot in `months_of` (NULL: a snapshot's own rows, as every snapshot recorded
so far has them).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0011'
down_revision: Union[str, None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('kpi_snapshot', sa.Column('months_of', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_kpi_snapshot_months_of'), 'kpi_snapshot', ['months_of'], unique=False)


def downgrade() -> None:
    # each snapshot gets its own copy of the months it shared, then the column goes
    op.execute(
        'INSERT INTO kpi_snapshot_month (snapshot_id, month, count, tv_cents, ev_micros, won_count, '
        'won_tv_cents, won_ev_micros) SELECT s.id, m.month, m.count, m.tv_cents, m.ev_micros, m.won_count, '
        'm.won_tv_cents, m.won_ev_micros FROM kpi_snapshot s JOIN kpi_snapshot_month m ON m.snapshot_id = s.months_of'
    )
    op.drop_index(op.f('ix_kpi_snapshot_months_of'), table_name='kpi_snapshot')
    # in place (SQLite 3.35 and later, PostgreSQL): a batch copy of the table would drop the table
    # that kpi_snapshot_month's rows point at
    op.execute('ALTER TABLE kpi_snapshot DROP COLUMN months_of')
