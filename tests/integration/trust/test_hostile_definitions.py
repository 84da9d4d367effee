"""Definitions and databases that broke exports, end to end on both S3 servers: values
that once rewrote a statement, literals holding '$', JSON that a column name or a json
value broke, and database settings that changed the file."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd import limits
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import deployment_env, download_job, exportd, insert_job, wait_for_state

DEFINITIONS = r"""
[kinds.labels]
query = '''
SELECT id, 'label: $2' AS note FROM items WHERE owner = :owner AND length(:s) > 0 ORDER BY id
'''
[kinds.labels.params.s]
type = "string"

[kinds.commented]
query = '''
SELECT id FROM items WHERE owner = :owner AND length(:s) > 0 -- :s is bound as $2
'''
[kinds.commented.params.s]
type = "string"

[kinds.prices]
query = "SELECT 'costs US$1 each' AS a, 'over $1,000' AS b, :owner AS who"

[kinds.dupes]
query = "SELECT id, id, 1, 2 FROM items WHERE owner = :owner"

[kinds.names]
query = '''
SELECT id AS t, id + 1 AS e, id + 2 AS key, id + 3 AS value, id + 4 AS ord, note
FROM items WHERE owner = :owner ORDER BY id
'''

[kinds.names_bytea]
query = '''
SELECT id AS t, '\x00ff41'::bytea AS e, note AS key FROM items WHERE owner = :owner ORDER BY id
'''

[kinds.docs]
query = '''
SELECT id,
       E'{"a":\n 1,\r\n\t"b": [1,\n2]}'::json AS doc,
       ARRAY[E'{\n"x": "tab\\tin a string"}'::json] AS docs,
       ROW(E'{\n}'::json, 'x') AS pair,
       E'{"b":\n 2}'::jsonb AS binary_doc,
       E'line\nbreak' AS note
FROM items WHERE owner = :owner ORDER BY id
'''

[kinds.shapes]
query = '''
SELECT '\x00ff41'::bytea AS raw, date '2025-01-31' AS day,
       interval '1 day 02:03:04.5' AS span, 0.1::float8 AS f8, 1.5::float4 AS f4,
       1234.56::money AS cash, xmlelement(name x, '\x00ff'::bytea) AS doc,
       timestamptz '2025-01-31 12:00+00' AS at, E'back\\slash' AS note
WHERE :owner <> ''
'''

