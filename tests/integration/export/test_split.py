"""split_rows end to end on both S3 servers: a result over the limit becomes a zip of
numbered parts, each with its header, listed in order by the manifest; a result at
or under it is today's single file. Every part is read back and compared with the
same query run directly, split in order."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import zipfile
from typing import Any

import asyncpg

from exportd.definitions.kinds import Definitions
from exportd.definitions.loader import definitions_from_text
from exportd.definitions.options.model import JobOptions
from exportd.limits import MAX_ROW_BYTES_FLOOR
from exportd.s3.client import open_s3_client
from exportd.s3.objects import list_open_uploads
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import (
    direct_export,
    download_job,
    eventually,
    insert_job,
    job_row,
    wait_for_state,
)

# Text with line breaks and quotes inside fields, and a header that needs quoting too.
SERIES = """
SELECT g AS n,
       CASE g % 5 WHEN 0 THEN E'line one\\nline two' WHEN 1 THEN 'say "hi", then'
                  WHEN 2 THEN E'"\\n"' WHEN 3 THEN NULL ELSE '' END AS "odd ""note""
name",
       md5(g::text) AS h
FROM generate_series(1, {n}) AS g WHERE {owner} <> '' ORDER BY g
"""
TEXT = f"""
[kinds.series]
query = '''{SERIES.format(n=":n", owner=":owner")}'''
[kinds.series.params.n]
type = "integer"

[kinds.single]
query = '''{SERIES.format(n=":n", owner=":owner")}'''
[kinds.single.params.n]
type = "integer"

[kinds.squares]
handler = "tests.support.custom_kinds:squares"
[kinds.squares.params.upto]
type = "integer"

