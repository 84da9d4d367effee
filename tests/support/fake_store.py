"""A job store faked at the ``JobStore`` Protocol: it records what the worker loop
asked for and answers as a healthy queue would, so the loop's decisions can be
tested without Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exportd.errors import ErrorKind
from exportd.queue.interface import Commit, Completing
from exportd.queue.job import Heartbeat, Job, JobState, LetGo
from exportd.quotas import Quota


def make_job(attempt: int = 1, max_attempts: int = 5, claim: int | None = None) -> Job:
    return Job(
        id=uuid.uuid4(),
        owner="u1",
        kind="k",
        params={},
        format="csv",
        priority=0,
        attempt=attempt,
        max_attempts=max_attempts,
        created_at=datetime.now(UTC),
        claim=attempt if claim is None else claim,
    )


@dataclass
class FakeStore:
    ready: list[Job] = field(default_factory=list)
    owned: set[uuid.UUID] = field(default_factory=set)
    states: dict[uuid.UUID, str] = field(default_factory=dict)
    calls: list[tuple[str, uuid.UUID]] = field(default_factory=list)
    retry_delays: list[float] = field(default_factory=list)
    heartbeat_error: Exception | None = None
    heartbeats: int = 0
    workers: dict[uuid.UUID, str] = field(default_factory=dict)
    # Owned, but passed over by the heartbeat (its row locked for a moment).
    locked: set[uuid.UUID] = field(default_factory=set)
    # When given, a completion commits the object, then waits for it before
    # updating the row (a slow database).
    recorded: asyncio.Event | None = None
    # Jobs whose max_attempts the application lowered while they ran: the
    # store fails them when the worker retries or releases them.
    no_attempt_left: set[uuid.UUID] = field(default_factory=set)
    # The completions under way, each a task of its own, as in the real store.
    completions: set[asyncio.Task[None]] = field(default_factory=set)
    # The claim number of each claimed job, as state_of reports it.
    claims: dict[uuid.UUID, int] = field(default_factory=dict)
    # Jobs over their kind's quota, with when they can be asked for again; a
    # count that fails raises quota_error.
    over_quota: dict[uuid.UUID, datetime] = field(default_factory=dict)
    quota_error: Exception | None = None

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]:
        taken, self.ready = self.ready[:limit], self.ready[limit:]
        for job in taken:
            self.owned.add(job.id)
            self.states[job.id] = "processing"
            self.workers[job.id] = worker_id
            self.claims[job.id] = job.claim
        return taken

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        self.heartbeats += 1
        if self.heartbeat_error is not None:
            raise self.heartbeat_error
        return {b.job_id for b in beats if b.job_id in self.owned - self.locked}

    async def record_upload(self, job: Job, worker_id: str, ref: object) -> bool:
        return job.id in self.owned

    def _end(self, name: str, job: Job, state: str) -> bool:
        self.calls.append((name, job.id))
        if job.id not in self.owned:
            return False
        self.owned.discard(job.id)
        self.states[job.id] = state
        return True

    def begin_completion(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> Completing:
        completing = Completing()
        task = asyncio.create_task(self._complete(job, commit, completing))
        self.completions.add(task)
        task.add_done_callback(self.completions.discard)
        return completing

    async def _complete(self, job: Job, commit: Commit, completing: Completing) -> None:
        if job.id not in self.owned:
            self.calls.append(("complete_lost", job.id))
            completing.settle(None)
            return
        try:
            result = await commit()
        except Exception as exc:
            completing.settle(exc)
            return
        completing.object_committed()
        if self.recorded is not None:
            await self.recorded.wait()
        self._end("complete", job, "completed")
        completing.settle(result)

    def _let_go(self, name: str, job: Job) -> LetGo | None:
        went = LetGo.FAILED if job.id in self.no_attempt_left else LetGo.PENDING
        return went if self._end(name, job, went.value) else None

    async def retry(
        self, job: Job, worker_id: str, delay_seconds: float, error: str, kind: ErrorKind
    ) -> LetGo | None:
        self.retry_delays.append(delay_seconds)
        return self._let_go(f"retry:{kind}", job)

    async def fail(self, job: Job, worker_id: str, error: str, kind: ErrorKind) -> bool:
        return self._end(f"fail:{kind}", job, "failed")

    async def release(self, job: Job, worker_id: str) -> LetGo | None:
        return self._let_go("release", job)

    async def state_of(self, job_id: uuid.UUID) -> JobState | None:
        state = self.states.get(job_id)
        if state is None:
            return None
        worker = self.workers[job_id] if job_id in self.owned else None
        return JobState(state, worker, self.claims.get(job_id, 1), "u1")

    async def quota_retry_at(self, job: Job, quota: Quota) -> datetime | None:
        self.calls.append(("quota", job.id))
        if self.quota_error is not None:
            raise self.quota_error
        return self.over_quota.get(job.id)

    def lose(self, job_id: uuid.UUID, state: str) -> None:
        self.owned.discard(job_id)
        self.states[job_id] = state
