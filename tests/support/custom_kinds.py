"""Python handlers for the tests: what an operator's own module would hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from exportd.handlers import HandlerContext


async def squares(ctx: HandlerContext) -> AsyncIterator[dict[str, Any]]:
    """Rows computed in Python from rows read in the job's transaction."""
    upto = ctx.params["upto"]
    async for record in ctx.connection.cursor(
        "SELECT g FROM generate_series(1, $1::int) AS g", upto
    ):
        n = record["g"]
        yield {
            "n": n,
            "square": n * n,
            "half": Decimal(n) / 2,
            "owner": ctx.owner,
            "blob": bytes([n % 256]),
        }


async def pauses(ctx: HandlerContext) -> AsyncIterator[dict[str, Any]]:
    """A row, a pause in the job's transaction (waiting on a service, say), a row."""
    yield {"n": await ctx.connection.fetchval("SELECT 1")}
    pause = ctx.params["pause_ms"]
    assert isinstance(pause, int)
    await asyncio.sleep(pause / 1000)
    yield {"n": await ctx.connection.fetchval("SELECT 2")}


async def report_pdf(ctx: HandlerContext) -> AsyncIterator[bytes]:
    """A file that is not rows (a stand-in for a real PDF renderer)."""
    yield b"%PDF-1.4\n"
    yield f"% report for {ctx.owner}\n".encode()
    yield b"%%EOF\n"


async def broken(ctx: HandlerContext) -> AsyncIterator[dict[str, Any]]:
    yield {"ok": 1}
    raise RuntimeError("the renderer ran out of ink")


async def wide_rows(ctx: HandlerContext) -> AsyncIterator[dict[str, Any]]:
    """Three rows, the second with a value of ``width`` bytes."""
    for n in (1, 2, 3):
        width = int(str(ctx.params["width"]))
        yield {"n": n, "body": "x" * width if n == 2 else "small"}


async def awkward(ctx: HandlerContext) -> AsyncIterator[dict[str, Any]]:
    """Rows whose values the job options change: formula-like text, numbers a double
    cannot hold, aware datetimes (for the formula guard, big numbers, time zones)."""
    from datetime import UTC, datetime

    yield {
        "id": 1,
        "name": '=HYPERLINK("http://evil","x")',
        "amount": Decimal("-5"),
        "ratio": 1.5,
        "at": datetime(2025, 3, 30, 0, 30, tzinfo=UTC),
        "big": 2**53 + 1,
    }
    yield {
        "id": 2,
        "name": "Grüße; 🎉\nzweite Zeile",
        "amount": Decimal("1234.5"),
        "ratio": -0.25,
        "at": datetime(2025, 3, 30, 1, 30, tzinfo=UTC),
        "big": 2**53 - 1,
    }
    yield {"id": 3, "name": None, "amount": None, "ratio": None, "at": None, "big": None}
    yield {
        "id": 4,
        "name": "NULL",
        "amount": Decimal("123456789012345678901234567890"),
        "ratio": 1e20,
        "at": datetime(2025, 1, 1, tzinfo=UTC),
        "big": -(2**53 + 1),
    }
