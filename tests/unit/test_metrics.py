"""The metrics registry: isolated per daemon, rendered in Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from exportd.errors import ErrorKind
from exportd.metrics import OTHER, UNDECLARED_KINDS_MAX, Metrics, QueueSnapshot, error_source


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_metrics_object_counts_alone() -> None:
    first, second = Metrics(), Metrics()
    first.jobs_claimed.labels("orders").inc()
    assert first.value("exportd_jobs_claimed_total", {"kind": "orders"}) == 1
    assert second.value("exportd_jobs_claimed_total", {"kind": "orders"}) == 0


def test_completion_feeds_counters_and_histograms() -> None:
    m = Metrics()
    m.job_completed("orders", seconds=2.5, size_bytes=3000, rows=40)
    found = samples(m)
    kind = (("kind", "orders"),)
    assert found[("exportd_jobs_completed_total", kind)] == 1
    assert found[("exportd_rows_exported_total", kind)] == 40
    assert found[("exportd_bytes_exported_total", kind)] == 3000
    assert found[("exportd_export_duration_seconds_sum", kind)] == 2.5
    assert found[("exportd_export_size_bytes_bucket", (("kind", "orders"), ("le", "1024.0")))] == 0
    assert found[("exportd_export_size_bytes_bucket", (("kind", "orders"), ("le", "10240.0")))] == 1


def test_failures_are_attributed_to_s3_or_the_database() -> None:
    assert error_source(ErrorKind.STORAGE_UNAVAILABLE) == "s3"
    assert error_source(ErrorKind.ACCESS_DENIED) == "s3"
    assert error_source(ErrorKind.DATABASE_UNAVAILABLE) == "database"
    assert error_source(ErrorKind.INVALID_PARAMS) is None
    m = Metrics()
    m.job_failed("orders", ErrorKind.DATABASE_UNAVAILABLE, retried=True)
    m.job_failed("orders", ErrorKind.QUERY_ERROR, retried=False)
    assert m.value("exportd_database_errors_total", {"operation": "export"}) == 1
    assert m.value("exportd_s3_errors_total", {"operation": "export"}) == 0
    labels = {"kind": "orders", "error_kind": "query_error"}
    assert m.value("exportd_jobs_failed_total", labels) == 1


def test_queue_figures_appear_once_read_with_every_state() -> None:
    m = Metrics()
    assert not any(name.startswith("exportd_queue") for name, _ in samples(m))
    m.set_queue(QueueSnapshot({"pending": 3, "failed": 1}, oldest_pending_seconds=12.5))
    found = samples(m)
    depth = {
        dict(labels)["state"]: value
        for (name, labels), value in found.items()
        if name == "exportd_queue_jobs"
    }
    assert depth == {
        "pending": 3,
        "processing": 0,
        "completed": 0,
        "failed": 1,
        "cancelled": 0,
        "expired": 0,
    }
    assert found[("exportd_queue_oldest_pending_seconds", ())] == 12.5


def test_the_process_is_described_as_on_every_prometheus_target() -> None:
    names = {name for name, _ in samples(Metrics())}
    assert {"process_resident_memory_bytes", "process_start_time_seconds"} <= names
    assert "python_info" in names


def kind_labels(m: Metrics) -> set[str]:
    return {
        dict(labels)["kind"] for (_, labels), _value in samples(m).items() if "kind" in dict(labels)
    }


def test_kinds_outside_the_definitions_are_counted_as_other() -> None:
    m = Metrics(kinds=["orders", "invoices"])
    junk = [f"junk-{i}-" + "x" * 200 for i in range(500)]
    for kind in [*junk, "orders"]:
        m.jobs_claimed.labels(kind).inc()
        m.jobs_cancelled.labels(kind).inc()
        m.job_failed(kind, ErrorKind.UNKNOWN_KIND, retried=False)
        m.job_completed(kind, seconds=1.0, size_bytes=10, rows=1)
        m.jobs_reaped.labels(kind, "pending").inc()
    assert kind_labels(m) == {"orders", OTHER}
    assert m.value("exportd_jobs_claimed_total", {"kind": OTHER}) == 500
    assert m.value("exportd_jobs_claimed_total", {"kind": "orders"}) == 1
    assert m.value("exportd_rows_exported_total", {"kind": OTHER}) == 500


def test_states_and_error_kinds_from_rows_are_bounded_too() -> None:
    m = Metrics(kinds=["orders"])
    for i in range(100):
        m.jobs_reaped.labels("orders", f"state-{i}").inc()
        m.jobs_failed.labels("orders", f"error-{i}").inc()
    m.jobs_reaped.labels("orders", "failed").inc()
    m.job_failed("orders", ErrorKind.TIMEOUT, retried=True)
    found = samples(m)
    states = {dict(ls)["state"] for (n, ls) in found if n == "exportd_jobs_reaped_total"}
    errors = {
        dict(ls)["error_kind"]
        for (n, ls) in found
        if n in ("exportd_jobs_failed_total", "exportd_jobs_retried_total")
    }
    assert states == {"failed", OTHER}
    assert errors == {"timeout", OTHER}


def test_without_definitions_the_kinds_kept_are_capped() -> None:
    m = Metrics()
    for i in range(UNDECLARED_KINDS_MAX + 50):
        m.jobs_claimed.labels(f"k{i}").inc()
    m.jobs_claimed.labels("k0").inc()
    labels = kind_labels(m)
    assert len(labels) == UNDECLARED_KINDS_MAX + 1
    assert OTHER in labels
    assert m.value("exportd_jobs_claimed_total", {"kind": "k0"}) == 2
    assert m.value("exportd_jobs_claimed_total", {"kind": OTHER}) == 50
