"""Which columns a job's options change, and the projection they make."""

from __future__ import annotations

from exportd.definitions.options.model import CsvOptions, JobOptions, JsonOptions
from exportd.export.columns import Column
from exportd.export.projection import (
    Shaping,
    TypeFacts,
    projection_sql,
    shaping_for,
    value_template,
)

TEXT = TypeFacts("S", "text")
CHAR = TypeFacts("S", "bpchar")
ENUM = TypeFacts("E", "mood", "public")
NUMERIC = TypeFacts("N", "numeric")
INT8 = TypeFacts("N", "int8")
INT4 = TypeFacts("N", "int4")
MONEY = TypeFacts("N", "money")
STAMP = TypeFacts("D", "timestamptz")
OWN_NUMERIC = TypeFacts("N", "numeric", "shop")  # a user's type that shares the name


def test_each_option_applies_to_its_own_types() -> None:
    guard = Shaping(formula_guard=True)
    assert value_template(TEXT, guard) == "column_formula_guard"
    assert value_template(CHAR, guard) == "column_formula_guard"
    # xml content may be bare text ('=1+1'::xml), so it is guarded too.
    assert value_template(TypeFacts("U", "xml"), guard) == "column_formula_guard"
    for facts in (ENUM, NUMERIC, INT8, STAMP):
        assert value_template(facts, guard) is None
    comma = Shaping(decimal_comma=True)
    assert value_template(NUMERIC, comma) == "column_decimal_comma"
    assert value_template(TypeFacts("N", "float8"), comma) == "column_decimal_comma"
    for facts in (INT8, MONEY, TEXT, OWN_NUMERIC):
        assert value_template(facts, comma) is None
    big = Shaping(big_numbers=True)
    assert value_template(INT8, big) == "column_json_big_int"
    assert value_template(NUMERIC, big) == "column_json_big_numeric"
    for facts in (INT4, TEXT, TypeFacts("N", "float8")):
        assert value_template(facts, big) is None


def test_csv_and_json_options_stay_in_their_encoding() -> None:
    options = JobOptions(
        columns=("a",),
        csv=CsvOptions(delimiter=";", formula_guard=True, decimal_comma=True),
        json=JsonOptions("string"),
    )
    assert shaping_for(options, "d", "csv") == Shaping(("a",), True, True, True, False)
    assert shaping_for(options, "d", "jsonl") == Shaping(("a",), big_numbers=True)
    per_dataset = JobOptions(columns=("a",), dataset_columns={"d": ("b", "a")})
    assert shaping_for(per_dataset, "d", "csv").columns == ("b", "a")
    assert shaping_for(per_dataset, "e", "csv").columns == ("a",)


COLUMNS = [
    Column("id", "id", "int4", 23),
    Column("name", "Full name", "text", 25),
    Column("amount", "amount", "numeric", 1700),
]
FACTS = {23: INT4, 25: TEXT, 1700: NUMERIC}


def test_nothing_to_change_is_no_projection() -> None:
    assert projection_sql("SELECT 1", COLUMNS, FACTS, Shaping()) is None
    # Values of no affected type: the statement as it is.
    assert projection_sql("SELECT 1", COLUMNS, FACTS, Shaping(big_numbers=True)) is not None
    assert projection_sql("SELECT 1", COLUMNS[:1], FACTS, Shaping(big_numbers=True)) is None


def test_the_projection_quotes_names_and_labels_and_keeps_the_statement() -> None:
    odd = [Column('we"ird', 'a "label"', "text", 25), *COLUMNS]
    text = projection_sql("SELECT /* x */ 1", odd, FACTS, Shaping(labels=True, formula_guard=True))
    assert text is not None
    assert 'AS "a ""label"""' in text
    assert 't."we""ird"' in text
    assert 't."id" AS "id"' in text
    assert 'AS "Full name"' in text
    assert "\nSELECT /* x */ 1\n) AS t" in text
    # In JSON the names stay the keys.
    json_text = projection_sql("SELECT 1", COLUMNS, FACTS, Shaping(columns=("id",)))
    assert json_text is not None
    assert 'AS "Full name"' not in json_text
