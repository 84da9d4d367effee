"""Import rules: decisions stay pure, and the worker loop knows no driver.

The pure modules decide (backoff, leases, part sizes, parameter rules); the
worker loop schedules; only the edges (store, exporter, storage, API) talk
to Postgres, S3 or HTTP. A stray import would quietly tie a decision to I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exportd"
IO_LIBRARIES = {"asyncpg", "aiobotocore", "botocore", "aiohttp"}

PURE = [
    "queue/backoff",
    "queue/lease",
    "s3/parts",
    "errors",
    "queue/job",
    "definitions/params",
    "definitions/declarations",
    "definitions/schema",
    "definitions/placeholders",
    "definitions/literals",
    "definitions/kinds",
    "worker/breaker",
    "export/keys",
    "limits",
]
NO_DRIVER = ["worker/loop", "queue/interface", *PURE]


def imported_top_levels(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", NO_DRIVER)
def test_module_imports_no_io_library(module: str) -> None:
    assert imported_top_levels(module) & IO_LIBRARIES == set()


def test_worker_reaches_the_queue_only_through_its_protocol() -> None:
    tree = ast.parse((PACKAGE / "worker" / "loop.py").read_text())
    modules = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "exportd.queue.interface" in modules
    assert not modules & {
        "exportd.queue.postgres",
        "exportd.export.engine",
        "exportd.database",
        "exportd.s3.client",
        "exportd.api.app",
    }
