"""Loading export definitions: files, directories, every problem at once, file names, schemas."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from exportd.definitions.kinds import Definitions, Kind, safe_filename
from exportd.definitions.loader import (
    DEFAULT_TIMEOUT_SECONDS,
    DefinitionError,
    definitions_from_text,
    load_definitions,
)
from exportd.definitions.params.spec import InvalidParams, ParamType
from exportd.errors import ErrorKind, ExportError
from tests.support.definition_problems import problems_of

ORDERS = '''
[kinds.orders]
description = "A customer's orders in a date range"
filename = "orders-{start_date}-to-{end_date}"
timeout = 300
query = """
SELECT id, placed_at, total, status
FROM shop.orders
WHERE customer = :owner
  AND placed_at >= :start_date AND placed_at < :end_date
  AND status = ANY(:statuses)
ORDER BY placed_at
"""

[kinds.orders.params.start_date]
type = "date"
description = "First day, inclusive"
min = "2000-01-01"

[kinds.orders.params.end_date]
type = "date"

[kinds.orders.params.statuses]
type = "list"
items = "enum"
values = ["open", "shipped", "cancelled"]
default = ["open", "shipped"]
max_items = 10
'''

CUSTOMERS = """
[kinds.customers]
query = "SELECT * FROM shop.customers WHERE account = :owner"

