"""parquet end to end on both S3 servers: each file downloaded through the API, read
back with pyarrow and with DuckDB, and compared value by value, type by type, with the
same query run directly. The awkward table is the xlsx tests' (test_xlsx.AWKWARD)."""

from __future__ import annotations

import dataclasses
import io
import math
import uuid
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exportd import database
from exportd.definitions import offered_formats
from exportd.definitions.loader import definitions_from_text
from exportd.definitions.options.model import JobOptions
from tests.integration.end_to_end.test_xlsx import AWKWARD, ZONE
from tests.support.daemon_harness import FAST, TOKEN, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import api_get, download_job, insert_job, wait_for_state

MORE = r"""
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE more (
    id integer, owner text, u uuid, m mood, nums int8[], ratios float8[], local timestamp,
    span interval, price numeric(10, 2), code char(4), p positive, small int2, real4 float4,
    j json, far timestamptz, addr inet
);
INSERT INTO more VALUES
  (1, 'alice', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
   ARRAY[1, NULL, -9223372036854775808],
   ARRAY[1.5, 'NaN', '-Infinity']::float8[], '2024-02-29 23:59:59.999999', '1 year 2 mons 3 days',
   12345678.91, 'ab', 7, -32768, 3.25, '{"a":  [1, 2]}', '1900-01-01 00:00:00+00', '10.0.0.1/8'),
  (2, 'alice', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 'alice', '00000000-0000-0000-0000-000000000000', 'sad', '{}', '{}', '0001-01-01 00:00:00',
   '-00:00:00.000001', -0.01, '', 1, 32767, 'Infinity', 'null',
   '9999-12-30 23:59:59.999999+00', '::1');
CREATE TABLE far (owner text, at timestamptz);
INSERT INTO far VALUES ('alice', '294250-01-01 00:00:00+00');
CREATE TABLE edges (n integer, at timestamptz, local timestamp, day date);
INSERT INTO edges VALUES
  (1, '4713-01-01 00:00:00+00 BC', '4713-01-01 00:00:00 BC', '4713-01-01 BC'),
  (2, '294246-12-31 23:59:59.999999+00', '294246-12-31 23:59:59.999999', '5874897-12-31'),
  (3, '0001-01-01 00:00:00+00 BC', '1969-12-31 23:59:59.999999', '1969-12-31');
"""
QUERY = "SELECT * FROM fidelity WHERE owner = {owner} AND id <> 5 ORDER BY id"
MORE_QUERY = "SELECT * FROM more WHERE owner = {owner} ORDER BY id"
DEFINITIONS = f"""
[kinds.things]
query = "{QUERY.format(owner=":owner")}"

[kinds.more]
query = "{MORE_QUERY.format(owner=":owner")}"
parquet_compression = "snappy"

[kinds.nothing]
query = "SELECT id, note, at, amount FROM fidelity WHERE owner = :owner AND false"

[kinds.infinite]
query = "SELECT id, at FROM fidelity WHERE owner = :owner ORDER BY id"

[kinds.far]
query = "SELECT at FROM far WHERE owner = :owner"

[kinds.bare]
query = "SELECT FROM generate_series(1, 3) WHERE :owner <> ''"

[kinds.twice]
query = "SELECT 1 AS n, 2 AS n WHERE :owner <> ''"

[kinds.edges]
query = "SELECT * FROM edges WHERE :owner <> '' ORDER BY n"

[kinds.chosen]
query = "SELECT id, note, big FROM fidelity WHERE owner = :owner AND id <> 5 ORDER BY id"
[kinds.chosen.labels]
note = "The note"

[kinds.groups]
query = "SELECT g AS n FROM generate_series(1, 7) AS g WHERE :owner <> ''"

[kinds.bundle.datasets.things]
query = "{QUERY.format(owner=":owner")}"
format = "parquet"
[kinds.bundle.datasets.more]
query = "{MORE_QUERY.format(owner=":owner")}"
"""


