"""Returns of delivered orders: who may ask for what, how admins move them, what each refunds."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from libs.common.events import Envelope
from libs.common.testing import assert_problem, eventually


async def _delivered(
    client, headers, as_admin, place, *, quantity: int = 3, price: int = 1000
) -> dict[str, Any]:
    order = await place(headers, quantity=quantity, price=price)
    url = f"/admin/orders/{order['id']}/status"
    for to in ("paid", "processing", "shipped", "delivered"):
        assert (await client.patch(url, json={"status": to}, headers=as_admin)).status_code == 200
    return order


def _ask(line_id: int = 0, quantity: int = 1, reason: str = "too small") -> dict[str, Any]:
    return {"items": [{"line_id": line_id, "quantity": quantity, "reason": reason}]}


async def test_a_customer_returns_part_of_an_order_and_each_step_is_announced(
    client, as_user, as_admin, place, bus
):
    order = await _delivered(client, as_user, as_admin, place, quantity=3, price=1000)
    asked = await client.post(
        f"/orders/{order['id']}/returns",
        json={**_ask(0, 2, "wrong colour"), "note": "box kept"},
        headers=as_user,
    )
    assert asked.status_code == 201, asked.text
    ret = asked.json()
    assert ret["status"] == "requested" and ret["refund_amount"] is None and ret["note"] == "box kept"
    assert ret["items"][0] | {"refund_amount": None} == {
        "line_id": 0,
        "product_id": order["items"][0]["product_id"],
        "variant_id": order["items"][0]["variant_id"],
        "name": order["items"][0]["name"],
        "quantity": 2,
        "reason": "wrong colour",
        "refund_amount": None,
    }
    listed = (await client.get(f"/orders/{order['id']}/returns", headers=as_user)).json()
    assert [r["id"] for r in listed] == [ret["id"]]

    url = f"/admin/returns/{ret['id']}"
    assert (await client.patch(url, json={"status": "approved"}, headers=as_admin)).json()[
        "status"
    ] == "approved"
    received = (await client.patch(url, json={"status": "received"}, headers=as_admin)).json()
    # two of three units: two thirds of what was paid, rounded down (the last unit gets the rest)
    assert received["status"] == "received" and received["refund_amount"] == order["total"] * 2 // 3
    assert received["items"][0]["refund_amount"] == received["refund_amount"] and received["received_at"]

    async def announced() -> None:
        types = [e.type for e in bus.of(order["id"]) if e.type.startswith("return.")]
        assert types == ["return.requested", "return.approved", "return.received"], types
        [got] = bus.of(order["id"], "return.received")
        assert (
            got.data["refund_amount"] == received["refund_amount"] and got.data["user_id"] == order["user_id"]
        )

    await eventually(announced)
    page = (await client.get("/admin/returns", params={"order_id": order["id"]}, headers=as_admin)).json()
    assert [r["id"] for r in page["items"]] == [ret["id"]] and page["total"] == 1


async def test_a_full_return_in_parts_refunds_exactly_what_was_paid(client, as_user, as_admin, place):
    order = await _delivered(client, as_user, as_admin, place, quantity=3, price=999)
    refunded = 0
    for quantity in (1, 2):
        ret = (
            await client.post(f"/orders/{order['id']}/returns", json=_ask(0, quantity), headers=as_user)
        ).json()
        for to in ("approved", "received"):
            resp = await client.patch(f"/admin/returns/{ret['id']}", json={"status": to}, headers=as_admin)
            assert resp.status_code == 200, resp.text
        refunded += resp.json()["refund_amount"]
    assert refunded == order["total"]
    # nothing is left to send back
    assert_problem(await client.post(f"/orders/{order['id']}/returns", json=_ask(0, 1), headers=as_user), 422)


async def test_what_may_be_returned(client, keys, as_user, as_admin, place, start_orders):
    pending = await place(as_user)
    refused = assert_problem(
        await client.post(f"/orders/{pending['id']}/returns", json=_ask(), headers=as_user), 409
    )
    assert refused["type"].endswith("/return-not-allowed") and refused["current_status"] == "pending_payment"

    order = await _delivered(client, as_user, as_admin, place, quantity=2)
    url = f"/orders/{order['id']}/returns"
    stranger = keys.bearer(user_id=uuid.uuid4(), role="user")
    assert_problem(await client.post(url, json=_ask(), headers=stranger), 404)
    assert_problem(await client.get(url, headers=stranger), 404)
    assert_problem(await client.post(url, json=_ask()), 401)
    too_many = assert_problem(await client.post(url, json=_ask(0, 3), headers=as_user), 422)
    assert (
        too_many["errors"][0]["field"] == "items.0.quantity"
        and "at most 2" in too_many["errors"][0]["message"]
    )
    assert_problem(await client.post(url, json=_ask(1, 1), headers=as_user), 422)  # no second line
    twice = {"items": [_ask(0, 1)["items"][0], _ask(0, 2)["items"][0]]}
    assert_problem(await client.post(url, json=twice, headers=as_user), 422)  # 3 in all
    for bad in ({"items": []}, _ask(0, 0), _ask(0, 1, ""), {**_ask(), "extra": 1}):
        assert_problem(await client.post(url, json=bad, headers=as_user), 422)
    assert (await client.get(url, headers=as_user)).json() == []  # the refusals kept nothing

    first = (await client.post(url, json=_ask(0, 2), headers=as_user)).json()
    assert_problem(await client.post(url, json=_ask(0, 1), headers=as_user), 422)  # both units asked for
    rejected = await client.patch(
        f"/admin/returns/{first['id']}", json={"status": "rejected"}, headers=as_admin
    )
    assert rejected.json()["status"] == "rejected"
    assert (await client.post(url, json=_ask(0, 1), headers=as_user)).status_code == 201  # free again

    # past the window (none here): refused with the date it closed
    async with start_orders(return_window_days=0) as strict:
        other = await _delivered(client, as_user, as_admin, place)
        await asyncio.sleep(0.01)
        closed = assert_problem(
            await strict.post(f"/orders/{other['id']}/returns", json=_ask(), headers=as_user), 409
        )
        assert closed["type"].endswith("/return-not-allowed") and closed["return_by"]


async def test_returns_move_only_along_their_statuses(client, as_user, as_admin, place):
    order = await _delivered(client, as_user, as_admin, place)
    ret = (await client.post(f"/orders/{order['id']}/returns", json=_ask(), headers=as_user)).json()
    url = f"/admin/returns/{ret['id']}"
    early = assert_problem(await client.patch(url, json={"status": "received"}, headers=as_admin), 409)
    assert early["allowed"] == ["approved", "rejected"] and early["current_status"] == "requested"
    assert_problem(
        await client.patch(url, json={"status": "refunded"}, headers=as_admin), 422
    )  # payments' word
    assert_problem(await client.patch(url, json={"status": "approved"}, headers=as_user), 403)
    assert_problem(await client.patch(url, json={"status": "approved"}), 401)
    assert_problem(await client.get("/admin/returns", headers=as_user), 403)
    assert_problem(
        await client.patch(f"/admin/returns/{uuid.uuid4()}", json={"status": "approved"}, headers=as_admin),
        404,
    )
    await client.patch(url, json={"status": "rejected"}, headers=as_admin)
    final = assert_problem(await client.patch(url, json={"status": "approved"}, headers=as_admin), 409)
    assert final["allowed"] == []


async def test_two_admins_receiving_one_return_receive_it_once(client, as_user, as_admin, place, bus):
    order = await _delivered(client, as_user, as_admin, place, quantity=2)
    ret = (await client.post(f"/orders/{order['id']}/returns", json=_ask(0, 2), headers=as_user)).json()
    url = f"/admin/returns/{ret['id']}"
    await client.patch(url, json={"status": "approved"}, headers=as_admin)
    answers = await asyncio.gather(
        *(client.patch(url, json={"status": "received"}, headers=as_admin) for _ in range(8))
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    [winner] = [a.json() for a in answers if a.status_code == 200]
    assert winner["refund_amount"] == order["total"]

    async def once() -> None:
        assert len(bus.of(order["id"], "return.received")) == 1

    await eventually(once)
    await asyncio.sleep(0.3)
    assert len(bus.of(order["id"], "return.received")) == 1


async def test_the_refund_of_a_received_return_marks_it_refunded_once(
    client, as_user, as_admin, place, bus, publish
):
    order = await _delivered(client, as_user, as_admin, place, quantity=2, price=1500)
    ret = (await client.post(f"/orders/{order['id']}/returns", json=_ask(0, 1), headers=as_user)).json()
    for to in ("approved", "received"):
        got = await client.patch(f"/admin/returns/{ret['id']}", json={"status": to}, headers=as_admin)
    amount = got.json()["refund_amount"]
    refunded = Envelope.new(
        "payment.refunded",
        {
            "payment_id": uuid.uuid4(),
            "order_id": order["id"],
            "user_id": order["user_id"],
            "amount": amount,
            "currency": order["currency"],
            "payment_intent_id": "pi_1",
            "refund_id": "re_1",
            "return_id": ret["id"],
        },
        producer="payments",
    )
    await publish(refunded)
    await publish(refunded)

    async def marked() -> None:
        [now] = (await client.get(f"/orders/{order['id']}/returns", headers=as_user)).json()
        assert now["status"] == "refunded" and now["refunded_at"], now
        assert len(bus.of(order["id"], "return.refunded")) == 1

    await eventually(marked)
    seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert seen["refund_amount"] == amount and seen["status"] == "delivered"