[kinds.settled]
query = '''
SELECT timestamptz '2025-01-31 12:00 IST' AS at, quote_ident('plain') AS ident,
       'pg_class'::regclass::text AS rel, '{a,NULL}'::text[] AS arr,
       (SELECT count(*) FROM (VALUES (NULL::int)) AS v(x) WHERE x = NULL) AS nulls
WHERE :owner <> ''
'''
"""

DATA = """
CREATE TABLE items (id int PRIMARY KEY, owner text NOT NULL, note text);
INSERT INTO items VALUES (1, 'alice', 'first'), (2, 'alice', 'second'), (3, 'bob', 'bobs');
CREATE SCHEMA app;
CREATE TABLE app.secrets (owner text, secret text);
INSERT INTO app.secrets VALUES ('bob', 'bob-secret-1'), ('carol', 'carol-secret-2');
"""
INJECTION = "|| (SELECT string_agg(secret, ',') FROM app.secrets) ||"
NEW_LINE_UNION = "x\nUNION ALL SELECT 1000 + length(secret) FROM app.secrets"


@pytest.fixture
async def items(conn: asyncpg.Connection) -> None:
    await conn.execute(DATA)


async def _run(
    endpoint: S3Endpoint, bucket: str, dsn: str, pool: asyncpg.Pool, jobs: list[dict[str, Any]]
) -> list[tuple[Any, bytes | None]]:
    settings = s3_settings(endpoint, bucket, database_url=dsn, **FAST)
    ids = [await insert_job(pool, owner="alice", **job) for job in jobs]
    outcomes: list[tuple[Any, bytes | None]] = []
    async with running_daemon(settings, DEFINITIONS) as daemon:
        for job_id in ids:
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
            body = None
            if row["state"] == "completed":
                body, _ = await download_job(daemon.api_port, job_id)
            outcomes.append((row, body))
    return outcomes


def _lines(body: bytes | None) -> list[Any]:
    assert body is not None
    return [json.loads(line) for line in body.decode().split("\n") if line]


@pytest.mark.usefixtures("items")
async def test_values_never_rewrite_a_statement(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    jobs: list[dict[str, Any]] = [
        {"kind": "labels", "params": {"s": INJECTION}, "fmt": "csv"},
        {"kind": "labels", "params": {"s": INJECTION}, "fmt": "jsonl"},
        {"kind": "commented", "params": {"s": NEW_LINE_UNION}, "fmt": "csv"},
        {"kind": "commented", "params": {"s": NEW_LINE_UNION}, "fmt": "jsonl"},
        {"kind": "prices", "fmt": "csv"},
        {"kind": "prices", "fmt": "json"},
    ]
    outcomes = await _run(s3_endpoint, s3_bucket, dsn, pool, jobs)
    for row, _ in outcomes:
        assert row["state"] == "completed", (row["kind"], row["error"])
    (_, labels_csv), (_, labels_jsonl), (_, commented_csv), (_, commented_jsonl) = outcomes[:4]
    assert labels_csv == b"id,note\n1,label: $2\n2,label: $2\n"
    assert _lines(labels_jsonl) == [{"id": 1, "note": "label: $2"}, {"id": 2, "note": "label: $2"}]
    assert commented_csv == b"id\n1\n2\n"
    assert _lines(commented_jsonl) == [{"id": 1}, {"id": 2}]
    (_, prices_csv), (_, prices_json) = outcomes[4:]
    assert prices_csv == b'a,b,who\ncosts US$1 each,"over $1,000",alice\n'
    assert prices_json is not None
    assert json.loads(prices_json) == [{"a": "costs US$1 each", "b": "over $1,000", "who": "alice"}]


@pytest.mark.usefixtures("items")
async def test_json_records_are_one_line_with_distinct_keys_whatever_the_columns(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    jobs: list[dict[str, Any]] = [
        {"kind": "dupes", "fmt": fmt} for fmt in ("csv", "jsonl", "jsonl.gz", "json", "zip")
    ]
    jobs += [
        {"kind": "names", "fmt": "jsonl"},
        {"kind": "names_bytea", "fmt": "json"},
        {"kind": "docs", "fmt": "jsonl"},
        {"kind": "docs", "fmt": "json"},
    ]
    outcomes = await _run(s3_endpoint, s3_bucket, dsn, pool, jobs)
    (csv_row, csv_body), *json_dupes = outcomes[:4]
    assert csv_row["state"] == "completed", csv_row["error"]
    assert csv_body == b"id,id,?column?,?column?\n1,1,1,2\n2,2,1,2\n"
    for row, _ in json_dupes:
        assert (row["state"], row["error_kind"]) == ("failed", "query_error"), row["format"]
        assert "kind 'dupes', dataset 'dupes'" in row["error"]
        assert "'id', '?column?'" in row["error"]
    zip_row, _ = outcomes[4]
    assert zip_row["state"] == "completed", zip_row["error"]  # its member is CSV

    (_, names), (_, names_bytea), (_, docs_jsonl), (_, docs_json) = outcomes[5:]
    assert _lines(names) == [
        {"t": 1, "e": 2, "key": 3, "value": 4, "ord": 5, "note": "first"},
        {"t": 2, "e": 3, "key": 4, "value": 5, "ord": 6, "note": "second"},
    ]
    assert names_bytea is not None
    assert json.loads(names_bytea) == [
        {"t": 1, "e": "AP9B", "key": "first"},
        {"t": 2, "e": "AP9B", "key": "second"},
    ]
    record = {
        "doc": {"a": 1, "b": [1, 2]},
        "docs": [{"x": "tab\tin a string"}],
        "pair": {"f1": {}, "f2": "x"},
        "binary_doc": {"b": 2},
        "note": "line\nbreak",
    }
    assert docs_jsonl is not None
    assert docs_jsonl.count(b"\n") == 2
    assert _lines(docs_jsonl) == [{"id": 1, **record}, {"id": 2, **record}]
    assert docs_json is not None
    assert json.loads(docs_json) == [{"id": 1, **record}, {"id": 2, **record}]


HOSTILE_SETTINGS = {
    "bytea_output": "escape",
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "sql_standard",
    "extra_float_digits": "-15",
    "TimeZone": "Pacific/Chatham",
    "standard_conforming_strings": "off",
    "lc_monetary": "C.utf8",
    "xmlbinary": "hex",
    "xmloption": "document",
    "client_encoding": "LATIN1",
}


@contextlib.asynccontextmanager
async def settings_of_database_and_role(
    pool: asyncpg.Pool, per_database: Mapping[str, str], per_role: tuple[str, str]
) -> AsyncIterator[None]:
    """``per_database`` set with ALTER DATABASE and ``per_role`` with ALTER ROLE ... IN
    DATABASE, as an operator would, seen by every new connection of ``pool``; the
    role's setting is reset afterwards (the database is the test's own)."""
    database = await pool.fetchval("SELECT current_database()")
    role = await pool.fetchval("SELECT current_user")
    for name, value in per_database.items():
        # Names from the tests' own tables; ALTER ... SET takes no parameters.
        await pool.execute(f"ALTER DATABASE {database} SET {name} = '{value}'")
    name, value = per_role
    await pool.execute(f"ALTER ROLE {role} IN DATABASE {database} SET {name} = '{value}'")
    await pool.expire_connections()
    try:
        yield
    finally:
        await pool.execute(f"ALTER ROLE {role} IN DATABASE {database} RESET ALL")


async def test_database_settings_do_not_change_the_file(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    jobs = [{"kind": "shapes", "fmt": fmt} for fmt in ("csv", "jsonl")]
    before = await _run(s3_endpoint, s3_bucket, dsn, pool, jobs)
    for row, _ in before:
        assert row["state"] == "completed", row["error"]
    csv_body = before[0][1]
    assert csv_body is not None
    assert csv_body.splitlines()[1].startswith(b"\\x00ff41,2025-01-31,P1DT2H3M4.5S,0.1,1.5,")
    assert _lines(before[1][1])[0]["raw"] == "AP9B"

    async with settings_of_database_and_role(pool, HOSTILE_SETTINGS, ("bytea_output", "escape")):
        assert await pool.fetchval("SHOW bytea_output") == "escape"
        after = await _run(s3_endpoint, s3_bucket, dsn, pool, jobs)
    for (row, body), (_, expected) in zip(after, before, strict=True):
        assert row["state"] == "completed", row["error"]
        assert body == expected, row["format"]


# Settings that change how Postgres reads a definition's own text (its literals, its
# "= NULL") or writes a value, set per database and per role.
QUERY_SETTINGS = {
    "timezone_abbreviations": "India",
    "quote_all_identifiers": "on",
    "array_nulls": "off",
    "transform_null_equals": "on",
}


async def test_settings_that_change_how_a_definition_reads_do_not_change_the_file(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    jobs = [{"kind": "settled", "fmt": fmt} for fmt in ("csv", "jsonl")]
    async with settings_of_database_and_role(pool, QUERY_SETTINGS, ("array_nulls", "off")):
        assert await pool.fetchval("SHOW quote_all_identifiers") == "on"
        after = await _run(s3_endpoint, s3_bucket, dsn, pool, jobs)
    for row, _ in after:
        assert row["state"] == "completed", row["error"]
    # IST is Israel Standard Time (+02) in the Default abbreviations; the array's
    # NULL is a null element; "x = NULL" is never true.
    csv_body = after[0][1]
    assert csv_body is not None
    assert csv_body.decode().splitlines() == [
        "at,ident,rel,arr,nulls",
        '2025-01-31 10:00:00+00,plain,pg_class,"{a,NULL}",0',
    ]
    assert _lines(after[1][1]) == [
        {
            "at": "2025-01-31T10:00:00+00:00",
            "ident": "plain",
            "rel": "pg_class",
            "arr": ["a", None],
            "nulls": 0,
        }
    ]


PAUSING = """
[kinds.pausing]
handler = "tests.support.custom_kinds:pauses"
[kinds.pausing.params.pause_ms]
type = "integer"
"""


async def test_an_idle_timeout_of_the_source_database_does_not_end_an_export(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, empty_database: str
) -> None:
    """A handler waits, its transaction idle, longer than the source database's
    idle_in_transaction_session_timeout: the export's own deadline governs, not that."""
    source = await asyncpg.connect(empty_database)
    try:
        name = await source.fetchval("SELECT current_database()")
        # A name Postgres gave; ALTER ... SET takes no parameters.
        await source.execute(
            f"ALTER DATABASE {name} SET idle_in_transaction_session_timeout = '200ms'"
        )
    finally:
        await source.close()
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, source_database_url=empty_database, **FAST
    )
    job_id = await insert_job(pool, owner="alice", kind="pausing", params={"pause_ms": 1000})
    async with running_daemon(settings, PAUSING) as daemon:
        row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
        assert row["state"] == "completed", row["error"]
        body, _ = await download_job(daemon.api_port, job_id)
    assert body is not None
    assert body.splitlines() == [b"n", b"1", b"2"]


