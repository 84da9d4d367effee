"""Every format, end to end on both S3 servers: the job's file downloaded through
its presigned URL, parsed, and compared with the same query run directly."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from exportd.settings.model import MIB
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import direct_export, download_job, insert_job, wait_for_state

TYPES = r"""
CREATE TABLE typed (
    id integer PRIMARY KEY, owner text NOT NULL, note text, amount numeric,
    at timestamptz, day date, flag boolean, tags text[], doc jsonb, raw bytea, nums int[]
);
INSERT INTO typed VALUES
  (1, 'alice', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, 'alice', 'comma, and "quotes"', 0.1, '2025-03-30 01:30:00+01', '2025-03-30', true,
   ARRAY['a', 'b,c', NULL, 'q"uote'], '{"k": [1, "two"], "f": 1.5, "big": 12345678901234567890}',
   '\x00ff', '{1,2,3}'),
  (3, 'alice', E'line one\nline two\r\nline three', 123456789012345678901234567890.000000001,
   '1999-12-31 23:59:59.999999-08', '0001-01-01', false, '{}', 'null', '', '{}'),
  (4, 'alice', 'Grüße ☃ 日本語 🎉 \ tab	end', -0.0000000001, '2025-01-01 00:00:00+05:45',
   '2025-01-01', NULL, ARRAY['é'], '"text"', '\xdeadbeef', NULL),
  (5, 'bob', 'not alice''s row', 1, now(), now()::date, true, NULL, NULL, NULL, NULL);
"""
TYPES_QUERY = "SELECT * FROM typed WHERE owner = {owner} ORDER BY id"
# Rows with newlines inside (base64 wraps at 76 characters) and little to
# compress, so that even compressed the export spans several 5 MiB parts.
MANY_QUERY = (
    "SELECT g AS n, encode(sha512(g::text::bytea) || sha512((g + 1)::text::bytea), 'base64')"
    " AS noise, {owner} AS owner FROM generate_series(1, 60000) AS g"
)
DEFINITIONS = f"""
[kinds.types]
filename = "types"
query = "{TYPES_QUERY.format(owner=":owner")}"

[kinds.one]
query = "SELECT * FROM typed WHERE owner = :owner AND id = 2"

[kinds.empty]
query = "SELECT * FROM typed WHERE owner = :owner AND false"

