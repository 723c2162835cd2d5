"""shop settings: the low-stock threshold, one row an admin changes

Revision ID: b4d6f8a1c3e5
Revises: e3b7c1d9a5f2
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b4d6f8a1c3e5"
down_revision: str | None = "e3b7c1d9a5f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_settings",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("low_stock_threshold", sa.Integer(), server_default="5", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_shop_settings_one_row")),
        sa.CheckConstraint("low_stock_threshold >= 0", name=op.f("ck_shop_settings_threshold_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_settings")),
    )
    op.execute("INSERT INTO shop_settings (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("shop_settings")