def definitions() -> Any:
    loaded = definitions_from_text(DEFINITIONS)
    kinds = dict(loaded)
    kinds["chosen"] = dataclasses.replace(
        kinds["chosen"], options=JobOptions(columns=("note", "id"))
    )
    kinds["groups"] = dataclasses.replace(kinds["groups"], options=JobOptions(split_rows=3))
    # A zip's parquet member stays one file in row groups; its csv member is split.
    kinds["bundle"] = dataclasses.replace(kinds["bundle"], options=JobOptions(split_rows=2))
    return type(loaded)(kinds.values())


@pytest.fixture
async def tables(conn: asyncpg.Connection) -> None:
    await conn.execute(AWKWARD)
    await conn.execute(MORE)
    # Settings that change how values are written: the export pins them all, so the
    # files must not change (the daemon's connections are made after this).
    name = await conn.fetchval("SELECT quote_ident(current_database())")
    for setting in (
        "extra_float_digits = -15",
        "DateStyle = 'SQL, DMY'",
        "bytea_output = 'escape'",
        "TimeZone = 'Asia/Kathmandu'",
        "IntervalStyle = 'sql_standard'",
    ):
        await conn.execute(f"ALTER DATABASE {name} SET {setting}")


async def direct(dsn: str, query: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``query``: their values, and each value's Postgres text (as the
    export's session settings write it)."""
    conn = await database.connect(dsn)
    try:
        await conn.execute(
            f"SET TimeZone = '{ZONE}'; SET extra_float_digits = 1; SET IntervalStyle = 'iso_8601'"
        )
        rows = [dict(r) for r in await conn.fetch(query)]
        names = [a.name for a in (await conn.prepare(query)).get_attributes()]
        # format's %s is the type's output function, as COPY writes (a cast may differ:
        # inet's adds the netmask, char(n)'s drops the padding).
        as_text = ", ".join(
            f'CASE WHEN t."{n}" IS NOT NULL THEN format(\'%s\', t."{n}") END AS "{n}"'
            for n in names
        )
        texts = [dict(r) for r in await conn.fetch(f"SELECT {as_text} FROM ({query}) AS t")]
    finally:
        await conn.close()
    return rows, texts


# What each Postgres type must be in the file: Arrow's type, DuckDB's.
ARROW_TYPES = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "numeric": pa.string(),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz=ZONE),
    "timestamp": pa.timestamp("us"),
    "bytea": pa.binary(),
    "jsonb": pa.json_(pa.string()),
    "json": pa.json_(pa.string()),
    "uuid": pa.uuid(),
    "_text": pa.list_(pa.string()),
    "_int8": pa.list_(pa.int64()),
    "_float8": pa.list_(pa.float64()),
    "mood": pa.dictionary(pa.int32(), pa.string()),
    "interval": pa.string(),
    "bpchar": pa.string(),
    "positive": pa.int32(),
    "inet": pa.string(),
}
DUCKDB_TYPES = {
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "FLOAT",
    "float8": "DOUBLE",
    "bool": "BOOLEAN",
    "text": "VARCHAR",
    "numeric": "VARCHAR",
    "date": "DATE",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "timestamp": "TIMESTAMP",
    "bytea": "BLOB",
    "jsonb": "JSON",
    "json": "JSON",
    "uuid": "UUID",
    "_text": "VARCHAR[]",
    "_int8": "BIGINT[]",
    "_float8": "DOUBLE[]",
    "mood": "VARCHAR",
    "interval": "VARCHAR",
    "bpchar": "VARCHAR",
    "positive": "INTEGER",
    "inet": "VARCHAR",
}
AS_TEXT = {"numeric", "jsonb", "json", "interval", "inet", "mood", "bpchar"}


def same(got: Any, want: Any) -> bool:
    if isinstance(want, datetime) and want.tzinfo is not None and isinstance(got, datetime):
        # The same instant, whatever zone it is shown in (PEP 495: an aware datetime in
        # a repeated hour, fold=1, never equals one of another zone).
        return got.tzinfo is not None and got.timestamp() == want.timestamp()
    if isinstance(want, float) and isinstance(got, float) and math.isnan(want):
        return math.isnan(got)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want) and type(got) is type(want)


