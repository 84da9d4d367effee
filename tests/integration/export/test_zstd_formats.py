"""csv.zst and jsonl.zst end to end on both S3 servers: jobs asked for by a plain
INSERT, through the API and with the command line, run by a whole daemon, the file
downloaded through its presigned URL and read back by two zstd decoders, byte for
byte the file the csv and jsonl formats write."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from exportd.export.streams import BLOCK
from exportd.settings.model import MIB
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import (
    clean_env,
    direct_export,
    download_job,
    exportd,
    insert_job,
    wait_for_state,
)
from tests.support.zstd_reader import unzstd

TYPED = r"""
CREATE TABLE typed (id integer PRIMARY KEY, owner text NOT NULL, note text, at timestamptz,
                    doc jsonb, raw bytea);
INSERT INTO typed VALUES
  (1, 'alice', NULL, NULL, NULL, NULL),
  (2, 'alice', 'comma, and "quotes"', '2025-03-30 01:30:00+01', '{"k": [1, "two"]}', '\x00ff'),
  (3, 'alice', E'line one\nline two\r\nline three', '1999-12-31 23:59:59-08', 'null', ''),
  (4, 'alice', 'Grüße ☃ 日本語 🎉', '2025-01-01 00:00:00+05:45', '"text"', '\xdeadbeef'),
  (5, 'bob', 'not alice''s row', now(), NULL, NULL);
"""
QUERIES = {
    "types": "SELECT * FROM typed WHERE owner = {owner} ORDER BY id",
    "empty": "SELECT * FROM typed WHERE owner = {owner} AND false",
    # Little to compress, so that even compressed it spans several 5 MiB parts.
    "many": (
        "SELECT g AS n, encode(sha512(g::text::bytea) || sha512((g + 1)::text::bytea), 'base64')"
        " AS noise, {owner} AS owner FROM generate_series(1, 60000) AS g"
    ),
    # One row of three blocks and more: COPY hands it over whole.
    "big_row": (
        f"SELECT 1 AS n, repeat(md5('x'), {3 * BLOCK // 32 + 5}) AS body, {{owner}} AS owner"
        " UNION ALL SELECT 2, 'small', {owner}"
    ),
}
DEFINITIONS = "\n".join(
    f'[kinds.{kind}]\nfilename = "{kind}"\nquery = "{query.format(owner=":owner")}"\n'
    for kind, query in QUERIES.items()
)


async def finished(pool: asyncpg.Pool, port: int, job_id: uuid.UUID) -> tuple[Any, bytes, Any]:
    row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
    assert row["state"] == "completed", row["error"]
    body, headers = await download_job(port, job_id)
    return row, body, headers


async def test_zstd_files_hold_the_bytes_of_csv_and_jsonl(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    await pool.execute(TYPED)
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    formats = ("csv", "csv.zst", "jsonl", "jsonl.zst")
    jobs = {
        (fmt, kind): await insert_job(pool, owner="alice", kind=kind, fmt=fmt)
        for kind in QUERIES
        for fmt in formats
    }
    async with running_daemon(settings, DEFINITIONS) as daemon:
        outcomes = {key: await finished(pool, daemon.api_port, i) for key, i in jobs.items()}

    for kind, query in QUERIES.items():
        copy, records = await direct_export(dsn, query.format(owner="'alice'"))
        assert outcomes["csv", kind][1] == copy, kind
        for plain in ("csv", "jsonl"):
            row, body, headers = outcomes[f"{plain}.zst", kind]
            assert unzstd(body) == outcomes[plain, kind][1], (plain, kind)
            assert headers["Content-Type"] == "application/zstd"
            assert row["object_key"].endswith(f"/{kind}.{plain}.zst")
            assert f"{kind}.{plain}.zst" in headers["Content-Disposition"]
            assert row["row_count"] == row["rows_written"] == len(records), (plain, kind)
            assert row["size_bytes"] == len(body)
            assert row["checksum_sha256"] == hashlib.sha256(body).hexdigest()
    many = outcomes["csv.zst", "many"][1]
    assert len(many) > 5 * MIB, "the export must span several parts"
    assert len(many) < len(outcomes["csv", "many"][1])
    assert unzstd(outcomes["csv.zst", "empty"][1]) == b"id,owner,note,at,doc,raw\n"
    assert unzstd(outcomes["jsonl.zst", "empty"][1]) == b""


async def test_the_api_and_the_command_line_offer_and_take_zstd(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await pool.execute(TYPED)
    (tmp_path / "kinds.toml").write_text(DEFINITIONS)
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    async with running_daemon(settings, DEFINITIONS) as daemon:
        base = f"http://127.0.0.1:{daemon.api_port}"
        status, listing, _ = await call("GET", f"{base}/v1/kinds", AUTH)
        assert status == 200
        offered = {k["name"]: k["formats"] for k in listing["kinds"]}
        assert {"csv.zst", "jsonl.zst"} <= set(offered["types"])
        status, spec, _ = await call("GET", f"{base}/v1/openapi.json", AUTH)
        assert status == 200
        assert '"csv.zst", "jsonl.zst"]' in json.dumps(spec), "the format enums name them"
        status, posted, _ = await call(
            "POST",
            f"{base}/v1/jobs",
            AUTH,
            json={
                "owner": "alice",
                "kind": "types",
                "format": "csv.zst",
                "options": {"csv": {"profile": "excel", "delimiter": ";"}},
            },
        )
        assert status == 202, posted
        status, same_as_csv, _ = await call(
            "POST",
            f"{base}/v1/jobs",
            AUTH,
            json={
                "owner": "alice",
                "kind": "types",
                "format": "csv",
                "options": {"csv": {"profile": "excel", "delimiter": ";"}},
            },
        )
        assert status == 202, same_as_csv
        typed = await exportd(
            "enqueue", "types", "--owner", "alice", "--format", "jsonl.zst", env=env, cwd=tmp_path
        )
        assert typed.returncode == 0, typed.stderr
        from_cli: uuid.UUID = await pool.fetchval(
            "SELECT id FROM exportd.jobs WHERE format = 'jsonl.zst'"
        )
        _, excel_zst, _ = await finished(pool, daemon.api_port, uuid.UUID(posted["id"]))
        _, excel_csv, _ = await finished(pool, daemon.api_port, uuid.UUID(same_as_csv["id"]))
        row, jsonl_zst, _ = await finished(pool, daemon.api_port, from_cli)

    # The CSV options shape the file inside as they shape a csv: BOM, CRLF, delimiter.
    assert unzstd(excel_zst) == excel_csv
    assert excel_csv.startswith("\ufeff".encode())
    assert b"\r\n" in excel_csv
    assert b";" in excel_csv
    assert row["row_count"] == 4
    assert len(unzstd(jsonl_zst).splitlines()) == 4
