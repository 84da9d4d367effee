-- exportd schema, version 13: the daemons alive, and the indexes of the
-- operator's overview.
--
-- Each daemon keeps a row here while it runs (exportd/daemon/presence.py):
-- written when it starts, refreshed every heartbeat_seconds, deleted when it
-- stops cleanly. A daemon that dies leaves its row behind; a row whose last
-- heartbeat is older than three of its own intervals is not alive (the
-- readers apply that rule, sql/queries.sql: workers_alive), and maintenance
-- deletes it. The jobs a daemon runs are not copied here: exportd.jobs names
-- them by worker_id already.
--
-- The numbers are those of exportd/limits.py (WORKER_ID_MAX_BYTES,
-- WORKER_HOST_MAX_BYTES, WORKER_VERSION_MAX_BYTES); a test holds this file
-- to them. Bytes, not characters, as for the job table's bounds.

CREATE TABLE exportd.workers (
    -- The worker id that exportd.jobs.worker_id names: host, pid and a
    -- random suffix (exportd/worker/loop.py, new_worker_id).
    id                text        PRIMARY KEY,
    version           text        NOT NULL,
    host              text        NOT NULL,
    pid               integer     NOT NULL,
    started_at        timestamptz NOT NULL,
    concurrency       integer     NOT NULL,
    -- The daemon's own interval: a row is alive while its last heartbeat is
    -- within three of them, whatever interval other daemons use.
    heartbeat_seconds float8      NOT NULL,
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),

    -- Named constraints: their names are what a caller sees in the error.
    CONSTRAINT workers_id_bytes CHECK (id <> '' AND octet_length(id) <= 300),
    CONSTRAINT workers_version_bytes CHECK (version <> '' AND octet_length(version) <= 64),
    CONSTRAINT workers_host_bytes CHECK (host <> '' AND octet_length(host) <= 255),
    CONSTRAINT workers_pid_positive CHECK (pid > 0),
    CONSTRAINT workers_concurrency_positive CHECK (concurrency >= 1),
    CONSTRAINT workers_heartbeat_range CHECK (heartbeat_seconds > 0 AND heartbeat_seconds <= 3600)
);

COMMENT ON TABLE exportd.workers IS
    'The daemons running now, one row each, kept by the daemons themselves: '
    'read it, never write it. A row is alive while last_heartbeat_at is within '
    'three heartbeat_seconds.';

-- The overview's figures cost what the live jobs and the last day's finished
-- jobs cost, never what the whole history costs. Each index below serves one
-- of its statements as an index-only scan (the table's aggressive autovacuum,
-- 0001, keeps the visibility map current). They are built in the migration's
-- transaction: writes to exportd.jobs wait while they build, about two
-- seconds per million rows.

-- Serves the counts of pending and processing jobs by kind, and the oldest
-- ready pending job of each kind (sql/queries.sql: overview_live).
CREATE INDEX jobs_live_kind_idx ON exportd.jobs (state, kind, run_after)
    WHERE state IN ('pending', 'processing');

-- Serves the counts of jobs finished within a window by state and kind, the
-- completions and failures per minute, and the durations by kind
-- (overview_finished, overview_minutes, overview_durations).
CREATE INDEX jobs_finished_kind_idx ON exportd.jobs (finished_at, state, kind)
    INCLUDE (started_at)
    WHERE state IN ('completed', 'failed', 'cancelled', 'expired');

-- Serves the operator's list of every owner's jobs, newest first (owner
-- omitted from api_list_jobs); the owner's own list keeps
-- jobs_owner_created_idx.
CREATE INDEX jobs_created_idx ON exportd.jobs (created_at DESC, id DESC);
