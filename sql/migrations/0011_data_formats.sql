-- exportd schema, version 11: the data teams' formats.
--
-- parquet, csv.zst and jsonl.zst join the formats a job (and a schedule,
-- which makes jobs) may ask for. The new lists hold the old ones, so every
-- row still passes; see 0010 for why NOT VALID then VALIDATE keeps only the
-- step's shape here.
ALTER TABLE exportd.jobs
    DROP CONSTRAINT jobs_format_known,
    ADD CONSTRAINT jobs_format_known
        CHECK (format IN ('csv', 'csv.gz', 'jsonl', 'jsonl.gz', 'json', 'zip', 'xlsx',
                          'parquet', 'csv.zst', 'jsonl.zst')) NOT VALID;
ALTER TABLE exportd.jobs VALIDATE CONSTRAINT jobs_format_known;
ALTER TABLE exportd.schedules
    DROP CONSTRAINT schedules_format_known,
    ADD CONSTRAINT schedules_format_known
        CHECK (format IN ('csv', 'csv.gz', 'jsonl', 'jsonl.gz', 'json', 'zip', 'xlsx',
                          'parquet', 'csv.zst', 'jsonl.zst')) NOT VALID;
ALTER TABLE exportd.schedules VALIDATE CONSTRAINT schedules_format_known;
