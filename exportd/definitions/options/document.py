"""Reading an options document: which options it sets, each checked on its own. Pure.

An options document is a JSON object (a job's ``exportd.jobs.options``, the
``options`` of ``POST /v1/jobs`` or of a schedule, a kind's
``[kinds.NAME.options]``). ``read_document`` turns it into ``Given``: the options it
sets, flat, by path (``"timezone"``, ``"csv.delimiter"``, ``"columns"``), each value
checked on its own and normalised (a list of names becomes a tuple), with every
problem found, each a ``ParamError`` whose field is ``options.<path>``. What depends
on several options at once (the ``excel`` profile, a decimal comma with a comma
delimiter, locks) is ``exportd.definitions.options.resolve``'s.

Whatever it is given (a non-object, NUL characters, a number of 5,000 digits, lists
nested deep), it returns problems and raises nothing. It never recurses: it reads the
document's fixed shape and names the type of whatever else it finds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exportd import limits
from exportd.definitions.params.spec import ParamError
from exportd.definitions.params.values import _show

# The options a document sets, by path; values normalised (tuples for lists of names,
# a dict of tuples for per-dataset columns).
Given = dict[str, Any]

TOP_KEYS = ("timezone", "columns", "csv", "json", "split_rows")
CSV_KEYS = (
    "profile",
    "delimiter",
    "bom",
    "header",
    "null",
    "line_terminator",
    "formula_guard",
    "decimal_comma",
)
JSON_KEYS = ("big_numbers",)
# Every path a lock may name: the groups as a whole, and each option.
PATHS = (
    "timezone",
    "columns",
    "split_rows",
    "csv",
    *(f"csv.{k}" for k in CSV_KEYS),
    "json",
    *(f"json.{k}" for k in JSON_KEYS),
)

CSV_PROFILES = ("rfc4180", "excel")
DELIMITERS = (",", ";", "\t", "|")
LINE_TERMINATORS = ("\n", "\r\n")
BIG_NUMBERS = ("number", "string")
# An IANA zone name (Europe/Zurich, America/Argentina/Buenos_Aires, Etc/GMT+3, UTC):
# letters, digits and _+- in slash-separated parts, as for a schedule's time zone
# (migration 0007). Whether Postgres knows it is asked of Postgres.
TIMEZONE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# How a value a person may have typed is shown in a message.
_SHOWN_CHOICES = {",": '","', ";": '";"', "\t": "tab", "|": '"|"', "\n": "LF", "\r\n": "CRLF"}


def show_choice(value: str) -> str:
    return _SHOWN_CHOICES.get(value, repr(value))


def _type_name(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return _show(value)


def _problem(path: str, rule: str, text: str) -> ParamError:
    return ParamError(f"options.{path}", rule, f"options.{path} {text}")


# A check of one option's value: (the normalised value, or None, and the problems).
_Check = Callable[[str, object], tuple[object, list[ParamError]]]


def _choice(allowed: Sequence[str]) -> _Check:
    def check(path: str, value: object) -> tuple[object, list[ParamError]]:
        if isinstance(value, str) and value in allowed:
            return value, []
        choices = ", ".join(show_choice(a) for a in allowed)
        return None, [
            _problem(path, "choice", f"must be one of {choices}, not {_type_name(value)}")
        ]

    return check


def _boolean(path: str, value: object) -> tuple[object, list[ParamError]]:
    if isinstance(value, bool):
        return value, []
    return None, [_problem(path, "type", f"must be true or false, not {_type_name(value)}")]


def _null_text(path: str, value: object) -> tuple[object, list[ParamError]]:
    if not isinstance(value, str):
        return None, [_problem(path, "type", f"must be a string, not {_type_name(value)}")]
    found: list[ParamError] = []
    if problem := limits.text_problem(value, limits.OPTIONS_NULL_MAX_BYTES):
        found.append(_problem(path, "text", problem))
    elif "\r" in value or "\n" in value:
        found.append(_problem(path, "text", "must not contain a line break (CR or LF)"))
    if '"' in value:
        # COPY refuses a NULL string holding its quote character.
        found.append(_problem(path, "text", 'must not contain a double quote (")'))
    return (None, found) if found else (value, [])


def _split_rows(path: str, value: object) -> tuple[object, list[ParamError]]:
    most = limits.OPTIONS_SPLIT_ROWS_MAX
    # JSON true is not 1, and 2.0 is a float that happens to be whole.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        return None, [
            _problem(
                path, "range", f"must be a whole number from 1 to {most:,}, not {_type_name(value)}"
            )
        ]
    return value, []


def _timezone(path: str, value: object) -> tuple[object, list[ParamError]]:
    if not isinstance(value, str):
        return None, [_problem(path, "type", f"must be a string, not {_type_name(value)}")]
    problem = limits.text_problem(value, limits.OPTIONS_TIMEZONE_MAX_BYTES)
    if problem is None and not TIMEZONE_RE.fullmatch(value):
        problem = (
            f"must be an IANA time zone name such as Europe/Zurich or UTC "
            f"(letters, digits and _+- in parts separated by /), not {_show(value)}"
        )
    if problem is not None:
        return None, [_problem(path, "timezone", problem)]
    return value, []


def _names(path: str, value: object) -> tuple[object, list[ParamError]]:
    """A list of distinct, non-empty column names, each a Postgres identifier's length."""
    if not isinstance(value, list | tuple):
        return None, [
            _problem(path, "type", f"must be a list of column names, not {_type_name(value)}")
        ]
    most = limits.OPTIONS_COLUMNS_MAX
    if not value:
        return None, [_problem(path, "length", "must name at least one column")]
    if len(value) > most:
        return None, [
            _problem(path, "length", f"may name at most {most} columns, not {len(value)}")
        ]
    found: list[ParamError] = []
    seen: set[str] = set()
    for index, name in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(name, str):
            found.append(_problem(where, "type", f"must be a column name, not {_type_name(name)}"))
        elif problem := limits.identifier_problem(name, limits.OPTIONS_COLUMN_MAX_BYTES):
            found.append(_problem(where, "text", problem))
        elif name in seen:
            found.append(_problem(where, "duplicate", f"names {_show(name)} a second time"))
        else:
            seen.add(name)
    return (None, found) if found else (tuple(value), [])


