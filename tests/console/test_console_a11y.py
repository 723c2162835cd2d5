"""Every screen of the console read by a machine for people who use it differently: an axe-core scan
(npm, pinned in the console's package.json, never served) finds nothing serious or critical, the
details open included; and at 360 px each screen fits the phone and is photographed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from services.realtime.console import HERE
from tests.console.console_page import ARTIFACTS, ConsolePage, install_console_packages
from tests.console.test_console_layout import overflow
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, admin, customer, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
# the page's screens, in page order: each is scanned and photographed on its own
SCREENS = (
    "dashboard",
    "orders",
    "customers",
    "catalog",
    "promotions",
    "shipping",
    "taxes",
    "emails",
    "webhooks",
    "apikeys",
)


def axe_source() -> str:
    if not AXE.is_file():  # a run started by hand after package.json gained axe-core
        install_console_packages()
    return AXE.read_text()


async def serious(page: Page, selector: str) -> list[str]:
    """axe's serious and critical violations inside ``selector``, one line each with where."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        # evaluated by the test driver, not loaded by the page: the console's CSP stays as it is
        await page.evaluate(await asyncio.to_thread(axe_source))
    found: list[dict[str, Any]] = await page.evaluate(
        """async (selector) => {
          const result = await axe.run(selector, { resultTypes: ["violations"] });
          return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                           where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
        }""",
        selector,
    )
    return [f"{v['impact']} {v['id']} ({v['help']}): {', '.join(v['where'])}" for v in found]


async def shop_with_something_on_every_screen(gw: httpx.AsyncClient) -> tuple[Shopper, dict[str, Any]]:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=1, price=1500)
    buyer = await customer(gw, "a11y")
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    return buyer, order


async def signed_in(browser: Browser, stack: Stack, width: int) -> tuple[ConsolePage, Any]:
    context = await browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    console = await ConsolePage(await context.new_page()).open(stack.gateway)
    return console, context


async def all_loaded(console: ConsolePage, order_id: str) -> None:
    page = console.page
    await expect(page.locator("#dashboard")).to_have_attribute("data-loaded", "true")
    await expect(page.locator("#dash-lowstock")).to_have_attribute("data-loaded", "true")
    await expect(console.order_row(order_id)).to_be_visible()
    await expect(page.locator("#apikey-scopes input")).not_to_have_count(0)
    await expect(page.locator("#zone-form .method-row")).to_have_count(1)


async def test_no_screen_has_a_serious_accessibility_violation(
    browser: Browser, stack: Stack, gw: httpx.AsyncClient
) -> None:
    buyer, order = await shop_with_something_on_every_screen(gw)
    console, context = await signed_in(browser, stack, 1440)
    try:
        page = console.page
        found = {"sign-in": await serious(page, "body")}
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        await all_loaded(console, order["id"])
        for name in SCREENS:
            found[name] = await serious(page, f"#{name}")
        found["header and feed"] = await serious(page, ".topbar, .screens, .feed")
        # refused input shown beside its fields is read too
        await page.locator("#zone-form").get_by_role("button", name="Add zone").click()
        await expect(page.locator('#zone-form [data-error-for="name"]')).not_to_be_empty()
        found["shipping, refused"] = await serious(page, "#shipping")

        await console.order_row(order["id"]).locator(".order-link").click()
        await expect(page.locator("#order-detail")).to_contain_text("Timeline")
        found["order detail"] = await serious(page, "#order-detail")
        await page.keyboard.press("Escape")

        search = page.locator("#customers-search")
        await search.locator("[name=q]").fill(buyer.email)
        await search.locator("[name=q]").press("Enter")
        await page.locator(f'#customers-body tr[data-user-id="{buyer.user_id}"] button').first.click()
        await expect(page.locator("#customer-detail")).to_be_visible()
        found["customer detail"] = await serious(page, "#customer-detail")
        problems = [f"{name}: {line}" for name, lines in found.items() for line in lines]
        assert not problems, "\n".join(problems)
        console.assert_clean()
    finally:
        await context.close()


async def test_every_screen_fits_a_360_px_phone(
    browser: Browser, stack: Stack, gw: httpx.AsyncClient
) -> None:
    _, order = await shop_with_something_on_every_screen(gw)
    console, context = await signed_in(browser, stack, 360)
    try:
        page = console.page
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        await all_loaded(console, order["id"])
        ARTIFACTS.mkdir(exist_ok=True)
        too_wide = {}
        for name in SCREENS:
            screen = page.locator(f"#{name}")
            await screen.scroll_into_view_if_needed()
            if out := await overflow(page):
                too_wide[name] = out
            await screen.screenshot(path=str(ARTIFACTS / f"console-360-{name}.png"))
        assert too_wide == {}
        console.assert_clean()
    finally:
        await context.close()
