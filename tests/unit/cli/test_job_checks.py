"""What the command line checks before it reaches the database: quotas against the
history kept, and a new job's values named as they were typed."""

from __future__ import annotations

from datetime import timedelta

from exportd.cli.job_checks import argument_name, check_quotas
from exportd.definitions.loader import definitions_from_text
from exportd.settings.model import Settings

KINDS = """
[kinds.daily]
query = "SELECT 1 AS n WHERE :owner <> ''"
quota = { max = 1, per = "P1D" }

[kinds.monthly]
query = "SELECT 1 AS n WHERE :owner <> ''"
quota = { max = 2, per = "P31D" }

[kinds.free]
query = "SELECT 1 AS n WHERE :owner <> ''"
"""


def test_a_quota_window_longer_than_the_history_kept_fails_the_check() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, retention=timedelta(days=7), history_retention=timedelta(days=30)
    )
    reported: list[tuple[bool, str, str]] = []
    check_quotas(settings, definitions_from_text(KINDS), lambda *r: reported.append(r))
    assert reported[0] == (True, "kind daily quota", "at most 1 per P1D")
    ok, what, detail = reported[1]
    assert (ok, what) == (False, "kind monthly quota")
    assert "per P31D is longer than EXPORTD_HISTORY_RETENTION (30 days, 0:00:00)" in detail
    assert len(reported) == 2


def test_each_value_is_named_as_exportd_enqueue_takes_it() -> None:
    assert argument_name("kind") == "KIND"
    assert argument_name("owner") == "--owner"
    assert argument_name("max_attempts") == "--max-attempts"
    assert argument_name("dedupe_key") == "--dedupe-key"
