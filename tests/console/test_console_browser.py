"""The admin console in a real browser, through the gateway, against the whole system.

Each test asserts what the admin would notice on the page, and what the other side
(a customer's or a guest's socket) receives.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import expect

from libs.common.testing import eventually
from services.realtime.console import SCRIPTS
from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Listener, admin, customer, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
XSS = "<img src=x onerror=alert(1)>"


async def test_admin_sees_an_order_arrive_live_and_moves_it_to_processing(
    open_console: OpenConsole, gw: httpx.AsyncClient, stack: Stack
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=1250)
    buyer = await customer(gw)
    buyer_ears = await Listener(stack.gateway, buyer.token).connect()
    console = await open_console()
    try:
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        await console.page.evaluate("window.sameDocument = true")  # gone if the page reloads

        order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 2}])).json()
        row = console.order_row(order["id"])
        await expect(row.locator(".status")).to_have_text("pending payment")
        await expect(row).to_contain_text("2 \u00d7 " + product["name"])
        await expect(row).to_contain_text("$25.00")
        entry = console.feed_entries("order:created", "#" + order["id"][:8])
        await expect(entry).to_have_count(1)
        await expect(entry).to_contain_text("2 items, $25.00")

        await buyer.pay(order["id"])
        await expect(row.locator(".status")).to_have_text("paid")  # the same row, updated in place
        await expect(console.feed_entries("payment:succeeded", "#" + order["id"][:8])).to_have_count(1)

        await row.get_by_role("button", name="processing").click()
        await expect(row.locator(".status")).to_have_text("processing")
        heard = await buyer_ears.wait_for(
            "order:statusUpdated", {"order_id": order["id"], "to": "processing"}
        )
        assert heard["data"]["from"] == "paid" and heard["data"]["by"] == boss.user_id
        await expect(row.get_by_role("button", name="shipped")).to_be_visible()
        await expect(console.page.locator("#orders-body tr", has_text="#" + order["id"][:8])).to_have_count(1)
        assert await console.page.evaluate("window.sameDocument") is True
        assert (await buyer.order(order["id"]))["status"] == "processing"
        await console.screenshot("console.png")
        console.assert_clean()
    finally:
        await buyer_ears.close()


async def test_admin_adds_a_category_and_a_product_in_the_page_and_a_guest_hears_it(
    open_console: OpenConsole, stack: Stack
) -> None:
    guest = await Listener(stack.gateway).connect()
    console = await open_console()
    try:
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        tag = uuid.uuid4().hex[:6]
        category, name = f"Rain gear {tag}", f"Storm jacket {tag}"

        await console.category_form.locator("[name=name]").fill(category)
        await console.category_form.get_by_role("button", name="Add category").click()
        await expect(console.page.locator("#categories-list")).to_contain_text(category)

        await console.page.get_by_role("button", name="New product").click()
        form = console.product_form
        await form.locator("[name=name]").fill(name)
        await form.locator("[name=sku]").fill(f"JKT-{tag}")
        await form.locator("[name=price]").fill("19.99")
        await form.locator("[name=category_id]").select_option(label=category)
        await form.locator("[name=stock]").fill("7")
        await form.get_by_role("button", name="Add product").click()

        heard = await guest.wait_for("product:added", {"name": name})
        assert heard["data"]["price"] == 1999 and heard["data"]["stock"] == 7
        row = console.page.locator("#products-body tr", has_text=name)
        await expect(row).to_contain_text("$19.99")
        await expect(row).to_contain_text(category)
        # the editor goes on with the product it made (its images come next)
        await expect(form.get_by_role("button", name="Save product")).to_be_visible()
        await expect(console.feed_entries("product:added", name)).to_have_count(1)
        console.assert_clean()
    finally:
        await guest.close()


async def test_a_validation_error_from_the_ack_is_shown_next_to_its_field(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    category = f"Tents {uuid.uuid4().hex[:6]}"
    created = await gw.post("/admin/categories", json={"name": category}, headers=boss.auth)
    assert created.status_code == 201, created.text
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)

    await console.page.get_by_role("button", name="New product").click()
    form = console.product_form
    await form.locator("[name=name]").fill("Two-person tent")
    await form.locator("[name=sku]").fill(f"TNT-{uuid.uuid4().hex[:6]}")
    # in a person's words, not the validator's: money as typed, a category to choose
    await form.locator("[name=price]").fill("twenty")
    await form.get_by_role("button", name="Add product").click()
    price_error = form.locator('[data-error-for="price"]')
    await expect(price_error).to_have_text("Enter a price like 19.99.")
    await expect(form.locator('[data-error-for="category_id"]')).to_have_text("Choose a category.")
    await form.locator("[name=price]").fill("-5")
    await form.locator("[name=category_id]").select_option(label=category)
    await form.get_by_role("button", name="Add product").click()
    await expect(price_error).to_have_text("A price cannot be below zero: enter one like 19.99.")
    await expect(form.locator('[data-error-for="category_id"]')).to_be_empty()
    await expect(form.locator("[name=price]")).to_have_attribute("aria-invalid", "true")
    await expect(form.locator('[data-error-for="sku"]')).to_be_empty()
    await expect(form.locator("[name=name]")).to_have_value("Two-person tent")  # nothing typed is lost
    await expect(console.page.locator("#products-body")).not_to_contain_text("Two-person tent")
    console.assert_clean()


async def test_a_customer_cannot_sign_in_to_the_console(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    buyer = await customer(gw, "console-intruder")
    console = await open_console()
    await console.sign_in(buyer.email, buyer.password)
    await expect(console.page.locator("#signin-error")).to_have_text(
        "This account is not an admin: the console is for shop admins only."
    )
    await expect(console.page.locator("#app-view")).to_be_hidden()
    await console.sign_in(buyer.email, "not-the-password")
    await expect(console.page.locator("#signin-error")).to_have_text("Wrong email or password.")
    console.assert_clean()


async def test_a_product_named_like_markup_renders_as_text(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    product = await make_product(gw, await admin(gw), name=XSS)

    row = console.product_row(product["id"])
    await expect(row.get_by_text(XSS, exact=True)).to_be_visible()
    await expect(console.feed_entries("product:added", XSS)).to_have_count(1)
    # a fresh load renders it from the REST list the same way
    await console.page.reload()
    await expect(console.page.locator("#conn")).to_have_text("connected")
    await expect(row.get_by_text(XSS, exact=True)).to_be_visible()
    assert await console.page.locator("#app-view img").count() == 0
    console.assert_clean()


async def test_the_page_says_how_to_build_a_missing_socket_client(open_console: OpenConsole) -> None:
    console = await open_console()
    await console.page.route("**/console/vendor/socket.io.min.js", lambda route: route.fulfill(status=404))
    await console.page.reload()
    banner = console.page.locator("#banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("make console")
    await expect(console.page.locator("#signin-form button")).to_be_disabled()


async def test_the_console_is_served_through_the_gateway_with_a_strict_policy(
    gw: httpx.AsyncClient, stack: Stack
) -> None:
    bare = await gw.get("/console")
    assert bare.status_code == 308 and bare.headers["location"] == "/console/"
    page = await gw.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-cache"
    client = await gw.get("/console/vendor/socket.io.min.js")
    assert client.status_code == 200 and "javascript" in client.headers["content-type"]
    assert client.headers["content-security-policy"] == policy
    for script in SCRIPTS:  # every screen's script is on the page and served
        assert f'<script src="{script}"></script>' in page.text, script
        assert (await gw.get(f"/console/{script}")).status_code == 200, script
    again = await gw.get(
        "/console/core.js",
        headers={"If-None-Match": (await gw.get("/console/core.js")).headers["etag"]},
    )
    assert again.status_code == 304
    for hidden in (
        "/console/package.json",
        "/console/__init__.py",
        "/console/node_modules/socket.io-client/package.json",
    ):
        assert (await gw.get(hidden)).status_code == 404, hidden
    # the page's own origin may open the socket without being listed in CORS_ORIGINS; another site may not
    handshake = "/socket.io/?EIO=4&transport=polling"
    assert (await gw.get(handshake, headers={"Origin": stack.gateway})).status_code == 200
    assert (await gw.get(handshake, headers={"Origin": "https://elsewhere.example"})).status_code == 400


async def test_the_console_renews_its_session_before_the_token_expires_and_stays_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    console = await open_console()
    page = console.page
    # what the page sends the realtime service, over long-polling and over the websocket
    to_socket: list[str] = []
    page.on("request", lambda r: to_socket.append(r.post_data or "") if "/socket.io/" in r.url else None)
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: to_socket.append(str(payload))))
    await page.clock.install()  # the page's clock, so that 15 minutes pass in a moment
    await page.reload()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    stored = "sessionStorage.getItem('shop.console.refresh')"
    first = await page.evaluate(stored)

    async with page.expect_response("**/auth/refresh") as renewal:
        await page.clock.set_system_time(datetime.now(UTC) + timedelta(minutes=14, seconds=30))
    tokens = await (await renewal.value).json()
    assert await page.evaluate(stored) == tokens["refresh_token"] != first  # rotated and kept

    async def socket_has_the_fresh_token() -> None:
        # auth:refresh on the live connection, or a reconnect with it (after such a jump the
        # client's heartbeat check reconnects, as after a laptop's sleep)
        assert any(tokens["access_token"] in sent for sent in to_socket)

    await eventually(socket_has_the_fresh_token, timeout=15)
    await expect(page.locator("#conn")).to_have_text("connected")
    product = await make_product(gw, await admin(gw))
    await expect(console.feed_entries("product:added", product["name"])).to_have_count(1)
    console.assert_clean()


async def test_admin_adds_a_coupon_in_the_page_and_sees_its_uses_counted_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=4_000)
    buyer = await customer(gw)
    console = await open_console()
    code = f"SPRING{uuid.uuid4().hex[:6].upper()}"
    try:
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        form = console.page.locator("#promotion-form")
        await form.locator("[name=name]").fill("Spring sale")
        await form.locator("[name=code]").fill(code)
        await form.locator("[name=kind]").select_option("percent_off")
        await form.locator("[name=value]").fill("150")
        await form.get_by_role("button", name="Add promotion").click()
        # pricing's refusal, in words next to the field it names
        await expect(form.locator('[data-error-for="action"]')).not_to_be_empty()

        await form.locator("[name=value]").fill("15")
        await form.locator("[name=usage_limit]").fill("5")
        await form.get_by_role("button", name="Add promotion").click()
        row = console.page.locator("#promotions-body tr", has_text=code)
        await expect(row).to_contain_text("15% off")
        await expect(row.locator('[data-role="used"]')).to_have_text("0 / 5")

        placed = await gw.post(
            "/orders",
            headers={**buyer.auth, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "shipping_address": {
                    "name": "Ada",
                    "line1": "1 Main St",
                    "city": "Leeds",
                    "postal_code": "LS1 1AA",
                    "country": "GB",
                },
                "items": [{"product_id": product["id"], "quantity": 1}],
                "coupon_code": code,
            },
        )
        assert placed.status_code == 201, placed.text
        assert placed.json()["breakdown"]["discount_total"] == 600
        await expect(row.locator('[data-role="used"]')).to_have_text("1 / 5")
        await expect(console.feed_entries("promotion:claimed", code)).to_contain_text("$6.00")

        await row.get_by_role("button", name="Delete").click()
        await row.get_by_role("button", name="Confirm").click()
        await expect(console.page.locator("#promotions-body tr", has_text=code)).to_have_count(0)
        console.assert_clean()
    finally:
        listed = await gw.get("/admin/promotions", params={"page_size": 100}, headers=boss.auth)
        for p in listed.json()["items"]:
            if p["code"] == code:
                await gw.delete(f"/admin/promotions/{p['id']}", headers=boss.auth)


async def test_admin_sees_the_mail_a_new_customer_was_sent(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    buyer = await customer(gw, "mailed")
    # user:registered reaches the page, which reloads the list once notifications has made the mail
    row = console.page.locator("#emails-body tr", has_text=buyer.email)
    await expect(row).to_contain_text("Welcome to Shop, Test Shopper")
    await expect(row.locator('[data-role="status"]')).to_have_text("sent")
    console.assert_clean()


async def test_admin_ships_an_order_with_its_tracking_from_the_page(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5, price=1250)
    buyer = await customer(gw)
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
    await buyer.pay(order["id"])
    await buyer.wait_status(order["id"], "paid")
    moved = await gw.patch(
        f"/admin/orders/{order['id']}/status", json={"status": "processing"}, headers=boss.auth
    )
    assert moved.status_code == 200, moved.text
    console = await open_console()
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    row = console.order_row(order["id"])
    await expect(row.locator(".status")).to_have_text("processing")

    await row.get_by_role("button", name="shipped").click()  # opens the tracking fields
    await row.get_by_label("Carrier").fill("UPS")
    await row.get_by_label("Tracking number").fill("1Z999AA10123456784")
    await row.get_by_label("Tracking URL").fill("javascript:alert(1)")
    await row.get_by_role("button", name="ship now").click()
    await expect(row.locator(".row-error")).to_contain_text("tracking_url")  # orders' refusal names it
    await expect(row.locator(".status")).to_have_text("processing")

    await row.get_by_label("Tracking URL").fill("https://www.ups.com/track?tracknum=1Z999AA10123456784")
    await row.get_by_role("button", name="ship now").click()
    await expect(row.locator(".status")).to_have_text("shipped")
    await expect(row.locator(".shipment")).to_have_text("UPS 1Z999AA10123456784")
    fulfillment = (await buyer.order(order["id"]))["fulfillment"]
    assert (fulfillment["carrier"], fulfillment["tracking_number"]) == ("UPS", "1Z999AA10123456784")
    console.assert_clean()
