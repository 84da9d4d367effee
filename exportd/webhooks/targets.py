"""Which URL a job's events go to. Pure.

A kind's own ``webhook_url`` (its definition, written by the operator), else
``EXPORTD_WEBHOOK_URL``; never anything a job or a request carries. A job
whose kind has no URL and no default applies has no target: its deliveries
are finished as ``no_target`` and never retried.
"""

from __future__ import annotations

from collections.abc import Mapping

from exportd.definitions.kinds import Kind


def target_of(kind: str, kinds: Mapping[str, Kind], default: str | None) -> str | None:
    """The URL events of jobs of ``kind`` are POSTed to, or None."""
    defined = kinds.get(kind)
    if defined is not None and defined.webhook_url is not None:
        return defined.webhook_url
    return default


def configuration_problem(kinds: Mapping[str, Kind], default: str | None, keys: int) -> str | None:
    """Why webhooks cannot be sent as configured, or None: some URL is set (the
    default or a kind's) but there is no secret (``keys`` is how many)."""
    if keys:
        return None
    own = sorted(name for name, kind in kinds.items() if kind.webhook_url is not None)
    if default is None and not own:
        return None
    where = "EXPORTD_WEBHOOK_URL" if default is not None else f"kind(s) {', '.join(own)}"
    return f"{where} set a webhook URL but EXPORTD_WEBHOOK_SECRET is not set"
