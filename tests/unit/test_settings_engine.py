"""The export engine's settings: encryption and the whole-job duration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exportd.settings.environment import load_settings
from exportd.settings.model import SettingsError

BASE = {"database_url": "postgresql://localhost/db", "s3_bucket": "exports"}


def test_no_encryption_asks_for_nothing() -> None:
    assert load_settings(None, **BASE).object_args == {}


def test_sse_s3_and_sse_kms_with_a_key_are_passed_to_every_object() -> None:
    assert load_settings(None, **BASE, s3_sse="AES256").object_args == {
        "ServerSideEncryption": "AES256"
    }
    kms = load_settings(None, **BASE, s3_sse="aws:kms", s3_sse_kms_key_id="alias/exports")
    assert kms.object_args == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/exports"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s3_sse": "rot13"}, "EXPORTD_S3_SSE"),
        ({"s3_sse_kms_key_id": "k"}, "s3_sse_kms_key_id needs s3_sse = aws:kms"),
        ({"max_job_duration": "0"}, "max_job_duration must be at least 1 second"),
    ],
)
def test_inconsistent_engine_settings_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(None, **BASE, **overrides)


def test_max_job_duration_takes_seconds_or_iso_8601() -> None:
    assert load_settings(None, **BASE, max_job_duration="90").max_job_duration == timedelta(
        seconds=90
    )
    assert load_settings(None, **BASE, max_job_duration="PT2H").max_job_duration == timedelta(
        hours=2
    )
    assert load_settings(None, **BASE).max_job_duration == timedelta(hours=6)


def test_durations_from_the_environment_take_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTD_RETENTION", "90")
    monkeypatch.setenv("EXPORTD_DOWNLOAD_URL_TTL", "600.5")
    monkeypatch.setenv("EXPORTD_MAX_JOB_DURATION", "P1D")
    settings = load_settings(None, **BASE)
    assert settings.retention == timedelta(seconds=90)
    assert settings.download_url_ttl == timedelta(seconds=600.5)
    assert settings.max_job_duration == timedelta(days=1)
