-- Named queries of exportd. Each starts with "-- name: NAME"; the comment
-- lines that follow the name say why the query is shaped the way it is.
-- Every state change after the claim is guarded by
-- "state = 'processing' AND worker_id = <me> AND claims = <my claim>
-- AND owner = <the owner claimed>": the worker id names the process, the
-- claim number names the claim, so a stale task of a process that claimed
-- the same job again cannot act on the new claim (claims counts every claim
-- and is never reset; attempts, which a retry on request resets to 0, could
-- name two claims of one process); the owner, because the
-- application may change it while the job runs, and an export made for one
-- owner must never be recorded as another's. A worker whose guarded update
-- touches no row has lost the job and must stop.

-- name: claim
-- Claim up to $2 ready jobs for worker $1 with a lease of $3 seconds, at
-- most $4 jobs of one owner processing at once (NULL: no limit). The CTE
-- keeps the LIMIT honest (without it the planner may lock more rows than
-- asked), SKIP LOCKED lets several daemons claim at once without waiting on
-- each other, and the order matches jobs_claim_idx.
-- With a limit, owners already at it are filtered out while the claim index
-- is walked in claim order, so priorities still hold among the others; then
-- jobs of one owner beyond its remaining room in this claim are left for
-- later (their locks go when the statement's transaction ends). Such a
-- claim may take fewer jobs than asked; the next poll fills the slots.
-- Without a limit, "running" only reads the processing rows of its small
-- partial index, and every ready row passes.
-- $5 (NULL: any) restricts the claim to those ids and $6 passes over ids:
-- a claim that failed as a whole is retried row by row with them, and rows
-- that cannot be claimed at all are passed over (see exportd/queue/claim.py).
-- params and options come back as text: each job decodes its own, so that one
-- row that cannot be decoded fails alone instead of failing the whole claim;
-- trace_context likewise (one that cannot be decoded is no trace, never a failure).
-- Paused kinds (exportd.paused_kinds) are left out: the table is read once
-- per claim, into an array each row of the index is checked against as
-- jobs_claim_idx is walked, and a pause of every kind ('*') stops the claim
-- before it reads a row. The check is on "j.kind || ''", an expression the
-- planner has no statistics for, so it estimates that most rows pass (as they
-- do: pauses are rare) and keeps walking the index in order. On the column
-- itself, or as a join, a table of one or two kinds, a fresh paused_kinds or
-- a few paused kinds make it estimate that almost none pass, and it sorts the
-- whole backlog instead: 40 ms a claim at 20,000 pending jobs instead of 1.
-- LIMIT applies after the filter: a paused kind's jobs at the head of the
-- queue are walked past, not counted (each claim reads them again: about
-- 20 ms per 20,000 on a small machine).
WITH running AS (
    SELECT owner, count(*) AS n
    FROM exportd.jobs
    WHERE state = 'processing' AND $4::int IS NOT NULL
    GROUP BY owner
), ready AS (
    SELECT j.id, j.owner, j.priority, j.run_after
    FROM exportd.jobs AS j
    WHERE j.state = 'pending' AND j.run_after <= now()
      AND NOT EXISTS (SELECT 1 FROM running AS r WHERE r.owner = j.owner AND r.n >= $4)
      AND ($5::uuid[] IS NULL OR j.id = ANY ($5::uuid[]))
      AND NOT (j.id = ANY ($6::uuid[]))
      AND (j.kind || '') <> ALL (ARRAY(SELECT p.kind FROM exportd.paused_kinds AS p))
      AND NOT EXISTS (SELECT 1 FROM exportd.paused_kinds AS p WHERE p.kind = '*')
    ORDER BY j.priority DESC, j.run_after, j.id
    LIMIT $2
    FOR UPDATE OF j SKIP LOCKED
), allowed AS (
    SELECT ranked.id
    FROM (
        SELECT ready.id,
               row_number() OVER (PARTITION BY ready.owner
                                  ORDER BY ready.priority DESC, ready.run_after, ready.id)
                   AS rank,
               coalesce(r.n, 0) AS running
        FROM ready
        LEFT JOIN running AS r ON r.owner = ready.owner
    ) AS ranked
    WHERE $4::int IS NULL OR ranked.running + ranked.rank <= $4
)
UPDATE exportd.jobs AS j
SET state = 'processing',
    attempts = j.attempts + 1,
    -- Never below attempts: rows from before the claims column count on.
    claims = greatest(j.claims, j.attempts) + 1,
    worker_id = $1,
    lease_expires_at = now() + make_interval(secs => $3),
    started_at = now(),
    progress = 0,
    rows_written = 0,
    bytes_written = 0,
    upload_id = NULL,
    upload_key = NULL
FROM allowed
WHERE j.id = allowed.id
RETURNING j.id, j.owner, j.kind, j.params::text AS params_text, j.format, j.priority,
          j.attempts, j.max_attempts, j.created_at, j.claims,
          j.options::text AS options_text, j.trace_context::text AS trace_context_text,
          j.run_after;

-- name: claim_candidates
-- The ids a claim would consider now ($1 at most, $2 passed over), in claim
-- order; used only to retry, one row at a time, a claim that failed as a
-- whole. Not locked: each is claimed (or found gone) by the claim itself.
-- Paused kinds are left out as by the claim.
SELECT j.id
FROM exportd.jobs AS j
WHERE j.state = 'pending' AND j.run_after <= now() AND NOT (j.id = ANY ($2::uuid[]))
  AND (j.kind || '') <> ALL (ARRAY(SELECT p.kind FROM exportd.paused_kinds AS p))
  AND NOT EXISTS (SELECT 1 FROM exportd.paused_kinds AS p WHERE p.kind = '*')
ORDER BY j.priority DESC, j.run_after, j.id
LIMIT $1;

-- name: claim_refuse
-- A pending row that cannot be claimed (a trigger or a constraint refuses
-- the claim's update): it fails, saying why ($2), instead of blocking the
-- head of the queue. Should even this update be refused, the daemon passes
-- over the row from then on.
UPDATE exportd.jobs
SET state = 'failed',
    finished_at = now(),
    error = $2,
    error_kind = 'internal'
WHERE id = $1 AND state = 'pending'
RETURNING id;

-- name: heartbeat
-- Renew the leases of worker $1's jobs by $2 seconds and record their
-- progress, in one statement for all of them: $3 ids, $4 claims, $5 rows,
-- $6 bytes, $7 progress, $8 owners. It returns the jobs renewed. SKIP LOCKED: a row
-- locked right now (a cancel in progress, this worker completing the job)
-- is passed over rather than waited for, so one slow transaction never holds
-- up the renewal of every other lease. The worker asks after any job not
-- returned before it concludes the job is gone.
WITH beats AS (
    SELECT *
    FROM unnest($3::uuid[], $4::int[], $5::bigint[], $6::bigint[], $7::smallint[],
                $8::text[])
         AS u(id, claim, rows_written, bytes_written, progress, owner)
), mine AS (
    SELECT j.id
    FROM exportd.jobs AS j
    JOIN beats AS b ON b.id = j.id
    WHERE j.state = 'processing' AND j.worker_id = $1 AND j.claims = b.claim
      AND j.owner = b.owner
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE exportd.jobs AS j
SET lease_expires_at = now() + make_interval(secs => $2),
    rows_written = b.rows_written,
    bytes_written = b.bytes_written,
    progress = b.progress
FROM mine, beats AS b
WHERE j.id = mine.id AND b.id = mine.id
RETURNING j.id;

-- name: renew_locked
-- Inside the completing transaction, for the jobs whose object could not be
-- committed ($1 ids, $2 workers, $3 claims, $4 owners, $5 lease seconds): their rows
-- are still locked by this worker, so renewing before letting go means the
-- reaper cannot take a job between the failure and its outcome being
-- recorded. clock_timestamp(), not now(): now() is when the transaction
-- began, before the commits that may have taken longer than a lease.
UPDATE exportd.jobs AS j
SET lease_expires_at = clock_timestamp() + make_interval(secs => r.lease)
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::float8[])
     AS r(id, worker_id, claim, owner, lease)
WHERE j.id = r.id AND j.state = 'processing' AND j.worker_id = r.worker_id
  AND j.claims = r.claim AND j.owner = r.owner;

-- name: record_upload
-- Remember the open multipart upload, so that it can be aborted by whoever
-- finds the job abandoned.
UPDATE exportd.jobs
SET upload_id = $4, upload_key = $5
WHERE id = $1 AND state = 'processing' AND worker_id = $2 AND claims = $3 AND owner = $6
RETURNING id;

-- name: lock_owned
-- Taken in the completing transaction before the objects are committed to
-- S3, for every job completing in it ($1 ids, $2 workers, $3 claims,
-- $4 owners):
-- while these row locks are held, neither a cancel nor the reaper can take
-- a job, so an object is only committed for a job that will complete. Rows
-- are locked in id order, so two such transactions cannot deadlock. The
-- rows returned are the jobs still owned; the others were lost.
SELECT j.id, j.claims
FROM exportd.jobs AS j
JOIN unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS o(id, worker_id, claim, owner)
  ON j.id = o.id AND j.worker_id = o.worker_id AND j.claims = o.claim
     AND j.owner = o.owner
WHERE j.state = 'processing'
ORDER BY j.id
FOR UPDATE OF j;

-- name: complete
-- In the transaction that committed the objects, one row per job: $1 ids,
-- $2 workers, $3 claims, $4 owners, $5 retention seconds, $6 object keys,
-- $7 sizes, $8 row counts, $9 checksums, $10 download file names. clock_timestamp() is when the export really
-- finished, now() when the transaction began.
UPDATE exportd.jobs AS j
SET state = 'completed',
    progress = 100,
    finished_at = clock_timestamp(),
    expires_at = clock_timestamp() + make_interval(secs => c.retention),
    object_key = c.object_key,
    size_bytes = c.size_bytes,
    bytes_written = c.size_bytes,
    row_count = c.row_count,
    rows_written = c.row_count,
    checksum_sha256 = c.checksum,
    filename = c.filename,
    lease_expires_at = NULL,
    upload_id = NULL,
    upload_key = NULL,
    error = NULL,
    error_kind = NULL
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::float8[], $6::text[],
            $7::bigint[], $8::bigint[], $9::text[], $10::text[])
     AS c(id, worker_id, claim, owner, retention, object_key, size_bytes, row_count, checksum,
          filename)
WHERE j.id = c.id AND j.state = 'processing' AND j.worker_id = c.worker_id
  AND j.claims = c.claim AND j.owner = c.owner
RETURNING j.id;

-- name: retry
-- Back to pending after a retryable failure, not before $4 seconds. The
-- worker decided to retry with max_attempts as it was at the claim; should
-- the application have lowered it since, to the attempts made, the job fails
-- instead (a pending job always has an attempt left:
-- jobs_pending_has_attempts_left). RETURNING says which it was.
UPDATE exportd.jobs
SET state = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'failed' END,
    run_after = CASE WHEN attempts < max_attempts
                     THEN now() + make_interval(secs => $4) ELSE run_after END,
    finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,
    error = CASE WHEN attempts < max_attempts THEN $5
                 ELSE $5 || format('; gave up after %s of %s attempts', attempts, max_attempts)
            END,
    error_kind = $6,
    worker_id = CASE WHEN attempts < max_attempts THEN NULL ELSE worker_id END,
    lease_expires_at = NULL,
    upload_id = NULL,
    upload_key = NULL,
    progress = CASE WHEN attempts < max_attempts THEN 0 ELSE progress END
WHERE id = $1 AND state = 'processing' AND worker_id = $2 AND claims = $3 AND owner = $7
RETURNING run_after, state;

-- name: fail
UPDATE exportd.jobs
SET state = 'failed',
    finished_at = now(),
    error = $4,
    error_kind = $5,
    lease_expires_at = NULL,
    upload_id = NULL,
    upload_key = NULL
WHERE id = $1 AND state = 'processing' AND worker_id = $2 AND claims = $3 AND owner = $6
RETURNING finished_at;

-- name: release
-- Hand a job back at shutdown. The attempt it was claimed with is given
-- back: a deploy must not use up a job's attempts. Only when the
-- application lowered max_attempts below the attempts made while the job
-- ran has it none left even so: it fails, saying why, since a pending job
-- always has an attempt left (jobs_pending_has_attempts_left). RETURNING
-- says which it was.
UPDATE exportd.jobs
SET state = CASE WHEN attempts - 1 < max_attempts THEN 'pending' ELSE 'failed' END,
    attempts = CASE WHEN attempts - 1 < max_attempts THEN greatest(attempts - 1, 0)
                    ELSE attempts END,
    run_after = CASE WHEN attempts - 1 < max_attempts THEN now() ELSE run_after END,
    finished_at = CASE WHEN attempts - 1 < max_attempts THEN NULL ELSE now() END,
    error = CASE WHEN attempts - 1 < max_attempts THEN error
                 ELSE format('the daemon shut down during attempt %s, and max_attempts (%s) '
                             'leaves none to run it again', attempts, max_attempts)
            END,
    error_kind = CASE WHEN attempts - 1 < max_attempts THEN error_kind
                      ELSE 'lease_expired' END,
    worker_id = CASE WHEN attempts - 1 < max_attempts THEN NULL ELSE worker_id END,
    lease_expires_at = NULL,
    upload_id = NULL,
    upload_key = NULL,
    progress = CASE WHEN attempts - 1 < max_attempts THEN 0 ELSE progress END
WHERE id = $1 AND state = 'processing' AND worker_id = $2 AND claims = $3 AND owner = $4
RETURNING state;

-- name: claim_fair_lock
-- Taken before a claim with a per-owner limit, in the same transaction:
-- claims from several
-- daemons take turns, so two of them cannot both see an owner below the
-- limit and together start more of its jobs than allowed. The claim that
-- follows runs in a new snapshot (READ COMMITTED), which sees the jobs the
-- previous holder claimed.
SELECT pg_advisory_xact_lock(hashtext('exportd.claim_fair'));

-- name: job_state
SELECT state, worker_id, claims, owner FROM exportd.jobs WHERE id = $1;

-- name: reap_lock
-- One reaper at a time across all daemons; the others skip this round.
SELECT pg_try_advisory_xact_lock(hashtext('exportd.reaper'));

-- name: reap_select
-- Jobs whose worker stopped renewing the lease. SKIP LOCKED passes over a
-- job that its worker is completing right now; $2 are rows that could not
-- be updated in an earlier round, passed over so that they cannot fill
-- every batch.
SELECT id, owner, kind, attempts, max_attempts, worker_id, upload_id, upload_key
FROM exportd.jobs
WHERE state = 'processing' AND lease_expires_at < now() AND NOT (id = ANY ($2::uuid[]))
ORDER BY lease_expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: reap_update
-- Apply the reaper's decisions: $1 ids, $2 next states ('pending' or
-- 'failed'), $3 retry delays in seconds, $4 messages. The rows are locked
-- by reap_select in the same transaction, so they are as it saw them.
UPDATE exportd.jobs AS j
SET state = u.state,
    run_after = CASE WHEN u.state = 'pending'
                     THEN now() + make_interval(secs => u.delay)
                     ELSE j.run_after END,
    finished_at = CASE WHEN u.state = 'failed' THEN now() END,
    error = u.message,
    error_kind = 'lease_expired',
    worker_id = CASE WHEN u.state = 'failed' THEN j.worker_id END,
    lease_expires_at = NULL,
    upload_id = NULL,
    upload_key = NULL,
    progress = 0
FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::text[])
     AS u(id, state, delay, message)
WHERE j.id = u.id AND j.state = 'processing' AND j.lease_expires_at < now()
RETURNING j.id, j.state;

-- name: cancel
SELECT exportd.cancel($1);

-- name: get_job
SELECT * FROM exportd.jobs WHERE id = $1;

-- name: ping
SELECT 1;

-- name: migrate_lock
-- Held until the migrating transaction ends: a concurrent "exportd migrate"
-- waits here, then finds nothing left to do.
SELECT pg_advisory_xact_lock(hashtext('exportd.migrate'));

-- name: migrate_bootstrap
-- The version table is made by the runner rather than by a migration, so
-- that "which migrations ran" can be asked before any has.
CREATE SCHEMA IF NOT EXISTS exportd;
CREATE TABLE IF NOT EXISTS exportd.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_table_exists
SELECT to_regclass('exportd.schema_migrations') IS NOT NULL;

-- name: migrations_applied
SELECT version FROM exportd.schema_migrations ORDER BY version;

-- name: migration_record
INSERT INTO exportd.schema_migrations (version, name) VALUES ($1, $2);

-- name: export_session
-- Settings of an export's read-only transaction, local to it: the kind's
-- statement timeout ($1, milliseconds as text), also as the limit on the
-- transaction's idle time (a handler waiting on a service, the last parts
-- of an upload: a database's shorter idle_in_transaction_session_timeout
-- would end every such export, and the retries with it; the export's own
-- deadline governs), and an explicit time zone
-- ($2), so timestamptz values come out the same whatever the server's or
-- the role's default, always with their UTC offset. Every other setting that
-- changes how Postgres writes a value is pinned too, because a database or a
-- role may set it (ALTER DATABASE ... SET, ALTER ROLE ... SET) and the file
-- must not depend on where it was made: dates, intervals, floats, bytea
-- (hex, which json_rows_bytea reads back), money (lc_monetary), xml and the
-- encoding. Settings that change how Postgres reads the definition's own
-- text are pinned to their defaults as well: timezone_abbreviations (what
-- '12:00 IST' means), array_nulls (whether '{a,NULL}' holds a null),
-- transform_null_equals (whether "x = NULL" is ever true), and those that
-- change what a function returns: quote_all_identifiers (quote_ident, reg*
-- types), lc_time and lc_numeric (to_char), gin_fuzzy_search_limit (which
-- rows a GIN index scan returns) and row_security (off would turn a policy
-- into an error). standard_conforming_strings is pinned because the placeholder
-- compiler (exportd.definitions.placeholders) reads a definition's strings the way it
-- prescribes, and Postgres must read them the same way. A stopped export
-- closes its connection (see SinkGuard); client_connection_check_interval
-- (from Postgres 14, hence looked up) makes the server notice within a
-- second and end a query that writes nothing meanwhile, instead of running
-- it on.
SELECT set_config('statement_timeout', $1, true),
       set_config('idle_in_transaction_session_timeout', $1, true),
       set_config('TimeZone', $2, true),
       set_config('DateStyle', 'ISO, YMD', true),
       set_config('IntervalStyle', 'iso_8601', true),
       set_config('extra_float_digits', '1', true),
       set_config('bytea_output', 'hex', true),
       set_config('standard_conforming_strings', 'on', true),
       set_config('lc_monetary', 'C', true),
       set_config('xmlbinary', 'base64', true),
       set_config('xmloption', 'content', true),
       set_config('client_encoding', 'UTF8', true),
       set_config('timezone_abbreviations', 'Default', true),
       set_config('array_nulls', 'on', true),
       set_config('transform_null_equals', 'off', true),
       set_config('quote_all_identifiers', 'off', true),
       set_config('lc_time', 'C', true),
       set_config('lc_numeric', 'C', true),
       set_config('gin_fuzzy_search_limit', '0', true),
       set_config('row_security', 'on', true),
       (SELECT set_config(name, '1000', true)
        FROM pg_settings WHERE name = 'client_connection_check_interval');

