"""Session cookies and CSRF tokens: signed, expiring, tied to the tokens."""

from __future__ import annotations

import pytest

from exportd import limits
from exportd.ui.sessions import (
    COOKIE_MAX_BYTES,
    csrf_ok,
    csrf_token,
    decode,
    encode,
    new_session,
    session_key,
)
from exportd.ui.tokens import parse_tokens

ADMIN = parse_tokens("a" * 20, admin=True, setting="S")
READ = parse_tokens("r" * 20 + "@alice", admin=False, setting="S")
TOKENS = [*ADMIN, *READ]
KEY = session_key(TOKENS)


def test_a_session_round_trips_until_it_expires() -> None:
    session = new_session(READ[0], now=1000.0, ttl_seconds=60)
    value = encode(session, KEY)
    assert decode(value, KEY, now=1059.0) == session
    assert decode(value, KEY, now=1060.0) is None
    assert session.owner == "alice"
    assert not session.admin
    assert "r" * 20 not in value


def test_a_changed_payload_or_another_key_is_refused() -> None:
    value = encode(new_session(READ[0], 1000.0, 60), KEY)
    body, mac = value.split(".")
    other_key = session_key(ADMIN)
    assert decode(value, other_key, 1000.0) is None
    assert decode(f"{body}x.{mac}", KEY, 1000.0) is None
    assert decode(f"{body}.{mac[:-2]}", KEY, 1000.0) is None
    assert decode("a" * (COOKIE_MAX_BYTES + 1), KEY, 1000.0) is None
    assert decode("no-dot", KEY, 1000.0) is None


def test_the_key_changes_with_any_token_its_role_or_owner() -> None:
    keys = {
        session_key(TOKENS),
        session_key(ADMIN),
        session_key(parse_tokens("a" * 20, admin=False, setting="S")),
        session_key([*ADMIN, *parse_tokens("r" * 20 + "@bob", admin=False, setting="S")]),
    }
    assert len(keys) == 4
    assert session_key(list(reversed(TOKENS))) == session_key(TOKENS)


def test_a_session_holds_while_its_token_is_configured() -> None:
    session = new_session(READ[0], 1000.0, 60)
    assert session.still_valid(TOKENS)
    assert not session.still_valid(ADMIN)
    promoted = parse_tokens("r" * 20 + "@alice", admin=True, setting="S")
    assert not session.still_valid(promoted)


def test_the_csrf_token_is_its_sessions_own() -> None:
    one = new_session(ADMIN[0], 1000.0, 60)
    two = new_session(ADMIN[0], 1000.0, 60)
    token = csrf_token(one, KEY)
    assert csrf_ok(one, KEY, token)
    assert not csrf_ok(two, KEY, token)
    assert not csrf_ok(one, KEY, "")
    assert not csrf_ok(one, KEY, token + "x" * 200)


@pytest.mark.parametrize("char", ["o", '"', "é", "€", "😀"])
def test_a_session_of_the_longest_owner_fits_its_cookie(char: str) -> None:
    """An owner of OWNER_MAX_BYTES in any script: its session must decode, or a
    login with its token would send the browser back to the form forever."""
    owner = char * (limits.OWNER_MAX_BYTES // len(char.encode()))
    (token,) = parse_tokens(f"{'s' * 20}@{owner}", admin=True, setting="S")
    key = session_key([token])
    session = new_session(token, now=1000.0, ttl_seconds=7 * 86400)
    value = encode(session, key)
    assert len(value) <= COOKIE_MAX_BYTES
    assert decode(value, key, now=1001.0) == session