[kinds.many]
query = "{MANY_QUERY.format(owner=":owner")}"
"""
FORMATS = ("csv", "csv.gz", "jsonl", "jsonl.gz", "json", "zip")
CASES = {
    "types": TYPES_QUERY,
    "one": "SELECT * FROM typed WHERE owner = {owner} AND id = 2",
    "empty": "SELECT * FROM typed WHERE owner = {owner} AND false",
    "many": MANY_QUERY,
}
CONTENT_TYPES = {
    "csv": "text/csv",
    "csv.gz": "application/gzip",
    "jsonl": "application/x-ndjson",
    "jsonl.gz": "application/gzip",
    "json": "application/json",
    "zip": "application/zip",
}


def as_json(value: Any) -> Any:
    """A value as the JSON formats must carry it."""
    if isinstance(value, datetime | date):
        return value  # compared after parsing the exported text
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def parsed_json_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        if len(value) == 10:
            return date.fromisoformat(value)
        if "T" in value:
            # ISO 8601 with its offset, never a wall-clock time.
            assert value[-6] in "+-", value
            assert value[-3] == ":", value
            return datetime.fromisoformat(value)
    return value


def check_json_rows(parsed: list[dict[str, Any]], rows: list[asyncpg.Record]) -> None:
    assert len(parsed) == len(rows)
    for got, want in zip(parsed, rows, strict=True):
        assert list(got) == list(want.keys()), "columns keep their order"
        for column, value in want.items():
            exported = got[column]
            if isinstance(value, Decimal):
                assert isinstance(exported, Decimal | int), (column, exported)
            assert parsed_json_value(exported) == as_json(value), column


def json_lines(data: bytes) -> list[dict[str, Any]]:
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines()]


def check_file(fmt: str, body: bytes, copy: bytes, rows: list[asyncpg.Record], case: str) -> None:
    if fmt == "csv":
        assert body == copy
    elif fmt == "csv.gz":
        assert gzip.decompress(body) == copy
    elif fmt in ("jsonl", "jsonl.gz"):
        data = gzip.decompress(body) if fmt == "jsonl.gz" else body
        check_json_rows(json_lines(data), rows)
    elif fmt == "json":
        document = json.loads(body, parse_float=Decimal)
        assert isinstance(document, list)
        check_json_rows(document, rows)
    else:
        with zipfile.ZipFile(io.BytesIO(body)) as bundle:
            assert bundle.namelist() == [f"{case}.csv", "manifest.json"]
            assert bundle.read(f"{case}.csv") == copy
            assert bundle.testzip() is None


@pytest.fixture
async def typed(conn: asyncpg.Connection) -> None:
    await conn.execute(TYPES)


@pytest.mark.usefixtures("typed")
async def test_every_format_round_trips(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    jobs = {
        (fmt, case): await insert_job(pool, owner="alice", kind=case, fmt=fmt)
        for case in CASES
        for fmt in FORMATS
    }
    async with running_daemon(settings, DEFINITIONS) as daemon:
        outcomes = {}
        for (fmt, case), job_id in jobs.items():
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
            assert row["state"] == "completed", (fmt, case, row["error"])
            body, headers = await download_job(daemon.api_port, job_id)
            outcomes[fmt, case] = (row, body, headers)

    for case, query in CASES.items():
        copy, rows = await direct_export(dsn, query.format(owner="'alice'"))
        for fmt in FORMATS:
            row, body, headers = outcomes[fmt, case]
            check_file(fmt, body, copy, rows, case)
            assert row["row_count"] == len(rows), (fmt, case)
            assert row["size_bytes"] == len(body)
            assert row["checksum_sha256"] == hashlib.sha256(body).hexdigest()
            assert row["object_key"].endswith(f".{fmt}")
            assert headers["Content-Type"].startswith(CONTENT_TYPES[fmt])
            assert (row["progress"], row["rows_written"]) == (100, len(rows))
            if case == "many":
                assert len(body) > 5 * MIB, f"{fmt}: the export must span several parts"
    assert b"bob" not in outcomes["csv", "types"][1]


BUNDLE = """
[kinds.account]
description = "Download all my data"
filename = "my-data-{kind}"

[kinds.account.datasets.accounts]
query = "SELECT id, name FROM accounts WHERE owner = :owner ORDER BY id"

[kinds.account.datasets.transactions]
format = "jsonl"
query = '''
SELECT t.id, t.account_id, t.amount, t.at FROM transactions AS t
JOIN accounts AS a ON a.id = t.account_id
WHERE a.owner = :owner ORDER BY t.id
'''

[kinds.account.datasets.categories]
query = "SELECT DISTINCT category FROM transactions ORDER BY 1"
"""
BANK = """
CREATE TABLE accounts (id int PRIMARY KEY, owner text, name text);
CREATE TABLE transactions (
    id int PRIMARY KEY, account_id int, amount numeric, at timestamptz, category text
);
INSERT INTO accounts VALUES (1, 'alice', 'Checking'), (2, 'alice', 'Savings, "joint"'),
                            (3, 'bob', 'Other');
INSERT INTO transactions
SELECT g, 1 + g % 3, g / 100.0, '2025-01-01'::timestamptz + g * interval '1 hour',
       'cat' || g % 4
