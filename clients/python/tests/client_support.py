"""What the client's tests share besides fixtures: the daemon they run against, and
a reader of its bucket that is not the client."""

from __future__ import annotations

from dataclasses import dataclass

import botocore.session

from tests.support.fixtures_s3 import S3Endpoint, botocore_config


@dataclass(frozen=True)
class Exportd:
    """The running daemon: its API, its queue database, its bucket."""

    url: str
    dsn: str
    bucket: str
    s3: S3Endpoint


def stored_object(exportd: Exportd, key: str) -> bytes:
    """The object ``key`` of the daemon's bucket, read with botocore."""
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=exportd.s3.url,
        region_name="us-east-1",
        aws_access_key_id=exportd.s3.access_key,
        aws_secret_access_key=exportd.s3.secret_key,
        config=botocore_config(),
    )
    try:
        body: bytes = client.get_object(Bucket=exportd.bucket, Key=key)["Body"].read()
    finally:
        client.close()
    return body
