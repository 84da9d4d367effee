"""A kind's quota, as the definitions loader reads and checks it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exportd.definitions.loader import DefinitionError, definitions_from_text
from exportd.quotas import Quota

KINDS = """
[kinds.full]
query = "SELECT 1 AS n WHERE :owner <> ''"
[kinds.full.quota]
max = 1
per = "P1D"

[kinds.free]
query = "SELECT 1 AS n WHERE :owner <> ''"
"""


def test_a_kind_with_a_quota_carries_it_and_others_have_none() -> None:
    definitions = definitions_from_text(KINDS)
    assert definitions["full"].quota == Quota(1, timedelta(days=1), "P1D")
    assert definitions["free"].quota is None
    assert definitions.quota_of("full") == Quota(1, timedelta(days=1), "P1D")
    assert definitions.quota_of("free") is None
    assert definitions.quota_of("no-such-kind") is None


def test_an_inline_table_is_the_same_quota() -> None:
    text = """
[kinds.full]
query = "SELECT 1 AS n WHERE :owner <> ''"
quota = { max = 3, per = "PT6H" }
"""
    assert definitions_from_text(text)["full"].quota == Quota(3, timedelta(hours=6), "PT6H")


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('max = 0\nper = "P1D"', "kind 'full': quota: max must be a whole number from 1"),
        ('max = 1\nper = "one day"', "kind 'full': quota: per must be an ISO 8601 duration"),
        ("max = 1\nper = 86400", "kind 'full': quota: per must be an ISO 8601 duration"),
        ('max = 1\nper = "PT0S"', "kind 'full': quota: per must be from 1 second to 366 days"),
        ('max = 1\nper = "P1D"\nburst = 2', "kind 'full': quota: unknown key 'burst'"),
        ("max = 1", "kind 'full': quota: per is required"),
    ],
)
def test_a_bad_quota_names_its_kind_and_what_is_wrong(table: str, problem: str) -> None:
    text = f"""
[kinds.full]
query = "SELECT 1 AS n WHERE :owner <> ''"
[kinds.full.quota]
{table}
"""
    with pytest.raises(DefinitionError) as raised:
        definitions_from_text(text, "kinds.toml")
    assert any(p.startswith("kinds.toml: ") and problem in p for p in raised.value.problems), (
        raised.value.problems
    )


def test_a_quota_that_is_not_a_table_is_refused() -> None:
    text = """
[kinds.full]
query = "SELECT 1 AS n WHERE :owner <> ''"
quota = 1
"""
    with pytest.raises(DefinitionError, match="quota must be a table"):
        definitions_from_text(text)
