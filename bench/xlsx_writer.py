"""The writer exportd's xlsx is measured against: xlsxwriter in constant-memory mode.

Rows fetched with asyncpg (a server-side cursor, in the job's time zone), each cell
written with the type xlsxwriter gives its Python value (datetimes made naive in
the zone, as Excel holds no offset), the workbook assembled in a temporary
directory, then uploaded with boto3. Run as a separate process by
bench/xlsx_export.py: ``xlsx_writer.py DSN QUERY BUCKET KEY``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import datetime
from decimal import Decimal

import asyncpg
import boto3
import xlsxwriter
from botocore.config import Config


async def dump(dsn: str, query: str, path: str) -> int:
    conn = await asyncpg.connect(dsn, server_settings={"TimeZone": "UTC"})
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": os.path.dirname(path)})
    sheet = book.add_worksheet("rows")
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    bold = book.add_format({"bold": True})
    rows = 0
    try:
        async with conn.transaction():
            cursor = conn.cursor(query, prefetch=10_000)
            async for record in cursor:
                if rows == 0:
                    sheet.write_row(0, 0, list(record.keys()), bold)
                    sheet.freeze_panes(1, 0)
                rows += 1
                for col, value in enumerate(record.values()):
                    if isinstance(value, datetime):
                        sheet.write_datetime(rows, col, value.replace(tzinfo=None), stamp)
                    elif isinstance(value, Decimal):
                        sheet.write_number(rows, col, float(value))
                    elif value is None:
                        continue
                    else:
                        sheet.write(rows, col, value)
        sheet.autofilter(0, 0, rows, len(record) - 1 if rows else 0)
        book.close()
    finally:
        await conn.close()
    return rows


def main() -> None:
    dsn, query, bucket, key = sys.argv[1:5]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.xlsx")
        rows = asyncio.run(dump(dsn, query, path))
        client = boto3.client(
            "s3",
            endpoint_url=os.environ["BENCH_S3_ENDPOINT"],
            region_name="us-east-1",
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        client.upload_file(path, bucket, key)
    print(rows)


if __name__ == "__main__":
    main()
