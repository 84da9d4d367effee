"""The Standard Webhooks signature: pure functions of the secrets, the id, the time
and the body.

A secret is ``whsec_`` followed by base64 of 24 to 64 random bytes (the
specification's range). ``EXPORTD_WEBHOOK_SECRET`` may hold several, separated
by spaces, so that a secret can be rotated: every delivery is signed with each,
and the receiver accepts any signature it can verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


class SecretError(ValueError):
    """A secret that cannot be used; the message never quotes it."""


def decode_secrets(text: str) -> list[bytes]:
    """The keys of space-separated ``whsec_<base64>`` secrets, in order.

    Raises ``SecretError`` for none, a missing prefix, bad base64 or a key
    outside 24..64 bytes, naming the secret by its position only.
    """
    tokens = text.split()
    if not tokens:
        raise SecretError("holds no secret (expected whsec_ followed by base64)")
    keys = []
    for position, token in enumerate(tokens, start=1):
        which = f"secret {position} of {len(tokens)}"
        if not token.startswith(SECRET_PREFIX):
            raise SecretError(f"{which} does not start with {SECRET_PREFIX}")
        body = token[len(SECRET_PREFIX) :]
        try:
            # Padding is optional in the wild; strict about the alphabet.
            key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SecretError(f"{which} is not base64 after {SECRET_PREFIX}") from None
        if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
            raise SecretError(
                f"{which} decodes to {len(key)} bytes; use {SECRET_MIN_BYTES} to "
                f"{SECRET_MAX_BYTES} random bytes"
            )
        keys.append(key)
    return keys


def signature(keys: list[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` of
    ``{message_id}.{timestamp}.{body}`` under each key, space-separated.

    ``timestamp`` is the ``webhook-timestamp`` header's value (unix seconds).
    """
    if not keys:
        raise ValueError("no key to sign with")
    signed = b"%s.%d.%s" % (message_id.encode("ascii"), timestamp, body)
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
        for key in keys
    )


def message_id(delivery_id_hex: str) -> str:
    """The ``webhook-id`` of a delivery: ``msg_`` and its id's 32 hex digits."""
    return f"msg_{delivery_id_hex}"
