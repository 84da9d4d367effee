"""Settings read from ``EXPORTD_*`` environment variables and an optional ``.env``.

``load_settings`` turns a validation failure into one readable line per problem, so a
daemon with a missing bucket stops with a sentence, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exportd.settings.model import Settings, SettingsError


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"])
        name = f"EXPORTD_{field.upper()}" if field else "settings"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required but not set"
        lines.append(f"{name}: {message}")
    return "; ".join(lines)


def load_settings(env_file: Path | str | None = ".env", **overrides: Any) -> Settings:
    """Settings from the environment, or a ``SettingsError`` that reads as one line."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: {_describe(exc)}") from None
