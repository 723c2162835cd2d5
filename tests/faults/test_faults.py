"""Fault injection: the whole system as processes, with its broker, database and Redis failing under it.

Each test breaks one thing the way production breaks it (a connection cut by the network,
a process killed by the kernel) and asserts what a customer or an admin would notice
during and after the fault: what answers, how fast, and that once the fault is gone every
order, payment, stock figure and live notification is right, with no double effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
import socketio

from libs.common.testing import assert_problem, eventually
from tests.e2e.shopper import ADDRESS, Listener, Shopper, admin, customer, make_product
from tests.faults.conftest import Faults

pytestmark = pytest.mark.e2e

BROKER_OUTAGE = 10.0  # seconds the broker stays unreachable in the first test
BOUNDED = 10.0  # seconds within which a request must be answered while a dependency is down


async def checkout(
    gw: httpx.AsyncClient, buyer: Shopper, order_id: str, *, timeout: float = 30
) -> dict[str, Any]:
    """A payment intent, once payments has heard of the order (it learns of it by event)."""

    async def known() -> dict[str, Any]:
        resp = await gw.post("/payment/checkout", json={"order_id": order_id}, headers=buyer.auth)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    return await eventually(known, timeout=timeout, interval=0.2)


def paid_entries(order: dict[str, Any]) -> int:
    return [h["to"] for h in order["status_history"]].count("paid")


def notified(ears: Listener, name: str, order_id: str, **match: Any) -> list[dict[str, Any]]:
    """Distinct notifications ``name`` about ``order_id`` (by event id: the client de-duplicates by it)."""
    seen: dict[str, dict[str, Any]] = {}
    for n in ears.events(name):
        data = n.get("data", {})
        if data.get("order_id") == order_id and all(data.get(k) == v for k, v in match.items()):
            seen.setdefault(n["event_id"], n)
    return list(seen.values())


@contextlib.asynccontextmanager
async def listening(url: str, token: str) -> AsyncIterator[Listener]:
    ears = await Listener(url, token).connect()
    try:
        yield ears
    finally:
        await ears.close()


# --- 1. RabbitMQ unreachable -------------------------------------------------------------------


async def test_broker_outage_delays_events_but_loses_and_doubles_none(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """Ten seconds without RabbitMQ: shopping goes on, what depends on events waits, nothing is lost or doubled.

    Orders, payments and stock are synchronous; only what travels by event (paid status,
    payments learning of a new order, carts emptied, the console) is late, and complete after.
    """
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=30, price=1500)
    buyers = list(await asyncio.gather(*(customer(gw, f"steady{i}") for i in range(6))))
    async with listening(faults.stack.gateway, boss.token) as console:
        # the cart learns of the product by event: fill every cart while the broker is up
        await asyncio.gather(
            *(
                eventually(functools.partial(b.add_to_cart, product["id"], 1), timeout=15, interval=0.2)
                for b in buyers
            )
        )
        early, late = buyers[:3], buyers[3:]
        orders = {b.email: (await b.place_order()).json()["id"] for b in early}
        await asyncio.gather(*(checkout(gw, b, orders[b.email]) for b in early))

        cut_at = time.monotonic()
        await faults.host.cut(faults.amqp)
        # customers keep shopping: payments are taken and orders placed, their events wait in outboxes
        for b in early:
            await b.pay(orders[b.email])
        for b in late:
            orders[b.email] = (await b.place_order()).json()["id"]
        for b in early:
            assert (await b.order(orders[b.email]))["status"] == "pending_payment"  # paid shows once told
        unheard = await gw.post(
            "/payment/checkout", json={"order_id": orders[late[0].email]}, headers=late[0].auth
        )
        # payments has not heard of it yet: retry, rather than a 404 that says it does not exist
        assert unheard.status_code == 425 and unheard.headers["retry-after"] == "1", unheard.text
        ready = (await gw.get(f"{faults.stack.url('catalog')}/readyz")).json()
        assert ready["checks"]["broker"].startswith("unavailable"), ready
        await asyncio.sleep(max(0.0, BROKER_OUTAGE - (time.monotonic() - cut_at)))
        await faults.host.restore(faults.amqp)

        await asyncio.gather(*(b.pay(orders[b.email]) for b in late))
        for b in buyers:
            order = await b.wait_status(orders[b.email], "paid", timeout=40)
            assert [h["to"] for h in order["status_history"]] == ["pending_payment", "paid"], order

        async def console_told_of_everything() -> None:
            for order_id in orders.values():
                assert notified(console, "order:created", order_id), f"no order:created for {order_id}"
                assert notified(console, "payment:succeeded", order_id), f"no payment:succeeded {order_id}"
                assert notified(console, "order:statusUpdated", order_id, to="paid"), f"no paid {order_id}"

        await eventually(console_told_of_everything, timeout=20, interval=0.1)
        for order_id in orders.values():
            for name in ("order:created", "payment:succeeded", "order:statusUpdated"):
                assert len(notified(console, name, order_id)) == 1, (name, order_id)
        raw = [n["data"]["order_id"] for n in console.events("order:created")]
        assert sorted(raw) == sorted(orders.values()), "a notification was sent twice"

    assert (await gw.get(f"/products/{product['id']}")).json()["stock"] == 30 - len(buyers)

    async def carts_emptied() -> None:
        for b in buyers:
            assert (await gw.get("/cart", headers=b.auth)).json()["items"] == [], b.email

    await eventually(carts_emptied, timeout=15, interval=0.2)


# --- 2. A consumer killed mid-handling ---------------------------------------------------------


@contextlib.asynccontextmanager
async def order_row_locked(faults: Faults, order_id: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold the order's row lock from outside, so orders' payment handler blocks inside its transaction."""
    conn = await asyncpg.connect(faults.database_dsn("orders"), timeout=10)
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", uuid.UUID(order_id))
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def blocked_on_a_lock(faults: Faults) -> None:
    """Some session of the orders database waits for a row lock (ours)."""
    conn = await asyncpg.connect(faults.database_dsn("orders"), timeout=10)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            f"{faults.direct.db_prefix}orders",
        )
    finally:
        await conn.close()
    assert waiting >= 1, "the payment handler is not waiting yet"


