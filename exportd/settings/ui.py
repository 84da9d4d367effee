"""The ``EXPORTD_UI_*`` settings: who may open the operator dashboard (``/ui/``),
and how its sessions live. ``Settings`` takes them from here; the dashboard
itself is ``exportd.ui``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from exportd.ui.tokens import TokenError, UiToken, parse_tokens

_SECONDS = re.compile(r"\d+(\.\d+)?")


class UiSettings(BaseModel):
    ui_tokens: Annotated[SecretStr | None, NoDecode] = Field(
        None,
        description="Comma-separated tokens that open the dashboard read-only; "
        "`token@owner` shows that owner's jobs alone. Each token 16 to 256 "
        "printable ASCII characters, without spaces, commas or @. With neither "
        "this nor EXPORTD_UI_ADMIN_TOKENS set, /ui/ is closed.",
    )
    ui_admin_tokens: Annotated[SecretStr | None, NoDecode] = Field(
        None,
        description="Comma-separated tokens that open the dashboard with its actions "
        "(cancel, retry, delete, pause, resume); `token@owner` acts on that owner's "
        "jobs alone, and pauses no kind.",
    )
    ui_session_ttl: timedelta = Field(
        timedelta(hours=8),
        description="How long a dashboard session lasts after its login (seconds or "
        "ISO 8601); at most 7 days.",
    )
    ui_trust_forwarded_proto: bool = Field(
        False,
        description="Believe X-Forwarded-Proto: set it only behind a proxy that "
        "overwrites the header. A session cookie is marked Secure when the request "
        "came over https (directly, or per this header when trusted).",
    )

    @field_validator("ui_session_ttl", mode="before")
    @classmethod
    def _ui_seconds(cls, value: Any) -> Any:
        if isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
            return float(value)
        return value

    @model_validator(mode="after")
    def _ui_consistent(self) -> UiSettings:
        ttl = self.ui_session_ttl.total_seconds()
        if not 60 <= ttl <= 7 * 86400:
            raise ValueError("ui_session_ttl must lie between 60 seconds and 7 days")
        try:
            self.ui_token_list()
        except TokenError as exc:
            raise ValueError(str(exc)) from None
        return self

    def ui_token_list(self) -> list[UiToken]:
        """Every dashboard token, admin ones first; empty: the dashboard is closed.
        Raises ``TokenError`` for a malformed one (which names its setting, never
        its text)."""
        admin = self.ui_admin_tokens.get_secret_value() if self.ui_admin_tokens else ""
        read = self.ui_tokens.get_secret_value() if self.ui_tokens else ""
        return [
            *parse_tokens(admin, admin=True, setting="EXPORTD_UI_ADMIN_TOKENS"),
            *parse_tokens(read, admin=False, setting="EXPORTD_UI_TOKENS"),
        ]
