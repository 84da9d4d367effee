"""A queue with a long history: a million job rows in seconds, for the plans of
the overview and the dashboard's list (tests) and their timings (bench/overview.py).

The shape of a busy installation: 1% of rows pending (a third of them due
later), a few processing, 1% failed, the rest completed, finished over the
last ~29 days (a row every 2.5 seconds, so a day holds ~35,000 and an hour
~1,400); 7 kinds, 1,000 owners. The rows are written with the table's
triggers off (a million notifications and webhook deliveries would be the
slow part, and the overview reads neither), then vacuumed, as autovacuum
would have, so that the visibility map lets index-only scans skip the heap.
"""

from __future__ import annotations

import asyncpg

PROCESSING = 20
KINDS = 7

_LOAD = """
INSERT INTO exportd.jobs
    (owner, kind, state, attempts, max_attempts, run_after, created_at, started_at,
     finished_at, worker_id, lease_expires_at, error_kind, error, progress)
SELECT 'o' || (g % 1000),
       'k' || (g % $2),
       s.state,
       CASE WHEN s.state = 'pending' THEN 0 ELSE 1 END,
       5,
       CASE WHEN s.state = 'pending' AND g % 3 = 0 THEN now() + interval '1 hour'
            ELSE t.ended - interval '10 seconds' END,
       t.ended - interval '10 seconds',
       CASE WHEN s.state = 'pending' THEN NULL
            ELSE t.ended - make_interval(secs => 1 + g % 60) END,
       CASE WHEN s.state IN ('completed', 'failed') THEN t.ended END,
       CASE WHEN s.state = 'processing' THEN 'w' || (g % 4) END,
       CASE WHEN s.state = 'processing' THEN now() + interval '30 seconds' END,
       CASE WHEN s.state = 'failed' THEN (ARRAY['query_failed', 'timeout'])[1 + g % 2] END,
       CASE WHEN s.state = 'failed' THEN 'the query failed' END,
       CASE WHEN s.state = 'processing' THEN g % 100 ELSE 0 END
FROM generate_series(1, $1) AS g,
     LATERAL (SELECT now() - make_interval(secs => g * 2.5) AS ended) AS t,
     LATERAL (SELECT CASE WHEN g <= $3 THEN 'processing'
                          WHEN g % 100 = 0 THEN 'pending'
                          WHEN g % 100 = 1 THEN 'failed'
                          ELSE 'completed' END AS state) AS s
"""


async def load_history(conn: asyncpg.Connection, rows: int = 1_000_000) -> None:
    """Insert ``rows`` jobs as described above, then VACUUM ANALYZE the table.

    ``conn`` must not be in a transaction (VACUUM cannot run in one)."""
    await conn.execute("ALTER TABLE exportd.jobs DISABLE TRIGGER USER")
    try:
        await conn.execute(_LOAD, rows, KINDS, PROCESSING)
    finally:
        await conn.execute("ALTER TABLE exportd.jobs ENABLE TRIGGER USER")
    await conn.execute("VACUUM ANALYZE exportd.jobs")
