"""A Python handler's rows honour the same job options as SQL datasets: columns,
labels, the CSV dialect, the formula guard on text, a decimal comma, big numbers as JSON
strings and aware datetimes in the job's time zone."""

from __future__ import annotations

import json

import asyncpg

from exportd.definitions.options.model import CsvOptions, JobOptions, JsonOptions
from tests.support.fixtures_s3 import S3Endpoint
from tests.support.option_kinds import Optioned, definitions, run_jobs

HANDLER = "tests.support.custom_kinds:awkward"
KINDS = {
    "plain": Optioned(),
    "excel": Optioned(
        JobOptions(
            timezone="Europe/Zurich",
            columns=("name", "amount", "at", "id"),
            csv=CsvOptions(
                profile="excel",
                delimiter=";",
                null="-",
                bom=True,
                line_terminator="\r\n",
                formula_guard=True,
                decimal_comma=True,
            ),
        ),
        labels={"name": "Name", "big": "never shown"},
    ),
    "headless": Optioned(JobOptions(csv=CsvOptions(header=False, delimiter="|"))),
    "big": Optioned(
        JobOptions(
            timezone="Asia/Kolkata",
            columns=("id", "big", "amount", "ratio", "at"),
            json=JsonOptions("string"),
            # CSV options do not apply to JSON.
            csv=CsvOptions(formula_guard=True, null="-"),
        ),
        labels={"id": "Number"},
        member_format="jsonl",
    ),
    "unknown": Optioned(JobOptions(columns=("id", "nmae"))),
}
GUARDED = '"\'=HYPERLINK(""http://evil"",""x"")"'
GRUSS = '"Grüße; 🎉\nzweite Zeile"'
EXCEL = "\ufeff" + "".join(
    line + "\r\n"
    for line in (
        "Name;amount;at;id",
        f"{GUARDED};-5;2025-03-30T01:30:00+01:00;1",
        f"{GRUSS};1234,5;2025-03-30T03:30:00+02:00;2",
        "-;-;-;3",
        "NULL;123456789012345678901234567890;2025-01-01T01:00:00+01:00;4",
    )
)
PLAIN = "".join(
    line + "\n"
    for line in (
        "id,name,amount,ratio,at,big",
        '1,"=HYPERLINK(""http://evil"",""x"")",-5,1.5,2025-03-30T00:30:00+00:00,9007199254740993',
        f"2,{GRUSS},1234.5,-0.25,2025-03-30T01:30:00+00:00,9007199254740991",
        "3,,,,,",
        "4,NULL,123456789012345678901234567890,1e+20,2025-01-01T00:00:00+00:00,-9007199254740993",
    )
)
HEADLESS = "".join(
    line + "\n"
    for line in (
        '1|"=HYPERLINK(""http://evil"",""x"")"|-5|1.5|2025-03-30T00:30:00+00:00|9007199254740993',
        f"2|{GRUSS}|1234.5|-0.25|2025-03-30T01:30:00+00:00|9007199254740991",
        "3|||||",
        "4|NULL|123456789012345678901234567890|1e+20|2025-01-01T00:00:00+00:00|-9007199254740993",
    )
)
BIG = [
    {
        "id": 1,
        "big": "9007199254740993",
        "amount": -5,
        "ratio": 1.5,
        "at": "2025-03-30T06:00:00+05:30",
    },
    {
        "id": 2,
        "big": 9007199254740991,
        "amount": 1234.5,
        "ratio": -0.25,
        "at": "2025-03-30T07:00:00+05:30",
    },
    {"id": 3, "big": None, "amount": None, "ratio": None, "at": None},
    {
        "id": 4,
        "big": "-9007199254740993",
        "amount": "123456789012345678901234567890",
        "ratio": 1e20,
        "at": "2025-01-01T05:30:00+05:30",
    },
]


async def test_handler_rows_follow_the_options(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    jobs = [
        *[("plain", fmt) for fmt in ("csv", "csv.gz", "zip")],
        *[("excel", fmt) for fmt in ("csv", "csv.gz", "zip")],
        ("headless", "csv"),
        *[("big", fmt) for fmt in ("jsonl", "jsonl.gz", "json", "zip")],
        ("unknown", "csv"),
        ("unknown", "jsonl"),
    ]
    defined = definitions(HANDLER, KINDS, handler=True)
    outcomes = await run_jobs(s3_endpoint, s3_bucket, dsn, pool, defined, jobs)
    for (kind, fmt), outcome in outcomes.items():
        if kind == "unknown":
            row = outcome.row
            assert (row["state"], row["error_kind"]) == ("failed", "invalid_params"), row
            assert "'nmae'" in row["error"]
            assert "'id', 'name', 'amount', 'ratio', 'at', 'big'" in row["error"]
            continue
        assert outcome.row["state"] == "completed", (kind, fmt, outcome.row["error"])
        assert outcome.row["row_count"] == outcome.row["rows_written"] == 4
        content = outcome.content(fmt)
        if kind == "plain":
            assert content.decode() == PLAIN, fmt
        elif kind == "excel":
            assert content.decode() == EXCEL, fmt
        elif kind == "headless":
            assert content.decode() == HEADLESS, fmt
        else:
            text = content.decode()
            parsed = (
                json.loads(text)
                if fmt == "json"
                else [json.loads(line) for line in text.splitlines()]
            )
            assert parsed == BIG, fmt
