"""The dashboard's token settings: their format, their bounds, and matching."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from exportd.settings.model import Settings
from exportd.ui.tokens import TokenError, fingerprint, match, parse_tokens

LONG = "t" * 16


def test_entries_are_tokens_with_an_optional_owner_after_the_first_at() -> None:
    found = parse_tokens(f" {LONG} , {'u' * 20}@alice@example.com,, ", admin=True, setting="S")
    assert [(t.secret.decode(), t.owner, t.admin) for t in found] == [
        (LONG, None, True),
        ("u" * 20, "alice@example.com", True),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("short", "16 to 256 bytes"),
        ("t" * 257, "16 to 256 bytes"),
        ("tttttttt tttttttt", "printable ASCII"),
        ("ttttttttttttttt\u00e9", "printable ASCII"),
        (f"{LONG}@", "owner of token 1 must not be empty"),
        (f"{LONG}@a\x01b", "control characters"),
    ],
)
def test_a_bad_entry_is_named_by_setting_and_position_never_by_its_text(
    text: str, problem: str
) -> None:
    with pytest.raises(TokenError) as caught:
        parse_tokens(text, admin=False, setting="EXPORTD_UI_TOKENS")
    assert problem in str(caught.value)
    assert str(caught.value).startswith("EXPORTD_UI_TOKENS: ")
    assert text not in str(caught.value)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_settings_refuse_a_bad_token_and_list_admin_tokens_first() -> None:
    with pytest.raises(ValueError, match="EXPORTD_UI_ADMIN_TOKENS: token 2"):
        settings(ui_admin_tokens=f"{LONG},short")
    both = settings(ui_tokens="r" * 16, ui_admin_tokens=LONG)
    assert [t.role for t in both.ui_token_list()] == ["admin", "read"]
    assert LONG not in repr(both)
    assert settings().ui_token_list() == []


def test_match_finds_the_token_and_nothing_else() -> None:
    tokens = parse_tokens(f"{LONG},{'v' * 16}@bob", admin=False, setting="S")
    assert match("v" * 16, tokens) == tokens[1]
    for presented in ("", LONG[:-1], LONG + "x", "x" * 100_000, "\udcff" * 20):
        assert match(presented, tokens) is None


def test_a_fingerprint_names_a_token_without_giving_it_away() -> None:
    assert fingerprint(LONG.encode()) == fingerprint(LONG.encode())
    assert len(fingerprint(LONG.encode())) == 12
    assert fingerprint(LONG.encode()) != fingerprint(b"u" * 16)


def test_match_compares_equal_lengths_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hmac.compare_digest`` is constant-time only between equal lengths: a
    compare of the presented text with each token would tell a guesser the
    tokens' lengths. Every compare made is of two digests of one size."""
    sizes: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        sizes.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    configured = parse_tokens(f"{'a' * 16},{'b' * 40}@bob", admin=False, setting="S")
    for presented in ("a" * 16, "b" * 40, "c" * 23, "x"):
        match(presented, configured)
    assert sizes
    assert {a for a, b in sizes} | {b for a, b in sizes} == {32}
