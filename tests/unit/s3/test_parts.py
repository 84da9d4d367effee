from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exportd.errors import ErrorKind
from exportd.s3.parts import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    choose_part_size,
    size_refusal,
    upload_memory_bound,
)
from exportd.s3.presign import content_disposition

MIB = 1024 * 1024
GIB = 1024 * MIB


def test_default_maximum_gives_11_mib_parts() -> None:
    # 100 GiB / 10,000 parts = 10.24 MiB, rounded up to whole MiB.
    assert choose_part_size(100 * GIB) == 11 * MIB


@pytest.mark.parametrize("maximum", [0, 1, 5 * MIB, 1 * GIB, 50_000 * MIB])
def test_small_maxima_get_the_minimum_part_size(maximum: int) -> None:
    assert choose_part_size(maximum) == MIN_PART_SIZE == 5 * MIB


def test_part_size_grows_by_whole_mib_at_the_boundary() -> None:
    exactly_5_mib_parts = MAX_PARTS * 5 * MIB
    assert choose_part_size(exactly_5_mib_parts) == 5 * MIB
    assert choose_part_size(exactly_5_mib_parts + 1) == 6 * MIB


@pytest.mark.parametrize("maximum", [1, 5 * MIB, 100 * GIB, 1024 * GIB, MAX_PARTS * MAX_PART_SIZE])
def test_chosen_size_fits_the_maximum_and_is_smallest(maximum: int) -> None:
    size = choose_part_size(maximum)
    assert size % MIB == 0
    assert MIN_PART_SIZE <= size <= MAX_PART_SIZE
    assert size * MAX_PARTS >= maximum
    assert size == MIN_PART_SIZE or (size - MIB) * MAX_PARTS < maximum


@given(st.integers(min_value=0, max_value=MAX_PARTS * MAX_PART_SIZE))
def test_chosen_size_is_minimal_for_any_maximum(maximum: int) -> None:
    size = choose_part_size(maximum)
    assert size % MIB == 0
    assert size * MAX_PARTS >= maximum
    assert size == MIN_PART_SIZE or (size - MIB) * MAX_PARTS < maximum


def test_maximum_beyond_s3_limits_raises() -> None:
    with pytest.raises(ValueError, match="exceeds what S3 can store"):
        choose_part_size(MAX_PARTS * MAX_PART_SIZE + 1)


def test_configured_size_is_used_when_it_fits() -> None:
    assert choose_part_size(100 * GIB, configured=64 * MIB) == 64 * MIB
    assert choose_part_size(MAX_PARTS * 11 * MIB, configured=11 * MIB) == 11 * MIB


def test_configured_size_too_small_for_the_maximum_raises() -> None:
    with pytest.raises(ValueError, match="too small") as caught:
        choose_part_size(100 * GIB, configured=10 * MIB)
    message = str(caught.value)
    assert "EXPORTD_S3_PART_SIZE" in message
    assert "11 MiB" in message  # the size that would work


@pytest.mark.parametrize("configured", [MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, 0])
def test_configured_size_outside_s3_limits_raises(configured: int) -> None:
    with pytest.raises(ValueError, match="outside S3's limits"):
        choose_part_size(1 * MIB, configured=configured)


def test_configured_size_at_s3_limits_is_accepted() -> None:
    assert choose_part_size(1, configured=MIN_PART_SIZE) == MIN_PART_SIZE
    assert choose_part_size(1, configured=MAX_PART_SIZE) == MAX_PART_SIZE


def test_memory_bound_counts_parts_in_flight_and_the_filling_buffer() -> None:
    assert upload_memory_bound(11 * MIB, 2) == 33 * MIB
    assert upload_memory_bound(5 * MIB, 1) == 10 * MIB


# --- content_disposition ----------------------------------------------------


def _filename_star(header: str) -> str | None:
    for param in header.split("; "):
        if param.startswith("filename*=UTF-8''"):
            return unquote(param.removeprefix("filename*=UTF-8''"), encoding="utf-8")
    return None


def test_ascii_name_has_only_the_plain_filename() -> None:
    assert content_disposition("orders-2024.csv") == 'attachment; filename="orders-2024.csv"'


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ("Übersicht März.csv", "Ubersicht Marz.csv"),
        ("café.csv", "cafe.csv"),
        ("données_été.xlsx", "donnees_ete.xlsx"),
        ("报告.csv", "__.csv"),
        ("Отчёт.csv", "_____.csv"),
        ("emoji 📦.json", "emoji _.json"),
    ],
)
def test_unicode_name_gets_an_ascii_fallback_and_filename_star(name: str, fallback: str) -> None:
    header = content_disposition(name)
    assert header.startswith(f'attachment; filename="{fallback}"; ')
    assert _filename_star(header) == name
    header.encode("ascii")  # a header value must be ASCII


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ('say "hi".csv', "say _hi_.csv"),
        ("back\\slash.csv", "back_slash.csv"),
        ("line\r\nbreak.csv", "line__break.csv"),
        ("tab\there.csv", "tab_here.csv"),
    ],
)
def test_quotes_backslashes_and_controls_cannot_break_the_header(name: str, fallback: str) -> None:
    header = content_disposition(name)
    assert f'filename="{fallback}"' in header
    assert "\r" not in header
    assert "\n" not in header
    assert _filename_star(header) == name


def test_filename_star_percent_encodes_everything_outside_attr_char() -> None:
    header = content_disposition("ä b;c'd(1)!.csv")
    assert header.endswith("filename*=UTF-8''%C3%A4%20b%3Bc%27d%281%29!.csv")


def test_empty_name_still_names_a_file() -> None:
    assert content_disposition("") == 'attachment; filename="download"'


@given(st.text())
def test_any_name_gives_a_safe_header_that_round_trips(name: str) -> None:
    header = content_disposition(name)
    header.encode("ascii")
    assert header.startswith('attachment; filename="')
    fallback = header.removeprefix('attachment; filename="').split('"', 1)[0]
    assert fallback
    assert not any(ord(c) < 0x20 or c == "\x7f" for c in header)
    star = _filename_star(header)
    if star is None:
        assert fallback == (name or "download")
    else:
        assert star == name


def test_an_object_within_its_limits_is_not_refused() -> None:
    assert size_refusal(10 * MIB, 5 * MIB, 10 * MIB, "EXPORTD_S3_MAX_EXPORT_BYTES", 2) is None
    assert size_refusal(MAX_PARTS * MIN_PART_SIZE, MIN_PART_SIZE, None, "unused") is None


def test_an_object_past_its_parts_is_too_large_and_says_how_to_grow() -> None:
    error = size_refusal(10 * MIB + 1, 5 * MIB, None, "unused", 2)
    assert error is not None
    assert error.kind is ErrorKind.TOO_LARGE
    assert f"{10 * MIB:,} bytes" in error.message
    assert "EXPORTD_S3_PART_SIZE" in error.message


def test_an_object_past_its_byte_limit_names_where_the_limit_comes_from() -> None:
    error = size_refusal(101, 5 * MIB, 100, "max_bytes of kind 'orders'")
    assert error is not None
    assert error.kind is ErrorKind.TOO_LARGE
    assert "100 bytes (max_bytes of kind 'orders')" in error.message
