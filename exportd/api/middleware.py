"""What every API request goes through: a request id and an access log line,
JSON errors, and bearer-token checks.

Order (outermost first): ``request_log`` sees the final status of every
request, errors included; ``errors`` turns anything raised into a JSON
error; ``auth`` refuses before any handler runs; ``readable_query`` refuses
a query string of the API's that is not UTF-8 before any handler reads it.
"""

from __future__ import annotations

import hmac
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from exportd.api.context import CONTEXT
from exportd.api.query_params import query_problems
from exportd.api.requests import RequestInvalid, request_id
from exportd.database import is_unavailable
from exportd.errors import ExportError
from exportd.metrics import error_source

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"

# Probes and scrapes arrive every few seconds from every load balancer,
# kubelet and Prometheus: their successful answers are logged at debug level.
_ROUTINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_log = structlog.get_logger("exportd.api")


# A client told to come back later waits this long: outages are seconds to minutes.
_RETRY_AFTER_SECONDS = "5"


class ApiError(Exception):
    """An answer other than success, raised from anywhere inside a handler."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


def invalid_request(exc: RequestInvalid) -> web.Response:
    count = len(exc.errors)
    return error_response(
        400,
        "invalid_request",
        f"{count} problem{'s' if count != 1 else ''}: {exc}",
        errors=[e.as_json() for e in exc.errors],
    )


def unavailable(code: str, message: str) -> web.Response:
    response = error_response(503, code, message)
    response.headers["Retry-After"] = _RETRY_AFTER_SECONDS
    return response


def route_template(request: web.Request) -> str:
    """The route as declared ('/v1/jobs/{id}'): log lines group by it, and no
    caller-chosen path text reaches the logs."""
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "<unmatched>"


def request_log(*, log_requests: bool) -> Any:
    """A middleware giving every request an id, echoed in ``X-Request-Id``, and,
    when ``log_requests``, one ``http_request`` line with its final status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Two different ids: neither is the caller's for sure, so a fresh one.
        presented = set(request.headers.getall(REQUEST_ID_HEADER, []))
        rid = request_id(presented.pop() if len(presented) == 1 else None)
        started = time.perf_counter()
        status = 500
        # Every line logged while the request is served carries its id.
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                response = await handler(request)
                status = response.status
            except web.HTTPException as exc:  # only redirects and the like get this far
                status = exc.status
                exc.headers[REQUEST_ID_HEADER] = rid
                raise
            finally:
                if log_requests:
                    routine = status < 400 and request.path in _ROUTINE_PATHS
                    (_log.debug if routine else _log.info)(
                        "http_request",
                        method=request.method,
                        path=route_template(request),
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                        request_id=rid,
                    )
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    return middleware


def known_failure(exc: Exception, metrics: Any) -> web.Response | None:
    """The answer to a failure a handler may meet, or None for a bug."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    if isinstance(exc, RequestInvalid):
        return invalid_request(exc)
    if isinstance(exc, web.HTTPException):  # aiohttp's own: unknown route, body too large...
        response = error_response(
            exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason
        )
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    if isinstance(exc, ExportError) and (source := error_source(exc.kind)) is not None:
        # What the S3 package raises (s3.causes): S3 unreachable or refusing us.
        metrics.error(source, "api")
        return unavailable(str(exc.kind), exc.message)
    if is_unavailable(exc):
        # Every outage the worker retries: the caller is told to retry as well.
        metrics.error("database", "api")
        return unavailable("database_unavailable", "the queue database does not answer; retry")
    return None


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # a redirect is not an error
        return known_failure(exc, None) or error_response(exc.status, "error", exc.reason)
    except Exception as exc:
        response = known_failure(exc, request.app[CONTEXT].metrics)
        if response is not None:
            return response
        _log.exception("api_error", path=route_template(request), method=request.method)
        return error_response(500, "internal", "internal error; see the daemon log")


@web.middleware
async def readable_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (400, naming each parameter) a query string that is not UTF-8, on the
    API's routes: read as the server decodes it, it would stand for another value.
    Probes (/healthz, /readyz, /metrics) read no parameter, and answer whatever a
    load balancer appends."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    if problems := query_problems(request.rel_url.raw_query_string):
        raise RequestInvalid(problems)
    return await handler(request)


def _raw(text: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 as lone surrogates
    # (surrogateescape); environment variables arrive the same way. Back to
    # the bytes sent, which can only fail to match, never raise.
    return text.encode("utf-8", "surrogateescape")


def authorized(header: str, tokens: Iterable[str]) -> bool:
    """Whether an Authorization header carries one of ``tokens``.

    Any header at all is answered True or False, never an exception: one that
    is not UTF-8, holds control characters or is huge (aiohttp bounds header
    fields at 8190 bytes) is simply no token of ours.
    """
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    # Compare with every token, in constant time, so timing says nothing of
    # which token or how much of one matched.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(_raw(presented), _raw(token))
    return matched


def unauthorized() -> web.Response:
    response = error_response(
        401, "unauthorized", "send Authorization: Bearer <token> (EXPORTD_API_TOKENS)"
    )
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def bearer_auth(tokens_for: Callable[[web.Request], list[str] | None]) -> Any:
    """A middleware refusing requests whose path ``tokens_for`` gives tokens for,
    unless they carry one of them (None: the path is open)."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        tokens = tokens_for(request)
        if tokens is not None and not authorized(request.headers.get("Authorization", ""), tokens):
            return unauthorized()
        return await handler(request)

    return auth


class ProtocolLogger(logging.Logger):
    """aiohttp's server logger, minus the traceback for requests that are not HTTP.

    aiohttp answers a request it cannot parse (a header over 8190 bytes, a
    control character in a header value, a broken request line) with a 400
    of its own before any middleware runs, and logs it with a traceback at
    error level. That is the caller's mistake, not ours: one warning line
    with the parser's reason, and without the offending line, which may hold
    a token. Anything else is logged as aiohttp logs it.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            _log.warning(
                "http_malformed_request", status=exc.code or 400, reason=parser_reason(exc)
            )
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


# Where aiohttp's messages start quoting what was sent: b'...' or b"...".
_QUOTED_BYTES = re.compile(r"""[:\s]*b['"]""")


def parser_reason(exc: HttpProcessingError) -> str:
    """Why aiohttp's parser refused a request, without the bytes it quotes.

    Its messages quote the offending line ("Got more than 8190 bytes when
    reading: b'Bearer <token>...'"), which may hold a token: the reason keeps
    the exception's name and the words before the quote, at most 200
    characters.
    """
    text = str(exc.message).split("\n", 1)[0]
    words = _QUOTED_BYTES.split(text, maxsplit=1)[0].strip().rstrip(":.")
    return f"{type(exc).__name__}: {words}"[:200] if words else type(exc).__name__


PROTOCOL_LOGGER = ProtocolLogger("aiohttp.server")
PROTOCOL_LOGGER.parent = logging.getLogger("aiohttp")