[kinds.account]
filename = "my-data"
[kinds.account.datasets.big]
query = '''{SERIES.format(n="2500", owner=":owner")}'''
[kinds.account.datasets.small]
format = "jsonl"
query = "SELECT g AS n FROM generate_series(1, 300) AS g WHERE :owner <> '' ORDER BY g"
[kinds.account.datasets.over]
format = "jsonl"
query = "SELECT g AS n FROM generate_series(1, 1001) AS g WHERE :owner <> '' ORDER BY g"
"""
SPLIT_ROWS = {"series": 1000, "single": 1, "squares": 1000, "account": 1000}


def definitions() -> Definitions:
    """The kinds above, each with ``split_rows`` as its default option (what
    ``[kinds.NAME.options] split_rows = N`` becomes)."""
    loaded = definitions_from_text(TEXT)
    return Definitions(
        dataclasses.replace(kind, options=JobOptions(split_rows=SPLIT_ROWS[name]))
        for name, kind in loaded.items()
    )


def series(n: int) -> str:
    return SERIES.format(n=n, owner="'ann'")


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def json_lines(data: bytes) -> list[Any]:
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def chunked(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def open_zip(body: bytes) -> tuple[list[str], dict[str, Any], dict[str, bytes]]:
    """The zip's member names in order, its manifest and every member's content; checks
    that the manifest lists every member but itself, in the zip's order, with the
    bytes and checksum of each."""
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
        contents = {name: bundle.read(name) for name in names}
    assert names[-1] == "manifest.json"
    document = json.loads(contents["manifest.json"])
    assert [m["name"] for m in document["members"]] == names[:-1]
    for member in document["members"]:
        assert member["bytes"] == len(contents[member["name"]])
        assert member["sha256"] == hashlib.sha256(contents[member["name"]]).hexdigest()
    return names[:-1], document, contents


async def run_jobs(
    settings: Any, pool: asyncpg.Pool, jobs: dict[str, tuple[str, str, dict[str, Any]]]
) -> dict[str, tuple[Any, bytes, Any]]:
    """Each job (kind, format, params) run by one daemon: its row, file and headers."""
    ids = {
        label: await insert_job(pool, owner="ann", kind=kind, fmt=fmt, params=params)
        for label, (kind, fmt, params) in jobs.items()
    }
    outcomes = {}
    async with running_daemon(settings, definitions()) as daemon:
        for label, job_id in ids.items():
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
            assert row["state"] == "completed", (label, row["error"])
            body, headers = await download_job(daemon.api_port, job_id)
            outcomes[label] = (row, body, headers)
    return outcomes


def check_split_csv(
    outcome: tuple[Any, bytes, Any], copy: bytes, split_rows: int, dataset: str = "series"
) -> list[int]:
    """A zip of CSV parts of the direct COPY's rows, in order; the parts' rows."""
    row, body, headers = outcome
    names, document, contents = open_zip(body)
    header, *rows = read_csv(copy)
    expected = chunked(rows, split_rows)
    assert names == [f"{dataset}-{n:04d}.csv" for n in range(1, len(expected) + 1)]
    assert [read_csv(contents[name]) for name in names] == [[header, *c] for c in expected]
    assert [(m["dataset"], m["part"], m["format"]) for m in document["members"]] == [
        (dataset, n, "csv") for n in range(1, len(expected) + 1)
    ]
    assert [m["rows"] for m in document["members"]] == [len(c) for c in expected]
    assert document["split_rows"] == split_rows
    assert row["row_count"] == row["rows_written"] == len(rows)
    assert row["object_key"].endswith(".zip")
    assert headers["Content-Type"] == "application/zip"
    assert row["size_bytes"] == len(body)
    assert row["checksum_sha256"] == hashlib.sha256(body).hexdigest()
    return [len(c) for c in expected]


async def test_split_rows_on_every_format(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    jobs = {
        "2500": ("series", "csv", {"n": 2500}),
        "2000": ("series", "csv", {"n": 2000}),
        "1000": ("series", "csv", {"n": 1000}),
        "empty": ("series", "csv", {"n": 0}),
        "csv.gz": ("series", "csv.gz", {"n": 2500}),
        "csv.zst": ("series", "csv.zst", {"n": 2500}),
        "jsonl": ("series", "jsonl", {"n": 2500}),
        "jsonl.gz": ("series", "jsonl.gz", {"n": 2500}),
        "jsonl.zst": ("series", "jsonl.zst", {"n": 2500}),
        "json": ("series", "json", {"n": 2500}),
        "json small": ("series", "json", {"n": 7}),
        "one per part": ("single", "csv", {"n": 3}),
        "one": ("single", "csv", {"n": 1}),
    }
    outcomes = await run_jobs(settings, pool, jobs)

    copy, records = await direct_export(dsn, series(2500))
    assert check_split_csv(outcomes["2500"], copy, 1000) == [1000, 1000, 500]
    assert check_split_csv(outcomes["csv.gz"], copy, 1000) == [1000, 1000, 500]
    assert outcomes["csv.gz"][0]["filename"] == "series.zip"
    assert check_split_csv(outcomes["csv.zst"], copy, 1000) == [1000, 1000, 500]
    assert outcomes["csv.zst"][0]["filename"] == "series.zip"
    copy2000, _ = await direct_export(dsn, series(2000))
    assert check_split_csv(outcomes["2000"], copy2000, 1000) == [1000, 1000]
    copy3, _ = await direct_export(dsn, series(3))
    assert check_split_csv(outcomes["one per part"], copy3, 1, "single") == [1, 1, 1]

    # At most split_rows rows: today's file, unchanged.
    for label, n, kind in [("1000", 1000, "series"), ("empty", 0, "series"), ("one", 1, "single")]:
        row, body, headers = outcomes[label]
        assert body == (await direct_export(dsn, series(n)))[0], label
        assert row["object_key"].endswith(f"/{kind}.csv"), label
        assert headers["Content-Type"].startswith("text/csv"), label
        assert row["row_count"] == n
    row, body, _ = outcomes["json small"]
    assert row["object_key"].endswith(".json")
    assert len(json.loads(body)) == 7

    # JSON: every part its own JSON Lines file or JSON array, of the same rows in order.
    wanted = chunked([dict(r) for r in records], 1000)
    for fmt, extension in [
        ("jsonl", "jsonl"),
        ("jsonl.gz", "jsonl"),
        ("jsonl.zst", "jsonl"),
        ("json", "json"),
    ]:
        row, body, headers = outcomes[fmt]
        names, document, contents = open_zip(body)
        assert names == [f"series-{n:04d}.{extension}" for n in (1, 2, 3)], fmt
        parsed = [
            json.loads(contents[n]) if fmt == "json" else json_lines(contents[n]) for n in names
        ]
        assert parsed == wanted, fmt
        assert [(m["part"], m["rows"], m["format"]) for m in document["members"]] == [
            (1, 1000, extension),
            (2, 1000, extension),
            (3, 500, extension),
        ]
        assert row["row_count"] == 2500
        assert headers["Content-Type"] == "application/zip"
        assert not any(c.startswith(b"\x1f\x8b") for c in contents.values()), "parts are plain"


async def test_split_rows_in_a_bundle_and_for_a_handler(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    jobs = {
        "bundle": ("account", "zip", {}),
        "handler": ("squares", "csv", {"upto": 2500}),
        "handler small": ("squares", "jsonl", {"upto": 3}),
    }
    outcomes = await run_jobs(settings, pool, jobs)

    row, body, headers = outcomes["bundle"]
    names, document, contents = open_zip(body)
    assert names == [
        "big-0001.csv",
        "big-0002.csv",
        "big-0003.csv",
        "small.jsonl",
        "over-0001.jsonl",
        "over-0002.jsonl",
    ]
    assert [(m["dataset"], m.get("part"), m["rows"]) for m in document["members"]] == [
        ("big", 1, 1000),
        ("big", 2, 1000),
        ("big", 3, 500),
        ("small", None, 300),
        ("over", 1, 1000),
        ("over", 2, 1),
    ]
    header, *rows = read_csv((await direct_export(dsn, series(2500)))[0])
    assert [read_csv(contents[n]) for n in names[:3]] == [[header, *c] for c in chunked(rows, 1000)]
    assert json_lines(contents["small.jsonl"]) == [{"n": n} for n in range(1, 301)]
    assert json_lines(contents["over-0001.jsonl"]) == [{"n": n} for n in range(1, 1001)]
    assert json_lines(contents["over-0002.jsonl"]) == [{"n": 1001}]
    assert row["row_count"] == 2500 + 300 + 1001
    assert "my-data.zip" in headers["Content-Disposition"]

    # A handler's rows cannot be counted in advance: with split_rows, always a zip.
    row, body, headers = outcomes["handler"]
    names, document, contents = open_zip(body)
    assert names == ["squares-0001.csv", "squares-0002.csv", "squares-0003.csv"]
    parts = [read_csv(contents[n]) for n in names]
    assert all(p[0] == parts[0][0] for p in parts), "each part starts with the header"
    assert [int(r[0]) for p in parts for r in p[1:]] == list(range(1, 2501))
    assert [m["rows"] for m in document["members"]] == [1000, 1000, 500]
    assert (row["row_count"], headers["Content-Type"]) == (2500, "application/zip")
    row, body, _ = outcomes["handler small"]
    names, document, contents = open_zip(body)
    assert names == ["squares-0001.jsonl"]
    assert [r["n"] for r in json_lines(contents[names[0]])] == [1, 2, 3]
    assert row["object_key"].endswith("/squares.zip")


NOISE = """
SELECT g AS n,
       CASE WHEN g = 50001 THEN repeat('x', {big}) || pg_sleep(1)::text ELSE
       encode(sha512(g::text::bytea) || sha512((g + 1)::text::bytea), 'base64') END AS noise
