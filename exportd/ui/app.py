"""The dashboard as an aiohttp sub-application mounted at ``/ui`` of the API's app.

Its own middlewares (``auth``) give every answer the security headers and an
HTML page for errors, and require a session everywhere but the login form
and the static assets. The API's middlewares run around them (request ids,
the access log); its bearer tokens do not apply here.
"""

from __future__ import annotations

from aiohttp import web

from exportd.api.context import CONTEXT, ApiContext
from exportd.ui import actions, auth, live, pages
from exportd.ui.render import UI, UiState, static_dir
from exportd.ui.sessions import session_key


def ui_state(ctx: ApiContext) -> UiState:
    """The dashboard's state for ``ctx``'s settings (tokens read and checked there)."""
    tokens = ctx.settings.ui_token_list()
    return UiState(
        ctx=ctx,
        tokens=tokens,
        key=session_key(tokens),
        ttl_seconds=ctx.settings.ui_session_ttl.total_seconds(),
        trust_forwarded_proto=ctx.settings.ui_trust_forwarded_proto,
    )


def build_ui(ctx: ApiContext) -> web.Application:
    app = web.Application(middlewares=[auth.security_headers, auth.sessions])
    app[CONTEXT] = ctx
    app[UI] = ui_state(ctx)
    r = app.router
    r.add_get("/", pages.overview)
    r.add_get("/login", auth.login_form)
    r.add_post("/login", auth.login)
    r.add_post("/logout", auth.logout)
    r.add_get("/jobs", pages.jobs)
    r.add_get("/jobs/{id}", pages.job)
    r.add_post("/jobs/{id}/download", actions.download)
    r.add_get("/jobs/{id}/{verb}", actions.confirm_job)
    r.add_post("/jobs/{id}/{verb}", actions.act_on_job)
    r.add_get("/kinds/{kind}/{verb}", actions.confirm_kind)
    r.add_post("/kinds/{kind}/{verb}", actions.act_on_kind)
    r.add_get("/schedules", pages.schedules)
    r.add_get("/live", live.live)
    r.add_static("/static", static_dir(), append_version=False)
    return app


async def _to_slash(request: web.Request) -> web.Response:
    # Served by the API's app, outside the dashboard's middlewares: its headers here.
    raise web.HTTPPermanentRedirect("/ui/", headers=auth.HEADERS)


def mount(app: web.Application, ctx: ApiContext) -> None:
    """Serve the dashboard at ``/ui/`` of ``app`` (and ``/ui`` redirects there)."""
    app.router.add_get("/ui", _to_slash)
    app.add_subapp("/ui", build_ui(ctx))