FROM generate_series(1, 500) AS g;
"""


async def test_a_bundle_has_a_member_per_dataset_and_a_manifest_that_matches(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    await pool.execute(BANK)
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, BUNDLE) as daemon:
        job_id = await insert_job(pool, owner="alice", kind="account", fmt="zip")
        refused = await insert_job(pool, owner="alice", kind="account", fmt="jsonl")
        row = await wait_for_state(pool, job_id, {"completed", "failed"})
        refused_row = await wait_for_state(pool, refused, {"completed", "failed"})
        assert row["state"] == "completed", row["error"]
        body, headers = await download_job(daemon.api_port, job_id)

    assert (refused_row["state"], refused_row["error_kind"]) == ("failed", "unsupported_format")
    assert "3 datasets" in refused_row["error"]
    assert refused_row["attempts"] == 1
    assert "my-data-account.zip" in headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        names = bundle.namelist()
        assert names == ["accounts.csv", "transactions.jsonl", "categories.csv", "manifest.json"]
        manifest = json.loads(bundle.read("manifest.json"))
        contents = {name: bundle.read(name) for name in names}
        infos = bundle.infolist()
    assert manifest["kind"] == "account"
    assert manifest["owner"] == "alice"
    assert manifest["job_id"] == str(job_id)
    assert manifest["params"] == {}
    generated_at = datetime.fromisoformat(manifest["generated_at"])
    assert generated_at.tzinfo is not None
    # Zip keeps times to two seconds, without a zone: the members carry the manifest's
    # generation time in UTC, not zipfile's 1980 default.
    for info in infos:
        stamped = datetime(*info.date_time, tzinfo=UTC)
        assert timedelta(0) <= generated_at - stamped < timedelta(seconds=2), info.filename
    members = {m["name"]: m for m in manifest["members"]}
    assert list(members) == names[:-1]
    for name, member in members.items():
        assert member["bytes"] == len(contents[name])
        assert member["sha256"] == hashlib.sha256(contents[name]).hexdigest()
    assert members["accounts.csv"]["rows"] == 2
    theirs = await pool.fetchval("SELECT count(*) FROM transactions WHERE account_id IN (1, 2)")
    assert members["transactions.jsonl"]["rows"] == theirs
    assert members["categories.csv"]["rows"] == 4
    assert len(contents["transactions.jsonl"].splitlines()) == theirs
    assert row["row_count"] == 2 + theirs + 4
    assert b'"Savings, ""joint"""' in contents["accounts.csv"]


SNAPSHOT = """
[kinds.ledger]
[kinds.ledger.datasets.before]
query = '''
SELECT count(*) AS n, sum(amount) AS total, pg_sleep(1.5)::text AS nap
FROM ledger WHERE :owner <> ''
'''
[kinds.ledger.datasets.after]
query = "SELECT count(*) AS n, sum(amount) AS total FROM ledger WHERE :owner <> ''"
"""


async def test_a_bundle_is_read_in_one_snapshot_while_another_transaction_writes(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool
) -> None:
    from tests.support.fixtures_s3 import create_bucket
    from tests.support.helpers import eventually

    await pool.execute(
        "CREATE TABLE ledger (id serial PRIMARY KEY, amount numeric);"
        "INSERT INTO ledger (amount) SELECT 1 FROM generate_series(1, 100)"
    )
    bucket = create_bucket(rclone_server)
    settings = s3_settings(rclone_server, bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, SNAPSHOT) as daemon:
        job_id = await insert_job(pool, owner="o", kind="ledger", fmt="zip")

        async def first_dataset_running() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE state = 'active' AND query LIKE '%pg_sleep(1.5)%'"
                    " AND pid <> pg_backend_pid()"
                )
            )

        await eventually(first_dataset_running)
        # Committed while the first dataset runs, before the second starts.
        await pool.execute("INSERT INTO ledger (amount) SELECT 5 FROM generate_series(1, 50)")
        row = await wait_for_state(pool, job_id, {"completed", "failed"})
        assert row["state"] == "completed", row["error"]
        body, _ = await download_job(daemon.api_port, job_id)
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        before = bundle.read("before.csv").decode().splitlines()[1]
        after = bundle.read("after.csv").decode().splitlines()[1]
    assert before.startswith("100,100,")
    assert after == "100,100", "the second dataset saw a transaction the first did not"
    assert await pool.fetchval("SELECT count(*) FROM ledger") == 150
