"""A workbook written as a stream into a zip (``ZipBundle``): sheets one after the
other, each dataset's rows cut into sheets at the sheet's capacity.

Rows arrive as SpreadsheetML, one ``<row>...</row>`` per line (Postgres writes them
so through COPY; handler rows are encoded in ``cells``): the writer counts lines and
never parses a row. What it holds is a block per stream, as every zip member does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from exportd.definitions.options.model import XlsxPolicy
from exportd.errors import ErrorKind, ExportError
from exportd.export.streams import ByteSink
from exportd.export.xlsx import parts
from exportd.export.xlsx.cells import header_row
from exportd.export.xlsx.limits import (
    MAX_CELL_CHARS,
    MAX_SHEET_ROWS,
    next_row,
    sheet_base,
    sheet_capacity,
    sheet_name,
)
from exportd.export.zip_stream import ZipBundle, ZipMember

# What Postgres writes in place of a row's cell over Excel's limit when the kind says
# ``long_text = "fail"``; text never holds it (it is one of the characters XML cannot
# hold, replaced in every text).
TOO_LONG_MARK = b"\x03"


class Workbook:
    """One xlsx file: ``sheets(dataset)`` for each dataset in turn, then ``close``."""

    def __init__(
        self,
        out: ByteSink,
        generated_at: datetime,
        policy: XlsxPolicy,
        split_rows: int | None,
        max_rows: int = MAX_SHEET_ROWS,
    ) -> None:
        self._bundle = ZipBundle(out, generated_at)
        self._generated_at = generated_at
        self.policy = policy
        self._split_rows = split_rows
        self._max_rows = max_rows
        self.sheets: list[parts.SheetEntry] = []

    def dataset(self, name: str, what: str) -> SheetRows:
        """The sink of dataset ``name``'s rows (``what`` names it in errors)."""
        return SheetRows(self, name, what)

    def discard(self) -> None:
        self._bundle.discard()

    async def close(self, kind: str, owner: str, job_id: str, params: Mapping[str, Any]) -> None:
        """Write the workbook's own parts after its sheets, then the zip's directory. What
        a zip bundle's manifest says is in the custom document properties."""
        count = len(self.sheets)
        title = kind
        facts = {
            "exportd.kind": kind,
            "exportd.owner": owner,
            "exportd.job_id": job_id,
            "exportd.generated_at": self._generated_at.isoformat(),
            "exportd.params": json.dumps(params, ensure_ascii=False, sort_keys=True),
            "exportd.sheets": json.dumps(
                [{"sheet": s.name, "dataset": s.dataset, "rows": s.rows} for s in self.sheets],
                ensure_ascii=False,
            ),
        }
        for name, text in (
            ("xl/workbook.xml", parts.workbook(self.sheets)),
            ("xl/_rels/workbook.xml.rels", parts.workbook_rels(count)),
            ("xl/styles.xml", parts.STYLES),
            ("docProps/core.xml", parts.core_properties(title, self._generated_at)),
            ("docProps/custom.xml", parts.custom_properties(facts)),
            ("_rels/.rels", parts.package_rels()),
            ("[Content_Types].xml", parts.content_types(count)),
        ):
            await self._bundle.add(name, text.encode("utf-8"))
        await self._bundle.close()

    def _next_name(self, base: str, part: int) -> str:
        return sheet_name(base, part, [s.name for s in self.sheets])

    def _member(self, number: int) -> ZipMember:
        return self._bundle.member(parts.sheet_path(number))


class SheetRows:
    """A ``ByteSink`` of one dataset's rows (whole lines, in blocks of any size), cut
    into sheets of the workbook. ``begin(labels, widths)`` first; ``finish()`` last,
    which returns the dataset's rows."""

    def __init__(self, book: Workbook, dataset: str, what: str) -> None:
        self._book = book
        self._dataset = dataset
        self._what = what
        self._base = sheet_base(dataset)
        self._labels: Sequence[str] = ()
        self._widths: Sequence[int] = ()
        self._member: ZipMember | None = None
        self._name = ""
        self._part = 0
        self._in_sheet = 0  # whole rows in the open sheet
        self.rows = 0  # whole rows of the dataset

    @property
    def begun(self) -> bool:
        return self._part > 0

    async def begin(self, labels: Sequence[str], widths: Sequence[int]) -> None:
        self._labels, self._widths = labels, widths
        await self._open()

    async def write(self, data: bytes) -> None:
        if TOO_LONG_MARK in data:
            row = self.rows + data[: data.index(TOO_LONG_MARK)].count(b"\n") + 1
            raise ExportError(
                ErrorKind.TOO_LARGE,
                f"{self._what}: row {row:,} has a value longer than Excel's "
                f"{MAX_CELL_CHARS:,} characters per cell, and the kind's xlsx long_text "
                "is 'fail'",
            )
        while data:
            room = sheet_capacity(self._book._split_rows, self._book._max_rows) - self._in_sheet
            lines = data.count(b"\n")
            # A row begun at the end of ``data`` needs room too.
            if lines + (not data.endswith(b"\n")) <= room:
                await self._put(data, lines)
                return
            cut = _after_line(data, room)
            await self._put(data[:cut], room)
            data = data[cut:]
            action = next_row(
                self._in_sheet, self._book._split_rows, self._book.policy, self._book._max_rows
            )
            if action == "fail":
                raise ExportError(
                    ErrorKind.TOO_LARGE,
                    f"{self._what} has more than Excel's {self._book._max_rows:,} rows per "
                    "sheet, and the kind's xlsx rows_over_limit is 'fail'; narrow the export "
                    "or ask for csv",
                )
            await self._close_sheet()
            await self._open()

    async def finish(self) -> int:
        await self._close_sheet()
        return self.rows

    async def _put(self, data: bytes, lines: int) -> None:
        assert self._member is not None
        if data:
            await self._member.write(data)
        self._in_sheet += lines
        self.rows += lines

    async def _open(self) -> None:
        self._part += 1
        self._name = self._book._next_name(self._base, self._part)
        number = len(self._book.sheets) + 1
        self._member = self._book._member(number)
        start = parts.sheet_start(self._widths, first=number == 1)
        await self._member.write((start + header_row(self._labels)).encode("utf-8"))
        self._in_sheet = 0

    async def _close_sheet(self) -> None:
        if self._member is None:
            return
        end = parts.sheet_end(len(self._labels), self._in_sheet)
        await self._member.write(end.encode("utf-8"))
        await self._member.close()
        self._member = None
        self._book.sheets.append(
            parts.SheetEntry(self._name, self._dataset, self._in_sheet, len(self._labels))
        )


def _after_line(data: bytes, lines: int) -> int:
    """The offset just after the ``lines``-th newline of ``data`` (0 for none)."""
    at = 0
    for _ in range(lines):
        at = data.index(b"\n", at) + 1
    return at
