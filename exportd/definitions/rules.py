"""Cross-field rules: checks on several parameters together, declared per kind.

Real export APIs validate more than single fields: a range's start comes before its end,
a range spans at most so many days, an end date is not in the future. Each rule is a
``[[kinds.<kind>.rules]]`` table; its problems are ``ParamError``s reported with the
per-field ones, all at once. Pure: the clock is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from exportd.definitions.params.declarations import unknown_key
from exportd.definitions.params.spec import ParamError, ParamSpec, ParamType
from exportd.definitions.params.values import render

# Rule name -> the keys its table takes besides "rule" (and "message").
RULE_KEYS: Mapping[str, frozenset[str]] = {
    "before": frozenset({"fields"}),
    "max_span": frozenset({"fields", "days"}),
    "not_future": frozenset({"field"}),
}
_RANGE_TYPES = frozenset({ParamType.DATE, ParamType.DATETIME})
_ORDERED = frozenset({ParamType.INTEGER, ParamType.NUMBER, ParamType.DATE, ParamType.DATETIME})
MAX_SPAN_DAYS = 366_000


@dataclass(frozen=True)
class Rule:
    """One cross-field rule. ``fields`` holds one name (not_future) or two (the others)."""

    rule: str
    fields: tuple[str, ...]
    days: int | None = None

    def describe(self) -> dict[str, object]:
        """The rule as a client reads it in the kind's JSON Schema (JSON Schema cannot
        compare two fields, so the rules travel beside it, in the same words as the
        definition)."""
        described: dict[str, object] = {"rule": self.rule}
        if self.rule == "not_future":
            described["field"] = self.fields[0]
        else:
            described["fields"] = list(self.fields)
        if self.days is not None:
            described["days"] = self.days
        return described

    def check(self, values: Mapping[str, object], now: datetime) -> ParamError | None:
        """The problem with ``values`` (typed, validated), or None. A rule whose fields are
        absent (null) does not apply."""
        picked = [values.get(f) for f in self.fields]
        if any(v is None for v in picked):
            return None
        if self.rule == "not_future":
            (value,) = picked
            limit: object = now.date() if _is_date(value) else now
            if value > limit:  # type: ignore[operator]
                return ParamError(
                    self.fields[0],
                    "not_future",
                    f"{self.fields[0]} must not be in the future, got {render(value)}",
                    render(limit),
                )
            return None
        start, end = picked
        first, second = self.fields
        if self.rule == "before" and not start < end:  # type: ignore[operator]
            return ParamError(
                second,
                "before",
                f"{first} must be before {second}, got {render(start)} and {render(end)}",
                first,
            )
        if self.rule == "max_span" and self.days is not None:
            span = _span(start, end)
            if span is not None and span > timedelta(days=self.days):
                return ParamError(
                    second,
                    "max_span",
                    f"{first} to {second} must span at most {self.days} days, "
                    f"got {render(start)} to {render(end)}",
                    self.days,
                )
        return None


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _span(start: object, end: object) -> timedelta | None:
    if isinstance(start, date) and isinstance(end, date):
        return end - start
    return None


def check_rules(
    rules: Sequence[Rule], values: Mapping[str, object], now: datetime | None = None
) -> list[ParamError]:
    """Every problem the rules find in validated ``values``."""
    moment = now or datetime.now(UTC)
    return [e for rule in rules if (e := rule.check(values, moment)) is not None]


def parse_rules(
    tables: object, params: Mapping[str, ParamSpec | None]
) -> tuple[list[Rule], list[str]]:
    """The rules of a kind's ``rules`` array, and every problem with them."""
    if not isinstance(tables, list):
        return [], ["rules must be an array of tables ([[kinds.<kind>.rules]])"]
    rules: list[Rule] = []
    problems: list[str] = []
    for index, table in enumerate(tables, start=1):
        where = f"rule {index}"
        if not isinstance(table, dict):
            problems.append(f"{where} must be a table")
            continue
        name = table.get("rule")
        if not isinstance(name, str) or name not in RULE_KEYS:
            allowed = ", ".join(RULE_KEYS)
            problems.append(f"{where}: rule must be one of {allowed}, got {name!r}")
            continue
        keys = RULE_KEYS[name] | {"rule"}
        found = [f"{where} ({name}): {unknown_key(k, keys)}" for k in table if k not in keys]
        fields = _fields(table, name, where, found)
        days = table.get("days")
        if name == "max_span" and (
            not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_SPAN_DAYS
        ):
            found.append(f"{where} (max_span): days must be a whole number from 1, got {days!r}")
        for field in fields:
            found.extend(_field_problems(where, name, field, params))
        if len(fields) == 2 and not found:
            a, b = (params[f] for f in fields)
            if a is not None and b is not None and a.type is not b.type:
                found.append(f"{where} ({name}): {fields[0]} and {fields[1]} differ in type")
        if found:
            problems.extend(found)
            continue
        rules.append(Rule(name, fields, days if isinstance(days, int) else None))
    return rules, problems


def _fields(
    table: Mapping[str, object], name: str, where: str, found: list[str]
) -> tuple[str, ...]:
    if name == "not_future":
        field = table.get("field")
        if not isinstance(field, str):
            found.append(f'{where} (not_future): needs field = "<param>"')
            return ()
        return (field,)
    fields = table.get("fields")
    if (
        not isinstance(fields, list)
        or len(fields) != 2
        or not all(isinstance(f, str) for f in fields)
    ):
        found.append(f'{where} ({name}): needs fields = ["<start>", "<end>"]')
        return ()
    return (fields[0], fields[1])


def _field_problems(
    where: str, name: str, field: str, params: Mapping[str, ParamSpec | None]
) -> list[str]:
    if field not in params:
        return [f"{where} ({name}): {field!r} is not a declared parameter"]
    spec = params[field]
    if spec is None:
        return []  # its own problems are reported already
    allowed = _RANGE_TYPES if name in ("max_span", "not_future") else _ORDERED
    if spec.type not in allowed:
        kinds = " or ".join(sorted(allowed))
        return [f"{where} ({name}): {field} must be a {kinds} parameter, not {spec.type}"]
    return []
