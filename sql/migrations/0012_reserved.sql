-- exportd schema, version 12: reserved (no change).
SELECT 1;
