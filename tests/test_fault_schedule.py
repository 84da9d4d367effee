"""The fault suite's plan: the same seed gives the same plan, and every plan is sound."""

from __future__ import annotations

import itertools

import pytest

from tests.fault_schedule import (
    DAEMONS,
    FORMATS,
    PROFILES,
    Action,
    plan_faults,
    plan_jobs,
    profile_from_env,
    seed_from_env,
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
    assert actions.count(Action.SIGKILL) == profile.sigkills
    assert actions.count(Action.SIGTERM) == profile.sigterms
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    assert all(f.daemon in range(DAEMONS) for f in faults if f.action in ("sigkill", "sigterm"))
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
