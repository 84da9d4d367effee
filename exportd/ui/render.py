"""Pages from templates: Jinja2 with autoescape on for every template, so that an
owner, a kind, params or an error text is shown as text wherever it appears.

Templates and assets ship inside the package (``exportd/ui/templates``,
``exportd/ui/static``), served by the daemon itself: no CDN, no build step.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from exportd.api.context import ApiContext
from exportd.ui import present
from exportd.ui.sessions import Session, csrf_token
from exportd.ui.throttle import LoginThrottle
from exportd.ui.tokens import UiToken

# The session of the request being served: set by ``auth.sessions`` around its
# handler (one task per request), read by the handlers and the templates.
SESSION: ContextVar[Session | None] = ContextVar("exportd_ui_session", default=None)


def static_dir() -> Path:
    return Path(str(resources.files("exportd.ui").joinpath("static")))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("exportd.ui", "templates"),
        # Every template, whatever its name: nothing caller-written is ever markup.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = present.size
    env.filters["duration"] = present.duration
    env.filters["when"] = present.when
    env.filters["pretty_json"] = _pretty_json
    env.globals["rate"] = present.rate
    env.filters["number"] = lambda n: "\u2014" if n is None else f"{n:,}"
    return env


def _pretty_json(value: Any) -> str:
    # jsonb arrives decoded or as text, depending on the codec: shown the same.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@dataclass
class UiState:
    """What the dashboard's handlers share, beside the API's context."""

    ctx: ApiContext
    tokens: list[UiToken]
    key: bytes
    ttl_seconds: float
    trust_forwarded_proto: bool
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    templates: jinja2.Environment = field(default_factory=_environment)

    @property
    def open(self) -> bool:
        """Whether any token is configured: with none, the dashboard is closed."""
        return bool(self.tokens)


UI = web.AppKey("exportd_ui", UiState)


def session_of(request: web.Request) -> Session | None:
    """The session of ``request`` (None before the login)."""
    return SESSION.get()


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """The page ``template`` with ``values``, plus what every page shows: the session
    (role, owner, token fingerprint), its CSRF token, and the time it was made."""
    state = request.config_dict[UI]
    session = session_of(request)
    page = state.templates.get_template(template).render(
        session=session,
        csrf=csrf_token(session, state.key) if session else "",
        now=datetime.now(UTC),
        path=request.path,
        **values,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
