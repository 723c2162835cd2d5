"""Test helpers of the catalog (a uniquely named module: test folders have no packages)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from libs.common.events import Envelope


class EventTap:
    """Every catalog event of this run, read from RabbitMQ through a private queue."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def of(self, type_: str, **match: Any) -> list[Envelope]:
        return [
            e
            for e in self.events
            if e.type == type_ and all(str(e.data.get(k)) == str(v) for k, v in match.items())
        ]


def word() -> str:
    """A unique lowercase word, so each test's names and searches only meet its own data."""
    return "w" + uuid.uuid4().hex[:10]


class Builder:
    """Creates categories and products through the admin API."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin

    async def category(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        resp = await self.client.post(
            "/admin/categories", json={"name": name or f"Cat {word()}", **fields}, headers=self.admin
        )
        assert resp.status_code == 201, resp.text
        return resp.json()

    async def product(self, category_id: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "name": name or f"Thing {word()}",
            "price": 1000,
            "sku": f"SKU-{uuid.uuid4().hex[:12]}",
            "category_id": category_id,
            "stock": 5,
            **fields,
        }
        resp = await self.client.post("/admin/products", json=body, headers=self.admin)
        assert resp.status_code == 201, resp.text
        return resp.json()

    async def products(self, category_id: str, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.product(category_id, **s) for s in specs)))
