"""The Standard Webhooks signature, checked against the reference library."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from exportd.webhooks.sender import headers
from exportd.webhooks.signing import SecretError, decode_secrets, message_id, signature
from tests.support.webhook_receiver import new_secret

BODY = '{"type":"export.completed","data":{"owner":"é ✓"}}'.encode()


def test_the_reference_library_verifies_each_rotated_secret() -> None:
    old, new = new_secret(24), new_secret(64)
    keys = decode_secrets(f"  {old}   {new} ")
    now = int(datetime.now(UTC).timestamp())
    sent = headers(keys, "msg_abc", now, BODY)
    assert sent["webhook-id"] == "msg_abc"
    assert sent["webhook-timestamp"] == str(now)
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(BODY, sent) == {
            "type": "export.completed",
            "data": {"owner": "é ✓"},
        }
    # Each signature alone is the library's own.
    for secret, part in zip((old, new), sent["webhook-signature"].split(" "), strict=True):
        expected = Webhook(secret).sign("msg_abc", datetime.fromtimestamp(now, UTC), BODY.decode())
        assert part == expected


def test_a_changed_body_id_or_time_does_not_verify() -> None:
    secret = new_secret()
    keys = decode_secrets(secret)
    now = int(datetime.now(UTC).timestamp())
    sent = headers(keys, "msg_1", now, BODY)
    for tampered in (
        {**sent, "webhook-id": "msg_2"},
        {**sent, "webhook-timestamp": str(now - 1)},
    ):
        with pytest.raises(Exception, match="signature"):
            Webhook(secret).verify(BODY, tampered)
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(BODY + b" ", sent)
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(BODY, sent)


def test_signature_is_deterministic_and_needs_a_key() -> None:
    key = bytes(range(32))
    assert signature([key], "msg_x", 1700000000, b"{}") == signature(
        [key], "msg_x", 1700000000, b"{}"
    )
    assert signature([key], "msg_x", 1700000000, b"{}").startswith("v1,")
    with pytest.raises(ValueError, match="no key"):
        signature([], "msg_x", 1, b"{}")
    assert message_id("ab" * 16) == "msg_" + "ab" * 16


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "holds no secret"),
        ("   ", "holds no secret"),
        ("c2VjcmV0", "does not start with whsec_"),
        ("whsec_not*base64", "not base64"),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "23 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "65 bytes"),
        (f"{'whsec_' + base64.b64encode(b'k' * 32).decode()} nope", "secret 2 of 2"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(text: str, problem: str) -> None:
    with pytest.raises(SecretError, match=problem) as refused:
        decode_secrets(text)
    for token in text.split():
        assert token.removeprefix("whsec_") not in str(refused.value) or len(token) < 7


def test_unpadded_base64_is_taken() -> None:
    key = b"k" * 25
    unpadded = base64.b64encode(key).decode().rstrip("=")
    assert decode_secrets("whsec_" + unpadded) == [key]