async def waiting_in_queue(faults: Faults, service: str, suffix: str = "") -> int:
    """Deliveries ready (not handed out) in a service's queue, asked of the real broker."""
    conn = await aio_pika.connect(faults.direct.amqp_url, timeout=5)
    try:
        channel = await conn.channel()
        queue = await channel.declare_queue(
            f"{faults.direct.queue_prefix}{service}.events{suffix}", passive=True
        )
        return int(queue.declaration_result.message_count or 0)
    finally:
        await conn.close()


async def redelivery_pending(faults: Faults) -> None:
    assert await waiting_in_queue(faults, "orders") == 1, "payment.succeeded is not back in the queue"


async def paid_marker(
    gw: httpx.AsyncClient, faults: Faults, buyer: Shopper, product: dict[str, Any], console: Listener
) -> None:
    """Pay one more order and see it announced: the orders consumer has drained what came before it."""
    marker = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()["id"]
    await buyer.pay(marker)
    await buyer.wait_status(marker, "paid")
    await console.wait_for("order:statusUpdated", {"order_id": marker, "to": "paid"}, timeout=20)


async def test_orders_killed_inside_its_payment_transaction_pays_the_order_once(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """SIGKILL while the handler's transaction is open: nothing of it commits and the broker redelivers.

    An outside row lock on the order parks orders' payment.succeeded handler after its
    inbox insert, so the kill provably lands inside the handling, not before or after it.
    """
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5)
    buyer = await customer(gw, "interrupted")
    async with listening(faults.stack.gateway, boss.token) as console:
        order_id = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()[
            "id"
        ]
        await checkout(gw, buyer, order_id)
        async with order_row_locked(faults, order_id):
            await buyer.pay(order_id)  # payments records it and publishes payment.succeeded
            # orders received the event, wrote its inbox row and now waits on the order's lock
            await eventually(lambda: blocked_on_a_lock(faults), timeout=15, interval=0.05)
            faults.stack.stop("orders", sig=signal.SIGKILL)
        # neither the inbox row nor the status change was committed; the delivery was never acked
        await eventually(lambda: redelivery_pending(faults), timeout=10)
        faults.stack.start("orders")
        await faults.stack.wait_ready("orders")

        order = await buyer.wait_status(order_id, "paid", timeout=20)
        assert paid_entries(order) == 1, order["status_history"]
        await paid_marker(gw, faults, buyer, product, console)
        assert len(notified(console, "order:statusUpdated", order_id, to="paid")) == 1
        assert len(console.events("order:statusUpdated")) == 2  # this order's and the marker's, once each
    assert paid_entries(await buyer.order(order_id)) == 1


