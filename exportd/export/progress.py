"""A job's progress while it exports: rows and bytes so far, and a percentage.

The percentage is an estimate: rows written against the planner's estimate of
the rows the export will have (``EXPLAIN`` of each dataset, taken before it
runs), plus the stored objects of its files datasets, each counted as one.
Planner estimates can be far off either way, so it is capped at 99 until the
export completes; 100 is only ever written with the completion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from exportd.queue.job import Progress

CAP = 99


def estimate_percent(rows: int, estimated_rows: int) -> int:
    """Rows written as a share of the estimate, 0 to 99."""
    if estimated_rows <= 0 or rows <= 0:
        return 0
    return min(CAP, rows * 100 // estimated_rows)


class BytesSource(Protocol):
    """What tells the tracker how many bytes have gone out (the upload)."""

    @property
    def bytes_written(self) -> int: ...


@dataclass
class Tracker:
    """Moves a job's counters as its datasets stream; the heartbeat records them."""

    progress: Progress
    upload: BytesSource
    estimated_rows: int = 0
    # Objects of the job's files datasets, all known before the first is read.
    files_expected: int = 0
    _done: int = field(default=0)

    def seen(self, rows_in_dataset: int) -> None:
        rows = self._done + rows_in_dataset
        self.progress.rows = rows
        self.progress.bytes = self.upload.bytes_written
        self.progress.percent = estimate_percent(
            rows + self.progress.files, self.estimated_rows + self.files_expected
        )

    def file_done(self) -> None:
        """One stored object is in the bundle (or listed as missing): files, not rows."""
        self.progress.files += 1
        self.seen(0)

    def dataset_done(self, rows: int) -> None:
        self._done += rows
        self.seen(0)

    @property
    def rows(self) -> int:
        return self._done
