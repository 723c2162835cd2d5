"""The console's customers screen: find a customer, see their orders and addresses, block them,
change their role; every change that ends someone's sessions is confirmed first."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADDRESS, ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, admin, make_product, new_email

pytestmark = pytest.mark.e2e


async def test_admin_finds_a_customer_sees_their_orders_blocks_them_and_changes_their_role(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=990)
    tag = uuid.uuid4().hex[:6]
    buyer = await Shopper(gw, new_email("console-customer"), "Customer-pass-1").register(
        name=f"Grace Hopper {tag}"
    )
    saved = await gw.post(
        "/users/me/addresses", json={**ADDRESS, "line1": f"{tag} Harbour Rd"}, headers=buyer.auth
    )
    assert saved.status_code == 201, saved.text
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page

    search = page.locator("#customers-search")
    await search.locator("[name=q]").fill(f"grace hopper {tag}")
    await search.locator("[name=q]").press("Enter")
    row = page.locator(f'#customers-body tr[data-user-id="{buyer.user_id}"]')
    await expect(page.locator("#customers-body tr")).to_have_count(1)
    await expect(row).to_contain_text(buyer.email)
    await expect(row.locator('[data-role="state"]')).to_have_text("active")

    await row.get_by_role("button", name=f"Open customer Grace Hopper {tag}").click()
    detail = page.locator("#customer-detail")
    await expect(detail).to_be_visible()
    await expect(detail.locator(".addresses")).to_contain_text(f"{tag} Harbour Rd")
    await expect(detail.locator(f'.customer-orders li[data-order-id="{order["id"]}"]')).to_contain_text(
        "$9.90"
    )

    # blocking says what it does, and can be backed out of
    await detail.get_by_role("button", name="Block").click()
    await expect(detail.locator(".warning")).to_contain_text("signed out everywhere")
    await detail.get_by_role("button", name="Never mind").click()
    assert (await gw.get("/users/me", headers=buyer.auth)).status_code == 200
    await detail.get_by_role("button", name="Block").click()
    await detail.get_by_role("button", name="Yes, block").click()
    await expect(row.locator('[data-role="state"]')).to_have_text("blocked")
    await expect(detail.get_by_role("button", name="Unblock")).to_be_visible()
    login = await gw.post("/auth/login", json={"email": buyer.email, "password": buyer.password})
    assert login.status_code in (401, 403), login.text
    await detail.get_by_role("button", name="Unblock").click()
    await detail.get_by_role("button", name="Yes, unblock").click()
    await expect(row.locator('[data-role="state"]')).to_have_text("active")

    await detail.get_by_role("button", name="Make admin").click()
    await expect(detail.locator(".warning")).to_contain_text("the whole back office")
    await detail.get_by_role("button", name="Yes, make admin").click()
    await expect(row.locator('[data-role="role"]')).to_have_text("admin")
    await detail.get_by_role("button", name="Make customer").click()
    await detail.get_by_role("button", name="Yes, make customer").click()
    await expect(row.locator('[data-role="role"]')).to_have_text("customer")

    # from the customer to one of their orders, and Escape back out
    await detail.get_by_role("button", name="Open order #" + order["id"][:8]).click()
    await expect(page.locator("#order-detail")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#order-detail")).to_be_hidden()
    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()
    await expect(row.locator(".customer-link")).to_be_focused()
    console.assert_clean()


async def test_an_admin_cannot_block_themselves_and_is_told_why(open_console: OpenConsole) -> None:
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    search = page.locator("#customers-search")
    await search.locator("[name=q]").fill(ADMIN_EMAIL)
    await search.get_by_role("button", name="Search").click()
    rows = page.locator("#customers-body tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(ADMIN_EMAIL)
    await rows.locator(".customer-link").click()
    detail = page.locator("#customer-detail")
    await detail.get_by_role("button", name="Block").click()
    await detail.get_by_role("button", name="Yes, block").click()
    await expect(detail.locator(".detail-part .error")).to_contain_text("cannot block or demote themselves")
    await expect(rows.locator("[data-role=state]")).to_have_text("active")
    console.assert_clean()
