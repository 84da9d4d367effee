"""Cross-field rules and the dataset shapes of a definition: checked at load time, and
at validation time together with the per-field rules, every problem at once."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportd.definitions.kinds import Kind
from exportd.definitions.loader import definitions_from_text
from exportd.definitions.offered_formats import SUPPORTED_FORMATS, formats_of
from exportd.definitions.params.spec import InvalidParams
from exportd.definitions.params.values import to_json
from exportd.errors import ErrorKind, ExportError
from exportd.export.formats import FORMATS, format_for
from tests.support.definition_problems import problems_of

REPORT = """
[kinds.report]
description = "Transactions in a date range, by team"
filename = "report-{team}-{start}-{end}"
query = '''
SELECT * FROM generate_series(:start::timestamp, :end::timestamp, interval '1 day') AS d
WHERE :owner <> '' AND :min_score <= 10 AND :upto IS NOT NULL
'''
[kinds.report.params.start]
type = "date"
[kinds.report.params.end]
type = "date"
[kinds.report.params.team]
type = "enum"
values = ["red", "blue"]
[kinds.report.params.min_score]
type = "number"
default = 0
[kinds.report.params.upto]
type = "datetime"
required = false

[[kinds.report.rules]]
rule = "before"
fields = ["start", "end"]
[[kinds.report.rules]]
rule = "max_span"
fields = ["start", "end"]
days = 31
[[kinds.report.rules]]
rule = "not_future"
field = "end"
[[kinds.report.rules]]
rule = "not_future"
field = "upto"
"""
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def report() -> Kind:
    return definitions_from_text(REPORT)["report"]


def problems(kind: Kind, params: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidParams) as caught:
        kind.validate(params, NOW)
    return [(e.field, e.rule) for e in caught.value.errors]


def test_a_kind_of_one_dataset_of_rows_takes_every_format(report: Kind) -> None:
    assert formats_of(report) == SUPPORTED_FORMATS
    assert all(format_for(report, name).name == name for name in SUPPORTED_FORMATS)


def test_every_format_a_kind_may_offer_has_one_writer_and_no_writer_is_unoffered() -> None:
    assert tuple(FORMATS) == SUPPORTED_FORMATS


def test_a_range_within_the_rules_is_accepted(report: Kind) -> None:
    values = report.validate({"start": "2025-05-01", "end": "2025-06-01", "team": "red"}, NOW)
    assert values["end"] == date(2025, 6, 1)


def test_each_rule_reports_its_field_rule_and_bound(report: Kind) -> None:
    assert problems(report, {"start": "2025-06-10", "end": "2025-06-01", "team": "red"}) == [
        ("end", "before")
    ]
    assert problems(report, {"start": "2025-01-01", "end": "2025-06-01", "team": "red"}) == [
        ("end", "max_span")
    ]
    assert problems(
        report,
        {"start": "2025-06-10", "end": "2025-06-16", "team": "red", "upto": "2026-01-01T00:00Z"},
    ) == [("end", "not_future"), ("upto", "not_future")]


def test_field_errors_and_rule_errors_come_together_once_fields_are_valid(report: Kind) -> None:
    # A bad field hides no other bad field; rules apply once every field is valid.
    assert problems(report, {"start": "2025-13-01", "end": "x", "team": "green"}) == [
        ("start", "type"),
        ("end", "type"),
        ("team", "enum"),
    ]


def test_the_rules_travel_with_the_kinds_json_schema(report: Kind) -> None:
    assert report.json_schema()["x-exportd-rules"] == [
        {"rule": "before", "fields": ["start", "end"]},
        {"rule": "max_span", "fields": ["start", "end"], "days": 31},
        {"rule": "not_future", "field": "end"},
        {"rule": "not_future", "field": "upto"},
    ]


def test_a_kind_without_rules_has_no_rules_in_its_schema() -> None:
    kind = definitions_from_text(REPORT.split("[[kinds.report.rules]]")[0])["report"]
    assert "x-exportd-rules" not in kind.json_schema()


def test_rules_are_checked_when_definitions_load() -> None:
    text = """
