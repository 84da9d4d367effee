"""Whether the OTEL_* variables turn tracing on (exportd.tracing.config)."""

from __future__ import annotations

import pytest

from exportd.tracing.config import plan


@pytest.mark.parametrize(
    ("env", "exporter"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": " Console "}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, "otlp"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "otlp",
        ),
    ],
)
def test_tracing_on(env: dict[str, str], exporter: str) -> None:
    wanted = plan(env, sdk_installed=True)
    assert wanted.on
    assert wanted.exporter == exporter
    assert wanted.problem is None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_SERVICE_NAME": "exportd-eu"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_tracing_off_without_a_problem(env: dict[str, str]) -> None:
    wanted = plan(env, sdk_installed=True)
    assert not wanted.on
    assert wanted.problem is None


@pytest.mark.parametrize(
    ("env", "installed", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, True, "must be one of otlp, console or none"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True, "must be one of"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            True,
            "'grpc' is not supported",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            True,
            "http/protobuf",
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False, "pip install 'exportd[otel]'"),
    ],
)
def test_a_request_that_cannot_be_honoured_is_a_problem(
    env: dict[str, str], installed: bool, says: str
) -> None:
    wanted = plan(env, sdk_installed=installed)
    assert not wanted.on
    assert wanted.problem is not None
    assert says in wanted.problem


TOKEN = "s3cr3t-collector-token"


@pytest.mark.parametrize(
    "headers",
    [
        f"authorization=Bearer%20{TOKEN}, x-tenant=eu",
        f"authorization=Bearer {TOKEN}",  # the SDK reads unencoded spaces too
        "",
    ],
)
def test_collector_headers_the_sdk_reads_are_fine(headers: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": headers}
    assert plan(env, sdk_installed=True).on


@pytest.mark.parametrize(
    "name", ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"]
)
@pytest.mark.parametrize(
    "headers", [f"authorization:Bearer {TOKEN}", f"authorization=Bearer\t{TOKEN}", f"{TOKEN}"]
)
def test_collector_headers_the_sdk_cannot_read_are_a_problem_never_shown(
    name: str, headers: str
) -> None:
    # The SDK would log the malformed pair whole, token and all, and send no header.
    wanted = plan({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", name: headers}, True)
    assert not wanted.on
    assert wanted.problem is not None
    assert name in wanted.problem
    assert TOKEN not in wanted.problem


@pytest.mark.parametrize(
    "name", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
@pytest.mark.parametrize(
    "endpoint",
    [
        f"http://user:{TOKEN}@127.0.0.1:99999",  # a port out of range
        f"user:{TOKEN}@collector:4318",  # no scheme
        f"grpc://user:{TOKEN}@collector:4317",
        f"http://user:{TOKEN}@[::1",
        "http://:4318",  # no host
    ],
)
def test_an_endpoint_the_exporter_cannot_reach_is_a_problem_never_shown(
    name: str, endpoint: str
) -> None:
    # The SDK would log it whole, credentials and all, at every failed export.
    wanted = plan({"OTEL_TRACES_EXPORTER": "otlp", name: endpoint}, sdk_installed=True)
    assert not wanted.on
    assert wanted.problem is not None
    assert name in wanted.problem
    assert TOKEN not in wanted.problem


def test_an_endpoint_with_credentials_path_or_ipv6_host_is_fine() -> None:
    for endpoint in (f"https://user:{TOKEN}@collector:4318/otlp", "http://[::1]:4318", "http://c"):
        assert plan({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, sdk_installed=True).on
