"""Tables of the cart service: carts, wishlists and the product (and variant) read-model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import new_metadata
from libs.common.events import add_event_tables


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = new_metadata()


add_event_tables(Base.metadata)


class Product(Base):
    """What cart knows of a catalog product; rows are never deleted (``deleted`` marks it)."""

    __tablename__ = "products"

    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    slug: Mapped[str] = mapped_column(sa.Text, default="")
    image: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    price: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    stock: Mapped[int] = mapped_column(sa.Integer, default=0)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)


class Variant(Base):
    """What cart knows of a catalog variant; written only with a newer version of its product."""

    __tablename__ = "variants"

    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("products.product_id"), index=True
    )
    sku: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    options: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    price: Mapped[int] = mapped_column(sa.BigInteger)
    stock: Mapped[int] = mapped_column(sa.Integer, default=0)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    retired: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)


# a line made before variants names no variant: it stands for its product's only variant
_ONE_LINE_PER = (
    ("variant", "variant_id", "variant_id IS NOT NULL"),
    ("product", "product_id", "variant_id IS NULL"),
)


class CartItem(Base):
    """One line of a user's cart: one variant of a product, a quantity, the price when it was added."""

    __tablename__ = "cart_items"
    __table_args__ = (
        *(
            sa.Index(
                f"uq_cart_items_user_{name}", "user_id", column, unique=True, postgresql_where=sa.text(where)
            )
            for name, column, where in _ONE_LINE_PER
        ),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("products.product_id"))
    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    added_unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now, onupdate=_now)


class WishlistEntry(Base):
    """A product (or one variant of it) a user keeps for later; one entry per user and variant."""

    __tablename__ = "wishlist_entries"
    __table_args__ = tuple(
        sa.Index(
            f"uq_wishlist_entries_user_{name}",
            "user_id",
            column,
            unique=True,
            postgresql_where=sa.text(where),
        )
        for name, column, where in _ONE_LINE_PER
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("products.product_id"))
    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
