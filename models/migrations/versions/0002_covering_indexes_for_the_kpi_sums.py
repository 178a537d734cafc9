"""covering indexes for the KPI sums

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prospect_live_stage'))
        batch_op.drop_index(batch_op.f('ix_prospect_owner'))
        batch_op.create_index('ix_prospect_live_stage_value', ['deleted_at', 'stage_id', 'value_cents'], unique=False)
        batch_op.create_index('ix_prospect_owner_stage_value', ['owner', 'deleted_at', 'stage_id', 'value_cents'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.drop_index('ix_prospect_owner_stage_value')
        batch_op.drop_index('ix_prospect_live_stage_value')
        batch_op.create_index(batch_op.f('ix_prospect_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_prospect_live_stage'), ['deleted_at', 'stage_id'], unique=False)

