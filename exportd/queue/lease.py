"""Lease arithmetic: pure functions of plain values.

A worker holds each job under a lease that the database times out. The
worker renews it from a heartbeat that does not depend on the export making
progress. If renewals stop succeeding (the database is unreachable, or
answers too slowly), the worker must stop the job itself before the lease
can run out, because from then on the reaper may hand the job to another
worker.

The schedule: a beat every third of the lease (and at least every
``PROGRESS_SECONDS``, since beats also carry a running export's progress),
each renewal bounded to a sixth of it, so a beat happens at least every half lease. A job is stopped
at the first beat that finds half a lease gone since the last renewal that
succeeded was sent; that beat comes before a whole lease has passed, and the
database cannot end the lease before then, because it set the expiry after
the renewal was sent.
"""

from __future__ import annotations

# Beats record each running job's rows, bytes and percentage too: whoever
# watches a job sees it move at least this often, whatever the lease.
PROGRESS_SECONDS = 5.0


def heartbeat_interval(lease_seconds: float) -> float:
    """Renew at a third of the lease (a renewal may fail before the job must stop), or
    every PROGRESS_SECONDS when that is sooner."""
    return min(lease_seconds / 3.0, PROGRESS_SECONDS)


def renewal_timeout(lease_seconds: float) -> float:
    """How long one renewal may take before it counts as failed."""
    return lease_seconds / 6.0


def locked_call_timeout(lease_seconds: float) -> float:
    """The deadline of an external call made while a job's row lock is held: a third
    of the lease.

    While the row is locked, the heartbeat cannot renew it, nor the reaper,
    a cancel or the API take it: a call that never returned would leave the
    job in ``processing`` for good. A third leaves the rest of the lease for
    the transaction's own statements and for recording the failure, which
    renews the lease first (``renew_locked``).
    """
    return lease_seconds / 3.0


def lease_lost_locally(renewal_sent: float, now: float, lease_seconds: float) -> bool:
    """True once half a lease has passed since the last successful renewal was sent.

    Both values are readings of one monotonic clock. With beats at most half
    a lease apart, the first beat that sees this is still inside the lease.
    """
    return now - renewal_sent >= lease_seconds / 2.0
