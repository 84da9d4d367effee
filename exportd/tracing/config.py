"""Whether tracing is on, from the standard ``OTEL_*`` variables: pure.

OpenTelemetry's SDK configuration (opentelemetry.io/docs/specs/otel/configuration/
sdk-environment-variables/) names the variables; exportd reads these to decide:

- ``OTEL_SDK_DISABLED=true``: off, whatever else is set;
- ``OTEL_TRACES_EXPORTER``: ``otlp`` or ``console`` turn it on, ``none`` off
  (several, comma-separated: the first; others are refused by ``exportd check``);
- unset, an ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` turns it on with ``otlp``; neither: off
  (the SDK's default endpoint, localhost:4318, is a collector nobody asked for).

``otlp`` speaks HTTP/protobuf, the protocol of the exporter the ``otel`` extra
installs: ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL=grpc`` is refused with a
message. An ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` that is no http(s) URL,
and ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`` that the exporter could not read,
are refused too, without their value: the SDK would log them whole
(credentials with them) at every export, or send the collector no header. Everything
else (service name, resource attributes, headers, timeouts, sampler, batch
sizes) the SDK reads itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

EXPORTERS = ("otlp", "console")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_HEADERS = ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
# One name=value pair of those variables as the SDK reads them (W3C Baggage's
# token and value, URL-encoded, or with plain spaces: opentelemetry.util.re,
# parse_env_headers(liberal=True)); pairs are separated by commas.
_HEADER_PAIR = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*"
    r"=[ \t]*[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)
_HEADER_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")


@dataclass(frozen=True)
class TracingPlan:
    """What the environment asks for. ``exporter`` None: tracing off, ``why`` says why;
    ``problem``: a setting that cannot be honoured (tracing stays off)."""

    exporter: str | None
    why: str
    problem: str | None = None

    @property
    def on(self) -> bool:
        return self.exporter is not None and self.problem is None


def plan(env: Mapping[str, str], sdk_installed: bool) -> TracingPlan:
    """Read the ``OTEL_*`` variables of ``env`` (os.environ's shape) into a plan."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TracingPlan(None, "OTEL_SDK_DISABLED=true")
    named = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        exporter = named.split(",")[0].strip()
        if exporter == "none":
            return TracingPlan(None, "OTEL_TRACES_EXPORTER=none")
        if exporter not in EXPORTERS or "," in named:
            return TracingPlan(
                None,
                f"OTEL_TRACES_EXPORTER={named}",
                f"OTEL_TRACES_EXPORTER must be one of {', '.join(EXPORTERS)} or none, "
                f"not {named!r}",
            )
        why = f"OTEL_TRACES_EXPORTER={exporter}"
    else:
        endpoint = next((name for name in _ENDPOINTS if env.get(name, "").strip()), None)
        if endpoint is None:
            return TracingPlan(
                None, "neither OTEL_TRACES_EXPORTER nor OTEL_EXPORTER_OTLP_ENDPOINT is set"
            )
        exporter, why = "otlp", f"{endpoint} is set"
    if exporter == "otlp":
        for name in _ENDPOINTS:
            if not endpoint_usable(env.get(name, "").strip()):
                return TracingPlan(
                    None,
                    why,
                    f"{name} is not an http:// or https:// URL with a host and a valid "
                    "port (its value is not shown: it may hold credentials)",
                )
        for name in _HEADERS:
            if not headers_readable(env.get(name, "")):
                return TracingPlan(
                    None,
                    why,
                    f"{name} is not a comma-separated list of name=value pairs with "
                    "URL-encoded values (its value is not shown: it may hold a token)",
                )
        protocol = next((env[n].strip() for n in _PROTOCOLS if env.get(n, "").strip()), "")
        if protocol not in ("", "http/protobuf"):
            return TracingPlan(
                None,
                why,
                f"OTLP protocol {protocol!r} is not supported: exportd exports over "
                "http/protobuf (unset OTEL_EXPORTER_OTLP_PROTOCOL, or set it to http/protobuf)",
            )
    if not sdk_installed:
        return TracingPlan(
            None,
            why,
            f"{why} but OpenTelemetry is not installed: pip install 'exportd[otel]'",
        )
    return TracingPlan(exporter, why)


def headers_readable(value: str) -> bool:
    """Whether ``value``, an ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`` variable, is
    read by the SDK whole: every comma-separated pair ``name=value`` (empty: none)."""
    pairs = [pair for pair in _HEADER_SEPARATOR.split(value) if pair.strip()]
    return all(_HEADER_PAIR.fullmatch(pair.strip()) for pair in pairs)


def endpoint_usable(value: str) -> bool:
    """Whether ``value``, an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` variable, is
    one the OTLP/HTTP exporter can send to: unset (empty), or an ``http``/``https``
    URL with a host and, if any, a port in 1..65535."""
    if not value:
        return True
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError:  # an unclosed IPv6 bracket, a port out of range or not a number
        return False
    return url.scheme in ("http", "https") and bool(url.hostname) and port != 0
