"""The console's orders screen as an operator uses it: find an order, open it, move it, ship it."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, admin, make_product, new_email
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


async def named_customer(gw: httpx.AsyncClient, name: str) -> Shopper:
    return await Shopper(gw, new_email("console-orders"), "Customer-pass-1").register(name=name)


async def test_admin_finds_an_order_opens_it_marks_it_paid_with_care_and_ships_it(
    open_console: OpenConsole, gw: httpx.AsyncClient, stack: Stack
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=10, price=1250)
    tag = uuid.uuid4().hex[:6]
    buyer = await named_customer(gw, f"Ada Lovelace {tag}")
    other = await named_customer(gw, f"Bob Other {tag}")
    line = [{"product_id": product["id"], "quantity": 2}]
    order = (await buyer.place_order(items=line)).json()
    older = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    await other.place_order(items=line)
    console = await open_console()
    watcher = await open_console()  # a second admin's screen, untouched
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await watcher.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    search = page.locator("#orders-search")

    # by customer e-mail: that customer's orders, named, and nobody else's
    await search.locator("[name=q]").fill(buyer.email)
    await search.get_by_role("button", name="Search").click()
    rows = page.locator("#orders-body tr")
    await expect(rows).to_have_count(2)
    await expect(console.order_row(order["id"])).to_contain_text(f"Ada Lovelace {tag}")
    await expect(console.order_row(order["id"])).to_contain_text(buyer.email)
    await expect(page.locator("#orders-page")).to_have_text("Page 1 of 1")
    # a filter that matches none of them says so
    await search.locator("[name=status]").select_option("delivered")
    await search.locator("[name=q]").press("Enter")
    await expect(page.locator("#orders-empty")).to_have_text("No orders match this search.")
    # by the number as printed: that order alone
    await search.get_by_role("button", name="Clear").click()
    await search.locator("[name=q]").fill("#" + order["id"][:8])
    await search.locator("[name=q]").press("Enter")
    await expect(rows).to_have_count(1)
    row = console.order_row(order["id"])
    await expect(row.get_by_role("button", name="paid")).to_be_visible()  # moves as the service allows

    await row.get_by_role("button", name="Open order #" + order["id"][:8]).click()
    detail = page.locator("#order-detail")
    await expect(detail).to_be_visible()
    await expect(detail).to_contain_text(product["name"])
    await expect(detail).to_contain_text(product["sku"])
    await expect(detail).to_contain_text("1 Analytical St")
    await expect(detail.locator(".timeline")).to_contain_text("pending payment by the customer")
    await expect(detail).to_contain_text("not paid")

    # marking an unpaid order paid names the risk and can be backed out of
    await detail.get_by_role("button", name="Move to paid").click()
    warning = detail.locator(".warning")
    await expect(warning).to_contain_text("No money has been received for it here")
    await detail.get_by_role("button", name="Keep it unpaid").click()
    await expect(warning).to_have_count(0)
    assert (await buyer.order(order["id"]))["status"] == "pending_payment"
    await detail.get_by_role("button", name="Move to paid").click()
    await detail.get_by_role("button", name="Yes, mark as paid").click()
    await expect(detail.locator(".detail-summary .status")).to_have_text("paid")
    await expect(detail.locator(".timeline")).to_contain_text("pending payment \u2192 paid by")
    await expect(detail).to_contain_text("marked paid by hand")  # no payment came: not "Paid: not paid"
    await expect(detail.locator(".timeline")).to_contain_text(ADMIN_EMAIL)

    await detail.get_by_role("button", name="Move to processing").click()
    await expect(detail.locator(".detail-summary .status")).to_have_text("processing")
    await detail.get_by_role("button", name="Move to shipped").click()
    await detail.locator("[name=carrier]").fill("DHL")
    await detail.locator("[name=tracking_number]").fill(f"TRK{tag}")
    await detail.get_by_role("button", name="Ship it").click()
    await expect(detail.locator(".detail-summary .status")).to_have_text("shipped")
    await expect(detail).to_contain_text(f"TRK{tag}")
    shipped = await buyer.order(order["id"])
    assert (
        shipped["fulfillment"]["carrier"] == "DHL"
        and shipped["fulfillment"]["tracking_number"] == f"TRK{tag}"
    )
    await expect(row.locator(".status")).to_have_text("shipped")

    await console.screenshot("console-order-detail.png")
    await console.picture(detail, "order-detail.png")
    # Escape closes the detail and leaves the admin where they were
    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()
    await expect(row.locator(".order-link")).to_be_focused()

    # the other admin saw it move without touching anything
    await expect(watcher.order_row(order["id"]).locator(".status")).to_have_text("shipped")
    await expect(watcher.order_row(order["id"])).to_contain_text(f"Ada Lovelace {tag}")
    assert older["id"] != order["id"]
    console.assert_clean()
    watcher.assert_clean()


async def test_admin_pages_through_a_customers_orders_and_filters_by_date(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=100, price=500)
    buyer = await named_customer(gw, f"Many Orders {uuid.uuid4().hex[:6]}")
    line = [{"product_id": product["id"], "quantity": 1}]
    ids: set[str] = set()
    for batch in (5, 5, 5, 5, 2):  # at most 5 unpaid at once: each batch is cancelled by its buyer
        placed = await asyncio.gather(*(buyer.place_order(items=line) for _ in range(batch)))
        for resp in placed:
            ids.add(resp.json()["id"])
            cancelled = await gw.post(f"/orders/{resp.json()['id']}/cancel", headers=buyer.auth)
            assert cancelled.status_code == 200, cancelled.text
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    search = page.locator("#orders-search")
    await search.locator("[name=q]").fill(buyer.email)
    await search.locator("[name=q]").press("Enter")
    rows = page.locator("#orders-body tr")
    await expect(rows).to_have_count(20)
    await expect(page.locator("#orders-count")).to_have_text("(22)")
    await expect(page.locator("#orders-page")).to_have_text("Page 1 of 2")
    pager = page.get_by_role("navigation", name="Orders pages")
    first_page = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)"))
    await pager.get_by_role("button", name="Next").click()
    await expect(page.locator("#orders-page")).to_have_text("Page 2 of 2")
    await expect(rows).to_have_count(2)
    second_page = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)"))
    assert first_page | second_page == ids and not first_page & second_page
    await expect(pager.get_by_role("button", name="Next")).to_be_disabled()

    # placed until yesterday: none of them
    yesterday = await page.evaluate(
        "(() => { const d = new Date(Date.now() - 86400000); "
        "return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' "
        "+ String(d.getDate()).padStart(2, '0'); })()"
    )
    await search.locator("[name=to]").fill(yesterday)
    await search.get_by_role("button", name="Search").click()
    await expect(page.locator("#orders-empty")).to_have_text("No orders match this search.")
    await expect(page.locator("#orders-page")).to_have_text("Page 1 of 1")
    console.assert_clean()
