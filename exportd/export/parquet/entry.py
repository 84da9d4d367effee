"""Where the export engine enters the parquet writer. pyarrow is imported only here,
when a parquet file is written, so a daemon without ``exportd[parquet]`` runs every
other format (and refuses parquet first: ``offered_formats.not_installed``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import asyncpg

from exportd.definitions.kinds import Kind
from exportd.export.streams import ByteSink

if TYPE_CHECKING:
    from exportd.export.parquet.writer import ParquetRows


def open_parquet(
    into: ByteSink, zone: str, kind: Kind, split_rows: int | None, what: str
) -> ParquetRows:
    """The sink of a dataset's CSV rows (``parquet_copy``) as a parquet file written into
    ``into``: timestamptz annotated with ``zone``, the kind's codec, row groups of at most
    ``split_rows`` rows (the job's option) or ``writer.GROUP_ROWS``."""
    from exportd.export.parquet.writer import GROUP_ROWS, ParquetRows

    rows = split_rows or GROUP_ROWS
    return ParquetRows(into, zone, kind.parquet_compression, what, rows)


async def parquet_rows(
    conn: asyncpg.Connection,
    sql: str,
    target: ParquetRows,
    out: ByteSink,
    seen: Callable[[int], None],
    labels: Mapping[str, str],
    what: str,
) -> int:
    """``source.copy_parquet``; the block being encoded is stopped should it fail."""
    from exportd.export.parquet.source import copy_parquet

    try:
        return await copy_parquet(conn, sql, target, out, seen, labels, what)
    except BaseException:
        target.discard()
        raise
