"""What a webhook URL may be: one rule for ``EXPORTD_WEBHOOK_URL`` and a kind's
``webhook_url``. Pure.

Only ``http://`` and ``https://`` with a host: the daemon POSTs signed events
there and nowhere else (redirects are not followed), so a ``file:`` or a
schemeless URL is a mistake to report at load, not a failed delivery later.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Far beyond any real endpoint, short enough for every HTTP server's request line.
WEBHOOK_URL_MAX_BYTES = 2048
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook target, or None."""
    if len(url.encode("utf-8", "surrogatepass")) > WEBHOOK_URL_MAX_BYTES:
        return f"must be at most {WEBHOOK_URL_MAX_BYTES} bytes"
    if _SPACE_OR_CONTROL.search(url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host, e.g. https://app.example/hooks"
    if port == 0:
        return "must not name port 0"
    if parts.fragment:
        return "must not have a #fragment (it is never sent)"
    return None


def shown(url: str) -> str:
    """The URL as logs and messages may show it: scheme, host and port only
    (a path or a query may carry a receiver's token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<a URL that does not parse>"
    return f"{parts.scheme}://{host}{port}"
