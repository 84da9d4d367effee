"""One webhook request: a signed POST under a deadline, redirects not followed.

The answer's status and ``Retry-After`` are all that matter; of its body at
most ``ANSWER_READ_BYTES`` are read (kept in the attempt's error when the
status is not 2xx, to help whoever runs the receiver), so a receiver that
streams forever costs nothing but the deadline.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import aiohttp

from exportd import __version__
from exportd.definitions.webhook_url import shown
from exportd.webhooks.policy import Answer
from exportd.webhooks.signing import signature

USER_AGENT = f"exportd/{__version__} (webhooks; +https://www.standardwebhooks.com)"
ANSWER_READ_BYTES = 512
# An error message kept with the attempt, at most.
ERROR_MAX_CHARS = 500
# Control characters of a receiver's answer: Postgres text cannot hold NUL, and
# none of them helps whoever reads the error.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A URL quoted in an error message: up to a space, a quote or an angle bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)[:ERROR_MAX_CHARS]


@dataclass(frozen=True)
class Sent:
    answer: Answer
    latency_ms: int


def headers(keys: list[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request's headers: the Standard Webhooks three, the content type and
    the user agent."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(keys, message_id, timestamp, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _describe(exc: BaseException, url: str, timeout: float) -> str:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return f"no answer within {timeout:g} s"
    text = f"{exc.__class__.__name__}: {exc}"
    # An error may quote the URL, whose path, query or credentials may carry a
    # token, and not as configured (aiohttp quotes it normalised, without its
    # credentials): every URL in the text is cut to what shown() keeps.
    text = text.replace(url, shown(url))
    return _clean(_URL_IN_TEXT.sub(lambda m: shown(m.group(0)), text))


async def post(
    session: aiohttp.ClientSession,
    url: str,
    keys: list[bytes],
    message_id: str,
    body: bytes,
    *,
    deadline: float,
) -> Sent:
    """POST ``body`` to ``url``, signed with ``keys``, within ``deadline`` seconds.

    Never raises for what the receiver or the network does: a status, or no
    status and an error saying why, with the latency in milliseconds.
    """
    started = time.monotonic()
    sent_headers = headers(keys, message_id, int(time.time()), body)
    try:
        async with asyncio.timeout(deadline):
            async with session.post(
                url,
                data=body,
                headers=sent_headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=deadline),
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                error = None
                if not 200 <= status < 300:
                    head = await response.content.read(ANSWER_READ_BYTES)
                    text = head.decode("utf-8", "replace").strip()
                    if 300 <= status < 400:
                        text = "a redirect, not followed; point the URL at its target"
                    error = _clean(f"HTTP {status}" + (f": {text}" if text else ""))
        answer = Answer(status, error, retry_after)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        answer = Answer(None, _describe(exc, url, deadline))
    return Sent(answer, int((time.monotonic() - started) * 1000))
