"""Admin commands over the socket: who may send them, validation first, the owner's answer in the ack."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from realtime_testkit import hang_up, listen, realtime_with_standins

from libs.common.testing import Infra, TestKeys


def a_product(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Desk lamp",
        "price": 2599,
        "currency": "EUR",
        "sku": f"LAMP-{uuid.uuid4().hex[:6]}",
        "category_id": str(uuid.uuid4()),
        "stock": 3,
        **extra,
    }


async def test_an_admins_product_add_reaches_guests_and_the_ack_carries_the_product(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime_with_standins(infra, keys) as (url, _, services):
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        ack = await admin.sio.call("product:add", a_product(), timeout=10)
        assert ack["ok"] is True, ack
        product = ack["data"]
        assert product["id"] in services.products and product["price"] == 2599
        added = (await guest.hears("product:added"))[0]
        assert added["data"]["id"] == product["id"] and added["event_id"] and added["room"] == "public"
        assert added["type"] == "product.created" and added["seq"] >= 1 and added["occurred_at"]
        await hang_up(guest, admin)


async def test_a_users_or_guests_command_is_refused_and_changes_nothing(infra: Infra, keys: TestKeys) -> None:
    async with realtime_with_standins(infra, keys) as (url, _, services):
        user = await listen(url, {"token": keys.mint()})
        guest = await listen(url)
        for ear in (user, guest):
            for name, payload in (
                ("product:add", a_product()),
                ("category:add", {"name": "Lamps"}),
                ("order:updateStatus", {"order_id": str(uuid.uuid4()), "status": "paid"}),
            ):
                ack = await ear.sio.call(name, payload, timeout=10)
                assert ack["ok"] is False and ack["error"]["status"] == 403, ack
        await asyncio.sleep(0.3)
        assert services.calls == [] and services.products == {}
        assert user.of("product:added") == [] and guest.of("product:added") == []
        await hang_up(user, guest)


async def test_the_owners_validation_comes_back_in_the_ack_and_nothing_is_made(
    infra: Infra, keys: TestKeys
) -> None:
    """Realtime keeps no copy of catalog's rules: catalog's own 422, per-field errors included, is the ack."""
    async with realtime_with_standins(infra, keys) as (url, _, services):
        admin = await listen(url, {"token": keys.mint(role="admin")})
        ack = await admin.sio.call("product:add", {"name": "", "price": -1}, timeout=10)
        assert ack["ok"] is False and ack["error"]["status"] == 422, ack
        assert {e["field"] for e in ack["error"]["errors"]} >= {"name", "price", "sku", "category_id"}
        # catalog's limits, not an older copy's: a 65-character SKU is refused (a copy allowed 100)
        ack = await admin.sio.call("product:add", a_product(sku="S" * 65), timeout=10)
        assert ack["error"]["status"] == 422 and [e["field"] for e in ack["error"]["errors"]] == ["sku"]
        ack = await admin.sio.call("product:add", a_product(unknown_field=1), timeout=10)
        assert ack["error"]["status"] == 422 and [e["field"] for e in ack["error"]["errors"]] == [
            "unknown_field"
        ]
        # the resource's id names the route: it must be a UUID before anything is sent
        ack = await admin.sio.call("product:update", {"id": "../categories", "price": 5}, timeout=10)
        assert ack["error"]["status"] == 422 and [e["field"] for e in ack["error"]["errors"]] == ["id"]
        ack = await admin.sio.call("category:delete", "just a string", timeout=10)
        assert ack["ok"] is False and ack["error"]["status"] == 422
        assert services.calls == [] and services.products == {}
        await hang_up(admin)


async def test_the_owning_services_refusal_comes_back_in_the_ack(infra: Infra, keys: TestKeys) -> None:
    async with realtime_with_standins(infra, keys) as (url, _, services):
        admin = await listen(url, {"token": keys.mint(role="admin")})
        first = await admin.sio.call("product:add", a_product(sku="SAME-1"), timeout=10)
        again = await admin.sio.call("product:add", a_product(sku="SAME-1"), timeout=10)
        assert first["ok"] is True and again["ok"] is False
        assert again["error"]["status"] == 409 and "SKU" in again["error"]["detail"]
        order_id = str(uuid.uuid4())
        services.orders[order_id] = {
            "id": order_id,
            "user_id": str(uuid.uuid4()),
            "status": "pending_payment",
        }
        ack = await admin.sio.call(
            "order:updateStatus", {"order_id": order_id, "status": "shipped"}, timeout=10
        )
        assert ack["error"]["status"] == 409 and ack["error"]["allowed"] == ["paid", "cancelled"]
        missing = await admin.sio.call("product:delete", {"id": str(uuid.uuid4())}, timeout=10)
        assert missing["error"]["status"] == 404 and missing["error"]["title"] == "Not found"
        await hang_up(admin)


async def test_an_admins_status_change_reaches_the_owner_and_admins_but_no_other_user(
    infra: Infra, keys: TestKeys
) -> None:
    owner_id = uuid.uuid4()
    async with realtime_with_standins(infra, keys) as (url, _, services):
        order_id = str(uuid.uuid4())
        services.orders[order_id] = {"id": order_id, "user_id": str(owner_id), "status": "paid"}
        owner = await listen(url, {"token": keys.mint(user_id=owner_id)})
        other = await listen(url, {"token": keys.mint()})
        admin = await listen(url, {"token": keys.mint(role="admin")})
        ack = await admin.sio.call(
            "order:updateStatus",
            {"order_id": order_id, "status": "processing", "reason": "packing"},
            timeout=10,
        )
        assert ack["ok"] is True and ack["data"]["status"] == "processing"
        told = (await owner.hears("order:statusUpdated"))[0]
        assert told["data"]["to"] == "processing" and told["room"] == f"user:{owner_id}"
        assert (await admin.hears("order:statusUpdated"))[0]["room"] == "admins"
        await asyncio.sleep(0.3)
        assert other.of("order:statusUpdated") == []
        await hang_up(owner, other, admin)


async def test_a_retried_command_with_the_same_request_id_creates_one_product(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime_with_standins(infra, keys) as (url, _, services):
        admin = await listen(url, {"token": keys.mint(role="admin")})
        payload = a_product(request_id="retry-me")
        first, second = await asyncio.gather(
            admin.sio.call("product:add", payload, timeout=10),
            admin.sio.call("product:add", payload, timeout=10),
        )
        third = await admin.sio.call("product:add", payload, timeout=10)
        assert first["ok"] is True and first == second == third
        assert len(services.products) == 1 and "request_id" not in next(iter(services.products.values()))
        other = await admin.sio.call("product:add", a_product(request_id="another"), timeout=10)
        assert other["ok"] is True and len(services.products) == 2
        await hang_up(admin)


async def test_a_request_id_reused_with_another_payload_is_refused_not_answered_with_the_first(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime_with_standins(infra, keys) as (url, _, services):
        admin = await listen(url, {"token": keys.mint(role="admin")})
        first = await admin.sio.call(
            "product:add", a_product(request_id="same-key", name="First"), timeout=10
        )
        assert first["ok"] is True
        other = await admin.sio.call(
            "product:add", a_product(request_id="same-key", name="Second"), timeout=10
        )
        assert other["ok"] is False and other["error"]["status"] == 422, other
        assert "request_id" in other["error"]["detail"]
        assert [p["name"] for p in services.products.values()] == ["First"]
        await hang_up(admin)
