"""The options parser: each key's good and bad values, every problem at once, the
excel profile, locks, and hostile documents."""

from __future__ import annotations

from typing import Any

import pytest

from exportd import limits
from exportd.definitions.kinds import Kind
from exportd.definitions.loader import definitions_from_text
from exportd.definitions.options.model import CsvOptions, JobOptions, JsonOptions
from exportd.definitions.options.resolve import to_document
from exportd.definitions.params.spec import InvalidParams

PLAIN = """
[kinds.orders]
query = "SELECT 1 AS id, now() AS placed_at WHERE :owner <> ''"
"""

BUNDLE = """
[kinds.everything]
[kinds.everything.datasets.orders]
query = "SELECT 1 AS id WHERE :owner <> ''"
[kinds.everything.datasets.invoices]
query = "SELECT 2 AS id WHERE :owner <> ''"
"""

LOCKED = """
[kinds.locked]
query = "SELECT 1 AS id WHERE :owner <> ''"
locked_options = ["csv.delimiter", "timezone", "csv.bom"]
[kinds.locked.options]
timezone = "Europe/Zurich"
csv = { profile = "excel", delimiter = ";" }
"""


def kind(text: str = PLAIN) -> Kind:
    return next(iter(definitions_from_text(text).values()))


def problems(raw: Any, text: str = PLAIN) -> dict[str, str]:
    with pytest.raises(InvalidParams) as caught:
        kind(text).options_for(raw)
    return {e.field: e.message for e in caught.value.errors}


def test_no_options_are_the_kinds_defaults() -> None:
    assert kind().options_for({}) == JobOptions()
    assert kind().options_for(None) == JobOptions()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"timezone": "America/New_York"}, JobOptions(timezone="America/New_York")),
        ({"timezone": "Etc/GMT+3"}, JobOptions(timezone="Etc/GMT+3")),
        ({"columns": ["placed_at", "id"]}, JobOptions(columns=("placed_at", "id"))),
        ({"split_rows": 1}, JobOptions(split_rows=1)),
        ({"json": {"big_numbers": "string"}}, JobOptions(json=JsonOptions("string"))),
        ({"csv": {"delimiter": "\t"}}, JobOptions(csv=CsvOptions(delimiter="\t"))),
        (
            {"csv": {"delimiter": "|", "null": "NULL"}},
            JobOptions(csv=CsvOptions(delimiter="|", null="NULL")),
        ),
        ({"csv": {"header": False}}, JobOptions(csv=CsvOptions(header=False))),
        ({"csv": {"line_terminator": "\r\n"}}, JobOptions(csv=CsvOptions(line_terminator="\r\n"))),
        (
            {"csv": {"delimiter": ";", "decimal_comma": True}},
            JobOptions(csv=CsvOptions(delimiter=";", decimal_comma=True)),
        ),
    ],
)
def test_good_values_are_taken(raw: dict[str, Any], expected: JobOptions) -> None:
    assert kind().options_for(raw) == expected


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"timezone": "Europe Zurich"}, "options.timezone", "IANA time zone name"),
        ({"timezone": "UTC+3:00"}, "options.timezone", "IANA time zone name"),
        ({"timezone": 3}, "options.timezone", "must be a string"),
        ({"timezone": "A" * 65}, "options.timezone", "at most 64 bytes"),
        ({"columns": []}, "options.columns", "at least one column"),
        ({"columns": "id"}, "options.columns", "list of column names"),
        ({"columns": ["id", "id"]}, "options.columns[1]", "a second time"),
        ({"columns": ["x" * 64]}, "options.columns[0]", "at most 63 bytes"),
        ({"columns": [1]}, "options.columns[0]", "must be a column name"),
        ({"columns": [str(i) for i in range(1665)]}, "options.columns", "at most 1664"),
        ({"split_rows": 0}, "options.split_rows", "from 1 to"),
        ({"split_rows": True}, "options.split_rows", "not true"),
        ({"split_rows": 2.0}, "options.split_rows", "whole number"),
        ({"split_rows": 10**12}, "options.split_rows", "from 1 to 1,000,000,000"),
        ({"csv": {"profile": "excel2007"}}, "options.csv.profile", "rfc4180"),
        ({"csv": {"delimiter": ":"}}, "options.csv.delimiter", "tab"),
        ({"csv": {"bom": "yes"}}, "options.csv.bom", "true or false"),
        ({"csv": {"null": "a\nb"}}, "options.csv.null", "line break"),
        ({"csv": {"null": '"'}}, "options.csv.null", "double quote"),
        ({"csv": {"null": "N" * 65}}, "options.csv.null", "at most 64 bytes"),
        ({"csv": {"null": "a,b"}}, "options.csv.null", "the delimiter"),
        ({"csv": {"decimal_comma": True}}, "options.csv.decimal_comma", "other than"),
        ({"csv": []}, "options.csv", "must be an object"),
        ({"json": {"big_numbers": "text"}}, "options.json.big_numbers", "number"),
        ({"csv": {"quote": "'"}}, "options.csv.quote", "known: profile, delimiter"),
        ({"colums": ["id"]}, "options.colums", "known: timezone, columns"),
    ],
)
def test_bad_values_are_named_and_explained(raw: dict[str, Any], field: str, words: str) -> None:
    found = problems(raw)
    assert field in found, found
    assert words in found[field]
    assert found[field].startswith(field)


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        {
            "timezone": "no zone",
            "columns": ["id", "id"],
            "csv": {"delimiter": ":", "bom": 1, "extra": True},
            "json": {"big_numbers": 1},
            "split_rows": -1,
            "unknown": {},
        }
    )
    assert set(found) == {
        "options.timezone",
        "options.columns[1]",
        "options.csv.delimiter",
        "options.csv.bom",
        "options.csv.extra",
        "options.json.big_numbers",
        "options.split_rows",
        "options.unknown",
    }


