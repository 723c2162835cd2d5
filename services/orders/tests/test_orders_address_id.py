"""POST /orders with address_id: the saved address is read from the real auth service and copied."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest_asyncio
from orders_standins import ADDRESS, TOKEN, CatalogStandIn

from libs.common.testing import Infra, assert_problem, serve_app, settings_for
from libs.common.testing.apps import free_port
from services.auth import addresses
from services.auth.app import create_app as create_auth
from services.auth.models import User
from services.auth.schemas import AddressIn
from services.auth.settings import AuthSettings

Start = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
# the region comes along: tax rates and shipping zones by region apply to the order
SAVED = {**ADDRESS, "line2": "Flat 2", "region": "Greater London", "phone": "+44 20 7946 0000"}


@pytest_asyncio.fixture(scope="module")
async def auth(infra: Infra) -> AsyncIterator[tuple[Any, str]]:
    app = create_auth(settings_for(AuthSettings, infra, internal_api_token=TOKEN, email_backend="log"))
    async with serve_app(app) as url:
        yield app.state.ctx, url


async def saved_address(auth_ctx: Any, user_id: uuid.UUID, body: dict[str, Any]) -> str:
    """A user in auth with one saved address (made by auth's own code); returns its id."""
    async with auth_ctx.db.session() as session:
        async with session.begin():
            session.add(
                User(id=user_id, email=f"{user_id}@example.com", name="Ada", password_hash="x", addresses=[])
            )
        saved = await addresses.add(session=session, user_id=user_id, body=AddressIn.model_validate(body))
    return str(saved.id)


async def test_an_order_placed_with_address_id_stores_that_address(
    start_orders: Start,
    auth: tuple[Any, str],
    catalog: tuple[CatalogStandIn, str],
    user: uuid.UUID,
    as_user: dict[str, str],
) -> None:
    address_id = await saved_address(auth[0], user, SAVED)
    pid = catalog[0].add_product(price=700, stock=5)
    async with start_orders(auth_url=auth[1]) as client:
        resp = await client.post(
            "/orders",
            headers=as_user,
            json={"address_id": address_id, "items": [{"product_id": pid, "quantity": 2}]},
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["shipping_address"] == SAVED
        fetched = await client.get(f"/orders/{resp.json()['id']}", headers=as_user)
        assert fetched.json()["shipping_address"]["line1"] == SAVED["line1"]
    assert catalog[0].stock(pid) == 3


async def test_both_or_neither_address_and_a_strangers_address_are_422_and_nothing_is_reserved(
    start_orders: Start, auth: tuple[Any, str], catalog: tuple[CatalogStandIn, str], as_user: dict[str, str]
) -> None:
    strangers = await saved_address(auth[0], uuid.uuid4(), SAVED)
    pid = catalog[0].add_product(price=700, stock=5)
    items = [{"product_id": pid, "quantity": 1}]
    async with start_orders(auth_url=auth[1]) as client:
        for body in (
            {"items": items},
            {"items": items, "address_id": strangers, "shipping_address": ADDRESS},
            {"items": items, "address_id": strangers},
        ):
            resp = await client.post("/orders", headers=as_user, json=body)
            assert_problem(resp, 422)
            assert "address" in resp.text
        assert (await client.get("/orders", headers=as_user)).json()["total"] == 0
    assert catalog[0].stock(pid) == 5


async def test_auth_down_is_a_503_with_retry_after_and_no_order(
    start_orders: Start, catalog: tuple[CatalogStandIn, str], as_user: dict[str, str]
) -> None:
    pid = catalog[0].add_product(price=700, stock=5)
    async with start_orders(auth_url=f"http://127.0.0.1:{free_port()}") as client:
        resp = await client.post(
            "/orders",
            headers=as_user,
            json={"address_id": str(uuid.uuid4()), "items": [{"product_id": pid, "quantity": 1}]},
        )
        assert_problem(resp, 503)
        assert resp.headers["Retry-After"]
        assert (await client.get("/orders", headers=as_user)).json()["total"] == 0
    assert catalog[0].stock(pid) == 5
