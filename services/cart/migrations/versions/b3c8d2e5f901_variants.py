"""variants: a variant read-model, and cart lines and wishlist entries per variant

Lines made before variants keep ``variant_id`` NULL: such a line stands for its product's
only variant (every first-wave product became a product with one variant), and is named
when it is next added to. One line per user and variant (or, for those, per product).

Revision ID: b3c8d2e5f901
Revises: a7e1aa1a9f6a
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b3c8d2e5f901"
down_revision: str | None = "a7e1aa1a9f6a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_LINE_PER = (("variant", "variant_id", "variant_id IS NOT NULL"), ("product", "product_id", "variant_id IS NULL"))


def upgrade() -> None:
    op.create_table(
        "variants",
        sa.Column("variant_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.product_id"], name=op.f("fk_variants_product_id_products")),
        sa.PrimaryKeyConstraint("variant_id", name=op.f("pk_variants")),
    )
    op.create_index(op.f("ix_variants_product_id"), "variants", ["product_id"], unique=False)
    for table in ("cart_items", "wishlist_entries"):
        op.add_column(table, sa.Column("variant_id", sa.UUID(), nullable=True))
        op.drop_constraint(f"uq_{table}_user_id", table, type_="unique")
        for name, column, where in ONE_LINE_PER:
            op.create_index(f"uq_{table}_user_{name}", table, ["user_id", column], unique=True, postgresql_where=sa.text(where))


def downgrade() -> None:
    for table in ("cart_items", "wishlist_entries"):
        # several variants of one product fold into the product's oldest line
        op.execute(
            f"DELETE FROM {table} a USING {table} b WHERE a.user_id = b.user_id "  # noqa: S608
            "AND a.product_id = b.product_id AND (a.created_at, a.id) > (b.created_at, b.id)"
        )
        for name, _, where in ONE_LINE_PER:
            op.drop_index(f"uq_{table}_user_{name}", table_name=table, postgresql_where=sa.text(where))
        op.create_unique_constraint(f"uq_{table}_user_id", table, ["user_id", "product_id"])
        op.drop_column(table, "variant_id")
    op.drop_index(op.f("ix_variants_product_id"), table_name="variants")
    op.drop_table("variants")
