"""Named parameters in SQL: ``:name`` placeholders compiled to Postgres's ``$n``.

Definitions are written with names (``WHERE customer = :owner``); Postgres only knows
positions. ``compile_named`` walks the SQL the way Postgres's lexer does, so a colon inside a
string, a quoted identifier, a dollar-quoted body or a comment is left alone, as are casts
(``::``), named arguments (``:=``) and array slices (``a[1:2]``).

Each placeholder becomes ``($n::type)``. The cast makes the server see exactly the declared
type (so a ``date`` parameter compares correctly with a ``timestamptz`` column, and asyncpg
encodes what the definition declared rather than what the server guessed); the parentheses
keep the cast attached to the parameter in every position: ``:ids[1]`` would otherwise read
as a cast to ``text[][1]`` and ``FETCH FIRST :n ROWS ONLY`` would not parse.

The result is one statement without a trailing semicolon, safe to wrap in
``COPY (...) TO STDOUT``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CompiledQuery:
    """Positional SQL, and the parameter name each ``$n`` stands for (``names[n - 1]``)."""

    sql: str
    names: tuple[str, ...]


class UnknownNames(ValueError):
    """The query uses placeholders that are not declared; ``unknown`` lists them all."""

    def __init__(self, unknown: tuple[str, ...], declared: tuple[str, ...]) -> None:
        self.unknown = unknown
        self.declared = declared
        used = ", ".join(f":{name}" for name in unknown)
        super().__init__(
            f"query uses {used}, which {'is' if len(unknown) == 1 else 'are'} not declared "
            f"(declared: {', '.join(declared) or 'nothing'})"
        )


# Identifiers, keywords and numbers, taken whole so that a ':' or '$' inside or right after
# one is never mistaken for a placeholder. Postgres allows '$' inside identifiers.
_WORD = re.compile(r"[\w$]+")
_NAME = re.compile(r"[^\W\d]\w*")
_STRING = re.compile(r"'(?:[^']|'')*'")
_ESCAPE_STRING = re.compile(r"'(?:[^'\\]|''|\\.)*'", re.DOTALL)
_IDENTIFIER = re.compile(r'"(?:[^"]|"")*"')
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_POSITIONAL = re.compile(r"\$[0-9]+")
_COMMENT_EDGE = re.compile(r"/\*|\*/")


def _is_slice_colon(sql: str, index: int) -> bool:
    """A ':' glued to what precedes it ends an operand (a[1:2], a[lo:hi], a[f(x):2]) and so
    separates slice bounds; a placeholder only starts where an operand may start."""
    if index == 0:
        return False
    before = sql[index - 1]
    return before.isalnum() or before in "_$)]"


def _line(sql: str, index: int) -> int:
    return sql.count("\n", 0, index) + 1


def _match_or_fail(pattern: re.Pattern[str], sql: str, index: int, what: str) -> int:
    match = pattern.match(sql, index)
    if match is None:
        raise ValueError(f"line {_line(sql, index)}: unterminated {what}")
    return match.end()


def _block_comment_end(sql: str, index: int) -> int:
    # Postgres block comments nest: /* a /* b */ still a comment */.
    depth = 0
    position = index
    while match := _COMMENT_EDGE.search(sql, position):
        depth += 1 if match.group() == "/*" else -1
        position = match.end()
        if depth == 0:
            return position
    raise ValueError(f"line {_line(sql, index)}: unterminated /* comment")


def compile_named(sql: str, types: Mapping[str, str]) -> CompiledQuery:
    """``sql`` with each ``:name`` replaced by ``($n::types[name])``.

    Raises UnknownNames for names missing from ``types``, and ValueError for positional
    ``$1`` parameters, unterminated strings or comments, more than one statement, or no
    statement at all.
    """
    out: list[str] = []
    names: dict[str, int] = {}
    unknown: dict[str, None] = {}
    ended = False  # a top-level ';' has been seen: only comments may follow
    has_sql = False
    ends_in_line_comment = False
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        start = i
        comment = False
        if char.isspace():
            i += 1
            while i < n and sql[i].isspace():
                i += 1
            out.append(sql[start:i])
            continue
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline
            comment = True
            ends_in_line_comment = True
        elif sql.startswith("/*", i):
            i = _block_comment_end(sql, i)
            comment = True
            ends_in_line_comment = False
        elif char == ";":
            ended = True
            i += 1
            continue  # dropped: COPY (...) cannot contain one
        elif ended:
            raise ValueError(f"line {_line(sql, i)}: a query must be a single statement")
        elif char == "'":
            i = _match_or_fail(_STRING, sql, i, "string")
        elif char == '"':
            i = _match_or_fail(_IDENTIFIER, sql, i, "quoted identifier")
        elif char == "$":
            if positional := _POSITIONAL.match(sql, i):
                raise ValueError(
                    f"line {_line(sql, i)}: positional parameter {positional.group()} is not "
                    "allowed; name it (:name) and declare it"
                )
            if tag := _DOLLAR_TAG.match(sql, i):
                close = sql.find(tag.group(), tag.end())
                if close < 0:
                    raise ValueError(f"line {_line(sql, i)}: unterminated {tag.group()} string")
                i = close + len(tag.group())
            else:
                i += 1
        elif char == ":":
            name = _NAME.match(sql, i + 1)
            if sql.startswith(("::", ":="), i):
                i += 2
            elif name is None or _is_slice_colon(sql, i):
                i += 1
            else:
                key = name.group()
                if key not in types:
                    unknown[key] = None
                number = names.setdefault(key, len(names) + 1)
                out.append(f"(${number}::{types.get(key, 'unknown')})")
                i = name.end()
                has_sql = True
                ends_in_line_comment = False
                continue
        elif char.isalnum() or char == "_":
            word = _WORD.match(sql, i)
            assert word is not None
            i = word.end()
            # E'...' is the one string form where a backslash escapes the quote.
            if word.group() in ("E", "e") and sql.startswith("'", i):
                i = _match_or_fail(_ESCAPE_STRING, sql, i, "E'' string")
        else:
            i += 1
        if not comment:
            has_sql = True
            ends_in_line_comment = False
        out.append(sql[start:i])
    if unknown:
        raise UnknownNames(tuple(unknown), tuple(types))
    if not has_sql:
        raise ValueError("the query is empty")
    compiled = "".join(out).rstrip()
    # Whoever wraps it (COPY (...) TO STDOUT) must not find its ')' commented out.
    if ends_in_line_comment:
        compiled += "\n"
    return CompiledQuery(compiled, tuple(names))


def bind(compiled: CompiledQuery, values: Mapping[str, object]) -> list[object]:
    """The arguments for ``compiled.sql``, in ``$n`` order."""
    missing = [name for name in compiled.names if name not in values]
    if missing:
        raise ValueError(f"no value for {', '.join(':' + name for name in missing)}")
    return [values[name] for name in compiled.names]
