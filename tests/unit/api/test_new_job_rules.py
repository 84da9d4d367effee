"""``POST /v1/jobs`` and ``exportd enqueue`` refuse a new job's values by one rule,
``queue.enqueue.problems``: the API's answers are held to it here."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from exportd import limits
from exportd.api import requests
from exportd.api.requests import RequestInvalid, parse_new_job
from exportd.definitions.loader import definitions_from_text
from exportd.queue.enqueue import MAX_ATTEMPTS_RANGE, PRIORITY_RANGE, NewJob, problems

DEFINITIONS = definitions_from_text(
    """
[kinds.k]
query = "SELECT 1 AS id WHERE :owner <> ''"
"""
)
VALID = NewJob("u1", "k")

CASES = [
    ("owner", ""),
    ("owner", "u\x1b1"),
    ("owner", "a\x00b"),
    ("owner", "\ud800"),
    ("owner", "o" * (limits.OWNER_MAX_BYTES + 1)),
    ("owner", "\U0001f600" * 65),
    ("kind", ""),
    ("kind", "k\x7f"),
    ("kind", "k" * (limits.KIND_MAX_BYTES + 1)),
    ("dedupe_key", ""),
    ("dedupe_key", "a\rb"),
    ("dedupe_key", "d" * (limits.DEDUPE_KEY_MAX_BYTES + 1)),
    ("priority", PRIORITY_RANGE[0] - 1),
    ("priority", PRIORITY_RANGE[1] + 1),
    ("max_attempts", MAX_ATTEMPTS_RANGE[0] - 1),
    ("max_attempts", MAX_ATTEMPTS_RANGE[1] + 1),
]


def api_errors(body: dict[str, object]) -> list[tuple[str, str]]:
    try:
        parse_new_job(body, DEFINITIONS, lambda _kind: ("csv",), None)
    except RequestInvalid as refused:
        return [(e.field, e.message) for e in refused.errors]
    return []


@pytest.mark.parametrize(("field", "value"), CASES)
def test_the_api_refuses_each_value_as_the_queue_s_one_check_does(
    field: str, value: object
) -> None:
    changed: dict[str, Any] = {field: value}
    expected = problems(dataclasses.replace(VALID, **changed))
    assert expected, "each case breaks a rule of problems()"
    assert api_errors({"owner": "u1", "kind": "k", field: value}) == expected


@pytest.mark.parametrize("field", ["owner", "kind", "dedupe_key", "priority", "max_attempts"])
def test_a_rule_added_to_the_queue_s_check_reaches_the_api(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stricter(job: NewJob) -> list[tuple[str, str]]:
        return [*problems(job), (field, "a new rule")]

    monkeypatch.setattr(requests, "problems", stricter)
    body: dict[str, object] = {"owner": "u1", "kind": "k", "dedupe_key": "d"}
    body.update(priority=1, max_attempts=2)
    assert api_errors(body) == [(field, "a new rule")]


def test_a_value_of_the_wrong_type_is_refused_once_by_type() -> None:
    errors = api_errors({"owner": 7, "kind": ["k"], "priority": True, "dedupe_key": 1})
    assert errors == [
        ("owner", "must be a string"),
        ("kind", "must be a string: the name of an export kind (GET /v1/kinds)"),
        ("dedupe_key", "must be a string"),
        ("priority", "must be a whole number from -32768 to 32767"),
    ]
