"""The parts of a workbook besides its sheets' rows: the package's content types and
relationships, the workbook, its styles and document properties, and each sheet's
opening and closing. Pure, no I/O.

A sheet's XML opens with its view (the header row frozen) and column widths, then
``<sheetData>``; the rows stream; it closes with ``</sheetData>`` and the autofilter,
whose range is known by then. The workbook part, which lists the sheets, is written
after them (a zip's parts may come in any order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from exportd.export.xlsx.cells import xml_text
from exportd.export.xlsx.limits import column_letter

_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"


@dataclass(frozen=True)
class SheetEntry:
    """A finished sheet: its name, the dataset it holds, its data rows and columns."""

    name: str
    dataset: str
    rows: int
    columns: int


def sheet_path(number: int) -> str:
    return f"xl/worksheets/sheet{number}.xml"


def sheet_start(widths: Sequence[int], first: bool) -> str:
    """A sheet's XML up to and including ``<sheetData>``."""
    selected = ' tabSelected="1"' if first else ""
    pane = (
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
    )
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
        for i, w in enumerate(widths, start=1)
    )
    return (
        f'{_DECL}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}">'
        f'<sheetViews><sheetView workbookViewId="0"{selected}>{pane}</sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{cols}</cols>" if cols else "")
        + "<sheetData>\n"
    )


def filter_range(columns: int, rows: int) -> str:
    return f"A1:{column_letter(max(columns, 1) - 1)}{rows + 1}"


def sheet_end(columns: int, rows: int) -> str:
    """A sheet's XML after its last row: the autofilter over the header and the rows."""
    autofilter = f'<autoFilter ref="{filter_range(columns, rows)}"/>' if columns else ""
    return f"</sheetData>{autofilter}</worksheet>\n"


def _quoted_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def workbook(sheets: Sequence[SheetEntry]) -> str:
    entries = "".join(
        f'<sheet name={quoteattr(s.name)} sheetId="{i}" r:id="rId{i}"/>'
        for i, s in enumerate(sheets, start=1)
    )
    # Excel keeps each autofilter's range in this hidden name.
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{escape(_quoted_sheet(s.name))}!"
        f"{'$A$1:$' + column_letter(s.columns - 1) + '$' + str(s.rows + 1)}</definedName>"
        for i, s in enumerate(sheets)
        if s.columns
    )
    return (
        f'{_DECL}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f"<sheets>{entries}</sheets>"
        + (f"<definedNames>{names}</definedNames>" if names else "")
        + "</workbook>\n"
    )


def workbook_rels(sheets: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, sheets + 1)
    )
    rels += f'<Relationship Id="rId{sheets + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
    return f'{_DECL}<Relationships xmlns="{_PKG_REL}">{rels}</Relationships>\n'


def package_rels() -> str:
    return (
        f'{_DECL}<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        f'<Relationship Id="rId3" Type="{_REL}/custom-properties" Target="docProps/custom.xml"/>'
        "</Relationships>\n"
    )


def content_types(sheets: int) -> str:
    overrides = "".join(
        f'<Override PartName="/{sheet_path(i)}" ContentType="{_CT_SHEET}"/>'
        for i in range(1, sheets + 1)
    )
    return (
        f'{_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/'
        'vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/custom.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.custom-properties+xml"/>'
        f"{overrides}</Types>\n"
    )


# Style 0 plain, 1 a date, 2 a date and time, 3 the bold header (cells.*_STYLE).
STYLES = (
    f'{_DECL}<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy\\-mm\\-dd\\ hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>\n"
)


def core_properties(title: str, created: datetime) -> str:
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{_DECL}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{xml_text(title)}</dc:title><dc:creator>exportd</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        "</cp:coreProperties>\n"
    )


def custom_properties(facts: Mapping[str, str]) -> str:
    """The manifest's facts as custom document properties (File > Properties >
    Custom in Excel), each a text."""
    props = "".join(
        '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" '
        f'pid="{pid}" name={quoteattr(name)}><vt:lpwstr>{xml_text(value)}</vt:lpwstr></property>'
        for pid, (name, value) in enumerate(facts.items(), start=2)
    )
    return (
        f"{_DECL}<Properties "
        'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
        'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        f"{props}</Properties>\n"
    )
