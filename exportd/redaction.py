"""Secrets kept out of logs and messages: the passwords a database URL may carry.

``EXPORTD_DATABASE_URL`` and ``EXPORTD_SOURCE_DATABASE_URL`` may hold a password, in the
userinfo or as a query parameter. ``redact_url`` masks them in a URL about to be shown;
``redact_text`` masks them in any text (a driver's error message, say) that may quote the
URL or a part of it. Pure.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

# Query parameters of a libpq/asyncpg URL that carry a secret.
_SECRET_PARAMS = frozenset({"password", "sslpassword"})
_MASK = "***"


def redact_url(url: str) -> str:
    """The URL with every secret in it replaced by ``***``, for logs and messages.

    The one masking function for database URLs (``EXPORTD_DATABASE_URL``,
    ``EXPORTD_SOURCE_DATABASE_URL``): the userinfo password and the
    ``password`` and ``sslpassword`` query parameters, however they are
    spelled (``pass%77ord=`` is ``password=`` to the driver, which decodes
    keys, and a key may be given twice). A URL that does not parse is
    replaced whole rather than risk printing what it holds.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = f"{userinfo.split(':', 1)[0]}:{_MASK}"
            netloc = f"{userinfo}@{host}"
        query = (
            "&".join(_redact_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
        )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<a database URL that does not parse>"


def _redact_pair(pair: str) -> str:
    key = pair.partition("=")[0]
    if unquote_plus(key).strip().lower() in _SECRET_PARAMS:
        return f"{key}={_MASK}"
    return pair


def redact_text(text: str, *urls: str) -> str:
    """``text`` (an error message, say) with each secret of ``urls`` masked
    wherever it appears, raw or percent-decoded: a driver's message may quote
    the DSN or a part of it."""
    for url in urls:
        for secret in _url_secrets(url):
            text = text.replace(secret, _MASK)
        text = text.replace(url, redact_url(url))
    return text


def _url_secrets(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    found = set()
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if unquote_plus(key).strip().lower() in _SECRET_PARAMS:
            found.add(value)
    # The encoded and the decoded form alike; never an empty string (it would match everywhere).
    return {
        form for secret in found for form in (secret, unquote(secret), unquote_plus(secret)) if form
    }
