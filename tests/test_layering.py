"""Import rules: decisions stay pure, and the worker loop knows no driver.

The pure modules decide (backoff, leases, part sizes, parameter rules); the
worker loop schedules; only the edges (store, exporter, storage, API) talk
to Postgres, S3 or HTTP. A stray import would quietly tie a decision to I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exportd"
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


# Modules outside exportd/queue that may read the named queries, and why.
QUEUE_SQL_READERS = {
    # The COPY statements it wraps around a kind's query run on the SOURCE
    # database: export SQL, kept in the same file of named queries.
    "export/sources",
}


def _imports_queue_sql(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(alias.name == "exportd.queue.sql" for alias in node.names):
                return True
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == "exportd.queue.sql":
                return True
            if node.module == "exportd.queue" and any(a.name == "sql" for a in node.names):
                return True
    return False


def test_only_the_queue_runs_queue_sql() -> None:
    # One front door: the API, the CLI, maintenance and the worker go through
    # PgJobStore; no other package runs the queue's statements itself.
    readers = {
        path.relative_to(PACKAGE).with_suffix("").as_posix()
        for path in PACKAGE.rglob("*.py")
        if "queue" not in path.relative_to(PACKAGE).parts[:1] and _imports_queue_sql(path)
    }
    assert readers == QUEUE_SQL_READERS
