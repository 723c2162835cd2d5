"""Partial refunds of received returns: each return paid back once, through Stripe, never beyond the payment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from payments_testkit import Payments

from libs.common.events import Envelope
from libs.common.testing import eventually


def received(
    order_id: uuid.UUID, user_id: uuid.UUID, amount: int, return_id: uuid.UUID | None = None
) -> Envelope:
    return Envelope.new(
        "return.received",
        {
            "return_id": return_id or uuid.uuid4(),
            "order_id": order_id,
            "user_id": user_id,
            "status": "received",
            "items": [
                {
                    "line_id": 0,
                    "product_id": uuid.uuid4(),
                    "name": "Mug",
                    "quantity": 1,
                    "reason": "chipped",
                    "refund_amount": amount,
                },
            ],
            "note": None,
            "refund_amount": amount,
            "currency": "EUR",
            "by": str(uuid.uuid4()),
            "at": datetime.now(UTC),
        },
        producer="orders",
    )


async def test_each_received_return_is_refunded_once_for_its_amount(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user, total=2599)
    pi_id = (await payments.checkout(user, order_id, "pm_card_visa")).json()["payment_intent_id"]
    standin = payments.standin
    assert standin is not None
    before = standin.refund_calls()
    first = received(order_id, user, 1000)
    await payments.bus.publish(first)
    await payments.bus.publish(first)  # redelivered

    async def one_refund() -> None:
        events = payments.log.of("payment.refunded", order_id)
        assert len(events) == 1, events
        event = events[0]
        assert event.data["amount"] == 1000 and event.data["return_id"] == str(first.data["return_id"])
        assert event.data["refund_id"].startswith("re_")

    await eventually(one_refund)
    # the rest comes back with a second return; asking more than is left refunds only what is left
    second = received(order_id, user, 1700)
    await payments.bus.publish(second)

    async def two_refunds() -> None:
        assert [e.data["amount"] for e in payments.log.of("payment.refunded", order_id)] == [1000, 1599]

    await eventually(two_refunds)
    assert standin.refund_calls() - before == 2
    assert standin.idempotency_keys[f"return-{first.data['return_id']}"] == 1
    assert sorted(r["amount"] for r in standin.refunds.values() if r["payment_intent"] == pi_id) == [
        1000,
        1599,
    ]
    # Stripe then reports the charge refunded in full: the returns already said so, nothing more is told
    assert (await payments.webhook("charge.refunded", standin.charge_refunded(pi_id))).status_code == 200
    await payments.bus.publish(received(order_id, user, 50))  # nothing left to refund
    await payments.settle()
    assert len(payments.log.of("payment.refunded", order_id)) == 2
    assert standin.refund_calls() - before == 2
    [payment] = await payments.payments_of(order_id)
    assert payment.refunded_at is None  # not a cancellation's refund: the returns hold what went back


async def test_a_return_of_an_order_never_paid_here_refunds_nothing(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    standin = payments.standin
    assert standin is not None
    before = standin.refund_calls()
    await payments.bus.publish(received(order_id, user, 500))
    await payments.settle()
    assert payments.log.of("payment.refunded", order_id) == [] and standin.refund_calls() == before
