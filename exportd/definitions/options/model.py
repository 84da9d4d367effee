"""The resolved options of one job: every field concrete, defaults filled. Pure.

A job's ``options`` document (``exportd.jobs.options``) is merged over its kind's
defaults (``[kinds.NAME.options]``) into a ``JobOptions``; the export reads only this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

CsvProfile = Literal["rfc4180", "excel"]
BigNumbers = Literal["number", "string"]
# What an xlsx export does past Excel's 1,048,575 data rows per sheet.
RowsOverLimit = Literal["new_sheet", "fail"]
# What an xlsx export does with a text over Excel's 32,767 characters per cell.
LongText = Literal["truncate", "fail"]


@dataclass(frozen=True)
class CsvOptions:
    """The CSV dialect. The defaults are ``rfc4180``: byte for byte what ``COPY ...
    (FORMAT csv, HEADER)`` writes. The ``excel`` profile changes the defaults of
    ``bom``, ``line_terminator`` and ``formula_guard``; a value given explicitly wins."""

    profile: CsvProfile = "rfc4180"
    delimiter: str = ","  # one of , ; \t |
    bom: bool = False  # a UTF-8 byte order mark first
    header: bool = True
    null: str = ""  # the text written for NULL
    line_terminator: str = "\n"  # "\n" or "\r\n"
    formula_guard: bool = False  # OWASP: a leading ' before = + - @ tab CR in text columns
    decimal_comma: bool = False  # numeric columns with "," as the decimal mark


@dataclass(frozen=True)
class JsonOptions:
    big_numbers: BigNumbers = "number"


@dataclass(frozen=True)
class XlsxPolicy:
    """A kind's choices for Excel's limits (``[kinds.NAME.xlsx]``); not a job option."""

    rows_over_limit: RowsOverLimit = "new_sheet"
    long_text: LongText = "truncate"


@dataclass(frozen=True)
class JobOptions:
    # None: the daemon's EXPORTD_EXPORT_TIMEZONE.
    timezone: str | None = None
    # Output columns by name, in order, for every dataset (None: all, as the query has
    # them); ``dataset_columns`` overrides it per dataset name.
    columns: tuple[str, ...] | None = None
    dataset_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    csv: CsvOptions = field(default_factory=CsvOptions)
    json: JsonOptions = field(default_factory=JsonOptions)
    # At most this many rows per file (per sheet in xlsx); None: one file.
    split_rows: int | None = None

    def columns_for(self, dataset: str) -> tuple[str, ...] | None:
        """The columns a dataset is written with, in order; None for all of them."""
        return self.dataset_columns.get(dataset, self.columns)


DEFAULT_OPTIONS = JobOptions()
DEFAULT_XLSX = XlsxPolicy()
