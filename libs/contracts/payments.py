"""Events of the payments service."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from libs.common.events.catalogue import EventCatalogue, EventType


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
    return_id: uuid.UUID | None = Field(
        None, description="on a partial refund: the return it pays back (amount is then what was refunded)"
    )


EVENTS = EventCatalogue(
    producer="payments",
    events={
        "payment.succeeded": EventType(
            PaymentEventData, "A payment of an order went through (recorded once)."
        ),
        "payment.failed": EventType(PaymentEventData, "A payment attempt failed; the order stays payable."),
        "payment.refunded": EventType(
            PaymentEventData,
            "A payment was refunded: in full after an admin cancelled a paid order, or in part for a "
            "received return (return_id, amount).",
        ),
    },
)