def test_the_excel_profile_sets_its_defaults() -> None:
    csv = kind().options_for({"csv": {"profile": "excel"}}).csv
    assert (csv.bom, csv.line_terminator, csv.formula_guard) == (True, "\r\n", True)
    assert (csv.delimiter, csv.header) == (",", True)


def test_values_given_explicitly_win_over_the_excel_profile() -> None:
    raw = {"csv": {"profile": "excel", "bom": False, "line_terminator": "\n"}}
    csv = kind().options_for(raw).csv
    assert (csv.bom, csv.line_terminator, csv.formula_guard) == (False, "\n", True)


def test_a_job_merges_over_the_kinds_options() -> None:
    text = (
        PLAIN + '[kinds.orders.options]\ncsv = { profile = "excel", bom = false }\nsplit_rows = 5\n'
    )
    options = kind(text).options_for({"csv": {"delimiter": ";"}})
    assert options.csv == CsvOptions(
        profile="excel", delimiter=";", bom=False, line_terminator="\r\n", formula_guard=True
    )
    assert options.split_rows == 5


def test_columns_per_dataset_name_the_kinds_datasets() -> None:
    options = kind(BUNDLE).options_for({"columns": {"orders": ["id"]}})
    assert options.columns_for("orders") == ("id",)
    assert options.columns_for("invoices") is None
    found = problems({"columns": {"order": ["id"], "invoices": []}}, BUNDLE)
    assert "names no dataset of this kind (orders, invoices)" in found["options.columns.order"]
    assert "options.columns.invoices" in found


def test_a_locked_option_set_to_another_value_is_refused_naming_it_and_the_kind() -> None:
    found = problems({"csv": {"delimiter": ","}, "timezone": "UTC"}, LOCKED)
    assert "locked by kind 'locked'" in found["options.csv.delimiter"]
    assert '";"' in found["options.csv.delimiter"]
    assert "locked by kind 'locked'" in found["options.timezone"]


def test_a_locked_option_set_to_its_own_value_is_accepted() -> None:
    options = kind(LOCKED).options_for({"csv": {"delimiter": ";"}, "timezone": "Europe/Zurich"})
    assert options.csv.delimiter == ";"


def test_a_locked_option_keeps_its_value_when_the_profile_changes() -> None:
    # bom is locked at the excel profile's true: a job going back to rfc4180 keeps it.
    options = kind(LOCKED).options_for({"csv": {"profile": "rfc4180"}})
    assert (options.csv.bom, options.csv.line_terminator) == (True, "\n")


def test_locking_a_group_locks_each_of_its_options() -> None:
    text = PLAIN + 'locked_options = ["csv"]\n'
    assert set(problems({"csv": {"bom": True, "header": False}}, text)) == {
        "options.csv.bom",
        "options.csv.header",
    }
    assert kind(text).options_for({"csv": {"bom": False}}).csv.bom is False


@pytest.mark.parametrize(
    "raw",
    [
        [],
        "csv",
        42,
        {"timezone": "Europe/Zu\x00rich"},
        {"csv": {"null": "\x00"}},
        {"columns": ["\ud800"]},
        {"split_rows": int("9" * 4000)},
        {"csv": {"null": [[[[[[[[]]]]]]]]}},
        {"columns": {"\x00": ["a"]}},
        {1: 2},
    ],
)
def test_hostile_documents_are_problems_never_exceptions(raw: Any) -> None:
    with pytest.raises(InvalidParams) as caught:
        kind().options_for(raw)
    assert caught.value.errors
    assert all(e.message for e in caught.value.errors)


