"""Who hears which notification, exactly once, and nothing missed across reconnects."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.exceptions
from realtime_testkit import event, hang_up, listen, publish, realtime

from libs.common.testing import Infra, TestKeys

CATEGORY = str(uuid.uuid4())  # the one category these tests keep changing


async def test_guests_hear_catalog_changes_but_not_orders(infra: Infra, keys: TestKeys) -> None:
    async with realtime(infra, keys) as (url, app):
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        lamp = str(uuid.uuid4())
        await publish(app, event("product.created", id=lamp, name="Lamp", is_active=True, version=1))
        await guest.hears("product:added")
        await publish(
            app,
            event("category.updated", id=str(uuid.uuid4()), name="Lights"),
            event("stock.changed", product_id=lamp, stock=4, version=3),
            event("order.created", order_id=str(uuid.uuid4()), user_id=str(uuid.uuid4())),
        )
        added = (await guest.hears("product:added"))[0]
        assert added["data"]["name"] == "Lamp" and added["event_id"] and added["seq"] >= 1
        await guest.hears("category:updated")
        assert (await guest.hears("stock:updated"))[0]["data"]["stock"] == 4
        await admin.hears("order:created")
        await asyncio.sleep(0.3)
        assert guest.of("order:created") == []
        await hang_up(guest, admin)


async def test_new_orders_and_registrations_reach_admins_and_not_users(infra: Infra, keys: TestKeys) -> None:
    buyer_id = uuid.uuid4()
    async with realtime(infra, keys) as (url, app):
        buyer = await listen(url, {"token": keys.mint(user_id=buyer_id)})
        admin = await listen(url, {"token": keys.mint(role="admin")})
        order_id = str(uuid.uuid4())
        await publish(
            app,
            event("order.created", order_id=order_id, user_id=str(buyer_id), total=1000),
            event("user.registered", user_id=str(uuid.uuid4()), email="new@example.com", name="New"),
        )
        assert (await admin.hears("order:created"))[0]["data"]["order_id"] == order_id
        assert (await admin.hears("user:registered"))[0]["data"]["email"] == "new@example.com"
        await asyncio.sleep(0.3)
        assert buyer.of("order:created") == [] and buyer.of("user:registered") == []
        await hang_up(buyer, admin)


async def test_payment_news_reach_the_payer_and_admins_but_no_other_user(
    infra: Infra, keys: TestKeys
) -> None:
    payer_id = uuid.uuid4()
    async with realtime(infra, keys) as (url, app):
        payer = await listen(url, {"token": keys.mint(user_id=payer_id)})
        other = await listen(url, {"token": keys.mint()})
        admin = await listen(url, {"token": keys.mint(role="admin")})
        for kind in ("succeeded", "failed", "refunded"):
            await publish(
                app,
                event(
                    f"payment.{kind}",
                    payment_id=str(uuid.uuid4()),
                    order_id=str(uuid.uuid4()),
                    user_id=str(payer_id),
                    amount=500,
                    currency="EUR",
                ),
            )
        for kind in ("succeeded", "failed", "refunded"):
            assert (await payer.hears(f"payment:{kind}"))[0]["room"] == f"user:{payer_id}"
            await admin.hears(f"payment:{kind}")
        await asyncio.sleep(0.3)
        assert not [e for e, _ in other.heard if e.startswith("payment:")]
        await hang_up(payer, other, admin)


async def test_a_redelivered_event_is_emitted_once(infra: Infra, keys: TestKeys) -> None:
    async with realtime(infra, keys) as (url, app):
        guest = await listen(url)
        env = event("category.updated", id=str(uuid.uuid4()), name="Lamps")
        await publish(app, env, env)
        await guest.hears("category:updated")
        await asyncio.sleep(0.3)
        assert len(guest.of("category:updated")) == 1
        await hang_up(guest)


async def test_a_client_that_reconnects_gets_what_it_missed_in_order_once(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime(infra, keys) as (url, app):
        first = await listen(url)
        await publish(app, event("category.updated", id=CATEGORY, position=1))
        last_seq = (await first.hears("category:updated"))[0]["seq"]
        await first.sio.disconnect()
        await publish(app, *(event("category.updated", id=CATEGORY, position=10 + i) for i in range(5)))
        await asyncio.sleep(0.5)
        back = await listen(url, {"last_seq": {"public": last_seq}})
        missed = await back.hears("category:updated", 5)
        # the bus hands events over concurrently, so the room's sequence (not publish order) is the order
        assert [m["seq"] for m in missed] == list(range(last_seq + 1, last_seq + 6))
        assert sorted(m["data"]["position"] for m in missed) == [10, 11, 12, 13, 14]
        await asyncio.sleep(0.3)
        assert len(back.of("category:updated")) == 5
        await hang_up(back)


async def test_a_room_the_client_heard_nothing_in_yet_is_resumed_from_where_it_joined(
    infra: Infra, keys: TestKeys
) -> None:
    """A customer's own room is silent until their first order: told where it stood, they miss nothing after a drop."""
    buyer = uuid.uuid4()
    token = keys.mint(user_id=buyer)
    room = f"user:{buyer}"
    async with realtime(infra, keys) as (url, app):
        first = await listen(url, {"token": token})
        [joined] = await first.hears("rooms:joined")
        assert set(joined["rooms"]) == {"public", room}
        await first.sio.disconnect()
        paid = str(uuid.uuid4())
        payment = event(
            "payment.succeeded",
            payment_id=str(uuid.uuid4()),
            order_id=paid,
            user_id=str(buyer),
            amount=500,
            currency="EUR",
        )
        await publish(app, payment)
        await asyncio.sleep(0.3)
        back = await listen(url, {"token": token, "last_seq": joined["rooms"]})
        [told] = await back.hears("payment:succeeded")
        assert told["data"]["order_id"] == paid and told["seq"] == joined["rooms"][room] + 1
        await asyncio.sleep(0.3)
        # every room it joined had a number: nothing more to tell, nothing twice
        assert back.of("rooms:joined") == [] and len(back.of("payment:succeeded")) == 1
        await hang_up(back)


