"""The deployment files in deploy/: true to the daemon's settings and behaviour."""

from __future__ import annotations

import configparser
import json
import os
import re
from datetime import timedelta
from typing import Any

import pytest
import yaml

from exportd.settings.model import Settings
from tests.support.env_example import render
from tests.support.helpers import ROOT

DEPLOY = ROOT / "deploy"
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]


# --- the example environment file ---------------------------------------------


def test_env_example_lists_every_setting_as_rendered_from_settings() -> None:
    text = (DEPLOY / "exportd.env.example").read_text()
    assert text == render(), (
        "regenerate: python -m tests.support.env_example > deploy/exportd.env.example"
    )
    named = set(re.findall(r"^#?(EXPORTD_[A-Z0-9_]+)=", text, re.MULTILINE))
    assert named == {f"EXPORTD_{n.upper()}" for n in Settings.model_fields}


def test_env_example_loads_as_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EXPORTD_"):
            monkeypatch.delenv(name)
    loaded = Settings(_env_file=DEPLOY / "exportd.env.example")  # type: ignore[call-arg]
    assert loaded == DEFAULTS


# --- systemd ------------------------------------------------------------------------


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / "exportd.service").read_text())
    return parser


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|min)?", value)
    assert match, value
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_unit_notifies_outlasts_the_grace_period_and_is_hardened() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert seconds(service["WatchdogSec"]) > 0
    assert seconds(service["TimeoutStopSec"]) > DEFAULTS.shutdown_grace_seconds
    assert seconds(service["TimeoutStartSec"]) > DEFAULTS.startup_wait_seconds
    assert service["User"] not in ("", "root")
    for directive, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }.items():
        assert service[directive] == value, directive
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["ExecStart"].endswith("exportd run")


# --- the container image ------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "container" / "Containerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_container_is_multi_stage_non_root_with_a_healthcheck_and_init() -> None:
    steps = instructions()
    stages = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    final = steps[stages[-1] :]
    keywords = [k for k, _ in final]
    user = next(rest for k, rest in final if k == "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in keywords
    entrypoint = json.loads(next(rest for k, rest in final if k == "ENTRYPOINT"))
    assert entrypoint[0].endswith("tini"), "an init forwards SIGTERM as PID 1"
    assert "exportd" in entrypoint
    # Only the built environment comes in; no compilers, no sources.
    copies = [rest for k, rest in final if k == "COPY"]
    assert copies
    assert all(c.startswith("--from=") for c in copies)
    runs = " ".join(rest for k, rest in final if k == "RUN")
    for tool in ("gcc", "build-essential", "make "):
        assert tool not in runs


def test_the_image_writes_parquet_too() -> None:
    """The build stage installs exportd with its parquet extra (pyarrow)."""
    steps = instructions()
    build = steps[: [i for i, (k, _) in enumerate(steps) if k == "FROM"][-1]]
    runs = " ".join(rest for k, rest in build if k == "RUN")
    assert "pip install '.[parquet]'" in runs


# --- Kubernetes ---------------------------------------------------------------------


def manifests() -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[f"{doc['kind']}/{doc.get('metadata', {}).get('name', '')}"] = doc
    return docs


def test_kubernetes_deployment_probes_grace_migrations_and_settings() -> None:
    docs = manifests()
    deployment = docs["Deployment/exportd"]
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "exportd")
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    config = docs["ConfigMap/exportd-config"]["data"]
    grace = float(config.get("EXPORTD_SHUTDOWN_GRACE_SECONDS", DEFAULTS.shutdown_grace_seconds))
    assert pod["terminationGracePeriodSeconds"] > grace

    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    assert refs == {"configMapRef": "exportd-config", "secretRef": "exportd-secrets"}
    assert "Secret/exportd-secrets" in docs

    migrate = pod["initContainers"][0]
    assert migrate["args"] == ["migrate"]
    assert migrate["envFrom"] == container["envFrom"]
    assert pod["securityContext"]["runAsNonRoot"] is True

    pdb = docs["PodDisruptionBudget/exportd"]
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]

    # Every setting named in the ConfigMap and Secret is one the daemon knows.
    known = {f"EXPORTD_{n.upper()}" for n in Settings.model_fields}
    named = set(config) | set(docs["Secret/exportd-secrets"]["stringData"])
    assert named <= known, named - known
    # And the values parse.
    values = {k[len("EXPORTD_") :].lower(): v for k, v in config.items()}
    Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3600", 3600.0), ("1.5", 1.5), ("PT1H", 3600.0), ("P7D", 7 * 86400.0), ("01:00:00", 3600.0)],
)
def test_durations_take_seconds_or_iso_8601(value: str, seconds: float) -> None:
    # A string, as it comes from the environment.
    loaded = Settings(_env_file=None, orphan_upload_age=value)  # type: ignore[call-arg,arg-type]
    assert loaded.orphan_upload_age.total_seconds() == seconds


def test_history_must_outlast_retention() -> None:
    with pytest.raises(ValueError, match="history_retention must be longer than retention"):
        Settings(_env_file=None, retention=timedelta(days=30))  # type: ignore[call-arg]
