"""Rows the main application could write wrongly, with a plain INSERT.

Each is either refused by the table (``REFUSED``: the constraint, or the
words of the error, that the application sees) or accepted and then failed
by a daemon with an error kind and a message a person can act on
(``FAILED``), while the other jobs complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BadRow:
    label: str
    columns: dict[str, Any]  # besides owner, kind and params when not given
    expect: str  # constraint name or words of the error (REFUSED); error_kind (FAILED)
    message: tuple[str, ...] = field(default=())  # words the job's error must hold (FAILED)

    def values(self) -> dict[str, Any]:
        row: dict[str, Any] = {"owner": "badrows", "kind": "items", "params": '{"min_n": 1}'}
        row.update(self.columns)
        return row


REFUSED = [
    BadRow("params an array", {"params": "[1, 2]"}, "jobs_params_is_object"),
    BadRow("params a string", {"params": '"min_n=1"'}, "jobs_params_is_object"),
    BadRow("params a number", {"params": "42"}, "jobs_params_is_object"),
    BadRow("params JSON null", {"params": "null"}, "jobs_params_is_object"),
    BadRow("params SQL NULL", {"params": None}, 'null value in column "params"'),
    BadRow("unknown format", {"format": "xml"}, "jobs_format_known"),
    BadRow("format in capitals", {"format": "CSV"}, "jobs_format_known"),
    BadRow("empty owner", {"owner": ""}, "jobs_owner_not_empty"),
    BadRow("empty kind", {"kind": ""}, "jobs_kind_not_empty"),
    BadRow("priority beyond smallint", {"priority": 40000}, "smallint out of range"),
    BadRow("priority below smallint", {"priority": -40000}, "smallint out of range"),
    BadRow("max_attempts 0", {"max_attempts": 0}, "jobs_max_attempts_range"),
    BadRow("max_attempts -1", {"max_attempts": -1}, "jobs_max_attempts_range"),
    BadRow("max_attempts 10^6", {"max_attempts": 1_000_000}, "jobs_max_attempts_range"),
    BadRow("attempts -1", {"attempts": -1}, "jobs_attempts_not_negative"),
    BadRow(
        "attempts already spent",
        {"attempts": 7, "max_attempts": 5},
        "jobs_pending_has_attempts_left",
    ),
    BadRow(
        "attempts equal to max_attempts",
        {"attempts": 3, "max_attempts": 3},
        "jobs_pending_has_attempts_left",
    ),
    BadRow("unknown state", {"state": "queued"}, "jobs_state_known"),
    BadRow("processing without a worker", {"state": "processing"}, "jobs_processing_has_lease"),
    BadRow("progress above 100", {"progress": 101}, "jobs_progress_range"),
]

FAILED = [
    BadRow("unknown kind", {"kind": "no-such-kind"}, "unknown_kind", ("no-such-kind", "items")),
    BadRow(
        "param of the wrong type",
        {"params": '{"min_n": "many"}'},
        "invalid_params",
        ("min_n", "whole number"),
    ),
    BadRow("param missing", {"params": "{}"}, "invalid_params", ("min_n is required",)),
    BadRow(
        "param a nested object",
        {"params": '{"min_n": {"value": 1}}'},
        "invalid_params",
        ("min_n",),
    ),
    BadRow("param below its minimum", {"params": '{"min_n": -5}'}, "invalid_params", ("min_n",)),
    BadRow(
        "unknown param",
        {"params": '{"min_n": 1, "colour": "red"}'},
        "invalid_params",
        ("colour", "min_n"),
    ),
    BadRow(
        "param beyond bigint",
        {"params": '{"min_n": 1e30}'},
        "invalid_params",
        ("min_n", "at most"),
    ),
    BadRow(
        "a bundle as csv",
        {"kind": "bundle", "params": "{}", "format": "csv"},
        "unsupported_format",
        ("zip",),
    ),
]

# Legal however odd: these complete like any other job.
ODD_BUT_LEGAL = [
    BadRow("lowest priority", {"priority": -32768, "max_attempts": 100}, "completed"),
    BadRow("highest priority", {"priority": 32767, "max_attempts": 100}, "completed"),
    BadRow(
        "param as a numeric string",
        {"params": '{"min_n": "7"}', "owner": "owner3", "max_attempts": 100},
        "completed",
    ),
]


def insert_statement(row: BadRow) -> tuple[str, list[Any]]:
    """A plain INSERT of the row's columns, as the main application would write it."""
    values = row.values()
    names = list(values)
    # Values reach Postgres as another language's driver would send them:
    # params as JSON text, numbers as integers (so that Postgres, not this
    # test's driver, says what is out of range).
    casts = {"params": "::text::jsonb", "priority": "::integer"}
    placeholders = [f"${i}{casts.get(name, '')}" for i, name in enumerate(names, start=1)]
    sql = (
        f"INSERT INTO exportd.jobs ({', '.join(names)}) VALUES ({', '.join(placeholders)})"
        " RETURNING id"
    )
    return sql, [values[n] for n in names]