CASTING = """
[kinds.casting]
query = "SELECT :s::int AS n WHERE :owner <> ''"
[kinds.casting.params.s]
type = "string"
"""


async def test_an_error_quoting_a_caller_string_is_bounded_where_stored_and_logged(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    """Postgres quotes the value it could not read, whole: 60,000 characters of it."""
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    job_id = await insert_job(pool, owner="alice", kind="casting", params={"s": "x" * 60000})
    with capture_logs() as logs:
        async with running_daemon(settings, CASTING):
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
    assert (row["state"], row["error_kind"]) == ("failed", "query_error")
    error = row["error"]
    assert error.startswith("kind 'casting': the query failed with InvalidTextRepresentation")
    assert len(error) == limits.ERROR_MAX_CHARS
    # Cut in the middle: what to do is said at the end.
    assert error.count("…") == 1
    assert error.endswith('"; fix the definition and enqueue again')
    failed = [e for e in logs if e["event"] == "job_failed"]
    assert [e["error"] for e in failed] == [row["error"]]
    assert all(len(str(e)) < 2 * limits.ERROR_MAX_CHARS for e in logs), "a log line quoted it all"


CHECKED = r"""
[kinds.labels]
query = "SELECT 'label: $2' AS note WHERE :owner <> '' AND length(:s) > 0 -- :s is bound as $2"
[kinds.labels.params.s]
type = "string"

[kinds.prices]
query = "SELECT 'costs US$1 each' AS a, 'over $1,000' AS b, :owner AS who"

[kinds.showing]
query = "SHOW TimeZone"

[kinds.twice]
query = "SELECT 1 AS a, 2 AS a WHERE :owner <> ''"

[kinds.bundle.datasets.fine]
query = "SELECT 1 AS a, 2 AS a WHERE :owner <> ''"
[kinds.bundle.datasets.twice]
format = "jsonl"
query = "SELECT 1 AS a, 2 AS a WHERE :owner <> ''"
"""


async def test_check_runs_the_statements_the_daemon_sends(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = deployment_env(tmp_path, dsn, rclone_server, bucket, CHECKED)
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    # The harmless '$' literals and comments pass, bound with hostile text.
    assert "ok    kind labels: query prepares" in lines, lines
    assert "ok    kind prices: query prepares" in lines, lines
    # SHOW prepares alone, but not inside COPY (...): the check parses what is sent.
    assert any(
        line.startswith("FAIL  kind showing:") and "syntax error" in line for line in lines
    ), lines
    # Repeated names: refused wherever the rows may be written as JSON, named.
    assert any(
        line.startswith("FAIL  kind twice:") and "kind 'twice', dataset 'twice'" in line
        for line in lines
    ), lines
    assert "ok    kind bundle, dataset fine: query prepares" in lines, lines
    assert any(
        line.startswith("FAIL  kind bundle, dataset twice:") and "'a'" in line for line in lines
    ), lines
