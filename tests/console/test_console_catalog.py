"""The console's products table: searched and paged through the catalog's own search."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, admin, make_product

pytestmark = pytest.mark.e2e


async def test_admin_searches_the_products_and_pages_through_them(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    tag = "lantern" + uuid.uuid4().hex[:6]
    made = await asyncio.gather(*(make_product(gw, boss, name=f"Camp {tag} no {i}") for i in range(21)))
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    search = page.locator("#products-search")
    rows = page.locator("#products-body tr")
    pager = page.get_by_role("navigation", name="Products pages")

    await search.locator("[name=q]").fill(tag)
    await search.locator("[name=q]").press("Enter")
    await expect(rows).to_have_count(20)
    await expect(page.locator("#products-count")).to_have_text("(21)")
    await expect(page.locator("#products-page")).to_have_text("Page 1 of 2")
    first = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.productId)"))
    await pager.get_by_role("button", name="Next").click()
    await expect(page.locator("#products-page")).to_have_text("Page 2 of 2")
    await expect(rows).to_have_count(1)
    last = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.productId)"))
    assert first | last == {p["id"] for p in made}

    await search.locator("[name=q]").fill(f"nothing-{tag}-here")
    await search.get_by_role("button", name="Search").click()
    await expect(page.locator("#products-empty")).to_be_visible()
    await expect(rows).to_have_count(0)
    await search.get_by_role("button", name="Clear").click()
    await expect(rows).to_have_count(20)
    await expect(page.locator("#products-page")).to_contain_text("Page 1 of")
    console.assert_clean()
