-- exportd schema, version 10: job options, and the xlsx format.
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

-- xlsx joins the formats a job (and a schedule, which makes jobs) may ask
-- for. The new lists hold the old ones, so every row still passes. All
-- migrations run in one transaction, which holds the tables' ACCESS EXCLUSIVE
-- lock from the first ALTER to the commit: NOT VALID then VALIDATE spares no
-- blocking here, it only keeps the step's shape for a migration run alone.
ALTER TABLE exportd.jobs
    DROP CONSTRAINT jobs_format_known,
    ADD CONSTRAINT jobs_format_known
        CHECK (format IN ('csv', 'csv.gz', 'jsonl', 'jsonl.gz', 'json', 'zip', 'xlsx')) NOT VALID;
ALTER TABLE exportd.jobs VALIDATE CONSTRAINT jobs_format_known;
ALTER TABLE exportd.schedules
    DROP CONSTRAINT schedules_format_known,
    ADD CONSTRAINT schedules_format_known
        CHECK (format IN ('csv', 'csv.gz', 'jsonl', 'jsonl.gz', 'json', 'zip', 'xlsx')) NOT VALID;
ALTER TABLE exportd.schedules VALIDATE CONSTRAINT schedules_format_known;

COMMENT ON COLUMN exportd.jobs.options IS
    'Job options (timezone, columns, csv, json, split_rows): how the file is written. '
    'A JSON object of at most 16384 bytes; see docs/queue.md.';
COMMENT ON COLUMN exportd.schedules.options IS
    'The options of each job the schedule makes (as exportd.jobs.options).';
