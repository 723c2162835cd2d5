"""Events payments publishes (payment.*) and the order events it consumes (its payable-order read-model)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.events.bus import PoisonMessage
from libs.common.events.catalogue import EventCatalogue, EventType
from libs.common.service import ServiceContext, Subscription
from services.payments.models import Payment

PRODUCER = "payments"
M = TypeVar("M", bound=BaseModel)


class PaymentEventData(BaseModel):
    """The same fields for every payment fact; ``reason`` on failures, ``refund_id`` on refunds."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    user_id: uuid.UUID
    amount: int = Field(description="integer minor units (cents)")
    currency: str
    payment_intent_id: str
    reason: str | None = None
    refund_id: str | None = None


EVENTS = EventCatalogue(producer=PRODUCER, events={
    "payment.succeeded": EventType(PaymentEventData, "A payment of an order went through (recorded once)."),
    "payment.failed": EventType(PaymentEventData, "A payment attempt failed; the order stays payable."),
    "payment.refunded": EventType(PaymentEventData, "A payment was refunded (after an admin cancelled a paid order)."),
})


def payment_event(type_: str, payment: Payment, *, reason: str | None = None) -> Envelope:
    """payment.succeeded / payment.failed / payment.refunded, all with the same fields."""
    data: dict[str, Any] = {
        "payment_id": payment.id, "order_id": payment.order_id, "user_id": payment.user_id,
        "amount": payment.amount, "currency": payment.currency,
        "payment_intent_id": payment.payment_intent_id,
    }
    if reason is not None:
        data["reason"] = reason
    if payment.refund_id and type_ == "payment.refunded":
        data["refund_id"] = payment.refund_id
    return EVENTS.envelope(type_, data)


class OrderCreatedData(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    total: int
    currency: str
    created_at: datetime | None = None


class OrderStatusChangedData(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    to: str
    total: int | None = None
    currency: str | None = None
    at: datetime | None = None


def _parse(model: type[M], event: Envelope) -> M:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonMessage(f"{event.type} with invalid data: {exc.error_count()} errors") from exc


# service.py imports this module for the event builders, so handlers import it lazily
async def on_order_created(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    from services.payments import service

    data = _parse(OrderCreatedData, event)
    await service.record_payable_order(session=session, order_id=data.order_id, user_id=data.user_id,
                                       amount=data.total, currency=data.currency, status=data.status,
                                       at=data.created_at or event.occurred_at)


async def on_order_status_changed(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    from services.payments import service

    data = _parse(OrderStatusChangedData, event)
    await service.record_order_status(session=session, order_id=data.order_id, user_id=data.user_id,
                                      status=data.to, amount=data.total, currency=data.currency,
                                      at=data.at or event.occurred_at)
    if data.to == "cancelled":
        await service.refund_cancelled_order(session=session, provider=ctx.extras["provider"],
                                             order_id=data.order_id)


SUBSCRIPTIONS = [
    Subscription(patterns=["order.created"], handler=on_order_created),
    Subscription(patterns=["order.status_changed"], handler=on_order_status_changed),
]
