"""stage_change.stay_seconds and prospect.stage_entered_at: each stay, and when each prospect
entered its stage, kept as the changes are written

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Each stage's pace (models/pace.py) is the median and 75th percentile of its stays. They were
worked out from the whole stage history every time the pace was read (a million prospects in daily
use: 2.5 million rows, 5 s); now each change carries the stay it ends, written by the journal, and
ix_stage_change_stay (from_stage_id, stay_seconds) gives each stage's count and percentiles.
Likewise each prospect keeps the moment of its latest stage change (`stage_entered_at`): its time
on its stage, and whether it is slow, were looked up in the history prospect by prospect.

The changes already recorded get theirs here, by the same rule (`models.pace.stay_seconds`), in
one pass over the history in its order; each prospect gets its latest change's moment.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_HISTORY = sa.table(
    'stage_change',
    sa.column('id', sa.Integer()),
    sa.column('prospect_id', sa.Integer()),
    sa.column('changed_at', sa.DateTime()),
    sa.column('from_stage_id', sa.Integer()),
    sa.column('inferred', sa.Boolean()),
    sa.column('stay_seconds', sa.Integer()),
)


def upgrade() -> None:
    op.add_column('stage_change', sa.Column('stay_seconds', sa.Integer(), nullable=True))
    op.add_column('prospect', sa.Column('stage_entered_at', sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE prospect SET stage_entered_at = "
        "(SELECT max(sc.changed_at) FROM stage_change sc WHERE sc.prospect_id = prospect.id)"
    )
    _fill_stays()
    op.create_index('ix_stage_change_stay', 'stage_change', ['from_stage_id', 'stay_seconds'], unique=False)


def _fill_stays() -> None:
    from evpipe.models.pace import stay_seconds  # the one rule

    conn = op.get_bind()
    h = _HISTORY.c
    # read as it goes (PostgreSQL: a server-side cursor), the updates on the same connection
    rows = conn.execute(
        sa.select(h.id, h.prospect_id, h.changed_at, h.from_stage_id, h.inferred)
        .order_by(h.prospect_id, h.changed_at, h.id)
        .execution_options(stream_results=True)
    )
    set_stay = sa.update(_HISTORY).where(h.id == sa.bindparam('key')).values(stay_seconds=sa.bindparam('stay'))
    batch: list[dict] = []
    before_pid, before = None, None
    for cid, pid, at, from_stage, inferred in rows:
        if pid != before_pid:
            before_pid, before = pid, None
        stay = stay_seconds(before, at, bool(inferred)) if from_stage is not None else None
        if stay is not None:
            batch.append({'key': cid, 'stay': stay})
        before = (at, bool(inferred))
        if len(batch) >= 10_000:
            conn.execute(set_stay, batch)
            batch = []
    if batch:
        conn.execute(set_stay, batch)


def downgrade() -> None:
    op.drop_index('ix_stage_change_stay', table_name='stage_change')
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of `prospect` would drop a table
    # other tables' foreign keys point at.
    op.execute('ALTER TABLE prospect DROP COLUMN stage_entered_at')
    op.execute('ALTER TABLE stage_change DROP COLUMN stay_seconds')
