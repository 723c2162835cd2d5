"""name sort index covers name, so deep pages sorted by name are index-only scans

Without ``name`` in the index, PostgreSQL cannot return ``lower(name)`` from it and sorts
the whole visible catalog instead: page 450 by name took 28 ms on 10,000 products, 4 ms after.

Revision ID: 5c0e2b7d91a4
Revises: deb15a204a6a
Create Date: 2026-11-25 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c0e2b7d91a4"
down_revision: str | None = "deb15a204a6a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE = sa.text("is_active AND deleted_at IS NULL")


def _recreate(include: list[str]) -> None:
    op.drop_index("ix_products_visible_name", table_name="products", postgresql_where=VISIBLE)
    op.create_index("ix_products_visible_name", "products", [sa.text("lower(name)"), "id"], unique=False,
                    postgresql_include=include, postgresql_where=VISIBLE)


def upgrade() -> None:
    _recreate(["name", "category_id", "price", "stock"])


def downgrade() -> None:
    _recreate(["category_id", "price", "stock"])
