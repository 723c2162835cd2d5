"""Tables of the payments service: the payable-order read-model and one row per PaymentIntent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import new_metadata
from libs.common.events import add_event_tables


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = new_metadata()


class PayableOrder(Base):
    """What payments knows of an order, fed by order.created / order.status_changed."""

    __tablename__ = "payable_orders"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.Text)
    # when the status was true at the source: an older event never overwrites a newer one
    status_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now, onupdate=_now)


class Payment(Base):
    """One PaymentIntent of an order and what it led to (the recorded payment, failures, refund)."""

    __tablename__ = "payments"
    __table_args__ = (
        # one open intent per order; a cancelled intent makes room for a new one
        sa.Index(
            "uq_payments_open_order",
            "order_id",
            unique=True,
            postgresql_where=sa.text("status <> 'canceled'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    payment_intent_id: Mapped[str] = mapped_column(sa.Text, unique=True)
    provider: Mapped[str] = mapped_column(sa.Text)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # the provider's PaymentIntent status as last reconciled
    status: Mapped[str] = mapped_column(sa.Text)
    client_secret: Mapped[str | None] = mapped_column(sa.Text)
    charge_id: Mapped[str | None] = mapped_column(sa.Text)
    paid_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # one key per failed attempt already reported, so each failure is published once
    failure_keys: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), default=list, server_default="{}")
    last_failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    failure_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    refund_id: Mapped[str | None] = mapped_column(sa.Text)
    refunded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now, onupdate=_now)


add_event_tables(Base.metadata)


class FakeProviderObject(Base):
    """What the fake provider (Stripe test mode stand-in) knows: intents, idempotent replies, refunds.

    Kept in the database so a restart of payments between checkout and payment loses
    nothing, as it would not with Stripe.
    """

    __tablename__ = "fake_provider_objects"

    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    body: Mapped[dict] = mapped_column(sa.dialects.postgresql.JSONB, nullable=False)


class ReturnRefund(Base):
    """The partial refund of one received return (orders' return.received): at most one per return."""

    __tablename__ = "return_refunds"

    return_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    refund_id: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
