"""Signed webhooks: each job event of the outbox, POSTed to its kind's target.

- ``signing``: the Standard Webhooks signature (pure).
- ``payload``: the event's body, bounded (pure).
- ``policy``: what an attempt's answer means, and when to try again (pure).
- ``targets``: which URL a kind's events go to (pure).
- ``sender``: one POST, under a deadline, redirects not followed.
- ``deliverer``: the daemon's task that claims, sends and records.
- ``metrics``: the collectors of ``/metrics``.

The outbox's statements are the queue's (``exportd.queue.outbox``); the event's
``data`` is the job as ``GET /v1/jobs/{id}`` shows it (``exportd.api.views``).
"""
