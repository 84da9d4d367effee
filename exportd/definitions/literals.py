"""Validated, typed param values written as SQL literals, for statements that take no bind
parameters (``COPY``). Pure.

Each value becomes one ``E'...'`` string constant, which ``placeholders.inline`` places exactly
where its placeholder was and follows with the declared cast, so Postgres reads the value
through the type's own input function and the planner sees a typed constant.

Why an ``E''`` string: inside it a backslash is always an escape, whatever
``standard_conforming_strings`` says, so doubling every backslash and every quote gives the
same string under every setting; a quote is never written ``\\'``, which
``backslash_quote = off`` would refuse. Postgres text cannot hold NUL, and a lone
surrogate has no UTF-8 form: both are refused here rather than left to a server error.

Every value is written in a form whose meaning no setting changes: numbers in plain
decimal (``NaN`` and ``Infinity`` spelled as Postgres reads them), booleans as
``true``/``false``, dates as ISO 8601 ``YYYY-MM-DD`` (read the same under every
``DateStyle``), instants in ISO 8601 at UTC (``+00:00``, independent of ``TimeZone``), and
arrays with the ``ARRAY[...]`` constructor of typed elements, so that neither an element's
quotes, commas, braces or backslashes nor the ``array_nulls`` setting can change what the
array holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal


class UnsafeValue(ValueError):
    """A value that no SQL literal can carry (NUL, a lone surrogate, a wall-clock time)."""


def quote(text: str) -> str:
    """``text`` as an ``E'...'`` string constant.

    Raises UnsafeValue for a NUL character or text that has no UTF-8 form.
    """
    if "\x00" in text:
        raise UnsafeValue("a NUL character cannot reach Postgres text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeValue("the text is not valid Unicode (a lone surrogate)") from None
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def value_text(value: object) -> str:
    """The input text Postgres reads a scalar value from (see the module's docstring).

    Raises UnsafeValue for a datetime without a time zone and TypeError for a value of no
    param type.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if number.is_nan():
            return "NaN"
        if number.is_infinite():
            return "-Infinity" if number < 0 else "Infinity"
        # Positional notation: no exponent for a reader to misjudge the size of.
        return format(number, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise UnsafeValue("a date and time without a time zone means different instants")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"no SQL literal for a {type(value).__name__}")


def literal(value: object, pg_type: str) -> str:
    """``value`` as a constant of ``pg_type`` (a param type: ``text``, ``bigint``,
    ``numeric``, ``boolean``, ``date``, ``timestamptz``, or an array of one: ``text[]``),
    without the outer cast, which the caller adds: ``E'acme'``, ``NULL``,
    ``ARRAY[E'a'::text,E'b'::text]``, ``ARRAY[]``.

    Raises UnsafeValue or TypeError as ``quote`` and ``value_text`` do, and TypeError for a
    non-sequence given to an array type.
    """
    if value is None:
        return "NULL"
    if pg_type.endswith("[]"):
        element = pg_type[:-2]
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError(f"{pg_type} needs a list, got a {type(value).__name__}")
        return "ARRAY[" + ",".join(f"{literal(v, element)}::{element}" for v in value) + "]"
    return quote(value_text(value))
