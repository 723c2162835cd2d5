"""The console's shipping zones and tax rates: an admin sets them up through the page, refused input
is said in a person's words beside its field (and changes nothing), and a second admin's console
shows every change live (pricing's shipping.* and tax.* events)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import OpenConsole
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, admin

pytestmark = pytest.mark.e2e

# countries no other journey ships to or taxes: these zones and rates must not change their totals
ZONE_COUNTRIES = "is, li"
TAX_COUNTRY = "LI"


async def test_an_admin_sets_up_a_shipping_zone_and_another_admin_sees_each_change_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    editor, watcher = await open_console(), await open_console()
    await editor.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await watcher.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = editor.page
    form = page.locator("#zone-form")

    async def zones_named(name: str) -> list[dict]:
        listed = await gw.get("/admin/shipping-zones", headers=boss.auth)
        return [z for z in listed.json() if z["name"] == name]

    try:
        await form.locator("[name=name]").fill("North Atlantic")
        await form.locator("[name=countries]").fill("Iceland")
        first = form.locator(".method-row").nth(0)
        await first.locator("[name=method_name]").fill("Standard")
        await first.locator("[name=method_amount]").fill("four ninety")
        await first.locator("[name=method_currency]").fill("EUR")
        await form.get_by_role("button", name="Add zone").click()
        await expect(form.locator('[data-error-for="countries"]')).to_have_text(
            "Enter two-letter country codes separated by commas, like DE, AT."
        )
        await expect(first.locator('[data-method-error-for="amount"]')).to_have_text(
            "Enter a price like 4.90 (0 for free)."
        )
        await expect(first.locator("[name=method_amount]")).to_have_attribute("aria-invalid", "true")
        assert await zones_named("North Atlantic") == []  # refused: nothing made

        await form.locator("[name=countries]").fill(ZONE_COUNTRIES)
        await first.locator("[name=method_amount]").fill("4.90")
        await first.locator("[name=method_free_over]").fill("50")
        await first.locator("[name=method_min_days]").fill("2")
        await first.locator("[name=method_max_days]").fill("4")
        await form.get_by_role("button", name="Add a method").click()
        second = form.locator(".method-row").nth(1)
        await second.locator("[name=method_name]").fill("Express")
        await second.locator("[name=method_amount]").fill("12.00")
        await second.locator("[name=method_currency]").fill("eur")
        await form.get_by_role("button", name="Add zone").click()
        await expect(form.locator("[data-error-for]:not(:empty)")).to_have_count(0)

        seen = watcher.page.locator("#zones-body tr", has_text="North Atlantic")
        await expect(seen).to_contain_text("IS, LI")
        await expect(seen).to_contain_text("Standard · €4.90 · free from €50.00 · 2\u20134 days")
        await expect(seen).to_contain_text("Express · €12.00")
        [made] = await zones_named("North Atlantic")
        assert [(m["name"], m["amount"], m["free_over"]) for m in made["methods"]] == [
            ("Standard", 490, 5000),
            ("Express", 1200, None),
        ]

        # the editor drops Express and renames the zone; the watcher's row follows
        await (
            page.locator("#zones-body tr", has_text="North Atlantic")
            .get_by_role("button", name="Edit")
            .click()
        )
        await expect(form.locator(".method-row")).to_have_count(2)
        await form.locator(".method-row").nth(1).get_by_role("button", name="Remove method").click()
        await form.locator("[name=name]").fill("Iceland and Liechtenstein")
        await form.get_by_role("button", name="Save zone").click()
        renamed = watcher.page.locator("#zones-body tr", has_text="Iceland and Liechtenstein")
        await expect(renamed).to_contain_text("Standard")
        await expect(renamed).not_to_contain_text("Express")
        await expect(seen).to_have_count(0)

        delete = page.locator("#zones-body tr", has_text="Iceland and Liechtenstein").locator(".zone-delete")
        await delete.click()
        await expect(delete).to_have_text("Confirm delete")
        await delete.click()
        await expect(renamed).to_have_count(0)
        assert await zones_named("Iceland and Liechtenstein") == []
        editor.assert_clean()
        watcher.assert_clean()
    finally:
        listed = await gw.get("/admin/shipping-zones", headers=boss.auth)
        for z in listed.json():
            if z["name"] in ("North Atlantic", "Iceland and Liechtenstein"):
                await gw.delete(f"/admin/shipping-zones/{z['id']}", headers=boss.auth)


async def test_an_admin_keeps_tax_rates_and_another_admin_sees_each_change_live(
    open_console: OpenConsole, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    editor, watcher = await open_console(), await open_console()
    await editor.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await watcher.sign_in_as_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    form = editor.page.locator("#tax-form")
    add = form.get_by_role("button", name="Add rate")
    try:
        await form.locator("[name=name]").fill("MWST")
        await form.locator("[name=country]").fill("ZZ")
        await form.locator("[name=rate_bp]").fill("eight")
        await add.click()
        await expect(form.locator('[data-error-for="country"]')).to_have_text(
            "Enter a two-letter country code, like DE or US."
        )
        await expect(form.locator('[data-error-for="rate_bp"]')).to_have_text(
            "Enter the rate as a percentage, like 19 or 7.5."
        )
        await form.locator("[name=country]").fill(TAX_COUNTRY)
        await form.locator("[name=rate_bp]").fill("150")
        await add.click()
        await expect(form.locator('[data-error-for="rate_bp"]')).to_have_text("A rate cannot be above 100%.")
        listed = await gw.get("/admin/tax-rates", params={"country": TAX_COUNTRY}, headers=boss.auth)
        assert [r for r in listed.json() if r["name"] == "MWST"] == []

        await form.locator("[name=rate_bp]").fill("8.1")
        await form.locator("[name=applies_to_shipping]").check()
        await add.click()
        row = watcher.page.locator("#taxes-body tr", has_text="MWST")
        await expect(row.locator('[data-role="rate"]')).to_have_text("8.1%")
        await expect(row).to_contain_text("taxed too")
        listed = await gw.get("/admin/tax-rates", params={"country": TAX_COUNTRY}, headers=boss.auth)
        assert [(r["rate_bp"], r["applies_to_shipping"]) for r in listed.json() if r["name"] == "MWST"] == [
            (810, True)
        ]

        # a second rate of the same name in the same place is refused, in words, under the form
        await form.locator("[name=name]").fill("MWST")
        await form.locator("[name=country]").fill(TAX_COUNTRY)
        await form.locator("[name=rate_bp]").fill("2.6")
        await add.click()
        await expect(form.locator('[data-error-for="_form"]')).not_to_be_empty()
        await expect(row).to_have_count(1)

        mine = editor.page.locator("#taxes-body tr", has_text="MWST")
        await mine.get_by_role("button", name="Edit").click()
        await form.locator("[name=rate_bp]").fill("7.7")
        await form.get_by_role("button", name="Save rate").click()
        await expect(row.locator('[data-role="rate"]')).to_have_text("7.7%")

        await mine.locator(".rate-delete").click()
        await mine.locator(".rate-delete").click()
        await expect(row).to_have_count(0)
        editor.assert_clean()
        watcher.assert_clean()
    finally:
        listed = await gw.get("/admin/tax-rates", params={"country": TAX_COUNTRY}, headers=boss.auth)
        for r in listed.json():
            if r["name"] == "MWST":
                await gw.delete(f"/admin/tax-rates/{r['id']}", headers=boss.auth)