async def test_orders_killed_after_commit_before_ack_does_not_pay_twice(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """SIGKILL after the effect committed but before the ack left: the redelivery meets the inbox.

    The broker hands the same payment.succeeded to the restarted orders, which must see its
    id in the inbox and do nothing; its status event, still in the outbox, is sent once.
    """
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5)
    buyer = await customer(gw, "unacked")
    async with listening(faults.stack.gateway, boss.token) as console:
        order_id = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()[
            "id"
        ]
        await checkout(gw, buyer, order_id)
        # deliveries still reach orders, but nothing it sends the broker (acks, publishes) gets out
        await faults.host.hold(faults.orders_amqp)
        await buyer.pay(order_id)
        order = await buyer.wait_status(order_id, "paid")  # the effect is committed...
        assert not notified(console, "order:statusUpdated", order_id)  # ...its event still in the outbox
        faults.stack.stop("orders", sig=signal.SIGKILL)
        # the held ack dies with the connection: the broker hands payment.succeeded out again
        await faults.host.cut([faults.orders_amqp])
        await faults.host.restore([faults.orders_amqp])
        await eventually(lambda: redelivery_pending(faults), timeout=10)
        faults.stack.start("orders")
        await faults.stack.wait_ready("orders")

        await console.wait_for("order:statusUpdated", {"order_id": order_id, "to": "paid"}, timeout=20)
        await paid_marker(gw, faults, buyer, product, console)
        assert len(notified(console, "order:statusUpdated", order_id, to="paid")) == 1
        assert len(console.events("order:statusUpdated")) == 2
    order = await buyer.order(order_id)
    assert order["status"] == "paid" and paid_entries(order) == 1, order["status_history"]


# --- 3. PostgreSQL unreachable -----------------------------------------------------------------


async def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = await call
    return resp, time.monotonic() - started


async def test_database_outage_answers_503_at_once_and_heals_by_itself(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """Every database refusing connections: each request is a quick 503 problem, and service resumes alone."""
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=1000)
    buyer = await customer(gw, "dbless")
    items = [{"product_id": product["id"], "quantity": 1}]

    def requests() -> dict[str, Callable[[], Awaitable[httpx.Response]]]:
        # each made only when it is sent: a check that stops at the first failure leaves no request
        # made and never sent (an unawaited coroutine); a fresh search each time, so the catalog's
        # micro-cache must not answer for the database
        return {
            "browse": lambda: gw.get("/products", params={"q": uuid.uuid4().hex}),
            "sign in": lambda: gw.post(
                "/auth/login", json={"email": buyer.email, "password": buyer.password}
            ),
            "cart": lambda: gw.get("/cart", headers=buyer.auth),
            "my orders": lambda: gw.get("/orders", headers=buyer.auth),
            "order": lambda: gw.post(
                "/orders",
                json={"shipping_address": ADDRESS, "items": items},
                headers={**buyer.auth, "Idempotency-Key": uuid.uuid4().hex},
            ),
        }

    await faults.host.cut(faults.pg.values())
    for what, call in requests().items():
        resp, took = await timed(call())
        assert_problem(resp, 503)
        assert took < BOUNDED, f"{what} took {took:.1f} s"
        assert resp.headers.get("retry-after"), what
    ready = (await gw.get(f"{faults.stack.url('orders')}/readyz")).json()
    assert ready["checks"]["database"].startswith("unavailable"), ready
    await faults.host.restore(faults.pg.values())

    async def served_again() -> None:
        for what, call in requests().items():
            resp = await call()
            assert resp.status_code in (200, 201), f"{what}: {resp.status_code} {resp.text}"

    await eventually(served_again, timeout=20, interval=0.2)
    # the whole flow works again, events included (relays and consumers came back by themselves)
    order_id = (await buyer.place_order(items=items)).json()["id"]
    await buyer.pay(order_id)
    await buyer.wait_status(order_id, "paid")


