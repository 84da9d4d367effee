"""A job's CSV dialect (its ``csv`` options): the COPY statement that writes it, and the
byte transforms COPY cannot do (a byte order mark, CRLF line ends). Pure but for the
sink, which only passes bytes on.

The defaults write exactly what ``COPY ... (FORMAT csv, HEADER true)`` writes: the
statement is then the named query ``copy_csv`` and the sink passes every byte as it is.
"""

from __future__ import annotations

from exportd.definitions.literals import quote
from exportd.definitions.options.model import CsvOptions
from exportd.definitions.params.spec import InvalidParams, ParamError
from exportd.export.sql_text import fill, template
from exportd.export.streams import BLOCK, ByteSink, blocks

DELIMITERS = (",", ";", "\t", "|")
LINE_TERMINATORS = ("\n", "\r\n")
BOM = b"\xef\xbb\xbf"
_DEFAULT = CsvOptions()


def dialect_problems(csv: CsvOptions) -> list[ParamError]:
    """What COPY or a reader could not make sense of in ``csv``, each named
    ``options.csv.<field>``: a delimiter other than , ; tab |, a line end other than
    LF or CRLF, a null text holding the delimiter, a quote, CR or LF (COPY refuses
    those), and a decimal comma with ',' as the delimiter (every number would split
    in two)."""
    problems: list[ParamError] = []

    def problem(field: str, rule: str, message: str) -> None:
        problems.append(ParamError(f"options.csv.{field}", rule, f"options.csv.{field}: {message}"))

    if csv.delimiter not in DELIMITERS:
        problem("delimiter", "one_of", "must be one of ',', ';', tab or '|'")
    if csv.line_terminator not in LINE_TERMINATORS:
        problem("line_terminator", "one_of", 'must be "\\n" or "\\r\\n"')
    bad = [c for c in (csv.delimiter, '"', "\r", "\n") if c and c in csv.null]
    if bad:
        problem("null", "forbidden_character", f"cannot hold {', '.join(map(repr, bad))}")
    if "\x00" in csv.null:
        problem("null", "forbidden_character", "cannot hold a NUL character")
    if csv.decimal_comma and csv.delimiter == ",":
        problem("decimal_comma", "needs_delimiter", "needs a delimiter other than ','")
    return problems


def check_dialect(csv: CsvOptions) -> None:
    """Raises InvalidParams listing ``dialect_problems(csv)``, if any."""
    problems = dialect_problems(csv)
    if problems:
        raise InvalidParams(problems)


def copy_text(sql: str, csv: CsvOptions = _DEFAULT) -> str:
    """The COPY statement writing the rows of ``sql`` as CSV in ``csv``'s dialect. With
    the default delimiter, header and null it is the named query ``copy_csv``; otherwise
    ``copy_csv_dialect`` with the delimiter and the null text as string constants."""
    if (csv.delimiter, csv.header, csv.null) == (",", True, ""):
        return fill(template("copy_csv"), {"dataset": sql})
    return fill(
        template("copy_csv_dialect"),
        {
            "dataset": sql,
            "header": "true" if csv.header else "false",
            "delimiter": quote(csv.delimiter),
            "null": quote(csv.null),
        },
    )


class CsvFileSink:
    """A CSV file's bytes on their way to ``out``: a UTF-8 byte order mark once, first
    (``bom``), and each record's LF written as CRLF (``crlf``).

    COPY (and Python's csv writer) quote every field holding a CR or an LF, and double a
    quote inside one, so an LF outside quotes ends a record and one inside is a value's:
    quote parity, carried across writes, tells them apart. A write is taken a block at a
    time, so a very large row is never copied whole. ``close`` writes the BOM of a file
    that received nothing; it does not close ``out``.
    """

    def __init__(self, out: ByteSink, *, bom: bool, crlf: bool) -> None:
        self._out = out
        self._bom_due = bom
        self._crlf = crlf
        self._quoted = False

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._crlf:
            await self._emit(data)
            return
        if len(data) <= BLOCK:
            await self._emit(self._crlf_block(data))
            return
        for view in blocks(data):
            await self._emit(self._crlf_block(bytes(view)))

    async def close(self) -> None:
        if self._bom_due:
            await self._emit(b"")

    async def _emit(self, data: bytes) -> None:
        if self._bom_due:
            self._bom_due = False
            data = BOM + data
        await self._out.write(data)

    def _crlf_block(self, data: bytes) -> bytes:
        if b'"' not in data:
            return data if self._quoted else data.replace(b"\n", b"\r\n")
        pieces = data.split(b'"')
        # Pieces alternate outside and inside quotes, starting where the last write ended.
        start = 1 if self._quoted else 0
        for i in range(start, len(pieces), 2):
            pieces[i] = pieces[i].replace(b"\n", b"\r\n")
        if len(pieces) % 2 == 0:  # an odd number of quotes flips the state
            self._quoted = not self._quoted
        return b'"'.join(pieces)


class _Passing:
    """The sink of the default dialect: every byte as it is."""

    def __init__(self, out: ByteSink) -> None:
        self._out = out

    async def write(self, data: bytes) -> None:
        await self._out.write(data)

    async def close(self) -> None:
        return None


def csv_file_sink(out: ByteSink, csv: CsvOptions) -> CsvFileSink | _Passing:
    """The sink one CSV file (a whole export, a zip member, one part of a split) is
    written through for ``csv``: it adds the BOM and the CRLF line ends the options ask
    for and passes everything else on. Call ``close`` when the file's content is all
    written (before closing ``out``)."""
    if not csv.bom and csv.line_terminator == "\n":
        return _Passing(out)
    return CsvFileSink(out, bom=csv.bom, crlf=csv.line_terminator == "\r\n")


def file_sink(out: ByteSink, encoding: str, csv: CsvOptions) -> CsvFileSink | _Passing:
    """The sink one file of ``encoding`` is written through: ``csv_file_sink`` for CSV
    rows, every byte as it is for anything else (JSON, a handler's own file)."""
    return csv_file_sink(out, csv) if encoding == "csv" else _Passing(out)
