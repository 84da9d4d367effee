"""Renders deploy/exportd.env.example from ``Settings``, so the file cannot drift.

Regenerate after adding a setting:
``python -m tests.support.env_example > deploy/exportd.env.example``.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

from exportd.settings.model import Settings

HEADER = """\
# Every exportd setting, with its default and meaning.
#
# Copy to /etc/exportd/exportd.env (systemd), a .env file in the working
# directory, or a Kubernetes ConfigMap/Secret. Active lines hold the default;
# commented-out lines have no default and are set only when needed. Secrets
# (database password, S3 keys, API tokens) belong in a file readable only by
# the daemon's user, or in a Secret.
"""


def iso_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    return f"PT{seconds}S"


def render_value(value: Any) -> str | None:
    """The default as an environment value; None when there is none."""
    if value is None or value == []:
        return None
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render() -> str:
    out = [HEADER.rstrip("\n")]
    for name, field in Settings.model_fields.items():
        env = f"EXPORTD_{name.upper()}"
        default = field.get_default(call_default_factory=True)
        value = render_value(default)
        description = field.description or ""
        out.append("")
        out.extend(f"# {line}" for line in textwrap.wrap(description, 76))
        out.append(f"{env}={value}" if value is not None else f"#{env}=")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
