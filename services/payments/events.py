"""Events payments publishes (payment.*); their models and catalogue are in ``libs.contracts.payments``."""

from __future__ import annotations

from typing import Any

from libs.common.events import Envelope
from libs.contracts.payments import EVENTS
from services.payments.models import Payment


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
