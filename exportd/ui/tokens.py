"""The dashboard's tokens: what a setting's text means, and how a presented token
is matched (in constant time) without ever being shown.

Format of ``EXPORTD_UI_TOKENS`` and ``EXPORTD_UI_ADMIN_TOKENS``: entries
separated by commas, each ``token`` (every owner's jobs) or ``token@owner``
(that owner's alone; the owner may itself hold ``@``, as an e-mail address
does: the token ends at the first one). A token is what a person pastes into
a login form: 16 to 256 printable ASCII characters, no space, comma or ``@``.

A token is known to logs and pages only by its fingerprint: the first 12 hex
digits of its SHA-256, which says which token acted without letting anyone
log in with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from exportd import limits

TOKEN_MIN_BYTES = 16
TOKEN_MAX_BYTES = 256
# A login form's field larger than this is refused before any compare.
PRESENTED_MAX_BYTES = TOKEN_MAX_BYTES
_FINGERPRINT_HEX = 12


class TokenError(ValueError):
    """A setting's token entry that cannot be used; the message names the setting
    and the entry's position, never its text."""


@dataclass(frozen=True)
class UiToken:
    """One dashboard token: may it act (``admin``), and whose jobs it sees (``owner``,
    None for every owner's)."""

    secret: bytes = field(repr=False)
    admin: bool
    owner: str | None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    @property
    def role(self) -> str:
        return "admin" if self.admin else "read"


def fingerprint(secret: bytes) -> str:
    """12 hex digits of SHA-256: names a token in logs and pages, and cannot open a session."""
    return hashlib.sha256(secret).hexdigest()[:_FINGERPRINT_HEX]


def _token_problem(token: str) -> str | None:
    size = len(token.encode("utf-8", "surrogateescape"))
    if not TOKEN_MIN_BYTES <= size <= TOKEN_MAX_BYTES:
        return f"must be {TOKEN_MIN_BYTES} to {TOKEN_MAX_BYTES} bytes long (it is {size})"
    if any(not 0x21 <= ord(c) <= 0x7E for c in token):
        return "must be printable ASCII without spaces"
    return None


def parse_tokens(text: str, *, admin: bool, setting: str) -> list[UiToken]:
    """The tokens of one setting's text (empty text: none).

    Raises ``TokenError`` naming ``setting`` and the entry's number for a token
    of the wrong size or characters, or an owner that could not be a job's
    (``limits.identifier_problem``).
    """
    found: list[UiToken] = []
    for number, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        token, at, owner = entry.partition("@")
        if problem := _token_problem(token):
            raise TokenError(f"{setting}: token {number} {problem}")
        if at and (problem := limits.identifier_problem(owner, limits.OWNER_MAX_BYTES)):
            raise TokenError(f"{setting}: the owner of token {number} {problem}")
        found.append(UiToken(token.encode(), admin, owner if at else None))
    return found


def match(presented: str, tokens: Iterable[UiToken]) -> UiToken | None:
    """The token ``presented`` is, or None. Compared with every token, in constant
    time, so that timing tells nothing of which one or how much of one matched:
    the compares are of SHA-256 digests, all of one length, since
    ``hmac.compare_digest`` between texts of different lengths tells the
    lengths. An oversized or undecodable text is simply no token."""
    raw = presented.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > PRESENTED_MAX_BYTES:
        return None
    digest = hashlib.sha256(raw).digest()
    found: UiToken | None = None
    for token in tokens:
        if hmac.compare_digest(digest, hashlib.sha256(token.secret).digest()) and found is None:
            found = token
    return found
