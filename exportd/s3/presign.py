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
against both S3 servers, which verify the signature. ``open_presigner`` asks
botocore at start-up; ``download_signer`` signs a job's download URL with the
``Content-Disposition`` that names its file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qs, quote, urlsplit

from aiobotocore.session import get_session

from exportd.errors import ErrorKind, ExportError
from exportd.s3.causes import classify_s3_error
from exportd.s3.client import S3Client, request_deadline
from exportd.settings.model import Settings

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


# Characters RFC 5987 allows unencoded in an ext-value ("attr-char"); quote()
# already keeps letters, digits and "_.-~".
_ATTR_CHAR_EXTRA = "!#$&+^`|"


def _ascii_fallback(filename: str) -> str:
    # Decompose so accented letters keep their base letter ("Übersicht" becomes
    # "Ubersicht"), then replace whatever is still outside printable ASCII, and
    # the two characters a quoted-string cannot hold as they are.
    decomposed = unicodedata.normalize("NFKD", filename)
    out = []
    for char in decomposed:
        if unicodedata.combining(char):
            continue
        if not (" " <= char <= "~") or char in '"\\':
            out.append("_")
        else:
            out.append(char)
    return "".join(out) or "download"


def content_disposition(filename: str) -> str:
    """A ``Content-Disposition: attachment`` value that names the file.

    ``filename*`` appears only when the plain ``filename`` cannot say the same
    thing: every current browser reads ``filename*`` when present, but it is
    the rarely exercised branch of older clients and download tools, so plain
    ASCII names are sent in the one form everything understands.
    """
    fallback = _ascii_fallback(filename)
    value = f'attachment; filename="{fallback}"'
    if filename and fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe=_ATTR_CHAR_EXTRA)}"
    return value


async def open_presigner(settings: Settings, client: S3Client) -> Presigner:
    """A ``Presigner`` for the settings' bucket, fixed by one botocore presign now."""
    bucket = settings.bucket()
    try:
        probe = await client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": PROBE_KEY}, ExpiresIn=60
        )
    except Exception as exc:
        raise classify_s3_error(exc, operation="GetObject", bucket=bucket) from exc
    endpoint = Endpoint.from_probe(str(probe))
    if settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None:
        fixed = Credentials(
            settings.s3_access_key_id.get_secret_value(),
            settings.s3_secret_access_key.get_secret_value(),
        )

        async def explicit() -> Credentials:
            return fixed

        return Presigner(endpoint, explicit)
    # The standard chain, as the client uses it: role credentials rotate, so
    # each URL asks for the current ones (cached by botocore until they expire).
    seconds = request_deadline(client)
    try:
        async with asyncio.timeout(seconds):
            chain = await get_session().get_credentials()
    except Exception as exc:
        raise classify_s3_error(exc, operation="GetObject", bucket=bucket) from exc
    if chain is None:
        raise ExportError(
            ErrorKind.ACCESS_DENIED,
            "no AWS credentials found (environment, shared files, container or instance "
            "role); set EXPORTD_S3_ACCESS_KEY_ID and EXPORTD_S3_SECRET_ACCESS_KEY",
        )

    async def current() -> Credentials:
        # A refresh may ask a metadata service or STS, which can hang too.
        try:
            async with asyncio.timeout(seconds):
                frozen = await chain.get_frozen_credentials()
        except Exception as exc:
            raise classify_s3_error(exc, operation="GetObject", bucket=bucket) from exc
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return Presigner(endpoint, current)


def download_signer(presigner: Presigner) -> Callable[[str, str, timedelta], Awaitable[str]]:
    """``sign(key, filename, lifetime)`` for ``api.views.with_download``: a URL that makes
    browsers save the object as ``filename``."""

    async def sign(key: str, filename: str, lifetime: timedelta) -> str:
        return await presigner.presign(
            key,
            expires_seconds=int(lifetime.total_seconds()),
            now=datetime.now(UTC),
            query={"response-content-disposition": content_disposition(filename)},
        )

    return sign
