"""The client held to the daemon it speaks to: its models to a running daemon's
OpenAPI document, its checks to the daemon's bounds and the table's, and its
imports to what the distribution promises (no exportd, no database driver)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import types
import typing
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from client_support import Exportd
from exportd_client import Job, Kind, Run
from exportd_client import _validation as checks
from exportd_client._sql import render, statements

from exportd import limits
from exportd.queue import enqueue as daemon_enqueue
from tests.support.daemon_harness import TOKEN

_SCALARS: dict[str, type] = {
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}


def _schema_types(schema: dict[str, Any]) -> set[Any]:
    """The Python types a JSON Schema (as the daemon writes them) allows."""
    if "$ref" in schema:
        return {dict}
    named = schema["type"]
    found: set[Any] = set()
    for name in [named] if isinstance(named, str) else named:
        if name == "string":
            fmt = schema.get("format")
            found.add(datetime if fmt == "date-time" else uuid.UUID if fmt == "uuid" else str)
        else:
            found.add(_SCALARS[name])
    return found


def _model_types(hint: Any) -> set[Any]:
    args = typing.get_args(hint) if typing.get_origin(hint) is types.UnionType else (hint,)
    return {typing.get_origin(arg) or arg for arg in args}


def _held_to(model: type[Any], schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Every property of ``schema`` is a field of ``model`` and the other way
    round, with the same types; what the schema requires is required, the rest
    defaults to None; lists of a component are lists of its model."""
    hints = typing.get_type_hints(model)
    fields = {f.name: f for f in dataclasses.fields(model)}
    properties = schema["properties"]
    assert set(fields) == set(properties), (model.__name__, set(fields) ^ set(properties))
    for name, prop in properties.items():
        wanted = _schema_types(prop)
        if name not in schema.get("required", []):
            wanted.add(type(None))
            assert fields[name].default is None, (model.__name__, name)
        else:
            assert fields[name].default is dataclasses.MISSING, (model.__name__, name)
        assert _model_types(hints[name]) == wanted, (model.__name__, name, hints[name], wanted)
        ref = prop.get("items", {}).get("$ref", "")
        if ref.endswith(("/Run", "/Job")):
            (item,) = typing.get_args(typing.get_args(hints[name])[0])
            target = components[ref.rsplit("/", 1)[1]]
            assert item.__name__ == ref.rsplit("/", 1)[1]
            _held_to(item, target, components)


def test_the_models_are_the_running_daemons_schemas(exportd: Exportd) -> None:
    answer = httpx.get(
        f"{exportd.url}/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200
    document = answer.json()
    components = document["components"]["schemas"]
    _held_to(Job, components["Job"], components)
    _held_to(Run, components["Run"], components)
    kinds = document["paths"]["/v1/kinds"]["get"]["responses"]["200"]["content"]
    kind = kinds["application/json"]["schema"]["properties"]["kinds"]["items"]
    _held_to(Kind, kind, components)


def test_the_bounds_are_the_daemons() -> None:
    assert (checks.OWNER_MAX_BYTES, checks.KIND_MAX_BYTES, checks.DEDUPE_KEY_MAX_BYTES) == (
        limits.OWNER_MAX_BYTES,
        limits.KIND_MAX_BYTES,
        limits.DEDUPE_KEY_MAX_BYTES,
    )
    assert (checks.PARAMS_MAX_BYTES, checks.OPTIONS_MAX_BYTES, checks.JSON_MAX_DEPTH) == (
        limits.PARAMS_MAX_BYTES,
        limits.OPTIONS_MAX_BYTES,
        limits.JSON_MAX_DEPTH,
    )
    assert checks.PRIORITY_RANGE == daemon_enqueue.PRIORITY_RANGE
    assert checks.MAX_ATTEMPTS_RANGE == daemon_enqueue.MAX_ATTEMPTS_RANGE
    assert datetime.fromisoformat(limits.TIMESTAMP_MIN_ISO) == checks.RUN_AFTER_MIN
    assert datetime.fromisoformat(limits.TIMESTAMP_MAX_ISO) == checks.RUN_AFTER_MAX
    samples = ["", "a", "a\x00b", "tab\there", "\ud800", "é" * 128, "é" * 129, "x" * 300]
    for text in samples:
        for bound in (128, 256):
            assert checks.identifier_problem(text, bound) == limits.identifier_problem(
                text, bound
            ), (text, bound)


def _nested(levels: int) -> dict[str, Any]:
    """An object whose deepest value lies ``levels`` levels deep."""
    inner: Any = 1
    for _ in range(levels - 1):
        inner = [inner]
    return {"a": inner}


@pytest.mark.parametrize(
    "params",
    [
        _nested(31),
        _nested(32),
        {"a": "x" * (limits.PARAMS_MAX_BYTES - 9)},
        {"a": "x" * (limits.PARAMS_MAX_BYTES - 8)},
        {"é": "é" * 32000},
    ],
    ids=["depth-31", "depth-32", "bytes-at-bound", "bytes-over", "multibyte"],
)
async def test_the_client_refuses_params_exactly_when_the_table_does(
    conn: asyncpg.Connection, params: dict[str, Any]
) -> None:
    client_refuses = bool(checks.document_problems("params", params, checks.PARAMS_MAX_BYTES))
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO exportd.jobs (owner, kind, params) VALUES ('o', 'k', $1::text::jsonb)",
                json.dumps(params, ensure_ascii=False),
            )
    except asyncpg.CheckViolationError:
        table_refuses = True
    else:
        table_refuses = False
    assert client_refuses == table_refuses


async def test_the_formats_are_the_tables(conn: asyncpg.Connection) -> None:
    definition = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'jobs_format_known'"
    )
    assert set(re.findall(r"'([^']+)'", definition)) == set(checks.FORMATS)


def test_the_statements_bind_every_value_in_each_drivers_style() -> None:
    for name in statements():
        numbered, order = render(name, "asyncpg")
        named, names = render(name, "psycopg")
        assert order == names
        assert ":" not in re.sub(r"\$\d+", "", numbered), name
        assert all(f"%({key})s" in named for key in names)
        assert numbered.count("$1") >= 1
    assert render("enqueue", "asyncpg")[1][:3] == ("owner", "kind", "params")
    assert "trace_context" not in render("enqueue", "sqlalchemy")[0]
    assert ":trace_context" in render("enqueue_traced", "sqlalchemy")[0]


def test_importing_the_client_imports_no_daemon_and_no_driver() -> None:
    probe = (
        "import sys, exportd_client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'exportd', 'asyncpg', 'psycopg', 'sqlalchemy', 'aiobotocore', 'opentelemetry'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