async def test_event_consumed_while_its_consumers_database_is_down_is_applied_after(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """A consumer whose own database is down waits the outage out instead of losing the event.

    Waiting spends none of the event's retries (EVENT_RETRY_DELAYS, 1.7 s in this stack), so an
    outage longer than the whole retry budget still ends with the event applied, not dead-lettered.
    """
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=1000)
    buyer = await customer(gw, "stale")
    await eventually(lambda: buyer.add_to_cart(product["id"], 1), timeout=15, interval=0.2)
    waits_before = outage_waits(faults, "cart")
    parked_before = await dead_letters_of(faults, "cart")

    await faults.host.cut([faults.pg["cart"]])
    resp = await gw.patch(f"/admin/products/{product['id']}", json={"price": 1200}, headers=boss.auth)
    assert resp.status_code == 200, resp.text  # the catalog's own database is fine

    await eventually(lambda: waited(faults, "cart", waits_before + 1), timeout=10)  # product.updated waits
    assert_problem(await gw.get("/cart", headers=buyer.auth), 503)
    # longer than the retry budget: an error that spent retries would be in the DLQ by now
    await asyncio.sleep(3)
    await waited(faults, "cart", waits_before + 3)
    assert await dead_letters_of(faults, "cart") == parked_before
    await faults.host.restore([faults.pg["cart"]])

    async def cart_repriced() -> None:
        resp = await gw.get("/cart", headers=buyer.auth)
        assert resp.status_code == 200, resp.text
        assert resp.json()["items"][0]["unit_price"] == 1200, resp.json()

    await eventually(cart_repriced, timeout=15, interval=0.2)


