"""The scheduler: each due schedule makes the job of its occurrence.

A round locks the due schedules (``FOR UPDATE SKIP LOCKED``) and, for each,
inserts its job and advances ``next_run_at`` to the first occurrence after
now, both under one savepoint of the round's transaction: any number of
daemons run rounds, and each occurrence makes exactly one job. The decision
(which occurrence, which next one) is the pure ``exportd.queue.cron.plan``.

Occurrences missed while no daemon ran make one job on recovery, not one
each (``EXPORTD_SCHEDULE_CATCH_UP``, docs/schedules.md). A schedule whose
params no longer fit its kind (the definitions changed since it was made)
still makes its job, which the worker fails as ``invalid_params`` where the
application sees every outcome, and the schedule records why in
``last_error``. One bad schedule fails alone: a row whose cron expression or
time zone cannot be read, or whose job the table refuses, records its error
and is tried again later; the others run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from exportd import limits
from exportd.errors import bounded_message
from exportd.queue import cron
from exportd.queue.postgres import PgJobStore
from exportd.queue.row_by_row import Passed, is_row_error, row_error
from exportd.queue.schedules import Run, ScheduleRound

# (kind, params) -> every problem of those params for that kind ([] when valid):
# the daemon's definitions, handed in by the daemon.
# (kind, params, options document) -> every problem, [] when none.
Validate = Callable[[str, Mapping[str, Any], Any], list[str]]

# A schedule whose cron expression or time zone cannot be read is tried again
# this much later (a PATCH that fixes it sets its next run at once).
UNREADABLE_RETRY = timedelta(hours=1)


class Scheduler:
    name = "scheduler"

    def __init__(
        self,
        queue: PgJobStore,
        validate: Validate,
        *,
        catch_up: cron.CatchUp = "latest",
        grace: timedelta = timedelta(minutes=2),
        batch_size: int = 100,
        logger: Any = None,
    ) -> None:
        self._queue = queue
        self._validate = validate
        self._catch_up: cron.CatchUp = catch_up
        self._grace = grace
        self.batch_size = batch_size
        self.log = logger or structlog.get_logger()
        self._passed = Passed()

    async def run_once(self, now: datetime | None = None) -> int:
        """Run up to a batch of schedules due at ``now`` (default: the database's
        clock, which all daemons share); returns how many were run. Raises only
        outages (the next tick retries)."""
        async with self._queue.schedule_round() as round_:
            now = now or await round_.clock()
            rows = await round_.due(now, self.batch_size, self._passed.ids())
            for row in rows:
                await self._run(round_, row, now)
        return len(rows)

    async def _run(self, round_: ScheduleRound, row: Any, now: datetime) -> None:
        schedule_id: uuid.UUID = row["id"]
        try:
            spec = cron.parse(row["cron"], row["timezone"])
            plan = cron.plan(spec, row["next_run_at"], now, self._catch_up, self._grace)
            key = (
                None
                if plan.occurrence is None
                else cron.occurrence_key(schedule_id, plan.occurrence)
            )
        except cron.CronError as exc:
            unreadable = f"cannot read cron {row['cron']!r} in time zone {row['timezone']!r}: {exc}"
            await self._failed(round_, row, Run(None, now + UNREADABLE_RETRY, now, unreadable))
            return
        except (ValueError, OverflowError, TypeError) as exc:
            # An instant of the row that no date arithmetic takes (a year out of
            # range): this row fails alone, the round goes on.
            unplannable = (
                f"cannot plan the run due at {row['next_run_at']!s}: {exc.__class__.__name__}: "
                f"{exc}; set next_run_at to NULL to start from the next occurrence"
            )
            await self._failed(round_, row, Run(None, now + UNREADABLE_RETRY, now, unplannable))
            return
        if plan.occurrence is None:
            if row["next_run_at"] is not None:
                self.log.info(
                    "schedule_occurrences_skipped",
                    schedule_id=str(schedule_id),
                    due_at=row["next_run_at"].isoformat(),
                    next_run_at=plan.next_run_at.isoformat(),
                )
            try:
                await round_.run(schedule_id, Run(None, plan.next_run_at, None, None))
            except Exception as exc:
                if not is_row_error(exc):
                    raise
                message = row_error("the schedule could not be advanced", exc)
                await self._failed(round_, row, Run(None, plan.next_run_at, now, message))
            return
        occurrence = plan.occurrence.astimezone(UTC).isoformat()
        error: str | None = None
        if problems := self._problems(row):
            error = bounded_message(
                f"the run of {occurrence}: the params or options no longer fit kind "
                f"{row['kind']!r} "
                f"({'; '.join(problems)}); its job was made, and fails as invalid_params "
                "(unknown_kind when the kind is gone)"
            )
        try:
            job_id = await round_.run(schedule_id, Run(key, plan.next_run_at, now, error))
        except Exception as exc:
            if not is_row_error(exc):
                raise
            message = row_error(f"the job of the run of {occurrence} could not be made", exc)
            await self._failed(round_, row, Run(None, plan.next_run_at, now, message))
            return
        fields = {
            "schedule_id": str(schedule_id),
            "owner": row["owner"],
            "kind": row["kind"],
            "occurrence": occurrence,
            "job_id": None if job_id is None else str(job_id),
            "next_run_at": plan.next_run_at.isoformat(),
        }
        if error is not None:
            self.log.warning("schedule_params_invalid", error=error, **fields)
        else:
            self.log.info("schedule_ran", **fields)

    def _problems(self, row: Any) -> list[str]:
        """Every problem of the schedule's params and options for its kind, now ([] when
        none): its job gets both, and is validated again when it runs."""
        found: list[str] = []
        try:
            params = limits.loads_bounded(row["params_text"], "params")
            options = limits.loads_bounded(
                row["options_text"], "options", max_bytes=limits.OPTIONS_MAX_BYTES
            )
        except limits.JsonBoundsError as exc:
            return [str(exc)]
        if not isinstance(params, dict):
            found.append("params must be a JSON object")
            params = {}
        return found + self._validate(row["kind"], params, options)

    async def _failed(self, round_: ScheduleRound, row: Any, run: Run) -> None:
        schedule_id: uuid.UUID = row["id"]
        error = bounded_message(run.error or "")
        recorded = await round_.record_error(
            schedule_id, Run(None, run.next_run_at, run.ran_at, error)
        )
        if not recorded:
            # Even the error cannot be written (the application's trigger, a
            # row older than a constraint): passed over by this process.
            self._passed.add(schedule_id)
        self.log.error(
            "schedule_run_failed",
            schedule_id=str(schedule_id),
            error=error,
            next_run_at=run.next_run_at.isoformat(),
            passed_over=not recorded,
        )
