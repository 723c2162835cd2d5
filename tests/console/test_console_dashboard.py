"""The console's dashboard: today's figures and low stock, moved by events alone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from playwright.async_api import Request, expect

from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, admin, customer, make_product

pytestmark = pytest.mark.e2e


def cents(text: str) -> int:
    return round(float(re.sub(r"[^0-9.]", "", text)) * 100)


async def test_the_dashboard_counts_todays_orders_and_low_stock_live_without_polling(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=2, price=1234)
    buyer = await customer(gw, "dashboard")
    console = await open_console()
    page = console.page
    asked: list[str] = []

    def on_request(request: Request) -> None:
        if "/admin/orders" in request.url:
            asked.append(request.url)

    page.on("request", on_request)
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    async with threshold_kept(gw, boss):
        await page.locator("#dash-threshold").fill("1")
        await page.locator("#dash-threshold").press("Enter")
        await page.locator("#dash-threshold").blur()
        await expect(page.locator("#dash-lowstock-empty")).to_have_text("Nothing is at or below 1 unit.")
        lowstock = page.locator(f'#dash-lowstock li[data-product-id="{product["id"]}"]')
        await expect(lowstock).to_have_count(0)  # 2 left is above 1

        async def figures() -> tuple[int, int]:
            count = int(await page.locator("#dash-orders").inner_text())
            revenue = await page.locator("#dash-revenue").inner_text()
            return count, cents(revenue) if "+" not in revenue else -1

        await expect(page.locator("#dashboard")).to_have_attribute(
            "data-loaded", "true"
        )  # today's orders are in
        before_count, before_revenue = await figures()
        hour = await page.evaluate("new Date().getHours()")
        bar = page.locator(f'#dash-chart rect[data-hour="{hour}"]')
        before_bar = int(await bar.get_attribute("data-count") or 0)

        order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
        await expect(page.locator("#dash-orders")).to_have_text(str(before_count + 1))
        if before_revenue >= 0:
            assert (await figures())[1] == before_revenue + 1234
        await expect(bar).to_have_attribute("data-count", str(before_bar + 1))
        # the order took one of two units: now at the threshold
        await expect(lowstock).to_contain_text("1 left")
        await expect(lowstock).to_contain_text(product["name"])
        await console.picture(page.locator("#dashboard"), "dashboard.png")  # an order in, a variant low

        cancelled = await gw.post(f"/orders/{order['id']}/cancel", headers=buyer.auth)
        assert cancelled.status_code == 200, cancelled.text
        await expect(page.locator("#dash-orders")).to_have_text(str(before_count))
        await expect(lowstock).to_have_count(0)  # the units came back
        # everything after the first load came over the socket
        today = [url for url in asked if "created_from" in url]
        assert len(today) == 1, today
        await console.screenshot("console-dashboard.png")
        console.assert_clean()


@asynccontextmanager
async def threshold_kept(gw: httpx.AsyncClient, boss: Shopper) -> AsyncIterator[int]:
    """The low-stock threshold is the shop's (one for every admin): each test puts it back."""
    before = (await gw.get("/admin/settings/stock", headers=boss.auth)).json()["low_stock_threshold"]
    try:
        yield before
    finally:
        await gw.patch("/admin/settings/stock", json={"low_stock_threshold": before}, headers=boss.auth)


async def test_the_low_stock_threshold_is_the_shops_and_a_second_admin_sees_it_change_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=4, price=500)
    setter, watcher = await open_console(), await open_console()
    await setter.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await watcher.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    async with threshold_kept(gw, boss):
        await gw.patch("/admin/settings/stock", json={"low_stock_threshold": 3}, headers=boss.auth)
        await expect(watcher.page.locator("#dash-threshold")).to_have_value("3")
        seen = watcher.page.locator(f'#dash-lowstock li[data-product-id="{product["id"]}"]')
        await expect(seen).to_have_count(0)  # 4 units are above 3

        field = setter.page.locator("#dash-threshold")
        await field.fill("a few")
        await field.press("Enter")
        await expect(setter.page.locator("#dash-threshold-error")).to_have_text(
            "Enter a whole number of units, like 5."
        )
        await expect(field).to_have_attribute("aria-invalid", "true")
        got = (await gw.get("/admin/settings/stock", headers=boss.auth)).json()
        assert got["low_stock_threshold"] == 3  # refused: unchanged

        await field.fill("4")
        await field.press("Enter")
        # the other admin's list follows: the catalog now says 4 units are low
        await expect(watcher.page.locator("#dash-threshold")).to_have_value("4")
        await expect(seen).to_contain_text("4 left")
        got = (await gw.get("/admin/settings/stock", headers=boss.auth)).json()
        assert got["low_stock_threshold"] == 4

        restocked = await gw.post(
            f"/admin/products/{product['id']}/stock", json={"delta": 1}, headers=boss.auth
        )
        assert restocked.status_code == 200, restocked.text
        await expect(seen).to_have_count(0)  # 5 is above 4 again
        setter.assert_clean()
        watcher.assert_clean()


async def test_the_dashboard_counts_returns_waiting_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=800)
    buyer = await customer(gw, "returner")
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    await buyer.pay(order["id"])
    await buyer.wait_status(order["id"], "paid")
    for to in ("processing", "shipped", "delivered"):
        moved = await gw.patch(f"/admin/orders/{order['id']}/status", json={"status": to}, headers=boss.auth)
        assert moved.status_code == 200, moved.text
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    waiting = console.page.locator("#dash-returns")
    await expect(waiting).to_have_text(re.compile(r"^\d+$"))  # read from orders once
    before = int(await waiting.inner_text())
    asked = await gw.post(
        f"/orders/{order['id']}/returns",
        json={"items": [{"line_id": 0, "quantity": 1, "reason": "too small"}]},
        headers=buyer.auth,
    )
    assert asked.status_code == 201, asked.text
    await expect(waiting).to_have_text(str(before + 1))
    rejected = await gw.patch(
        f"/admin/returns/{asked.json()['id']}", json={"status": "rejected"}, headers=boss.auth
    )
    assert rejected.status_code == 200, rejected.text
    await expect(waiting).to_have_text(str(before))
    console.assert_clean()
