"""order item variants: each line names the variant bought, its SKU and title (issue 15)

Lines placed before variants keep NULL: they were for their product's only variant.

Revision ID: e4a9b1c7d2f3
Revises: b787d190c484
Create Date: 2026-12-03 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4a9b1c7d2f3"
down_revision: str | None = "b787d190c484"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_items", sa.Column("variant_id", sa.UUID(), nullable=True))
    op.add_column("order_items", sa.Column("sku", sa.Text(), nullable=True))
    op.add_column("order_items", sa.Column("title", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("order_items", "title")
    op.drop_column("order_items", "sku")
    op.drop_column("order_items", "variant_id")
