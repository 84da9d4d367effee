"""The fault suite's plan: the same seed gives the same plan, and every plan is sound;
a mid-upload kill's choice of victim, and what counts as its upload aborted."""

from __future__ import annotations

import itertools
import uuid

import pytest

from tests.support.fault_schedule import (
    DAEMONS,
    FORMATS,
    PROFILES,
    Action,
    plan_faults,
    plan_jobs,
    profile_from_env,
    seed_from_env,
)
from tests.support.fault_uploads import (
    MidUploadKills,
    OpenUpload,
    aborts_by,
    choose_victim,
    cleaned_up_uploads,
    mid_upload_problems,
    pid_of,
)


@pytest.mark.parametrize("name", list(PROFILES))
def test_a_seed_replays_the_same_plan(name: str) -> None:
    profile = PROFILES[name]
    assert plan_faults(7, profile) == plan_faults(7, profile)
    assert plan_jobs(7, profile) == plan_jobs(7, profile)
    assert plan_faults(7, profile) != plan_faults(8, profile)
    assert plan_jobs(7, profile) != plan_jobs(8, profile)


@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("name", list(PROFILES))
def test_every_plan_holds_what_the_suite_relies_on(seed: int, name: str) -> None:
    profile = PROFILES[name]
    faults = plan_faults(seed, profile)
    actions = [f.action for f in faults]
    assert actions.count(Action.POSTGRES_RESTART) == 1
    assert actions.count(Action.S3_DOWN) == profile.s3_outages
    kills = actions.count(Action.SIGKILL) + actions.count(Action.SIGKILL_MID_UPLOAD)
    assert kills == profile.sigkills
    # At least one kill per run waits for an upload to be open, so that the
    # abort of a dead worker's upload is exercised every time.
    assert actions.count(Action.SIGKILL_MID_UPLOAD) == profile.mid_upload_kills >= 1
    assert actions.count(Action.SIGTERM) == profile.sigterms
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    assert all(f.daemon in range(DAEMONS) for f in faults if f.action in ("sigkill", "sigterm"))
    for kill in (f for f in faults if f.action is Action.SIGKILL_MID_UPLOAD):
        # Its victim is chosen when it strikes; large jobs still arrive then.
        assert kill.daemon is None
        assert 0.0 <= kill.pick < 1.0
        assert kill.at <= 0.6 * profile.window
    # Outages of shared services never overlap, and all end within the window.
    outages = sorted(
        (f.at, f.at + f.duration) for f in faults if f.action in ("postgres_restart", "s3_down")
    )
    for (_, end), (start, _) in itertools.pairwise(outages):
        assert end <= start
    assert outages[-1][1] <= profile.window + 0.5
    assert all(f.mode in ("fast", "immediate") for f in faults if f.action == "postgres_restart")

    jobs = plan_jobs(seed, profile)
    assert len(jobs) == profile.small_jobs + profile.large_jobs
    assert {j.format for j in jobs} == set(FORMATS)
    assert {j.kind for j in jobs} == {"items", "large", "bundle"}
    assert all(j.format == "zip" for j in jobs if j.kind == "bundle")
    assert all(0 <= j.at <= profile.window for j in jobs)


def test_the_seed_and_profile_come_from_the_environment() -> None:
    assert seed_from_env({"EXPORTD_FAULT_SEED": "1234"}) == 1234
    assert 0 <= seed_from_env({}) < 2**32
    assert profile_from_env({}) is PROFILES["short"]
    assert profile_from_env({"EXPORTD_FAULT_PROFILE": "long"}) is PROFILES["long"]
    with pytest.raises(ValueError, match="EXPORTD_FAULT_PROFILE='longer'"):
        profile_from_env({"EXPORTD_FAULT_PROFILE": "longer"})


def upload(job: int, pid: int) -> OpenUpload:
    return OpenUpload(uuid.UUID(int=job), f"host.example:{pid}:ab12cd34", f"upload-{job}")


def test_a_mid_upload_kill_picks_among_live_daemons_with_an_open_upload() -> None:
    uploads = [upload(1, 300), upload(2, 100), upload(3, 100), upload(4, 999)]
    live = {100: 0, 200: 1, 300: 2}  # pid 999 is a daemon killed earlier
    # Candidates in daemon order: 0 (two uploads) and 2; daemon 1 has none.
    assert choose_victim(uploads, live, 0.0) == (0, [uploads[1], uploads[2]])
    assert choose_victim(uploads, live, 0.49) == (0, [uploads[1], uploads[2]])
    assert choose_victim(uploads, live, 0.5) == (2, [uploads[0]])
    assert choose_victim(uploads, live, 0.999) == (2, [uploads[0]])
    assert choose_victim([uploads[3]], live, 0.3) is None
    assert choose_victim([], live, 0.3) is None
    assert pid_of("host.example:4242:ab12cd34") == 4242
    assert pid_of("a:b:c:17:ff") == 17  # a host name may hold colons (IPv6)
    assert pid_of("not-a-worker-id") is None


def test_every_upload_a_kill_left_open_must_be_seen_aborted_or_gone() -> None:
    job = uuid.UUID(int=1)
    events = [
        {"event": "orphan_upload_aborted", "upload_id": "u1", "key": "k"},
        {"event": "orphan_upload_abort_failed", "upload_id": "u2"},
        {"event": "job_completed", "job_id": str(job)},
        {"event": "orphan_upload_gone", "upload_id": "u4", "job_id": str(job)},
    ]
    aborted = cleaned_up_uploads(events)
    assert aborted == {"u1", "u4"}
    sweep = {"event": "orphan_upload_aborted", "upload_id": "u3", "initiated": "2025-01-01"}
    reaped = {**events[0], "job_id": str(job)}
    assert aborts_by([reaped, sweep, events[1], events[3]]) == {
        "reaper": 1,
        "sweep": 1,
        "gone": 1,
    }
    assert mid_upload_problems(MidUploadKills(landed={"u4": job}), aborted) == []
    assert mid_upload_problems(MidUploadKills(landed={"u1": job}), aborted) == []
    [problem] = mid_upload_problems(MidUploadKills(landed={"u1": job, "u2": job}), aborted)
    assert "upload u2" in problem
    [problem] = mid_upload_problems(MidUploadKills(missed=["no upload open for 30s"]), aborted)
    assert "no SIGKILL landed" in problem
    assert "no upload open" in problem
