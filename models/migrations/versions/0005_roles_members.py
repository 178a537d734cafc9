"""members and their roles (owner, manager, rep)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Who may do what (models/roles.py). A database with no member rows behaves as before: anyone
    # who can write the file may do anything.
    op.create_table(
        'member',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('role', sa.String(length=10), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('added_by', sa.String(length=80), nullable=False, server_default=''),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('member')
