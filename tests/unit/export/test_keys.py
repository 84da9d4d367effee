"""Object keys stay within S3's limits whatever the owner or file name."""

from __future__ import annotations

import uuid
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportd import limits
from exportd.export.keys import (
    WRITE_PROBE,
    check_prefix,
    filename_of,
    job_id_of,
    key_segment,
    listing_prefix,
    object_key,
    write_probe_key,
)
from exportd.settings.model import Settings

JOB = uuid.UUID("12345678-1234-5678-1234-567812345678")
CJK_NAME = "日本語の長いファイル名" * 6  # 66 characters, 198 bytes, 594 percent-encoded
PREFIX = "exports"


def assert_within_limits(key: str) -> None:
    assert len(key.encode("utf-8")) <= limits.S3_KEY_MAX_BYTES
    for segment in key.split("/"):
        assert segment not in ("", ".", ".."), key
        assert len(segment.encode("utf-8")) <= limits.S3_SEGMENT_MAX_BYTES, key
        assert "\\" not in segment
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment)


def settings_with(prefix: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url="postgresql://localhost:5432/postgres",
        s3_bucket="exports-bucket",
        s3_prefix=prefix,
    )


def test_the_reported_cjk_name_is_594_bytes_encoded() -> None:
    assert len(CJK_NAME) == 66
    assert len(CJK_NAME.encode("utf-8")) == 198
    assert len(quote(CJK_NAME)) == 594


