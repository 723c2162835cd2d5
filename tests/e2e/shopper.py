"""What a frontend does, as small steps the journeys compose."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from libs.common.testing import eventually

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Analytical St",
    "city": "London",
    "postal_code": "N1 1AA",
    "country": "GB",
}


@dataclass
class Shopper:
    """A signed-in customer (or admin) talking to the gateway."""

    gw: httpx.AsyncClient
    email: str
    password: str
    token: str = ""
    refresh: str = ""
    user_id: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def register(self, name: str = "Test Shopper") -> Shopper:
        resp = await self.gw.post(
            "/auth/register", json={"email": self.email, "password": self.password, "name": name}
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        self.token, self.refresh, self.user_id = (
            body["access_token"],
            body["refresh_token"],
            body["user"]["id"],
        )
        return self

    async def login(self) -> Shopper:
        resp = await self.gw.post("/auth/login", json={"email": self.email, "password": self.password})
        assert resp.status_code == 200, resp.text
        self.token, self.refresh = resp.json()["access_token"], resp.json()["refresh_token"]
        me = await self.gw.get("/users/me", headers=self.auth)
        assert me.status_code == 200, me.text
        self.user_id = me.json()["id"]
        return self

    async def add_to_cart(self, product_id: str, quantity: int) -> dict[str, Any]:
        resp = await self.gw.post(
            "/cart", json={"product_id": product_id, "quantity": quantity}, headers=self.auth
        )
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    async def place_order(
        self, *, key: str | None = None, items: list[dict[str, Any]] | None = None, expect: int = 201
    ) -> httpx.Response:
        body: dict[str, Any] = {"shipping_address": ADDRESS}
        if items is not None:
            body["items"] = items
        resp = await self.gw.post(
            "/orders", json=body, headers={**self.auth, "Idempotency-Key": key or uuid.uuid4().hex}
        )
        assert resp.status_code == expect, resp.text
        return resp

    async def pay(self, order_id: str, payment_method: str = "pm_card_visa") -> dict[str, Any]:
        """Checkout (once payments knows the order) and verify, as a frontend would."""

        async def checkout() -> dict[str, Any]:
            resp = await self.gw.post(
                "/payment/checkout",
                json={"order_id": order_id, "payment_method": payment_method},
                headers=self.auth,
            )
            assert resp.status_code in (200, 201), resp.text
            return resp.json()

        intent = await eventually(checkout, timeout=15, interval=0.2)
        resp = await self.gw.post(
            "/payment/verify", json={"payment_intent_id": intent["payment_intent_id"]}, headers=self.auth
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def order(self, order_id: str) -> dict[str, Any]:
        resp = await self.gw.get(f"/orders/{order_id}", headers=self.auth)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def wait_status(self, order_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        async def check() -> dict[str, Any]:
            order = await self.order(order_id)
            assert order["status"] == status, order["status"]
            return order

        return await eventually(check, timeout=timeout, interval=0.2)


@dataclass
class Listener:
    """A Socket.IO client through the gateway that records every notification."""

    url: str
    token: str | None = None
    transport: str = "websocket"
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))

    async def connect(self) -> Listener:
        @self.sio.on("*")
        async def any_event(event: str, data: Any = None) -> None:
            self.received.append((event, data if isinstance(data, dict) else {"value": data}))

        await self.sio.connect(
            self.url,
            auth={"token": self.token} if self.token else None,
            transports=[self.transport],
            socketio_path="socket.io",
            wait_timeout=10,
        )
        return self

    def events(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.received if event == name]

    async def wait_for(
        self, name: str, match: dict[str, Any] | None = None, timeout: float = 15
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any]:
            for data in self.events(name):
                inner = data.get("data", {})
                if all(inner.get(k) == v for k, v in (match or {}).items()):
                    return data
            raise AssertionError(f"no {name} {match} yet; got {[e for e, _ in self.received]}")

        return await eventually(check, timeout=timeout, interval=0.05)

    async def command(self, name: str, payload: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
        ack = await self.sio.call(name, payload, timeout=timeout)
        assert isinstance(ack, dict), ack
        return ack

    async def close(self) -> None:
        await self.sio.disconnect()
        await asyncio.sleep(0)


# the admin this run makes, or the one an external stack has (tests/e2e/external.py)
ADMIN_EMAIL = os.environ.get("SHOP_ADMIN_EMAIL") or "admin@e2e.shop.test"
ADMIN_PASSWORD = os.environ.get("SHOP_ADMIN_PASSWORD") or "Admin-pass-e2e-1"


def new_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@e2e.shop.test"


async def admin(gw: httpx.AsyncClient) -> Shopper:
    return await Shopper(gw, ADMIN_EMAIL, ADMIN_PASSWORD).login()


async def customer(gw: httpx.AsyncClient, tag: str = "buyer") -> Shopper:
    return await Shopper(gw, new_email(tag), "Customer-pass-1").register()


async def make_product(
    gw: httpx.AsyncClient, boss: Shopper, *, stock: int = 20, price: int = 2500, name: str | None = None
) -> dict[str, Any]:
    cat = await gw.post("/admin/categories", json={"name": f"Cat {uuid.uuid4().hex[:6]}"}, headers=boss.auth)
    assert cat.status_code == 201, cat.text
    resp = await gw.post(
        "/admin/products",
        headers=boss.auth,
        json={
            "name": name or f"Trail shoe {uuid.uuid4().hex[:6]}",
            "description": "A sturdy shoe for muddy paths",
            "price": price,
            "currency": "USD",
            "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            "category_id": cat.json()["id"],
            "stock": stock,
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()
