"""billing charges: one-off items and discounts waiting for a subscriber's next invoice

A row is pending while ``invoice_id`` is NULL; the monthly run sets it in the transaction that inserts
the invoice (see billing.models.Charge).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 21:59:58.286576
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aaa.db.models


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('billing_charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('cycle', sa.String(length=7), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', aaa.db.models.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', aaa.db.models.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_billing_charges_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_billing_charges_subscriber_id_subscribers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_charges'))
    )
    with op.batch_alter_table('billing_charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_charges_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_charges_subscriber_id'), ['subscriber_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('billing_charges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_charges_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_billing_charges_invoice_id'))

    op.drop_table('billing_charges')
