-- exportd schema, version 6: signed webhooks, through an outbox.
--
-- Each time a job reaches completed, failed, cancelled or expired, a row is
-- inserted here by a trigger, in the transaction that changes the job's
-- state: whichever path changes it (the daemon, exportd.cancel() called by
-- the application, retention, the reaper, an operator's UPDATE), the event
-- is recorded if and only if the change commits. The daemons deliver the
-- rows afterwards (exportd/webhooks/), at least once, in order per job.
--
-- The row stays small on purpose: the body is built from the job's row when
-- it is sent, and the attempts are kept apart, bounded by the retry period.

CREATE TABLE exportd.webhook_deliveries (
    -- The webhook-id header ("msg_" and this id without dashes): stable across
    -- retries, unique across databases, so receivers deduplicate by it.
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Order of the events of one job: a job's state changes are serialised
    -- by its row lock, so a later change always draws a larger number.
    seq              bigint      GENERATED ALWAYS AS IDENTITY,
    job_id           uuid        NOT NULL REFERENCES exportd.jobs (id) ON DELETE CASCADE,
    event_type       text        NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- pending: to send (or being sent, while locked_until is in the future);
    -- delivered: a 2xx was received; failed: refused (4xx) or retried for the
    -- whole retry period; no_target: no webhook URL applies to the job's kind.
    state            text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    first_attempt_at timestamptz,
    -- The delivery lease: the daemon sending it now, and until when. A daemon
    -- that dies mid-request leaves the lease to run out; another then sends.
    locked_by        text,
    locked_until     timestamptz,
    last_status      integer,
    last_error       text,
    finished_at      timestamptz,

    CONSTRAINT webhook_deliveries_state_known
        CHECK (state IN ('pending', 'delivered', 'failed', 'no_target')),
    CONSTRAINT webhook_deliveries_type_known
        CHECK (event_type IN ('export.completed', 'export.failed', 'export.cancelled',
                              'export.expired')),
    CONSTRAINT webhook_deliveries_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT webhook_deliveries_error_bounded CHECK (octet_length(last_error) <= 8000)
);

COMMENT ON TABLE exportd.webhook_deliveries IS
    'Webhook outbox: one row per job event, written by a trigger on exportd.jobs '
    'and delivered by the daemons. Daemon-owned.';

-- Serves the claim: pending deliveries in the order they are due.
CREATE INDEX webhook_deliveries_due_idx ON exportd.webhook_deliveries (next_attempt_at, seq)
    WHERE state = 'pending';

-- Serves "is an earlier delivery of this job still pending" (the order per
-- job), GET /v1/jobs/{id} and the cascade when a job is purged.
CREATE INDEX webhook_deliveries_job_idx ON exportd.webhook_deliveries (job_id, seq);

-- Serves the purge of finished deliveries.
CREATE INDEX webhook_deliveries_finished_idx ON exportd.webhook_deliveries (finished_at)
    WHERE state <> 'pending';

-- One row per attempt: its HTTP status (NULL when no answer came), its
-- error and how long it took. Bounded by the retry period and its backoff.
CREATE TABLE exportd.webhook_attempts (
    delivery_id uuid        NOT NULL
        REFERENCES exportd.webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    status      integer,
    error       text,
    latency_ms  integer     NOT NULL,
    PRIMARY KEY (delivery_id, attempt),
    CONSTRAINT webhook_attempts_error_bounded CHECK (octet_length(error) <= 8000)
);

CREATE FUNCTION exportd.record_webhook() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO exportd.webhook_deliveries (job_id, event_type)
    VALUES (NEW.id, 'export.' || NEW.state);
    RETURN NULL;
END;
$$;

-- A row inserted already terminal (a quota refusal, a copied row) is an event too.
CREATE TRIGGER jobs_record_webhook_insert
    AFTER INSERT ON exportd.jobs
    FOR EACH ROW
    WHEN (NEW.state IN ('completed', 'failed', 'cancelled', 'expired'))
    EXECUTE FUNCTION exportd.record_webhook();

-- Only a real change of state: an UPDATE that sets state to what it was
-- (a retried statement, an operator's no-op) sends nothing.
CREATE TRIGGER jobs_record_webhook_update
    AFTER UPDATE OF state ON exportd.jobs
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('completed', 'failed', 'cancelled', 'expired'))
    EXECUTE FUNCTION exportd.record_webhook();
