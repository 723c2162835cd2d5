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


async def test_categories_form_a_tree_that_products_are_filed_in(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    tag = uuid.uuid4().hex[:6]
    form = console.category_form
    await form.locator("[name=name]").fill(f"Outdoor {tag}")
    await form.get_by_role("button", name="Add category").click()
    parent = page.locator("#categories-list li", has_text=f"Outdoor {tag}")
    await expect(parent).to_have_attribute("data-depth", "0")
    parent_id = await parent.get_attribute("data-category-id")

    # a child made from its parent's line sits under it, indented
    await parent.get_by_role("button", name=f"Add inside Outdoor {tag}").click()
    await expect(form.locator("[name=parent_id]")).to_have_value(str(parent_id))
    await expect(form.locator("[name=name]")).to_be_focused()
    await page.keyboard.type(f"Tents {tag}")
    await page.keyboard.press("Enter")
    child = page.locator("#categories-list li", has_text=f"Tents {tag}")
    await expect(child).to_have_attribute("data-depth", "1")
    child_id = await child.get_attribute("data-category-id")
    assert await parent.evaluate("li => li.nextElementSibling.dataset.categoryId") == child_id
    stored = await gw.get(f"/categories/{child_id}")
    assert stored.json()["parent_id"] == parent_id

    # the product editor offers it under its parent
    await page.get_by_role("button", name="New product").click()
    choice = page.locator("#product-editor [name=category_id] option", has_text=f"Tents {tag}")
    await expect(choice).to_have_text(f"\u2014 Tents {tag}")
    await page.keyboard.press("Escape")
    await expect(page.locator("#product-editor")).to_be_hidden()

    # a category cannot be moved under itself or its own child
    await parent.get_by_role("button", name="Edit", exact=True).click()
    parents = await form.locator("[name=parent_id] option").all_text_contents()
    assert not [p for p in parents if tag in p], parents
    console.assert_clean()
