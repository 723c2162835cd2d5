"""Tables of the catalog service: categories, products and their variants, reservations and their lines."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import new_metadata
from libs.common.events import add_event_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


add_event_tables(Base.metadata)

# name and SKU weigh more than the description, so a name match ranks first
SEARCH_VECTOR = (
    "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(sku, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B')"
)
VISIBLE = "is_active AND deleted_at IS NULL"


def _now() -> sa.TextClause:
    return sa.text("now()")


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.Text)
    slug: Mapped[str] = mapped_column(sa.Text, unique=True)
    description: Mapped[str] = mapped_column(sa.Text, server_default="")
    image_url: Mapped[str | None] = mapped_column(sa.Text)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.Text)
    slug: Mapped[str] = mapped_column(sa.Text, unique=True)
    description: Mapped[str] = mapped_column(sa.Text, server_default="")
    price: Mapped[int] = mapped_column(sa.BigInteger)
    compare_at_price: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    sku: Mapped[str] = mapped_column(sa.Text, unique=True)
    # soft-deleted products outlive their category: the link is cleared, the product kept
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("categories.id", ondelete="SET NULL")
    )
    images: Mapped[list[str]] = mapped_column(JSONB, server_default=sa.text("'[]'::jsonb"))
    stock: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    # [{name, values: [..]}], at most 3; every live variant names one value of each
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=sa.text("'[]'::jsonb"))
    # the option_pairs ids of the distinct (name, value) pairs of the live, active variants: facets
    # count these small integers instead of unnesting every variant's JSON (see variants.refresh_option_values)
    option_value_ids: Mapped[list[int]] = mapped_column(
        ARRAY(sa.Integer), server_default=sa.text("'{}'::integer[]"), deferred=True
    )
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    search: Mapped[Any] = mapped_column(TSVECTOR, sa.Computed(SEARCH_VECTOR, persisted=True), deferred=True)

    __table_args__ = (
        sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("price >= 0", name="price_not_negative"),
        sa.CheckConstraint(
            "compare_at_price IS NULL OR compare_at_price >= 0", name="compare_at_not_negative"
        ),
        # fastupdate off: rows go straight into the index, so bulk loads never leave a pending
        # list that makes the planner skip the index (writes are rare, searches are not)
        sa.Index(
            "ix_products_search", "search", postgresql_using="gin", postgresql_with={"fastupdate": "off"}
        ),
        # browsing only ever reads visible products: one partial index per sort key, each covering
        # the filter columns, so counting and picking a page's ids are index-only scans
        sa.Index(
            "ix_products_visible_category",
            "category_id",
            "created_at",
            "id",
            postgresql_include=["price", "stock"],
            postgresql_where=sa.text(VISIBLE),
        ),
        sa.Index(
            "ix_products_visible_price",
            "price",
            "id",
            postgresql_include=["category_id", "stock"],
            postgresql_where=sa.text(VISIBLE),
        ),
        sa.Index(
            "ix_products_visible_created",
            "created_at",
            "id",
            postgresql_include=["category_id", "price", "stock"],
            postgresql_where=sa.text(VISIBLE),
        ),
        # name itself is included because PostgreSQL returns an expression (lower(name)) from
        # an index-only scan only when the column it is computed from is in the index too
        sa.Index(
            "ix_products_visible_name",
            sa.text("lower(name)"),
            "id",
            postgresql_include=["name", "category_id", "price", "stock"],
            postgresql_where=sa.text(VISIBLE),
        ),
        sa.Index("ix_products_category_id", "category_id"),
        sa.Index(
            "ix_products_visible_option_values",
            "option_value_ids",
            postgresql_using="gin",
            postgresql_where=sa.text(VISIBLE),
        ),
        # facets read the filtered set's category, price and option values from the index alone
        sa.Index(
            "ix_products_visible_facets",
            "category_id",
            postgresql_include=["price", "option_value_ids"],
            postgresql_where=sa.text(VISIBLE),
        ),
    )


LIVE_VARIANT = "retired_at IS NULL"


class Variant(Base):
    """What is sold and stocked: one combination of a product's option values.

    ``price`` and ``stock`` of the product are derived from its live, active variants in the
    same transaction as every change (see ``services.catalog.variants.ROLLUP_SQL``). A retired
    variant keeps its row (reservation lines and orders name it); only live ones hold a SKU or
    an option combination.
    """

    __tablename__ = "variants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    product_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    options: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    price: Mapped[int] = mapped_column(sa.BigInteger)
    compare_at_price: Mapped[int | None] = mapped_column(sa.BigInteger)
    stock: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    position: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    image_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    retired_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("price >= 0", name="price_not_negative"),
        sa.CheckConstraint(
            "compare_at_price IS NULL OR compare_at_price >= 0", name="compare_at_not_negative"
        ),
        sa.Index("uq_variants_live_sku", "sku", unique=True, postgresql_where=sa.text(LIVE_VARIANT)),
        sa.Index(
            "uq_variants_live_combination",
            "product_id",
            "options",
            unique=True,
            postgresql_where=sa.text(LIVE_VARIANT),
        ),
        # option filters and facets: containment over the live variants' option values
        sa.Index(
            "ix_variants_live_options",
            "options",
            postgresql_using="gin",
            postgresql_ops={"options": "jsonb_path_ops"},
            postgresql_where=sa.text(LIVE_VARIANT + " AND is_active"),
        ),
    )


class ProductImage(Base):
    """An uploaded image of a product (optionally shown for one variant); its bytes are in object storage."""

    __tablename__ = "product_images"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    product_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("variants.id", ondelete="SET NULL")
    )
    # objects <prefix>/{original,small,medium}.<extension> in the bucket, served under base_url
    # (the public URL when it was stored)
    base_url: Mapped[str] = mapped_column(sa.Text)
    prefix: Mapped[str] = mapped_column(sa.Text)
    extension: Mapped[str] = mapped_column(sa.String(8))
    alt: Mapped[str] = mapped_column(sa.Text, server_default="")
    position: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class MediaDeletion(Base):
    """An image's objects waiting to be removed from storage (services/catalog/trash.py).

    Written in the transaction that deletes the image's row, or before an upload stores its bytes
    (due later: a process killed between storing and committing leaves it to the sweeper).
    """

    __tablename__ = "media_deletions"

    prefix: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    extension: Mapped[str] = mapped_column(sa.String(8))
    due_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now(), index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.Text)


class OptionPair(Base):
    """One (option name, value) pair any variant ever had, numbered for facets."""

    __tablename__ = "option_pairs"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    value: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (sa.UniqueConstraint("name", "value"),)


class Reservation(Base):
    __tablename__ = "reservations"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        sa.CheckConstraint("status IN ('reserved', 'released', 'committed')", name="status_known"),
    )


class ReservationLine(Base):
    __tablename__ = "reservation_lines"

    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("reservations.order_id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    sku: Mapped[str] = mapped_column(sa.Text, server_default="")
    title: Mapped[str] = mapped_column(sa.Text, server_default="")
    name: Mapped[str] = mapped_column(sa.Text)
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    quantity: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (sa.CheckConstraint("quantity > 0", name="quantity_positive"),)


class ShopSettings(Base):
    """The shop's stock settings: one row (id 1), made by the migration, changed by admins."""

    __tablename__ = "shop_settings"

    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    # a live variant at or below this many units is low on stock (the console's dashboard lists them)
    low_stock_threshold: Mapped[int] = mapped_column(sa.Integer, server_default="5")
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    __table_args__ = (
        sa.CheckConstraint("id = 1", name="one_row"),
        sa.CheckConstraint("low_stock_threshold >= 0", name="threshold_not_negative"),
    )
