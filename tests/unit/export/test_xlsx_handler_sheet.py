"""A handler's rows as a sheet: its keys as the columns, headed as CSV heads them."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import openpyxl

from exportd.definitions.options.model import XlsxPolicy
from exportd.export.xlsx.sheets import HandlerSheet, SheetJob
from exportd.export.xlsx.writer import Workbook

Rows = list[dict[object, object]]


class _Memory:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data

    async def close(self) -> None:
        return None


async def _sheet_of(rows: Rows, wanted: list[str] | None) -> list[list[object]]:
    out = _Memory()
    book = Workbook(out, datetime(2025, 1, 1, tzinfo=UTC), XlsxPolicy(), None)
    job = SheetJob(book.dataset("d", "d"), wanted, {"2": "Two"}, "UTC", "truncate", "d")
    sheet = HandlerSheet(job)
    data = await sheet.encode(rows)  # type: ignore[arg-type]
    await job.sheet.write(data)
    await sheet.finish()
    await book.close("k", "o", "j", {})
    loaded = openpyxl.load_workbook(io.BytesIO(bytes(out.data)))
    return [list(r) for r in loaded.worksheets[0].iter_rows(values_only=True)]


async def test_keys_that_are_not_text_are_headed_and_chosen_by_their_text() -> None:
    rows: Rows = [{1: "a", 2: 5, None: True}]
    assert await _sheet_of(rows, None) == [["1", "Two", "None"], ["a", 5, True]]
    assert await _sheet_of(rows, ["2", "1"]) == [["Two", "1"], [5, "a"]]