-- name: dev_database_exists
-- `exportd dev` keeps its tables in a database of their own ($1).
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1);

-- name: dev_create_database_statement
-- CREATE DATABASE takes no parameters: Postgres itself quotes the name.
SELECT format('CREATE DATABASE %I', $1::text);

-- name: set_bytea_columns
-- The positions (1-based, comma-separated) of the bytea columns of the
-- dataset about to be written as JSON, read by json_rows_bytea. A setting
-- local to the export's transaction rather than a parameter, because COPY
-- takes none.
SELECT set_config('exportd.bytea_columns', $1, true);

-- name: copy_csv
-- A dataset as CSV with a header, formatted by Postgres. The dataset's
-- statement (its SQL with each placeholder's literal in place) replaces the
-- marker comment below; `exportd check` parses this very text.
COPY (
/* dataset */
) TO STDOUT (FORMAT csv, HEADER true);

-- name: copy_csv_dialect
-- A dataset as CSV in a job's own dialect (its csv options): the header
-- (true or false), the delimiter and the text written for NULL, each put
-- in place of its marker, the last two as string constants built by the
-- typed-literal builder (exportd.definitions.literals), never from a
-- caller's text as such. Without options the daemon sends copy_csv.
COPY (
/* dataset */
) TO STDOUT (FORMAT csv, HEADER /* header */, DELIMITER /* delimiter */, NULL /* null */);

-- name: projection
-- A dataset's rows as a job's options shape them: the columns chosen, in
-- their order, each as one of the column_* expressions below with its
-- alias (the kind's label in CSV, the name in JSON). The columns and their
-- aliases are identifiers taken from the prepared statement and quoted;
-- the dataset's own text replaces the dataset marker unchanged.
SELECT /* columns */
FROM (
/* dataset */
) AS t;

-- name: column_plain
-- A column as the dataset writes it.
/* column */

-- name: column_formula_guard
-- A text column with the formula guard (OWASP CSV injection): a value that
-- starts with = + - @, a tab or a carriage return gets a leading
-- apostrophe, so that a spreadsheet shows it as text instead of running it.
-- The column is given as text (a char(n) column keeps its padding).
CASE WHEN left(/* column */, 1) IN ('=', '+', '-', '@', E'\t', E'\r')
     THEN '''' || /* column */
     ELSE /* column */
END

-- name: column_text
-- A column as the text its type's output function writes: a cast for most;
-- a char(n) through its output function, since its cast to text would drop
-- its padding (both keep NULL a NULL).
(/* column */)::text

-- name: column_text_padded
textin(bpcharout(/* column */))

-- name: column_decimal_comma
-- A numeric, real or double column with a comma as its decimal mark (for
-- a CSV with another delimiter, as spreadsheets in most of Europe read it).
-- Its text has at most one '.', never a thousands separator.
translate((/* column */)::text, '.', ',')

-- name: column_json_big_int
-- A bigint as a JSON number when a double holds it exactly (|n| <= 2^53 - 1),
-- else as a JSON string of its digits, for readers that parse every number
-- as a double (JavaScript's JSON.parse).
CASE WHEN (/* column */)::int8 BETWEEN -9007199254740991 AND 9007199254740991
     THEN to_json((/* column */)::int8)
     ELSE to_json((/* column */)::text)
END

-- name: column_json_big_numeric
-- A numeric as a JSON number when it has at most 15 significant digits
-- (leading and trailing zeros do not count; a double carries 15 exactly),
-- else as a JSON string of its exact digits. numeric's text never has an
-- exponent. NaN and Infinity stay what to_json makes them (strings).
CASE WHEN length(btrim(translate((/* column */)::text, '-.', ''), '0')) > 15
     THEN to_json((/* column */)::text)
     ELSE to_json((/* column */)::numeric)
END

-- name: column_types
-- For each type ($1, a dataset's column types), its category and the type
-- it stands on: a domain followed down to its base type (a domain shares its
-- base type's category). The projection decides from these which columns
-- an option applies to.
WITH RECURSIVE chain(start, oid) AS (
    SELECT c, c FROM unnest($1::oid[]) AS c
    UNION
    SELECT chain.start, t.typbasetype
    FROM chain JOIN pg_type AS t ON t.oid = chain.oid
    WHERE t.typtype = 'd'
)
SELECT chain.start AS oid, t.typcategory::text AS category, t.typname::text AS base_name,
       n.nspname::text AS base_schema
FROM chain
JOIN pg_type AS t ON t.oid = chain.oid
JOIN pg_namespace AS n ON n.oid = t.typnamespace
WHERE t.typtype <> 'd';

-- name: copy_json
-- One JSON text per line: JSON text escapes every control character, so
-- with \x01 as the CSV quote and \x02 as the delimiter, COPY writes each
-- text as it is. One of the json_rows queries replaces the marker.
COPY (
/* dataset */
) TO STDOUT (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');

-- name: json_rows
-- A dataset as JSON Lines, formatted by Postgres: one row_to_json text per
-- row. row_to_json keeps the column order, writes numeric exactly as a JSON
-- number, timestamptz in ISO 8601 with its offset, jsonb as JSON and arrays
-- as arrays. The dataset's statement replaces the marker comment below.
-- t.* is the row of the subquery t even when the dataset has a column
-- named t (a bare "t" would be that column).
SELECT row_to_json(t.*)::text
FROM (
/* dataset */
) AS t;

-- name: json_rows_json
-- As json_rows, for a dataset whose columns may hold json (json, json[], a
-- composite, a domain or a record that contains one): json keeps its input
-- text, line breaks included, which would split a record over several lines.
-- Valid JSON holds a raw CR, LF or tab only as whitespace between tokens
-- (inside a string they are escaped, and Postgres refuses json that breaks
-- this), so turning each into a space changes no value.
SELECT translate(row_to_json(t.*)::text, E'\r\n\t', '   ')
FROM (
/* dataset */
) AS t;

-- name: json_rows_bytea
-- As json_rows, with the bytea columns listed in exportd.bytea_columns
-- rewritten from Postgres's hex ("\\x00ff", bytea_output being pinned) to
-- base64, the way JSON carries binary. Slower (the row is taken apart and
-- put back), so only used when a dataset has bytea columns; it also turns
-- raw CR, LF and tab into spaces, as json_rows_json does, since its columns
-- may hold json as well. Inside the subquery only e's columns are in scope
-- unqualified, and they are always qualified.
SELECT translate((
    SELECT json_object_agg(
        e.key,
        CASE
            WHEN e.ord = ANY (string_to_array(current_setting('exportd.bytea_columns'), ',')::bigint[])
                 AND json_typeof(e.value) = 'string'
            THEN to_json(translate(encode(decode(substr(e.value #>> '{}', 3), 'hex'), 'base64'),
                                   E'\n', ''))
            ELSE e.value
        END
        ORDER BY e.ord)
    FROM json_each(row_to_json(t.*)) WITH ORDINALITY AS e(key, value, ord)
)::text, E'\r\n\t', '   ')
FROM (
/* dataset */
) AS t;

-- name: types_hold_json
-- Whether a value of any of these types ($1, the dataset's column types)
-- may hold json: the type itself, an array's element, a domain's base type
-- and a composite's attributes, followed to the end. A pseudo-type (record,
-- an anonymous row) cannot be looked into and counts as holding json.
WITH RECURSIVE reached(oid) AS (
    SELECT unnest($1::oid[])
    UNION
    SELECT inner_type.oid
    FROM reached
    JOIN pg_type AS outer_type ON outer_type.oid = reached.oid
    CROSS JOIN LATERAL (
        SELECT outer_type.typelem WHERE outer_type.typelem <> 0
        UNION ALL
        SELECT outer_type.typbasetype WHERE outer_type.typbasetype <> 0
        UNION ALL
        SELECT a.atttypid
        FROM pg_attribute AS a
        WHERE outer_type.typrelid <> 0 AND a.attrelid = outer_type.typrelid
          AND a.attnum > 0 AND NOT a.attisdropped
    ) AS inner_type(oid)
)
SELECT EXISTS (
    SELECT 1
    FROM reached JOIN pg_type AS t ON t.oid = reached.oid
    WHERE t.oid = 'json'::regtype OR t.typtype = 'p'
);

-- name: estimate_rows
-- The planner's estimate of a dataset's rows, for the job's progress. Plans
-- only: nothing is executed.
EXPLAIN (FORMAT JSON)
/* dataset */;

-- name: count_rows_upto
-- A dataset's rows, counted up to $1 (a job's split_rows + 1): whether its
-- result is split into parts is decided in the job's snapshot before the
-- object is named. The LIMIT stops the scan at $1 rows, but a query whose
-- first rows need all of its input (a sort without an index, an aggregate)
-- still reads all of it.
SELECT count(*)
FROM (
    SELECT 1
    FROM (
/* dataset */
    ) AS t
    LIMIT $1
) AS c;

-- name: api_list_jobs
-- One page of an owner's jobs, newest first, for GET /v1/jobs: keyset
-- pagination on (created_at, id), which jobs_owner_created_idx serves in
-- order, so a page costs the same however deep it is. A NULL filter is no
-- filter: $2 states, $3 kinds, $4 created after, $5 created before, $6/$7
-- the last job of the previous page, $8 the page size, $9 error kinds.
SELECT *
FROM exportd.jobs
WHERE owner = $1
  AND ($2::text[] IS NULL OR state = ANY($2::text[]))
  AND ($3::text[] IS NULL OR kind = ANY($3::text[]))
  AND ($4::timestamptz IS NULL OR created_at > $4::timestamptz)
  AND ($5::timestamptz IS NULL OR created_at < $5::timestamptz)
  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6::timestamptz, $7::uuid))
  AND ($9::text[] IS NULL OR error_kind = ANY($9::text[]))
ORDER BY created_at DESC, id DESC
LIMIT $8;

-- name: api_list_all_jobs
-- api_list_jobs over every owner, for the operator (the dashboard): the same
-- parameters but $1, which is ignored (always NULL), and the same order,
-- which jobs_created_idx serves. A statement of its own, not "$1 IS NULL OR
-- owner = $1": a plan made for one case would serve the other badly.
SELECT *
FROM exportd.jobs
WHERE $1::text IS NULL
  AND ($2::text[] IS NULL OR state = ANY($2::text[]))
  AND ($3::text[] IS NULL OR kind = ANY($3::text[]))
  AND ($4::timestamptz IS NULL OR created_at > $4::timestamptz)
  AND ($5::timestamptz IS NULL OR created_at < $5::timestamptz)
  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6::timestamptz, $7::uuid))
  AND ($9::text[] IS NULL OR error_kind = ANY($9::text[]))
ORDER BY created_at DESC, id DESC
LIMIT $8;

-- name: enqueue
-- POST /v1/jobs and `exportd enqueue`, after every check passed. A second
-- live job with the same (owner, dedupe_key) inserts nothing (ON CONFLICT
-- names jobs_dedupe_idx's columns and predicate) and returns no row: the
-- caller then gets the live job, found by live_duplicate. $10: the caller's
-- trace context (NULL: none).
INSERT INTO exportd.jobs
    (owner, kind, params, format, priority, run_after, max_attempts, dedupe_key, options,
     trace_context)
VALUES ($1, $2, $3::jsonb, $4, $5::smallint, coalesce($6::timestamptz, now()), $7, $8,
        $9::jsonb, $10::jsonb)
ON CONFLICT (owner, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing')
    DO NOTHING
RETURNING *;

-- name: live_duplicate
SELECT *
FROM exportd.jobs
WHERE owner = $1 AND dedupe_key = $2 AND state IN ('pending', 'processing');

-- name: api_lock_job
-- DELETE /v1/jobs/{id} decides on the row as it is while nobody else can
-- change it: a job cannot complete between the decision and the cancel, and
-- a completed job cannot be expired twice.
SELECT * FROM exportd.jobs WHERE id = $1 FOR UPDATE;

-- name: api_expire
-- A completed export whose object DELETE /v1/jobs/{id} just deleted.
UPDATE exportd.jobs
SET state = 'expired', expires_at = least(expires_at, now())
WHERE id = $1 AND state = 'completed'
RETURNING *;

-- name: api_queue_stats
-- For /metrics: jobs per state, and how long the oldest ready pending job
-- has waited. The count reads the whole table, so scrapes share one
-- answer for a few seconds; the age reads jobs_claim_idx only.
SELECT
    coalesce((SELECT jsonb_object_agg(state, n)
              FROM (SELECT state, count(*) AS n FROM exportd.jobs GROUP BY state) AS s),
             '{}'::jsonb) AS by_state,
    coalesce((SELECT extract(epoch FROM now() - min(run_after))::float8
              FROM exportd.jobs
              WHERE state = 'pending' AND run_after <= now()), 0) AS oldest_pending_seconds;

-- name: retention_lock
-- One retention round at a time across all daemons; the others skip it.
SELECT pg_try_advisory_xact_lock(hashtext('exportd.retention'));

-- name: retention_select
-- Completed exports whose download period is over, oldest first. SKIP
-- LOCKED passes over a row that an API call is deleting right now; $2 are
-- rows whose update was refused in an earlier round, passed over.
SELECT id, owner, kind, object_key
FROM exportd.jobs
WHERE state = 'completed' AND expires_at <= now() AND NOT (id = ANY ($2::uuid[]))
ORDER BY expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: retention_expire
-- The objects of $1 are deleted: the rows say so. exportd_events tells the
-- application (the trigger fires on 'expired').
UPDATE exportd.jobs
SET state = 'expired'
WHERE id = ANY($1::uuid[]) AND state = 'completed'
RETURNING id;

-- name: purge_lock
SELECT pg_try_advisory_xact_lock(hashtext('exportd.purge'));

-- name: purge_select
-- Terminal rows older than $1 seconds of history, a batch of $2 at a time so
-- that one round never holds many row locks or bloats one transaction; $3
-- are rows whose delete was refused in an earlier round, passed over.
-- Completed rows are never purged: their object still exists; retention
-- turns them into 'expired' first.
SELECT id
FROM exportd.jobs
WHERE state IN ('failed', 'cancelled', 'expired')
  AND finished_at < now() - make_interval(secs => $1)
  AND NOT (id = ANY ($3::uuid[]))
ORDER BY finished_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: purge_delete
-- The rows purge_select locked ($1); one statement for the batch, or one
-- per row when the batch was refused as a whole.
DELETE FROM exportd.jobs
WHERE id = ANY ($1::uuid[]) AND state IN ('failed', 'cancelled', 'expired')
RETURNING id;

-- name: sweep_lock
SELECT pg_try_advisory_xact_lock(hashtext('exportd.uploads_sweep'));

-- name: sweep_live_uploads
-- Jobs that may own an open upload: processing ones. An upload recorded on
-- one is never swept; nor is an upload under the key of one that has not
-- recorded its upload yet.
SELECT id, upload_id
FROM exportd.jobs
WHERE state = 'processing';

-- name: schedule_insert
-- POST /v1/schedules and `exportd schedule add`, after every check passed:
-- $1 owner, $2 kind, $3 params, $4 format, $5 options, $6 cron, $7 time
-- zone, $8 enabled, $9 the first occurrence (computed by the daemon from
-- the cron expression in its zone).
INSERT INTO exportd.schedules
    (owner, kind, params, format, options, cron, timezone, enabled, next_run_at)
VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6, $7, $8, $9)
RETURNING *;

-- name: schedule_get
SELECT * FROM exportd.schedules WHERE id = $1;

-- name: schedule_lock
-- PATCH /v1/schedules/{id} decides on the row as it is while no scheduler
-- can run it: a changed cron expression and a run cannot cross.
SELECT * FROM exportd.schedules WHERE id = $1 FOR UPDATE;

-- name: schedule_update
-- The fields PATCH changed ($2 params, $3 format, $4 options, $5 cron, $6
-- time zone, $7 enabled, $8 next run), all given (the unchanged ones as
-- they were), on the row schedule_lock holds. params and options NULL: kept
-- as stored, never re-encoded from their Python form (a number no Python
-- int holds is read back as its digits, and must not be written back so).
UPDATE exportd.schedules
SET params = coalesce($2::jsonb, params), format = $3,
    options = coalesce($4::jsonb, options), cron = $5, timezone = $6,
    enabled = $7, next_run_at = $8
WHERE id = $1
RETURNING *;

-- name: schedule_delete
-- DELETE /v1/schedules/{id}: $2 the owner scope (NULL: any). The jobs it
-- made keep their schedule_id and are not touched.
DELETE FROM exportd.schedules
WHERE id = $1 AND ($2::text IS NULL OR owner = $2)
RETURNING id;

-- name: schedule_list
-- One page of an owner's schedules ($1; NULL, for the operator's `exportd
-- schedule list`: everyone's), newest first: keyset pagination on
-- (created_at, id), served by schedules_owner_created_idx. $2/$3 the last
-- schedule of the previous page (NULL: the first page), $4 the page size.
SELECT *
FROM exportd.schedules
WHERE ($1::text IS NULL OR owner = $1)
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- name: jobs_outcomes
-- The state and error kind of each job of $1 (the last jobs of a page of
-- schedules, for the dashboard): one statement for the page, by primary key.
-- A purged job is simply absent.
SELECT id, state, error_kind, finished_at
FROM exportd.jobs
WHERE id = ANY($1::uuid[]);

-- name: schedule_due
-- The scheduler: up to $2 enabled schedules due at $1 (a row never started,
-- next_run_at NULL, is due at once), locked, so that two daemons never run
-- one occurrence: SKIP LOCKED passes over a row another daemon is running,
-- and a row another daemon ran since this statement's snapshot is checked
-- again on its new version (READ COMMITTED), which is no longer due. $3
-- are rows that could not even record their error, passed over. params and
-- options come back as text: each row decodes its own, so that one row
-- cannot fail the round. Served by schedules_due_idx. A next_run_at before
-- the year 1 ends ('-infinity', an application's "at once", or a date BC)
-- comes back NULL, as a row never started: the driver reads '-infinity' as a
-- naive datetime.min no instant compares with, and refuses a date BC
-- (OverflowError), which would fail the round. A date after it is never due.
SELECT id, owner, kind, params::text AS params_text, options::text AS options_text,
       format, cron, timezone,
       CASE WHEN next_run_at >= '0001-01-02T00:00:00Z'::timestamptz THEN next_run_at END
           AS next_run_at
FROM exportd.schedules
WHERE enabled AND (next_run_at <= $1 OR next_run_at IS NULL)
  AND NOT (id = ANY ($3::uuid[]))
ORDER BY next_run_at NULLS FIRST, id
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: schedule_make_job
-- The job of one occurrence, from the schedule's row as it is locked now
-- ($1): its owner, kind, params, format and options, its id, and the dedupe key $2
-- of schedule and occurrence. ON CONFLICT: a live job with that key exists
-- (only an application could have made it), so nothing is inserted and no
-- row returns.
INSERT INTO exportd.jobs (owner, kind, params, format, dedupe_key, schedule_id, options)
SELECT s.owner, s.kind, s.params, s.format, $2, s.id, s.options
FROM exportd.schedules AS s
WHERE s.id = $1
ON CONFLICT (owner, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing')
    DO NOTHING
RETURNING id;

-- name: schedule_advance
-- After a run of schedule $1, in the same transaction as its job: $2 the
-- next occurrence, $3 the run's instant (NULL: nothing ran, the last one is
-- kept), $4 the job made (NULL: none, the last one is kept), $5 the run's
-- error (NULL: it went well).
UPDATE exportd.schedules
SET next_run_at = $2,
    last_run_at = coalesce($3, last_run_at),
    last_job_id = coalesce($4, last_job_id),
    last_error = $5
WHERE id = $1
RETURNING id;

-- name: schedule_clock
-- The scheduler's "now": the database's clock, the one every daemon shares
-- (a daemon's own clock may be off), read at the start of the round; and the
-- instant the API and the command line compute a schedule's next run from,
-- so that it is never an occurrence the scheduler sees as already passed.
SELECT clock_timestamp();
-- name: requeue
-- POST /v1/jobs/{id}/retry and `exportd retry`: a failed or cancelled job
-- ($1) runs again, now, with its attempts reset (max_attempts unchanged).
-- One guarded statement: of two retries at once, the second waits for the
-- first's row lock, then finds the job pending and changes nothing. $2 is
-- the owner scope (NULL: any owner): another owner's job is not touched.
-- error and error_kind stay, as after a retryable failure, until the next
-- attempt ends; each ended attempt is in exportd.job_attempts. claims is
-- not reset: it names each claim for good (see the header). A live job with
-- the same (owner, dedupe_key) makes jobs_dedupe_idx refuse the update.
UPDATE exportd.jobs
SET state = 'pending',
    attempts = 0,
    run_after = now(),
    finished_at = NULL,
    worker_id = NULL,
    lease_expires_at = NULL,
    progress = 0,
    rows_written = 0,
    bytes_written = 0,
    upload_id = NULL,
    upload_key = NULL
WHERE id = $1 AND state IN ('failed', 'cancelled')
  AND ($2::text IS NULL OR owner = $2::text)
RETURNING *;

-- name: job_attempts
-- The last $2 ended attempts of job $1, oldest first (the primary key serves
-- both orders): an operator may retry a job any number of times, and the
-- job's document must not grow with it.
SELECT *
FROM (
    SELECT seq, attempt, claim, worker_id, started_at, finished_at, outcome, next_state,
           error_kind, error
    FROM exportd.job_attempts
    WHERE job_id = $1
    ORDER BY seq DESC
    LIMIT $2
) AS last
ORDER BY seq;
-- name: quota_lock
-- Taken by POST /v1/jobs and `exportd enqueue` for a kind with a quota,
-- in the transaction that counts the owner's jobs of the kind and inserts
-- the new one: two requests for one (kind, owner) take turns, so the count
-- each sees includes the other's job, on any daemon. Keyed on both, with a
-- separator no kind or owner holds (control characters are refused in
-- both); a hash collision only makes two pairs take turns too.
SELECT pg_advisory_xact_lock(
    hashtextextended('exportd.quota' || chr(31) || $1::text || chr(31) || $2::text, 0));

-- name: quota_history
-- What a quota of owner $1's jobs of kind $2 is decided from: their jobs
-- in creation order, each with its standing, and the database's now. A job
-- refused for quota itself is 'refused'; one pending or processing in its
-- first attempt is 'undecided' (the worker decides after the claim, and a
-- row inserted directly may not be decided yet); any other is 'counted'. $4/$5 are the decided job's (created_at, id): only jobs
-- before it in that order are read, so every daemon decides the same,
-- whatever the order of the claims; NULL for a job not inserted yet, created
-- now: every job counts then, those of transactions that started later too,
-- but none created after this statement's clock (clock_timestamp(): no
-- committed transaction's now() is later), which only an INSERT that set
-- created_at ahead makes: it is in no window that ends now, and counting it
-- would refuse the owner until it leaves a window years away.
-- An undecided job is decided by the same rule, from the jobs in its own
-- window (exportd/quotas.py), so the rows start a window ($3, an interval)
-- before the earliest of them, and never later than one before the decided
-- job. jobs_owner_created_idx serves the order.
WITH target AS (
    SELECT coalesce($4::timestamptz, now()) AS at
), since AS (
    SELECT least(t.at, (SELECT min(u.created_at)
                        FROM exportd.jobs AS u
                        WHERE u.owner = $1 AND u.kind = $2
                          AND u.state IN ('pending', 'processing') AND u.attempts <= 1
                          AND u.error_kind IS DISTINCT FROM 'quota_exceeded'
                          AND u.created_at <= t.at)) - $3::interval AS at
    FROM target AS t
)
SELECT j.created_at,
       CASE WHEN j.error_kind = 'quota_exceeded' THEN 'refused'
            WHEN j.state IN ('pending', 'processing') AND j.attempts <= 1 THEN 'undecided'
            ELSE 'counted' END AS standing,
       now() AS now
FROM exportd.jobs AS j, since AS s
WHERE j.owner = $1 AND j.kind = $2 AND j.created_at > s.at
  AND CASE WHEN $4::timestamptz IS NULL THEN j.created_at <= clock_timestamp()
           ELSE (j.created_at, j.id) < ($4::timestamptz, $5::uuid) END
ORDER BY j.created_at, j.id;
-- name: webhook_claim
-- Claim up to $1 deliveries that are due for daemon $2, each with a lease of
-- $3 seconds, spending an attempt. The CTE keeps the LIMIT honest and SKIP
-- LOCKED lets several daemons claim at once. A delivery whose lease is
-- still running is being sent; one whose lease ran out (its daemon died
-- mid-request) is due again, so every event is sent at least once. Order
-- per job: a delivery waits while an earlier one of the same job is still
-- pending (in flight, or waiting for its retry). The locks end with the
-- statement: nothing is held while the request is made.
WITH ready AS (
    SELECT d.id
    FROM exportd.webhook_deliveries AS d
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
      AND (d.locked_until IS NULL OR d.locked_until < now())
      AND NOT EXISTS (
          SELECT 1 FROM exportd.webhook_deliveries AS e
          WHERE e.job_id = d.job_id AND e.seq < d.seq AND e.state = 'pending')
    ORDER BY d.next_attempt_at, d.seq
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE exportd.webhook_deliveries AS d
SET attempts = d.attempts + 1,
    locked_by = $2,
    locked_until = now() + make_interval(secs => $3),
    first_attempt_at = coalesce(d.first_attempt_at, now())
FROM ready
WHERE d.id = ready.id
RETURNING d.id, d.job_id, d.event_type, d.occurred_at, d.attempts,
          extract(epoch FROM now() - d.first_attempt_at)::float8 AS retrying_seconds;

-- name: webhook_jobs
-- The rows of the jobs whose events are being sent ($1), for the bodies.
SELECT * FROM exportd.jobs WHERE id = ANY ($1::uuid[]);

-- name: webhook_no_target
-- Deliveries ($1, with their attempts $2) that no webhook URL applies to:
-- finished at once, in one statement, never retried; the attempt the claim
-- spent is given back, since no request was made. Guarded by the attempt
-- like every outcome.
UPDATE exportd.webhook_deliveries AS d
SET state = 'no_target',
    attempts = d.attempts - 1,
    finished_at = now(),
    locked_by = NULL,
    locked_until = NULL
FROM unnest($1::uuid[], $2::int[]) AS n(id, attempt)
WHERE d.id = n.id AND d.attempts = n.attempt AND d.state = 'pending'
RETURNING d.id;

-- name: webhook_outcome
-- The outcome of attempt $2 of delivery $1, recorded only if that attempt
-- still holds the delivery (a daemon whose lease ran out while it waited
-- for the receiver records nothing: another daemon has the delivery).
-- $3: the next state ('pending' to retry, 'delivered', 'failed'); $4 the
-- seconds before the retry; $5 the HTTP status (NULL: no answer); $6 the
-- error; $7 when the attempt started; $8 its latency in milliseconds.
WITH updated AS (
    UPDATE exportd.webhook_deliveries
    SET state = $3,
        next_attempt_at = CASE WHEN $3 = 'pending'
                               THEN now() + make_interval(secs => $4) ELSE next_attempt_at END,
        finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END,
        locked_by = NULL,
        locked_until = NULL,
        last_status = $5,
        last_error = $6
    WHERE id = $1 AND attempts = $2 AND state = 'pending'
    RETURNING id
)
INSERT INTO exportd.webhook_attempts (delivery_id, attempt, started_at, status, error, latency_ms)
SELECT id, $2, $7, $5, $6, $8 FROM updated
RETURNING delivery_id;

-- name: webhook_release
-- At shutdown, deliveries claimed by daemon $1 ($2 ids, $3 attempts) that
-- were not sent: due again at once, their attempt given back.
UPDATE exportd.webhook_deliveries AS d
SET attempts = greatest(d.attempts - 1, 0),
    locked_by = NULL,
    locked_until = NULL
FROM unnest($2::uuid[], $3::int[]) AS r(id, attempt)
WHERE d.id = r.id AND d.attempts = r.attempt AND d.locked_by = $1 AND d.state = 'pending';

-- name: webhook_stats
-- For /metrics: pending deliveries, and how long ago the oldest of them
-- happened. Reads the pending rows of webhook_deliveries_due_idx only.
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(occurred_at))::float8, 0) AS oldest_seconds
FROM exportd.webhook_deliveries
WHERE state = 'pending';

-- name: webhook_deliveries_of
-- GET /v1/jobs/{id}: the job's last $3 deliveries, oldest first, each with
-- its attempts (the last $2 of them, oldest first). Bounded both ways: a job
-- retried without end has deliveries without end. Reads the last $3 entries
-- of webhook_deliveries_job_idx.
SELECT d.id, d.event_type, d.occurred_at, d.state, d.attempts, d.next_attempt_at,
       d.last_status, d.last_error, d.finished_at,
       coalesce((
           SELECT jsonb_agg(jsonb_build_object(
                      'attempt', a.attempt, 'started_at', a.started_at, 'status', a.status,
                      'error', a.error, 'latency_ms', a.latency_ms) ORDER BY a.attempt)
           FROM (SELECT * FROM exportd.webhook_attempts AS w
                 WHERE w.delivery_id = d.id ORDER BY w.attempt DESC LIMIT $2) AS a
       ), '[]'::jsonb) AS attempt_log
FROM (SELECT * FROM exportd.webhook_deliveries AS l
      WHERE l.job_id = $1 ORDER BY l.seq DESC LIMIT $3) AS d
ORDER BY d.seq;

-- name: webhook_purge_lock
SELECT pg_try_advisory_xact_lock(hashtext('exportd.webhook_purge'));

-- name: webhook_purge
-- Deliveries finished over $1 seconds ago (the history retention), a batch
-- of $2 at a time; their attempts go with them. Pending ones are never
-- purged: they are still to be sent.
DELETE FROM exportd.webhook_deliveries
WHERE id IN (
    SELECT id FROM exportd.webhook_deliveries
    WHERE state <> 'pending' AND finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING id;
-- name: pause_kind
-- Pause kind $1 ('*': every kind), by $2, for reason $3 (NULL: none). A kind
-- paused already keeps its first pause (time, author, reason) and no row
-- comes back: the caller reads it with pause_of.
INSERT INTO exportd.paused_kinds (kind, paused_by, reason)
VALUES ($1, $2, $3)
ON CONFLICT (kind) DO NOTHING
RETURNING kind, paused_at, paused_by, reason;

-- name: pause_of
SELECT kind, paused_at, paused_by, reason
FROM exportd.paused_kinds
WHERE kind = $1;

-- name: resume_kind
-- Lift kind $1's own pause ('*': only the pause of every kind). The table's
-- trigger wakes idle daemons (exportd_jobs).
DELETE FROM exportd.paused_kinds
WHERE kind = $1
RETURNING kind, paused_at, paused_by, reason;

-- name: resume_all_kinds
-- Lift every pause: of every kind ('*'), and each kind's own.
DELETE FROM exportd.paused_kinds
RETURNING kind, paused_at, paused_by, reason;

-- name: paused_kinds
-- Every pause, for GET /v1/kinds, the pause routes and /metrics: a handful
-- of rows at most.
SELECT kind, paused_at, paused_by, reason
FROM exportd.paused_kinds
ORDER BY kind;

-- name: xlsx_rows
-- A dataset's rows as SpreadsheetML, one <row> per line, formatted by
-- Postgres: exportd.export.xlsx.expressions puts the row's cells (from the
-- xlsx_cell_* templates below, one per column, chosen by the column's type
-- in the prepared statement) in place of the first marker and the
-- dataset's statement in place of the second. Written through copy_json's
-- COPY: no text a cell holds contains its quote, delimiter or a line break
-- (xlsx_cell_text replaces or escapes them all).
SELECT /* cells */
FROM (
/* dataset */
) AS t;

-- name: xlsx_cell_int
-- A 2- or 4-byte integer: always a number (at most 10 digits).
'<c><v>' || /* value */ || '</v></c>'

-- name: xlsx_cell_numeric
-- An integer or exact numeric: a number when Excel holds it exactly (at most
-- 15 significant digits, leading and trailing zeros aside, and within its
-- range), else its exact text. Text of at most 15 characters has at most 15
-- digits: the common case is decided without counting them. NaN and the
-- infinities compare above every number and are written as text.
CASE WHEN length((/* value */)::text) <= 15
          AND (/* value */)::text NOT IN ('NaN', 'Infinity', '-Infinity')
       OR (/* value */) = 0
       OR (abs((/* value */)::numeric) BETWEEN 1e-307 AND 9.99999999999999e307
           AND length(trim(BOTH '0' FROM translate((/* value */)::text, '-.', ''))) <= 15)
     THEN '<c><v>' || (/* value */)::text || '</v></c>'
     ELSE '<c t="inlineStr"><is><t>' || (/* value */)::text || '</t></is></c>'
END

-- name: xlsx_cell_float
-- A float: a number (extra_float_digits is pinned: the shortest exact text),
-- NaN and the infinities as text.
CASE WHEN (/* value */) IN ('NaN', 'Infinity', '-Infinity')
     THEN '<c t="inlineStr"><is><t>' || (/* value */)::text || '</t></is></c>'
     ELSE '<c><v>' || (/* value */)::text || '</v></c>'
END

-- name: xlsx_cell_bool
CASE WHEN (/* value */) THEN '<c t="b"><v>1</v></c>'
     WHEN NOT (/* value */) THEN '<c t="b"><v>0</v></c>'
END

-- name: xlsx_cell_date
-- A date as Excel's serial (days since 1899-12-30) with style 1 (yyyy-mm-dd).
-- Before 1900-03-01 Excel's serials count a 29 February 1900 that never was,
-- and it holds nothing past 9999: such dates (and infinity) are ISO text.
CASE WHEN (/* value */) BETWEEN date '1900-03-01' AND date '9999-12-31'
     THEN '<c s="1"><v>' || ((/* value */) - date '1899-12-30') || '</v></c>'
     ELSE '<c t="inlineStr"><is><t>' || (/* value */)::text || '</t></is></c>'
END

-- name: xlsx_cell_timestamp
-- A timestamp, or a timestamptz as wall-clock time in the session's time
-- zone (the job's), as Excel's serial to 10 decimals (under 9 microseconds)
-- with style 2 (yyyy-mm-dd hh:mm:ss); out of Excel's range as ISO text. From
-- 9999-12-31 23:59:59.5 on, a reader shows the serial (to the second, or as a
-- double) as 10000-01-01, which Excel does not have: text too.
CASE WHEN (/* value */)::timestamp >= timestamp '1900-03-01'
          AND (/* value */)::timestamp < timestamp '9999-12-31 23:59:59.5'
     THEN '<c s="2"><v>' || round(extract(epoch FROM (/* value */)::timestamp
                                          - timestamp '1899-12-30') / 86400, 10) || '</v></c>'
     ELSE '<c t="inlineStr"><is><t>' || (/* value */)::text || '</t></is></c>'
END

-- name: xlsx_cell_text
-- Any other value as its text (json, arrays, bytea as \x and hex, ...), an
-- inline string, never a formula. Each character XML 1.0 cannot hold becomes
-- U+FFFD (a regular expression: translate() with a list of characters is
-- ten times slower); &, < and > are escaped, and CR and LF written as
-- character references so that a row stays on one line. A text longer than
-- Excel's 32,767 characters is cut to end with ' [truncated]' (12
-- characters); the byte length, never less than the character length,
-- spares counting the characters of every shorter text.
'<c t="inlineStr"><is><t xml:space="preserve">' || replace(replace(replace(replace(replace(
    regexp_replace(
        CASE WHEN octet_length(/* text */) > 32767 AND length(/* text */) > 32767
             THEN left(/* text */, 32755) || ' [truncated]'
             ELSE /* text */ END,
        '[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]', E'\ufffd', 'g'),
    '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), E'\n', '&#10;'), E'\r', '&#13;')
|| '</t></is></c>'

-- name: xlsx_cell_text_strict
-- As xlsx_cell_text for a kind whose long_text is 'fail': a text over the
-- limit is written as the character \x03 alone, which no text holds (it is
-- replaced like every character XML cannot hold) and the writer stops at.
CASE WHEN octet_length(/* text */) > 32767 AND length(/* text */) > 32767 THEN E'\x03'
     ELSE '<c t="inlineStr"><is><t xml:space="preserve">' || replace(replace(replace(replace(
         replace(regexp_replace(/* text */,
                                '[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]', E'\ufffd', 'g'),
         '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), E'\n', '&#10;'), E'\r', '&#13;')
         || '</t></is></c>'
END

-- name: timezone_names
-- Every time zone name Postgres knows (the API caches the set: reading it
-- scans the zone database, tens of milliseconds).
SELECT name FROM pg_timezone_names;

-- name: timezone_known
-- Whether Postgres knows time zone $1 by this very name, asked in an export's
-- session before its settings are pinned: a job's zone, checked once more
-- where it is used.
SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1);

-- name: parquet_column_types
-- For each type ($1, a dataset's column types), what its parquet column is
-- chosen by: the type under any domains (a domain is written as its base
-- type), its category, and for an array the element's base type.
WITH RECURSIVE chain(start, oid) AS (
    SELECT c, c FROM unnest($1::oid[]) AS c
    UNION
    SELECT chain.start, t.typbasetype
    FROM chain JOIN pg_type AS t ON t.oid = chain.oid
    WHERE t.typtype = 'd'
)
SELECT chain.start AS oid, t.typcategory::text AS category, t.typname::text AS base_name,
       n.nspname::text AS base_schema,
       e.typname::text AS element_name, en.nspname::text AS element_schema
FROM chain
JOIN pg_type AS t ON t.oid = chain.oid
JOIN pg_namespace AS n ON n.oid = t.typnamespace
LEFT JOIN pg_type AS e ON e.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_namespace AS en ON en.oid = e.typnamespace
WHERE t.typtype <> 'd';

-- name: parquet_copy
-- A dataset's rows for a parquet file: CSV without a header, one of the
-- parquet_* expressions (or column_plain) per column. Arrow's CSV reader
-- parses it with the column types decided from the prepared statement.
COPY (
SELECT /* columns */
FROM (
/* dataset */
) AS t
) TO STDOUT (FORMAT csv);

-- name: parquet_date
-- A date as its day number since 1970-01-01 (parquet's DATE), or, when it
-- is infinite, its own text, which the reader refuses by name.
CASE WHEN isfinite(/* column */)
     THEN ((/* column */) - DATE '1970-01-01')::text
     ELSE (/* column */)::text
END

-- name: parquet_timestamptz
-- A timestamptz as microseconds since 1970-01-01 UTC (extract(epoch) is an
-- exact numeric), or its own text when it is infinite or past what 64 bits
-- of microseconds since 1970 hold (Postgres reaches year 294276; Arrow stops
-- in 294247): the reader refuses such a value by name, never rounds it.
CASE WHEN isfinite(/* column */)
      AND (/* column */) < TIMESTAMPTZ '294247-01-01 00:00:00+00'
     THEN (extract(epoch FROM /* column */) * 1000000)::int8::text
     ELSE (/* column */)::text
END

-- name: parquet_timestamp
-- A timestamp without time zone as microseconds since 1970-01-01 00:00, the
-- same wall time (no zone is applied), or its own text as above.
CASE WHEN isfinite(/* column */)
      AND (/* column */) < TIMESTAMP '294247-01-01 00:00:00'
     THEN (extract(epoch FROM /* column */) * 1000000)::int8::text
     ELSE (/* column */)::text
END

-- name: parquet_array
-- An array as a JSON array (elements of the list types parquet columns
-- take: numbers, booleans, strings and nulls; NaN and infinities as strings).
array_to_json(/* column */)::text

-- name: worker_announce
-- A daemon's row (exportd/queue/workers.py): inserted at start, refreshed at
-- each heartbeat by the same statement, so that a row pruned while its
-- daemon stalled comes back at its next beat. The database's clock stamps
-- the heartbeat: every daemon's row is judged by one clock.
INSERT INTO exportd.workers
    (id, version, host, pid, started_at, concurrency, heartbeat_seconds, last_heartbeat_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::float8, now())
ON CONFLICT (id) DO UPDATE
SET concurrency = EXCLUDED.concurrency,
    heartbeat_seconds = EXCLUDED.heartbeat_seconds,
    last_heartbeat_at = now();

-- name: worker_retire
-- A clean stop: the daemon's row goes.
DELETE FROM exportd.workers WHERE id = $1 RETURNING id;

-- name: workers_alive
-- The daemons alive now: a heartbeat within three of the row's own intervals
-- (exportd.queue.workers.STALE_BEATS). A handful of rows. The heartbeat's
-- age is the database's clock's, as the heartbeat's time is.
SELECT id, version, host, pid, started_at, concurrency, heartbeat_seconds, last_heartbeat_at,
       greatest(extract(epoch FROM now() - last_heartbeat_at)::float8, 0) AS heartbeat_age
FROM exportd.workers
WHERE last_heartbeat_at > now() - make_interval(secs => 3 * heartbeat_seconds)
ORDER BY started_at, id;

-- name: workers_prune
-- Maintenance: the rows no longer alive (the converse of workers_alive).
DELETE FROM exportd.workers
WHERE last_heartbeat_at <= now() - make_interval(secs => 3 * heartbeat_seconds)
RETURNING id;

-- name: jobs_running
-- Every processing job with its progress as its last heartbeat wrote it, for
-- GET /v1/workers and the dashboard's live view: one statement for all of
-- them, read from the partial indexes on processing rows (as many rows as
-- the daemons' concurrency, however long the history).
SELECT id, owner, kind, worker_id, progress, rows_written, bytes_written, attempts,
       max_attempts, started_at, lease_expires_at
FROM exportd.jobs
WHERE state = 'processing'
ORDER BY started_at, id;

-- name: overview_clock
-- The overview's "now": the snapshot's transaction time, which every
-- overview statement's now() also reads.
SELECT now();

-- name: overview_live
-- Pending and processing jobs by state and kind; of the pending ones, how
-- many are due and since when the oldest has been. An index-only scan of
-- jobs_live_kind_idx: it costs what the backlog costs.
SELECT state, kind, count(*) AS n,
       count(*) FILTER (WHERE state = 'pending' AND run_after <= now()) AS ready,
       min(run_after) FILTER (WHERE state = 'pending' AND run_after <= now()) AS oldest_ready_at
FROM exportd.jobs
WHERE state IN ('pending', 'processing')
GROUP BY state, kind
ORDER BY state, kind;

-- name: overview_finished
-- Jobs that finished within the last $1 seconds, by state and kind: an
-- index-only scan of jobs_finished_kind_idx over the window alone.
SELECT state, kind, count(*) AS n
FROM exportd.jobs
WHERE state IN ('completed', 'failed', 'cancelled', 'expired')
  AND finished_at > now() - make_interval(secs => $1::float8)
GROUP BY state, kind
ORDER BY state, kind;

-- name: overview_minutes
-- Completions (those expired since included: they keep their finished_at)
-- and failures for good, per minute over the last $1 minutes, the current
-- one last; every minute present, zero when nothing ended in it. Minutes
-- are cut in UTC, whatever the session's TimeZone.
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now(), 'UTC') - make_interval(mins => $1 - 1),
                           date_trunc('minute', now(), 'UTC'),
                           interval '1 minute') AS minute
), ended AS (
    SELECT date_trunc('minute', finished_at, 'UTC') AS minute,
           count(*) FILTER (WHERE state IN ('completed', 'expired')) AS completed,
           count(*) FILTER (WHERE state = 'failed') AS failed
    FROM exportd.jobs
    WHERE state IN ('completed', 'failed', 'cancelled', 'expired')
      AND finished_at >= date_trunc('minute', now(), 'UTC') - make_interval(mins => $1 - 1)
    GROUP BY 1
)
SELECT m.minute, coalesce(e.completed, 0) AS completed, coalesce(e.failed, 0) AS failed
FROM minutes m
LEFT JOIN ended e USING (minute)
ORDER BY m.minute;

-- name: overview_durations
-- The exports completed within the last hour, by kind: how many, and the
-- median and 95th percentile of their last attempt's duration in seconds.
-- An index-only scan of jobs_finished_kind_idx (started_at is included).
SELECT kind, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM finished_at - started_at)::float8) AS p50,
       percentile_cont(0.95) WITHIN GROUP (
           ORDER BY extract(epoch FROM finished_at - started_at)::float8) AS p95
FROM exportd.jobs
WHERE state IN ('completed', 'failed', 'cancelled', 'expired')
  AND state IN ('completed', 'expired')
  AND finished_at > now() - interval '1 hour'
  AND started_at IS NOT NULL
GROUP BY kind
ORDER BY kind;
