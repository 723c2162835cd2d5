"""promotion:* over the socket: admins create, change and delete promotions through the real pricing
service, and every admin console hears it live; customers and guests can do neither."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from realtime_testkit import hang_up, listen, realtime

from libs.common.testing import Infra, TestKeys, serve_app, settings_for
from services.pricing.app import create_app as create_pricing
from services.pricing.settings import PricingSettings


@pytest_asyncio.fixture(scope="module")
async def pricing(infra: Infra, keys: TestKeys) -> AsyncIterator[str]:
    settings = settings_for(
        PricingSettings,
        infra,
        keys,
        default_currency="EUR",
        db_prefix=f"{infra.db_prefix}rt_",
        events_queue_prefix=f"{infra.queue_prefix}rt.",
    )
    async with serve_app(create_pricing(settings)) as url:
        yield url


async def test_an_admins_promotion_commands_reach_pricing_and_every_admin_hears_them(
    infra: Infra, keys: TestKeys, pricing: str
) -> None:
    code = f"RT{uuid.uuid4().hex[:6].upper()}"
    async with realtime(infra, keys, pricing_url=pricing) as (url, _):
        admin = await listen(url, {"token": keys.mint(role="admin")})
        other_admin = await listen(url, {"token": keys.mint(role="admin")})
        customer = await listen(url, {"token": keys.mint()})
        guest = await listen(url)
        ack = await admin.sio.call(
            "promotion:add",
            {"name": "Winter", "code": code, "action": {"type": "percent_off", "value": 1_500}},
            timeout=10,
        )
        assert ack["ok"] is True, ack
        promotion = ack["data"]
        assert promotion["code"] == code and promotion["action"]["value"] == 1_500
        heard = (await other_admin.hears("promotion:added"))[0]
        assert heard["data"]["id"] == promotion["id"] and heard["room"] == "admins"

        changed = await admin.sio.call(
            "promotion:update", {"id": promotion["id"], "name": "Winter sale"}, timeout=10
        )
        assert changed["ok"] is True and changed["data"]["name"] == "Winter sale", changed
        assert (await other_admin.hears("promotion:updated"))[0]["data"]["name"] == "Winter sale"

        invalid = await admin.sio.call(
            "promotion:add", {"name": "Bad", "action": {"type": "percent_off", "value": 20_000}}, timeout=10
        )
        assert invalid["ok"] is False and invalid["error"]["status"] == 422, invalid
        assert invalid["error"]["errors"], "pricing's field errors come back in the ack"

        deleted = await admin.sio.call("promotion:delete", {"id": promotion["id"]}, timeout=10)
        assert deleted["ok"] is True, deleted
        assert (await other_admin.hears("promotion:deleted"))[0]["data"]["id"] == promotion["id"]

        for ear in (customer, guest):
            refused = await ear.sio.call(
                "promotion:add", {"name": "Mine", "action": {"type": "free_shipping"}}, timeout=10
            )
            assert refused["ok"] is False and refused["error"]["status"] == 403
        await asyncio.sleep(0.3)
        assert customer.of("promotion:added") == [] and guest.of("promotion:added") == []
        async with httpx.AsyncClient(base_url=pricing) as http:
            listed = await http.get("/admin/promotions", headers=keys.bearer(role="admin"))
        assert all(p["name"] != "Mine" for p in listed.json()["items"])
        await hang_up(admin, other_admin, customer, guest)
