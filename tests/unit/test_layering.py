"""Import rules: decisions stay pure, and the worker loop knows no driver.

The pure modules decide (backoff, leases, part sizes, parameter rules); the
worker loop schedules; only the edges (the queue, the export engine, S3, the API) talk
to Postgres, S3 or HTTP. A stray import would quietly tie a decision to I/O.
And no module passes 400 lines: past that, one holds two concepts.
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
    "queue/cron",
    "s3/parts",
    "errors",
    "queue/job",
    "definitions/params/spec",
    "definitions/params/values",
    "definitions/params/validation",
    "definitions/params/declarations",
    "definitions/params/schema",
    "definitions/placeholders",
    "definitions/literals",
    "definitions/kinds",
    "definitions/loader",
    "definitions/kind_options",
    "definitions/options/model",
    "definitions/options/document",
    "definitions/options/resolve",
    "definitions/options/schema",
    "worker/breaker",
    "export/keys",
    "export/layout",
    "export/split",
    "export/zip_records",
    "limits",
    "redaction",
    # What a handler's author imports: types only, no driver of its own.
    "handlers",
    "quotas",
    "definitions/webhook_url",
    "webhooks/signing",
    "webhooks/payload",
    "webhooks/policy",
    "webhooks/targets",
    # The dashboard's decisions: who a token is, a session, a login's bound,
    # numbers and the chart as shown, the jobs page's filters.
    "ui/tokens",
    "ui/sessions",
    "ui/throttle",
    "ui/present",
    "ui/charts",
    "ui/filters",
    "tracing/context",
    "tracing/config",
]
NO_DRIVER = [
    "worker/loop",
    "worker/lease_keeper",
    "worker/outcomes",
    "worker/running",
    "worker/quota_gate",
    "queue/interface",
    "export/interface",
    # The tracing seam, called from the worker, the export and the API.
    "tracing/seam",
    "tracing/jobs",
    "tracing/logs",
    *PURE,
]


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


def imported_modules(package: str) -> dict[str, set[str]]:
    """Each module of ``exportd/<package>`` (by path) and the exportd modules it
    imports, ``from exportd import x`` read as ``exportd.x``."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("exportd.")}
    return found


# (package, the exportd packages it never imports): the flow of one job goes
# API -> queue -> worker -> export -> S3, and definitions are what everything
# reads, reading nothing back.
FORBIDDEN = [
    # The API reads which formats a kind offers from its definition, never the engine.
    ("api", {"export", "worker", "maintenance", "cli", "daemon"}),
    # The queue is the table's front door: it knows jobs as rows, not how they run.
    (
        "queue",
        {"worker", "export", "s3", "api", "cli", "daemon", "maintenance", "definitions"},
    ),
    # The worker knows the queue and the export by their Protocols only.
    ("worker", {"export", "s3", "api", "cli", "daemon", "maintenance", "definitions"}),
    ("maintenance", {"worker", "api", "cli", "daemon"}),
    ("export", {"worker", "api", "cli", "daemon", "maintenance"}),
    (
        "definitions",
        {"queue", "worker", "export", "s3", "api", "cli", "daemon", "maintenance"},
    ),
    # S3 is the bottom of a job's path: it stores what the export engine hands it
    # and knows nothing of jobs, so any store can be driven without the queue.
    ("s3", {"queue", "worker", "export", "api", "cli", "daemon", "maintenance"}),
    # Webhooks send what the outbox holds: of the queue the outbox's records and the
    # backoff (REACH below), of the definitions a kind's webhook_url; they never
    # run a job or touch its object. The event's data is the job as the API shows
    # it: the daemon hands the deliverer api.views' document function.
    ("webhooks", {"worker", "export", "s3", "api", "cli", "daemon", "maintenance"}),
    # The dashboard reads what the API reads, through the same queue interface
    # and the API's own actions: never a job's run, its object or its SQL.
    ("ui", {"worker", "export", "s3", "cli", "daemon", "maintenance"}),
    # Tracing is called from a job's path (worker, S3, API) and calls none of it back:
    # of the queue it reads only the claimed job (REACH below).
    (
        "tracing",
        {"worker", "export", "s3", "api", "cli", "daemon", "maintenance", "definitions"},
    ),
]
# Nothing on a job's path depends on its webhooks: they only read what happened.
FORBIDDEN = [
    (package, forbidden | {"webhooks"}) if package != "webhooks" else (package, forbidden)
    for package, forbidden in FORBIDDEN
]

