"""Tables of the pricing service: promotions and their usages, shipping zones and methods, tax rates,
the breakdown each order was priced at, and the read-models the rules need (catalog categories,
customers' orders)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.db import new_metadata
from libs.common.events import add_event_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


add_event_tables(Base.metadata)

_ts = sa.DateTime(timezone=True)


class Promotion(Base):
    """An automatic promotion (no code) or a coupon. Deleting one keeps the row (its usages are
    order history) and frees its code for a new promotion."""

    __tablename__ = "promotions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    code: Mapped[str | None] = mapped_column(sa.String(64))  # upper case: codes match case-insensitively
    stackable: Mapped[bool] = mapped_column(sa.Boolean)
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    currency: Mapped[str] = mapped_column(sa.String(3))  # of amount_off and min_subtotal
    action_type: Mapped[str] = mapped_column(sa.String(32))
    action_value: Mapped[int] = mapped_column(sa.BigInteger)
    action_buy: Mapped[int | None] = mapped_column(sa.Integer)
    action_get: Mapped[int | None] = mapped_column(sa.Integer)
    min_subtotal: Mapped[int | None] = mapped_column(sa.BigInteger)
    product_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    category_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    first_order_only: Mapped[bool] = mapped_column(sa.Boolean)
    starts_at: Mapped[datetime | None] = mapped_column(_ts)
    ends_at: Mapped[datetime | None] = mapped_column(_ts)
    usage_limit: Mapped[int | None] = mapped_column(sa.Integer)
    usage_limit_per_customer: Mapped[int | None] = mapped_column(sa.Integer)
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(_ts)
    updated_at: Mapped[datetime] = mapped_column(_ts)
    deleted_at: Mapped[datetime | None] = mapped_column(_ts)

    @property
    def rules_per_customer(self) -> bool:
        """Whether a claim must look at this customer's other orders."""
        return self.first_order_only or self.usage_limit_per_customer is not None

    __table_args__ = (
        sa.CheckConstraint(
            "action_type IN ('percent_off', 'amount_off', 'free_shipping', 'buy_x_get_y')",
            name="action_type_known",
        ),
        sa.CheckConstraint(
            "action_value >= 0 AND (min_subtotal IS NULL OR min_subtotal >= 0)", name="amounts_not_negative"
        ),
        # one live promotion per code; a deleted one's code may be used again
        sa.Index(
            "uq_promotions_live_code",
            "code",
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL AND code IS NOT NULL"),
        ),
        # the quote's lookup of automatic promotions
        sa.Index(
            "ix_promotions_automatic",
            "is_active",
            postgresql_where=sa.text("deleted_at IS NULL AND code IS NULL"),
        ),
    )


class PromotionUsage(Base):
    """One promotion used by one order; released (not deleted) when an unpaid order is cancelled."""

    __tablename__ = "promotion_usages"

    promotion_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("promotions.id"), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    code: Mapped[str | None] = mapped_column(sa.String(64))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    claimed_at: Mapped[datetime] = mapped_column(_ts)
    released_at: Mapped[datetime | None] = mapped_column(_ts)

    __table_args__ = (
        sa.Index(
            "ix_promotion_usages_live",
            "promotion_id",
            "customer_id",
            postgresql_where=sa.text("released_at IS NULL"),
        ),
        sa.Index("ix_promotion_usages_order", "order_id"),
    )


class OrderPricing(Base):
    """The breakdown an order was priced at: a repeated claim for the order answers this again."""

    __tablename__ = "order_pricings"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(_ts)
    released_at: Mapped[datetime | None] = mapped_column(_ts)

    # is this a customer's first order: the orders pricing priced and did not release
    __table_args__ = (
        sa.Index(
            "ix_order_pricings_customer", "customer_id", postgresql_where=sa.text("released_at IS NULL")
        ),
    )


class ShippingZone(Base):
    __tablename__ = "shipping_zones"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    countries: Mapped[list[str]] = mapped_column(ARRAY(sa.String(2)))
    regions: Mapped[list[str]] = mapped_column(ARRAY(sa.String(100)))
    postal_prefixes: Mapped[list[str]] = mapped_column(ARRAY(sa.String(20)))
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(_ts)
    updated_at: Mapped[datetime] = mapped_column(_ts)

    methods: Mapped[list[ShippingMethod]] = relationship(
        lazy="selectin", order_by="ShippingMethod.position", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.Index("ix_shipping_zones_countries", "countries", postgresql_using="gin"),)


class ShippingMethod(Base):
    __tablename__ = "shipping_methods"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    zone_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("shipping_zones.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(200))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    free_over: Mapped[int | None] = mapped_column(sa.BigInteger)
    estimate_min_days: Mapped[int | None] = mapped_column(sa.Integer)
    estimate_max_days: Mapped[int | None] = mapped_column(sa.Integer)
    is_active: Mapped[bool] = mapped_column(sa.Boolean)

    __table_args__ = (
        sa.CheckConstraint(
            "amount >= 0 AND (free_over IS NULL OR free_over >= 0)", name="amounts_not_negative"
        ),
    )


class TaxRate(Base):
    __tablename__ = "tax_rates"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    region: Mapped[str | None] = mapped_column(sa.String(100))
    rate_bp: Mapped[int] = mapped_column(sa.Integer)
    applies_to_shipping: Mapped[bool] = mapped_column(sa.Boolean)
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(_ts)
    updated_at: Mapped[datetime] = mapped_column(_ts)

    __table_args__ = (sa.CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000", name="rate_in_range"),)


class CatalogCategory(Base):
    """Read-model of catalog's categories: the parent links, so a promotion on a category covers its
    sub-categories."""

    __tablename__ = "catalog_categories"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    deleted: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at: Mapped[datetime] = mapped_column(_ts)


class CatalogProduct(Base):
    """Read-model of catalog's products: each one's category (for promotions scoped by category)."""

    __tablename__ = "catalog_products"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    category_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    version: Mapped[int] = mapped_column(sa.Integer)


class CustomerOrder(Base):
    """Read-model of orders (from orders' events): whether a customer has placed an order before."""

    __tablename__ = "customer_orders"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    status: Mapped[str] = mapped_column(sa.String(32))
    updated_at: Mapped[datetime] = mapped_column(_ts)
