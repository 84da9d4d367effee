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
