"""Dashboard sessions: a signed cookie made at login, and the CSRF token tied to it.

The cookie is ``base64url(JSON).base64url(HMAC-SHA256)``; its JSON holds the
token's fingerprint, role and owner, its expiry (epoch seconds) and a random
session id. Nothing in it is secret, and nothing in it can be changed
without the key.

The key is derived from every configured token (``session_key``): daemons
with the same settings accept each other's sessions (behind a load
balancer), and changing the tokens ends every session. A session is also
checked against the tokens at each request (``Session.still_valid``), so
removing one token ends its sessions at once.

The CSRF token of a session is an HMAC of its id under the same key: every
action form carries it, and a form forged elsewhere, which cannot read it,
is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from exportd.ui.tokens import UiToken

COOKIE_NAME = "exportd_ui"
# A cookie over this is no session of ours: nothing is decoded or verified.
# Ours is at most about 850: an owner of OWNER_MAX_BYTES, each byte a quote
# that JSON doubles, in base64.
COOKIE_MAX_BYTES = 1024
_KEY_LABEL = b"exportd-ui-session-v1"


@dataclass(frozen=True)
class Session:
    """Who a request is: the token (by fingerprint), what it may do, whose jobs it sees."""

    fingerprint: str
    admin: bool
    owner: str | None
    expires: int
    sid: str

    @property
    def role(self) -> str:
        return "admin" if self.admin else "read"

    def still_valid(self, tokens: Iterable[UiToken]) -> bool:
        """Whether a configured token still grants exactly this session."""
        return any(
            t.fingerprint == self.fingerprint and t.admin == self.admin and t.owner == self.owner
            for t in tokens
        )


def session_key(tokens: Iterable[UiToken]) -> bytes:
    """32 bytes: HMAC-SHA256 over the sorted tokens, with their roles and owners."""
    mac = hmac.new(_KEY_LABEL, digestmod=hashlib.sha256)
    for token in sorted(tokens, key=lambda t: (t.secret, t.admin, t.owner or "")):
        entry = json.dumps([token.secret.decode(), token.admin, token.owner]).encode()
        mac.update(len(entry).to_bytes(4, "big") + entry)
    return mac.digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def new_session(token: UiToken, now: float, ttl_seconds: float) -> Session:
    return Session(
        token.fingerprint, token.admin, token.owner, int(now + ttl_seconds), secrets.token_hex(16)
    )


def encode(session: Session, key: bytes) -> str:
    """The cookie's value."""
    payload = {
        "f": session.fingerprint,
        "a": session.admin,
        "o": session.owner,
        "e": session.expires,
        "s": session.sid,
    }
    # UTF-8, not \u escapes: an owner of 256 bytes in any script then fits
    # COOKIE_MAX_BYTES (escaped, 128 "é" took 768 bytes before base64).
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_mac(key, body)}"


def decode(value: str, key: bytes, now: float) -> Session | None:
    """The session a cookie's value holds, or None: too long, malformed, forged or expired."""
    if len(value) > COOKIE_MAX_BYTES or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(key, body).encode()):
        return None
    try:
        doc = json.loads(_unb64(body))
        session = Session(
            str(doc["f"]),
            doc["a"] is True,
            None if doc["o"] is None else str(doc["o"]),
            int(doc["e"]),
            str(doc["s"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return session if session.expires > now else None


def csrf_token(session: Session, key: bytes) -> str:
    """The CSRF token of ``session``: every form of the session carries it."""
    return _mac(key, f"csrf:{session.sid}")


def csrf_ok(session: Session, key: bytes, presented: str) -> bool:
    """Whether a form's CSRF token is its session's (constant time)."""
    if len(presented) > 128:
        return False
    expected = csrf_token(session, key).encode()
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected)
