"""`exportd check` says whether parquet can be written, and fails only where a kind
could never run without it (a zip member of format parquet); `exportd enqueue`
refuses a parquet job where it cannot be written, naming the extra."""

from __future__ import annotations

import pytest

from exportd.cli.commands import _check_formats
from exportd.cli.job_checks import check_with_definition
from exportd.definitions import offered_formats
from exportd.definitions.loader import definitions_from_text
from exportd.queue.enqueue import NewJob

KINDS = '[kinds.k]\nquery = "SELECT 1"\n'
MEMBERS = '[kinds.z.datasets.a]\nquery = "SELECT 1"\nformat = "parquet"\n'


def checked(text: str) -> list[tuple[bool, str, str]]:
    lines: list[tuple[bool, str, str]] = []
    _check_formats(
        definitions_from_text(text), lambda ok, what, detail: lines.append((ok, what, detail))
    )
    return lines


def test_installed_is_said() -> None:
    assert checked(KINDS) == [(True, "formats", "parquet available (exportd[parquet] installed)")]


def test_missing_is_said_and_fails_only_a_kind_that_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(offered_formats, "parquet_installed", lambda: False)
    [(ok, _, detail)] = checked(KINDS)
    assert ok
    assert "pip install 'exportd[parquet]'" in detail
    [(ok, _, detail)] = checked(KINDS + MEMBERS)
    assert not ok
    assert "kinds with parquet members: z" in detail


def test_enqueue_refuses_parquet_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    definitions = definitions_from_text(KINDS)
    job = NewJob(owner="alice", kind="k", format="parquet")
    found: list[str] = []
    assert check_with_definition(definitions, job, "parquet", found) == ("parquet", None)
    assert found == []
    monkeypatch.setattr(offered_formats, "parquet_installed", lambda: False)
    check_with_definition(definitions, job, "parquet", found)
    assert found == [offered_formats.not_installed("parquet")]
    assert "pip install 'exportd[parquet]'" in found[0]
