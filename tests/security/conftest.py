"""Who the security suites act as, and the only data they may change.

The whole stack (``stack``) is shared with the other suites, so nothing here touches data
another suite made. The security suites get an admin of their own (made with the
operator's ``create-admin`` command; on an external stack, ``SHOP_GATEWAY_URL``, the admin
it was given, spared whatever could lock it), a customer, a victim account for the
admin-only user routes, and a sandbox of category, product and order that admin
mutations are confined to.

Their traffic leaves from a loopback address of its own (``SOURCE_IP``): the gateway and
the auth service limit per client IP (login attempts, rate limits), so a fuzzer hammering
``/auth/login`` trips only its own limits, never another suite's logins.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from tests.e2e.external import ExternalStack
from tests.e2e.shopper import ADDRESS, ADMIN_EMAIL, ADMIN_PASSWORD, new_email
from tests.e2e.stack import ROOT, Stack

# a loopback address apart from 127.0.0.1 (Linux routes all of 127.0.0.0/8 to lo)
SOURCE_IP = "127.0.83.1"
PASSWORD = "Security-pass-1"


def source_ip(base_url: str) -> str | None:
    """``SOURCE_IP`` for a stack on this machine's loopback; None (the default route) for another."""
    return SOURCE_IP if httpx.URL(base_url).host in ("127.0.0.1", "localhost") else None


def loopback_client(base_url: str) -> httpx.AsyncClient:
    """An httpx client whose connections come from ``SOURCE_IP`` (when the stack is on loopback)."""
    transport = httpx.AsyncHTTPTransport(local_address=source_ip(base_url))
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=20, follow_redirects=False)


@dataclass
class Caller:
    """A signed-in account: its token, id and a way to open one more session."""

    email: str
    token: str
    user_id: str
    http: httpx.AsyncClient
    password: str = PASSWORD
    # the external stack's admin, used by others too: nothing may lock it or end its sessions
    shared: bool = False

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def another_session(self) -> str:
        """A fresh access token (its own session), for routes that end the session they are called with."""
        resp = await self.http.post("/auth/login", json={"email": self.email, "password": self.password})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])


@dataclass
class Sandbox:
    """Data the security suites made and may change or delete: never another suite's."""

    category: dict[str, Any]
    product: dict[str, Any]
    order: dict[str, Any]


@dataclass
class Cast:
    """The accounts the security suites play."""

    http: httpx.AsyncClient
    user: Caller
    admin: Caller
    victim: Caller

    async def sandbox(self) -> Sandbox:
        """A fresh category, a product in it with stock, and a pending order of ``user`` for it."""
        name = f"Sec {uuid.uuid4().hex[:8]}"
        cat = await self.http.post("/admin/categories", json={"name": name}, headers=self.admin.auth)
        assert cat.status_code == 201, cat.text
        prod = await self.http.post(
            "/admin/products",
            headers=self.admin.auth,
            json={
                "name": f"{name} lamp",
                "price": 1500,
                "currency": "USD",
                "sku": f"SEC-{uuid.uuid4().hex[:10]}",
                "category_id": cat.json()["id"],
                "stock": 50,
            },
        )
        assert prod.status_code == 201, prod.text
        order = await self.http.post(
            "/orders",
            headers={**self.user.auth, "Idempotency-Key": uuid.uuid4().hex},
            json={"shipping_address": ADDRESS, "items": [{"product_id": prod.json()["id"], "quantity": 1}]},
        )
        assert order.status_code == 201, order.text
        return Sandbox(category=cat.json(), product=prod.json(), order=order.json())


async def register(http: httpx.AsyncClient, tag: str) -> Caller:
    email = new_email(tag)
    resp = await http.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "name": f"Sec {tag}"}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return Caller(email=email, token=body["access_token"], user_id=body["user"]["id"], http=http)


async def make_admin(stack: Stack | ExternalStack, http: httpx.AsyncClient) -> Caller:
    """An admin of its own on the stack this run started; an external stack's given admin otherwise."""
    if isinstance(stack, Stack):
        email, password = new_email("sec-admin"), PASSWORD
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.auth", "create-admin", "--email", email, "--password", password],
            cwd=ROOT,
            env=stack.env("auth"),
            check=True,
            capture_output=True,
            timeout=60,
        )
    else:
        email, password = ADMIN_EMAIL, ADMIN_PASSWORD
    probe = Caller(
        email=email, token="", user_id="", http=http, password=password, shared=email == ADMIN_EMAIL
    )
    probe.token = await probe.another_session()
    me = await http.get("/users/me", headers=probe.auth)
    assert me.status_code == 200 and me.json()["role"] == "admin", me.text
    probe.user_id = me.json()["id"]
    return probe


@pytest_asyncio.fixture(scope="session")
async def cast(stack: Stack | ExternalStack) -> AsyncIterator[Cast]:
    """The security suites' own admin, customer and victim, talking from ``SOURCE_IP``."""
    async with loopback_client(stack.gateway) as http:
        user, victim = await register(http, "sec-user"), await register(http, "sec-victim")
        yield Cast(http=http, user=user, admin=await make_admin(stack, http), victim=victim)
