"""Every change is told to the rest of the shop exactly once, through the outbox and RabbitMQ."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from catalog_helpers import Builder, EventTap

from libs.common.testing import eventually


async def test_every_admin_change_emits_exactly_one_event_with_the_resource(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], event_tap: EventTap
) -> None:
    cat = await build.category(description="first")
    renamed = (
        await client.patch(f"/admin/categories/{cat['id']}", json={"name": "Renamed"}, headers=admin)
    ).json()
    spare = await build.category()
    assert (await client.delete(f"/admin/categories/{spare['id']}", headers=admin)).status_code == 204
    p = await build.product(cat["id"], stock=4, attributes={"colour": "teal"})
    priced = (await client.patch(f"/admin/products/{p['id']}", json={"price": 777}, headers=admin)).json()
    stocked = (await client.post(f"/admin/products/{p['id']}/stock", json={"delta": 6}, headers=admin)).json()
    restocked = (await client.patch(f"/admin/products/{p['id']}", json={"stock": 2}, headers=admin)).json()
    assert (await client.delete(f"/admin/products/{p['id']}", headers=admin)).status_code == 204

    async def all_arrived() -> None:
        assert event_tap.of("product.deleted", id=p["id"])
        assert event_tap.of("category.deleted", id=spare["id"])

    await eventually(all_arrived)
    await asyncio.sleep(0.5)  # room for any duplicate to show up

    def one(type_: str, **match: Any) -> dict[str, Any]:
        found = event_tap.of(type_, **match)
        assert len(found) == 1, (type_, match, found)
        assert found[0].producer == "catalog"
        return found[0].data

    assert one("category.created", id=cat["id"]) == {**cat}
    assert one("category.updated", id=cat["id"]) == renamed
    assert one("category.created", id=spare["id"])["name"] == spare["name"]
    assert one("category.deleted", id=spare["id"])["slug"] == spare["slug"]
    created = one("product.created", id=p["id"])
    assert created == p and created["version"] == 1 and created["deleted"] is False
    updates = event_tap.of("product.updated", id=p["id"])
    assert [e.data for e in updates] == [priced, restocked]
    assert [e.data["version"] for e in updates] == [2, 4]
    assert [e.data["stock"] for e in event_tap.of("stock.changed", product_id=p["id"])] == [10, 2]
    assert [e.data["version"] for e in event_tap.of("stock.changed", product_id=p["id"])] == [3, 4]
    assert stocked["version"] == 3
    deleted = one("product.deleted", id=p["id"])
    assert deleted["deleted"] is True and deleted["version"] == 5 and deleted["sku"] == p["sku"]


async def test_refused_changes_emit_nothing(
    client: httpx.AsyncClient,
    build: Builder,
    admin: dict[str, str],
    user: dict[str, str],
    event_tap: EventTap,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=1)
    await client.patch(f"/admin/products/{p['id']}", json={"price": -5}, headers=admin)
    await client.patch(f"/admin/products/{p['id']}", json={"price": 5}, headers=user)
    await client.post(f"/admin/products/{p['id']}/stock", json={"delta": -2}, headers=admin)
    await client.delete(f"/admin/categories/{cat['id']}", headers=admin)
    marker = await build.category()

    async def marker_arrived() -> None:
        assert event_tap.of("category.created", id=marker["id"])

    await eventually(marker_arrived)
    assert not event_tap.of("product.updated", id=p["id"])
    assert not event_tap.of("stock.changed", product_id=p["id"])
    assert not event_tap.of("category.deleted", id=cat["id"])
