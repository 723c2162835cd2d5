"""A return handled from the console's order detail, as an operator does it: approve what the customer
asked to send back, mark the goods received (stock back, refund by payments); a second admin with
the same order open sees each step live, the refund included."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from libs.common.testing import eventually
from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, admin, customer, make_product

pytestmark = pytest.mark.e2e


async def test_admin_approves_and_receives_a_return_and_another_admin_sees_the_refund_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=2000)
    buyer = await customer(gw, "console-return")
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 2}])).json()
    await buyer.pay(order["id"])
    await buyer.wait_status(order["id"], "paid")
    for to in ("processing", "shipped", "delivered"):
        moved = await gw.patch(f"/admin/orders/{order['id']}/status", json={"status": to}, headers=boss.auth)
        assert moved.status_code == 200, moved.text
    asked = await gw.post(
        f"/orders/{order['id']}/returns",
        json={"items": [{"line_id": 0, "quantity": 1, "reason": "too small"}]},
        headers=buyer.auth,
    )
    assert asked.status_code == 201, asked.text
    return_id = asked.json()["id"]
    stock_before = (await gw.get(f"/products/{product['id']}")).json()["stock"]

    operator, watcher = await open_console(), await open_console()
    details = []
    for console in (operator, watcher):
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        search = console.page.locator("#orders-search")
        await search.locator("[name=q]").fill("#" + order["id"][:8])
        await search.locator("[name=q]").press("Enter")
        await console.order_row(order["id"]).locator(".order-link").click()
        details.append(console.page.locator("#order-detail"))
    mine, theirs = details
    asked_row = mine.locator(f'li[data-return-id="{return_id}"]')
    seen_row = theirs.locator(f'li[data-return-id="{return_id}"]')
    await expect(asked_row).to_contain_text("requested")
    await expect(asked_row).to_contain_text("too small")

    await asked_row.get_by_role("button", name="Approve").click()
    await expect(asked_row.locator(".status")).to_have_text("approved")
    await expect(seen_row.locator(".status")).to_have_text("approved")  # live in the other console

    receive = asked_row.get_by_role("button", name="Goods received: restock and refund")
    await receive.click()
    await expect(asked_row.get_by_role("button", name="Confirm: received, refund")).to_be_visible()
    await asked_row.get_by_role("button", name="Confirm: received, refund").click()
    # payments refunds the line's share; the return then reads refunded, in both consoles
    await expect(seen_row.locator(".status")).to_have_text("refunded")
    await expect(seen_row).to_contain_text("refund $")
    await expect(asked_row.locator(".status")).to_have_text("refunded")
    await expect(asked_row.locator("button")).to_have_count(0)  # nothing further to do

    async def restocked() -> None:
        assert (await gw.get(f"/products/{product['id']}")).json()["stock"] == stock_before + 1

    await eventually(restocked, timeout=20)
    operator.assert_clean()
    watcher.assert_clean()