def _columns(datasets: Sequence[str] | None) -> _Check:
    def check(path: str, value: object) -> tuple[object, list[ParamError]]:
        if not isinstance(value, dict):
            return _names(path, value)
        if not value:
            return None, [_problem(path, "length", "must name at least one dataset")]
        known = ", ".join(datasets or ()) or "none"
        found: list[ParamError] = []
        chosen: dict[str, tuple[str, ...]] = {}
        for name, names in value.items():
            where = f"{path}.{_shown_key(name)}"
            if datasets is None:
                # No kind to check against (the kind is unknown): the name's shape only.
                if problem := limits.identifier_problem(str(name), limits.KIND_MAX_BYTES):
                    found.append(_problem(where, "text", problem))
                    continue
            elif name not in datasets:
                found.append(
                    _problem(where, "unknown_dataset", f"names no dataset of this kind ({known})")
                )
                continue
            normal, problems = _names(where, names)
            found.extend(problems)
            if isinstance(normal, tuple):
                chosen[name] = normal
        return (None, found) if found else (chosen, [])

    return check


def _shown_key(key: object) -> str:
    text = str(key)
    text = _CONTROL.sub("?", text)
    return text if len(text) <= 64 else f"{text[:64]}..."


_CSV_CHECKS: Mapping[str, _Check] = {
    "profile": _choice(CSV_PROFILES),
    "delimiter": _choice(DELIMITERS),
    "bom": _boolean,
    "header": _boolean,
    "null": _null_text,
    "line_terminator": _choice(LINE_TERMINATORS),
    "formula_guard": _boolean,
    "decimal_comma": _boolean,
}
_JSON_CHECKS: Mapping[str, _Check] = {"big_numbers": _choice(BIG_NUMBERS)}


def _unknown(path: str, key: object, known: Sequence[str]) -> ParamError:
    where = f"{path}.{_shown_key(key)}" if path else _shown_key(key)
    return _problem(where, "unknown", f"is not an option; known: {', '.join(known)}")


def _group(
    name: str, value: object, checks: Mapping[str, _Check], given: Given
) -> list[ParamError]:
    if not isinstance(value, dict):
        keys = ", ".join(checks)
        return [
            _problem(name, "type", f"must be an object (keys: {keys}), not {_type_name(value)}")
        ]
    found: list[ParamError] = []
    for key, item in value.items():
        check = checks.get(key) if isinstance(key, str) else None
        if check is None:
            found.append(_unknown(name, key, tuple(checks)))
            continue
        normal, problems = check(f"{name}.{key}", item)
        found.extend(problems)
        if not problems:
            given[f"{name}.{key}"] = normal
    return found


def read_document(
    raw: object, datasets: Sequence[str] | None = ()
) -> tuple[Given, list[ParamError]]:
    """The options ``raw`` sets, by path, and every problem with them.

    ``raw`` is a decoded JSON document (or a TOML table); None reads as ``{}``.
    ``datasets`` are the kind's dataset names, which ``columns`` may use as keys
    (None: no kind to check against, any name).
    """
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [
            ParamError("options", "type", f"options must be a JSON object, not {_type_name(raw)}")
        ]
    given: Given = {}
    found: list[ParamError] = []
    tops: Mapping[str, _Check] = {
        "timezone": _timezone,
        "columns": _columns(datasets),
        "split_rows": _split_rows,
    }
    for key, value in raw.items():
        if key == "csv":
            found.extend(_group("csv", value, _CSV_CHECKS, given))
        elif key == "json":
            found.extend(_group("json", value, _JSON_CHECKS, given))
        elif isinstance(key, str) and key in tops:
            normal, problems = tops[key](key, value)
            found.extend(problems)
            if not problems:
                given[key] = normal
        else:
            found.append(_unknown("", key, TOP_KEYS))
    return given, found
