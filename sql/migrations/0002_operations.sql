-- exportd schema, version 2: indexes for maintenance and fair claims.
--
-- Each serves one periodic statement of the daemon; all are partial, so
-- they stay as small as the rows they serve however long the history grows.

-- Serves retention: completed exports whose download period is over.
CREATE INDEX jobs_expiry_idx ON exportd.jobs (expires_at)
    WHERE state = 'completed';

-- Serves the history purge: terminal rows by age.
CREATE INDEX jobs_finished_idx ON exportd.jobs (finished_at)
    WHERE state IN ('failed', 'cancelled', 'expired');

-- Serves the per-owner limit of the fair claim: jobs running, by owner.
CREATE INDEX jobs_running_owner_idx ON exportd.jobs (owner)
    WHERE state = 'processing';
