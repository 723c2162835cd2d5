"""The console on a phone: nothing wider than the screen at 360 and 420 px, with an order open too;
and the keyboard reaches what the mouse does (Tab order, Enter submits, Escape closes)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.console.console_page import ConsolePage
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, admin, customer, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


async def overflow(page: Page) -> list[str]:
    """What sticks out to the right of the viewport (none when the page fits)."""
    return await page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          if (document.documentElement.scrollWidth > width) out.push("page " + document.documentElement.scrollWidth);
          for (const node of document.querySelectorAll("body *")) {
            const box = node.getBoundingClientRect();
            if (box.width && box.right > width + 1 && !node.closest("[hidden]")) {
              out.push((node.id || node.className || node.tagName) + " " + Math.round(box.right));
            }
          }
          return out.slice(0, 10);
        }"""
    )


@pytest.mark.parametrize("width", [360, 420])
async def test_the_console_fits_a_phone_screen(
    browser: Browser, stack: Stack, gw: httpx.AsyncClient, width: int
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=3, price=1999, name="A rather long product name " * 3)
    buyer = await customer(gw, "phone")
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    context = await browser.new_context(viewport={"width": width, "height": 800}, locale="en-US")
    try:
        console = await ConsolePage(await context.new_page()).open(stack.gateway)
        page = console.page
        assert await overflow(page) == []  # the sign-in
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        await expect(console.order_row(order["id"])).to_be_visible()
        await expect(page.locator("#dash-revenue")).not_to_be_empty()
        assert await overflow(page) == []
        await console.screenshot(f"console-{width}.png")

        await console.order_row(order["id"]).locator(".order-link").click()
        await expect(page.locator("#order-detail")).to_be_visible()
        await expect(page.locator("#order-detail")).to_contain_text(product["name"].strip())
        assert await overflow(page) == []
        await console.screenshot(f"console-{width}-order.png")
        console.assert_clean()
    finally:
        await context.close()


async def test_the_keyboard_searches_opens_and_closes_an_order(
    browser: Browser, stack: Stack, gw: httpx.AsyncClient
) -> None:
    buyer = await customer(gw, "keyboard")
    product = await make_product(gw, await admin(gw), stock=3)
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        console = await ConsolePage(await context.new_page()).open(stack.gateway)
        page = console.page
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        box = page.locator("#orders-search [name=q]")
        await box.focus()
        await page.keyboard.type(order["id"][:8])
        await page.keyboard.press("Enter")  # Enter submits the search
        await expect(page.locator("#orders-body tr")).to_have_count(1)
        # Tab walks the search form in reading order, to its Search button (a date field takes
        # one Tab per part: day, month, year)
        order_of_tabs: list[str] = []
        for _ in range(11):
            await page.keyboard.press("Tab")
            order_of_tabs.append(
                await page.evaluate("document.activeElement.name || document.activeElement.textContent")
            )
        walked = [name for i, name in enumerate(order_of_tabs) if i == 0 or order_of_tabs[i - 1] != name]
        assert walked[:5] == ["status", "from", "to", "Search", "Clear"], order_of_tabs
        link = console.order_row(order["id"]).locator(".order-link")
        await link.focus()
        outline = await link.evaluate("el => getComputedStyle(el).outlineStyle")
        assert outline != "none"  # the focus can be seen
        await page.keyboard.press("Enter")
        await expect(page.locator("#order-detail")).to_be_visible()
        await expect(page.locator("#order-detail [data-role=close]")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.locator("#order-detail")).to_be_hidden()
        await expect(link).to_be_focused()
        console.assert_clean()
    finally:
        await context.close()
