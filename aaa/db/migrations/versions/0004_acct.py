"""accounting: nas_reboots, the reboots (Accounting-On/Off) of each NAS

A session of a NAS that started before one of its reboots is over, whatever order its records and the
reboot are applied in (journals of several workers, replays): see aaa.acct_writer.

On PostgreSQL ``sessions`` gets fillfactor 80: every Interim-Update rewrites its session's row, and
with room left in the page the new version goes in the same page without new index entries (a HOT
update), which nearly halves the cost of applying an interim flood (docs/performance.md). Pages
written before the change fill up as they are rewritten.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 05:29:27.796630
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aaa.db.models


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('nas_reboots',
    sa.Column('nas_id', sa.Integer(), nullable=False),
    sa.Column('rebooted_at', aaa.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['nas_id'], ['nas.id'], name=op.f('fk_nas_reboots_nas_id_nas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('nas_id', 'rebooted_at', name=op.f('pk_nas_reboots'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE sessions SET (fillfactor = 80)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE sessions RESET (fillfactor)')
    op.drop_table('nas_reboots')
