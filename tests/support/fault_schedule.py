"""The fault suite's random plan, a pure function of a seed and a profile.

Everything random about a run of tests/system/faults/test_faults.py (which jobs are
enqueued, which daemon is killed when, when Postgres restarts, when S3 is
away and for how long) comes from here, so that the seed printed by a
failing run replays it: ``EXPORTD_FAULT_SEED=<seed> pytest tests/system/faults/test_faults.py``.
Timing on a loaded machine still varies between runs; the plan does not.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from enum import StrEnum

SEED_VARIABLE = "EXPORTD_FAULT_SEED"
PROFILE_VARIABLE = "EXPORTD_FAULT_PROFILE"

DAEMONS = 3


class Action(StrEnum):
    SIGKILL = "sigkill"  # the daemon dies at once; restarted after `duration`
    # The same, to a daemon chosen when it strikes among those with an upload
    # open (tests/support/fault_uploads.py), `pick` choosing among them.
    SIGKILL_MID_UPLOAD = "sigkill_mid_upload"
    SIGTERM = "sigterm"  # the daemon drains and exits; restarted once it has
    POSTGRES_RESTART = "postgres_restart"  # stopped, started again after `duration`
    S3_DOWN = "s3_down"  # connections refused for `duration`


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the first job was enqueued
    action: Action
    daemon: int | None = None  # which daemon, for signals
    duration: float = 0.0
    mode: str = ""  # pg_ctl stop mode, for a Postgres restart
    pick: float = 0.0  # in [0, 1): which candidate a mid-upload kill takes

    def describe(self) -> str:
        target = f" daemon {self.daemon}" if self.daemon is not None else ""
        mode = f" ({self.mode})" if self.mode else ""
        return f"t={self.at:.1f}s {self.action}{target}{mode} for {self.duration:.1f}s"


@dataclass(frozen=True)
class Profile:
    name: str
    small_jobs: int  # a few rows each, spread over every format
    large_jobs: int  # several 5 MiB parts each, paced so that faults land mid-upload
    large_rows: int  # rows of a large job (about 2 KiB each)
    window: float  # seconds over which faults are spread
    sigkills: int
    mid_upload_kills: int  # of the sigkills, those that wait for an open upload
    sigterms: int
    s3_outages: int
    drain_deadline: float  # seconds the queue may take to drain after the last fault


PROFILES = {
    # What CI runs for each S3 server: a few minutes for both together.
    "short": Profile(
        name="short",
        small_jobs=240,
        large_jobs=16,
        large_rows=7000,
        window=30.0,
        sigkills=4,
        mid_upload_kills=1,
        sigterms=2,
        s3_outages=1,
        drain_deadline=150.0,
    ),
    # EXPORTD_FAULT_PROFILE=long: more of everything, for a release or a soak.
    "long": Profile(
        name="long",
        small_jobs=900,
        large_jobs=24,
        large_rows=9000,
        window=150.0,
        sigkills=24,
        mid_upload_kills=3,
        sigterms=10,
        s3_outages=3,
        drain_deadline=600.0,
    ),
}

FORMATS = ("csv", "csv.gz", "jsonl", "jsonl.gz", "json", "zip")


@dataclass(frozen=True)
class JobSpec:
    at: float  # seconds after the start, when the application inserts it
    owner: str
    kind: str
    params: dict[str, object]
    format: str
    priority: int


def seed_from_env(environ: dict[str, str] | None = None) -> int:
    """The seed to replay, or a fresh one."""
    env = os.environ if environ is None else environ
    text = env.get(SEED_VARIABLE, "").strip()
    if text:
        return int(text)
    return secrets.randbelow(2**32)


def profile_from_env(environ: dict[str, str] | None = None) -> Profile:
    env = os.environ if environ is None else environ
    name = env.get(PROFILE_VARIABLE, "short").strip() or "short"
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE}={name!r}: expected one of {sorted(PROFILES)}")
    return PROFILES[name]


def plan_jobs(seed: int, profile: Profile) -> list[JobSpec]:
    """The exports to enqueue, in time order: every format, small and large.

    They arrive over most of the window, as an application keeps inserting,
    so that every fault finds work running."""
    rng = random.Random(f"jobs:{seed}")

    def arrival() -> float:
        return rng.uniform(0.0, profile.window * 0.9)

    jobs: list[JobSpec] = []
    for i in range(profile.small_jobs):
        fmt = FORMATS[i % len(FORMATS)]
        owner = f"owner{rng.randrange(12)}"
        if fmt == "zip" and i % 12 == 5:
            # A bundle of two datasets read from one snapshot.
            jobs.append(JobSpec(arrival(), owner, "bundle", {}, fmt, rng.randrange(-3, 4)))
        else:
            params: dict[str, object] = {"min_n": rng.randrange(0, 40)}
            jobs.append(JobSpec(arrival(), owner, "items", params, fmt, rng.randrange(-3, 4)))
    for i in range(profile.large_jobs):
        fmt = FORMATS[i % len(FORMATS)]
        rows = profile.large_rows + rng.randrange(0, 1000)
        jobs.append(JobSpec(arrival(), f"big{i}", "large", {"rows": rows}, fmt, 5))
    return sorted(jobs, key=lambda j: j.at)


def plan_faults(seed: int, profile: Profile) -> list[Fault]:
    """When each fault strikes, in time order.

    Signals land anywhere in the window (a mid-upload kill may wait a while
    past its time for an upload to be open); one Postgres restart and the S3
    outages fall in disjoint slots, so that the whole plan ends within the
    window plus the longest outage, and every daemon is up at the end.
    """
    rng = random.Random(f"faults:{seed}")
    faults: list[Fault] = []
    for _ in range(profile.mid_upload_kills):
        # Early enough that large jobs keep arriving while it waits for one.
        faults.append(
            Fault(
                at=rng.uniform(0.1, 0.6) * profile.window,
                action=Action.SIGKILL_MID_UPLOAD,
                duration=rng.uniform(0.2, 3.0),
                pick=rng.random(),
            )
        )
    for _ in range(profile.sigkills - profile.mid_upload_kills):
        faults.append(
            Fault(
                at=rng.uniform(1.0, profile.window),
                action=Action.SIGKILL,
                daemon=rng.randrange(DAEMONS),
                duration=rng.uniform(0.2, 3.0),
            )
        )
    for _ in range(profile.sigterms):
        faults.append(
            Fault(
                at=rng.uniform(1.0, profile.window),
                action=Action.SIGTERM,
                daemon=rng.randrange(DAEMONS),
                duration=rng.uniform(0.0, 1.0),
            )
        )
    # Outages of shared services take turns in slots of the window.
    outages = [Action.POSTGRES_RESTART] + [Action.S3_DOWN] * profile.s3_outages
    rng.shuffle(outages)
    slot = profile.window / len(outages)
    for i, action in enumerate(outages):
        # S3 outages outlast the client's own retries (a few seconds), so
        # that jobs fail, retry and the storage breaker opens.
        duration = (
            rng.uniform(1.0, 4.0) if action is Action.POSTGRES_RESTART else rng.uniform(8.0, 14.0)
        )
        start = i * slot + rng.uniform(0.5, max(0.5, slot - duration))
        mode = rng.choice(["fast", "immediate"]) if action is Action.POSTGRES_RESTART else ""
        faults.append(Fault(at=start, action=action, duration=duration, mode=mode))
    return sorted(faults, key=lambda f: (f.at, f.action))
