"""Named parameters in SQL: ``:name`` placeholders compiled to Postgres's ``$n``.

Definitions are written with names (``WHERE customer = :owner``); Postgres only knows
positions. ``compile_named`` walks the SQL the way Postgres's lexer does (``scan.l``), so a
colon inside a string, a quoted identifier, a dollar-quoted body or a comment is left alone,
as are casts (``::``), named arguments (``:=``) and array slices (``a[1:2]``).

The compiled query is a sequence of segments: the definition's own text, kept byte for
byte, and a ``Slot`` for each placeholder. Two renderings come from it, both positional:

- ``CompiledQuery.sql``, each slot written ``($n::type)``, for a prepared statement;
- ``inline(compiled, literals)``, each slot written ``(<literal>::type)``, for ``COPY``,
  which takes no bind parameters. The literal goes exactly where the placeholder was and
  nowhere else: no text of the definition is ever searched or rewritten.

The cast makes the server see exactly the declared type (so a ``date`` parameter compares
correctly with a ``timestamptz`` column) and lets the planner see a typed constant; the
parentheses keep the cast attached to the value in every position: ``:ids[1]`` would
otherwise read as a cast to ``text[][1]`` and ``FETCH FIRST :n ROWS ONLY`` would not parse.

The lexer assumes ``standard_conforming_strings = on`` (the default since Postgres 9.1);
the export session pins it, so Postgres reads the text the way it was compiled.

The result is one statement without a trailing semicolon, safe to wrap in
``COPY (...) TO STDOUT``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exportd.definitions.literals import literal


@dataclass(frozen=True)
class Slot:
    """Where a placeholder was: its parameter, its position (``$number``) and its type."""

    name: str
    number: int
    type: str


Segment = str | Slot


@dataclass(frozen=True)
class CompiledQuery:
    """A definition's SQL as segments (its own text and placeholder slots), and the
    parameter name each ``$n`` stands for (``names[n - 1]``)."""

    segments: tuple[Segment, ...]
    names: tuple[str, ...]

    @property
    def sql(self) -> str:
        """The positional text, each slot written ``($n::type)``."""
        return render(self, lambda slot: f"${slot.number}")


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


# Character classes of Postgres's lexer (scan.l). Every character from U+0080 up may
# start or continue an identifier or a dollar-quote tag; '$' continues an identifier but
# not a number, so "1$a$" is the number 1 followed by a dollar-quoted string.
_HIGH = "\u0080-\U0010ffff"
_IDENT = re.compile(rf"[A-Za-z_{_HIGH}][A-Za-z0-9_${_HIGH}]*")
_NUMBER = re.compile(rf"[0-9][A-Za-z0-9_{_HIGH}]*")
_NAME = re.compile(rf"[A-Za-z_{_HIGH}][A-Za-z0-9_{_HIGH}]*")
_SPACE = " \t\n\r\f\v"
_STRING = re.compile(r"'(?:[^']|'')*'")
_ESCAPE_STRING = re.compile(r"'(?:[^'\\]|''|\\.)*'", re.DOTALL)
_IDENTIFIER = re.compile(r'"(?:[^"]|"")*"')
_DOLLAR_TAG = re.compile(rf"\$(?:[A-Za-z_{_HIGH}][A-Za-z0-9_{_HIGH}]*)?\$")
_POSITIONAL = re.compile(r"\$[0-9]+")
_COMMENT_EDGE = re.compile(r"/\*|\*/")
_LINE_END = re.compile(r"[\n\r]")
# A string continues after a closing quote when only whitespace holding a newline (and
# line comments) separate it from the next quote: 'a'<newline>'b' is the one string 'ab',
# read in the first part's mode, so E'...'<newline>'\'' is still an E'' string.
_CONTINUATION = re.compile(r"(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*)*(?=')")


def _is_slice_colon(sql: str, index: int) -> bool:
    """A ':' glued to what precedes it ends an operand (a[1:2], a[lo:hi], a[f(x):2]) and so
    separates slice bounds; a placeholder only starts where an operand may start."""
    if index == 0:
        return False
    before = sql[index - 1]
    return before.isalnum() or before in "_$)]" or before >= "\u0080"


def _line(sql: str, index: int) -> int:
    return sql.count("\n", 0, index) + 1


def _quoted(pattern: re.Pattern[str], sql: str, index: int, what: str) -> int:
    """The end of the quoted string at ``index``, with its continuations."""
    while True:
        match = pattern.match(sql, index)
        if match is None:
            raise ValueError(f"line {_line(sql, index)}: unterminated {what}")
        continued = _CONTINUATION.match(sql, match.end())
        if continued is None:
            return match.end()
        index = continued.end()


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
    """``sql`` as segments, each ``:name`` a ``Slot`` of type ``types[name]``.

    Raises UnknownNames for names missing from ``types``, and ValueError for positional
    ``$1`` parameters, unterminated strings or comments, more than one statement, or no
    statement at all.
    """
    segments: list[Segment] = []
    text: list[str] = []
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
        if char in _SPACE:
            i += 1
            while i < n and sql[i] in _SPACE:
                i += 1
            text.append(sql[start:i])
            continue
        if sql.startswith("--", i):
            # A line comment ends at a carriage return as well as at a line feed.
            end = _LINE_END.search(sql, i)
            i = n if end is None else end.start()
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
            i = _quoted(_STRING, sql, i, "string")
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
                if text:
                    segments.append("".join(text))
                    text.clear()
                segments.append(Slot(key, number, types.get(key, "unknown")))
                i = name.end()
                has_sql = True
                ends_in_line_comment = False
                continue
        elif word := _IDENT.match(sql, i):
            i = word.end()
            # E'...' is the one string form where a backslash escapes the quote.
            if word.group() in ("E", "e") and sql.startswith("'", i):
                i = _quoted(_ESCAPE_STRING, sql, i, "E'' string")
        elif number_match := _NUMBER.match(sql, i):
            i = number_match.end()
        else:
            i += 1
        if not comment:
            has_sql = True
            ends_in_line_comment = False
        text.append(sql[start:i])
    if unknown:
        raise UnknownNames(tuple(unknown), tuple(types))
    if not has_sql:
        raise ValueError("the query is empty")
    tail = "".join(text).rstrip()
    # Whoever wraps it (COPY (...) TO STDOUT) must not find its ')' commented out.
    if ends_in_line_comment:
        tail += "\n"
    if tail:
        segments.append(tail)
    return CompiledQuery(tuple(segments), tuple(names))


def _match_or_fail(pattern: re.Pattern[str], sql: str, index: int, what: str) -> int:
    match = pattern.match(sql, index)
    if match is None:
        raise ValueError(f"line {_line(sql, index)}: unterminated {what}")
    return match.end()


def render(compiled: CompiledQuery, value: Callable[[Slot], str]) -> str:
    """The compiled text with each slot written ``(<value(slot)>::type)``, positionally:
    the definition's own text is copied as it is, whatever it holds."""
    return "".join(
        segment if isinstance(segment, str) else f"({value(segment)}::{segment.type})"
        for segment in compiled.segments
    )


def inline(compiled: CompiledQuery, values: Mapping[str, object]) -> str:
    """The statement for ``COPY``: each slot written ``(<literal>::type)`` with the literal
    of its validated, typed value (``literals.literal``), at the slot's place only.

    Raises ValueError naming every placeholder without a value, and UnsafeValue or
    TypeError for a value no literal can carry.
    """
    missing = [name for name in compiled.names if name not in values]
    if missing:
        raise ValueError(f"no value for {', '.join(':' + name for name in missing)}")
    return render(compiled, lambda slot: literal(values[slot.name], slot.type))
