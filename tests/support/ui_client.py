"""The dashboard as a browser without JavaScript sees it: an aiohttp session that
keeps cookies (for a loopback address too), logs in with a token and reads
each page's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

# Tokens the dashboard tests configure: each 16 bytes or more.
ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
ALICE_ADMIN = "alice-admin-token-0123456789"
UI_TOKENS = {
    "ui_admin_tokens": f"{ADMIN},{ALICE_ADMIN}@alice",
    "ui_tokens": READER,
}

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@asynccontextmanager
async def browser_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that keeps the dashboard's cookie (aiohttp's jar refuses
    cookies of an IP address unless unsafe)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def log_in(session: aiohttp.ClientSession, base: str, token: str) -> str:
    """Log in with ``token``; the CSRF token of the session's pages."""
    async with session.post(
        f"{base}/ui/login", data={"token": token, "next": "/ui/jobs"}, allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
    async with session.get(f"{base}/ui/jobs") as page:
        assert page.status == 200, await page.text()
        return csrf_of(await page.text())
