"""The admin console as a person sees it in the browser: small steps the tests compose."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import ConsoleMessage, Dialog, Locator, Page, expect

from services.realtime.console import HERE
from tests.e2e.stack import ROOT


def install_console_packages() -> None:
    """The console package's npm dependencies (its client, and axe-core for the scan), for a
    pytest run started by hand without `make console`."""
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--package-lock=false"],
        cwd=HERE,
        check=True,
        capture_output=True,
        timeout=300,
    )


ARTIFACTS = ROOT / "artifacts"
# the README's pictures of the console: written only when asked (CONSOLE_DOCS_SCREENSHOTS=1), so a
# test run leaves the repository as it was
DOCS = ROOT / "docs" / "console"


@dataclass
class ConsolePage:
    """One browser tab on ``/console/`` that records dialogs, script errors and CSP violations."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("dialog", self._on_dialog)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._on_console)

    async def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    async def open(self, gateway: str) -> ConsolePage:
        await self.page.goto(f"{gateway}/console/")
        return self

    async def sign_in(self, email: str, password: str) -> None:
        form = self.page.locator("#signin-form")
        await form.locator("[name=email]").fill(email)
        await form.locator("[name=password]").fill(password)
        await form.get_by_role("button", name="Sign in").click()

    async def sign_in_as_admin(self, email: str, password: str) -> None:
        await self.sign_in(email, password)
        await expect(self.page.locator("#app-view")).to_be_visible()
        await expect(self.page.locator("#conn")).to_have_text("connected")

    @property
    def feed(self) -> Locator:
        return self.page.locator("#feed li")

    def feed_entries(self, event: str, containing: str) -> Locator:
        return self.page.locator(f'#feed li[data-event="{event}"]', has_text=containing)

    def order_row(self, order_id: str) -> Locator:
        return self.page.locator(f'#orders-body tr[data-order-id="{order_id}"]')

    def product_row(self, product_id: str) -> Locator:
        return self.page.locator(f'#products-body tr[data-product-id="{product_id}"]')

    @property
    def product_form(self) -> Locator:
        return self.page.locator("#product-form")

    @property
    def category_form(self) -> Locator:
        return self.page.locator("#category-form")

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def picture(self, locator: Locator, name: str) -> Path:
        """One part of the page (a screen, an open detail) as a small PNG for artifacts/ (and docs/console/)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await locator.screenshot(path=str(path), animations="disabled", caret="hide")
        if os.environ.get("CONSOLE_DOCS_SCREENSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            (DOCS / name).write_bytes(path.read_bytes())
        return path

    def assert_clean(self) -> None:
        """Nothing a person would notice went wrong: no dialog, no script error, no CSP violation."""
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors
        blocked = [m for m in self.console_errors if "Content Security Policy" in m]
        assert blocked == [], blocked
