"""Failed logins: bounded per client and in all, within a window."""

from __future__ import annotations

from exportd.ui.throttle import LoginThrottle


def test_a_client_is_stopped_after_its_failures_until_the_window_ends() -> None:
    throttle = LoginThrottle(per_client=3, overall=100, window_seconds=60)
    for second in range(3):
        assert throttle.retry_after("a", float(second)) is None
        throttle.failed("a", float(second))
    assert throttle.retry_after("a", 3.0) == 57.0
    assert throttle.retry_after("b", 3.0) is None
    assert throttle.retry_after("a", 60.0) is None


def test_all_clients_together_are_bounded() -> None:
    throttle = LoginThrottle(per_client=3, overall=5, window_seconds=60, max_clients=2)
    for n in range(5):
        throttle.failed(f"client-{n}", 1.0)
    assert throttle.retry_after("fresh", 2.0) == 59.0
    assert throttle.retry_after("fresh", 61.0) is None


def test_the_table_of_clients_is_bounded() -> None:
    throttle = LoginThrottle(per_client=1, overall=10_000, max_clients=3)
    for n in range(10):
        throttle.failed(f"client-{n}", 1.0)
    assert len(throttle._clients) == 3
    assert throttle.retry_after("client-9", 1.0) is not None
