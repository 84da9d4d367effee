"""The job table's one front door: claim, leases, completion, enqueue, reads,
maintenance rounds, the listener, migrations and the named SQL; and the
webhook outbox that a trigger on the table fills (``outbox``).

The worker sees it through the ``JobStore`` Protocol (``interface``); everyone else
through ``PgJobStore`` (``postgres``). No other package runs queue SQL.
"""
