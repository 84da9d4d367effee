"""The ``parquet`` format: one typed, columnar file per dataset, written in row groups.

Column types are decided from the prepared statement (``mapping``); Postgres writes
each column in a form Arrow's CSV reader parses exactly (``sql/queries.sql``,
``parquet_*``); blocks of whole rows become row groups in a thread (``arrow``), each
written at once into the upload (``writer``). pyarrow comes with the optional extra
``exportd[parquet]``; ``exportd.definitions.offered_formats.parquet_installed`` says
whether it is there, and nothing here is imported without it.
"""
