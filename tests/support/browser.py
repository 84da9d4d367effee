"""Debian's Chromium, headless, driven by Playwright (never a browser of its own:
``playwright install`` is not used). ``make test`` installs ``chromium`` with
apt-get where it is missing."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Page, base: str, token: str) -> None:
    """Log in through the form, as a person would; lands on the overview or jobs."""
    await page.goto(f"{base}/ui/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/ui/**")
    assert "/ui/login" not in page.url, await page.content()


def policy_violations(page: Page) -> list[str]:
    """A list that fills with every console message of ``page`` about its
    Content-Security-Policy: a page of the dashboard should cause none (an inline
    script or style, an eval, a resource from elsewhere would)."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found
