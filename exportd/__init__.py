"""exportd: a Postgres-backed export daemon that streams query results to S3."""

__version__ = "0.1.0"
