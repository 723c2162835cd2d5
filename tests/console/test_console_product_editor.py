"""The product editor as an operator drives it: options and variants, images dropped from the desktop,
ordered and described, one variant's stock changed; a second admin's browser sees each change arrive
without reloading; refused input is said in a person's words and changes nothing; it fits a phone."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Locator, Page, expect

from tests.console.conftest import OpenConsole
from tests.console.console_page import ARTIFACTS, ConsolePage
from tests.console.test_console_layout import overflow
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, admin, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 80), colour).save(out, "PNG")
    return out.getvalue()


def variant_row(editor: Locator, **combo: str) -> Locator:
    """A row of the variants table by its options (the row's key is the sorted option pairs)."""
    key = json.dumps(sorted([k, v] for k, v in combo.items()), separators=(",", ":"))
    return editor.locator(f"#product-variants tr[data-key='{key}']")


async def drop_files(page: Page, target: str, files: list[tuple[str, bytes]]) -> None:
    """Files dragged from the desktop and dropped on ``target``, as the browser delivers them."""
    transfer = await page.evaluate_handle(
        """(files) => {
          const dt = new DataTransfer();
          for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: "image/png" }));
          return dt;
        }""",
        [{"name": name, "bytes": list(data)} for name, data in files],
    )
    for event in ("dragenter", "dragover", "drop"):
        await page.dispatch_event(target, event, {"dataTransfer": transfer})


async def image_order(page: Page) -> list[str]:
    return await page.locator("#product-images li").evaluate_all("cards => cards.map(c => c.dataset.imageId)")


async def expect_image_order(page: Page, ids: list[str]) -> None:
    cards = page.locator("#product-images li")
    await expect(cards).to_have_count(len(ids))
    for i, image_id in enumerate(ids):
        await expect(cards.nth(i)).to_have_attribute("data-image-id", image_id)


async def make_tee(gw: httpx.AsyncClient, boss: Shopper, tag: str) -> dict[str, Any]:
    """A T-shirt in two sizes and two colours, one unit of each but M / Blue (4)."""
    cat = await gw.post("/admin/categories", json={"name": f"Tees {tag}"}, headers=boss.auth)
    assert cat.status_code == 201, cat.text
    variants = [
        {
            "sku": f"TEE-{tag}-{s}-{c}",
            "options": {"Size": s, "Colour": c},
            "price": 1999,
            "stock": 4 if (s, c) == ("M", "Blue") else 1,
        }
        for s in ("S", "M")
        for c in ("Red", "Blue")
    ]
    resp = await gw.post(
        "/admin/products",
        headers=boss.auth,
        json={
            "name": f"Tee {tag}",
            "sku": f"TEE-{tag}",
            "category_id": cat.json()["id"],
            "options": [
                {"name": "Size", "values": ["S", "M"]},
                {"name": "Colour", "values": ["Red", "Blue"]},
            ],
            "variants": variants,
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def product_now(gw: httpx.AsyncClient, boss: Shopper, product_id: str) -> dict[str, Any]:
    resp = await gw.get(f"/admin/products/{product_id}", headers=boss.auth)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def open_editor(console: ConsolePage, product: dict[str, Any]) -> Locator:
    """The product found with the products search and opened in the editor."""
    page = console.page
    await page.locator("#products-search [name=q]").fill(product["name"])
    await page.locator("#products-search [name=q]").press("Enter")
    await console.product_row(product["id"]).get_by_role("button", name="Edit").click()
    editor = page.locator("#product-editor")
    await expect(editor).to_be_visible()
    await expect(editor.locator('#product-variants tr[data-state="live"]')).to_have_count(
        len(product["variants"])
    )
    return editor


async def test_an_operator_builds_a_product_with_variants_and_images_and_another_admin_sees_it_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    tag = uuid.uuid4().hex[:6]
    cat = await gw.post("/admin/categories", json={"name": f"Shirts {tag}"}, headers=boss.auth)
    assert cat.status_code == 201, cat.text
    one, two = await open_console(), await open_console()
    await one.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await two.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = one.page

    # a 2-option product: two sizes, two colours, four variants
    await page.get_by_role("button", name="New product").click()
    editor = page.locator("#product-editor")
    await editor.locator("[name=name]").fill(f"Linen shirt {tag}")
    await editor.locator("[name=sku]").fill(f"SHIRT-{tag}")
    await editor.locator("[name=category_id]").select_option(label=f"Shirts {tag}")
    options = editor.locator(".option-row")
    await options.nth(0).locator("[name=option-name]").fill("Size")
    await options.nth(0).locator("[name=option-values]").fill("S, M")
    await editor.get_by_role("button", name="Add option").click()
    await options.nth(1).locator("[name=option-name]").fill("Colour")
    await options.nth(1).locator("[name=option-values]").fill("Red, Blue")
    await expect(editor.locator("#product-variants tr")).to_have_count(4)
    stocks = {("S", "Red"): 1, ("S", "Blue"): 2, ("M", "Red"): 3, ("M", "Blue"): 4}
    for (size, colour), units in stocks.items():
        row = variant_row(editor, Size=size, Colour=colour)
        await expect(row.locator("[name=sku]")).to_have_value(f"SHIRT-{tag}-{size}-{colour}".upper())
        await row.locator("[name=price]").fill("19.99")
        await row.locator("[name=stock]").fill(str(units))
    await variant_row(editor, Size="M", Colour="Blue").locator("[name=compare_at_price]").fill("24.99")
    await editor.get_by_role("button", name="Add product").click()
    await expect(editor.locator("[data-role=saved]")).to_contain_text("Added")
    await expect(editor.locator('#product-variants tr[data-state="live"]')).to_have_count(4)
    product_id = await page.evaluate("editor.id")
    made = await product_now(gw, boss, product_id)
    assert made["options"] == [
        {"name": "Size", "values": ["S", "M"]},
        {"name": "Colour", "values": ["Red", "Blue"]},
    ]
    by_title = {v["title"]: v for v in made["variants"]}
    assert {t: (v["price"], v["stock"]) for t, v in by_title.items()} == {
        "S / Red": (1999, 1),
        "S / Blue": (1999, 2),
        "M / Red": (1999, 3),
        "M / Blue": (1999, 4),
    }
    assert by_title["M / Blue"]["compare_at_price"] == 2499 and made["stock"] == 10

    # the other admin sees it arrive and opens it
    theirs = two.product_row(product_id)
    await expect(theirs).to_contain_text("4 variants")
    await theirs.get_by_role("button", name="Edit").click()
    their_editor = two.page.locator("#product-editor")
    await expect(their_editor.locator('#product-variants tr[data-state="live"]')).to_have_count(4)

    # two images dropped from the desktop; the other admin sees both, served under the console's CSP
    await drop_files(page, "#product-dropzone", [("red.png", png("#c0392b")), ("blue.png", png("#2459d6"))])
    await expect(editor.locator("#product-images li")).to_have_count(2)
    await expect(editor.locator("#product-images-status")).to_have_text("Uploaded 2 of 2.")
    await expect(their_editor.locator("#product-images li")).to_have_count(2)
    await two.page.wait_for_function(
        "() => [...document.querySelectorAll('#product-images img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    red, blue = await image_order(page)
    await expect(theirs).to_contain_text("2 images")

    # reordered by dragging the second onto the first
    cards = editor.locator("#product-images li")
    await cards.nth(1).drag_to(cards.nth(0))
    await expect_image_order(page, [blue, red])
    await expect_image_order(two.page, [blue, red])
    media = (await product_now(gw, boss, product_id))["media"]
    assert [m["id"] for m in sorted(media, key=lambda m: m["position"])] == [blue, red]

    # described, and shown for one variant
    first = editor.locator(f'#product-images li[data-image-id="{blue}"]')
    await first.locator("[name=alt]").fill("Blue shirt, front")
    await first.locator("[name=variant_id]").select_option(label="M / Blue")
    await expect(
        their_editor.locator(f'#product-images li[data-image-id="{blue}"] [name=alt]')
    ).to_have_value("Blue shirt, front")
    await expect(
        their_editor.locator(f'#product-images li[data-image-id="{blue}"] [name=variant_id]')
    ).to_have_value(by_title["M / Blue"]["id"])
    # the variant's row shows its picture
    thumb = variant_row(their_editor, Size="M", Colour="Blue").locator("img.variant-thumb")
    await expect(thumb).to_have_attribute("alt", "Blue shirt, front")

    # one variant's stock and another's price changed: only those move, and the other admin sees it
    await variant_row(editor, Size="M", Colour="Blue").locator("[name=stock]").fill("9")
    await variant_row(editor, Size="S", Colour="Red").locator("[name=price]").fill("17.50")
    await editor.get_by_role("button", name="Save product").click()
    await expect(editor.locator("[data-role=saved]")).to_have_text("Saved.")
    await expect(variant_row(their_editor, Size="M", Colour="Blue").locator("[name=stock]")).to_have_value(
        "9"
    )
    await expect(theirs.locator('td[data-label="Stock"]')).to_have_text("15")
    await expect(theirs.locator('td[data-label="Price"]')).to_have_text("from $17.50")
    await expect(variant_row(their_editor, Size="S", Colour="Red").locator("[name=price]")).to_have_value(
        "17.50"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    await editor.screenshot(path=str(ARTIFACTS / "console-product-editor.png"))
    now = await product_now(gw, boss, product_id)
    assert {v["title"]: v["stock"] for v in now["variants"]} == {
        "S / Red": 1,
        "S / Blue": 2,
        "M / Red": 3,
        "M / Blue": 9,
    }
    assert {v["title"]: v["price"] for v in now["variants"]}["S / Red"] == 1750
    assert now["media"][0]["alt"] == "Blue shirt, front"
    one.assert_clean()
    two.assert_clean()


async def test_adding_a_size_and_retiring_a_colour_reaches_another_admin(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    tag = uuid.uuid4().hex[:6]
    tee = await make_tee(gw, boss, tag)
    one, two = await open_console(), await open_console()
    await one.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await two.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    editor = await open_editor(one, tee)
    their_editor = await open_editor(two, tee)

    await editor.locator(".option-row").nth(0).locator("[name=option-values]").fill("S, M, L")
    await editor.locator(".option-row").nth(1).locator("[name=option-values]").fill("Red")
    large = variant_row(editor, Size="L", Colour="Red")
    await expect(large).to_have_attribute("data-state", "new")
    await expect(large.locator("[name=price]")).to_have_value("19.99")  # a sibling's price to start from
    await large.locator("[name=stock]").fill("6")
    await expect(variant_row(editor, Size="S", Colour="Blue")).to_contain_text("will be retired")
    await editor.get_by_role("button", name="Save product").click()
    await expect(editor.locator("[data-role=saved]")).to_have_text("Saved.")

    now = await product_now(gw, boss, tee["id"])
    assert now["options"] == [
        {"name": "Size", "values": ["S", "M", "L"]},
        {"name": "Colour", "values": ["Red"]},
    ]
    assert {v["title"]: v["stock"] for v in now["variants"]} == {"S / Red": 1, "M / Red": 1, "L / Red": 6}
    await expect(their_editor.locator("#product-variants tr")).to_have_count(3)
    await expect(variant_row(their_editor, Size="L", Colour="Red").locator("[name=stock]")).to_have_value("6")
    await expect(their_editor.locator(".option-row").nth(1).locator("[name=option-values]")).to_have_value(
        "Red"
    )
    one.assert_clean()
    two.assert_clean()


async def test_a_product_sold_in_one_variant_gains_sizes(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    plain = await make_product(gw, boss, stock=5, price=2500, name=f"Rain hat {uuid.uuid4().hex[:6]}")
    plain = await product_now(gw, boss, plain["id"])
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    editor = await open_editor(console, plain)

    await editor.get_by_role("button", name="Add option").click()
    await expect(editor.locator(".option-row").nth(0).locator("[name=option-name]")).to_be_focused()
    await editor.locator(".option-row").nth(0).locator("[name=option-name]").fill("Size")
    await editor.locator(".option-row").nth(0).locator("[name=option-values]").fill("S, M")
    # closed by a slip of the Escape key: reopened, what was typed is still there
    await console.page.keyboard.press("Escape")
    await expect(editor).to_be_hidden()
    await console.product_row(plain["id"]).get_by_role("button", name="Edit").click()
    await expect(editor.locator("[data-role=saved]")).to_have_text("Your unsaved changes are still here.")
    await expect(editor.locator(".option-row").nth(0).locator("[name=option-values]")).to_have_value("S, M")
    await expect(editor.get_by_role("button", name="Discard changes")).to_be_visible()
    # the one variant has no size: it goes, and a variant per size comes
    await expect(variant_row(editor)).to_contain_text("will be retired")
    await variant_row(editor, Size="S").locator("[name=stock]").fill("2")
    await variant_row(editor, Size="M").locator("[name=stock]").fill("3")
    await editor.get_by_role("button", name="Save product").click()
    await expect(editor.locator("[data-role=saved]")).to_have_text("Saved.")
    await expect(editor.locator('#product-variants tr[data-state="live"]')).to_have_count(2)

    now = await product_now(gw, boss, plain["id"])
    assert now["options"] == [{"name": "Size", "values": ["S", "M"]}]
    sku = plain["sku"].upper()
    assert {v["title"]: (v["sku"], v["price"], v["stock"]) for v in now["variants"]} == {
        "S": (f"{sku}-S", 2500, 2),
        "M": (f"{sku}-M", 2500, 3),
    }
    console.assert_clean()


async def test_refused_input_is_said_in_a_persons_words_and_changes_nothing(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    tag = uuid.uuid4().hex[:6]
    tee = await make_tee(gw, boss, tag)
    other = await make_tee(gw, boss, uuid.uuid4().hex[:6])
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    editor = await open_editor(console, tee)

    # a SKU another product's variant has, and a price that is not one
    small_red = variant_row(editor, Size="S", Colour="Red")
    taken = other["variants"][0]["sku"]
    await small_red.locator("[name=sku]").fill(taken)
    await variant_row(editor, Size="M", Colour="Red").locator("[name=price]").fill("twenty")
    await editor.get_by_role("button", name="Save product").click()
    await expect(small_red.locator('[data-error-for="sku"]')).to_have_text(
        "Another product or variant already uses this SKU: choose another."
    )
    await expect(small_red.locator("[name=sku]")).to_have_attribute("aria-invalid", "true")
    await expect(small_red.locator("[name=sku]")).to_have_value(taken)  # nothing typed is lost
    await expect(
        variant_row(editor, Size="M", Colour="Red").locator('[data-error-for="price"]')
    ).to_have_text("Enter a price like 19.99.")
    await expect(editor.locator('[data-error-for="_form"]')).to_have_text(
        "Some changes were not saved: see the messages beside them."
    )
    unchanged = await product_now(gw, boss, tee["id"])
    assert {v["sku"] for v in unchanged["variants"]} == {v["sku"] for v in tee["variants"]}
    assert unchanged["version"] == tee["version"]
    # a file that is not a picture is refused by what it holds, whatever its name says, and nothing is stored
    await drop_files(console.page, "#product-dropzone", [("notes.png", b"these are my notes, not a picture")])
    await expect(editor.locator("#product-images-error")).to_have_text(
        "notes.png is not a JPEG, PNG or WebP image."
    )
    await expect(editor.locator("#product-images li")).to_have_count(0)
    assert (await product_now(gw, boss, tee["id"]))["media"] == []
    await editor.get_by_role("button", name="Close").click()

    # a new product whose size is given twice: said beside the option, and no product is made
    await console.page.get_by_role("button", name="New product").click()
    await editor.locator("[name=name]").fill(f"Twice {tag}")
    await editor.locator("[name=sku]").fill(f"TWICE-{tag}")
    await editor.locator("[name=category_id]").select_option(label=f"Tees {tag}")
    await editor.locator(".option-row").nth(0).locator("[name=option-name]").fill("Size")
    await editor.locator(".option-row").nth(0).locator("[name=option-values]").fill("S, S")
    await variant_row(editor, Size="S").locator("[name=price]").fill("9.99")
    await editor.get_by_role("button", name="Add product").click()
    await expect(editor.locator(".option-row").nth(0).locator(".row-slot")).to_have_text(
        "Give each value once."
    )
    await expect(editor.locator("[name=name]")).to_have_value(f"Twice {tag}")
    found = await gw.get("/products", params={"q": f"Twice {tag}"})
    assert found.json()["total"] == 0
    console.assert_clean()


async def test_the_product_editor_fits_a_phone_screen(
    browser: Browser, stack: Stack, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    tee = await make_tee(gw, boss, uuid.uuid4().hex[:6])
    uploaded = await gw.post(
        f"/admin/products/{tee['id']}/images",
        headers=boss.auth,
        files={"file": ("front.png", png("#1f8a4c"), "image/png")},
        data={"alt": "A rather long description of the picture " * 3},
    )
    assert uploaded.status_code == 201, uploaded.text
    tee = await product_now(gw, boss, tee["id"])
    context = await browser.new_context(viewport={"width": 360, "height": 800}, locale="en-US")
    try:
        console = await ConsolePage(await context.new_page()).open(stack.gateway)
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        editor = await open_editor(console, tee)
        await expect(editor.locator("#product-images li")).to_have_count(1)
        assert await overflow(console.page) == []
        ARTIFACTS.mkdir(exist_ok=True)
        await editor.screenshot(path=str(ARTIFACTS / "console-360-product-editor.png"))
        console.assert_clean()
    finally:
        await context.close()
