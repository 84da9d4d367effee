-- The statements of the transactional helpers (exportd_client.transactional).
-- Placeholders are written :name and rendered for each driver's paramstyle;
-- no other colon may appear outside comments, so casts are spelled CAST().
-- Every value goes in as text and every job comes back as text, so that no
-- codec an application registered for jsonb or json changes what is stored.

-- name: enqueue
-- Defaults are the table's column defaults (migration 0001_jobs). A second
-- live job with the same (owner, dedupe_key) inserts nothing and returns no
-- row (ON CONFLICT names jobs_dedupe_idx's columns and predicate), inside the
-- application's transaction, and without aborting it.
INSERT INTO exportd.jobs AS j
    (owner, kind, params, format, priority, run_after, max_attempts, dedupe_key, options)
VALUES (
    CAST(:owner AS text),
    CAST(:kind AS text),
    CAST(CAST(:params AS text) AS jsonb),
    coalesce(CAST(:format AS text), 'csv'),
    coalesce(CAST(:priority AS smallint), 0),
    coalesce(CAST(:run_after AS timestamptz), now()),
    coalesce(CAST(:max_attempts AS integer), 5),
    CAST(:dedupe_key AS text),
    coalesce(CAST(CAST(:options AS text) AS jsonb), CAST('{}' AS jsonb))
)
ON CONFLICT (owner, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing')
    DO NOTHING
RETURNING CAST(to_jsonb(j) AS text) AS job;

-- name: enqueue_traced
-- enqueue, with the caller's W3C trace context: used only while a span is
-- current, so that an application without OpenTelemetry never names the
-- column (it exists from migration 0012 on).
INSERT INTO exportd.jobs AS j
    (owner, kind, params, format, priority, run_after, max_attempts, dedupe_key, options,
     trace_context)
VALUES (
    CAST(:owner AS text),
    CAST(:kind AS text),
    CAST(CAST(:params AS text) AS jsonb),
    coalesce(CAST(:format AS text), 'csv'),
    coalesce(CAST(:priority AS smallint), 0),
    coalesce(CAST(:run_after AS timestamptz), now()),
    coalesce(CAST(:max_attempts AS integer), 5),
    CAST(:dedupe_key AS text),
    coalesce(CAST(CAST(:options AS text) AS jsonb), CAST('{}' AS jsonb)),
    CAST(CAST(:trace_context AS text) AS jsonb)
)
ON CONFLICT (owner, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing')
    DO NOTHING
RETURNING CAST(to_jsonb(j) AS text) AS job;

-- name: live_duplicate
-- The live job an enqueue collided with.
SELECT CAST(to_jsonb(j) AS text) AS job
FROM exportd.jobs AS j
WHERE j.owner = CAST(:owner AS text)
  AND j.dedupe_key = CAST(:dedupe_key AS text)
  AND j.state IN ('pending', 'processing');
