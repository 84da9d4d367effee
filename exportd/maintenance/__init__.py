"""Maintenance: the periodic tasks that keep the queue and the bucket tidy.

Each task is a small unit with a ``run_once()`` that does one bounded round
and returns how much it did; tests call it directly. ``runner`` only ticks
them. Every round runs under its own transaction-level advisory lock, so any
number of daemons can run maintenance and each round is done by one of them;
the scheduler locks the rows it runs instead (``FOR UPDATE SKIP LOCKED``), so
that daemons share its rounds and each schedule is run by one of them.
"""
