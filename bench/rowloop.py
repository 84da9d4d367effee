"""The hand-written alternative: fetch rows in Python, csv.writer, upload.

What an application's background job typically does: iterate a server-side
cursor, write each row with csv.writer into a temporary file, then upload the
file with boto3. Run as a separate process by bench/csv_export.py.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import tempfile

import asyncpg
import boto3
from botocore.config import Config


async def dump(dsn: str, query: str, path: str) -> int:
    conn = await asyncpg.connect(dsn)
    rows = 0
    try:
        # Blocking writes on the loop: what the hand-written job this stands for does.
        with open(path, "w", newline="", encoding="utf-8") as out:  # noqa: ASYNC230
            writer = csv.writer(out)
            async with conn.transaction():
                cursor = conn.cursor(query, prefetch=10_000)
                header_written = False
                async for record in cursor:
                    if not header_written:
                        writer.writerow(record.keys())
                        header_written = True
                    writer.writerow(record.values())
                    rows += 1
    finally:
        await conn.close()
    return rows


def main() -> None:
    dsn, query, bucket, key = sys.argv[1:5]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.csv")
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
