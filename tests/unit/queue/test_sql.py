"""The named queries and the migrations load from sql/: every query parses, migrations are
numbered from 1."""

from __future__ import annotations

from exportd.queue.sql import migrations, queries


def test_every_named_query_parses_and_migrations_are_numbered() -> None:
    names = queries().names()
    assert {"claim", "heartbeat", "complete", "retry", "fail", "release"} <= set(names)
    assert [m.version for m in migrations()] == list(range(1, len(migrations()) + 1))
