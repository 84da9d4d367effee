"""The CSV options of a job, alone and combined, on csv, csv.gz, csv.zst and a zip member, run by
a whole daemon on both S3 servers: each file compared with what it must be."""

from __future__ import annotations

import asyncpg
import pytest

from exportd.definitions.options.model import CsvOptions, JobOptions
from tests.support.fixtures_s3 import S3Endpoint
from tests.support.helpers import direct_export
from tests.support.option_kinds import Optioned, definitions, run_jobs

ITEMS = """
CREATE TYPE mood AS ENUM ('sad', '+1');
CREATE TABLE items (
    id int PRIMARY KEY, owner text NOT NULL, name text, amount numeric, ratio float8,
    at timestamptz, code char(4), mood mood
);
INSERT INTO items VALUES
  (1, 'alice', '=HYPERLINK("http://evil","x")', -5, 1.5, '2025-03-30 00:30:00+00', '=ab', '+1'),
  (2, 'alice', E'Grüße; 🎉\\nzweite Zeile', 1234.5, -0.25, '2025-03-30 01:30:00+00', 'ok', 'sad'),
  (3, 'alice', NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'alice', 'NULL', 0, 1e20, '2025-01-01 00:00:00+00', '', NULL),
  (5, 'bob', 'not yours', 1, 1, now(), 'x', 'sad');
"""
QUERY = (
    "SELECT id, name, amount, ratio, at, code, mood FROM items WHERE owner = {owner} ORDER BY id"
)
HYPERLINK = '"=HYPERLINK(""http://evil"",""x"")"'
GUARDED = '"\'=HYPERLINK(""http://evil"",""x"")"'
GRUSS = '"Grüße; 🎉\nzweite Zeile"'
BOM = "\ufeff"
# The longest label (63 bytes): a quote, comment and emoji reach the header whole.
LONG_LABEL = 'Sag "hi" */ -- ' + "\U0001f389" * 12


def lines(*records: str, end: str = "\n") -> bytes:
    return "".join(record + end for record in records).encode("utf-8")


PLAIN = (
    "id,name,amount,ratio,at,code,mood",
    f"1,{HYPERLINK},-5,1.5,2025-03-30 00:30:00+00,=ab ,+1",
    f"2,{GRUSS},1234.5,-0.25,2025-03-30 01:30:00+00,ok  ,sad",
    "3,,,,,,",
    "4,NULL,0,1e+20,2025-01-01 00:00:00+00,    ,",
)
EXCEL = CsvOptions(
    profile="excel", delimiter=";", bom=True, line_terminator="\r\n", formula_guard=True
)
KINDS = {
    "plain": Optioned(),
    "chosen": Optioned(JobOptions(columns=("name", "id"))),
    "labelled": Optioned(labels={"name": "Full name", "at": "Placed, at", "nope": "x"}),
    "long_label": Optioned(labels={"name": LONG_LABEL}),
    "semicolon": Optioned(JobOptions(csv=CsvOptions(delimiter=";"))),
    "tab": Optioned(JobOptions(csv=CsvOptions(delimiter="\t"))),
    "pipe": Optioned(JobOptions(csv=CsvOptions(delimiter="|"))),
    "headless": Optioned(JobOptions(csv=CsvOptions(header=False))),
    "nulltext": Optioned(JobOptions(csv=CsvOptions(null="NULL"))),
    "bom": Optioned(JobOptions(csv=CsvOptions(bom=True))),
    "crlf": Optioned(JobOptions(csv=CsvOptions(line_terminator="\r\n"))),
    "guard": Optioned(JobOptions(csv=CsvOptions(formula_guard=True))),
    "comma": Optioned(JobOptions(csv=CsvOptions(delimiter=";", decimal_comma=True))),
    "excel": Optioned(JobOptions(csv=EXCEL)),
    "zurich": Optioned(JobOptions(timezone="Europe/Zurich")),
    "all": Optioned(
        JobOptions(
            timezone="Europe/Zurich",
            columns=("name", "amount", "at", "id"),
            csv=CsvOptions(
                delimiter=";",
                null="-",
                bom=True,
                line_terminator="\r\n",
                formula_guard=True,
                decimal_comma=True,
            ),
        ),
        labels={"name": "Name", "at": "Zeit"},
    ),
    "unknown": Optioned(JobOptions(columns=("id", "nmae", "colour"))),
    "badnull": Optioned(JobOptions(csv=CsvOptions(delimiter=";", null="a;b"))),
    "badcomma": Optioned(JobOptions(csv=CsvOptions(decimal_comma=True))),
}
EXPECTED = {
    "plain": lines(*PLAIN),
    "chosen": lines("name,id", f"{HYPERLINK},1", f"{GRUSS},2", ",3", "NULL,4"),
    "labelled": lines('id,Full name,amount,ratio,"Placed, at",code,mood', *PLAIN[1:]),
    "long_label": lines(
        'id,"Sag ""hi"" */ -- ' + "\U0001f389" * 12 + '",amount,ratio,at,code,mood', *PLAIN[1:]
    ),
    "headless": lines(*PLAIN[1:]),
    "nulltext": lines(
        PLAIN[0],
        *PLAIN[1:3],
        "3,NULL,NULL,NULL,NULL,NULL,NULL",
        '4,"NULL",0,1e+20,2025-01-01 00:00:00+00,    ,NULL',
    ),
    "bom": BOM.encode() + lines(*PLAIN),
    # The line break inside the quoted text stays a bare LF: it is the value's.
    "crlf": lines(*PLAIN, end="\r\n"),
    "guard": lines(
        PLAIN[0],
        f"1,{GUARDED},-5,1.5,2025-03-30 00:30:00+00,'=ab ,+1",
        *PLAIN[2:],
    ),
    "comma": lines(
        "id;name;amount;ratio;at;code;mood",
        f"1;{HYPERLINK};-5;1,5;2025-03-30 00:30:00+00;=ab ;+1",
        f"2;{GRUSS};1234,5;-0,25;2025-03-30 01:30:00+00;ok  ;sad",
        "3;;;;;;",
        "4;NULL;0;1e+20;2025-01-01 00:00:00+00;    ;",
    ),
    "excel": BOM.encode()
    + lines(
        "id;name;amount;ratio;at;code;mood",
        f"1;{GUARDED};-5;1.5;2025-03-30 00:30:00+00;'=ab ;+1",
        f"2;{GRUSS};1234.5;-0.25;2025-03-30 01:30:00+00;ok  ;sad",
        "3;;;;;;",
        "4;NULL;0;1e+20;2025-01-01 00:00:00+00;    ;",
        end="\r\n",
    ),
    "zurich": lines(
        PLAIN[0],
        f"1,{HYPERLINK},-5,1.5,2025-03-30 01:30:00+01,=ab ,+1",
        f"2,{GRUSS},1234.5,-0.25,2025-03-30 03:30:00+02,ok  ,sad",
        "3,,,,,,",
        "4,NULL,0,1e+20,2025-01-01 01:00:00+01,    ,",
    ),
    "all": BOM.encode()
    + lines(
        "Name;amount;Zeit;id",
        f"{GUARDED};-5;2025-03-30 01:30:00+01;1",
        f"{GRUSS};1234,5;2025-03-30 03:30:00+02;2",
        "-;-;-;3",
        "NULL;0;2025-01-01 01:00:00+01;4",
        end="\r\n",
    ),
}
# Compared with COPY itself given the same delimiter.
DELIMITERS = {"semicolon": ";", "tab": "\t", "pipe": "|"}
FAILING = ("unknown", "badnull", "badcomma")
FORMATS = ("csv", "csv.gz", "csv.zst", "zip")


