-- exportd schema, version 10: job options.
--
-- How a job's file is written (time zone, columns, CSV dialect, JSON
-- numbers, split parts), beside what it holds (params): an object of the
-- keys docs/queue.md lists, merged by the daemon over its kind's defaults
-- ([kinds.NAME.options]) and validated with the params, before any query
-- runs. A job whose options the daemon cannot take fails invalid_params.
--
-- The numbers are those of exportd/limits.py (OPTIONS_MAX_BYTES,
-- JSON_MAX_DEPTH); a test holds this file to them. Bytes, not characters, as
-- for params (0004_bounds). Every row existing now gets '{}', a constant
-- default: recorded in the catalog, no row rewritten.

ALTER TABLE exportd.jobs
    ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD CONSTRAINT jobs_options_is_object CHECK (jsonb_typeof(options) = 'object'),
    -- Terminal rows are exempt, as for params: a finished job stays
    -- expirable and purgeable whatever it holds.
    ADD CONSTRAINT jobs_options_bytes
        CHECK (octet_length(options::text) <= 16384
               OR state IN ('completed', 'failed', 'cancelled', 'expired')),
    ADD CONSTRAINT jobs_options_depth
        CHECK (NOT jsonb_path_exists(options, 'strict $.**{32 to last}')
               OR state IN ('completed', 'failed', 'cancelled', 'expired'));

-- A schedule's options become its jobs' options: the same bound (it was
-- 4096 bytes while no option was known).
ALTER TABLE exportd.schedules
    DROP CONSTRAINT schedules_options_bytes,
    ADD CONSTRAINT schedules_options_bytes CHECK (octet_length(options::text) <= 16384);

COMMENT ON COLUMN exportd.jobs.options IS
    'Job options (timezone, columns, csv, json, split_rows): how the file is written. '
    'A JSON object of at most 16384 bytes; see docs/queue.md.';
COMMENT ON COLUMN exportd.schedules.options IS
    'The options of each job the schedule makes (as exportd.jobs.options).';
