"""Parameter validation: types, rules, every error at once, and properties over any input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportd.definitions.params.declarations import SpecError, parse_spec
from exportd.definitions.params.schema import json_schema, pg_type
from exportd.definitions.params.spec import InvalidParams, ParamError, ParamSpec, ParamType
from exportd.definitions.params.validation import validate_params
from exportd.definitions.params.values import BIGINT_MAX, render, to_json
from exportd.errors import ErrorKind, ExportError

T = ParamType


def spec(name: str, type_: ParamType, **fields: Any) -> ParamSpec:
    return ParamSpec(name=name, type=type_, **fields)


def specs(*items: ParamSpec) -> dict[str, ParamSpec]:
    return {s.name: s for s in items}


def one(param: ParamSpec, value: object) -> object:
    return validate_params(specs(param), {param.name: value})[param.name]


def errors(param_specs: Mapping[str, ParamSpec], raw: object) -> list[ParamError]:
    with pytest.raises(InvalidParams) as caught:
        validate_params(param_specs, raw)
    return caught.value.errors


def rules(param: ParamSpec, value: object) -> list[str]:
    return [e.rule for e in errors(specs(param), {param.name: value})]


# --- Types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(42, 42), ("42", 42), (" -7 ", -7), (42.0, 42), (Decimal("5"), 5), ("1e3", 1000)],
)
def test_integer_accepts(value: object, expected: int) -> None:
    result = one(spec("n", T.INTEGER), value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value", [True, 4.5, "4.5", "forty", "", float("nan"), float("inf"), [1], {}, "0x10"]
)
def test_integer_rejects(value: object) -> None:
    assert rules(spec("n", T.INTEGER), value) == ["type"]


def test_integer_is_a_bigint() -> None:
    assert one(spec("n", T.INTEGER), BIGINT_MAX) == BIGINT_MAX
    assert rules(spec("n", T.INTEGER), BIGINT_MAX + 1) == ["max"]
    assert rules(spec("n", T.INTEGER), "-1e40") == ["min"]
    assert rules(spec("n", T.INTEGER), 10**10000) == ["max"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.1", "0.1"), (0.1, "0.1"), ("3.10", "3.10"), (7, "7"), ("-2.5e-3", "-0.0025")],
)
def test_number_is_an_exact_decimal(value: object, expected: str) -> None:
    result = one(spec("x", T.NUMBER), value)
    assert isinstance(result, Decimal)
    assert str(result) == str(Decimal(expected))


def test_number_keeps_its_precision() -> None:
    assert str(one(spec("x", T.NUMBER), "0.1")) == "0.1"
    assert str(one(spec("x", T.NUMBER), "3.10")) == "3.10"
    digits = "1234567890.12345678901234567890123456789"
    assert one(spec("x", T.NUMBER), digits) == Decimal(digits)


@pytest.mark.parametrize(
    "value", [True, "NaN", "Infinity", float("nan"), float("-inf"), Decimal("NaN"), "1,5", "1e"]
)
def test_number_rejects(value: object) -> None:
    assert rules(spec("x", T.NUMBER), value) == ["type"]


def test_number_beyond_postgres_numeric() -> None:
    assert rules(spec("x", T.NUMBER), "1e200000") == ["max"]
    assert rules(spec("x", T.NUMBER), "1e-20000") == ["type"]
    assert one(spec("x", T.NUMBER), "0e-99999") == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_boolean_accepts(value: object, expected: bool) -> None:
    assert one(spec("b", T.BOOLEAN), value) is expected


@pytest.mark.parametrize("value", ["yes", "", 2, 1.0, [True]])
def test_boolean_rejects(value: object) -> None:
    assert rules(spec("b", T.BOOLEAN), value) == ["type"]


def test_string() -> None:
    assert one(spec("s", T.STRING), "  kept as is ") == "  kept as is "
    assert one(spec("s", T.STRING), "x'); DROP TABLE t; --") == "x'); DROP TABLE t; --"
    assert rules(spec("s", T.STRING), 12) == ["type"]
    assert rules(spec("s", T.STRING), "nul\x00byte") == ["type"]
    assert rules(spec("s", T.STRING), "lone \ud800 surrogate") == ["type"]


def test_date() -> None:
    assert one(spec("d", T.DATE), "2025-01-31") == date(2025, 1, 31)
    assert one(spec("d", T.DATE), date(2025, 1, 31)) == date(2025, 1, 31)
    for bad in ["31/01/2025", "2025-02-30", "20250131", "2025-01-31T00:00:00Z", 20250131]:
        assert rules(spec("d", T.DATE), bad) == ["type"], bad
    assert rules(spec("d", T.DATE), datetime(2025, 1, 31, tzinfo=UTC)) == ["type"]


def test_date_message_says_what_to_send() -> None:
    [error] = errors(specs(spec("start_date", T.DATE)), {"start_date": "31/01/2025"})
    assert error.message == "start_date must be a date like 2025-01-31, got '31/01/2025'"
    assert error.field == "start_date"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T09:30:00Z", datetime(2025, 1, 31, 9, 30, tzinfo=UTC)),
        ("2025-01-31 09:30+02:00", datetime(2025, 1, 31, 7, 30, tzinfo=UTC)),
        ("2025-01-31t09:30:00.123456z", datetime(2025, 1, 31, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2025-01-31T09:30:00-0500", datetime(2025, 1, 31, 14, 30, tzinfo=UTC)),
    ],
)
def test_datetime_accepts(text: str, expected: datetime) -> None:
    result = one(spec("t", T.DATETIME), text)
    assert isinstance(result, datetime)
    assert result.tzinfo is not None
    assert result == expected


def test_datetime_without_a_time_zone_is_rejected() -> None:
    assert rules(spec("t", T.DATETIME), "2025-01-31T09:30:00") == ["timezone"]
    assert rules(spec("t", T.DATETIME), datetime(2025, 1, 31, 9, 30)) == ["timezone"]
    [error] = errors(specs(spec("t", T.DATETIME)), {"t": "2025-01-31 09:30"})
    assert "time zone" in error.message


@pytest.mark.parametrize(
    "value", ["2025-01-31", "yesterday", "2025-01-31T25:00Z", "2025-01-31T09:30:00.1234567Z", 0]
)
def test_datetime_rejects(value: object) -> None:
    assert rules(spec("t", T.DATETIME), value) == ["type"]


def test_enum() -> None:
    status = spec("status", T.ENUM, values=("open", "shipped"))
    assert one(status, "open") == "open"
    [error] = errors(specs(status), {"status": "Open"})
    assert error.rule == "enum"
    assert error.allowed == ("open", "shipped")
    assert error.message == "status must be one of open, shipped, got 'Open'"


def test_list_of_enum_from_json_and_from_text() -> None:
    statuses = spec("statuses", T.LIST, items=T.ENUM, values=("open", "shipped", "cancelled"))
    assert one(statuses, ["open", "cancelled"]) == ["open", "cancelled"]
    assert one(statuses, "open, shipped") == ["open", "shipped"]
    assert one(statuses, "") == []
    found = errors(specs(statuses), {"statuses": ["open", "lost", 3]})
    assert [(e.field, e.rule) for e in found] == [("statuses[1]", "enum"), ("statuses[2]", "enum")]


def test_list_items_are_typed_and_checked() -> None:
    days = spec("days", T.LIST, items=T.DATE, min=date(2025, 1, 1), max_items=2)
    assert one(days, "2025-01-02,2025-01-03") == [date(2025, 1, 2), date(2025, 1, 3)]
    found = errors(specs(days), {"days": ["2024-12-31", "soon", "2025-01-01"]})
    assert [(e.field, e.rule) for e in found] == [
        ("days", "max_items"),
        ("days[0]", "min"),
        ("days[1]", "type"),
    ]
    assert rules(days, {"a": 1}) == ["type"]
    assert rules(days, [["2025-01-02"]]) == ["type"]


# --- Rules ---------------------------------------------------------------------------------


def test_min_and_max() -> None:
    n = spec("n", T.INTEGER, min=1, max=10)
    assert one(n, 1) == 1
    assert one(n, "10") == 10
    [low] = errors(specs(n), {"n": 0})
    assert (low.rule, low.allowed, low.message) == ("min", 1, "n must be at least 1, got 0")
    assert rules(n, 11) == ["max"]
    x = spec("x", T.NUMBER, min=Decimal("0.5"))
    assert rules(x, "0.49") == ["min"]
    t = spec("t", T.DATETIME, max=datetime(2030, 1, 1, tzinfo=UTC))
    assert rules(t, "2030-01-01T00:00:01Z") == ["max"]
    assert one(t, "2030-01-01T01:00:00+01:00") == datetime(2030, 1, 1, tzinfo=UTC)


def test_string_rules_all_reported() -> None:
    code = spec("code", T.STRING, min_length=3, max_length=5, pattern="[A-Z]+")
    assert one(code, "ABCD") == "ABCD"
    assert rules(code, "ab") == ["min_length", "pattern"]
    assert rules(code, "ABCDEF") == ["max_length"]
    # The pattern must match the whole value, not a part of it.
    assert rules(code, "ABC1") == ["pattern"]


def test_required_optional_and_defaults() -> None:
    declared = specs(
        spec("a", T.INTEGER),
        spec("b", T.INTEGER, required=False, default=5),
        spec("c", T.STRING, required=False),
    )
    assert validate_params(declared, {"a": 1}) == {"a": 1, "b": 5, "c": None}
    # null is absent, as a form with an empty optional field sends it.
    assert validate_params(declared, {"a": 1, "b": None}) == {"a": 1, "b": 5, "c": None}
    [missing] = errors(declared, {})
    assert (missing.field, missing.rule, missing.message) == ("a", "required", "a is required")


def test_unknown_names_list_the_allowed_ones() -> None:
    declared = specs(spec("start_date", T.DATE, required=False))
    [error] = errors(declared, {"start_dat": "2025-01-01"})
    assert error.rule == "unknown"
    assert error.allowed == ("start_date",)
    assert "allowed: start_date" in error.message
    assert "did you mean start_date" in error.message
    [owner] = errors(declared, {"owner": "someone-else"})
    assert owner.rule == "unknown"
    assert "owner" in owner.message


def test_params_must_be_an_object() -> None:
    raws: list[object] = [None, [], "a=1", 3]
    for raw in raws:
        [error] = errors({}, raw)
        assert error.rule == "type"
    assert validate_params({}, {}) == {}


def test_every_error_at_once() -> None:
    declared = specs(
        spec("start_date", T.DATE),
        spec("end_date", T.DATE),
        spec("limit", T.INTEGER, max=100),
        spec("region", T.ENUM, values=("eu", "us")),
    )
    raw = {"start_date": "31/01/2025", "limit": 1000, "region": "asia", "colour": "red"}
    with pytest.raises(InvalidParams) as caught:
        validate_params(declared, raw)
    found = caught.value.errors
    assert sorted((e.field, e.rule) for e in found) == [
        ("colour", "unknown"),
        ("end_date", "required"),
        ("limit", "max"),
        ("region", "enum"),
        ("start_date", "type"),
    ]
    error = caught.value
    assert isinstance(error, ExportError)
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert not error.retryable
    for e in found:
        assert e.message in error.message


def test_strings_from_the_command_line() -> None:
    declared = specs(
        spec("n", T.INTEGER),
        spec("x", T.NUMBER),
        spec("flag", T.BOOLEAN),
        spec("day", T.DATE),
        spec("at", T.DATETIME),
        spec("ids", T.LIST, items=T.INTEGER),
    )
    cli = {"n": "42", "x": "3.10", "flag": "false", "day": "2025-01-31"}
    cli |= {"at": "2025-01-31T10:00:00Z", "ids": "1,2,3"}
    assert validate_params(declared, cli) == {
        "n": 42,
        "x": Decimal("3.10"),
        "flag": False,
        "day": date(2025, 1, 31),
        "at": datetime(2025, 1, 31, 10, tzinfo=UTC),
        "ids": [1, 2, 3],
    }


# --- Casts, schemas, declarations ----------------------------------------------------------


def test_pg_type() -> None:
    assert [pg_type(spec("p", t)) for t in (T.STRING, T.ENUM, T.INTEGER, T.NUMBER)] == [
        "text",
        "text",
        "bigint",
        "numeric",
    ]
    assert [pg_type(spec("p", t)) for t in (T.BOOLEAN, T.DATE, T.DATETIME)] == [
        "boolean",
        "date",
        "timestamptz",
    ]
    assert pg_type(spec("p", T.LIST, items=T.DATE)) == "date[]"
    assert pg_type(spec("p", T.LIST, items=T.ENUM)) == "text[]"


def test_json_schema_of_one_param() -> None:
    n = spec("n", T.INTEGER, min=1, max=10, required=False, default=5, description="How many")
    assert json_schema(n) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "description": "How many",
        "default": 5,
    }
    code = spec("code", T.STRING, pattern="[A-Z]{2}", max_length=2)
    assert json_schema(code) == {"type": "string", "maxLength": 2, "pattern": "^(?:[A-Z]{2})$"}
    ids = spec("ids", T.LIST, items=T.ENUM, values=("a", "b"), max_items=3)
    assert json_schema(ids) == {
        "type": "array",
        "items": {"type": "string", "enum": ["a", "b"]},
        "maxItems": 3,
    }
    assert json_schema(spec("t", T.DATETIME)) == {"type": "string", "format": "date-time"}
    json.dumps(json_schema(spec("x", T.NUMBER, min=Decimal("0.1"), default=Decimal("2.50"))))


def test_json_schema_agrees_with_validation() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    code = spec("code", T.STRING, pattern="[A-Z]{2}", min_length=2)
    for value in ["AB", "ABC", "ab", "A"]:
        accepted = jsonschema.Draft202012Validator(json_schema(code)).is_valid(value)
        assert accepted == (not rules_or_none(code, value)), value


def rules_or_none(param: ParamSpec, value: object) -> list[str]:
    try:
        one(param, value)
    except InvalidParams as error:
        return [e.rule for e in error.errors]
    return []


def test_parse_spec() -> None:
    parsed = parse_spec(
        "statuses",
        {"type": "list", "items": "enum", "values": ["open", "shipped"], "default": ["open"]},
    )
    assert parsed.type is T.LIST
    assert parsed.items is T.ENUM
    assert parsed.default == ["open"]
    assert parsed.required is False
    dated = parse_spec("d", {"type": "date", "min": "2000-01-01", "max": date(2030, 1, 1)})
    assert (dated.min, dated.max, dated.required) == (date(2000, 1, 1), date(2030, 1, 1), True)
    assert parse_spec("x", {"type": "number", "min": 0.1}).min == Decimal("0.1")


@pytest.mark.parametrize(
    ("name", "table", "problem"),
    [
        ("Bad-Name", {"type": "string"}, "must match"),
        ("owner", {"type": "string"}, "reserved"),
        ("p", {}, "type is required"),
        ("p", {"type": "text"}, "type must be one of"),
        ("p", {"type": "string", "requird": True}, "did you mean 'required'"),
        ("p", {"type": "integer", "pattern": "x"}, "'pattern' does not apply to integers"),
        ("p", {"type": "enum"}, "an enum needs values"),
        ("p", {"type": "enum", "values": []}, "values must not be empty"),
        ("p", {"type": "enum", "values": ["a", "a"]}, "listed twice"),
        ("p", {"type": "string", "pattern": "("}, "not a valid regular expression"),
        ("p", {"type": "integer", "min": 5, "max": 1}, "min (5) is greater than max (1)"),
        ("p", {"type": "integer", "min": "five"}, "min must be a whole number"),
        ("p", {"type": "string", "min_length": 3, "max_length": 2}, "greater than max_length"),
        ("p", {"type": "string", "max_length": -1}, "must not be negative"),
        ("p", {"type": "list"}, "a list needs items"),
        ("p", {"type": "list", "items": "list"}, "scalar"),
        ("p", {"type": "list", "items": "string", "max_items": 0}, "at least 1"),
        ("p", {"type": "integer", "default": "x"}, "default must be a whole number"),
        ("p", {"type": "integer", "required": True, "default": 1}, "cannot have a default"),
        ("p", {"type": "integer", "required": "yes"}, "required must be true or false"),
        ("p", {"type": "datetime", "min": datetime(2025, 1, 1)}, "time zone"),
        ("p", {"type": "date", "max": 1, "min": "2025-01-01"}, "max must be a date"),
    ],
)
def test_parse_spec_problems(name: str, table: dict[str, object], problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(name, table)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


# --- Properties ------------------------------------------------------------------------------

UTC_PLUS_2 = timezone(timedelta(hours=2))

EVERY_TYPE = specs(
    spec("s", T.STRING, required=False, min_length=1, max_length=5, pattern="[a-z]+"),
    spec("e", T.ENUM, required=False, values=("a", "b")),
    spec("i", T.INTEGER, required=False, min=-5, max=5),
    spec("n", T.NUMBER, required=False, min=Decimal("-1.5"), max=Decimal("1e6")),
    spec("b", T.BOOLEAN, required=False, default=True),
    spec("d", T.DATE, required=False, min=date(2000, 1, 1)),
    spec("t", T.DATETIME, required=False, max=datetime(2100, 1, 1, tzinfo=UTC_PLUS_2)),
    spec("li", T.LIST, required=False, items=T.INTEGER, max_items=3, min=0),
    spec("le", T.LIST, required=False, items=T.ENUM, values=("x", "y")),
    spec("ld", T.LIST, required=False, items=T.DATETIME),
)

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
# Strings shaped like what the parsers look for, so the property reaches past the first check.
PLAUSIBLE = """
    1 0 -5 1e3 1e999999 0.1 true 2025-01-31 2025-02-30 a,b,c x,1,, NaN Infinity
    2025-01-31T10:00:00 2025-01-31T10:00:00Z 0001-01-01T00:00+01:00 9999-12-31T23:59:59-01:00
