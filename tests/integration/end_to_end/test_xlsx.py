"""xlsx end to end on both S3 servers: each workbook downloaded through the API, read
back with openpyxl and with LibreOffice, and compared cell by cell, value and type,
with the same query run directly."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from exportd import database
from exportd.definitions.loader import definitions_from_text
from exportd.definitions.options.model import JobOptions, XlsxPolicy
from exportd.export.formats import XLSX_CONTENT_TYPE
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import download_job, insert_job, wait_for_state
from tests.support.xlsx_reader import libreoffice_sheets, openpyxl_sheets

ZONE = "Europe/Zurich"
AWKWARD = r"""
CREATE TABLE fidelity (
    id integer PRIMARY KEY, owner text NOT NULL, note text, amount numeric,
    at timestamptz, day date, flag boolean, tags text[], doc jsonb, raw bytea,
    big bigint, ratio float8
);
INSERT INTO fidelity VALUES
  (1, 'alice', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, 'alice', 'comma, and "quotes"', 0.1, '2025-03-30 01:30:00+01', '2025-03-30', true,
   ARRAY['a', 'b,c', NULL], '{"k": [1, "two"]}', '\x00ff', 999999999999999, 1.5),
  (3, 'alice', E'line one\nline two\r\nline three', 123456789012345678901234567890.000000001,
   '2025-03-30 03:30:00+02', '0001-01-01', false, '{}', 'null', '', 1234567890123456789,
   'NaN'),
  (4, 'alice', 'Grüße ☃ 日本語 🎉', -0.0000000001, '2025-01-01 00:00:00+05:45', '2025-01-01',
   NULL, ARRAY['é'], '"text"', '\xdeadbeef', -9223372036854775808, -2.5e-300),
  (5, 'alice', '', 1e-20, 'infinity', 'infinity', true, NULL, '{}', NULL, 0, 'Infinity'),
  (6, 'alice', '=HYPERLINK("http://x","y")', 5, '2024-10-27 02:30:00+01', '1900-03-01',
   true, NULL, NULL, NULL, 1000000000000000000, 0),
  (7, 'alice', E'<script>alert(1)</script> & \x01\x1f bell', -5, '2024-10-27 02:30:00+02',
   '9999-12-31', false, NULL, NULL, NULL, NULL, NULL),
  (8, 'alice', '+cmd|'' /C calc''!A0', NULL, '1999-12-31 23:59:59.999-08', '2000-02-29',
   NULL, NULL, NULL, NULL, NULL, NULL),
  (9, 'bob', 'not alice''s row', 1, now(), now()::date, true, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE second (id integer, owner text, label text);
INSERT INTO second SELECT g, 'alice', 'row ' || g FROM generate_series(1, 7) AS g;
"""
QUERY = "SELECT * FROM fidelity WHERE owner = {owner} ORDER BY id"
DEFINITIONS = f"""
[kinds.things]
query = "{QUERY.format(owner=":owner")}"

[kinds.nothing]
query = "SELECT id, note, at FROM fidelity WHERE owner = :owner AND false"

[kinds.pair.datasets.things]
query = "{QUERY.format(owner=":owner")}"
[kinds.pair.datasets.second]
query = "SELECT id, label FROM second WHERE owner = :owner ORDER BY id"

[kinds.split]
query = "SELECT id, label FROM second WHERE owner = :owner ORDER BY id"

[kinds.labelled]
query = "SELECT id, label FROM second WHERE owner = :owner ORDER BY id"

[kinds.strict]
query = "SELECT repeat('x', 40000) AS long WHERE :owner <> ''"

[kinds.squares]
handler = "tests.support.custom_kinds:squares"
[kinds.squares.params.upto]
type = "integer"
"""
EXCEL_FIRST_DAY = date(1900, 3, 1)


def definitions() -> Any:
    loaded = definitions_from_text(DEFINITIONS)
    kinds = dict(loaded)
    kinds["split"] = dataclasses.replace(kinds["split"], options=JobOptions(split_rows=3))
    kinds["labelled"] = dataclasses.replace(
        kinds["labelled"],
        options=JobOptions(columns=("label", "id")),
        labels={"label": "The label", "id": "Number"},
    )
    kinds["strict"] = dataclasses.replace(kinds["strict"], xlsx=XlsxPolicy(long_text="fail"))
    return type(loaded)(kinds.values())


@pytest.fixture
async def awkward(conn: asyncpg.Connection) -> None:
    await conn.execute(AWKWARD)


async def direct(
    dsn: str, query: str
) -> tuple[list[asyncpg.Record], list[list[str | None]], list[str]]:
    """The rows of ``query`` in the job's time zone: values, their texts, column types."""
    conn = await database.connect(dsn)
    try:
        await conn.execute(
            f"SET TimeZone = '{ZONE}'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1"
        )
        rows = await conn.fetch(query)
        types = [a.type.name for a in (await conn.prepare(query)).get_attributes()]
        names = ", ".join(f"t.{a.name}::text" for a in (await conn.prepare(query)).get_attributes())
        texts = [list(r) for r in await conn.fetch(f"SELECT {names} FROM ({query}) AS t")]
    finally:
        await conn.close()
    return rows, texts, types


def fits(text: str) -> bool:
    number = Decimal(text)
    digits = len(text.replace("-", "").replace(".", "").strip("0"))
    return number.is_finite() and (
        number == 0
        or (Decimal("1e-307") <= abs(number) <= Decimal("9.99999999999999e307") and digits <= 15)
    )


def clean(text: str) -> str:
    """Text as the workbook holds it: XML's invalid characters replaced."""
    return "".join("\ufffd" if ord(c) < 32 and c not in "\t\n\r" else c for c in text)


def expected(value: Any, text: str | None, type_name: str) -> Any:
    """What openpyxl must read for one value."""
    if text is None:  # NULL (a json 'null' decodes to None too, and is text)
        return None
    if type_name in ("int2", "int4"):
        return value
    if type_name in ("int8", "numeric"):
        return Decimal(text) if fits(text) else text
    if type_name == "float8":
        return value if math.isfinite(value) else text
    if type_name == "bool":
        return value
    if type_name == "date":
        if text != "infinity" and value >= EXCEL_FIRST_DAY:
            return datetime(value.year, value.month, value.day)
        return text
    if type_name == "timestamptz":
        if text != "infinity" and value.year >= 1900:
            return value.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)
        return text
    return clean(text)


