"""Tables of the notifications service: every e-mail it means to send (and how that went), and what it
keeps of orders to write about them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import new_metadata
from libs.common.events import add_event_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


add_event_tables(Base.metadata)

_ts = sa.DateTime(timezone=True)
STATUSES = ("pending", "sent", "failed")


class EmailDelivery(Base):
    """One e-mail for one event: rendered when the event is handled, sent (and retried) by the sender.

    ``(event_id, template)`` is unique, so however often an event arrives it makes one mail."""

    __tablename__ = "email_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "template"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        sa.Index(
            "ix_email_deliveries_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")
        ),
        sa.Index("ix_email_deliveries_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(sa.String(100))
    template: Mapped[str] = mapped_column(sa.String(64), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    to_address: Mapped[str] = mapped_column(sa.String(320), index=True)
    to_name: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.Text)
    text_body: Mapped[str] = mapped_column(sa.Text)
    html_body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[datetime] = mapped_column(_ts)
    created_at: Mapped[datetime] = mapped_column(_ts)
    sent_at: Mapped[datetime | None] = mapped_column(_ts)


class OrderSummary(Base):
    """What an order held when it was placed (order.created), for the mails that follow it."""

    __tablename__ = "order_summaries"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    subtotal: Mapped[int] = mapped_column(sa.BigInteger)
    total: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[datetime] = mapped_column(_ts)
