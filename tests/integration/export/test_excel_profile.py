"""The ``excel`` profile's file as a spreadsheet reads it: LibreOffice (headless) opens
the CSV a job wrote (UTF-8 with a BOM, ';', CRLF, the formula guard, a decimal comma)
and writes back what it read, which must be the columns and values of the table, with
the OWASP payloads as text and the numbers as numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
from pathlib import Path

import asyncpg
import pytest

from exportd.definitions.options.model import CsvOptions, JobOptions
from tests.support.fixtures_s3 import S3Endpoint
from tests.support.option_kinds import Optioned, definitions, run_jobs

CELLS = r"""
CREATE TABLE cells (id int PRIMARY KEY, body text, amount numeric, ratio float8);
INSERT INTO cells VALUES
  (1, '=HYPERLINK("http://evil","x")', -5, 0.5),
  (2, '+cmd|'' /C calc''!A0', 1.5, -0.25),
  (3, '-2+3', -0.25, 1e-3),
  (4, '@SUM(1+1)*cmd|'' /C calc''!A0', 0, 2),
  (5, E'\t=1+1', 1234.5, 3),
  (6, E'\r=1+1', 2, 4),
  (7, 'Grüße; 🎉 ü', 3, 5),
  (8, E'Zeile eins\nZeile zwei; drei', 4, 6),
  (9, 'plain text', 5, 7);
"""
QUERY = "SELECT id, body, amount, ratio FROM cells WHERE :owner <> '' ORDER BY id"
EXCEL = JobOptions(
    csv=CsvOptions(
        profile="excel",
        delimiter=";",
        bom=True,
        line_terminator="\r\n",
        formula_guard=True,
        decimal_comma=True,
    )
)
# LibreOffice's CSV filter options: import as ';', '"', UTF-8 (76), from line 1, German
# number reading (1031: ',' is the decimal mark); export as ',', '"', UTF-8, every text
# cell quoted, so that a number (unquoted) tells itself from a text.
IMPORT = "CSV:59,34,76,1,,1031"
EXPORT = "csv:Text - txt - csv (StarCalc):44,34,76,1,,1033,true,true"
EXPECTED: list[list[object]] = [
    ["id", "body", "amount", "ratio"],
    [1.0, '\'=HYPERLINK("http://evil","x")', -5.0, 0.5],
    [2.0, "'+cmd|' /C calc'!A0", 1.5, -0.25],
    [3.0, "'-2+3", -0.25, 0.001],
    [4.0, "'@SUM(1+1)*cmd|' /C calc'!A0", 0.0, 2.0],
    [5.0, "'\t=1+1", 1234.5, 3.0],
    # LibreOffice reads a line break inside a cell, CR included, as LF.
    [6.0, "'\n=1+1", 2.0, 4.0],
    [7.0, "Grüße; 🎉 ü", 3.0, 5.0],
    [8.0, "Zeile eins\nZeile zwei; drei", 4.0, 6.0],
    [9.0, "plain text", 5.0, 7.0],
]


async def libreoffice_reads(path: Path, profile: Path) -> list[list[object]]:
    """The cells LibreOffice reads from the CSV at ``path``: numbers as floats, text as
    str."""
    out = path.parent / "read"
    process = await asyncio.create_subprocess_exec(
        "soffice",
        "--headless",
        f"-env:UserInstallation={profile.as_uri()}",
        f"--infilter={IMPORT}",
        "--convert-to",
        EXPORT,
        "--outdir",
        str(out),
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(process.communicate(), 180)
    text = (out / path.name).read_text(encoding="utf-8")
    return [
        list(row) for row in csv.reader(io.StringIO(text, newline=""), quoting=csv.QUOTE_NONNUMERIC)
    ]


@pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice (libreoffice-calc)")
async def test_libreoffice_reads_the_excel_profiles_columns_and_values(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await pool.execute(CELLS)
    defined = definitions(QUERY, {"sheet": Optioned(EXCEL)})
    outcomes = await run_jobs(s3_endpoint, s3_bucket, dsn, pool, defined, [("sheet", "csv")])
    outcome = outcomes["sheet", "csv"]
    assert outcome.row["state"] == "completed", outcome.row["error"]
    body = outcome.body
    assert body.startswith(b"\xef\xbb\xbfid;body;amount;ratio\r\n")
    assert body.count(b"\xef\xbb\xbf") == 1
    path = tmp_path / "sheet.csv"
    path.write_bytes(body)
    cells = await libreoffice_reads(path, tmp_path / "profile")
    assert cells == EXPECTED
