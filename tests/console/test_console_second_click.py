"""What cannot be undone from the console (deleting a category, a product or a picture, cancelling an
order from its row) takes a second click on the same button, which first says what the second will
do; a refusal is said and leaves the button as it was, so trying again asks again."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import OpenConsole
from tests.console.test_console_product_editor import image_order, open_editor, png, product_now
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, admin, make_product, new_email

pytestmark = pytest.mark.e2e


async def test_a_category_and_its_product_are_deleted_with_a_second_click(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    tag = uuid.uuid4().hex[:6]
    product = await make_product(gw, boss, name=f"Desk lamp {tag}")
    renamed = await gw.patch(
        f"/admin/categories/{product['category_id']}", json={"name": f"Lamps {tag}"}, headers=boss.auth
    )
    assert renamed.status_code == 200, renamed.text
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = console.page
    category = page.locator("#categories-list li", has_text=f"Lamps {tag}")

    # the catalog refuses a category that still has a product: said, and the button asks again
    await category.get_by_role("button", name="Delete").click()
    await expect(category.get_by_role("button", name="Confirm")).to_be_visible()
    await category.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#catalog-error")).to_contain_text("The category still has 1 product")
    await expect(category.get_by_role("button", name="Delete")).to_be_enabled()
    await expect(category.locator("button.armed")).to_have_count(0)

    # the product, from the keyboard: the first Enter arms, the second deletes
    await page.locator("#products-search [name=q]").fill(f"Desk lamp {tag}")
    await page.locator("#products-search [name=q]").press("Enter")
    row = console.product_row(product["id"])
    await row.get_by_role("button", name="Delete").focus()
    await page.keyboard.press("Enter")
    await expect(row.get_by_role("button", name="Confirm")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(row).to_have_count(0)
    assert (await gw.get(f"/products/{product['id']}")).status_code == 404

    # now empty, the category goes; the refusal's words go with it
    await category.get_by_role("button", name="Delete").click()
    await category.get_by_role("button", name="Confirm").click()
    await expect(category).to_have_count(0)
    await expect(page.locator("#catalog-error")).to_have_text("")
    assert (await gw.get(f"/categories/{product['category_id']}")).status_code == 404
    console.assert_clean()


async def test_a_picture_is_deleted_from_the_editor_with_a_second_click(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, name=f"Mug {uuid.uuid4().hex[:6]}")
    for name, colour in (("front.png", "#1f8a4c"), ("back.png", "#2459d6")):
        uploaded = await gw.post(
            f"/admin/products/{product['id']}/images",
            headers=boss.auth,
            files={"file": (name, png(colour), "image/png")},
        )
        assert uploaded.status_code == 201, uploaded.text
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    editor = await open_editor(console, await product_now(gw, boss, product["id"]))
    await expect(editor.locator("#product-images li")).to_have_count(2)
    front, back = await image_order(console.page)
    card = editor.locator(f'#product-images li[data-image-id="{front}"]')

    # left alone, the armed button goes back to what it said and nothing is deleted
    await card.get_by_role("button", name="Delete").click()
    await expect(card.get_by_role("button", name="Confirm")).to_be_visible()
    await expect(card.get_by_role("button", name="Delete")).to_be_visible()
    assert len((await product_now(gw, boss, product["id"]))["media"]) == 2
    await card.get_by_role("button", name="Delete").click()
    await card.get_by_role("button", name="Confirm").click()
    await expect(editor.locator("#product-images li")).to_have_count(1)
    await expect(editor.locator("#product-images li")).to_have_attribute("data-image-id", back)
    assert [m["id"] for m in (await product_now(gw, boss, product["id"]))["media"]] == [back]
    console.assert_clean()


async def test_an_order_is_cancelled_from_its_row_with_a_second_click(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5)
    buyer = await Shopper(gw, new_email("console-cancel"), "Customer-pass-1").register(name="Cy Cancel")
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    search = console.page.locator("#orders-search")
    await search.locator("[name=q]").fill("#" + order["id"][:8])
    await search.locator("[name=q]").press("Enter")
    row = console.order_row(order["id"])

    # left alone, the armed button goes back to what it said and the order stays as it was
    await row.get_by_role("button", name="cancel", exact=True).click()
    await expect(row.get_by_role("button", name="confirm cancel")).to_be_visible()
    await expect(row.get_by_role("button", name="cancel", exact=True)).to_be_visible()
    assert (await buyer.order(order["id"]))["status"] == "pending_payment"
    await row.get_by_role("button", name="cancel", exact=True).click()
    await row.get_by_role("button", name="confirm cancel").click()
    await expect(row.locator(".status")).to_have_text("cancelled")
    assert (await buyer.order(order["id"]))["status"] == "cancelled"
    console.assert_clean()
