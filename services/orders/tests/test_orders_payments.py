"""Payment events from the bus move orders on, once each."""

from __future__ import annotations

import uuid

from libs.common.events import Envelope
from libs.common.testing import assert_problem, dead_lettered, eventually
from libs.contracts import payments


def payment_event(type_: str, order: dict, **extra: object) -> Envelope:
    """A payment fact built from the payments contract, as the payments service builds it."""
    return payments.EVENTS.envelope(
        type_,
        {
            "payment_id": uuid.uuid4(),
            "order_id": order["id"],
            "user_id": order["user_id"],
            "amount": order["total"],
            "currency": order["currency"],
            "payment_intent_id": "pi_test_123",
            **extra,
        },
    )


async def test_a_payment_event_not_matching_the_payments_model_is_dead_lettered_and_changes_nothing(
    client, as_user, place, publish, orders_app
):
    order = await place(as_user)
    bad = Envelope.new(
        "payment.succeeded", {"order_id": order["id"], "amount": order["total"]}, producer="payments"
    )
    await publish(bad)

    letter = await dead_lettered(orders_app[0].state.ctx.bus, "orders", bad.id)
    assert "not a valid PaymentEventData" in letter.error and "payment_id: Field required" in letter.error
    seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert (seen["status"], seen["paid_at"]) == ("pending_payment", None)


async def test_payment_succeeded_marks_the_order_paid_once_even_when_delivered_twice(
    client, as_user, place, publish, bus
):
    order = await place(as_user)
    event = payment_event("payment.succeeded", order)
    await publish(event)
    await publish(event)

    async def paid() -> dict:
        seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
        assert seen["status"] == "paid"
        return seen

    seen = await eventually(paid)
    assert seen["paid_at"] is not None and seen["payment_id"] == event.data["payment_id"]
    # a second report of the same payment under a new event id changes nothing either
    await publish(payment_event("payment.succeeded", order))

    async def one_paid_event() -> None:
        assert [e.data["to"] for e in bus.of(order["id"], "order.status_changed")] == ["paid"]

    await eventually(one_paid_event)
    after = await eventually(paid)
    assert [h["to"] for h in after["status_history"]] == ["pending_payment", "paid"]
    assert after["status_history"][-1]["by"] == "payments"


async def test_failed_payment_is_recorded_and_the_order_stays_payable(client, as_user, place, publish):
    order = await place(as_user)
    await publish(payment_event("payment.failed", order, reason="Your card was declined."))

    async def failure_recorded() -> None:
        seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
        assert seen["last_payment_error"] == "Your card was declined."
        assert seen["status"] == "pending_payment"

    await eventually(failure_recorded)
    await publish(payment_event("payment.succeeded", order))

    async def paid_after_retry() -> None:
        seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
        assert seen["status"] == "paid"
        # the declined attempt is over: a paid order shows no payment error
        assert seen["last_payment_error"] is None and seen["last_payment_error_at"] is None

    await eventually(paid_after_retry)


async def test_payment_for_a_cancelled_order_is_recorded_and_it_stays_cancelled(
    client, as_user, place, publish
):
    order = await place(as_user)
    assert (await client.post(f"/orders/{order['id']}/cancel", headers=as_user)).status_code == 200
    await publish(payment_event("payment.succeeded", order))
    await publish(payment_event("payment.refunded", order))

    async def refunded() -> None:
        seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
        assert seen["refunded_at"] is not None and seen["refund_amount"] == order["total"]
        assert seen["paid_at"] is not None and seen["status"] == "cancelled"
        assert [h["to"] for h in seen["status_history"]] == ["pending_payment", "cancelled"]

    await eventually(refunded)


async def test_payment_of_the_wrong_amount_does_not_mark_the_order_paid(client, as_user, place, publish):
    order = await place(as_user, price=1000)
    await publish(payment_event("payment.succeeded", order, amount=1))

    async def refused() -> None:
        seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
        assert seen["last_payment_error"] and seen["status"] == "pending_payment"

    await eventually(refused)


async def test_paid_order_cannot_be_cancelled_by_its_owner(client, as_user, place, publish):
    order = await place(as_user)
    await publish(payment_event("payment.succeeded", order))

    async def paid() -> None:
        assert (await client.get(f"/orders/{order['id']}", headers=as_user)).json()["status"] == "paid"

    await eventually(paid)
    assert_problem(await client.post(f"/orders/{order['id']}/cancel", headers=as_user), 409)
