"""The console's webhooks panel in a real browser: an admin adds an integrator's endpoint, copies the
secret shown once, sees an event delivered to a real receiver on loopback and redelivers it."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from libs.common.testing import eventually
from libs.common.testing.apps import free_port
from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, admin, customer

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A standard-library server on loopback; yields its URL and the event ids it was sent."""
    got: list[str] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append(self.headers["Shop-Event-Id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/{uuid.uuid4().hex[:6]}", got
    server.shutdown()
    server.server_close()


async def test_admin_adds_a_webhook_in_the_page_and_redelivers_an_event(
    open_console: OpenConsole, gw: httpx.AsyncClient, receiver: tuple[str, list[str]]
) -> None:
    url, got = receiver
    console = await open_console()
    page = console.page
    boss = await admin(gw)
    try:
        await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        form = page.locator("#webhook-form")
        await form.locator("[name=url]").fill("ftp://files.example.com/")
        await form.locator("[name=events]").fill("user.registered")
        await form.get_by_role("button", name="Add webhook").click()
        await expect(form.locator('[data-error-for="url"]')).to_contain_text("http")

        await form.locator("[name=url]").fill(url)
        await form.get_by_role("button", name="Add webhook").click()
        await expect(page.locator("#webhook-secret-text")).to_contain_text("whsec_")
        row = page.locator("#webhooks-body tr", has_text=url)
        await expect(row.locator('[data-role="state"]')).to_have_text("active")

        await customer(gw, "hooked")  # user.registered

        async def delivered() -> None:
            assert len(got) == 1, got

        await eventually(delivered, timeout=20)
        await row.get_by_role("button", name="Deliveries").click()
        delivery = page.locator("#webhook-deliveries-body tr", has_text="user.registered")
        await expect(delivery.locator('[data-role="status"]')).to_have_text("succeeded")
        await delivery.get_by_role("button", name="Redeliver").click()

        async def twice() -> None:
            assert len(got) == 2 and got[0] == got[1], got

        await eventually(twice, timeout=20)
        await row.get_by_role("button", name="Turn off").click()
        await expect(row.locator('[data-role="state"]')).to_have_text("off")
        console.assert_clean()
    finally:
        listed = await gw.get("/admin/webhooks", params={"page_size": 100}, headers=boss.auth)
        for w in listed.json()["items"]:
            if w["url"] == url:
                await gw.delete(f"/admin/webhooks/{w['id']}", headers=boss.auth)
