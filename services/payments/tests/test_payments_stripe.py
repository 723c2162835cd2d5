"""Payments through the real stripe SDK against the local stand-in, with the real RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from payments_testkit import OrdersStandIn, Payments
from stripe_standin import sign, webhook_event

from libs.common.events import Envelope
from libs.common.testing import assert_problem, dead_lettered, eventually


async def test_guest_cannot_checkout(payments: Payments) -> None:
    resp = await payments.client.post("/payment/checkout", json={"order_id": str(uuid.uuid4())})
    assert_problem(resp, 401)
    assert_problem(await payments.client.post("/payment/verify", json={"payment_intent_id": "pi_x1"}), 401)


async def test_paying_with_a_card_records_one_payment_and_publishes_one_event(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user, total=2599, currency="EUR")

    resp = await payments.checkout(user, order_id, "pm_card_visa")

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "succeeded" and body["paid"] is True
    assert (body["amount"], body["currency"], body["publishable_key"]) == (2599, "EUR", "pk_test_standin")
    assert body["client_secret"].startswith(body["payment_intent_id"])
    intent = payments.standin.intents[body["payment_intent_id"]]
    assert intent["metadata"] == {"order_id": str(order_id), "user_id": str(user)}
    assert (intent["amount"], intent["currency"]) == (2599, "eur")
    await eventually(lambda: _one(payments.log.of("payment.succeeded", order_id)))
    # a verify afterwards finds it paid and publishes nothing more
    again = await payments.verify(user, body["payment_intent_id"])
    assert again.status_code == 200 and again.json()["paid"] is True
    await payments.settle()
    [event] = payments.log.of("payment.succeeded", order_id)
    assert event.data == {
        "payment_id": body["payment_id"],
        "order_id": str(order_id),
        "user_id": str(user),
        "amount": 2599,
        "currency": "EUR",
        "payment_intent_id": body["payment_intent_id"],
    }
    assert event.producer == "payments"
    [payment] = await payments.payments_of(order_id)
    assert payment.charge_id == intent["latest_charge"]


async def test_checking_out_twice_returns_the_same_intent(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)

    answers = await asyncio.gather(*(payments.checkout(user, order_id) for _ in range(4)))

    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert len({(r.json()["payment_intent_id"], r.json()["client_secret"]) for r in answers}) == 1
    assert answers[0].json()["status"] == "requires_payment_method"
    assert len(await payments.payments_of(order_id)) == 1
    assert payments.standin.idempotency_keys[f"order-{order_id}"] >= 1


async def test_declined_card_publishes_a_failure_and_the_order_stays_payable(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)

    declined = await payments.checkout(user, order_id, "pm_card_chargeDeclined")

    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "requires_payment_method" and declined.json()["paid"] is False
    assert declined.json()["failure_reason"] == "Your card was declined."
    await eventually(lambda: _one(payments.log.of("payment.failed", order_id)))
    assert payments.log.of("payment.failed", order_id)[0].data["reason"] == "Your card was declined."
    # the same intent, paid with another card
    paid = await payments.checkout(user, order_id, "pm_card_visa")
    assert paid.status_code == 200, paid.text
    assert paid.json()["payment_intent_id"] == declined.json()["payment_intent_id"]
    assert paid.json()["status"] == "succeeded"
    await eventually(lambda: _one(payments.log.of("payment.succeeded", order_id)))
    await payments.settle()
    assert len(payments.log.of("payment.failed", order_id)) == 1


async def test_user_cannot_pay_or_verify_another_users_order(payments: Payments) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    order_id = await payments.place_order(owner)
    mine = await payments.checkout(owner, order_id)

    assert_problem(await payments.checkout(other, order_id, "pm_card_visa"), 404)
    assert_problem(await payments.verify(other, mine.json()["payment_intent_id"]), 404)
    [payment] = await payments.payments_of(order_id)
    assert payment.paid_at is None


async def test_an_order_nobody_placed_is_not_found(payments: Payments, orders_standin: OrdersStandIn) -> None:
    order_id = uuid.uuid4()
    assert_problem(await payments.checkout(uuid.uuid4(), order_id), 404, "not-found")
    assert str(order_id) in orders_standin.asked


async def test_an_order_just_placed_that_payments_has_not_heard_of_says_retry_after(
    payments: Payments, orders_standin: OrdersStandIn
) -> None:
    user, order_id = uuid.uuid4(), uuid.uuid4()
    orders_standin.owners[str(order_id)] = user
    resp = await payments.checkout(user, order_id)
    body = assert_problem(resp, 425, "order-not-payable-yet")
    assert resp.headers["retry-after"] == "1" and "retry" in body["detail"]
    # someone else asking about that order learns nothing of it
    assert_problem(await payments.checkout(uuid.uuid4(), order_id), 404, "not-found")
    assert await payments.payments_of(order_id) == []


async def test_order_that_is_not_pending_payment_cannot_be_paid(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    await payments.bus.publish(payments.status_changed(order_id, user, "cancelled", from_="pending_payment"))
    await eventually(lambda: _equals(payments.order_status(order_id), "cancelled"))

    body = assert_problem(await payments.checkout(user, order_id, "pm_card_visa"), 409)
    assert "cancelled" in body["detail"]
    assert await payments.payments_of(order_id) == []


async def test_status_change_arriving_before_the_order_is_kept(payments: Payments) -> None:
    user, order_id = uuid.uuid4(), uuid.uuid4()
    # the cancellation overtook order.created (two deliveries in flight at once)
    await payments.bus.publish(payments.status_changed(order_id, user, "cancelled", from_="pending_payment"))
    await eventually(lambda: _equals(payments.order_status(order_id), "cancelled"))
    created = Envelope.new(
        "order.created",
        {
            "order_id": order_id,
            "user_id": user,
            "status": "pending_payment",
            "items": [],
            "subtotal": 2599,
            "total": 2599,
            "currency": "EUR",
            "created_at": "2020-01-01T00:00:00Z",
        },
        producer="orders",
    )

    await payments.bus.publish(created)

    await payments.settle()
    assert await payments.order_status(order_id) == "cancelled"
    assert_problem(await payments.checkout(user, order_id, "pm_card_visa"), 409)


async def test_invalid_checkout_input_is_a_validation_problem(payments: Payments) -> None:
    user = uuid.uuid4()
    resp = await payments.client.post(
        "/payment/checkout", json={"order_id": "nope"}, headers=payments.keys.bearer(user_id=user)
    )
    assert_problem(resp, 422)


async def test_webhook_with_bad_or_missing_signature_is_refused_and_changes_nothing(
    payments: Payments,
) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    pi_id = (await payments.checkout(user, order_id)).json()["payment_intent_id"]
    intent = _paid_at_stripe(payments, pi_id)
    payload = webhook_event("payment_intent.succeeded", intent)

    refusals = [
        await payments.webhook("", {}, body=payload, signature=None),
        await payments.webhook("", {}, body=payload, signature="t=1,v1=deadbeef"),
        await payments.webhook("", {}, body=payload, secret="whsec_someone_else"),
        await payments.webhook(
            "", {}, body=payload, signature=sign(payload, "whsec_test_standin", timestamp=1)
        ),
        await payments.webhook(
            "",
            {},
            body=payload.replace("succeeded", "canceled"),
            signature=sign(payload, "whsec_test_standin"),
        ),
    ]

    for resp in refusals:
        assert_problem(resp, 400)
    await payments.settle()
    [payment] = await payments.payments_of(order_id)
    assert payment.paid_at is None and payment.status == "requires_payment_method"
    assert payments.log.of("payment.succeeded", order_id) == []


async def test_replayed_webhooks_racing_a_verify_record_one_payment(payments: Payments) -> None:
    user = uuid.uuid4()
    orders = [await payments.place_order(user) for _ in range(3)]
    for i, order_id in enumerate(orders):
        pi_id = (await payments.checkout(user, order_id)).json()["payment_intent_id"]
        # the browser confirmed with Stripe.js: Stripe now says succeeded, and tells us three times over
        payload = webhook_event("payment_intent.succeeded", _paid_at_stripe(payments, pi_id))
        calls = [payments.webhook("", {}, body=payload) for _ in range(3)]
        calls.insert(i, payments.verify(user, pi_id))  # the verify lands first, in the middle, last

        answers = await asyncio.gather(*calls)

        assert [r.status_code for r in answers] == [200, 200, 200, 200], [r.text for r in answers]
        assert answers[i].json()["paid"] is True

    async def all_published() -> bool:
        return all(len(payments.log.of("payment.succeeded", o)) == 1 for o in orders)

    await eventually(all_published)
    await payments.settle()
    for order_id in orders:
        assert len(payments.log.of("payment.succeeded", order_id)) == 1
        [payment] = await payments.payments_of(order_id)
        assert payment.paid_at is not None


async def test_failed_payment_webhook_publishes_the_failure_once(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    declined = await payments.checkout(user, order_id, "pm_card_chargeDeclined")
    intent = payments.standin.intents[declined.json()["payment_intent_id"]]

    for _ in range(2):
        assert (await payments.webhook("payment_intent.payment_failed", intent)).json() == {
            "received": True,
            "handled": True,
        }

    await eventually(lambda: _one(payments.log.of("payment.failed", order_id)))
    await payments.settle()
    assert len(payments.log.of("payment.failed", order_id)) == 1


async def test_cancelling_a_paid_order_refunds_it_once(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    pi_id = (await payments.checkout(user, order_id, "pm_card_visa")).json()["payment_intent_id"]
    refunds_before = payments.standin.refund_calls()
    cancelled = payments.status_changed(order_id, user, "cancelled")

    # the same event delivered twice, and a second cancellation report with its own id
    await payments.bus.publish(cancelled)
    await payments.bus.publish(cancelled)
    await payments.bus.publish(payments.status_changed(order_id, user, "cancelled"))

    await eventually(lambda: _one(payments.log.of("payment.refunded", order_id)))
    # Stripe then reports the refund by webhook: already known
    charge = payments.standin.charge_refunded(pi_id)
    assert (await payments.webhook("charge.refunded", charge)).status_code == 200
    await payments.settle()
    assert payments.standin.refund_calls() - refunds_before == 1
    [event] = payments.log.of("payment.refunded", order_id)
    assert payments.standin.idempotency_keys[f"refund-{event.data['payment_id']}"] == 1
    assert event.data["payment_intent_id"] == pi_id and event.data["amount"] == 2599
    [payment] = await payments.payments_of(order_id)
    assert payment.refunded_at is not None and payment.refund_id


async def test_refund_made_in_the_stripe_dashboard_is_recorded_once(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    pi_id = (await payments.checkout(user, order_id, "pm_card_visa")).json()["payment_intent_id"]
    standin = payments.standin
    assert standin is not None
    standin.refunds["re_dashboard" + uuid.uuid4().hex[:8]] = {
        "id": "re_dash",
        "object": "refund",
        "payment_intent": pi_id,
        "amount": 2599,
    }
    charge = standin.charge_refunded(pi_id)

    for _ in range(2):
        assert (await payments.webhook("charge.refunded", charge)).json()["handled"] is True

    await eventually(lambda: _one(payments.log.of("payment.refunded", order_id)))
    await payments.settle()
    assert len(payments.log.of("payment.refunded", order_id)) == 1
    [payment] = await payments.payments_of(order_id)
    assert payment.refund_id == "re_dash"


async def test_an_order_event_not_matching_the_orders_model_is_dead_lettered_and_changes_nothing(
    payments: Payments,
) -> None:
    order_id = uuid.uuid4()
    bad = Envelope.new("order.created", {"order_id": str(order_id), "total": "lots"}, producer="orders")

    await payments.bus.publish(bad)

    letter = await dead_lettered(payments.bus, "payments", bad.id)
    assert (
        "not a valid OrderCreated" in letter.error
        and "total: Input should be a valid integer" in letter.error
    )
    assert await payments.order_status(order_id) is None


async def test_other_webhook_events_are_acknowledged_and_ignored(payments: Payments) -> None:
    resp = await payments.webhook("customer.created", {"id": "cus_1", "object": "customer"})
    assert resp.status_code == 200 and resp.json() == {"received": True, "handled": False}


async def test_payment_succeeding_after_the_order_was_cancelled_is_refunded(payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await payments.place_order(user)
    pi_id = (await payments.checkout(user, order_id)).json()["payment_intent_id"]
    await payments.bus.publish(payments.status_changed(order_id, user, "cancelled", from_="pending_payment"))
    await eventually(lambda: _equals(payments.order_status(order_id), "cancelled"))
    refunds_before = payments.standin.refund_calls()

    # the customer confirmed in the browser after the order timed out
    resp = await payments.webhook("payment_intent.succeeded", _paid_at_stripe(payments, pi_id))

    assert resp.status_code == 200
    await eventually(lambda: _one(payments.log.of("payment.refunded", order_id)))
    assert len(payments.log.of("payment.succeeded", order_id)) == 1
    assert payments.standin.refund_calls() - refunds_before == 1


async def test_webhook_for_a_payment_of_no_known_order_records_nothing(payments: Payments) -> None:
    stranger: dict[str, Any] = {
        "id": "pi_" + uuid.uuid4().hex[:24],
        "object": "payment_intent",
        "amount": 100,
        "currency": "usd",
        "status": "succeeded",
        "client_secret": None,
        "latest_charge": "ch_x",
        "metadata": {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())},
    }

    resp = await payments.webhook("payment_intent.succeeded", stranger)

    assert resp.status_code == 200 and resp.json()["handled"] is False
    assert await payments.payments_of(uuid.UUID(stranger["metadata"]["order_id"])) == []


async def test_verify_of_an_unknown_payment_is_not_found(payments: Payments) -> None:
    assert_problem(await payments.verify(uuid.uuid4(), "pi_doesnotexist"), 404)
    resp = await payments.client.post(
        "/payment/verify",
        json={"payment_intent_id": "not-an-intent"},
        headers=payments.keys.bearer(user_id=uuid.uuid4()),
    )
    assert_problem(resp, 422)


def _paid_at_stripe(payments: Payments, pi_id: str) -> dict:
    """Make the stand-in's intent succeed, as a confirmation by Stripe.js would."""
    intent = payments.standin.intents[pi_id]
    intent.update(
        status="succeeded", latest_charge="ch_" + uuid.uuid4().hex[:24], payment_method="pm_card_visa"
    )
    return intent


async def _one(events: list) -> bool:
    return len(events) == 1


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected
