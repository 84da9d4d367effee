"""Who may see the dashboard and act from it: login, sessions, CSRF, headers.

- Closed unless ``EXPORTD_UI_TOKENS`` or ``EXPORTD_UI_ADMIN_TOKENS`` is set:
  with neither, every page answers 404 saying how to open it. No page is
  ever open without a token, loopback or not: an address says nothing of
  who is behind a proxy on the same host.
- A login form exchanges a token for a signed session cookie (``sessions``):
  ``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, ``Max-Age`` the session's
  life, and ``Secure`` when the request came over https (by its own
  transport, or by ``X-Forwarded-Proto`` when ``EXPORTD_UI_TRUST_FORWARDED_PROTO``).
- Failed logins are bounded (``throttle``): 429 past them, no compare made.
  A login a browser says comes from another site (``Sec-Fetch-Site:
  cross-site``) is refused (403).
- Every POST but the login carries its session's CSRF token (403 without).
- Every answer carries the security headers: a Content-Security-Policy that
  allows only the daemon's own scripts and styles (no inline script at all),
  no framing, no sniffing, no referrer beyond the origin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlencode

import structlog
from aiohttp import web

from exportd.api.context import CONTEXT
from exportd.api.middleware import known_failure, route_template
from exportd.ui.render import SESSION, UI, UiState, render, session_of
from exportd.ui.sessions import COOKIE_NAME, Session, csrf_ok, decode, encode, new_session
from exportd.ui.tokens import PRESENTED_MAX_BYTES, match

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_log = structlog.get_logger("exportd.ui")

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show jobs and carry a CSRF token: never kept by a shared cache.
    "Cache-Control": "no-store",
}
_OPEN_PATHS = ("/ui/login", "/ui/static/")
# A login's "next" longer than this is no page of ours: the dashboard's own
# links (filters and a keyset cursor) stay well under it.
NEXT_MAX_BYTES = 2048


def is_https(request: web.Request, trust_forwarded: bool) -> bool:
    """Whether the browser reached us over https: the connection's own scheme, or,
    only when trusted, the first X-Forwarded-Proto a proxy set."""
    if request.secure:
        return True
    if not trust_forwarded:
        return False
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect
            exc.headers.update(HEADERS)
            raise
        # An error is a page too, with the headers: never the API's JSON.
        response = render(
            request, "error.html", status=exc.status, title=exc.reason, message=exc.text or ""
        )
    except Exception as exc:
        # An outage (503, Retry-After) or a bug (500) is a page as well: the
        # API's middleware would answer its JSON, without these headers.
        response = _failure_page(request, exc)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _failure_page(request: web.Request, exc: Exception) -> web.Response:
    """The page for an exception a handler raised, classified as the API's
    middleware classifies it (``api.middleware.known_failure``)."""
    known = known_failure(exc, request.app[CONTEXT].metrics)
    if known is None:
        _log.exception("ui_error", path=route_template(request), method=request.method)
        return render(
            request,
            "error.html",
            status=500,
            title="Internal error",
            message="The daemon failed to make this page; its log says why (ui_error).",
        )
    message = str(json.loads(known.text or "{}").get("message", ""))
    page = render(request, "error.html", status=known.status, title=known.reason, message=message)
    if "Retry-After" in known.headers:
        page.headers["Retry-After"] = known.headers["Retry-After"]
    return page


def _login_redirect(request: web.Request) -> web.HTTPException:
    target = request.path_qs if request.method == "GET" else "/ui/"
    return web.HTTPSeeOther("/ui/login?" + urlencode({"next": target}))


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the request's session, or send it to the login form; check CSRF on POSTs."""
    state = request.config_dict[UI]
    if not state.open:
        return render(request, "closed.html", status=404)
    if request.path.startswith(_OPEN_PATHS):
        return await handler(request)
    raw = request.cookies.get(COOKIE_NAME, "")
    session = decode(raw, state.key, time.time()) if raw else None
    if session is None or not session.still_valid(state.tokens):
        if request.path == "/ui/live":
            return web.json_response({"error": "unauthorized"}, status=401)
        raise _login_redirect(request)
    bound = SESSION.set(session)
    try:
        return await _checked(request, handler, state, session)
    finally:
        SESSION.reset(bound)


async def _checked(
    request: web.Request, handler: Handler, state: UiState, session: Session
) -> web.StreamResponse:
    """The handler, once a POST's form carries its session's CSRF token (403 without)."""
    if request.method == "POST":
        form = await request.post()
        presented = form.get("csrf")
        if not isinstance(presented, str) or not csrf_ok(session, state.key, presented):
            _log.warning("ui_csrf_refused", path=request.path, token=session.fingerprint)
            return render(
                request,
                "error.html",
                status=403,
                title="Refused",
                message="This form did not come from this dashboard session (CSRF check failed). "
                "Reload the page and try again.",
            )
    return await handler(request)


def next_target(raw: str | None) -> str:
    """Where a login sends the browser: ``raw`` when it is a page of the dashboard
    as a browser would resolve it, else ``/ui/``. Never another site (an open
    redirect) nor another path of the daemon: no control character, space or
    backslash (browsers drop or rewrite them), no empty segment (``//``), no
    ``.`` or ``..`` segment, percent-encoded or not (browsers resolve
    ``%2e%2e`` as ``..``)."""
    if not raw or len(raw) > NEXT_MAX_BYTES or not raw.startswith("/ui/"):
        return "/ui/"
    if "\\" in raw or any(not 0x21 <= ord(c) <= 0x7E for c in raw):
        return "/ui/"
    path = raw.split("?", 1)[0].split("#", 1)[0]
    segments = path[1:].split("/")
    if "" in segments[:-1] or any(unquote(s) in (".", "..") for s in segments):
        return "/ui/"
    return raw


async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", next=next_target(request.query.get("next")), error=None)


async def login(request: web.Request) -> web.Response:
    state: UiState = request.config_dict[UI]
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        # Login CSRF: another site's page posting its own token would put the
        # browser in that session. The form has no CSRF token (no session yet);
        # the browser's own word on where the request comes from suffices.
        raise web.HTTPForbidden(
            text="This login came from another site's page: open the dashboard and log in there."
        )
    form = await request.post()
    raw_next = form.get("next")
    target = next_target(raw_next if isinstance(raw_next, str) else None)
    client = request.remote or "unknown"
    now = time.monotonic()
    wait = state.throttle.retry_after(client, now)
    if wait is not None:
        response = render(
            request,
            "login.html",
            status=429,
            next=target,
            error=f"Too many failed logins: try again in {int(wait) + 1} s.",
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    presented = form.get("token")
    token = None
    if isinstance(presented, str) and len(presented) <= PRESENTED_MAX_BYTES:
        token = match(presented.strip(), state.tokens)
    if token is None:
        state.throttle.failed(client, now)
        _log.warning("ui_login_failed", remote=client)
        return render(request, "login.html", status=401, next=target, error="Unknown token.")
    session = new_session(token, time.time(), state.ttl_seconds)
    _log.info(
        "ui_login", token=token.fingerprint, role=token.role, owner=token.owner, remote=client
    )
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE_NAME,
        encode(session, state.key),
        max_age=int(state.ttl_seconds),
        path="/ui",
        httponly=True,
        samesite="Strict",
        secure=is_https(request, state.trust_forwarded_proto),
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    if session is not None:
        _log.info("ui_logout", token=session.fingerprint)
    response = web.HTTPSeeOther("/ui/login")
    response.del_cookie(COOKIE_NAME, path="/ui")
    raise response


def require_admin(request: web.Request) -> None:
    """403 for a read-only session: the server refuses an action whatever the page showed."""
    session = session_of(request)
    if session is None or not session.admin:
        raise web.HTTPForbidden(
            text="This dashboard session is read-only: actions need a token of "
            "EXPORTD_UI_ADMIN_TOKENS.",
        )
