"""option pairs: each product's distinct (option, value) pairs of its live, active variants, numbered

Facets count these small integers instead of unnesting every variant's options per request
(at 10,000 products x 3 variants the option facet went from ~100 ms to a few), a GIN index
over visible products answers option filters, and a covering index lets facets read the
filtered set's category, price and option values from the index alone.

Revision ID: c5e1f7a2d3b6
Revises: a7d3e9c1f2b4
Create Date: 2026-12-03 17:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c5e1f7a2d3b6"
down_revision: str | None = "a7d3e9c1f2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE = sa.text("is_active AND deleted_at IS NULL")
PAIRS = (
    "SELECT DISTINCT v.product_id, kv.key, kv.value FROM variants v "
    "CROSS JOIN LATERAL jsonb_each_text(v.options) kv WHERE v.retired_at IS NULL AND v.is_active"
)


def upgrade() -> None:
    op.create_table(
        "option_pairs",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_option_pairs")),
        sa.UniqueConstraint("name", "value", name=op.f("uq_option_pairs_name")),
    )
    op.add_column(
        "products",
        sa.Column("option_value_ids", postgresql.ARRAY(sa.Integer()), server_default=sa.text("'{}'::integer[]"), nullable=False),
    )
    op.execute(f"INSERT INTO option_pairs (name, value) SELECT DISTINCT key, value FROM ({PAIRS}) x")
    op.execute(
        "UPDATE products p SET option_value_ids = coalesce((SELECT array_agg(op.id ORDER BY op.id) "
        f"FROM ({PAIRS} AND v.product_id = p.id) x JOIN option_pairs op ON op.name = x.key AND op.value = x.value), '{{}}')"
    )
    op.create_index("ix_products_visible_option_values", "products", ["option_value_ids"], unique=False,
                    postgresql_using="gin", postgresql_where=VISIBLE)
    op.create_index("ix_products_visible_facets", "products", ["category_id"], unique=False,
                    postgresql_include=["price", "option_value_ids"], postgresql_where=VISIBLE)


def downgrade() -> None:
    op.drop_index("ix_products_visible_facets", table_name="products", postgresql_where=VISIBLE)
    op.drop_index("ix_products_visible_option_values", table_name="products", postgresql_using="gin",
                  postgresql_where=VISIBLE)
    op.drop_column("products", "option_value_ids")
    op.drop_table("option_pairs")
