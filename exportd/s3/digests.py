"""What a request body carries to prove it arrived whole. Pure, no I/O."""

from __future__ import annotations

import base64
import hashlib


def content_md5(body: bytes | bytearray) -> str:
    """The Content-MD5 header of ``body``: base64 of its MD5 digest (RFC 1864). S3
    refuses a body that does not match it (BadDigest): the check in transit that a
    signed payload would otherwise give."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


class ObjectDigest:
    """The SHA-256 of an object written in parts, in order, and each part's Content-MD5.
    One pass of each hash over every byte, run where the caller runs it (a thread for a
    large part: hashing several MiB takes long enough to delay the event loop)."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()

    def add(self, body: bytes | bytearray) -> str:
        """Append ``body`` to the object's hash; returns ``content_md5(body)``."""
        self._sha256.update(body)
        return content_md5(body)

    def hexdigest(self) -> str:
        """The object's SHA-256 so far, as 64 hex digits."""
        return self._sha256.hexdigest()
