-- exportd schema, version 7: recurring exports (schedules).
--
-- A schedule makes a job of its owner, kind, params and format at each
-- occurrence of its cron expression, evaluated in its own time zone. The
-- daemon's scheduler (exportd/maintenance/scheduler.py) locks a due row,
-- inserts the job and advances next_run_at in one transaction, so that each
-- occurrence makes exactly one job however many daemons run.
--
-- The numbers of the bounds are those of exportd/limits.py (OWNER_MAX_BYTES,
-- KIND_MAX_BYTES, PARAMS_MAX_BYTES, JSON_MAX_DEPTH, SCHEDULE_CRON_MAX_BYTES,
-- SCHEDULE_TIMEZONE_MAX_BYTES, SCHEDULE_OPTIONS_MAX_BYTES); a test holds this
-- file to them. Bytes, not characters, as for the jobs (0004_bounds).

CREATE TABLE exportd.schedules (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner       text        NOT NULL,
    kind        text        NOT NULL,
    params      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    format      text        NOT NULL DEFAULT 'csv',
    -- The job options of each job the schedule makes. No option is known
    -- yet (jobs have no options column): the API and the CLI refuse any key.
    options     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    cron        text        NOT NULL,
    timezone    text        NOT NULL DEFAULT 'UTC',
    enabled     boolean     NOT NULL DEFAULT true,
    -- The next occurrence, as an instant. An application that inserts a
    -- row itself leaves it out (NULL): the scheduler then sets it to the
    -- first occurrence, and makes no job for the moment the row appeared.
    next_run_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),

    -- Daemon-owned.
    updated_at  timestamptz NOT NULL DEFAULT now(),
    last_run_at timestamptz,
    last_job_id uuid,
    last_error  text,

    CONSTRAINT schedules_owner_bytes CHECK (owner <> '' AND octet_length(owner) <= 256),
    CONSTRAINT schedules_kind_bytes CHECK (kind <> '' AND octet_length(kind) <= 128),
    CONSTRAINT schedules_params_is_object CHECK (jsonb_typeof(params) = 'object'),
    CONSTRAINT schedules_params_bytes CHECK (octet_length(params::text) <= 65536),
    CONSTRAINT schedules_params_depth
        CHECK (NOT jsonb_path_exists(params, 'strict $.**{32 to last}')),
    CONSTRAINT schedules_options_is_object CHECK (jsonb_typeof(options) = 'object'),
    CONSTRAINT schedules_options_bytes CHECK (octet_length(options::text) <= 4096),
    CONSTRAINT schedules_options_depth
        CHECK (NOT jsonb_path_exists(options, 'strict $.**{32 to last}')),
    -- The same list as jobs_format_known: a schedule makes jobs.
    CONSTRAINT schedules_format_known
        CHECK (format IN ('csv', 'csv.gz', 'jsonl', 'jsonl.gz', 'json', 'zip')),
    -- Five fields or an @name; what the expression means is the daemon's to
    -- read (a row it cannot read fails alone, saying why, in last_error).
    CONSTRAINT schedules_cron_bytes CHECK (cron <> '' AND octet_length(cron) <= 256),
    -- An IANA zone name (Europe/Zurich, America/New_York, UTC): letters,
    -- digits and _+- in slash-separated parts, never a POSIX zone string
    -- ('UTC+3', '<+03>-3') that Postgres would take and Python would not.
    CONSTRAINT schedules_timezone_bytes
        CHECK (octet_length(timezone) <= 64
               AND timezone ~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$'),
    -- The error of the last run, bounded as a job's error is (ERROR_MAX_CHARS).
    CONSTRAINT schedules_last_error_length CHECK (char_length(last_error) <= 2000)
);

COMMENT ON TABLE exportd.schedules IS
    'Recurring exports. Callers write owner, kind, params, format, options, cron, '
    'timezone, enabled (and may write next_run_at); the daemon owns the rest.';

-- Serves the scheduler's "due schedules": only enabled rows, by next_run_at.
-- NULLS FIRST: a row not started yet is due at once.
CREATE INDEX schedules_due_idx ON exportd.schedules (next_run_at NULLS FIRST) WHERE enabled;

-- Serves "my schedules, newest first" (GET /v1/schedules): keyset pagination.
CREATE INDEX schedules_owner_created_idx
    ON exportd.schedules (owner, created_at DESC, id DESC);

CREATE TRIGGER schedules_touch
    BEFORE UPDATE ON exportd.schedules
    FOR EACH ROW EXECUTE FUNCTION exportd.touch();

-- The schedule a job was made by. No foreign key, on purpose: the id is the
-- job's history, kept after its schedule is deleted (deleting a schedule
-- touches, locks and waits for none of its jobs), and purging jobs never
-- looks at schedules. Null for a job not made by a schedule.
ALTER TABLE exportd.jobs ADD COLUMN schedule_id uuid;
