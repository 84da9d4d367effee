"""One parameter value: read from the JSON or text a job carries into its typed form
(int, Decimal, date...), and written back as text and as JSON.

Every type accepts its JSON form and a string form, because params arrive as JSON (from
the API) or as strings (from ``--param k=v`` on the command line, or a form). Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from exportd.definitions.params.spec import ParamSpec, ParamType

# Postgres limits, checked here so that an out-of-range value is a parameter error the
# requester can fix, rather than a query error after a job has been claimed.
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
NUMERIC_MAX_INTEGER_DIGITS = 131072
NUMERIC_MAX_SCALE = 16383


class _Reject(Exception):
    """Raised by the type parsers; turned into a ParamError by the caller."""

    def __init__(self, rule: str, message: str, allowed: object = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.allowed = allowed


# --- Showing values in messages ----------------------------------------------------------


def _show(value: object) -> str:
    """A short rendering of any input for a message; never raises, never recurses."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, int):
        # str() of a huge int raises past 4300 digits; nobody reads that many anyway.
        return str(value) if value.bit_length() < 200 else "a very large number"
    if isinstance(value, float | Decimal):
        text = str(value)
        return text if len(text) <= 60 else "a very long number"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none)"


# --- Parsing one scalar ------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    # The zone is optional here so that its absence gets its own message.
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _decimal(value: object) -> Decimal | None:
    """The exact decimal an input denotes, or None if it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Bounded before conversion: wider than any numeric Postgres can store.
        if value.bit_length() > 4 * NUMERIC_MAX_INTEGER_DIGITS:
            return Decimal("Infinity")
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest text that reads back as this float: 0.1 -> "0.1", not the
        # binary expansion Decimal(0.1) would give.
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _NUMBER_RE.fullmatch(text := value.strip()):
        try:
            return Decimal(text)
        except (InvalidOperation, ValueError, OverflowError):
            return None
    return None


def _check_text(label: str, text: str) -> str:
    if "\x00" in text:
        raise _Reject("type", f"{label} must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject("type", f"{label} must be valid Unicode text") from None
    return text


def _parse_string(spec: ParamSpec, label: str, value: object) -> str:
    if not isinstance(value, str):
        raise _Reject("type", f"{label} must be a string, got {_show(value)}")
    return _check_text(label, value)


def _parse_enum(spec: ParamSpec, label: str, value: object) -> str:
    allowed = spec.values or ()
    if not isinstance(value, str) or value not in allowed:
        raise _Reject(
            "enum", f"{label} must be one of {_names(allowed)}, got {_show(value)}", allowed
        )
    return value


def _parse_integer(spec: ParamSpec, label: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number: int | Decimal = value
    else:
        parsed = _decimal(value)
        if parsed is None:
            raise _Reject("type", f"{label} must be a whole number like 42, got {_show(value)}")
        number = parsed
    if number < BIGINT_MIN:
        raise _Reject("min", f"{label} must be at least {BIGINT_MIN}", BIGINT_MIN)
    if number > BIGINT_MAX:
        raise _Reject("max", f"{label} must be at most {BIGINT_MAX}", BIGINT_MAX)
    # Checked after the range so to_integral_value never sees a huge exponent.
    if isinstance(number, Decimal) and number != number.to_integral_value():
        raise _Reject("type", f"{label} must be a whole number like 42, got {_show(value)}")
    return int(number)


def _parse_number(spec: ParamSpec, label: str, value: object) -> Decimal:
    number = _decimal(value)
    if number is None:
        raise _Reject("type", f"{label} must be a number like 3.10, got {_show(value)}")
    if number.is_zero():
        # 0E-99999 is a fine zero, whatever its exponent says.
        return number if number.as_tuple().exponent == 0 else Decimal(0)
    if not number.is_finite() or number.adjusted() >= NUMERIC_MAX_INTEGER_DIGITS:
        raise _Reject("max", f"{label} is too large for a Postgres numeric")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -NUMERIC_MAX_SCALE:
        raise _Reject(
            "type", f"{label} has more than {NUMERIC_MAX_SCALE} digits after the decimal point"
        )
    return number


def _parse_boolean(spec: ParamSpec, label: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Reject("type", f"{label} must be true or false, got {_show(value)}")


def _parse_date(spec: ParamSpec, label: str, value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(text := value.strip()):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise _Reject("type", f"{label} must be a date like 2025-01-31, got {_show(value)}")


def _parse_datetime(spec: ParamSpec, label: str, value: object) -> datetime:
    example = "2025-01-31T09:30:00Z or 2025-01-31T09:30:00+02:00"
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _DATETIME_RE.fullmatch(text := value.strip()):
        try:
            # upper(): fromisoformat wants 'T' and 'Z'; people also type 't' and 'z'.
            parsed = datetime.fromisoformat(text.upper())
        except ValueError:
            parsed = None
    if parsed is None:
        raise _Reject("type", f"{label} must be a date and time like {example}, got {_show(value)}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        # A wall-clock time without a zone means different instants on different servers.
        raise _Reject(
            "timezone",
            f"{label} must include a time zone (Z or an offset like +02:00), got {_show(value)}",
        )
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise _Reject("type", f"{label} is out of the supported range") from None
    return parsed


_PARSERS = {
    ParamType.STRING: _parse_string,
    ParamType.ENUM: _parse_enum,
    ParamType.INTEGER: _parse_integer,
    ParamType.NUMBER: _parse_number,
    ParamType.BOOLEAN: _parse_boolean,
    ParamType.DATE: _parse_date,
    ParamType.DATETIME: _parse_datetime,
}

# --- Rendering typed values ----------------------------------------------------------------


def render(value: object) -> str:
    """A typed value as text for messages and file names: ISO dates, lowercase booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(render(v) for v in value)
    return str(value)


def to_json(value: object) -> object:
    """A typed value as JSON data that validates back to an equal value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # A JSON number when a float carries it exactly; otherwise the exact text, which
        # validation accepts as well.
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
