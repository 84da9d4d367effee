"""Which open uploads the sweep takes for orphans, and the job a key belongs to: pure
decisions, no S3."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from exportd.export.keys import job_id_of
from exportd.maintenance.uploads_sweep import orphaned
from exportd.s3.objects import OpenUpload


def upload(key: str, upload_id: str, age: timedelta) -> OpenUpload:
    return OpenUpload(Key=key, UploadId=upload_id, Initiated=datetime.now(UTC) - age)


def test_orphaned_spares_live_jobs_and_young_uploads() -> None:
    live_recorded, live_unrecorded, dead = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    hour = timedelta(hours=1)
    uploads = [
        upload(f"p/o/{live_recorded}/a.csv", "u-recorded", 2 * hour),
        upload(f"p/o/{live_recorded}/old.csv", "u-other-attempt", 2 * hour),
        upload(f"p/o/{live_unrecorded}/a.csv", "u-unrecorded", 2 * hour),
        upload(f"p/o/{dead}/a.csv", "u-dead", 2 * hour),
        upload(f"p/o/{dead}/b.csv", "u-dead-young", timedelta(minutes=5)),
        upload("p/stray-object", "u-not-ours", 2 * hour),
        upload(f"p/o/{uuid.uuid4()}/a.csv", "u-stray", 2 * hour),
    ]
    live = {live_recorded: "u-recorded", live_unrecorded: None}
    now = datetime.now(UTC)
    seen_long_ago = {u["UploadId"]: now - 3 * hour for u in uploads}
    found = orphaned(uploads, live, seen_long_ago, now, hour)
    assert [u["UploadId"] for u in found] == ["u-dead", "u-stray"]


def test_orphaned_waits_until_this_daemon_has_seen_an_upload_long_enough() -> None:
    # Some servers report a fixed, ancient initiation date; S3's clock may be skewed.
    ancient = upload(f"p/o/{uuid.uuid4()}/a.csv", "u-1", timedelta(days=5000))
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert orphaned([ancient], {}, {}, now, hour) == []
    assert orphaned([ancient], {}, {"u-1": now - timedelta(minutes=5)}, now, hour) == []
    assert orphaned([ancient], {}, {"u-1": now - 2 * hour}, now, hour) == [ancient]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("exports/o/00000000-0000-0000-0000-000000000001/x.csv", 1),
        ("exports/owner/with/slashes/00000000-0000-0000-0000-000000000002/x.csv", 2),
        ("exports/o/not-a-uuid/x.csv", None),
        ("x.csv", None),
    ],
)
def test_job_id_of_key(key: str, expected: int | None) -> None:
    assert job_id_of(key) == (None if expected is None else uuid.UUID(int=expected))