def check_openpyxl(
    got: list[list[Any]],
    rows: list[asyncpg.Record],
    texts: list[list[str | None]],
    types: list[str],
) -> None:
    assert got[0] == list(rows[0].keys()) if rows else True
    assert len(got) - 1 == len(rows)
    for line, row, row_texts in zip(got[1:], rows, texts, strict=True):
        for cell, value, text, type_name in zip(line, row.values(), row_texts, types, strict=True):
            want = expected(value, text, type_name)
            if isinstance(want, Decimal):
                assert isinstance(cell, int | float), (cell, want)
                assert not isinstance(cell, bool), (cell, want)
                assert Decimal(repr(cell)) == want or cell == float(want), (cell, want)
            elif isinstance(want, datetime):
                assert isinstance(cell, datetime), (cell, want)
                assert abs((cell - want).total_seconds()) < 0.001, (cell, want)
            elif isinstance(want, float):
                assert isinstance(cell, int | float)  # Excel has one type of number
                assert cell == want
            else:
                assert type(cell) is type(want), (cell, want, type_name)
                assert cell == want, (cell, want, type_name)


def shown(want: Any) -> str:
    """What LibreOffice shows (and writes as CSV) for a cell openpyxl reads as ``want``."""
    if want is None:
        return ""
    if isinstance(want, bool):
        return "TRUE" if want else "FALSE"
    if isinstance(want, datetime):
        if want.time() == datetime.min.time():
            return want.strftime("%Y-%m-%d")  # a date's format shows no time (a date column)
        return want.strftime("%Y-%m-%d %H:%M:%S")
    return str(want)


def check_libreoffice(
    got: list[list[str]],
    rows: list[asyncpg.Record],
    texts: list[list[str | None]],
    types: list[str],
) -> None:
    assert len(got) - 1 == len(rows)
    if rows:
        assert got[0] == list(rows[0].keys())
    for line, row, row_texts in zip(got[1:], rows, texts, strict=True):
        for cell, value, text, type_name in zip(line, row.values(), row_texts, types, strict=True):
            want = expected(value, text, type_name)
            if isinstance(want, Decimal | int | float) and not isinstance(want, bool):
                assert math.isclose(float(cell), float(want), rel_tol=1e-9), (cell, want)
            elif isinstance(want, datetime) and type_name == "timestamptz":
                assert cell == want.strftime("%Y-%m-%d %H:%M:%S"), (cell, want)
            elif isinstance(want, str):
                assert cell.replace("\r\n", "\n") == want.replace("\r\n", "\n"), (cell, want)
            else:
                assert cell == shown(want), (cell, want, type_name)


