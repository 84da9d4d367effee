-- exportd schema, version 12: the trace a job belongs to.
--
-- trace_context carries the W3C Trace Context (https://www.w3.org/TR/trace-context/)
-- of the request that asked for the job, so that the daemon's spans for it
-- continue the application's trace:
--     {"traceparent": "00-<32 hex>-<16 hex>-<2 hex>", "tracestate": "..."}
-- tracestate is optional. Written by the caller (the client library's SQL
-- helpers, or POST /v1/jobs from its traceparent/tracestate headers); NULL
-- means no trace (jobs made by a schedule, and every row existing now). A
-- retry on request keeps it.
--
-- The table bounds only its size and shape: a JSON object of at most 1024
-- bytes, whose tracestate, when a string, holds at most 512 characters (the
-- length W3C asks every platform to carry). A malformed traceparent is not
-- refused here: per W3C it is ignored, and the job runs untraced by the
-- caller's trace (it never fails a job). The numbers are those of
-- exportd/limits.py (TRACE_CONTEXT_MAX_BYTES, TRACESTATE_MAX_CHARS); a test
-- holds this file to them. A new nullable column without default: recorded
-- in the catalog, no row rewritten.

ALTER TABLE exportd.jobs
    ADD COLUMN trace_context jsonb,
    ADD CONSTRAINT jobs_trace_context_bounds
        CHECK (trace_context IS NULL
               OR (jsonb_typeof(trace_context) = 'object'
                   AND octet_length(trace_context::text) <= 1024
                   AND (jsonb_typeof(trace_context -> 'tracestate') IS DISTINCT FROM 'string'
                        OR char_length(trace_context ->> 'tracestate') <= 512)));

COMMENT ON COLUMN exportd.jobs.trace_context IS
    'W3C Trace Context of the request that asked for the job: '
    '{"traceparent": "00-...", "tracestate": "..."}; a JSON object of at most 1024 bytes, '
    'NULL for none; see docs/queue.md.';
