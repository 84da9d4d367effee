"""The options that apply to JSON (columns, time zone, big numbers) on jsonl, jsonl.gz, jsonl.zst,
json and a zip's jsonl member, and the time zone across DST changes in CSV and JSON:
each value compared with what it must be."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from exportd.definitions.options.model import JobOptions, JsonOptions
from tests.support.fixtures_s3 import S3Endpoint, create_bucket
from tests.support.option_kinds import Optioned, definitions, run_jobs

NUMBERS = """
CREATE TABLE numbers (
    id int PRIMARY KEY, owner text NOT NULL, i bigint, n numeric, f float8, label text
);
INSERT INTO numbers VALUES
  (1, 'alice', 9007199254740993, 123456789012345678901234567890, 1.5, 'a'),
  (2, 'alice', -9007199254740993, 1e20, 1e20, 'b'),
  (3, 'alice', 9007199254740991, 'NaN', 'NaN', 'c'),
  (4, 'alice', -9007199254740991, 0.000000000000000000123, -0.5, 'd'),
  (5, 'alice', NULL, 1234567890.12345, NULL, NULL),
  (6, 'alice', 42, 1234567890.123456, 2, 'f');
"""
QUERY = "SELECT id, i, n, f, label FROM numbers WHERE owner = :owner ORDER BY id"
FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "json", "zip")


def raw_numbers(text: str) -> Any:
    """JSON parsed with every number kept as its text: ('num', text)."""
    return json.loads(
        text,
        parse_int=lambda t: ("num", t),
        parse_float=lambda t: ("num", t),
        parse_constant=lambda t: ("num", t),
    )


def records(fmt: str, content: bytes) -> list[dict[str, Any]]:
    if fmt == "json":
        document = raw_numbers(content.decode())
        assert isinstance(document, list)
        return document
    return [raw_numbers(line) for line in content.decode().splitlines()]


# What big_numbers = "string" must write: strings past 2^53 - 1 and past 15 significant
# digits, numbers otherwise (1e20 has one significant digit; NaN stays Postgres's string).
BIG_AS_STRINGS: list[dict[str, Any]] = [
    {
        "id": ("num", "1"),
        "i": "9007199254740993",
        "n": "123456789012345678901234567890",
        "f": ("num", "1.5"),
        "label": "a",
    },
    {
        "id": ("num", "2"),
        "i": "-9007199254740993",
        "n": ("num", "100000000000000000000"),
        "f": ("num", "1e+20"),
        "label": "b",
    },
    {"id": ("num", "3"), "i": ("num", "9007199254740991"), "n": "NaN", "f": "NaN", "label": "c"},
    {
        "id": ("num", "4"),
        "i": ("num", "-9007199254740991"),
        "n": ("num", "0.000000000000000000123"),
        "f": ("num", "-0.5"),
        "label": "d",
    },
    {"id": ("num", "5"), "i": None, "n": ("num", "1234567890.12345"), "f": None, "label": None},
    {
        "id": ("num", "6"),
        "i": ("num", "42"),
        "n": "1234567890.123456",
        "f": ("num", "2"),
        "label": "f",
    },
]
AS_NUMBERS: list[dict[str, Any]] = [
    {**row, "i": ("num", "9007199254740993" if i == 0 else "-9007199254740993")}
    if i < 2
    else dict(row)
    for i, row in enumerate(BIG_AS_STRINGS)
]
AS_NUMBERS[0]["n"] = ("num", "123456789012345678901234567890")
AS_NUMBERS[5]["n"] = ("num", "1234567890.123456")


async def test_big_numbers_columns_and_labels_in_every_json_format(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    await pool.execute(NUMBERS)
    kinds = {
        "numbers": Optioned(member_format="jsonl"),
        "strings": Optioned(JobOptions(json=JsonOptions("string")), member_format="jsonl"),
        "chosen": Optioned(
            JobOptions(columns=("label", "i"), json=JsonOptions("string")),
            labels={"label": "Label", "i": "Big"},
            member_format="jsonl",
        ),
    }
    jobs = [(kind, fmt) for kind in kinds for fmt in FORMATS]
    outcomes = await run_jobs(s3_endpoint, s3_bucket, dsn, pool, definitions(QUERY, kinds), jobs)
    for fmt in FORMATS:
        for kind in kinds:
            assert outcomes[kind, fmt].row["state"] == "completed", outcomes[kind, fmt].row
            assert outcomes[kind, fmt].row["row_count"] == 6
        assert records(fmt, outcomes["numbers", fmt].content(fmt)) == AS_NUMBERS, fmt
        assert records(fmt, outcomes["strings", fmt].content(fmt)) == BIG_AS_STRINGS, fmt
        # Columns chosen and ordered; labels head CSV columns, never JSON keys.
        assert records(fmt, outcomes["chosen", fmt].content(fmt)) == [
            {"label": row["label"], "i": row["i"]} for row in BIG_AS_STRINGS
        ], fmt


INSTANTS = """
CREATE TABLE instants (id int PRIMARY KEY, at timestamptz, day date, wall timestamp);
INSERT INTO instants VALUES
  -- Zurich: 02:00 CET becomes 03:00 CEST on 2025-03-30 (01:00 UTC).
  (1, '2025-03-30 00:30:00+00', '2025-03-30', '2025-03-30 02:30:00'),
  (2, '2025-03-30 01:30:00+00', NULL, NULL),
  -- New York: 02:00 EST becomes 03:00 EDT on 2025-03-09 (07:00 UTC).
  (3, '2025-03-09 06:30:00+00', NULL, NULL),
  (4, '2025-03-09 07:30:00+00', NULL, NULL),
  -- Back to standard time: 2025-10-26 (Zurich, 01:00 UTC), 2025-11-02 (New York, 06:00 UTC).
  (5, '2025-10-26 00:30:00+00', NULL, NULL),
  (6, '2025-10-26 01:30:00+00', NULL, NULL),
  (7, '2025-11-02 05:30:00+00', NULL, NULL),
  (8, '2025-11-02 06:30:00+00', NULL, NULL);