async def copy_with(dsn: str, query: str, delimiter: str) -> bytes:
    """What COPY writes for ``query`` with ``delimiter``, as a reference."""
    conn = await asyncpg.connect(dsn)
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    try:
        await conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'")
        await conn.copy_from_query(
            query, output=sink, format="csv", header=True, delimiter=delimiter
        )
    finally:
        await conn.close()
    return b"".join(chunks)


async def test_each_csv_option_alone_and_combined_shapes_the_file(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    await pool.execute(ITEMS)
    defined = definitions(QUERY.format(owner=":owner"), KINDS)
    jobs = [(kind, fmt) for kind in KINDS for fmt in FORMATS]
    outcomes = await run_jobs(s3_endpoint, s3_bucket, dsn, pool, defined, jobs)

    direct = QUERY.format(owner="'alice'")
    copy, _ = await direct_export(dsn, direct)
    assert copy == EXPECTED["plain"], "the expectations are COPY's own output"
    expected = dict(EXPECTED)
    for kind, delimiter in DELIMITERS.items():
        expected[kind] = await copy_with(dsn, direct, delimiter)
    for kind in KINDS:
        for fmt in FORMATS:
            outcome = outcomes[kind, fmt]
            if kind in FAILING:
                continue
            assert outcome.row["state"] == "completed", (kind, fmt, outcome.row["error"])
            assert outcome.content(fmt) == expected[kind], (kind, fmt)
            assert outcome.row["row_count"] == 4, (kind, fmt)
            assert outcome.row["rows_written"] == 4, (kind, fmt)
    for fmt in FORMATS:
        unknown = outcomes["unknown", fmt].row
        assert (unknown["state"], unknown["error_kind"]) == ("failed", "invalid_params")
        assert "'nmae'" in unknown["error"]
        assert "'colour'" in unknown["error"]
        assert "'id', 'name', 'amount', 'ratio', 'at', 'code', 'mood'" in unknown["error"]
        assert unknown["attempts"] == 1
        bad_null = outcomes["badnull", fmt].row
        assert (bad_null["state"], bad_null["error_kind"]) == ("failed", "invalid_params")
        assert "options.csv.null" in bad_null["error"]
        bad_comma = outcomes["badcomma", fmt].row
        assert (bad_comma["state"], bad_comma["error_kind"]) == ("failed", "invalid_params")
        assert "options.csv.decimal_comma" in bad_comma["error"]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
async def test_csv_options_leave_json_alone(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, fmt: str
) -> None:
    from tests.support.fixtures_s3 import create_bucket

    await pool.execute(ITEMS)
    kinds = {"plain": Optioned(), "excel": KINDS["excel"], "comma": KINDS["comma"]}
    defined = definitions(QUERY.format(owner=":owner"), kinds)
    bucket = create_bucket(rclone_server)
    outcomes = await run_jobs(rclone_server, bucket, dsn, pool, defined, [(k, fmt) for k in kinds])
    plain = outcomes["plain", fmt].body
    assert b"HYPERLINK" in plain
    for kind in kinds:
        assert outcomes[kind, fmt].row["state"] == "completed"
        assert outcomes[kind, fmt].body == plain, kind