@pytest.mark.parametrize(
    ("owner", "segment"),
    [
        ("alice", "alice"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("...", "%2E%2E%2E"),
        ("%2e%2e", "%252e%252e"),
        ("a/../b", "a%2F..%2Fb"),
        ("a\\b", "a%5Cb"),
        ("line\nbreak\x00", "line%0Abreak%00"),
        ("~", "%7E"),
        ("", "~"),
    ],
)
def test_owner_segments(owner: str, segment: str) -> None:
    assert key_segment(owner, "@._-") == segment
    key = object_key(PREFIX, owner, JOB, "f.csv")
    assert key == f"exports/{segment}/{JOB}/f.csv"
    assert_within_limits(key)


def test_an_owner_of_256_emoji_is_cut_with_a_hash_and_stays_distinct() -> None:
    owner = "🎉" * 256  # 1,024 bytes, 3,072 percent-encoded
    other = "🎉" * 255 + "🎈"
    a, b = key_segment(owner, "@._-"), key_segment(other, "@._-")
    assert len(a) <= 255
    assert len(b) <= 255
    assert a != b
    assert "~" in a
    # The cut never splits an escape: what is left decodes to whole emoji.
    assert set(unquote(a.split("~")[0])) == {"🎉"}
    assert_within_limits(object_key(PREFIX, owner, JOB, CJK_NAME + ".csv"))


def test_the_66_cjk_file_name_is_cut_keeping_its_extension() -> None:
    key = object_key(PREFIX, "alice", JOB, CJK_NAME + ".csv.gz")
    assert_within_limits(key)
    last = key.rsplit("/", 1)[1]
    assert last.endswith(".csv.gz")
    # Whole characters (9 encoded bytes each) up to the budget, then the hash.
    assert 255 - 9 < len(last) <= 255
    kept = unquote(last.split("~")[0])
    assert kept == CJK_NAME[: len(kept)]
    assert len(kept) == 25


def test_a_cut_segment_never_equals_an_uncut_one() -> None:
    long_owner = "x" * 300
    cut = key_segment(long_owner, "@._-")
    # The very text of the cut segment, as an owner, encodes its '~'.
    assert key_segment(cut, "@._-") != cut


@given(
    owner=st.text(min_size=1, max_size=400),
    filename=st.text(min_size=1, max_size=400),
)
@settings(max_examples=400, deadline=None)
def test_any_owner_and_file_name_make_a_key_within_limits(owner: str, filename: str) -> None:
    # The longest prefix the settings accept.
    prefix = "a" * 200 + "/" + "b" * 200 + "/" + "c" * (limits.S3_PREFIX_MAX_BYTES - 402)
    assert check_prefix(prefix) == prefix
    key = object_key(prefix, owner, JOB, filename)
    assert_within_limits(key)


@given(a=st.text(max_size=300), b=st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_distinct_owners_keep_distinct_segments(a: str, b: str) -> None:
    if a != b:
        assert key_segment(a, "@._-") != key_segment(b, "@._-")


@pytest.mark.parametrize(
    "prefix",
    [".", "a/../b", "a//b", "a/./b", "x" * 256, "a\\b", "a\nb", "p/" * 300],
)
def test_a_prefix_that_could_break_the_budget_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        check_prefix(prefix)
    with pytest.raises(ValueError, match="prefix"):
        settings_with(prefix)


def test_a_usual_prefix_is_kept() -> None:
    assert check_prefix("") == ""
    assert check_prefix("tenant-a/exports") == "tenant-a/exports"
    assert settings_with("/exports/").s3_prefix == "exports"


HOSTILE = ["a/b", "../..", "%2F", "%", "~", "~x~y", "日本語", "🎉" * 300, "x" * 2000, "\x00/\n", ""]


@pytest.mark.parametrize("owner", HOSTILE)
@pytest.mark.parametrize("filename", [*HOSTILE, "report.csv.gz", CJK_NAME + ".csv"])
def test_a_key_reads_back_its_job_id_whatever_the_owner_and_file_name(
    owner: str, filename: str
) -> None:
    assert job_id_of(object_key(PREFIX, owner, JOB, filename)) == JOB
    assert job_id_of(object_key("", owner, JOB, filename)) == JOB


@pytest.mark.parametrize(
    "filename", ["report.csv", "a/b.csv", "100%.csv", "~home.csv", "Übersicht März.csv", ".."]
)
def test_a_key_reads_back_its_file_name(filename: str) -> None:
    assert filename_of(object_key(PREFIX, "a/b", JOB, filename)) == filename


def test_a_cut_file_name_reads_back_cut_with_its_extension() -> None:
    name = filename_of(object_key(PREFIX, "alice", JOB, CJK_NAME + ".csv"))
    assert name != CJK_NAME + ".csv"
    assert name.startswith(CJK_NAME[:20])
    assert name.endswith(".csv")


@given(owner=st.text(max_size=300), filename=st.text(min_size=1, max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_key_reads_back_as_built(owner: str, filename: str) -> None:
    key = object_key(PREFIX, owner, JOB, filename)
    assert job_id_of(key) == JOB
    # Sixty characters may encode to more than a segment holds; an uncut
    # segment has no literal '~' (it is encoded), and reads back as given.
    if "~" not in key.rsplit("/", 1)[-1]:
        assert filename_of(key) == filename
    else:
        # Cut: only a name whose bytes, three characters each at most, overflow.
        assert 3 * len(filename.encode("utf-8")) > limits.S3_SEGMENT_MAX_BYTES


@pytest.mark.parametrize(
    "key",
    [
        "x.csv",
        "exports/x.csv",
        "exports/o/not-a-uuid/x.csv",
        write_probe_key("exports"),
        write_probe_key(""),
        "exports/o/" + str(JOB),
    ],
)
def test_keys_of_another_shape_name_no_job(key: str) -> None:
    assert job_id_of(key) is None


def test_the_write_probe_sits_beside_the_owners_and_is_no_owner_of_theirs() -> None:
    assert write_probe_key("exports") == f"exports/{WRITE_PROBE}"
    assert write_probe_key("") == WRITE_PROBE
    for owner in [*HOSTILE, WRITE_PROBE]:
        assert key_segment(owner, "@._-") != WRITE_PROBE


def test_the_listing_prefix_ends_with_a_separator() -> None:
    assert listing_prefix("") == ""
    assert listing_prefix("exports") == "exports/"
    assert not "exports-old/x".startswith(listing_prefix("exports"))