@pytest.mark.usefixtures("awkward")
async def test_xlsx_workbooks_read_back_as_the_query(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, export_timezone=ZONE, **FAST)
    cases = ("things", "nothing", "pair", "split", "labelled", "strict")
    async with running_daemon(settings, definitions()) as daemon:
        jobs = {
            case: await insert_job(pool, owner="alice", kind=case, fmt="xlsx") for case in cases
        }
        squares = await insert_job(
            pool, owner="alice", kind="squares", params={"upto": 4}, fmt="xlsx"
        )
        rows = {
            case: await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
            for case, job_id in [*jobs.items(), ("squares", squares)]
        }
        bodies = {}
        for case, job_id in [*jobs.items(), ("squares", squares)]:
            if rows[case]["state"] == "completed":
                body, headers = await download_job(daemon.api_port, job_id)
                assert headers["Content-Type"] == XLSX_CONTENT_TYPE
                bodies[case] = body

    for case in (*cases[:-1], "squares"):
        assert rows[case]["state"] == "completed", (case, rows[case]["error"])
        assert rows[case]["object_key"].endswith(".xlsx")

    things = direct(dsn, QUERY.format(owner="'alice'"))
    values, texts, types = await things
    # The awkward table, every type: openpyxl and LibreOffice read what the query holds.
    sheets = openpyxl_sheets(bodies["things"])
    assert list(sheets) == ["things"]
    check_openpyxl(sheets["things"], values, texts, types)
    check_libreoffice(
        libreoffice_sheets(bodies["things"], ["things"])["things"], values, texts, types
    )
    assert rows["things"]["row_count"] == len(values) == 8
    by_id = {line[0]: line for line in sheets["things"][1:]}
    # Text is text whatever it starts with; markup is text too.
    assert by_id[6][2] == '=HYPERLINK("http://x","y")'
    assert by_id[7][2] == "<script>alert(1)</script> & \ufffd\ufffd bell"
    assert by_id[7][3] == -5
    # Europe/Zurich across the end of DST: 02:30 twice, an hour apart, as wall time.
    assert by_id[6][4] == by_id[7][4] == datetime(2024, 10, 27, 2, 30)
    assert (by_id[2][4], by_id[3][4]) == (
        datetime(2025, 3, 30, 1, 30),
        datetime(2025, 3, 30, 3, 30),
    )
    # Past 15 significant digits: the exact text, never a rounded number.
    assert by_id[3][3] == "123456789012345678901234567890.000000001"
    assert by_id[3][10] == "1234567890123456789"
    assert by_id[2][10] == 999999999999999

    # An empty result: a valid workbook with its header.
    assert openpyxl_sheets(bodies["nothing"]) == {"nothing": [["id", "note", "at"]]}
    assert libreoffice_sheets(bodies["nothing"], ["nothing"])["nothing"] == [["id", "note", "at"]]

    # Several datasets: a sheet each, in order; the manifest's facts in the properties.
    pair = openpyxl_sheets(bodies["pair"])
    assert list(pair) == ["things", "second"]
    check_openpyxl(pair["things"], values, texts, types)
    assert pair["second"] == [["id", "label"], *[[g, f"row {g}"] for g in range(1, 8)]]
    lo_pair = libreoffice_sheets(bodies["pair"], ["things", "second"])
    check_libreoffice(lo_pair["things"], values, texts, types)
    assert lo_pair["second"][1:] == [[str(g), f"row {g}"] for g in range(1, 8)]
    assert rows["pair"]["row_count"] == 8 + 7

    # split_rows = 3: sheets of at most 3 rows, each with the header.
    split = openpyxl_sheets(bodies["split"])
    assert list(split) == ["split", "split (2)", "split (3)"]
    assert [len(s) - 1 for s in split.values()] == [3, 3, 1]
    assert all(s[0] == ["id", "label"] for s in split.values())
    assert [r[0] for s in split.values() for r in s[1:]] == list(range(1, 8))
    lo_split = libreoffice_sheets(bodies["split"], list(split))
    assert [r[0] for s in lo_split.values() for r in s[1:]] == [str(g) for g in range(1, 8)]
    assert rows["split"]["row_count"] == 7

    # Chosen columns, in the job's order, headed by the kind's labels.
    labelled = openpyxl_sheets(bodies["labelled"])["labelled"]
    assert labelled[0] == ["The label", "Number"]
    assert labelled[1] == ["row 1", 1]

    # A handler's rows: the same typed cells.
    assert openpyxl_sheets(bodies["squares"])["squares"] == [
        ["n", "square", "half", "owner", "blob"],
        *[[n, n * n, n / 2, "alice", "\\x" + bytes([n]).hex()] for n in range(1, 5)],
    ]

    # A cell over Excel's limit where the kind says fail.
    assert (rows["strict"]["state"], rows["strict"]["error_kind"]) == ("failed", "too_large")
    assert "32,767" in rows["strict"]["error"]


@pytest.mark.usefixtures("awkward")
async def test_xlsx_workbook_structure(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    import io

    import openpyxl

    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, definitions()) as daemon:
        job_id = await insert_job(pool, owner="alice", kind="pair", fmt="xlsx")
        row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
        assert row["state"] == "completed", row["error"]
        body, _ = await download_job(daemon.api_port, job_id)
    book = openpyxl.load_workbook(io.BytesIO(body))
    sheet = book["second"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:B8"
    assert sheet["A1"].font.b
    assert sheet["B1"].font.b
    assert sheet.column_dimensions["B"].width >= 10
    assert book["things"]["E3"].number_format == "yyyy\\-mm\\-dd\\ hh:mm:ss"
    facts = {p.name: p.value for p in book.custom_doc_props.props}
    assert facts["exportd.kind"] == "pair"
    assert facts["exportd.job_id"] == str(job_id)
    assert facts["exportd.owner"] == "alice"
    assert json.loads(facts["exportd.sheets"]) == [
        {"sheet": "things", "dataset": "things", "rows": 8},
        {"sheet": "second", "dataset": "second", "rows": 7},
    ]
    assert datetime.fromisoformat(facts["exportd.generated_at"]) <= datetime.now().astimezone()
