"""Events payments publishes (payment.*); their models and catalogue are in ``libs.contracts.payments``."""

from __future__ import annotations

import uuid
from typing import Any

from libs.common.events import Envelope
from libs.contracts.payments import EVENTS
from services.payments.models import Payment


def return_refunded(payment: Payment, *, amount: int, refund_id: str, return_id: uuid.UUID) -> Envelope:
    """payment.refunded for a part of the payment: what one received return got back."""
    data: dict[str, Any] = {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "amount": amount,
        "currency": payment.currency,
        "payment_intent_id": payment.payment_intent_id,
        "refund_id": refund_id,
        "return_id": return_id,
    }
    return EVENTS.envelope("payment.refunded", data)


def payment_event(type_: str, payment: Payment, *, reason: str | None = None) -> Envelope:
    """payment.succeeded / payment.failed / payment.refunded, all with the same fields."""
    data: dict[str, Any] = {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "payment_intent_id": payment.payment_intent_id,
    }
    if reason is not None:
        data["reason"] = reason
    if payment.refund_id and type_ == "payment.refunded":
        data["refund_id"] = payment.refund_id
    return EVENTS.envelope(type_, data)
