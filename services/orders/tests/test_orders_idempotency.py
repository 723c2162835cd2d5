"""Idempotency-Key: one order per key and user, whatever races or repeats."""

from __future__ import annotations

import asyncio
import uuid

from orders_standins import ADDRESS, CatalogStandIn

from libs.common.testing import assert_problem, serve_app


async def test_twenty_concurrent_requests_with_one_key_place_one_order_and_reserve_once(
    client, catalog, cart, user, as_user
):
    standin = catalog[0]
    pid = standin.add_product(price=700, stock=100)
    cart[0].put(user, (pid, 2))
    headers = {**as_user, "Idempotency-Key": f"checkout-{uuid.uuid4()}"}
    before = len(standin.reserve_calls)

    async def place_as_a_client_would():  # a 409 "in progress" says when to come back (Retry-After)
        for _ in range(10):
            answer = await client.post("/orders", json={"shipping_address": ADDRESS}, headers=headers)
            if answer.status_code != 409 or "Retry-After" not in answer.headers:
                return answer
            await asyncio.sleep(float(answer.headers["Retry-After"]))
        return answer

    answers = await asyncio.gather(*(place_as_a_client_would() for _ in range(20)))

    assert {a.status_code for a in answers} == {201}, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert all(a.json() == answers[0].json() for a in answers)
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 19
    assert len(standin.reserve_calls) - before == 1
    assert standin.stock(pid) == 98
    listed = (await client.get("/orders", headers=as_user)).json()
    assert listed["total"] == 1


async def test_a_repeated_key_after_success_returns_the_first_order(client, catalog, as_user):
    pid = catalog[0].add_product(stock=5)
    body = {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 1}]}
    headers = {**as_user, "Idempotency-Key": "same-key"}
    first = await client.post("/orders", json=body, headers=headers)
    again = await client.post("/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and catalog[0].stock(pid) == 4


async def test_the_same_key_of_another_user_is_a_different_order(client, catalog, keys):
    pid = catalog[0].add_product(stock=5)
    body = {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 1}]}
    a = await client.post("/orders", json=body, headers={**keys.bearer(), "Idempotency-Key": "k1"})
    b = await client.post("/orders", json=body, headers={**keys.bearer(), "Idempotency-Key": "k1"})
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


async def test_a_key_reused_for_a_different_request_is_refused(client, catalog, as_user):
    pid = catalog[0].add_product(stock=5)
    headers = {**as_user, "Idempotency-Key": "reused"}
    first = await client.post(
        "/orders",
        headers=headers,
        json={"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 1}]},
    )
    assert first.status_code == 201
    other = await client.post(
        "/orders",
        headers=headers,
        json={"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 2}]},
    )
    assert "different request" in assert_problem(other, 422)["detail"]
    assert catalog[0].stock(pid) == 4


async def test_a_refusal_is_the_keys_answer_too(client, catalog, as_user):
    pid = catalog[0].add_product(stock=1)
    body = {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 2}]}
    headers = {**as_user, "Idempotency-Key": "short-once"}
    first = await client.post("/orders", json=body, headers=headers)
    calls = len(catalog[0].reserve_calls)
    again = await client.post("/orders", json=body, headers=headers)
    assert assert_problem(first, 409)["short"] == assert_problem(again, 409)["short"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(catalog[0].reserve_calls) == calls


async def test_a_key_can_be_retried_after_the_catalog_was_down(start_orders, catalog, keys):
    down = CatalogStandIn()
    async with serve_app(down.app()) as url:
        pass
    pid = catalog[0].add_product(stock=3)
    headers = {**keys.bearer(), "Idempotency-Key": "retry-me"}
    body = {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 1}]}
    async with start_orders(catalog_url=url) as broken:
        assert_problem(await broken.post("/orders", json=body, headers=headers), 503)
    async with start_orders() as healthy:
        retried = await healthy.post("/orders", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert catalog[0].stock(pid) == 2


async def test_a_malformed_key_is_refused(client, as_user):
    resp = await client.post(
        "/orders", json={"shipping_address": ADDRESS}, headers={**as_user, "Idempotency-Key": "x" * 300}
    )
    assert_problem(resp, 422)


async def test_a_key_is_forgotten_after_its_time_to_live(start_orders, catalog, keys):
    pid = catalog[0].add_product(stock=5)
    headers = {**keys.bearer(), "Idempotency-Key": "short-lived"}
    body = {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 1}]}
    async with start_orders(idempotency_ttl=1) as client:
        first = await client.post("/orders", json=body, headers=headers)
        await asyncio.sleep(1.1)
        later = await client.post("/orders", json=body, headers=headers)
    assert first.status_code == later.status_code == 201
    assert first.json()["id"] != later.json()["id"] and catalog[0].stock(pid) == 3