def test_a_deep_document_is_a_problem() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    found = problems({"columns": deep})
    assert "options" in found or "options.columns" in found


def test_a_document_over_the_bound_is_refused_whole() -> None:
    found = problems({"columns": ["c" * 60 + f"{i:03}" for i in range(300)]})
    assert f"at most {limits.OPTIONS_MAX_BYTES:,} bytes" in found["options"]


def test_params_and_options_problems_come_together() -> None:
    text = (
        PLAIN.replace("WHERE", "WHERE :n > 0 AND") + '[kinds.orders.params.n]\ntype = "integer"\n'
    )
    with pytest.raises(InvalidParams) as caught:
        kind(text).check({"n": "x"}, {"split_rows": 0})
    fields = [e.field for e in caught.value.errors]
    assert fields == ["n", "options.split_rows"]


def test_the_unknown_zone_is_refused_when_the_zones_are_known() -> None:
    with pytest.raises(InvalidParams) as caught:
        kind().options_for({"timezone": "Mars/Olympus"}, zones={"UTC", "Europe/Zurich"})
    assert "not a time zone the database knows" in caught.value.errors[0].message
    assert kind().options_for({"timezone": "UTC"}, zones={"UTC"}).timezone == "UTC"


def test_the_schema_shows_defaults_and_locks() -> None:
    schema = kind(LOCKED).options_schema()
    assert schema["x-exportd-locked"] == ["csv.delimiter", "timezone", "csv.bom"]
    properties: Any = schema["properties"]
    assert properties["csv"]["properties"]["delimiter"]["default"] == ";"
    assert properties["timezone"]["default"] == "Europe/Zurich"
    assert to_document(kind(LOCKED).options)["csv"]["bom"] is True


# --- The definition's side: [options], locked_options, labels, [xlsx] ---------------------


def load_problems(extra: str) -> list[str]:
    from exportd.definitions.loader import DefinitionError

    with pytest.raises(DefinitionError) as caught:
        definitions_from_text(PLAIN + extra)
    return caught.value.problems


def test_a_kind_loads_labels_and_its_xlsx_policy() -> None:
    text = PLAIN + (
        '[kinds.orders.labels]\nplaced_at = "Order date"\n'
        '[kinds.orders.xlsx]\nrows_over_limit = "fail"\nlong_text = "fail"\n'
    )
    loaded = kind(text)
    assert dict(loaded.labels) == {"placed_at": "Order date"}
    assert (loaded.xlsx.rows_over_limit, loaded.xlsx.long_text) == ("fail", "fail")
    assert kind().xlsx.rows_over_limit == "new_sheet"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('[kinds.orders.options]\ncsv = { delimiter = ":" }\n', "options.csv.delimiter"),
        ("[kinds.orders.options]\nsplit_rows = 0\n", "options.split_rows"),
        ('[kinds.orders.options]\nzone = "UTC"\n', "options.zone is not an option"),
        ("[kinds.orders.options]\ncsv = { decimal_comma = true }\n", "decimal_comma"),
        ('locked_options = ["csv.quote"]\n', "'csv.quote' is not an option path"),
        ('locked_options = "csv"\n', "locked_options must be a list"),
        ('[kinds.orders.labels]\nid = "a\\u0007b"\n', "labels.id must not contain control"),
        ('[kinds.orders.labels]\nid = ""\n', "labels.id must not be empty"),
        # Postgres cuts an identifier (the header's alias) past 63 bytes.
        (f'[kinds.orders.labels]\nid = "{"x" * 64}"\n', "at most 63 bytes"),
        ('[kinds.orders.labels]\nid = "' + "\U0001f600" * 16 + '"\n', "at most 63 bytes"),
        (f'[kinds.orders.labels]\nid = "{"é" * 32}"\n', "at most 63 bytes"),
        ("[kinds.orders.labels]\nid = 3\n", "labels.id must be a string"),
        ('[kinds.orders.xlsx]\nlong_text = "wrap"\n', "xlsx.long_text must be one of"),
        ('[kinds.orders.xlsx]\nrows = "fail"\n', "unknown key 'rows'"),
    ],
)
def test_a_bad_output_setting_is_a_load_problem_naming_the_kind(extra: str, words: str) -> None:
    found = load_problems(extra)
    assert any(words in p and "kind 'orders'" in p for p in found), found