def expected(value: Any, text: str | None, pg_type: str) -> Any:
    if text is None:
        return None
    if pg_type in AS_TEXT:
        return text  # the exact Postgres text (json as written, numeric's digits)
    if pg_type == "float4":
        return float(value)
    if pg_type == "uuid":
        return uuid.UUID(text)  # asyncpg's own UUID class is not uuid.UUID
    return value


def check(
    got: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    texts: list[dict[str, Any]],
    types: dict[str, str],
) -> None:
    assert len(got) == len(rows)
    for line, row, text in zip(got, rows, texts, strict=True):
        assert list(line) == list(row)
        for name, value in row.items():
            want = expected(value, text[name], types[name])
            assert same(line[name], want), (name, line[name], want)


def read_duckdb(body: bytes, tmp: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    path = tmp / "read.parquet"
    path.write_bytes(body)
    db = duckdb.connect()
    db.execute(f"SET TimeZone = '{ZONE}'")
    relation = db.sql(f"SELECT * FROM read_parquet('{path}')")
    names = relation.columns
    rows = [dict(zip(names, r, strict=True)) for r in relation.fetchall()]
    types = {n: str(t) for n, t in zip(names, relation.types, strict=True)}
    return rows, types


def check_file(
    body: bytes, tmp: Path, rows: list[dict[str, Any]], texts: list[dict[str, Any]]
) -> None:
    """pyarrow and DuckDB both read ``body`` as the rows the query gives."""
    table = pq.read_table(io.BytesIO(body))
    types = {f.name: f.metadata[b"exportd.pg_type"].decode() for f in table.schema}
    for field in table.schema:
        assert field.type == ARROW_TYPES[types[field.name]], (field.name, field.type)
    check(table.to_pylist(), rows, texts, types)
    got, duck_types = read_duckdb(body, tmp)
    assert duck_types == {n: DUCKDB_TYPES[t] for n, t in types.items()}
    # DuckDB reads json as its text, enums as text; the rest as pyarrow does.
    check(got, rows, texts, types)


@pytest.mark.usefixtures("tables")
async def test_parquet_files_read_back_as_the_query(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, export_timezone=ZONE, **FAST)
    cases = ["things", "more", "nothing", "infinite", "far", "edges", "chosen", "groups"]
    cases += ["bare", "twice"]
    async with running_daemon(settings, definitions()) as daemon:
        jobs = {
            case: await insert_job(pool, owner="alice", kind=case, fmt="parquet") for case in cases
        }
        jobs["bundle"] = await insert_job(pool, owner="alice", kind="bundle", fmt="zip")
        rows = {
            case: await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
            for case, job_id in jobs.items()
        }
        bodies = {}
        for case, job_id in jobs.items():
            if rows[case]["state"] == "completed":
                body, headers = await download_job(daemon.api_port, job_id)
                assert headers["Content-Type"] in (
                    "application/vnd.apache.parquet",
                    "application/zip",
                )
                bodies[case] = body

    for case in ("things", "more", "nothing", "edges", "chosen", "groups", "bundle"):
        assert rows[case]["state"] == "completed", (case, rows[case]["error"])
    assert rows["things"]["object_key"].endswith(".parquet")

    things_rows, things_texts = await direct(dsn, QUERY.format(owner="'alice'"))
    check_file(bodies["things"], tmp_path, things_rows, things_texts)
    assert rows["things"]["row_count"] == len(things_rows) == 7
    more_rows, more_texts = await direct(dsn, MORE_QUERY.format(owner="'alice'"))
    check_file(bodies["more"], tmp_path, more_rows, more_texts)
    # The kind's codec; zstd by default.
    assert (
        pq.ParquetFile(io.BytesIO(bodies["more"])).metadata.row_group(0).column(0).compression
        == "SNAPPY"
    )
    assert (
        pq.ParquetFile(io.BytesIO(bodies["things"])).metadata.row_group(0).column(0).compression
        == "ZSTD"
    )

    # An empty result: a valid file with its schema and no rows.
    empty = pq.read_table(io.BytesIO(bodies["nothing"]))
    assert (empty.num_rows, empty.column_names) == (0, ["id", "note", "at", "amount"])
    got, duck_types = read_duckdb(bodies["nothing"], tmp_path)
    assert got == []
    assert list(duck_types) == ["id", "note", "at", "amount"]

    # Never a silent wrong value: infinity, and a timestamp past Arrow's range, fail by name.
    for case, value in (("infinite", "infinity"), ("far", "294250-01-01")):
        assert (rows[case]["state"], rows[case]["error_kind"]) == ("failed", "query_error")
        assert "'at'" in rows[case]["error"], rows[case]["error"]
        assert value in rows[case]["error"], rows[case]["error"]

    # No columns, or a name twice: refused before any row, by name.
    assert (rows["bare"]["state"], rows["bare"]["error_kind"]) == ("failed", "query_error")
    assert "no columns" in rows["bare"]["error"]
    assert (rows["twice"]["state"], rows["twice"]["error_kind"]) == ("failed", "query_error")
    assert "'n' occur more than once" in rows["twice"]["error"]

    # The ends of Postgres's ranges that Arrow holds, exactly (Python's datetime holds
    # none of them, so they are compared as Arrow's integers: microseconds, days).
    edges = pq.read_table(io.BytesIO(bodies["edges"]))
    conn = await database.connect(dsn)
    try:
        want = await conn.fetch(
            "SELECT (extract(epoch FROM at) * 1000000)::int8 AS at,"
            " (extract(epoch FROM local) * 1000000)::int8 AS local,"
            " day - DATE '1970-01-01' AS day FROM edges ORDER BY n"
        )
    finally:
        await conn.close()
    for name, storage in (("at", pa.int64()), ("local", pa.int64()), ("day", pa.int32())):
        got_ints = edges.column(name).cast(storage).to_pylist()
        assert got_ints == [r[name] for r in want], name

    # Chosen columns in the job's order, named by the kind's labels.
    chosen = pq.read_table(io.BytesIO(bodies["chosen"]))
    assert chosen.column_names == ["The note", "id"]
    assert chosen.column("id").to_pylist() == [r["id"] for r in things_rows]

    # split_rows: row groups of at most that many rows, in one file.
    groups = pq.ParquetFile(io.BytesIO(bodies["groups"]))
    sizes = [groups.metadata.row_group(i).num_rows for i in range(groups.num_row_groups)]
    assert sizes == [3, 3, 1]
    assert groups.read().column("n").to_pylist() == list(range(1, 8))

    # A zip member of format parquet, next to a csv one; with split_rows = 2 the csv
    # member is in parts, the parquet member one file of row groups of 2 rows.
    with zipfile.ZipFile(io.BytesIO(bodies["bundle"])) as bundle:
        assert sorted(bundle.namelist()) == [
            "manifest.json",
            "more-0001.csv",
            "more-0002.csv",
            "things.parquet",
        ]
        member = bundle.read("things.parquet")
    check_file(member, tmp_path, things_rows, things_texts)
    member_groups = pq.ParquetFile(io.BytesIO(member)).metadata
    assert [member_groups.row_group(i).num_rows for i in range(4)] == [2, 2, 2, 1]


@pytest.mark.usefixtures("tables")
async def test_without_pyarrow_parquet_is_refused_by_name(
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    dsn: str,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The availability probe is the seam: pyarrow itself stays importable.
    monkeypatch.setattr(offered_formats, "parquet_installed", lambda: False)
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, definitions()) as daemon:
        job_id = await insert_job(pool, owner="alice", kind="things", fmt="parquet")
        row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
        status, kinds = await api_get(daemon.api_port, "/v1/kinds")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{daemon.api_port}/v1/jobs",
                json={"owner": "alice", "kind": "things", "format": "parquet"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response,
        ):
            refused = (response.status, await response.json())
    assert (row["state"], row["error_kind"]) == ("failed", "unsupported_format")
    assert "exportd[parquet]" in row["error"]
    assert row["attempts"] == 1
    assert status == 200
    formats = {k["name"]: k["formats"] for k in kinds["kinds"]}
    assert "parquet" not in formats["things"]
    assert "csv" in formats["things"]
    assert refused[0] == 400
    assert "exportd[parquet]" in str(refused[1])
