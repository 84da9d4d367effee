"""EXPORTD_MAX_ROW_BYTES: a row over it fails its job with too_large, a row at
it is written byte for byte, and the daemon goes on, on both S3 servers.

The limit is set to its floor (64 KiB) so that the rows stay small. Row 2 of
each export is the wide one; its size in the file is its value's length plus
the rest of its record: ``2,`` and a newline in CSV, ``{"n":2,"body":"`` and
``"}`` and a newline in JSON Lines.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from typing import Any

import asyncpg

from exportd.limits import MAX_ROW_BYTES_FLOOR, ROW_WATCH_SLACK_BYTES
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import api_get, download, insert_job, wait_for_state
from tests.support.zstd_reader import unzstd

LIMIT = MAX_ROW_BYTES_FLOOR
CSV_REST = len("2,\n")
JSON_REST = len('{"n":2,"body":""}\n')

DEFINITIONS = """
[kinds.wide]
query = '''
SELECT g AS n, CASE WHEN g = 2 THEN repeat('x', :width::int) ELSE 'small' END AS body
FROM generate_series(1, 3) AS g WHERE :owner <> ''
'''
[kinds.wide.params.width]
type = "integer"
required = true

[kinds.wide_bundle.datasets.rows]
query = '''
SELECT g AS n, CASE WHEN g = 2 THEN repeat('x', :width::int) ELSE 'small' END AS body
FROM generate_series(1, 3) AS g WHERE :owner <> ''
'''
[kinds.wide_bundle.params.width]
type = "integer"
required = true

[kinds.wide_handler]
handler = "tests.support.custom_kinds:wide_rows"
[kinds.wide_handler.params.width]
type = "integer"
required = true
"""


async def _run(pool: asyncpg.Pool, kind: str, fmt: str, width: int) -> asyncpg.Record:
    job_id = await insert_job(pool, owner="o", kind=kind, fmt=fmt, params={"width": width})
    return await wait_for_state(pool, job_id, {"completed", "failed"})


def _records(fmt: str, body: bytes) -> list[bytes]:
    """The file's records (lines; a JSON array as JSON Lines again)."""
    if fmt.endswith(".gz"):
        body = gzip.decompress(body)
    if fmt.endswith(".zst"):
        body = unzstd(body)
    if fmt == "zip":
        body = zipfile.ZipFile(io.BytesIO(body)).read("rows.csv")
    if fmt == "json":
        rows: list[Any] = json.loads(body)
        body = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in rows)
    return body.splitlines(keepends=True)


def _too_large(row: asyncpg.Record, what: str, size: int) -> None:
    assert (row["state"], row["error_kind"], row["attempts"]) == ("failed", "too_large", 1)
    assert row["error"] == (
        f"row 2 of {what} is larger than the limit of {LIMIT:,} bytes per row "
        f"(EXPORTD_MAX_ROW_BYTES): it is {size:,} bytes; leave the large column out of "
        "the export, or raise EXPORTD_MAX_ROW_BYTES (each row costs about twice its size "
        "in memory)"
    )


CASES = [
    # kind, format, bytes of row 2 besides its value, dataset
    ("wide", "csv", CSV_REST, "dataset 'wide' of kind 'wide'"),
    ("wide", "csv.gz", CSV_REST, "dataset 'wide' of kind 'wide'"),
    ("wide", "jsonl", JSON_REST, "dataset 'wide' of kind 'wide'"),
    ("wide", "jsonl.gz", JSON_REST, "dataset 'wide' of kind 'wide'"),
    ("wide", "csv.zst", CSV_REST, "dataset 'wide' of kind 'wide'"),
    ("wide", "jsonl.zst", JSON_REST, "dataset 'wide' of kind 'wide'"),
    ("wide", "json", JSON_REST, "dataset 'wide' of kind 'wide'"),
    ("wide_bundle", "zip", CSV_REST, "dataset 'rows' of kind 'wide_bundle'"),
    ("wide_handler", "csv", CSV_REST, "dataset 'wide_handler' of kind 'wide_handler'"),
    ("wide_handler", "jsonl", JSON_REST, "dataset 'wide_handler' of kind 'wide_handler'"),
]


async def test_a_row_over_the_limit_fails_too_large_and_one_at_it_is_written_exactly(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, max_row_bytes=LIMIT, **FAST)
    async with running_daemon(settings, DEFINITIONS) as daemon:
        for kind, fmt, rest, what in CASES:
            over = await _run(pool, kind, fmt, LIMIT - rest + 1)
            _too_large(over, what, LIMIT + 1)
            at = await _run(pool, kind, fmt, LIMIT - rest)
            assert at["state"] == "completed", (kind, fmt, at["error"])
            _, doc = await api_get(daemon.api_port, f"/v1/jobs/{at['id']}")
            body, _ = await download(doc["download_url"])
            records = _records(fmt, body)
            wide = [r for r in records if len(r) > 100]
            assert [len(r) for r in wide] == [LIMIT], (kind, fmt)
            assert b"x" * (LIMIT - rest) in wide[0]
            assert at["row_count"] == 3


async def test_a_row_far_over_the_limit_is_refused_while_it_arrives(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, max_row_bytes=LIMIT, **FAST)
    async with running_daemon(settings, DEFINITIONS):
        for fmt in ("csv", "jsonl"):
            row = await _run(pool, "wide", fmt, 4 * ROW_WATCH_SLACK_BYTES)
            assert (row["state"], row["error_kind"], row["attempts"]) == (
                "failed",
                "too_large",
                1,
            )
            error: str = row["error"]
            assert error.startswith(
                f"row 2 of dataset 'wide' of kind 'wide' is larger than the limit of "
                f"{LIMIT:,} bytes per row (EXPORTD_MAX_ROW_BYTES): more than "
            ), error
            arrived = int(error.split("more than ")[1].split(" bytes")[0].replace(",", ""))
            # Refused once the slack had arrived, long before the whole row.
            assert LIMIT + ROW_WATCH_SLACK_BYTES < arrived < 2 * ROW_WATCH_SLACK_BYTES
        # The connection it closed is replaced: the next export runs.
        done = await _run(pool, "wide", "csv", 10)
        assert done["state"] == "completed", done["error"]