async def test_database_that_stops_answering_costs_a_bounded_wait(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """A database that keeps connections open but answers nothing: the gateway's timeout bounds the wait."""
    assert (await gw.get("/products", params={"q": "warm"})).status_code == 200  # pooled connections exist
    await faults.host.hold(faults.pg["catalog"])  # connections stay open, nothing is answered
    resp, took = await timed(gw.get("/products", params={"q": uuid.uuid4().hex}))
    assert resp.status_code in (503, 504), resp.text
    assert_problem(resp, resp.status_code)
    assert took < BOUNDED + 2, f"answered after {took:.1f} s"
    await faults.host.restore([faults.pg["catalog"]])

    async def browsing_again() -> None:
        assert (await gw.get("/products", params={"q": uuid.uuid4().hex})).status_code == 200

    await eventually(browsing_again, timeout=40, interval=0.2)


# --- 4. Redis unreachable ----------------------------------------------------------------------


async def flood(url: str, source: str, *, batches: int, until_limited: bool = False) -> list[int]:
    """Batches of 50 guest requests at once from one loopback address (guests are limited per address)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    codes: list[int] = []
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=20) as guest:
        for _ in range(batches):
            answers = await asyncio.gather(*(guest.get("/categories") for _ in range(50)))
            codes += [r.status_code for r in answers]
            if until_limited and 429 in codes:
                break
    return codes


async def dead_letters_of(faults: Faults, service: str) -> int:
    return await waiting_in_queue(faults, service, ".dlq")


def outage_waits(faults: Faults, service: str) -> int:
    """How often the part's consumer has put an event back to wait for a dependency (its log says)."""
    return faults.stack.tail(service, 100000).count('"event_waits_for_dependency"')


async def waited(faults: Faults, service: str, at_least: int) -> None:
    assert (waits := outage_waits(faults, service)) >= at_least, waits


async def test_redis_outage_keeps_browsing_open_and_signed_in_work_closed(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """Without Redis the shop fails open only where that is safe (rate limits) and closed everywhere else.

    Browsing and registering work; anything needing a token, sign-in, password recovery and
    authenticated sockets answer 503. Notifications consumed meanwhile wait in realtime's queue
    until Redis is back (never in its DLQ, however long the outage); those published before the
    Socket.IO manager has re-subscribed miss the live connection and come back on resume.
    """
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=1000)
    buyer = await customer(gw, "redisless")
    quitter = await customer(gw, "quitter")
    assert (await gw.post("/auth/logout", headers=quitter.auth)).status_code == 204
    assert_problem(await gw.get("/users/me", headers=quitter.auth), 401)
    async with listening(faults.stack.gateway, boss.token) as console:
        # with Redis, a flooding address runs its bucket dry
        assert 429 in await flood(faults.stack.gateway, "127.0.0.2", batches=6, until_limited=True)

        # with Redis, the console hears catalog changes live; it remembers where it is in the room
        assert (
            await gw.patch(f"/admin/products/{product['id']}", json={"price": 1050}, headers=boss.auth)
        ).status_code == 200
        before = await console.wait_for("product:updated", {"id": product["id"], "price": 1050})
        witness = await customer(gw, "witness")  # where the console is in the admins' room
        admins_seen = await console.wait_for("user:registered", {"user_id": witness.user_id})
        parked_before = await dead_letters_of(faults, "realtime")
        waits_before = outage_waits(faults, "realtime")

        await faults.host.cut([faults.redis])
        started = time.monotonic()
        # browsing keeps working, and nobody is rate-limited (the limiter fails open)
        for path in ("/products", "/categories", f"/products/{product['id']}"):
            resp = await gw.get(path)
            assert resp.status_code == 200, (path, resp.text)
        assert set(await flood(faults.stack.gateway, "127.0.0.3", batches=3)) == {200}
        # revocations cannot be checked: every token is refused with 503, a revoked one included
        for token_of in (buyer, quitter):
            assert_problem(await gw.get("/users/me", headers=token_of.auth), 503)
        assert_problem(await gw.get("/cart", headers=buyer.auth), 503)
        assert_problem(await gw.post("/admin/products", headers=boss.auth, json={"name": "x"}), 503)
        # sign-in and password recovery count attempts (and keep codes) in Redis: refused, not unthrottled
        assert_problem(
            await gw.post("/auth/login", json={"email": buyer.email, "password": buyer.password}), 503
        )
        assert_problem(await gw.post("/auth/forgot-password", json={"email": buyer.email}), 503)
        assert_problem(await gw.post("/auth/verify-otp", json={"email": buyer.email, "otp": "123456"}), 503)
        # registering needs no Redis; its user.registered cannot be numbered for the console, though
        newcomer = await customer(gw, "newcomer")
        # live: a signed-in connection cannot be authenticated, a guest's can; the open one stays
        refused = Listener(faults.stack.gateway, buyer.token)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect()
        guest = await Listener(faults.stack.gateway).connect()
        await guest.close()
        assert console.sio.connected
        assert time.monotonic() - started < 2 * BOUNDED
        # realtime cannot number the newcomer's notification: it waits, past its retry budget, unparked
        await eventually(lambda: waited(faults, "realtime", waits_before + 3), timeout=15, interval=0.2)
        assert await dead_letters_of(faults, "realtime") == parked_before
        await faults.host.restore([faults.redis])

        async def trusted_again() -> None:
            assert (await gw.get("/users/me", headers=buyer.auth)).status_code == 200
            assert (await gw.get("/users/me", headers=quitter.auth)).status_code == 401  # still logged out

        await eventually(trusted_again, timeout=15, interval=0.2)
        await buyer.login()

        # live notifications come back on the connection that stayed open, though not at once: the
        # Socket.IO manager re-subscribes to Redis on its own back-off, and what is published before
        # that is not heard live. Each try is a new change; a 503 can still come from a service whose
        # pooled Redis connections died in the outage (redis-py fails their first use).
        prices = iter(range(1100, 1200))
        changed: list[int] = []

        async def heard_live() -> None:
            price = next(prices)
            resp = await gw.patch(
                f"/admin/products/{product['id']}", json={"price": price}, headers=boss.auth
            )
            assert resp.status_code == 200, resp.text
            changed.append(price)
            await console.wait_for("product:updated", {"id": product["id"], "price": price}, timeout=2)

        await eventually(heard_live, timeout=40, interval=0)
        # what the console missed is replayed when it resumes from the last number it saw
        ack = await console.command("resume", {"public": before["seq"], "admins": admins_seen["seq"]})
        assert ack["ok"], ack
        heard = {
            n["event_id"]: n["data"]["price"]
            for n in console.events("product:updated")
            if n["seq"] > before["seq"]
        }  # live and replayed copies share the event id
        assert sorted(heard.values()) == changed, (heard, changed)

        # the newcomer's notification was numbered once Redis came back: live, replayed, or both
        await eventually(lambda: _heard_once(console, newcomer.user_id), timeout=15)
        assert await dead_letters_of(faults, "realtime") == parked_before


def notified_user(ears: Listener, user_id: str) -> list[dict[str, Any]]:
    return [n for n in ears.events("user:registered") if n["data"].get("user_id") == user_id]


async def _heard_once(ears: Listener, user_id: str) -> None:
    """One notification, whether it came live, on replay or both (copies share the event id and seq)."""
    heard = {(n["event_id"], n["seq"]) for n in notified_user(ears, user_id)}
    assert len(heard) == 1, ears.events("user:registered")
