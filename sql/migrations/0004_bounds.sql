-- exportd schema, version 4: caller strings bounded in bytes; notifications
-- that fit whatever a row holds; the download's file name kept apart from
-- the object key.
--
-- The numbers are those of exportd/limits.py (OWNER_MAX_BYTES,
-- KIND_MAX_BYTES, DEDUPE_KEY_MAX_BYTES, PARAMS_MAX_BYTES); a test holds this
-- file to them. Bytes, not characters: pg_notify's payload, S3 keys and HTTP
-- headers all count bytes of UTF-8.
--
-- Order matters. A row already over a bound may exist (nothing refused it
-- before): the notification is bounded first, so that changing such a row's
-- state can always be notified; live rows over a bound are then failed,
-- since no daemon can run them; terminal rows keep their values and are
-- exempt, so that retention, the purge and every later update of them still
-- succeed (a CHECK is evaluated on every UPDATE of the row it covers).

-- pg_notify refuses a payload of 8000 bytes or more, inside the transaction
-- that changes the state: an unbounded owner or kind would make the job's
-- outcome impossible to record. An owner or kind over its bound (only rows
-- older than the constraints below, or terminal rows) is cut to 64
-- characters (at most 256 bytes, 384 once JSON escapes every one of them),
-- and the payload names what was cut in "truncated". Rows within the bounds
-- keep the payload as it always was.
CREATE OR REPLACE FUNCTION exportd.notify_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner_cut boolean := octet_length(NEW.owner) > 256;
    kind_cut  boolean := octet_length(NEW.kind) > 128;
    payload   jsonb;
BEGIN
    payload := jsonb_build_object(
        'id', NEW.id,
        'owner', CASE WHEN owner_cut THEN left(NEW.owner, 64) ELSE NEW.owner END,
        'kind', CASE WHEN kind_cut THEN left(NEW.kind, 64) ELSE NEW.kind END,
        'state', NEW.state);
    IF owner_cut OR kind_cut THEN
        payload := payload || jsonb_build_object(
            'truncated',
            to_jsonb(array_remove(ARRAY[CASE WHEN owner_cut THEN 'owner' END,
                                        CASE WHEN kind_cut THEN 'kind' END], NULL)));
    END IF;
    PERFORM pg_notify('exportd_events', payload::text);
    RETURN NULL;
END;
$$;

-- Live rows over a bound can never run (their notification, object key or
-- params cannot be built within the limits): they fail now, saying why.
UPDATE exportd.jobs
SET state = 'failed',
    finished_at = now(),
    error_kind = 'invalid_params',
    error = 'failed on upgrade: ' || concat_ws('; ',
        CASE WHEN octet_length(owner) > 256
             THEN format('owner is %s bytes, over the 256 allowed', octet_length(owner)) END,
        CASE WHEN octet_length(kind) > 128
             THEN format('kind is %s bytes, over the 128 allowed', octet_length(kind)) END,
        CASE WHEN octet_length(dedupe_key) > 256
             THEN format('dedupe_key is %s bytes, over the 256 allowed',
                         octet_length(dedupe_key)) END,
        CASE WHEN octet_length(params::text) > 65536
             THEN format('params are %s bytes as JSON text, over the 65536 allowed',
                         octet_length(params::text)) END,
        CASE WHEN jsonb_path_exists(params, 'strict $.**{32 to last}')
             THEN 'params nest deeper than 32 levels' END),
    lease_expires_at = NULL,
    upload_id = NULL,
    upload_key = NULL
WHERE state IN ('pending', 'processing')
  AND (octet_length(owner) > 256 OR octet_length(kind) > 128
       OR octet_length(dedupe_key) > 256 OR octet_length(params::text) > 65536
       OR jsonb_path_exists(params, 'strict $.**{32 to last}'));

-- Named, so that the application's failed INSERT says which bound it broke.
-- Terminal rows are exempt: they are never run again, and a row from before
-- these bounds must stay expirable and purgeable.
ALTER TABLE exportd.jobs
    ADD CONSTRAINT jobs_owner_bytes
        CHECK (octet_length(owner) <= 256
               OR state IN ('completed', 'failed', 'cancelled', 'expired')),
    ADD CONSTRAINT jobs_kind_bytes
        CHECK (octet_length(kind) <= 128
               OR state IN ('completed', 'failed', 'cancelled', 'expired')),
    ADD CONSTRAINT jobs_dedupe_key_bytes
        CHECK (octet_length(dedupe_key) <= 256
               OR state IN ('completed', 'failed', 'cancelled', 'expired')),
    ADD CONSTRAINT jobs_params_bytes
        CHECK (octet_length(params::text) <= 65536
               OR state IN ('completed', 'failed', 'cancelled', 'expired')),
    -- Postgres stores a document nested thousands of levels deep; Python's
    -- decoders recurse once per level. A value at level 32 (JSON_MAX_DEPTH)
    -- or deeper means more than 32 nested arrays and objects, or exactly 32
    -- with something inside the last: a row the table takes always decodes.
    ADD CONSTRAINT jobs_params_depth
        CHECK (NOT jsonb_path_exists(params, 'strict $.**{32 to last}')
               OR state IN ('completed', 'failed', 'cancelled', 'expired'));

-- Daemon-owned: the file name a download is saved under, in full. The
-- object key's last segment is that name percent-encoded and, when too long
-- for a key, cut (see exportd/keys.py), so it cannot give the name back.
ALTER TABLE exportd.jobs ADD COLUMN filename text;
