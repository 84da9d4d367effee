"""The EXPORTD_FILES_* settings: source entries that would allow nothing, silently, are
refused at start; duplicates are kept once; the source endpoint is an http(s) URL,
checked as the target's is."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from exportd.definitions.loader import DefinitionError, definitions_from_text
from exportd.settings.model import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, database_url="postgresql://h/db", s3_bucket="bucket", **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("raw", "sources"),
    [
        ("uploads", ["uploads"]),
        ("uploads/", ["uploads/"]),  # an empty prefix: the whole bucket
        ("uploads/receipts/", ["uploads/receipts/"]),  # one trailing slash: a folder
        ("up/a up/b up/a", ["up/a", "up/b"]),  # a duplicate kept once
    ],
)
def test_sources_as_given(raw: str, sources: list[str]) -> None:
    assert settings(files_sources=raw).files_sources == sources


@pytest.mark.parametrize(
    "raw", ["/uploads", "uploads//", "uploads/a//", "uploads//a", "uploads/./a", "up/a/../b"]
)
def test_sources_that_would_allow_nothing_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="files_sources entry"):
        settings(files_sources=raw)


@pytest.mark.parametrize("url", ["ftp://store:21", "file:///srv/s3", "store:9000", "http://"])
def test_the_source_endpoint_is_an_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="http:// or https:// URL"):
        settings(files_s3_endpoint_url=url)
    assert settings(files_s3_endpoint_url="https://s3.example:9000").files_own_store


@pytest.mark.parametrize("entry", ["up//a", "up/./a", "up/a b"])
def test_a_kind_files_sources_entry_is_checked_the_same_way(entry: str) -> None:
    text = f'[kinds.k]\nfiles_sources = ["{entry}"]\noutput = "files"\nquery = "SELECT 1 AS key"\n'
    with pytest.raises(DefinitionError, match="files_sources entry"):
        definitions_from_text(text)
    kept = definitions_from_text(text.replace(entry, "up/a/").replace('"]', '", "up/a/"]'))
    assert kept["k"].files_sources == ("up/a/",)
