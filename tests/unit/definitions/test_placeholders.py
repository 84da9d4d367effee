"""Compiling :name placeholders: what must change, what must not, and a real Postgres run."""

from __future__ import annotations

import pytest

from exportd.definitions.placeholders import (
    CompiledQuery,
    Slot,
    UnknownNames,
    compile_named,
    inline,
)

TYPES = {"owner": "text", "a": "date", "ids": "bigint[]", "n": "bigint"}


def sql(text: str) -> str:
    return compile_named(text, TYPES).sql


def test_placeholders_become_cast_positions() -> None:
    compiled = compile_named("SELECT * FROM t WHERE o = :owner AND d >= :a", TYPES)
    assert compiled == CompiledQuery(
        (
            "SELECT * FROM t WHERE o = ",
            Slot("owner", 1, "text"),
            " AND d >= ",
            Slot("a", 2, "date"),
        ),
        ("owner", "a"),
    )
    assert compiled.sql == "SELECT * FROM t WHERE o = ($1::text) AND d >= ($2::date)"


def test_a_repeated_name_keeps_its_number() -> None:
    compiled = compile_named(":owner, :a, :owner,:a", TYPES)
    assert compiled.sql == "($1::text), ($2::date), ($1::text),($2::date)"
    assert compiled.names == ("owner", "a")


def test_placeholders_in_operand_positions() -> None:
    assert sql("x=:n") == "x=($1::bigint)"
    assert sql("ANY(:ids)") == "ANY(($1::bigint[]))"
    assert sql("BETWEEN :a AND :a") == "BETWEEN ($1::date) AND ($1::date)"
    assert sql("arr[:n]") == "arr[($1::bigint)]"
    # The parentheses keep a subscript off the cast ('::bigint[][1]' would be a type).
    assert sql(":ids[1]") == "($1::bigint[])[1]"
    assert sql("FETCH FIRST :n ROWS ONLY") == "FETCH FIRST ($1::bigint) ROWS ONLY"


@pytest.mark.parametrize(
    "untouched",
    [
        "SELECT x::date, y::text[]",
        "SELECT f(a := 1)",
        "SELECT ':a', 'it''s :a', ''",
        r"SELECT E'\':a', e'\\', E'it''s :a'",
        'SELECT "weird :a", "say ""hi"":a"',
        "SELECT $$ :a $$, $fn$ :a $$ $ids $fn$",
        "SELECT 1 -- :a and 'unterminated\n, 2",
        "SELECT /* :a /* nested :a */ still :a */ 1",
        "SELECT a[1:2], a[lo:hi], a[f(x):n], a[1:], a[:2]",
        "SELECT foo$bar, x:a",
        "SELECT U&'\\0041 :a', B'101', X'1F'",
    ],
)
def test_what_must_not_be_touched(untouched: str) -> None:
    assert compile_named(untouched, TYPES) == CompiledQuery((untouched.rstrip(),), ())


def test_only_the_code_around_literals_is_compiled() -> None:
    text = "SELECT ':a' || :a || $$:a$$ /* :a */ || \":a\" -- :a\n, :n"
    expected = "SELECT ':a' || ($1::date) || $$:a$$ /* :a */ || \":a\" -- :a\n, ($2::bigint)"
    assert sql(text) == expected


def test_unknown_names_are_all_reported() -> None:
    with pytest.raises(UnknownNames) as caught:
        compile_named("SELECT :start_dat, :a, :Owner, :start_dat", TYPES)
    assert caught.value.unknown == ("start_dat", "Owner")
    assert "start_dat" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_positional_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"line 2: positional parameter \$1"):
        compile_named("SELECT :a\nWHERE x = $1", TYPES)
    # In a literal or a comment a $1 is just text.
    assert sql("SELECT '$1' -- $2\n") == "SELECT '$1' -- $2\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 'open", "unterminated string"),
        (r"SELECT E'open\'", "unterminated E'' string"),
        ('SELECT "open', "unterminated quoted identifier"),
        ("SELECT $x$ open $y$", r"unterminated \$x\$ string"),
        ("SELECT /* /* */", "unterminated /\\* comment"),
        ("SELECT 1; SELECT 2", "single statement"),
        ("-- nothing here\n/* nor here */", "empty"),
    ],
)
def test_malformed_sql(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        compile_named(text, TYPES)


def test_the_result_can_be_wrapped_in_copy() -> None:
    # A trailing semicolon or line comment would break COPY (...) TO STDOUT.
    assert sql("SELECT 1;\n") == "SELECT 1"
    assert sql("SELECT 1; -- done") == "SELECT 1 -- done\n"
    assert sql("SELECT 1 -- done") == "SELECT 1 -- done\n"


def test_inline_puts_each_literal_at_its_slot_only() -> None:
    compiled = compile_named("SELECT :n, ':n $1', :owner, :n -- :n $2\n", TYPES)
    assert inline(compiled, {"owner": "a'b\\", "n": 7, "a": None}) == (
        "SELECT (E'7'::bigint), ':n $1', (E'a''b\\\\'::text), (E'7'::bigint) -- :n $2\n"
    )
    with pytest.raises(ValueError, match=":n"):
        inline(compiled, {"owner": "acme"})


# Each text holds ':a' only inside a string or a comment as Postgres reads it; a lexer
# that disagreed with Postgres would see a placeholder there (and put a value inside
# what Postgres reads as a string).
LEXER_CASES = [
    # Every character from U+0080 continues an identifier: none of these opens an E''
    # string, so '\' is a whole standard string.
    "SELECT x\u00a0e'\\' || ':a'",
    "SELECT \u20ace'\\' || ':a'",
    # A dollar-quote tag may hold such characters, and a number ends before a '$'.
    "SELECT $\u20ac$ :a $\u20ac$",
    "SELECT 1 + length($q$ :a $q$)",
    "SELECT 1$q$ :a $q$",
    # A line comment ends at a carriage return as well.
    "SELECT 1 -- c\r, ':a'",
    # An E'' string continued on the next line (even past a comment) is still one.
    "SELECT E'x'\n'\\' :a '",
    "SELECT E'x' -- c\n  '\\' :a '",
]


@pytest.mark.parametrize("text", LEXER_CASES)
def test_lexing_follows_postgres(text: str) -> None:
    assert compile_named(text, TYPES).names == ()