"""
plausible_text = st.sampled_from(["", "\x00", "\ud800", *PLAUSIBLE.split()])
value = json_like | plausible_text | st.lists(plausible_text, max_size=4)
param_objects = st.dictionaries(st.sampled_from([*EVERY_TYPE, "owner", "zz"]), value, max_size=6)


@settings(max_examples=500)
@given(raw=param_objects | json_like)
def test_validate_raises_nothing_but_invalid_params(raw: object) -> None:
    try:
        outcome: dict[str, object] | InvalidParams = validate_params(EVERY_TYPE, raw)
    except InvalidParams as error:
        outcome = error
    if isinstance(outcome, InvalidParams):
        assert outcome.errors
        assert all(isinstance(e, ParamError) and e.message for e in outcome.errors)
        assert str(outcome)
    else:
        assert set(outcome) == set(EVERY_TYPE)
        assert not any(isinstance(v, float) for v in outcome.values())


aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.builds(
        timezone, st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
    ),
)
scalar_values: dict[ParamType, st.SearchStrategy[object]] = {
    T.STRING: st.text(alphabet="abcdefghij", min_size=1, max_size=5),
    T.ENUM: st.sampled_from(["a", "b"]),
    T.INTEGER: st.integers(-5, 5),
    T.NUMBER: st.decimals(min_value="-1.5", max_value="1e6", allow_nan=False, places=4)
    | st.decimals(min_value="-1.5", max_value="1e6", allow_nan=False),
    T.BOOLEAN: st.booleans(),
    T.DATE: st.dates(min_value=date(2000, 1, 1)),
    T.DATETIME: aware_datetimes,
}
valid_values = st.fixed_dictionaries(
    {},
    optional={
        "s": scalar_values[T.STRING],
        "e": scalar_values[T.ENUM],
        "i": scalar_values[T.INTEGER],
        "n": scalar_values[T.NUMBER],
        "b": scalar_values[T.BOOLEAN],
        "d": scalar_values[T.DATE],
        "t": scalar_values[T.DATETIME],
        "li": st.lists(st.integers(0, 10**12), max_size=3),
        "le": st.lists(st.sampled_from(["x", "y"])),
        "ld": st.lists(aware_datetimes, max_size=3),
    },
)


@settings(max_examples=300)
@given(values=valid_values)
def test_valid_values_round_trip(values: dict[str, object]) -> None:
    typed = validate_params(EVERY_TYPE, values)
    for name, given_value in values.items():
        assert typed[name] == given_value
    # What an API client sends: the JSON text of each typed value.
    as_json = json.loads(json.dumps({k: to_json(v) for k, v in typed.items()}))
    assert validate_params(EVERY_TYPE, as_json) == typed
    # What a command line sends: every value as text.
    as_text = {k: render(v) for k, v in typed.items() if v is not None}
    assert validate_params(EVERY_TYPE, as_text) == typed
