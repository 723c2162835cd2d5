"""A headless Chromium (Debian's, installed by scripts/ensure_browser.py) driving the console
through the gateway of the shared whole-system ``stack``."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from services.realtime.console import CLIENT
from tests.console.console_page import ConsolePage, install_console_packages
from tests.e2e.stack import Stack

# live events cross the outbox relay and the broker: give them more than the 5 s default
expect.set_options(timeout=15_000)
OpenConsole = Callable[[], Awaitable[ConsolePage]]


def find_chromium() -> str | None:
    if override := os.environ.get("CHROMIUM"):
        return override if os.access(override, os.X_OK) else None
    return next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


def build_console_client() -> None:
    """``make console`` for a pytest run started by hand."""
    if CLIENT.is_file():
        return
    if shutil.which("npm") is None:
        pytest.fail(
            "The console's socket.io-client is not built and npm is missing: install Node.js "
            "(Debian packages nodejs, npm), then run `make console`.",
            pytrace=False,
        )
    install_console_packages()


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = find_chromium()
    if path is None:
        pytest.fail(
            "No Chromium for the console's browser tests: run `python scripts/ensure_browser.py` "
            "(`make test` does), or set CHROMIUM to a Chromium binary.",
            pytrace=False,
        )
    await asyncio.to_thread(build_console_client)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=path, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture
async def open_console(browser: Browser, stack: Stack) -> AsyncIterator[OpenConsole]:
    """Opens the console in a fresh browser profile (its own session storage) per call."""
    contexts: list[BrowserContext] = []

    async def open_() -> ConsolePage:
        context = await browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US")
        contexts.append(context)
        return await ConsolePage(await context.new_page()).open(stack.gateway)

    yield open_
    for context in contexts:
        await context.close()