FROM generate_series(1, 60000) AS g WHERE :owner <> '' ORDER BY g
"""


async def test_a_split_export_that_fails_in_a_later_part_leaves_nothing_behind(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    # Parts of 20,000 rows; row 50,001 (in the third part) is over the row limit,
    # and takes a second to come: by then the zip's multipart upload has started.
    text = f"[kinds.noise]\nquery = '''{NOISE.format(big=MAX_ROW_BYTES_FLOOR + 1)}'''\n"
    kind = definitions_from_text(text)["noise"]
    kinds = Definitions([dataclasses.replace(kind, options=JobOptions(split_rows=20_000))])
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, max_row_bytes=MAX_ROW_BYTES_FLOOR, **FAST
    )
    job_id = await insert_job(pool, owner="ann", kind="noise", fmt="csv", max_attempts=1)
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(settings, stack)
        async with running_daemon(settings, kinds):

            async def upload_open() -> Any:
                return (await job_row(pool, job_id))["upload_id"]

            upload_id = await eventually(upload_open, timeout=60)
            assert [u["UploadId"] for u in await list_open_uploads(s3, s3_bucket, "")] == [
                upload_id
            ]
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
        assert (row["state"], row["error_kind"]) == ("failed", "too_large"), row["error"]
        assert "row 50,001 of dataset 'noise'" in row["error"]
        assert await list_open_uploads(s3, s3_bucket, "") == []
        listing = await s3.list_objects_v2(Bucket=s3_bucket)
        assert listing.get("KeyCount", 0) == 0
