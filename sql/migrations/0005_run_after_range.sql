-- exportd schema, version 5: run_after within what every reader decodes.
--
-- run_after is the one timestamp the application writes. Postgres stores
-- 4713 BC to 294276 AD; the daemon's API and command line decode a row into
-- Python's datetime, years 1 to 9999 (infinity and -infinity as its ends),
-- and a value past them made every read of the row, and every page of its
-- owner's jobs, fail. The instants are those of exportd/limits.py
-- (RUN_AFTER_MIN_ISO, RUN_AFTER_END_ISO); a test holds this file to them.

-- Rows already past the range keep their meaning in values that decode:
-- after the end is never (infinity), before the start is as soon as
-- possible (-infinity). No state changes, so nothing is notified.
UPDATE exportd.jobs
SET run_after = CASE WHEN run_after > '0001-01-01 00:00:00+00' THEN 'infinity'::timestamptz
                     ELSE '-infinity'::timestamptz END
WHERE run_after NOT IN ('infinity', '-infinity')
  AND NOT (run_after >= '0001-01-01 00:00:00+00' AND run_after < '10000-01-01 00:00:00+00');

-- Named, so that the application's failed INSERT (or exportd.enqueue) says
-- which bound it broke.
ALTER TABLE exportd.jobs
    ADD CONSTRAINT jobs_run_after_range
        CHECK (run_after IN ('infinity', '-infinity')
               OR (run_after >= '0001-01-01 00:00:00+00' AND run_after < '10000-01-01 00:00:00+00'));
