"""Tables of webhooks: the endpoints integrators registered, one delivery per (endpoint, event), and
every attempt at it. They share notifications' metadata (``models.Base``), so one migration history
holds both channels."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.notifications.models import Base

_ts = sa.DateTime(timezone=True)
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class WebhookEndpoint(Base):
    """Where matching events are POSTed, and with which secret they are signed.

    The secret is kept as is: it signs every delivery, so it cannot be a one-way hash (the API shows
    it once; the database is the one place it lives). ``previous_secret`` keeps signing beside it
    until ``previous_secret_expires_at`` after a rotation, so a receiver can switch without a gap."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(sa.String(200)))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    secret: Mapped[str] = mapped_column(sa.String(100))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(_ts)
    consecutive_failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(_ts)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(_ts)
    updated_at: Mapped[datetime] = mapped_column(_ts)


class WebhookDelivery(Base):
    """One event for one endpoint, made in the event's inbox transaction: unique per (endpoint, event).

    ``body`` is the envelope as it is POSTed (the same bytes on every attempt, so a receiver that
    dedupes by ``Shop-Event-Id`` sees one event). ``lease_until`` marks a delivery a sender has taken:
    no other replica takes it before then, and one that died leaves it to be taken again."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status_known"),
        sa.Index(
            "ix_webhook_deliveries_due",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(sa.Integer)
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[datetime] = mapped_column(_ts)
    give_up_at: Mapped[datetime] = mapped_column(_ts)
    lease_until: Mapped[datetime | None] = mapped_column(_ts)
    created_at: Mapped[datetime] = mapped_column(_ts)
    delivered_at: Mapped[datetime | None] = mapped_column(_ts)


class WebhookAttempt(Base):
    """One POST of a delivery and how it went (kept for every attempt, for the admins to read)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    succeeded: Mapped[bool] = mapped_column(sa.Boolean)
    response_code: Mapped[int | None] = mapped_column(sa.Integer)
    duration_ms: Mapped[int] = mapped_column(sa.Integer)
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime] = mapped_column(_ts)
