"""Events orders publishes (order.created, order.status_changed) and the payment events it consumes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.events.bus import PoisonMessage
from libs.common.events.catalogue import EventCatalogue, EventType
from libs.common.service import ServiceContext, Subscription
from services.orders.models import Order, StatusChange
from services.orders.schemas import OrderItemPublic, OrderStatus

PRODUCER = "orders"


class OrderCreated(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    items: list[OrderItemPublic]
    subtotal: int = Field(description="integer minor units (cents)")
    total: int = Field(description="integer minor units (cents)")
    currency: str
    created_at: datetime


class OrderStatusChanged(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    order_id: uuid.UUID
    user_id: uuid.UUID
    from_: OrderStatus | None = Field(alias="from")
    to: OrderStatus
    by: str = Field(description="who moved it: a user id, \"payments\" or \"system\" (payment timeout)")
    reason: str | None
    total: int
    currency: str
    at: datetime


EVENTS = EventCatalogue(producer=PRODUCER, events={
    "order.created": EventType(OrderCreated, "An order was placed and its stock reserved (pending_payment)."),
    "order.status_changed": EventType(OrderStatusChanged, "An order moved from one status to another."),
})


def order_created(order: Order) -> Envelope:
    return EVENTS.envelope("order.created", {
        "order_id": order.id, "user_id": order.user_id, "status": order.status,
        "items": [{"product_id": i.product_id, "name": i.name, "unit_price": i.unit_price,
                   "quantity": i.quantity, "line_total": i.line_total} for i in order.items],
        "subtotal": order.subtotal, "total": order.total, "currency": order.currency,
        "created_at": order.created_at,
    })


def order_status_changed(order: Order, change: StatusChange) -> Envelope:
    return EVENTS.envelope("order.status_changed", {
        "order_id": order.id, "user_id": order.user_id, "from": change.from_status, "to": change.to_status,
        "by": change.by, "reason": change.reason, "total": order.total, "currency": order.currency,
        "at": change.at,
    })


def _payment_data(event: Envelope) -> dict[str, Any]:
    try:
        uuid.UUID(str(event.data["order_id"]))
    except (KeyError, ValueError) as exc:
        raise PoisonMessage(f"{event.type} without a valid order_id") from exc
    return event.data


# service.py imports this module for the event builders, so handlers import it lazily
async def on_payment_succeeded(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    from services.orders import service

    await service.record_payment_succeeded(session=session, data=_payment_data(event))


async def on_payment_failed(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    from services.orders import service

    await service.record_payment_failed(session=session, data=_payment_data(event))


async def on_payment_refunded(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    from services.orders import service

    await service.record_refund(session=session, data=_payment_data(event))


SUBSCRIPTIONS = [
    Subscription(patterns=["payment.succeeded"], handler=on_payment_succeeded),
    Subscription(patterns=["payment.failed"], handler=on_payment_failed),
    Subscription(patterns=["payment.refunded"], handler=on_payment_refunded),
]