[kinds.invoices]
description = "Invoices over an amount"
query = "SELECT * FROM shop.invoices WHERE account = :owner AND total >= :min_total"
params.min_total = { type = "number", min = 0, default = "0.00" }
"""


def orders() -> Kind:
    kind = definitions_from_text(ORDERS).get("orders")
    assert kind is not None
    return kind


# --- Loading -------------------------------------------------------------------------------


def test_load_a_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(ORDERS)
    definitions = load_definitions(path)
    kind = definitions["orders"]
    assert kind.source == str(path)
    assert kind.description == "A customer's orders in a date range"
    assert kind.timeout_seconds == 300
    assert list(kind.params) == ["start_date", "end_date", "statuses"]
    assert kind.params["start_date"].type is ParamType.DATE
    assert kind.params["start_date"].min == date(2000, 1, 1)
    assert kind.params["statuses"].required is False
    assert kind.query is not None
    assert kind.query.lstrip().startswith("SELECT id")
    assert kind.compiled.names == ("owner", "start_date", "end_date", "statuses")
    assert "ANY(($4::text[]))" in kind.compiled.sql


def test_load_a_directory(tmp_path: Path) -> None:
    (tmp_path / "b-shop.toml").write_text(ORDERS)
    (tmp_path / "a-customers.toml").write_text(CUSTOMERS)
    (tmp_path / "notes.txt").write_text("not a definition")
    definitions = load_definitions(tmp_path)
    assert definitions.names() == ("customers", "invoices", "orders")
    assert list(definitions) == ["customers", "invoices", "orders"]
    assert len(definitions) == 3
    assert "orders" in definitions
    assert "refunds" not in definitions
    assert definitions.get("refunds") is None
    customers = definitions["customers"]
    assert customers.timeout_seconds == DEFAULT_TIMEOUT_SECONDS
    assert customers.filename_template == "{kind}"
    assert customers.params == {}
    assert definitions["invoices"].params["min_total"].default == Decimal("0.00")


def test_an_unknown_kind_is_an_export_error() -> None:
    definitions = definitions_from_text(CUSTOMERS)
    assert definitions.require("customers").name == "customers"
    with pytest.raises(ExportError) as caught:
        definitions.require("refunds")
    assert caught.value.kind is ErrorKind.UNKNOWN_KIND
    assert "customers, invoices" in caught.value.message


def test_a_kind_defined_twice_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "one.toml").write_text(CUSTOMERS)
    (tmp_path / "two.toml").write_text(CUSTOMERS.replace("invoices", "bills"))
    with pytest.raises(DefinitionError) as caught:
        load_definitions(tmp_path)
    [problem] = caught.value.problems
    assert "'customers'" in problem
    assert str(tmp_path / "one.toml") in problem
    assert str(tmp_path / "two.toml") in problem


def test_problems_in_every_file_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[kinds.x]\nquery = 'SELECT 1'\ntimeout = \n")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe")
    (tmp_path / "worse.toml").write_text("[kinds.y]\nquery = 'SELECT :nope'\n")
    with pytest.raises(DefinitionError) as caught:
        load_definitions(tmp_path)
    bad, binary, worse = caught.value.problems
    assert bad.startswith(f"{tmp_path / 'bad.toml'}: invalid TOML")
    assert "line 3" in bad
    assert binary.startswith(f"{tmp_path / 'binary.toml'}: is not UTF-8")
    assert worse.startswith(f"{tmp_path / 'worse.toml'}: kind 'y': query uses :nope")
    assert str(caught.value).startswith("3 problems in the export definitions:")


def test_missing_and_empty_places(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no such file or directory"):
        load_definitions(tmp_path / "absent.toml")
    with pytest.raises(DefinitionError, match=r"no \*\.toml files"):
        load_definitions(tmp_path)
    assert problems_of("") == ["shop.toml: defines no kinds (expected [kinds.<name>] tables)"]


# --- Every structural problem, all at once ---------------------------------------------------

BROKEN = '''
[kind.typo]
query = "SELECT 1"

[kinds.Orders]
query = "SELECT 1"

[kinds.orders]
descripton = "typo in a key"
timeout = "300"
filename = "orders-{start}-{missing}-{start_date:%Y}"
query = """
SELECT * FROM shop.orders
WHERE customer = :owner AND placed_at >= :start_dat AND x = $1
"""

[kinds.orders.params.start_date]
type = "date"
requird = true

[kinds.orders.params.limit]
type = "integer"
min = 10
max = 1
pattern = "[0-9]+"

[kinds.orders.params.status]
type = "enum"

[kinds.orders.params.code]
type = "string"
pattern = "(unclosed"
default = 5

[kinds.orders.params.owner]
type = "string"

[kinds.orders.params.unused]
type = "boolean"
default = "maybe"

[kinds.empty]
query = "  "

[kinds.noquery]
timeout = 0

[kinds.positional]
query = "SELECT * FROM t WHERE id = $1"

[kinds.unused]
query = "SELECT 1"
params.flag = { type = "boolean", required = false }
'''

EXPECTED = [
    "shop.toml: unknown key 'kind' (did you mean 'kinds'?)",
    "shop.toml: kind 'Orders': a kind name must match [a-z][a-z0-9_-]*",
    "shop.toml: kind 'orders': unknown key 'descripton' (did you mean 'description'?)",
    "shop.toml: kind 'orders': timeout must be a whole number of seconds, got '300'",
    "shop.toml: kind 'orders': param 'start_date': unknown key 'requird' (did you mean",
    "shop.toml: kind 'orders': param 'limit': 'pattern' does not apply to integers",
    "shop.toml: kind 'orders': param 'limit': min (10) is greater than max (1)",
    "shop.toml: kind 'orders': param 'status': an enum needs values",
    "shop.toml: kind 'orders': param 'code': pattern '(unclosed' is not a valid regular expression",
    "shop.toml: kind 'orders': param 'owner': 'owner' is reserved",
    "shop.toml: kind 'orders': param 'unused': default must be true or false, got 'maybe'",
    "shop.toml: kind 'orders': filename placeholder {start} is not allowed",
    "shop.toml: kind 'orders': filename placeholder {missing} is not allowed",
    "shop.toml: kind 'orders': filename placeholder {start_date:%Y} is not allowed",
    "shop.toml: kind 'orders': query: line 2: positional parameter $1 is not allowed",
    "shop.toml: kind 'empty': query is empty",
    "shop.toml: kind 'noquery': query is required",
    "shop.toml: kind 'noquery': timeout must be between 1 and 86400 seconds, got 0",
    "shop.toml: kind 'positional': query: line 1: positional parameter $1 is not allowed",
    "shop.toml: kind 'unused': param 'flag' is declared but used in neither the query nor",
]


def test_every_problem_is_collected_at_once() -> None:
    problems = problems_of(BROKEN)
    for expected in EXPECTED:
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == len(EXPECTED), problems


def test_an_undeclared_name_lists_the_declared_ones() -> None:
    text = ORDERS.replace(":start_date AND", ":start_dat AND")
    assert problems_of(text) == [
        "shop.toml: kind 'orders': query uses :start_dat, which is not a declared parameter "
        "(declared: start_date, end_date, statuses)"
    ]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('query = "SELECT 1"\nparams = 3', "params must be a table"),
        ('query = "SELECT 1"\nparams.x = 3', "param 'x' must be a table"),
        ('query = "SELECT :x"\nparams.x = { type = "list", items = "list" }', "scalar"),
        ('query = "SELECT 1 /* open"', "unterminated /* comment"),
        ('query = "SELECT 1; SELECT 2"', "single statement"),
        ("query = 42", "query must be a string"),
        ('query = "SELECT 1"\nfilename = "{"', "not a valid template"),
        ('query = "SELECT 1"\ntimeout = 1.5', "whole number of seconds"),
        ('query = "SELECT 1"\ntimeout = 864000', "between 1 and 86400"),
    ],
)
def test_kind_problems(table: str, problem: str) -> None:
    [found] = problems_of(f"[kinds.k]\n{table}\n")
    assert found.startswith("shop.toml: kind 'k': ")
    assert problem in found


def test_kinds_must_be_tables() -> None:
    assert problems_of("kinds = 3") == [
        "shop.toml: defines no kinds (expected [kinds.<name>] tables)"
    ]
    assert problems_of("[kinds]\nk = 3") == ["shop.toml: kind 'k': must be a table"]


# --- Using a kind ----------------------------------------------------------------------------


def test_validate_and_bind() -> None:
    kind = orders()
    values = kind.validate({"start_date": "2025-01-01", "end_date": "2025-02-01"})
    sql = kind.bind("acme", values)
    assert sql == kind.compiled.sql.replace("$1", "E'acme'").replace("$2", "E'2025-01-01'").replace(
        "$3", "E'2025-02-01'"
    ).replace("$4", "ARRAY[E'open'::text,E'shipped'::text]")
    # Not even a caller's mistake can put somebody else's name in :owner.
    assert kind.bind("acme", {**values, "owner": "other"}) == sql
    with pytest.raises(InvalidParams):
        kind.validate({"start_date": "1999-12-31"})


def test_filename_renders_values() -> None:
    kind = orders()
    values = kind.validate({"start_date": "2025-01-01", "end_date": "2025-02-01"})
    assert kind.filename(values, "csv") == "orders-2025-01-01-to-2025-02-01.csv"
    assert kind.filename(values, ".csv.gz") == "orders-2025-01-01-to-2025-02-01.csv.gz"
    assert kind.filename(values, "") == "orders-2025-01-01-to-2025-02-01"


def test_filename_default_and_builtin_fields() -> None:
    definitions = definitions_from_text(CUSTOMERS)
    assert definitions["customers"].filename({}, "csv") == "customers.csv"


def test_filename_braces_and_toml_values() -> None:
    kind = definitions_from_text(
        """
        [kinds.k]
        query = "SELECT :at"
        filename = "{{raw}}-{kind}-{at}"
        [kinds.k.params.at]
        type = "datetime"
        min = 1979-05-27T07:32:00Z
        default = 2025-01-01T00:00:00+02:00
        """
    )["k"]
    assert kind.filename(kind.validate({}), "csv") == "{raw}-k-2025-01-01T00_00_00+02_00.csv"


def filename_for(template: str, value: object) -> str:
    kind = definitions_from_text(
        f'[kinds.k]\nquery = "SELECT :v"\nfilename = {template!r}\nparams.v.type = "string"\n'
    )["k"]
    return kind.filename({"v": value}, "csv")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../etc/passwd", "k-.._.._etc_passwd.csv"),
        ('a\\b:c*d?e"f<g>h|i', "k-a_b_c_d_e_f_g_h_i.csv"),
        ("line\nbreak\ttab\x00nul", "k-line_break_tab_nul.csv"),
        ("evil\u202etxt.exe", "k-evil_txt.exe.csv"),
        ("Ünïcödé 東京 ✓", "k-Ünïcödé 東京 ✓.csv"),
        ("trailing. . ", "k-trailing.csv"),
    ],
)
def test_filename_is_made_safe(value: str, expected: str) -> None:
    assert filename_for("k-{v}", value) == expected


def test_filename_never_empty_nor_hidden() -> None:
    assert filename_for("{v}", "") == "k.csv"
    assert filename_for("{v}", " ... ") == "k.csv"
    assert filename_for("{v}", ".hidden") == "hidden.csv"


def test_filename_length_is_bounded() -> None:
    assert len(filename_for("{v}", "x" * 1000)) == 150 + len(".csv")
    wide = filename_for("{v}", "東" * 1000)
    assert len(wide.removesuffix(".csv").encode()) <= 200
    assert safe_filename("a" * 149 + " b") == "a" * 149


def test_kind_json_schema() -> None:
    schema = orders().json_schema()
    assert schema["type"] == "object"
    assert schema["title"] == "orders"
    assert schema["description"] == "A customer's orders in a date range"
    assert schema["required"] == ["start_date", "end_date"]
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {
        "start_date": {
            "type": "string",
            "format": "date",
            "formatMinimum": "2000-01-01",
            "description": "First day, inclusive",
        },
        "end_date": {"type": "string", "format": "date"},
        "statuses": {
            "type": "array",
            "items": {"type": "string", "enum": ["open", "shipped", "cancelled"]},
            "maxItems": 10,
            "default": ["open", "shipped"],
        },
    }


def test_kind_json_schema_is_a_valid_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator
    schema = orders().json_schema()
    validator.check_schema(schema)
    good = {"start_date": "2025-01-01", "end_date": "2025-02-01", "statuses": ["open"]}
    assert validator(schema).is_valid(good)
    assert not validator(schema).is_valid({**good, "colour": "red"})
    assert not validator(schema).is_valid({"start_date": "2025-01-01"})
    assert not validator(schema).is_valid({**good, "statuses": ["lost"]})


def test_definitions_is_a_mapping() -> None:
    definitions = Definitions([orders()])
    assert dict(definitions) == {"orders": orders()}
