"""A files dataset's rows, the allowed sources and the store-or-deflate decision."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from exportd.definitions.loader import DefinitionError, definitions_from_text
from exportd.errors import ErrorKind, ExportError
from exportd.export.file_members import should_deflate
from exportd.export.file_rows import FileRow, check_sources, file_row, refused, within
from exportd.export.formats import format_for


def test_a_row_needs_a_key_and_a_bucket_and_checks_its_expectations() -> None:
    row = file_row({"key": "r/a.pdf", "size": 3, "sha256": "AB" * 32}, "b", "row 1")
    assert row == FileRow("b", "r/a.pdf", "r/a.pdf", 3, "ab" * 32)
    assert file_row({"key": "k", "bucket": "x", "path": "p"}, None, "r").bucket == "x"
    bads: list[dict[str, object]] = [
        {"key": None},
        {"key": ""},
        {"key": "k", "size": -1},
        {"key": "k", "sha256": "z"},
        {"key": "k", "size": Decimal("1.5")},
        {"key": "k", "size": "12"},
        {"key": "k", "size": True},
        {"key": "k", "size": 12.0},
        {"key": "k", "sha256": bytes(32)},
        {"key": "k", "sha256": " " + "a" * 64},
        {"key": "k", "sha256": "a" * 64 + "\n"},
        {"key": "k", "path": b"a.pdf"},
        {"key": b"k"},
    ]
    for bad in bads:
        with pytest.raises(ExportError) as caught:
            file_row(bad, "b", "row 1")
        assert caught.value.kind is ErrorKind.QUERY_ERROR
    with pytest.raises(ExportError, match="no bucket"):
        file_row({"key": "k"}, None, "row 1")


def test_a_prefix_is_a_folder_and_dot_segments_lie_nowhere() -> None:
    assert within(FileRow("up", "receipts/a.pdf", ""), "up/receipts")
    assert within(FileRow("up", "receipts/a.pdf", ""), "up/receipts/")
    assert within(FileRow("up", "anything/at/all", ""), "up")
    assert not within(FileRow("up", "receipts-old/a.pdf", ""), "up/receipts")
    assert not within(FileRow("other", "receipts/a.pdf", ""), "up/receipts")
    assert not within(FileRow("up", "receipts/../secret", ""), "up/receipts")
    assert not within(FileRow("up", "receipts//a", ""), "up")
    assert within(FileRow("up", "anything", ""), "up/")
    # A bucket column naming another bucket, or the source's folder, lies outside it.
    assert not within(FileRow("up/receipts", "a.pdf", ""), "up/receipts")
    assert not within(FileRow("UP", "receipts/a.pdf", ""), "up/receipts")
    assert not within(FileRow("up", "Receipts/a.pdf", ""), "up/receipts")
    # Keys are read as they are, never URL-decoded: %2e%2e is a name, not "..".
    assert within(FileRow("up", "receipts/%2e%2e/a", ""), "up/receipts")


def test_the_kind_narrows_the_daemon_sources_and_the_first_outsider_is_named() -> None:
    row = FileRow("up", "receipts/a.pdf", "")
    assert refused(row, ["up/receipts"], []) is None
    assert "EXPORTD_FILES_SOURCES is empty" in (refused(row, [], []) or "")
    assert "kind's files_sources" in (refused(row, ["up"], ["up/photos"]) or "")
    rows = [row, FileRow("up", "secrets/key", ""), FileRow("up", "other", "")]
    with pytest.raises(ExportError) as caught:
        check_sources(rows, ["up/receipts"], [], "dataset 'r'")
    assert caught.value.kind is ErrorKind.ACCESS_DENIED
    assert "'secrets/key'" in str(caught.value)
    assert "'other'" not in str(caught.value)


def test_content_that_does_not_shrink_is_stored() -> None:
    assert should_deflate("notes.txt", b"hello world " * 1000)
    assert not should_deflate("scan.bin", os.urandom(64 * 1024))
    assert not should_deflate("photo.JPG", b"a" * 1000)  # by extension, never tried
    assert not should_deflate("empty.txt", b"")


KIND = """
[kinds.mine.datasets.rows]
query = "SELECT 1 AS n WHERE :owner <> ''"
[kinds.mine.datasets.receipts]
output = "files"
query = "SELECT key FROM receipts WHERE owner = :owner"
"""


def test_definitions_of_a_files_dataset() -> None:
    kind = definitions_from_text(KIND)["mine"]
    assert kind.missing_files == "fail"
    assert [d.output for d in kind.datasets] == ["rows", "files"]
    listed = definitions_from_text(
        KIND.replace(
            "[kinds.mine.datasets.rows]",
            '[kinds.mine]\nmissing_files = "list"\nfiles_sources = ["up/receipts"]\n'
            "[kinds.mine.datasets.rows]",
            1,
        )
    )["mine"]
    assert (listed.missing_files, listed.files_sources) == ("list", ("up/receipts",))
    for fmt in ("csv", "xlsx", "json"):
        with pytest.raises(ExportError) as caught:
            format_for(kind, fmt)
        assert caught.value.kind is ErrorKind.UNSUPPORTED_FORMAT
        assert "ask for format zip" in str(caught.value)
    assert format_for(kind, "zip").name == "zip"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[kinds.k]\noutput = "files"\nhandler = "x:y"\n', "takes a query"),
        ('[kinds.k]\nmissing_files = "list"\nquery = "SELECT 1"\n', "applies to a kind"),
        (
            '[kinds.k]\nmissing_files = "skip"\noutput = "files"\nquery = "SELECT 1 AS key"\n',
            "missing_files must be one of",
        ),
        (
            '[kinds.k]\nfiles_sources = ["/x"]\noutput = "files"\nquery = "SELECT 1 AS key"\n',
            "bucket/prefix",
        ),
    ],
)
def test_files_definition_problems(text: str, problem: str) -> None:
    with pytest.raises(DefinitionError, match=problem):
        definitions_from_text(text)
