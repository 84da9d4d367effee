-- exportd schema, version 9: the history of a job's attempts, and a claim
-- counter that names each claim for good.
--
-- An operator may run a failed or cancelled job again (POST /v1/jobs/{id}/retry,
-- `exportd retry`), which resets `attempts` to 0: the job gets its full
-- max_attempts again. `attempts` could then no longer name a claim: the same
-- process could claim the job again as attempt 1 while a stale task of its
-- earlier attempt 1 still runs, and that task's guarded updates would match
-- the new claim (it could even complete it with its own object). `claims`
-- counts every claim and is never reset: the guards name it instead.

-- Daemon-owned, like attempts. Rows from before this column start at 0 and
-- the claim counts on from greatest(claims, attempts), so a row's claim
-- number is never below the attempts it has spent, and no row is rewritten
-- here: a column with a constant default is only recorded in the catalog,
-- and the queue is not held up while a long history is read or rewritten.
ALTER TABLE exportd.jobs ADD COLUMN claims integer NOT NULL DEFAULT 0;

-- One row per attempt that ended, written by the trigger below in the same
-- transaction as the state change that ended it, whoever made it (the
-- worker's completion, retry, failure or hand-back at shutdown, the reaper,
-- exportd.cancel() or a plain UPDATE by the application): no attempt is
-- lost to a crash, and none is recorded for a change that rolled back.
-- Kept apart from exportd.jobs so that the hot table stays small; deleted
-- with its job (the history purge deletes jobs, the rows go along).
CREATE TABLE exportd.job_attempts (
    job_id      uuid        NOT NULL REFERENCES exportd.jobs (id) ON DELETE CASCADE,
    -- Orders a job's attempts; not the claim number, which rows claimed by
    -- a daemon older than this schema do not advance.
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    attempt     integer     NOT NULL,  -- the job's attempts when it ended
    claim       integer     NOT NULL,  -- the job's claims when it ended
    worker_id   text,
    started_at  timestamptz,
    finished_at timestamptz NOT NULL,
    -- How the attempt ended (see exportd.attempt_outcome) and where the job went.
    outcome     text        NOT NULL,
    next_state  text        NOT NULL,
    error_kind  text,
    error       text,
    PRIMARY KEY (job_id, seq),
    -- Bounded whatever a row holds (an application may write any text into
    -- error while a job runs): error to ERROR_MAX_CHARS of exportd/limits.py,
    -- worker ids and error kinds far beyond what the daemon writes. The
    -- trigger cuts to these, so a check never refuses a state change.
    CONSTRAINT job_attempts_error_chars CHECK (char_length(error) <= 2000),
    CONSTRAINT job_attempts_worker_id_chars CHECK (char_length(worker_id) <= 256),
    CONSTRAINT job_attempts_error_kind_chars CHECK (char_length(error_kind) <= 64)
);

COMMENT ON TABLE exportd.job_attempts IS
    'Each ended attempt of a job: who ran it, when, how it ended. Written by '
    'the jobs_attempt_ended trigger; read it, never write it.';

-- How an attempt ended, from the row before and after the change that ended
-- it (pure, so that it is tested alone). Each of the daemon's statements
-- leaves a distinct mark:
-- - completed, cancelled: the state says it;
-- - handed_back: back to pending with the attempt given back (the release
--   at shutdown is the only change that lowers attempts);
-- - reaped: lease_expired with a lease that had run out when the change
--   began (the reaper takes only such rows; a worker handing a job back at
--   shutdown still holds its lease);
-- - retry_scheduled: back to pending, the attempt spent (a retryable error);
-- - failed: failed for good;
-- - otherwise the new state (an application's UPDATE to anything else).
CREATE FUNCTION exportd.attempt_outcome(
    old_attempts integer, old_lease timestamptz,
    new_state text, new_attempts integer, new_error_kind text
) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN new_state IN ('completed', 'cancelled') THEN new_state
        WHEN new_state = 'pending' AND new_attempts < old_attempts THEN 'handed_back'
        WHEN new_error_kind = 'lease_expired' AND old_lease < now() THEN 'reaped'
        WHEN new_state = 'pending' THEN 'retry_scheduled'
        ELSE new_state
    END;
$$;

CREATE FUNCTION exportd.record_attempt() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    outcome text := exportd.attempt_outcome(OLD.attempts, OLD.lease_expires_at, NEW.state,
                                            NEW.attempts, NEW.error_kind);
    -- A completed or handed-back attempt had no error: the row's error, if
    -- any, is an earlier attempt's (a completion clears it, a hand-back keeps it).
    erred boolean := outcome NOT IN ('completed', 'handed_back');
BEGIN
    INSERT INTO exportd.job_attempts
        (job_id, attempt, claim, worker_id, started_at, finished_at, outcome, next_state,
         error_kind, error)
    VALUES
        (NEW.id, OLD.attempts, OLD.claims, left(OLD.worker_id, 256), OLD.started_at,
         coalesce(NEW.finished_at, clock_timestamp()), outcome, NEW.state,
         CASE WHEN erred THEN left(NEW.error_kind, 64) END,
         CASE WHEN erred THEN left(NEW.error, 2000) END);
    RETURN NULL;
END;
$$;

-- Only a change out of processing ends an attempt. AFTER, so that it sees
-- the row as every BEFORE trigger left it; in the changing transaction, so
-- that it commits or rolls back with the change.
CREATE TRIGGER jobs_attempt_ended
    AFTER UPDATE OF state ON exportd.jobs
    FOR EACH ROW
    WHEN (OLD.state = 'processing' AND NEW.state <> 'processing')
    EXECUTE FUNCTION exportd.record_attempt();
