"""EXPORTD_MAX_ROW_BYTES without a daemon: how the setting is validated, its default, and how
the longest record is found."""

from __future__ import annotations

import pytest

from exportd.export.row_limit import longest_record
from exportd.settings.environment import load_settings
from exportd.settings.model import SettingsError


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("65535", "greater than or equal to 65536"),
        ("1073741824", "less than or equal to 1073741823"),
        ("64MiB", "valid integer"),
    ],
)
def test_the_row_limit_is_validated(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match="EXPORTD_MAX_ROW_BYTES: .*" + message):
        load_settings(env_file=None, max_row_bytes=value)


def test_the_row_limit_defaults_to_64_mib() -> None:
    assert load_settings(env_file=None).max_row_bytes == 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "quoted", "expected"),
    [
        (b"a\nbbb\ncc", False, (1, 4)),
        (b"a\nbb\n", False, (1, 3)),
        (b"", False, (0, 0)),
        # A quoted line break is inside its record; a doubled quote flips twice.
        (b'1,"x\ny"\n2,z\n', True, (0, 8)),
        (b'1,"a""\n""b"\n2,c\n', True, (0, 12)),
        (b'1,"x\ny"\n2,z\n', False, (0, 5)),
        (b"h\n" + b"x" * 10 + b"\n", True, (1, 11)),
    ],
)
def test_the_longest_record_is_found(data: bytes, quoted: bool, expected: tuple[int, int]) -> None:
    assert longest_record(data, quoted=quoted) == expected
