-- exportd schema, version 3: a pending job always has an attempt left.
--
-- attempts belongs to the daemon, but a plain INSERT can write it (a row
-- copied from another job, a replayed statement). A pending row whose
-- attempts already reach max_attempts used to be claimed and run anyway,
-- past its limit; now the table refuses it, by name, in the application's
-- own transaction.
--
-- The daemon never writes such a row: a claim moves pending to processing,
-- and a retry or a release only returns a job to pending while it has an
-- attempt left (otherwise it fails; see the retry and release queries).

-- Rows written before this check keep the one run they would have had: the
-- claim ran them once, and a failure then ended them.
UPDATE exportd.jobs
SET attempts = max_attempts - 1
WHERE state = 'pending' AND attempts >= max_attempts;

ALTER TABLE exportd.jobs
    ADD CONSTRAINT jobs_pending_has_attempts_left
    CHECK (state <> 'pending' OR attempts < max_attempts);
