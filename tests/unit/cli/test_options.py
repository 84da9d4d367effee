"""``--option PATH=VALUE``: dotted paths, values read as JSON when they parse."""

from __future__ import annotations

import pytest

from exportd.cli.exits import EXIT_USAGE, CliError
from exportd.cli.main import _parser
from exportd.cli.options import parse_options


def test_dotted_paths_and_json_values_make_one_document() -> None:
    pairs = [
        "csv.profile=excel",
        "csv.delimiter=;",
        "csv.bom=false",
        "split_rows=100000",
        'columns=["id", "placed_at"]',
        "timezone=Europe/Zurich",
        'csv.null="null"',
        "json.big_numbers=string",
    ]
    assert parse_options(pairs) == {
        "csv": {"profile": "excel", "delimiter": ";", "bom": False, "null": "null"},
        "split_rows": 100000,
        "columns": ["id", "placed_at"],
        "timezone": "Europe/Zurich",
        "json": {"big_numbers": "string"},
    }


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_constants_json_lacks_are_texts(text: str) -> None:
    # Python's JSON reader takes them as floats, which jsonb refuses.
    assert parse_options([f"csv.null={text}"]) == {"csv": {"null": text}}


@pytest.mark.parametrize(
    ("pairs", "words"),
    [
        (["csv.profile"], "takes PATH=VALUE"),
        (["=1"], "takes PATH=VALUE"),
        (["csv..bom=true"], "takes PATH=VALUE"),
        (["split_rows=1", "split_rows=2"], "given twice"),
        (["csv=1", "csv.bom=true"], "conflicts"),
    ],
)
def test_malformed_options_are_usage_errors(pairs: list[str], words: str) -> None:
    with pytest.raises(CliError) as refused:
        parse_options(pairs)
    assert words in str(refused.value)
    assert refused.value.code == EXIT_USAGE


def test_enqueue_takes_repeated_options() -> None:
    args = _parser().parse_args(
        ["enqueue", "orders", "--owner", "u", "--option", "a=1", "--option", "csv.bom=true"]
    )
    assert parse_options(args.option) == {"a": 1, "csv": {"bom": True}}