[kinds.k]
query = "SELECT :a, :b, :n WHERE :owner <> ''"
[kinds.k.params.a]
type = "date"
[kinds.k.params.b]
type = "datetime"
[kinds.k.params.n]
type = "string"
[[kinds.k.rules]]
rule = "before"
fields = ["a", "b"]
[[kinds.k.rules]]
rule = "max_span"
fields = ["a", "zz"]
days = 0
[[kinds.k.rules]]
rule = "not_future"
field = "n"
[[kinds.k.rules]]
rule = "sometimes"
"""
    found = "\n".join(problems_of(text))
    assert "rule 1 (before): a and b differ in type" in found
    assert "rule 2 (max_span): days must be a whole number from 1" in found
    assert "rule 2 (max_span): 'zz' is not a declared parameter" in found
    assert "rule 3 (not_future): n must be a date or datetime parameter" in found
    assert "rule 4: rule must be one of before, max_span, not_future" in found


def test_datasets_are_checked_when_definitions_load() -> None:
    text = """
[kinds.k]
query = "SELECT 1 WHERE :owner <> ''"
[kinds.k.datasets.a]
query = "SELECT :missing"
format = "xml"
[kinds.k.datasets.b]
handler = "tests.support.custom_kinds:nothing_here"
[kinds.k.datasets.c]
handler = "tests.support.custom_kinds:report_pdf"
output = "bytes"
[kinds.k.datasets.D]
query = "SELECT 1"
"""
    found = "\n".join(problems_of(text))
    assert "a kind with datasets keeps query" in found
    assert "dataset 'a': query uses :missing" in found
    assert "dataset 'a': format must be one of csv, jsonl, parquet, got 'xml'" in found
    assert "dataset 'b': handler 'tests.support.custom_kinds:nothing_here'" in found
    assert "dataset 'c': output = \"bytes\" needs extension" in found
    assert "dataset 'D': a dataset name must match" in found


def test_a_multi_dataset_kind_fits_in_a_zip_or_a_workbook() -> None:
    kind = definitions_from_text(
        """
[kinds.k.datasets.a]
query = "SELECT 1 WHERE :owner <> ''"
[kinds.k.datasets.b]
query = "SELECT 2"
"""
    )["k"]
    assert format_for(kind, "zip").name == "zip"
    assert format_for(kind, "xlsx").name == "xlsx"
    assert formats_of(kind) == ("zip", "xlsx")
    for single in ("csv", "csv.gz", "jsonl", "jsonl.gz", "json", "csv.zst", "jsonl.zst"):
        with pytest.raises(ExportError) as caught:
            format_for(kind, single)
        assert caught.value.kind is ErrorKind.UNSUPPORTED_FORMAT
        assert "ask for format zip" in caught.value.message


def test_a_kind_that_produces_a_file_has_no_workbook() -> None:
    kind = definitions_from_text(
        """
[kinds.k.datasets.a]
query = "SELECT 1 WHERE :owner <> ''"
[kinds.k.datasets.report]
handler = "tests.support.custom_kinds:report_pdf"
output = "bytes"
extension = "pdf"
"""
    )["k"]
    assert formats_of(kind) == ("zip",)
    with pytest.raises(ExportError) as caught:
        format_for(kind, "xlsx")
    assert caught.value.kind is ErrorKind.UNSUPPORTED_FORMAT
    assert "'report' (.pdf)" in caught.value.message
    assert "workbook cannot hold" in caught.value.message


# --- Properties ---------------------------------------------------------------------------

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
date_text = st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 1, 1)).map(date.isoformat)
param_values = json_like | date_text | st.sampled_from(["red", "blue", "2025-06-15", "1e3"])
raw_params = st.dictionaries(
    st.sampled_from(["start", "end", "team", "min_score", "upto", "owner", "other"]),
    param_values,
    max_size=6,
)


@settings(max_examples=400)
@given(raw=raw_params | json_like)
def test_validation_raises_nothing_but_invalid_params(report: Kind, raw: object) -> None:
    try:
        outcome: dict[str, object] | InvalidParams = report.validate(raw, NOW)
    except InvalidParams as error:
        outcome = error
    if isinstance(outcome, InvalidParams):
        assert outcome.errors
        assert all(e.rule and e.message for e in outcome.errors)
        return
    values = outcome
    # Accepted: every rule holds.
    start, end = values["start"], values["end"]
    assert isinstance(start, date)
    assert isinstance(end, date)
    assert start < end <= NOW.date()
    assert end - start <= timedelta(days=31)


@settings(max_examples=200)
@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2025, 5, 1)),
    days=st.integers(1, 31),
    team=st.sampled_from(["red", "blue"]),
)
def test_accepted_values_round_trip(report: Kind, start: date, days: int, team: str) -> None:
    raw = {
        "start": start.isoformat(),
        "end": (start + timedelta(days=days)).isoformat(),
        "team": team,
    }
    values = report.validate(raw, NOW)
    again = json.loads(json.dumps({k: to_json(v) for k, v in values.items()}))
    assert report.validate(again, NOW) == values
