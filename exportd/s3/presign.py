"""Presigned GET URLs (SigV4 query signing) at a tenth of botocore's CPU cost.

botocore takes 210 to 370 µs of CPU to presign one URL, most of it resolving
the endpoint ruleset and running event hooks that give the same answer every
time. At a few thousand job lookups a second that alone would fill a core
(docs/benchmarks.md). What varies per URL is small: the key, the file name,
the lifetime, the time and the credentials. So botocore is asked once, at
start-up, for a URL of a probe key, which fixes everything it decides (scheme,
host, addressing style, the bucket's path, the signing region); each download
URL is then signed here with the standard SigV4 query algorithm.

``sign_get`` is pure; ``Presigner`` adds the credentials of the moment (they
may rotate) and is checked against botocore's own URL in the tests, and
against both S3 servers, which verify the signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qs, quote, urlsplit

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNRESERVED = "-_.~"
_DEFAULT_PORTS = {"http": 80, "https": 443}
PROBE_KEY = "exportd-presign-probe"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where an object's URL starts and how it is signed, as botocore decided."""

    scheme: str
    netloc: str  # as in the URL
    host: str  # as signed: with the port unless it is the scheme's default
    bucket_path: str  # '' for virtual-hosted addressing, '/bucket' for path-style
    region: str

    @classmethod
    def from_probe(cls, url: str) -> Endpoint:
        """The endpoint of a botocore presigned URL for ``PROBE_KEY``."""
        parts = urlsplit(url)
        if not parts.path.endswith("/" + PROBE_KEY) or parts.hostname is None:
            raise ValueError(f"unexpected presigned URL shape: {url}")
        credential = parse_qs(parts.query)["X-Amz-Credential"][0]
        region = credential.split("/")[2]
        host = parts.hostname
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        return cls(parts.scheme, parts.netloc, host, parts.path[: -len(PROBE_KEY) - 1], region)


@lru_cache(maxsize=8)
def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    # Changes once a day: derived once, not four HMACs per URL.
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _encode(text: str) -> str:
    return quote(text, safe=_UNRESERVED)


def sign_get(
    endpoint: Endpoint,
    key: str,
    credentials: Credentials,
    *,
    expires_seconds: int,
    now: datetime,
    query: Mapping[str, str] | None = None,
) -> str:
    """A presigned GET URL of ``key`` with extra (signed) ``query`` parameters.

    ``now`` must be in UTC. Object keys are encoded as S3 expects them in the
    path: every byte but unreserved characters and '/', encoded once.
    """
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    scope = f"{day}/{endpoint.region}/s3/aws4_request"
    path = endpoint.bucket_path + "/" + quote(key, safe="/" + _UNRESERVED)
    params = {
        **(query or {}),
        "X-Amz-Algorithm": _ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires_seconds),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.token:
        params["X-Amz-Security-Token"] = credentials.token
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
    canonical_request = "\n".join(
        ["GET", path, canonical_query, f"host:{endpoint.host}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    string_to_sign = "\n".join(
        [_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signature = hmac.new(
        _signing_key(credentials.secret_key, day, endpoint.region),
        string_to_sign.encode(),
        hashlib.sha256,
    ).hexdigest()
    return (
        f"{endpoint.scheme}://{endpoint.netloc}{path}?{canonical_query}&X-Amz-Signature={signature}"
    )


CredentialSource = Callable[[], Awaitable[Credentials]]


@dataclass(frozen=True)
class Presigner:
    """Signs download URLs for one bucket with the credentials of the moment."""

    endpoint: Endpoint
    credentials: CredentialSource

    async def presign(
        self, key: str, *, expires_seconds: int, now: datetime, query: Mapping[str, str]
    ) -> str:
        creds = await self.credentials()
        return sign_get(
            self.endpoint, key, creds, expires_seconds=expires_seconds, now=now, query=query
        )
