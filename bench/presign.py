"""Presigning a download URL: botocore's generate_presigned_url against exportd's signer.

Both sign the same URL (same key, file name and lifetime) for the same bucket,
one after the other in one process, with no network involved; the table gives
the CPU time per URL and the ratio. The two URLs are checked to carry the same
signature when made in the same second.

    .venv/bin/python bench/presign.py --urls 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exportd.s3.client import open_s3_client  # noqa: E402
from exportd.s3.presign import (  # noqa: E402
    content_disposition,
    download_signer,
    open_presigner,
)
from exportd.settings.model import Settings  # noqa: E402

KEY = "exports/user_123/0b6c2f9e-4a77-4d51-9d0e-6f1f3e2a9b10/orders-since-2025-01-01.csv"
FILENAME = "orders-since-2025-01-01.csv"
LIFETIME = timedelta(hours=1)


async def main(urls: int) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        s3_bucket="exports-bench",
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_access_key_id="AKIDEXAMPLE",
        s3_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(settings, stack)
        sign = download_signer(await open_presigner(settings, client))

        async def botocore_url() -> str:
            url = await client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": "exports-bench",
                    "Key": KEY,
                    "ResponseContentDisposition": content_disposition(FILENAME),
                },
                ExpiresIn=int(LIFETIME.total_seconds()),
            )
            return str(url)

        async def exportd_url() -> str:
            return await sign(KEY, FILENAME, LIFETIME)

        while True:  # the same second, so that both sign the same string
            second = datetime.now(UTC).replace(microsecond=0)
            theirs, ours = await botocore_url(), await exportd_url()
            if datetime.now(UTC).replace(microsecond=0) == second:
                break
        assert parse_qs(urlsplit(theirs).query) == parse_qs(urlsplit(ours).query)

        results = []
        for name, make in (
            ("botocore generate_presigned_url", botocore_url),
            ("exportd signer (exportd/presign.py)", exportd_url),
        ):
            for _ in range(200):
                await make()
            started = time.process_time()
            for _ in range(urls):
                await make()
            results.append((name, (time.process_time() - started) / urls * 1e6))
    base = results[0][1]
    print(f"{urls:,} URLs each, CPU time per URL\n")
    print("| signer | µs per URL | URLs per CPU second | time vs botocore |")
    print("|---|---:|---:|---:|")
    for name, micros in results:
        print(f"| {name} | {micros:.1f} | {1e6 / micros:,.0f} | {micros / base:.3f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=5000)
    asyncio.run(main(parser.parse_args().urls))
