"""Prometheus metrics: what the daemon counts, on a registry of its own.

Every collector lives on one ``Metrics`` object with its own
``CollectorRegistry`` rather than on the process-wide default registry: two
daemons in one test process (or one test after another) then never see each
other's counts, and nothing registers twice.

This module imports nothing but prometheus_client, so the worker loop may
record events through it without learning of Postgres, S3 or HTTP. Passing
a ``Metrics`` to the worker is simpler than an observer Protocol with one
method per event and a no-op implementation beside it: counters are already
the narrow, side-effect-free interface such a Protocol would wrap, and tests
read them back from the registry.

Figures that only the database knows (queue depth by state, the age of the
oldest pending job) come from a ``QueueSnapshot`` that the API refreshes
before a scrape; the collector here only reports the last snapshot, because
prometheus_client collects synchronously and a scrape must never block the
event loop on a query.

Label values that come from rows (a job's kind, its state, its error kind) are
caller data: every distinct value would be a new time series in this process
and in Prometheus, and the table holds whatever strings the application
inserted. Each such label is mapped onto a fixed set before it reaches a
collector: the kinds the daemon's definitions define, the states, the error
kinds, and ``other`` for anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exportd.errors import ErrorKind
from exportd.queue.job import STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Exports run from under a second to hours.
_DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
# From an empty CSV's header to the largest object allowed by default.
_SIZE_BUCKETS = (*(float(1024**p) * m for p in (1, 2, 3) for m in (1, 10, 100)), float(1024**4))

_S3_KINDS = frozenset({ErrorKind.STORAGE_UNAVAILABLE, ErrorKind.ACCESS_DENIED})
_DATABASE_KINDS = frozenset({ErrorKind.DATABASE_UNAVAILABLE})


# The one label value for everything outside a label's fixed set.
OTHER = "other"
# Kinds kept as they are when no definitions were given (a Metrics made for a
# test or a tool): the first this many distinct kinds; later ones are OTHER.
UNDECLARED_KINDS_MAX = 32

_ERROR_KINDS = frozenset(str(k) for k in ErrorKind)
_STATES = frozenset(STATES)


class LabelSet:
    """Maps a label value from caller data onto a bounded set of values.

    ``known``: the values kept, anything else being OTHER. None: the first
    ``cap`` distinct values are kept, later ones are OTHER.
    """

    def __init__(self, known: Iterable[str] | None, cap: int = UNDECLARED_KINDS_MAX) -> None:
        self._known = None if known is None else frozenset(known)
        self._seen: set[str] = set()
        self._cap = cap

    def __call__(self, value: str) -> str:
        if self._known is not None:
            return value if value in self._known else OTHER
        if value in self._seen:
            return value
        if len(self._seen) < self._cap:
            self._seen.add(value)
            return value
        return OTHER


_M = TypeVar("_M", Counter, Histogram)


class Bounded(Generic[_M]):
    """A labelled collector whose label values pass through a bound each.

    ``labels(...)`` is the collector's own, after mapping: every call site
    (worker, reaper, API) is bounded without knowing it.
    """

    def __init__(self, metric: _M, *bounds: Callable[[str], str]) -> None:
        self.metric: _M = metric
        self._bounds = bounds

    def labels(self, *values: str) -> _M:
        mapped = (bound(str(v)) for bound, v in zip(self._bounds, values, strict=True))
        child: _M = self.metric.labels(*mapped)
        return child


def _in(known: frozenset[str]) -> Callable[[str], str]:
    return lambda value: value if value in known else OTHER


def error_source(kind: ErrorKind) -> str | None:
    """Whether a job's failure was S3's or the database's fault, if either's."""
    if kind in _S3_KINDS:
        return "s3"
    if kind in _DATABASE_KINDS:
        return "database"
    return None


@dataclass(frozen=True)
class QueueSnapshot:
    """Jobs per state and the age of the oldest ready pending job, as last read."""

    by_state: dict[str, int] = field(default_factory=dict)
    oldest_pending_seconds: float = 0.0


class _QueueCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: QueueSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        if snapshot is None:
            return  # never read: report nothing rather than zeros that would be false
        depth = GaugeMetricFamily(
            "exportd_queue_jobs", "Jobs in the queue table by state.", labels=["state"]
        )
        for state in STATES:
            depth.add_metric([state], float(snapshot.by_state.get(state, 0)))
        yield depth
        yield GaugeMetricFamily(
            "exportd_queue_oldest_pending_seconds",
            "Age of the oldest pending job whose run_after has passed (0 when none).",
            value=snapshot.oldest_pending_seconds,
        )


class _PausedCollector(Collector):
    """``exportd_kind_paused``: 1 for each of the daemon's kinds that no daemon
    claims now, else 0; ``kind="*"`` is 1 while every kind is paused."""

    def __init__(self, kinds: tuple[str, ...] | None) -> None:
        self._kinds = kinds
        self.paused: frozenset[str] | None = None

    def collect(self) -> Iterator[Metric]:
        paused = self.paused
        if paused is None:
            return  # never read: absent, not "nothing paused"
        # The kind of the pause of every kind (exportd.queue.pauses.ALL_KINDS,
        # which imports the driver this module stays clear of).
        every = "*" in paused
        # Without definitions, the kinds paused (bounded like any kind label).
        kinds = self._kinds or sorted(paused - {"*"})[:UNDECLARED_KINDS_MAX]
        family = GaugeMetricFamily(
            "exportd_kind_paused",
            'Whether a kind is paused (1) or claimed (0); kind="*" is 1 while every kind is.',
            labels=["kind"],
        )
        for kind in kinds:
            family.add_metric([kind], float(every or kind in paused))
        family.add_metric(["*"], float(every))
        yield family


class Metrics:
    """The daemon's collectors. One per daemon; tests make their own.

    ``kinds``: the kinds the daemon's definitions define, the only kind label
    values reported besides ``other`` (None: see ``UNDECLARED_KINDS_MAX``).
    """

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        known = None if kinds is None else tuple(kinds)
        kind = LabelSet(known)
        error_kind = _in(_ERROR_KINDS)
        state = _in(_STATES)
        self.jobs_claimed = Bounded(
            Counter("exportd_jobs_claimed", "Jobs claimed by this daemon.", ["kind"], registry=r),
            kind,
        )
        self.jobs_completed = Bounded(
            Counter(
                "exportd_jobs_completed", "Jobs completed by this daemon.", ["kind"], registry=r
            ),
            kind,
        )
        self.jobs_failed = Bounded(
            Counter(
                "exportd_jobs_failed",
                "Jobs that failed for good (attempts spent or a permanent error).",
                ["kind", "error_kind"],
                registry=r,
            ),
            kind,
            error_kind,
        )
        self.jobs_retried = Bounded(
            Counter(
                "exportd_jobs_retried",
                "Failed attempts sent back to pending for a later retry.",
                ["kind", "error_kind"],
                registry=r,
            ),
            kind,
            error_kind,
        )
        self.jobs_reaped = Bounded(
            Counter(
                "exportd_jobs_reaped",
                "Jobs whose lease ran out, handed back or failed by this daemon's reaper.",
                ["kind", "state"],
                registry=r,
            ),
            kind,
            state,
        )
        self.jobs_cancelled = Bounded(
            Counter(
                "exportd_jobs_cancelled",
                "Cancellations seen by this daemon: running jobs it stopped, and pending "
                "jobs cancelled through its API.",
                ["kind"],
                registry=r,
            ),
            kind,
        )
        self.jobs_in_flight = Gauge(
            "exportd_jobs_in_flight",
            "Jobs this daemon holds now: exporting, or committed and being recorded.",
            registry=r,
        )
        self.lease_renewals_lost = Counter(
            "exportd_lease_renewals_lost",
            "Running jobs stopped because their lease could no longer be renewed "
            "(reaped, claimed by another worker, or the database unreachable for too long).",
            registry=r,
        )
        self.export_duration = Bounded(
            Histogram(
                "exportd_export_duration_seconds",
                "From claim to completion, per completed export.",
                ["kind"],
                buckets=_DURATION_BUCKETS,
                registry=r,
            ),
            kind,
        )
        self.export_size = Bounded(
            Histogram(
                "exportd_export_size_bytes",
                "Size of each completed export's object.",
                ["kind"],
                buckets=_SIZE_BUCKETS,
                registry=r,
            ),
            kind,
        )
        self.rows_exported = Bounded(
            Counter("exportd_rows_exported", "Rows in completed exports.", ["kind"], registry=r),
            kind,
        )
        self.bytes_exported = Bounded(
            Counter(
                "exportd_bytes_exported",
                "Bytes of completed exports' objects.",
                ["kind"],
                registry=r,
            ),
            kind,
        )
        self.s3_errors = Counter(
            "exportd_s3_errors",
            "Failed S3 operations (exports, aborts, deletes, readiness checks).",
            ["operation"],
            registry=r,
        )
        self.database_errors = Counter(
            "exportd_database_errors",
            "Failed queue-database operations (claims, heartbeats, reaping, API, readiness).",
            ["operation"],
            registry=r,
        )
        # Operations: the storage breaker and maintenance.
        self.storage_breaker_open = Gauge(
            "exportd_storage_breaker_open",
            "1 while this daemon has stopped claiming because storage keeps failing.",
            registry=r,
        )
        self.storage_breaker_opened = Counter(
            "exportd_storage_breaker_opened",
            "Times this daemon's storage breaker opened.",
            registry=r,
        )
        self.maintenance_items = Counter(
            "exportd_maintenance_items",
            "What maintenance did, by task: retention (exports expired), purge (rows "
            "deleted), uploads_sweep (orphaned uploads aborted).",
            ["task"],
            registry=r,
        )
        self.maintenance_failures = Counter(
            "exportd_maintenance_failures",
            "Maintenance rounds that failed (database or storage unreachable), by task.",
            ["task"],
            registry=r,
        )
        self._queue = _QueueCollector()
        r.register(self._queue)
        self._paused = _PausedCollector(known)
        r.register(self._paused)
        # What every Prometheus target reports: the process's memory, CPU,
        # open files and start time, the interpreter, the garbage collector.
        # They describe the process, not this registry, so sharing them is right.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)

    # --- events ----------------------------------------------------------------

    def job_failed(self, kind: str, error_kind: ErrorKind, *, retried: bool) -> None:
        counter = self.jobs_retried if retried else self.jobs_failed
        counter.labels(kind, str(error_kind)).inc()
        source = error_source(error_kind)
        if source is not None:
            self.error(source, "export")

    def job_completed(self, kind: str, seconds: float, size_bytes: int, rows: int) -> None:
        self.jobs_completed.labels(kind).inc()
        self.export_duration.labels(kind).observe(seconds)
        self.export_size.labels(kind).observe(size_bytes)
        self.rows_exported.labels(kind).inc(rows)
        self.bytes_exported.labels(kind).inc(size_bytes)

    def error(self, source: str, operation: str) -> None:
        """One failed operation against ``source`` ('s3' or 'database')."""
        counter = self.s3_errors if source == "s3" else self.database_errors
        counter.labels(operation).inc()

    def set_queue(self, snapshot: QueueSnapshot | None) -> None:
        """The queue figures to report, or None to report none (unknown)."""
        self._queue.snapshot = snapshot

    def set_paused(self, kinds: Iterable[str] | None) -> None:
        """The kinds paused now (exportd.paused_kinds, '*' for every kind), or None
        to report none (unknown)."""
        self._paused.paused = None if kinds is None else frozenset(kinds)

    # --- reading -----------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition of every collector."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's current value (0 when never recorded): for tests and checks."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found
