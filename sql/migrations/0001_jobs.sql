-- exportd schema, version 1: the job queue.
--
-- The main application inserts rows into exportd.jobs (or calls
-- exportd.enqueue); the daemon owns every other column. Names here are part
-- of the public contract: extend, never rename.

CREATE SCHEMA IF NOT EXISTS exportd;

CREATE TABLE exportd.jobs (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner            text        NOT NULL,
    kind             text        NOT NULL,
    params           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    format           text        NOT NULL DEFAULT 'csv',
    priority         smallint    NOT NULL DEFAULT 0,
    run_after        timestamptz NOT NULL DEFAULT now(),
    max_attempts     integer     NOT NULL DEFAULT 5,
    dedupe_key       text,

    state            text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    progress         smallint    NOT NULL DEFAULT 0,
    rows_written     bigint      NOT NULL DEFAULT 0,
    bytes_written    bigint      NOT NULL DEFAULT 0,
    worker_id        text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    expires_at       timestamptz,
    object_key       text,
    size_bytes       bigint,
    row_count        bigint,
    checksum_sha256  text,
    error            text,
    error_kind       text,
    -- Not in the contract's list, daemon-owned: the open multipart upload,
    -- kept so that an upload left by a crashed worker can be aborted later.
    upload_id        text,
    upload_key       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),

    -- Named constraints: their names are what a caller sees in the error.
    CONSTRAINT jobs_owner_not_empty CHECK (owner <> ''),
    CONSTRAINT jobs_kind_not_empty CHECK (kind <> ''),
    CONSTRAINT jobs_params_is_object CHECK (jsonb_typeof(params) = 'object'),
    CONSTRAINT jobs_format_known
        CHECK (format IN ('csv', 'csv.gz', 'jsonl', 'jsonl.gz', 'json', 'zip')),
    CONSTRAINT jobs_state_known
        CHECK (state IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired')),
    CONSTRAINT jobs_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 100),
    CONSTRAINT jobs_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT jobs_progress_range CHECK (progress BETWEEN 0 AND 100),
    -- A processing row always names its worker and its lease, so the reaper
    -- can always find it: "stuck in processing" cannot be represented.
    CONSTRAINT jobs_processing_has_lease
        CHECK (state <> 'processing' OR (worker_id IS NOT NULL AND lease_expires_at IS NOT NULL))
);

COMMENT ON TABLE exportd.jobs IS
    'Export jobs. Callers write owner, kind, params, format, priority, run_after, '
    'max_attempts, dedupe_key; every other column belongs to the daemon.';

-- Serves the claim: only pending rows, in claim order. Partial, so it stays
-- as small as the backlog however long the history grows.
CREATE INDEX jobs_claim_idx ON exportd.jobs (priority DESC, run_after, id)
    WHERE state = 'pending';

-- Serves the reaper.
CREATE INDEX jobs_lease_idx ON exportd.jobs (lease_expires_at)
    WHERE state = 'processing';

-- Serves "my exports, newest first".
CREATE INDEX jobs_owner_created_idx ON exportd.jobs (owner, created_at DESC, id DESC);

-- At most one live job per (owner, dedupe_key): a double-clicked export
-- button makes one export.
CREATE UNIQUE INDEX jobs_dedupe_idx ON exportd.jobs (owner, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing');

-- The queue table churns: vacuum it early so dead tuples do not slow claims.
ALTER TABLE exportd.jobs SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02,
    fillfactor = 80
);

-- Wake idle daemons when work arrives. The payload is constant on purpose:
-- Postgres folds identical notifications of one transaction into one, so a
-- bulk insert sends a single wake-up.
CREATE FUNCTION exportd.notify_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('exportd_jobs', 'pending');
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_notify_pending
    AFTER INSERT OR UPDATE OF state ON exportd.jobs
    FOR EACH ROW WHEN (NEW.state = 'pending')
    EXECUTE FUNCTION exportd.notify_pending();

-- Tell the main application (and the daemons, for fast cancellation) each
-- time a job reaches a terminal state.
CREATE FUNCTION exportd.notify_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'exportd_events',
        json_build_object('id', NEW.id, 'owner', NEW.owner, 'kind', NEW.kind,
                          'state', NEW.state)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_notify_event
    AFTER INSERT OR UPDATE OF state ON exportd.jobs
    FOR EACH ROW
    WHEN (NEW.state IN ('completed', 'failed', 'cancelled', 'expired'))
    EXECUTE FUNCTION exportd.notify_event();

-- updated_at follows every change, whoever makes it.
CREATE FUNCTION exportd.touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER jobs_touch
    BEFORE UPDATE ON exportd.jobs
    FOR EACH ROW EXECUTE FUNCTION exportd.touch();

CREATE FUNCTION exportd.enqueue(
    owner        text,
    kind         text,
    params       jsonb DEFAULT '{}'::jsonb,
    format       text DEFAULT 'csv',
    priority     smallint DEFAULT 0,
    run_after    timestamptz DEFAULT now(),
    max_attempts integer DEFAULT 5,
    dedupe_key   text DEFAULT NULL
) RETURNS uuid
LANGUAGE sql AS $$
    INSERT INTO exportd.jobs
        (owner, kind, params, format, priority, run_after, max_attempts, dedupe_key)
    VALUES
        (enqueue.owner, enqueue.kind, coalesce(enqueue.params, '{}'::jsonb),
         coalesce(enqueue.format, 'csv'), coalesce(enqueue.priority, 0),
         coalesce(enqueue.run_after, now()), coalesce(enqueue.max_attempts, 5),
         enqueue.dedupe_key)
    RETURNING id;
$$;

-- Cancelling a processing job only changes its state: the worker's next
-- guarded update (its heartbeat, at the latest) touches no row, so it stops
-- and aborts its upload. The exportd_events notification makes that faster.
CREATE FUNCTION exportd.cancel(id uuid) RETURNS boolean
LANGUAGE sql AS $$
    WITH cancelled AS (
        UPDATE exportd.jobs j
        SET state = 'cancelled',
            finished_at = now(),
            error_kind = 'cancelled',
            error = 'cancelled on request',
            lease_expires_at = NULL
        WHERE j.id = cancel.id AND j.state IN ('pending', 'processing')
        RETURNING 1
    )
    SELECT count(*) > 0 FROM cancelled;
$$;
