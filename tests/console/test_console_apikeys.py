"""The console's API keys: an admin issues a key with the scopes auth offers, sees it once, finds it
by its prefix, and revokes it; the gateway takes the key until then and refuses it after."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, admin

pytestmark = pytest.mark.e2e


async def test_an_admin_issues_a_key_sees_it_once_and_revokes_it(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    console = await open_console()
    page = console.page
    await console.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    form = page.locator("#apikey-form")
    await expect(form.get_by_role("checkbox")).not_to_have_count(0)  # the scopes auth offers
    await form.locator("[name=name]").fill("Warehouse sync")
    await form.get_by_role("button", name="Create key").click()
    await expect(form.locator('[data-error-for="scopes"]')).to_have_text(
        "Tick at least one thing the key may do."
    )
    await expect(page.locator("#apikey-issued")).to_be_hidden()

    await form.get_by_role("checkbox", name="orders:read").check()
    await form.get_by_role("button", name="Create key").click()
    key = page.locator("#apikey-issued-key")
    await expect(key).to_contain_text("sk_")
    secret = await key.inner_text()
    prefix = "_".join(secret.split("_")[:2])  # sk_<id>; the secret after it may hold "_" too
    row = page.locator(f'#apikeys-body tr[data-prefix="{prefix}"]')
    await expect(row).to_contain_text("Warehouse sync")
    await expect(row).to_contain_text("orders:read")
    await expect(row.locator('[data-role="state"]')).to_have_text("live")
    assert secret not in await page.locator("#apikeys-body").inner_text()  # listed by prefix only

    as_key = {"Authorization": f"Bearer {secret}"}
    assert (await gw.get("/admin/orders", headers=as_key)).status_code == 200
    # once shown, never again: a reload of the page does not bring it back
    await page.reload()
    await expect(page.locator("#app-view")).to_be_visible()
    await expect(row.locator('[data-role="state"]')).to_have_text("live")
    await expect(page.locator("#apikey-issued")).to_be_hidden()

    revoke = row.locator(".key-revoke")
    await revoke.click()
    await expect(revoke).to_have_text("Confirm: revoke")
    await revoke.click()
    await expect(row.locator('[data-role="state"]')).to_contain_text("revoked")
    assert (await gw.get("/admin/orders", headers=as_key)).status_code == 401
    listed = await gw.get("/admin/api-keys", params={"page_size": 100}, headers=boss.auth)
    assert [k["revoked_at"] is not None for k in listed.json()["items"] if k["prefix"] == prefix] == [True]
    console.assert_clean()