async def test_a_live_client_hears_events_handled_at_once_in_sequence_order(
    infra: Infra, keys: TestKeys
) -> None:
    """The bus hands events over concurrently; a client still sees seq 1, 2, 3... with no gap or swap."""
    async with realtime(infra, keys) as (url, app):
        guest = await listen(url)
        notifier = app.state.ctx.state
        await asyncio.gather(
            *(notifier.handle(event("category.updated", id=CATEGORY, position=i)) for i in range(80))
        )
        heard = await guest.hears("category:updated", 80)
        seqs = [m["seq"] for m in heard]
        assert seqs == list(range(seqs[0], seqs[0] + 80))
        await hang_up(guest)


async def test_missed_notifications_come_before_new_ones_even_while_events_keep_coming(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime(infra, keys) as (url, app):
        watcher = await listen(url)
        await publish(app, *(event("category.updated", id=CATEGORY, name=f"v{i}") for i in range(30)))
        first = min(m["seq"] for m in await watcher.hears("category:updated", 30))

        async def more() -> None:
            for i in range(30, 60):
                await publish(app, event("category.updated", id=CATEGORY, name=f"v{i}"))
                await asyncio.sleep(0.005)

        busy = asyncio.create_task(more())
        back = await listen(url, {"last_seq": {"public": first - 1}})
        await busy
        await back.hears("category:updated", 60)
        await asyncio.sleep(0.3)
        assert [m["seq"] for m in back.of("category:updated")] == list(range(first, first + 60))
        await hang_up(watcher, back)


async def test_a_gap_older_than_the_buffer_asks_the_client_to_resync(infra: Infra, keys: TestKeys) -> None:
    async with realtime(infra, keys, replay_buffer=3) as (url, app):
        guest = await listen(url)
        await publish(app, *(event("category.updated", id=CATEGORY, name=f"v{i}") for i in range(6)))
        seqs = sorted(m["seq"] for m in await guest.hears("category:updated", 6))
        await guest.sio.disconnect()
        late = await listen(url, {"last_seq": {"public": seqs[0]}})
        assert (await late.hears("resync"))[0]["room"] == "public"
        assert late.of("category:updated") == []
        recent = await listen(url)
        ack = await recent.sio.call("resume", {"public": seqs[3]}, timeout=5)
        assert ack["ok"] is True
        assert [m["seq"] for m in await recent.hears("category:updated", 2)] == seqs[4:]
        await hang_up(late, recent)


async def test_two_instances_deliver_an_event_once_to_each_client(infra: Infra, keys: TestKeys) -> None:
    shared_queue = f"{infra.queue_prefix}{uuid.uuid4().hex[:6]}."
    shared_redis = f"{infra.redis_prefix}{uuid.uuid4().hex[:6]}:"
    async with (
        realtime(infra, keys, queue_prefix=shared_queue, redis_prefix=shared_redis) as (url_a, app_a),
        realtime(infra, keys, queue_prefix=shared_queue, redis_prefix=shared_redis) as (url_b, _),
    ):
        on_a, on_b = await listen(url_a), await listen(url_b)
        names = [f"Shared {i}" for i in range(10)]
        await publish(app_a, *(event("category.created", id=str(uuid.uuid4()), name=n) for n in names))
        await on_a.hears("category:added", 10)
        await on_b.hears("category:added", 10)
        await asyncio.sleep(0.5)
        for ear in (on_a, on_b):
            heard = ear.of("category:added")
            assert sorted(h["data"]["name"] for h in heard) == sorted(names)
            seqs = sorted(h["seq"] for h in heard)
            assert seqs == list(range(seqs[0], seqs[0] + 10))
        await hang_up(on_a, on_b)


async def test_an_event_that_could_not_be_stored_is_not_marked_seen_and_its_redelivery_is_heard(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime(infra, keys) as (url, app):
        guest = await listen(url)
        ctx = app.state.ctx
        notifier = ctx.state
        broken = f"{ctx.settings.redis_prefix}realtime:stream:public"
        await ctx.redis.set(broken, "not a stream")  # the room's buffer cannot take an entry
        env = event("category.updated", id=str(uuid.uuid4()), name="Lamps")
        with pytest.raises(redis.exceptions.ResponseError):
            await notifier.handle(env)
        await ctx.redis.delete(broken)
        await notifier.handle(env)  # the broker's redelivery
        assert (await guest.hears("category:updated"))[0]["event_id"] == str(env.id)
        await hang_up(guest)


async def test_two_replicas_share_rooms_a_socket_on_one_hears_what_the_other_consumed(
    infra: Infra, keys: TestKeys
) -> None:
    """Replicas share one queue (one of them consumes each event) and one Redis: every socket hears it once."""
    shared = {
        "queue_prefix": f"{infra.queue_prefix}{uuid.uuid4().hex[:6]}.",
        "redis_prefix": f"{infra.redis_prefix}{uuid.uuid4().hex[:6]}:",
    }
    payer = uuid.uuid4()
    async with (
        realtime(infra, keys, **shared) as (url_a, _),
        realtime(infra, keys, **shared) as (url_b, app_b),
    ):
        on_a = await listen(url_a, {"token": keys.mint(user_id=payer)})
        on_b = await listen(url_b, {"token": keys.mint(role="admin")})
        order_id = str(uuid.uuid4())
        paid = event(
            "payment.succeeded",
            payment_id=str(uuid.uuid4()),
            order_id=order_id,
            user_id=str(payer),
            amount=500,
            currency="EUR",
        )
        # RabbitMQ hands the event to one replica of the shared queue: here B, which the payer is not on
        await app_b.state.ctx.state.handle(paid)
        for ear in (on_a, on_b):
            [told] = await ear.hears("payment:succeeded")
            assert told["data"]["order_id"] == order_id
        await asyncio.sleep(0.3)
        assert len(on_a.of("payment:succeeded")) == len(on_b.of("payment:succeeded")) == 1
        await hang_up(on_a, on_b)
