"""Events orders publishes; their models and catalogue are in ``libs.contracts.orders``."""

from __future__ import annotations

from libs.common.events import Envelope
from libs.contracts.orders import EVENTS
from services.orders.models import Order, OrderReturn, StatusChange


def order_created(order: Order) -> Envelope:
    return EVENTS.envelope(
        "order.created",
        {
            "order_id": order.id,
            "user_id": order.user_id,
            "status": order.status,
            "items": [
                {
                    "product_id": i.product_id,
                    "variant_id": i.variant_id,
                    "sku": i.sku,
                    "title": i.title,
                    "name": i.name,
                    "unit_price": i.unit_price,
                    "quantity": i.quantity,
                    "line_total": i.line_total,
                }
                for i in order.items
            ],
            "subtotal": order.subtotal,
            "total": order.total,
            "currency": order.currency,
            "created_at": order.created_at,
            "breakdown": order.breakdown,
        },
    )


def order_status_changed(order: Order, change: StatusChange) -> Envelope:
    return EVENTS.envelope(
        "order.status_changed",
        {
            "order_id": order.id,
            "user_id": order.user_id,
            "from": change.from_status,
            "to": change.to_status,
            "by": change.by,
            "reason": change.reason,
            "total": order.total,
            "currency": order.currency,
            "at": change.at,
        },
    )


def order_fulfilled(order: Order, *, by: str) -> Envelope:
    return EVENTS.envelope(
        "order.fulfilled",
        {"order_id": order.id, "user_id": order.user_id, "fulfillment": order.fulfillment, "by": by},
    )


def return_changed(ret: OrderReturn, *, by: str) -> Envelope:
    return EVENTS.envelope(
        f"return.{ret.status}",
        {
            "return_id": ret.id,
            "order_id": ret.order_id,
            "user_id": ret.user_id,
            "status": ret.status,
            "items": ret.items,
            "note": ret.note,
            "refund_amount": ret.refund_amount,
            "currency": ret.currency,
            "by": by,
            "at": ret.updated_at,
        },
    )
