"""Events orders publishes (order.created, order.status_changed) and the payment events it consumes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.events.bus import PoisonMessage
from libs.common.service import ServiceContext, Subscription
from services.orders.models import Order, StatusChange

PRODUCER = "orders"


def order_created(order: Order) -> Envelope:
    return Envelope.new("order.created", {
        "order_id": order.id, "user_id": order.user_id, "status": order.status,
        "items": [{"product_id": i.product_id, "name": i.name, "unit_price": i.unit_price,
                   "quantity": i.quantity, "line_total": i.line_total} for i in order.items],
        "subtotal": order.subtotal, "total": order.total, "currency": order.currency,
        "created_at": order.created_at,
    }, producer=PRODUCER)


def order_status_changed(order: Order, change: StatusChange) -> Envelope:
    return Envelope.new("order.status_changed", {
        "order_id": order.id, "user_id": order.user_id, "from": change.from_status, "to": change.to_status,
        "by": change.by, "reason": change.reason, "total": order.total, "currency": order.currency,
        "at": change.at,
    }, producer=PRODUCER)


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
