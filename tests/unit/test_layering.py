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
    return imported_top_levels_of(ast.parse((PACKAGE / f"{module}.py").read_text()))


def imported_top_levels_of(tree: ast.Module) -> set[str]:
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


# --- the tests mirror the package ---------------------------------------------------

TESTS = Path(__file__).resolve().parents[1]
LEVELS = ("unit", "integration", "system")
# Folders for tests that span packages, named for their concern.
CONCERNS = {"deploy", "end_to_end", "faults", "packaging", "trust"}
# Fixtures of real servers (conftest.py, tests/support/fixtures_*.py).
SERVER_FIXTURES = {
    "admin_url",
    "api",
    "api_ctx",
    "conn",
    "dsn",
    "empty_database",
    "moto_server",
    "pool",
    "rclone_server",
    "s3_bucket",
    "s3_client",
    "s3_endpoint",
    "template_database",
}


def folders(level: str) -> list[Path]:
    return sorted(p for p in (TESTS / level).rglob("*") if p.is_dir() and p.name != "__pycache__")


@pytest.mark.parametrize("level", LEVELS)
def test_each_test_folder_is_a_package_of_exportd_or_a_concern(level: str) -> None:
    for folder in folders(level):
        relative = folder.relative_to(TESTS / level)
        assert (folder / "__init__.py").is_file(), f"{folder} has no __init__.py"
        if relative.parts[0] in CONCERNS:
            continue
        assert (PACKAGE / relative / "__init__.py").is_file(), (
            f"tests/{level}/{relative} names no package of exportd (nor a concern)"
        )


def test_no_package_is_named_like_a_concern() -> None:
    assert not {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} & CONCERNS


def test_test_modules_live_in_a_level() -> None:
    stray = sorted(
        str(p.relative_to(TESTS))
        for p in TESTS.rglob("test_*.py")
        if p.relative_to(TESTS).parts[0] not in LEVELS
    )
    assert stray == [], "place each in tests/unit, tests/integration or tests/system"


def test_unit_tests_use_no_server_and_start_no_process() -> None:
    for path in sorted((TESTS / "unit").rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        imported = imported_top_levels_of(tree)
        assert "subprocess" not in imported, f"{path.name} starts processes: tests/system"
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                is_fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
                if node.name.startswith("test_") or is_fixture:
                    servers = {a.arg for a in node.args.args} & SERVER_FIXTURES
                    assert not servers, f"{path.name}::{node.name} uses {servers}"
