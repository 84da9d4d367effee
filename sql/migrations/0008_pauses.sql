-- exportd schema, version 8: paused kinds.
--
-- An operator pauses a kind (`exportd pause KIND`, POST /v1/kinds/{kind}/pause)
-- and no daemon claims its pending jobs until it is resumed; running jobs
-- finish. The state is a row here, so every daemon sees it at its next claim
-- and it outlives restarts. One row per paused kind; the row whose kind is
-- '*' pauses every kind. '*' can never name a kind: a kind's name matches
-- [a-z][a-z0-9_-]* (exportd/definitions/loader.py, KIND_NAME_RE), which the
-- constraint below holds every other row to.
--
-- The numbers are those of exportd/limits.py (KIND_MAX_BYTES,
-- PAUSED_BY_MAX_BYTES, PAUSE_REASON_MAX_BYTES); a test holds this file to
-- them. Bytes, not characters, as for the job table's bounds.

CREATE TABLE exportd.paused_kinds (
    kind      text        PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    -- Who paused it: "api" for the HTTP API, the OS user for the command line.
    paused_by text        NOT NULL,
    reason    text,

    -- Named constraints: their names are what a caller sees in the error.
    CONSTRAINT paused_kinds_kind_name
        CHECK (kind = '*' OR kind ~ '^[a-z][a-z0-9_-]*$'),
    CONSTRAINT paused_kinds_kind_bytes CHECK (octet_length(kind) <= 128),
    CONSTRAINT paused_kinds_paused_by_bytes
        CHECK (paused_by <> '' AND octet_length(paused_by) <= 256),
    CONSTRAINT paused_kinds_reason_bytes
        CHECK (reason <> '' AND octet_length(reason) <= 1024)
);

COMMENT ON TABLE exportd.paused_kinds IS
    'Kinds whose pending jobs no daemon claims; the kind ''*'' pauses every kind. '
    'Written by `exportd pause` and POST /v1/kinds/{kind}/pause.';

-- A resumed kind's jobs may be waiting: wake idle daemons at once rather
-- than at their next poll, whoever deletes the row (the API, the command
-- line, or an operator in psql). Statement-level, so that resuming every
-- kind sends one wake-up; notify_pending's payload is constant, as for jobs.
CREATE TRIGGER paused_kinds_notify_resumed
    AFTER DELETE ON exportd.paused_kinds
    FOR EACH STATEMENT EXECUTE FUNCTION exportd.notify_pending();
