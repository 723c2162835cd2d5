"""order breakdown

An order keeps the price breakdown pricing made when it was placed (DESIGN.md section 10): never
recomputed, what payments charges (`total`) and what a partial refund follows (`lines`). Orders
placed before pricing existed get the breakdown they had in effect: their lines, no discount, no
shipping, no tax, total = subtotal.

Revision ID: 8425da61d28a
Revises: 9048a4020f5a
Create Date: 2026-12-03 16:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '8425da61d28a'
down_revision: str | None = '9048a4020f5a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
UPDATE orders o SET breakdown = jsonb_build_object(
    'subtotal', o.subtotal, 'discount_total', 0, 'shipping_total', 0, 'tax_total', 0,
    'total', o.total, 'currency', o.currency, 'prices_include_tax', false,
    'discounts', '[]'::jsonb, 'shipping_method', NULL, 'tax_lines', '[]'::jsonb,
    'lines', COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
            'product_id', i.product_id, 'variant_id', NULL, 'unit_price', i.unit_price,
            'quantity', i.quantity, 'subtotal', i.line_total, 'discount', 0, 'tax', 0,
            'total', i.line_total) ORDER BY i.position)
        FROM order_items i WHERE i.order_id = o.id), '[]'::jsonb))
WHERE o.breakdown IS NULL
"""


def upgrade() -> None:
    op.add_column('orders', sa.Column('breakdown', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.execute(BACKFILL)
    op.alter_column('orders', 'breakdown', nullable=False)


def downgrade() -> None:
    op.drop_column('orders', 'breakdown')
