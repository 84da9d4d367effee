"""Reading a workbook back two ways: openpyxl (typed cells) and LibreOffice headless
(converted to CSV, every sheet, as Calc shows it)."""

from __future__ import annotations

import csv
import io
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import openpyxl

# Calc's CSV filter: comma, double quote, UTF-8, from line 1, standard cell
# formats, quote all text no, detect special numbers no, save cell contents as
# shown, export formulas no, remove space no, every sheet (-1: one file each).
_ALL_SHEETS = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


def openpyxl_sheets(body: bytes) -> dict[str, list[list[Any]]]:
    """Each sheet's rows of values, header first, by sheet name in order."""
    book = openpyxl.load_workbook(io.BytesIO(body))
    return {
        sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)]
        for sheet in book.worksheets
    }


def libreoffice_sheets(body: bytes, names: list[str]) -> dict[str, list[list[str]]]:
    """Each sheet as LibreOffice Calc reads and writes it as CSV. A profile of its own
    per call, so that conversions running at once never share one."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "book.xlsx").write_bytes(body)
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation={(root / 'profile').as_uri()}",
                "--headless",
                "--convert-to",
                _ALL_SHEETS,
                "--outdir",
                str(root / "out"),
                str(root / "book.xlsx"),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        out: dict[str, list[list[str]]] = {}
        for name in names:
            path = root / "out" / f"book-{name}.csv"
            if len(names) == 1 and not path.exists():
                path = root / "out" / "book.csv"
            out[name] = list(csv.reader(io.StringIO(path.read_text("utf-8"), newline="")))
        return out
