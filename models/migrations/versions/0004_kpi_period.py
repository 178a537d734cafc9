"""the KPI period: covering indexes with the expected month, and the won part of each snapshot month

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # The same two covering indexes (same names), each with the expected month added before the
    # value, so that the KPI sums of a period (models/period.py) never read the table.
    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.drop_index('ix_prospect_owner_stage_value')
        batch_op.drop_index('ix_prospect_live_stage_value')
        batch_op.create_index(
            'ix_prospect_live_stage_value', ['deleted_at', 'stage_id', 'expected_month', 'value_cents'], unique=False
        )
        batch_op.create_index(
            'ix_prospect_owner_stage_value',
            ['owner', 'deleted_at', 'stage_id', 'expected_month', 'value_cents'],
            unique=False,
        )
    with op.batch_alter_table('kpi_snapshot_month', schema=None) as batch_op:
        batch_op.add_column(sa.Column('won_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('won_tv_cents', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('won_ev_micros', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('kpi_snapshot_month', schema=None) as batch_op:
        batch_op.drop_column('won_ev_micros')
        batch_op.drop_column('won_tv_cents')
        batch_op.drop_column('won_count')
    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.drop_index('ix_prospect_owner_stage_value')
        batch_op.drop_index('ix_prospect_live_stage_value')
        batch_op.create_index('ix_prospect_live_stage_value', ['deleted_at', 'stage_id', 'value_cents'], unique=False)
        batch_op.create_index(
            'ix_prospect_owner_stage_value', ['owner', 'deleted_at', 'stage_id', 'value_cents'], unique=False
        )
