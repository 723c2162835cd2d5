"""variants: every product gets options and at least one variant; stock and reservations move to variants

Each existing product becomes a product without options and one default variant carrying its
SKU, price, compare-at price, stock and active flag, so nothing sold or held is lost. Reservation
lines (history included) are re-keyed by that variant and keep their name, price and quantity.

Revision ID: a7d3e9c1f2b4
Revises: fc85de27522a
Create Date: 2026-12-03 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a7d3e9c1f2b4"
down_revision: str | None = "fc85de27522a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("retired_at IS NULL")


def upgrade() -> None:
    op.add_column(
        "products",
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.create_table(
        "variants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("compare_at_price", sa.BigInteger(), nullable=True),
        sa.Column("stock", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("image_id", sa.UUID(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("compare_at_price IS NULL OR compare_at_price >= 0", name=op.f("ck_variants_compare_at_not_negative")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_variants_price_not_negative")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_variants_stock_not_negative")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_variants_product_id_products"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variants")),
    )
    op.create_index(op.f("ix_variants_product_id"), "variants", ["product_id"], unique=False)
    op.create_index("uq_variants_live_sku", "variants", ["sku"], unique=True, postgresql_where=LIVE)
    op.create_index("uq_variants_live_combination", "variants", ["product_id", "options"], unique=True, postgresql_where=LIVE)
    op.create_index(
        "ix_variants_live_options", "variants", ["options"], unique=False, postgresql_using="gin",
        postgresql_ops={"options": "jsonb_path_ops"}, postgresql_where=sa.text("retired_at IS NULL AND is_active"),
    )
    # one default variant per product, deleted ones included (their order history names them);
    # the product's own active flag stays on the product, so the variant is active
    op.execute(
        "INSERT INTO variants (id, product_id, sku, title, options, price, compare_at_price, stock, "
        "is_active, position, created_at, updated_at) "
        "SELECT gen_random_uuid(), id, sku, 'Default', '{}'::jsonb, price, compare_at_price, stock, "
        "true, 0, created_at, updated_at FROM products"
    )

    op.add_column("reservation_lines", sa.Column("variant_id", sa.UUID(), nullable=True))
    op.add_column("reservation_lines", sa.Column("sku", sa.Text(), server_default="", nullable=False))
    op.add_column("reservation_lines", sa.Column("title", sa.Text(), server_default="", nullable=False))
    op.execute(
        "UPDATE reservation_lines l SET variant_id = v.id, sku = v.sku, title = v.title "
        "FROM variants v WHERE v.product_id = l.product_id"
    )
    # a line whose product row is gone (never the case in this service, products are soft-deleted)
    # keeps a stable key: its product id
    op.execute("UPDATE reservation_lines SET variant_id = product_id WHERE variant_id IS NULL")
    op.alter_column("reservation_lines", "variant_id", nullable=False)
    op.drop_constraint("pk_reservation_lines", "reservation_lines", type_="primary")
    op.create_primary_key("pk_reservation_lines", "reservation_lines", ["order_id", "variant_id"])


def downgrade() -> None:
    # lines of one product fold back into one line (quantities added); product stock already is
    # the variants' sum
    op.execute(
        "UPDATE reservation_lines l SET quantity = s.q FROM (SELECT order_id, product_id, "
        "min(variant_id::text) AS v, sum(quantity) AS q FROM reservation_lines GROUP BY 1, 2 "
        "HAVING count(*) > 1) s WHERE l.order_id = s.order_id AND l.variant_id::text = s.v"
    )
    op.execute(
        "DELETE FROM reservation_lines a USING reservation_lines b WHERE a.order_id = b.order_id "
        "AND a.product_id = b.product_id AND a.variant_id::text > b.variant_id::text"
    )
    op.drop_constraint("pk_reservation_lines", "reservation_lines", type_="primary")
    op.create_primary_key("pk_reservation_lines", "reservation_lines", ["order_id", "product_id"])
    op.drop_column("reservation_lines", "title")
    op.drop_column("reservation_lines", "sku")
    op.drop_column("reservation_lines", "variant_id")
    op.drop_index("ix_variants_live_options", table_name="variants", postgresql_using="gin",
                  postgresql_where=sa.text("retired_at IS NULL AND is_active"))
    op.drop_index("uq_variants_live_combination", table_name="variants", postgresql_where=LIVE)
    op.drop_index("uq_variants_live_sku", table_name="variants", postgresql_where=LIVE)
    op.drop_index(op.f("ix_variants_product_id"), table_name="variants")
    op.drop_table("variants")
    op.drop_column("products", "options")
