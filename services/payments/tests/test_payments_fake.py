"""Payments with the fake provider on the in-process bus, as in the embedded mode."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from payments_testkit import EventLog, Payments

from libs.common.events import Envelope, InMemoryBus
from libs.common.testing import Infra, TestKeys, assert_problem, eventually, running_app, settings_for
from services.payments.app import create_app
from services.payments.settings import PaymentsSettings


async def _one(events: list) -> bool:
    return len(events) == 1


@asynccontextmanager
async def _process(settings: PaymentsSettings, keys: TestKeys) -> AsyncIterator[Payments]:
    """One run of the payments process, from startup to shutdown, as the embedded mode starts it."""
    bus = InMemoryBus(retry_delays=[0.1], max_attempts=3)
    log = EventLog()

    async def collect(env: Envelope) -> None:
        log.events.append(env)

    bus.subscribe("listener", ["payment.*"], collect)
    app = create_app(settings, bus=bus)
    async with running_app(app) as client:
        await bus.start()
        try:
            yield Payments(app=app, client=client, keys=keys, log=log)
        finally:
            await bus.close()


async def test_fake_provider_pays_with_the_visa_test_card(fake_payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await fake_payments.place_order(user, total=1200, currency="USD")

    resp = await fake_payments.checkout(user, order_id, "pm_card_visa")

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (
        body["status"] == "succeeded" and body["paid"] is True and body["payment_intent_id"].startswith("pi_")
    )
    await eventually(lambda: _one(fake_payments.log.of("payment.succeeded", order_id)))
    verified = await fake_payments.verify(user, body["payment_intent_id"])
    assert verified.json()["paid"] is True
    await fake_payments.settle(0.2)
    assert len(fake_payments.log.of("payment.succeeded", order_id)) == 1


async def test_fake_provider_without_payment_method_waits_for_the_client(fake_payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await fake_payments.place_order(user)

    first = await fake_payments.checkout(user, order_id)
    second = await fake_payments.checkout(user, order_id)

    assert first.json()["status"] == "requires_payment_method" and first.json()["client_secret"]
    assert first.json()["payment_intent_id"] == second.json()["payment_intent_id"]
    assert first.json()["publishable_key"] == "pk_test_fake"


async def test_fake_provider_declines_the_declined_test_card(fake_payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await fake_payments.place_order(user)

    resp = await fake_payments.checkout(user, order_id, "pm_card_chargeDeclined")

    assert resp.status_code == 200, resp.text
    assert resp.json()["failure_reason"] == "Your card was declined." and resp.json()["paid"] is False
    await eventually(lambda: _one(fake_payments.log.of("payment.failed", order_id)))
    assert (await fake_payments.checkout(user, order_id, "pm_card_visa")).json()["paid"] is True


async def test_fake_provider_refuses_an_unknown_payment_method(fake_payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await fake_payments.place_order(user)

    assert_problem(await fake_payments.checkout(user, order_id, "pm_nonsense"), 400)
    assert await fake_payments.payments_of(order_id) == []


async def test_fake_provider_refunds_a_cancelled_paid_order_once(fake_payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await fake_payments.place_order(user)
    assert (await fake_payments.checkout(user, order_id, "pm_card_visa")).json()["paid"] is True
    cancelled = fake_payments.status_changed(order_id, user, "cancelled")

    await fake_payments.bus.publish(cancelled)
    await fake_payments.bus.publish(cancelled)

    await eventually(lambda: _one(fake_payments.log.of("payment.refunded", order_id)))
    await fake_payments.settle(0.2)
    assert len(fake_payments.log.of("payment.refunded", order_id)) == 1


async def test_fake_provider_remembers_an_intent_across_a_restart(fake_payments: Payments) -> None:
    user = uuid.uuid4()
    order_id = await fake_payments.place_order(user)
    intent = (await fake_payments.checkout(user, order_id)).json()
    assert intent["status"] == "requires_payment_method"

    bus = InMemoryBus(retry_delays=[0.1], max_attempts=3)
    log = EventLog()

    async def collect(env: Envelope) -> None:
        log.events.append(env)

    bus.subscribe("listener", ["payment.*"], collect)
    restarted = create_app(fake_payments.ctx.settings, bus=bus)
    async with running_app(restarted) as client:
        await bus.start()
        try:
            headers = fake_payments.keys.bearer(user_id=user)
            paid = await client.post(
                "/payment/checkout",
                headers=headers,
                json={"order_id": str(order_id), "payment_method": "pm_card_visa"},
            )
            assert paid.status_code == 200, paid.text
            assert (
                paid.json()["payment_intent_id"] == intent["payment_intent_id"]
                and paid.json()["paid"] is True
            )
            verified = await client.post(
                "/payment/verify", headers=headers, json={"payment_intent_id": intent["payment_intent_id"]}
            )
            assert verified.status_code == 200 and verified.json()["paid"] is True
            # the first instance still runs here and relays the same outbox: one event in all
            await eventually(
                lambda: _one(
                    log.of("payment.succeeded", order_id)
                    + fake_payments.log.of("payment.succeeded", order_id)
                )
            )
            await fake_payments.settle(0.5)
            assert (
                len(
                    log.of("payment.succeeded", order_id)
                    + fake_payments.log.of("payment.succeeded", order_id)
                )
                == 1
            )
        finally:
            await bus.close()


async def test_fake_payment_can_be_verified_after_the_payments_process_restarts(
    infra: Infra, keys: TestKeys
) -> None:
    # a database of its own: no other running instance shares the intents or relays the outbox
    settings = settings_for(
        PaymentsSettings,
        infra,
        keys,
        payment_provider="fake",
        event_bus="memory",
        PAYMENTS_DATABASE_URL=f"{infra.pg_dsn}/{infra.db_prefix}payments_restart",
    )
    user = uuid.uuid4()
    async with _process(settings, keys) as before:
        order_id = await before.place_order(user, total=1500, currency="EUR")
        paid = await before.checkout(user, order_id, "pm_card_visa")
        assert paid.status_code == 200, paid.text
        intent_id = paid.json()["payment_intent_id"]
        await eventually(lambda: _one(before.log.of("payment.succeeded", order_id)))

    async with _process(settings, keys) as after:
        verified = await after.verify(user, intent_id)

        assert verified.status_code == 200, verified.text
        assert verified.json()["status"] == "succeeded" and verified.json()["paid"] is True
        assert verified.json()["payment_intent_id"] == intent_id
        await after.settle(0.5)
        # one payment fact: the restart may relay the same event again (a stop between its publish and
        # its outbox mark; consumers drop it by id), but verifying must not make a second one
        published = before.log.of("payment.succeeded", order_id) + after.log.of("payment.succeeded", order_id)
        assert len({e.id for e in published}) == 1
