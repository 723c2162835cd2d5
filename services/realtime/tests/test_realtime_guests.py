"""Guests hear only what the public REST API would show them; admins hear everything."""

from __future__ import annotations

import asyncio
import uuid

from realtime_testkit import event, hang_up, listen, publish, realtime_with_standins

from libs.common.testing import Infra, TestKeys


async def test_an_unpublished_products_news_reach_admins_only_even_on_replay(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime_with_standins(infra, keys) as (url, app, _):
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        draft, shown = str(uuid.uuid4()), str(uuid.uuid4())
        await publish(
            app,
            event("product.created", id=draft, name="Secret lamp", price=9900, is_active=False, version=1),
        )
        await admin.hears("product:added")
        await publish(
            app,
            event("product.updated", id=draft, name="Secret lamp", price=9500, is_active=False, version=2),
            event("stock.changed", product_id=draft, stock=7, version=3),
            event("product.created", id=shown, name="Desk lamp", is_active=True, version=1),
        )
        await admin.hears("product:updated")
        await admin.hears("stock:updated")
        first = (await guest.hears("product:added"))[0]
        assert first["data"]["id"] == shown
        # admins heard the draft in their own room, the public one heard only the published product
        assert {n["room"] for n in admin.of("product:updated")} == {"admins"}
        await asyncio.sleep(0.3)
        assert [n["data"]["id"] for n in guest.of("product:added")] == [shown]
        assert guest.of("product:updated") == [] and guest.of("stock:updated") == []
        # a guest asking for the whole public history gets no trace of the draft either
        late = await listen(url, {"last_seq": {"public": first["seq"] - 1}})
        await late.hears("product:added")
        await asyncio.sleep(0.3)
        assert all(draft not in str(n) for _, n in late.heard)
        await hang_up(guest, admin, late)


async def test_stock_of_a_product_realtime_never_saw_follows_what_catalog_shows(
    infra: Infra, keys: TestKeys
) -> None:
    """A stock change carries no visibility: realtime asks catalog's public route, as a guest would."""
    async with realtime_with_standins(infra, keys) as (url, app, services):
        hidden, public = str(uuid.uuid4()), str(uuid.uuid4())
        services.products[hidden] = {"id": hidden, "name": "Hidden", "is_active": False, "version": 4}
        services.products[public] = {"id": public, "name": "Shown", "is_active": True, "version": 4}
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        await publish(
            app,
            event("stock.changed", product_id=hidden, stock=1, version=5),
            event("stock.changed", product_id=public, stock=2, version=5),
        )
        await admin.hears("stock:updated", 2)
        assert [n["data"]["product_id"] for n in await guest.hears("stock:updated")] == [public]
        await asyncio.sleep(0.3)
        assert len(guest.of("stock:updated")) == 1
        await hang_up(guest, admin)


async def test_guests_hear_a_published_product_go_and_nothing_of_it_after(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime_with_standins(infra, keys) as (url, app, _):
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        lamp = str(uuid.uuid4())
        await publish(app, event("product.created", id=lamp, name="Lamp", is_active=True, version=1))
        await guest.hears("product:added")
        await publish(
            app, event("product.deleted", id=lamp, name="Lamp", is_active=True, deleted=True, version=2)
        )
        assert (await guest.hears("product:deleted"))[0]["data"]["id"] == lamp
        await publish(app, event("stock.changed", product_id=lamp, stock=0, version=3))
        assert (await admin.hears("stock:updated"))[0]["room"] == "admins"
        await asyncio.sleep(0.3)
        assert guest.of("stock:updated") == []
        await hang_up(guest, admin)


async def test_guests_learn_only_that_a_product_they_saw_was_withdrawn(infra: Infra, keys: TestKeys) -> None:
    async with realtime_with_standins(infra, keys) as (url, app, _):
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        lamp = str(uuid.uuid4())
        await publish(
            app, event("product.created", id=lamp, name="Lamp", price=2500, is_active=True, version=1)
        )
        await guest.hears("product:added")
        await publish(
            app, event("product.updated", id=lamp, name="Lamp", price=1900, is_active=False, version=2)
        )
        withdrawn = (await guest.hears("product:updated"))[0]
        assert withdrawn["data"] == {"id": lamp, "is_active": False, "version": 2}  # not the new price
        full = [n for n in await admin.hears("product:updated", 2) if n["room"] == "admins"]
        assert full[0]["data"]["price"] == 1900
        # once hidden, its further changes stay with the admins
        await publish(
            app, event("product.updated", id=lamp, name="Lamp", price=1800, is_active=False, version=3)
        )
        await admin.hears("product:updated", 3)
        await asyncio.sleep(0.3)
        assert len(guest.of("product:updated")) == 1
        await hang_up(guest, admin)
