"""Our SigV4 query signing against botocore's, parameter for parameter.

Against the S3 servers (rclone checks signatures) in test_upload.py."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from exportd.s3.presign import PROBE_KEY, Credentials, Endpoint, content_disposition, sign_get


@functools.cache
def botocore_client(
    endpoint_url: str | None, region: str, path_style: bool, token: str | None
) -> Any:
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "virtual"},
        ),
    )


DEPLOYMENTS = [
    pytest.param("http://127.0.0.1:9000", "us-east-1", True, None, id="local-path-style"),
    pytest.param("https://minio.example:443", "eu-central-1", True, None, id="default-port"),
    pytest.param(None, "eu-west-1", False, None, id="aws-virtual-hosted"),
    pytest.param(None, "us-east-1", False, "session/token+=", id="aws-with-session-token"),
]

KEYS = st.text(
    alphabet=st.characters(
        min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc")
    ),
    min_size=1,
    max_size=60,
).map(lambda s: "exports/" + s.strip("/"))


@pytest.mark.parametrize(("endpoint_url", "region", "path_style", "token"), DEPLOYMENTS)
@settings(max_examples=25, deadline=None)
@given(key=KEYS, filename=st.text(min_size=1, max_size=30), expires=st.integers(1, 604800))
def test_urls_equal_botocores(
    endpoint_url: str | None,
    region: str,
    path_style: bool,
    token: str | None,
    key: str,
    filename: str,
    expires: int,
) -> None:
    client = botocore_client(endpoint_url, region, path_style, token)
    bucket = "exportd-bucket"
    disposition = content_disposition(filename)
    theirs = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key, "ResponseContentDisposition": disposition},
        ExpiresIn=expires,
    )
    probe = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": PROBE_KEY})
    signed_at = parse_qs(urlsplit(theirs).query)["X-Amz-Date"][0]
    ours = sign_get(
        Endpoint.from_probe(probe),
        key,
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
        expires_seconds=expires,
        now=datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
        query={"response-content-disposition": disposition},
    )
    a, b = urlsplit(ours), urlsplit(theirs)
    assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
    assert parse_qs(a.query) == parse_qs(b.query)