"""
ZONE_QUERY = "SELECT id, at, day, wall FROM instants WHERE :owner <> '' ORDER BY id"
# The instants as each zone's wall time with its offset (CSV spelling).
IN_ZONES = {
    "Europe/Zurich": [
        "2025-03-30 01:30:00+01",
        "2025-03-30 03:30:00+02",
        "2025-03-09 07:30:00+01",
        "2025-03-09 08:30:00+01",
        "2025-10-26 02:30:00+02",
        "2025-10-26 02:30:00+01",
        "2025-11-02 06:30:00+01",
        "2025-11-02 07:30:00+01",
    ],
    "America/New_York": [
        "2025-03-29 20:30:00-04",
        "2025-03-29 21:30:00-04",
        "2025-03-09 01:30:00-05",
        "2025-03-09 03:30:00-04",
        "2025-10-25 20:30:00-04",
        "2025-10-25 21:30:00-04",
        "2025-11-02 01:30:00-04",
        "2025-11-02 01:30:00-05",
    ],
    "Asia/Kolkata": [
        "2025-03-30 06:00:00+05:30",
        "2025-03-30 07:00:00+05:30",
        "2025-03-09 12:00:00+05:30",
        "2025-03-09 13:00:00+05:30",
        "2025-10-26 06:00:00+05:30",
        "2025-10-26 07:00:00+05:30",
        "2025-11-02 11:00:00+05:30",
        "2025-11-02 12:00:00+05:30",
    ],
}


def json_spelling(csv_text: str) -> str:
    """``2025-03-30 01:30:00+01`` as row_to_json writes it: ``2025-03-30T01:30:00+01:00``."""
    day, time = csv_text.split(" ")
    offset = time[8:]
    return f"{day}T{time[:8]}{offset if ':' in offset else offset + ':00'}"


async def test_timestamps_come_out_in_the_jobs_zone_with_their_offset(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool
) -> None:
    await pool.execute(INSTANTS)
    kinds = {
        zone.split("/")[1].lower(): Optioned(JobOptions(timezone=zone), member_format="jsonl")
        for zone in IN_ZONES
    }
    jobs = [(kind, fmt) for kind in kinds for fmt in ("csv", "jsonl", "zip")]
    bucket = create_bucket(rclone_server)
    outcomes = await run_jobs(
        rclone_server, bucket, dsn, pool, definitions(ZONE_QUERY, kinds), jobs
    )
    for zone, expected in IN_ZONES.items():
        kind = zone.split("/")[1].lower()
        csv_lines = outcomes[kind, "csv"].body.decode().splitlines()
        assert csv_lines[0] == "id,at,day,wall"
        assert [line.split(",")[1] for line in csv_lines[1:]] == expected, zone
        # A date and a wall-clock timestamp have no zone: they stay as stored.
        assert csv_lines[1].split(",")[2:] == ["2025-03-30", "2025-03-30 02:30:00"]
        for fmt in ("jsonl", "zip"):
            rows = [json.loads(line) for line in outcomes[kind, fmt].content(fmt).splitlines()]
            assert [row["at"] for row in rows] == [json_spelling(t) for t in expected], zone
            assert (rows[0]["day"], rows[0]["wall"]) == ("2025-03-30", "2025-03-30T02:30:00")
