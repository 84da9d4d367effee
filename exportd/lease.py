"""Lease arithmetic: pure functions of plain values.

A worker holds each job under a lease that the database times out. The
worker renews it from a heartbeat that does not depend on the export making
progress; if renewals stop reaching the database for a whole lease, the
worker must assume the reaper took the job and stop working on it.
"""

from __future__ import annotations


def heartbeat_interval(lease_seconds: float) -> float:
    """Renew at a third of the lease: two renewals may be lost before it ends."""
    return lease_seconds / 3.0


def lease_lost_locally(renewal_sent: float, now: float, lease_seconds: float) -> bool:
    """True once a whole lease has passed since the last successful renewal was sent.

    Both values are readings of one monotonic clock. The database set the
    new expiry after the renewal was sent, so the lease cannot end before
    ``renewal_sent + lease``: a worker that stops then stops no later than
    the reaper may take the job.
    """
    return now - renewal_sent >= lease_seconds
