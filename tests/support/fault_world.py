"""What the fault suite exports, and the audit it keeps of every state change.

The source tables live in the same throwaway cluster as the queue (one
database, as the issue says). Each kind's SQL is written once here: the
definitions get it with ``:name`` placeholders, the test's direct export with
``$n`` ones, so both run the same query.

Large jobs read ``src.pace(g)``, which sleeps a little every 50 rows, so
that an export takes a few seconds and a SIGKILL or an outage lands in the
middle of its upload. The test's direct export sets ``fault.pace`` to 0 and
gets the same rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_SQL = """
CREATE SCHEMA src;

CREATE TABLE src.items (
    id integer PRIMARY KEY,
    owner text NOT NULL,
    n integer NOT NULL,
    label text NOT NULL,
    amount numeric(12, 2),
    at timestamptz NOT NULL,
    tags jsonb NOT NULL
);
INSERT INTO src.items
SELECT g, 'owner' || (g % 12), g % 50,
       CASE WHEN g % 7 = 0 THEN 'a "quoted", line' || E'\\n' || 'break ' || g
            ELSE 'item ' || g END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE g * 1.25 END,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '37 minutes',
       jsonb_build_object('g', g, 'even', g % 2 = 0, 'name', 'zoë ' || g)
FROM generate_series(1, 3000) AS g;

CREATE TABLE src.events (
    id integer PRIMARY KEY,
    owner text NOT NULL,
    what text NOT NULL,
    at timestamptz NOT NULL
);
INSERT INTO src.events
SELECT g, 'owner' || (g % 12), (ARRAY['login', 'export', 'logout'])[1 + g % 3],
       timestamptz '2025-02-01 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 2000) AS g;

-- Past the first 2,500 rows (about one 5 MiB part), sleeps fault.pace
-- seconds (default 0.04) every 50th row: a large export starts its multipart
-- upload at once, then streams for a few seconds, which is when a SIGKILL
-- leaves an upload open.
CREATE FUNCTION src.pace(g bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF g > 2500 AND g % 50 = 0 THEN
        PERFORM pg_sleep(coalesce(nullif(current_setting('fault.pace', true), '')::float8, 0.04));
    END IF;
    RETURN true;
END;
$$;
"""

# Every change of a job's state, appended by a trigger of the test's own (not
# part of exportd's schema): the history that shows no job completed twice.
AUDIT_SQL = """
CREATE SCHEMA fault_audit;
CREATE TABLE fault_audit.transitions (
    seq bigserial PRIMARY KEY,
    job_id uuid NOT NULL,
    old_state text,
    new_state text NOT NULL,
    worker_id text,
    attempts integer NOT NULL,
    at timestamptz NOT NULL
);
CREATE FUNCTION fault_audit.record() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fault_audit.transitions (job_id, old_state, new_state, worker_id, attempts, at)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state,
            NEW.worker_id, NEW.attempts, clock_timestamp());
    RETURN NULL;
END;
$$;
CREATE TRIGGER fault_audit AFTER INSERT OR UPDATE OF state ON exportd.jobs
    FOR EACH ROW EXECUTE FUNCTION fault_audit.record();
"""


@dataclass(frozen=True)
class Dataset:
    name: str
    sql: str  # with {owner} and {<param>} placeholders
    member_format: str = "csv"  # inside a zip

    def for_definition(self) -> str:
        return self.sql.format(owner=":owner", min_n=":min_n", rows=":rows")

    def for_direct(self, params: list[str]) -> str:
        """The SQL with $n placeholders: $1 the owner, then ``params`` in order."""
        names = {"owner": "$1::text"}
        names.update({p: f"${i + 2}::bigint" for i, p in enumerate(params)})
        return self.sql.format(**names)


KINDS: dict[str, list[Dataset]] = {
    "items": [
        Dataset(
            "items",
            "SELECT id, n, label, amount, at, tags FROM src.items"
            " WHERE owner = {owner} AND n >= {min_n} ORDER BY id",
        )
    ],
    "large": [
        Dataset(
            "large",
            "SELECT g AS n,"
            " (SELECT string_agg(md5((g * 64 + k)::text), '') FROM generate_series(1, 60) AS k)"
            " AS pad FROM generate_series(1, {rows}) AS g"
            " WHERE {owner} <> '' AND src.pace(g) ORDER BY g",
        )
    ],
    "bundle": [
        Dataset(
            "items",
            "SELECT id, label, amount FROM src.items WHERE owner = {owner} ORDER BY id",
        ),
        Dataset(
            "events",
            "SELECT id, what, at FROM src.events WHERE owner = {owner} ORDER BY id",
            member_format="jsonl",
        ),
    ],
}

PARAMS = {"items": ["min_n"], "large": ["rows"], "bundle": []}

DEFINITIONS = f"""
[kinds.items]
filename = "items-from-{{min_n}}"
query = "{KINDS["items"][0].for_definition()}"
[kinds.items.params.min_n]
type = "integer"
required = true
min = 0

[kinds.large]
filename = "large"
query = "{KINDS["large"][0].for_definition()}"
[kinds.large.params.rows]
type = "integer"
required = true
min = 1

[kinds.bundle]
filename = "my-data"
[kinds.bundle.datasets.items]
query = "{KINDS["bundle"][0].for_definition()}"
[kinds.bundle.datasets.events]
format = "jsonl"
query = "{KINDS["bundle"][1].for_definition()}"
"""
