"""Tables of the orders service: orders, their lines and status history, idempotency keys, placements."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.db import new_metadata
from libs.common.events import add_event_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


add_event_tables(Base.metadata)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    subtotal: Mapped[int] = mapped_column(sa.BigInteger)
    total: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # pricing's breakdown at placement (libs.contracts.pricing.Breakdown): kept, never recomputed
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # fixed when placed (large orders are held for less time); the sweeper cancels the order after it
    payment_due_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # payment facts, as reported by the payments service's events
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    paid_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_payment_error: Mapped[str | None] = mapped_column(sa.Text)
    last_payment_error_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    refunded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    refund_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    # set when it ships: {carrier, tracking_number, tracking_url, shipped_at} (libs.contracts.orders.Fulfillment)
    fulfillment: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    items: Mapped[list[OrderItem]] = relationship(
        lazy="selectin", order_by="OrderItem.position", cascade="all, delete-orphan"
    )

    @property
    def shipping_method(self) -> dict[str, Any] | None:
        """The method the order ships with, as its breakdown names it (one source for both)."""
        method = (self.breakdown or {}).get("shipping_method")
        return method if isinstance(method, dict) else None

    history: Mapped[list[StatusChange]] = relationship(
        lazy="selectin", order_by="StatusChange.seq", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint("subtotal >= 0 AND total >= 0", name="amounts_not_negative"),
        sa.Index("ix_orders_user_created", "user_id", "created_at"),
        # the sweeper's query (unpaid orders past due) and the open-unpaid limit per account
        sa.Index(
            "ix_orders_unpaid_due", "payment_due_at", postgresql_where=sa.text("status = 'pending_payment'")
        ),
        sa.Index("ix_orders_unpaid_user", "user_id", postgresql_where=sa.text("status = 'pending_payment'")),
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    order_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    # the variant bought, as catalog named it then (lines from before variants have none)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    sku: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[int] = mapped_column(sa.Integer)
    line_total: Mapped[int] = mapped_column(sa.BigInteger)


class StatusChange(Base):
    __tablename__ = "order_status_history"

    seq: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(32))
    to_status: Mapped[str] = mapped_column(sa.String(32))
    by: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(sa.Text)


class IdempotencyKey(Base):
    """A claim on (user, key): inserted and committed before any work, then completed with the answer."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    # the order id is fixed at claim time so a takeover of an abandoned claim reuses the same
    # reservation (catalog is idempotent on order_id) instead of reserving twice
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    claimed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Placement(Base):
    """An order id whose stock may be reserved at catalog while no order row exists yet.

    Inserted (committed) before catalog is asked to reserve, deleted in the order's own
    transaction or once catalog confirmed the release. So a reservation without an order always
    has a row here, and the sweeper finds it when the lease is not renewed (its request died).
    ``state`` goes ``placing -> abandoned``: only a ``placing`` row can become an order, so the
    conditional update that abandons it fences the owner out before any stock is released.
    """

    __tablename__ = "order_placements"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    state: Mapped[str] = mapped_column(sa.String(16))
    # placing: renewed by the owner while it works; abandoned: when the sweeper may try the release again
    lease_until: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.CheckConstraint("state IN ('placing', 'abandoned')", name="state_known"),)


class OrderReturn(Base):
    """A customer's return of (part of) a delivered order: the lines and units, why, and where it stands.

    ``items`` holds ``libs.contracts.orders.ReturnLine`` rows; each line's ``refund_amount`` is fixed
    when the units are received (``services.orders.refunds``), under the order's row lock."""

    __tablename__ = "order_returns"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'received', 'refunded')", name="status_known"
        ),
        sa.Index("ix_order_returns_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(sa.Text)
    refund_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    refund_id: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    received_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    refunded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