# The exceptions, each with its reason. The object key's layout is one rule in
# one module (export.keys): the API reads a download's file name back from a
# key with it rather than restating the layout.
# The worker hands a job to the export engine through its Protocol
# (export.interface), never the engine itself.
# The dashboard, served by the daemon it describes, shows its storage breaker:
# the API reads the breaker's state (worker.breaker, a pure module), never
# changes it.
ALLOWED = {
    ("api", "exportd.export.keys"),
    ("worker", "exportd.export.interface"),
    ("api", "exportd.worker.breaker"),
}


@pytest.mark.parametrize(("package", "forbidden"), FORBIDDEN, ids=[p for p, _ in FORBIDDEN])
def test_package_never_imports(package: str, forbidden: set[str]) -> None:
    offending = {
        module: sorted(
            n
            for n in names
            if n.split(".")[1] in forbidden
            and not any((package, a) in ALLOWED for a in (n, n.rsplit(".", 1)[0]))
        )
        for module, names in imported_modules(package).items()
    }
    assert {m: names for m, names in offending.items() if names} == {}


MAX_MODULE_LINES = 400
MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


def test_every_module_is_found() -> None:
    # A wrong PACKAGE path would make the size check below pass on nothing.
    assert "settings/model.py" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_has_at_most_400_lines(module: str) -> None:
    # One concept per module: past this size a module holds two, and reads as neither.
    lines = len((PACKAGE / module).read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"exportd/{module} has {lines} lines"


# Modules outside exportd/queue that may read the named queries, and why.
QUEUE_SQL_READERS = {
    # The COPY statements it wraps around a kind's query run on the SOURCE
    # database: export SQL, kept in the same file of named queries.
    "export/sources",
    # The templates a job's options compose (projection, CSV dialect), likewise.
    "export/sql_text",
    # The cell templates of an xlsx sheet's rows, composed into that same COPY.
    "export/xlsx/expressions",
    # A job's time zone, checked in its export's session on the SOURCE database.
    "export/zones",
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


# Of the queue, the worker knows the Protocol and the pure rules, never the driver.
WORKER_QUEUE_MODULES = {
    "exportd.queue.interface",
    "exportd.queue.job",
    "exportd.queue.backoff",
    "exportd.queue.lease",
}


def reached(names: set[str], package: str) -> set[str]:
    """The modules of ``package`` (``exportd.queue``) among ``names``; the
    package itself (``from exportd import queue``) counts as one."""
    return {".".join(n.split(".")[:3]) for n in names if n.split(".")[:2] == package.split(".")}


def test_reached_counts_the_package_itself() -> None:
    assert reached({"exportd.queue", "exportd.queue.job.Job", "exportd.s3"}, "exportd.queue") == {
        "exportd.queue",
        "exportd.queue.job",
    }


def test_the_worker_knows_the_queue_by_its_protocol_and_pure_rules() -> None:
    used = {
        module: reached(names, "exportd.queue")
        for module, names in imported_modules("worker").items()
    }
    assert {
        m: sorted(u - WORKER_QUEUE_MODULES) for m, u in used.items() if u - WORKER_QUEUE_MODULES
    } == {}


# Of the queue, the export engine reads the job's records, the lease arithmetic
# and its own COPY statements; maintenance reads of the export package only the
# key layout.
REACH = [
    ("export", "exportd.queue", {"exportd.queue.job", "exportd.queue.lease", "exportd.queue.sql"}),
    ("maintenance", "exportd.export", {"exportd.export.keys"}),
    ("webhooks", "exportd.queue", {"exportd.queue.outbox", "exportd.queue.backoff"}),
    ("tracing", "exportd.queue", {"exportd.queue.job"}),
]


@pytest.mark.parametrize(("package", "prefix", "allowed"), REACH, ids=[p for p, _, _ in REACH])
def test_what_a_package_reaches_of_another(package: str, prefix: str, allowed: set[str]) -> None:
    strays = {
        module: sorted(reached(names, prefix) - allowed)
        for module, names in imported_modules(package).items()
    }
    assert {m: s for m, s in strays.items() if s} == {}
