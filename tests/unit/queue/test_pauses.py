"""Paused kinds, without a database: which pause holds a kind, what the table would
refuse, the migration held to the numbers of limits, and the gauge."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exportd import limits
from exportd.definitions.loader import KIND_NAME_RE
from exportd.metrics import Metrics
from exportd.queue.pauses import ALL_KINDS, Pause, pause_problems, state_of
from exportd.queue.sql import migrations

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORDERS = Pause("orders", T0, "alice@host", "broken source")
EVERY = Pause(ALL_KINDS, T0, "api", None)


def test_a_kind_is_held_by_its_own_pause_first_then_by_the_pause_of_every_kind() -> None:
    alone = state_of("orders", [ORDERS])
    assert (alone.paused, alone.effective, alone.every_kind) == (True, ORDERS, None)
    both = state_of("orders", [EVERY, ORDERS])
    assert (both.paused, both.effective, both.every_kind) == (True, ORDERS, EVERY)
    other = state_of("invoices", [EVERY, ORDERS])
    assert (other.paused, other.own, other.effective) == (True, None, EVERY)
    free = state_of("invoices", [ORDERS])
    assert (free.paused, free.effective) == (False, None)


def test_the_mark_of_every_kind_can_never_be_a_kind_name() -> None:
    assert not KIND_NAME_RE.fullmatch(ALL_KINDS)


@pytest.mark.parametrize(
    ("kind", "paused_by", "reason", "wrong"),
    [
        ("orders", "api", None, []),
        (ALL_KINDS, "api", "db maintenance", []),
        ("Orders", "api", None, ["kind"]),
        ("k" * (limits.KIND_MAX_BYTES + 1), "api", None, ["kind"]),
        ("orders", "", None, ["paused_by"]),
        ("orders", "x" * (limits.PAUSED_BY_MAX_BYTES + 1), None, ["paused_by"]),
        ("orders", "api", "", ["reason"]),
        ("orders", "api", "é" * (limits.PAUSE_REASON_MAX_BYTES // 2 + 1), ["reason"]),
        ("orders", "api", "line\nbreak", ["reason"]),
        ("orders ", "a\x00", "\x00", ["kind", "paused_by", "reason"]),
    ],
)
def test_pause_problems_name_each_field_the_table_would_refuse(
    kind: str, paused_by: str, reason: str | None, wrong: list[str]
) -> None:
    found = pause_problems(kind, paused_by, reason)
    assert [p.split(" ", 1)[0] for p in found] == wrong


def test_the_migration_uses_the_numbers_of_limits() -> None:
    [pauses] = [m for m in migrations() if m.name == "pauses"]
    assert pauses.version == 8
    bounds = {
        "paused_kinds_kind_bytes": ("kind", limits.KIND_MAX_BYTES),
        "paused_kinds_paused_by_bytes": ("paused_by", limits.PAUSED_BY_MAX_BYTES),
        "paused_kinds_reason_bytes": ("reason", limits.PAUSE_REASON_MAX_BYTES),
    }
    for constraint, (column, limit) in bounds.items():
        found = re.search(
            rf"{constraint}\s+CHECK \([^;]*?octet_length\({column}\) <= (\d+)\)", pauses.sql
        )
        assert found, constraint
        assert int(found.group(1)) == limit, constraint
    assert f"kind ~ '^{KIND_NAME_RE.pattern}$'" in pauses.sql


def _paused_gauge(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["kind"]: s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name == "exportd_kind_paused"
    }


def test_the_gauge_says_which_of_the_daemons_kinds_are_paused() -> None:
    metrics = Metrics(kinds=iter(["orders", "invoices"]))  # an iterator is read once
    assert _paused_gauge(metrics) == {}  # never read: absent, not "none paused"
    metrics.set_paused(["orders", "elsewhere"])
    assert _paused_gauge(metrics) == {"orders": 1, "invoices": 0, "*": 0}
    metrics.set_paused(["*"])
    assert _paused_gauge(metrics) == {"orders": 1, "invoices": 1, "*": 1}
    metrics.set_paused([])
    assert _paused_gauge(metrics) == {"orders": 0, "invoices": 0, "*": 0}
    metrics.set_paused(None)
    assert _paused_gauge(metrics) == {}
    # Other label sets still see the kinds the iterator gave.
    metrics.jobs_claimed.labels("invoices").inc()
    assert metrics.value("exportd_jobs_claimed_total", {"kind": "invoices"}) == 1


def test_without_definitions_the_gauge_shows_the_kinds_paused() -> None:
    metrics = Metrics()
    metrics.set_paused(["orders"])
    assert _paused_gauge(metrics) == {"orders": 1, "*": 0}
