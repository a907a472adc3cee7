"""Streaming reader of "Simplicity" CSV uploads: bytes in chunks to blocks of COPY-ready rows.

Nothing here touches the database; the Ingest Processor feeds it the upload's chunks and
COPYs each block it yields into a staging table, where SQL validates the fields.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

from reference.simplicity import COLUMN_ALIASES, HeaderError, HeaderMapping, map_header
from reference.workers.csv_records import LineTap, ends_inside_quotes

BLOCK_ROWS = 20_000  # rows per yielded block: bounds memory, and each block is one COPY
RAW_ROW_LIMIT = 1_000  # characters of a rejected row kept for the operator
READ_BUFFER = 1 << 16  # bytes the decoder reads at a time
STAGED_COLUMNS = (
    "case_number",
    "plaintiff",
    "defendant",
    "judgment_amount",
    "filing_date",
    "county",
)
# COPY text format: these must be escaped inside a field.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_INVALID_BYTES = "dragonfly-nul"
# A random (version 4) UUID's 7th byte is 0x4?, its 9th 0b10??????.
_UUID_VERSION = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_UUID_VARIANT = bytes((byte & 0x3F) | 0x80 for byte in range(256))


def _bytes_to_nul(error: UnicodeError) -> tuple[str, int]:
    # Bytes that are not UTF-8 become NUL, which no valid text holds (Postgres refuses it),
    # so their rows are rejected one by one instead of failing the whole file.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "\x00", error.end


codecs.register_error(_INVALID_BYTES, _bytes_to_nul)


class FileStructureError(ValueError):
    """The file has no usable header row; the message says what to fix."""


class _ChunkStream(io.RawIOBase):
    """The upload's chunks as one readable binary stream (no copy of a chunk beyond a slice)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk = memoryview(chunk)
        size = min(len(buffer), len(self._chunk))
        buffer[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode UTF-8 chunks (BOM dropped, characters split across chunks joined) into lines.

    newline="": lines end at \r\n, \n or a lone \r and keep their ends, as csv wants; nothing
    else (not U+2028 and the like) splits a line.
    """
    return io.TextIOWrapper(
        io.BufferedReader(_ChunkStream(chunks), buffer_size=READ_BUFFER),
        encoding="utf-8-sig",
        errors=_INVALID_BYTES,
        newline="",
    )


@dataclass(frozen=True)
class Rejected:
    """A row the parser could not stage; the message says what is wrong and how to fix it."""

    row_number: int
    error_code: str
    message: str
    raw_row: str | None


@dataclass
class Block:
    """Up to BLOCK_ROWS rows as COPY text, and the rows rejected while reading them."""

    copy_text: str = ""
    staged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def _raw(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()[:RAW_ROW_LIMIT].replace("\x00", "\ufffd")


def _is_blank(fields: list[str]) -> bool:
    return not "".join(fields).strip()


def _is_header(fields: list[str]) -> bool:
    try:
        map_header(fields)
    except HeaderError:
        return False
    return True


class SimplicityReader:
    """Reads the header of a Simplicity CSV, then yields its data rows in blocks."""

    def __init__(self, chunks: Iterable[bytes], block_rows: int | None = None) -> None:
        self._lines = iter_lines(chunks)
        self._tap = LineTap(self._lines)
        self._records = csv.reader(self._tap, strict=False)
        self.block_rows = block_rows or BLOCK_ROWS
        # Spreadsheet rows: the header is row 1 (later if blank lines precede it), and blank
        # lines count though they are skipped, so a row number finds the row in Excel.
        self.row_number = 0  # the last record read
        self._mapping: HeaderMapping | None = None
        self._width = 0

    def header(self) -> HeaderMapping:
        """Map the first non-blank row; FileStructureError or HeaderError when it is unusable."""
        if self._mapping is not None:
            return self._mapping
        try:
            for fields in self._records:
                self.row_number += 1
                if not _is_blank(fields):
                    break
            else:
                raise FileStructureError(
                    "the file has no header row: the first line must name the columns, "
                    "e.g. Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County"
                )
        except csv.Error as error:
            raise FileStructureError(
                f"row {self.row_number + 1} (the header) is not valid CSV ({error}); "
                "check it for an unclosed double quote"
            ) from None
        self._mapping = map_header(fields)
        self._width = len(fields)
        # What a case-number cell of a repeated header row holds (lower-cased): its own spelling
        # and every alias, so a second export's header is caught whichever alias it uses.
        case_cell = fields[self._mapping.positions["case_number"]].strip().lower()
        self._header_case_cells = frozenset({case_cell, *COLUMN_ALIASES["case_number"]})
        return self._mapping

    def copy_columns(self) -> tuple[str, ...]:
        """The staging columns each COPY row fills, after row_number."""
        positions = self.header().positions
        return tuple(column for column in STAGED_COLUMNS if column in positions)

    def blocks(self) -> Iterator[Block]:
        """The data rows in blocks; each has its COPY text and its rejected rows."""
        positions = self.header().positions
        pick = itemgetter(*(positions[column] for column in self.copy_columns()))
        width, strip, join = self._width, str.strip, "".join
        case_at, header_cells = positions["case_number"], self._header_case_cells
        rows: list[list[str]] = []
        rejected: list[Rejected] = []
        self._tap.taken.clear()  # the header's lines
        reading = True
        while reading:
            tap, taken = self._tap, self._tap.taken
            clear = taken.clear
            try:
                # The hot loop: no per-field Python beyond strip; SQL validates the rest.
                for fields in self._records:
                    self.row_number += 1
                    if tap.exhausted and ends_inside_quotes("".join(taken)):
                        rejected.append(self._unclosed_quote(taken[0]))
                        self._read_again(taken[1:])
                        break
                    clear()
                    if len(fields) == width and join(fields).strip():
                        if strip(fields[case_at]).lower() in header_cells and _is_header(fields):
                            rejected.append(self._repeated_header(fields))
                            continue
                        rows.append([str(self.row_number), *map(strip, pick(fields))])
                        if len(rows) >= self.block_rows:
                            yield _block(rows, rejected)
                            rows, rejected = [], []
                    elif _is_blank(fields):
                        pass
                    elif _is_header(fields):
                        rejected.append(self._repeated_header(fields))
                    else:
                        rejected.append(self._wrong_width(fields))
                else:
                    reading = False
            except csv.Error as error:
                # With strict=False the one error csv raises is a field over
                # csv.field_size_limit(): a huge cell, or an unclosed quote swallowing lines.
                self.row_number += 1
                lines = list(taken)
                quoted = ends_inside_quotes("".join(lines))
                rejected.append(self._too_long(str(error), quoted))
                # A quote left open swallowed the later lines: read them again. Otherwise the
                # record is one row (its fields may span lines): go on after it.
                self._read_again(lines[1:] if quoted else [])
        if rows or rejected:
            yield _block(rows, rejected)

    def _read_again(self, lines: list[str]) -> None:
        """Go on reading at `lines` (a rejected record's later lines), then the rest of the file."""
        self._tap = LineTap(chain(lines, self._lines))
        self._records = csv.reader(self._tap, strict=False)

    def _unclosed_quote(self, first_line: str) -> Rejected:
        return Rejected(
            self.row_number,
            "unclosed_quote",
            f"A double quote opens in row {self.row_number} and is never closed, so it would "
            'swallow every later row: close it (a quote inside a field is written twice, ""); '
            "the rows after it were read on their own",
            first_line.rstrip("\r\n")[:RAW_ROW_LIMIT].replace("\x00", "\ufffd"),
        )

    def _too_long(self, error: str, quoted: bool) -> Rejected:
        if quoted:
            message = (
                f"The row cannot be read ({error}): a double quote is probably never closed "
                f"(it opens in row {self.row_number}); close it, or shorten the field; the rows "
                "after it were read on their own"
            )
        else:
            message = (
                f"The row has a field longer than {csv.field_size_limit()} characters: shorten "
                "it, or check that the row's fields are separated by commas"
            )
        return Rejected(self.row_number, "field_too_long", message, None)

    def _repeated_header(self, fields: list[str]) -> Rejected:
        return Rejected(
            self.row_number,
            "repeated_header",
            f"Row {self.row_number} is a header row again (two exports pasted into one file?): "
            "delete it; the rows after it were read as data",
            _raw(fields),
        )

    def _wrong_width(self, fields: list[str]) -> Rejected:
        return Rejected(
            self.row_number,
            "wrong_column_count",
            f"The row has {len(fields)} fields but the header has {self._width}: quote fields "
            "that contain commas, and keep one field per header column",
            _raw(fields),
        )


def _block(rows: list[list[str]], rejected: list[Rejected]) -> Block:
    ids = random_uuids(len(rows))
    for row, start in zip(rows, range(0, len(ids), 32), strict=True):
        row.append(ids[start : start + 32])  # the judgment's id, should the row become one
    text = _copy_text(rows)
    if "\x00" in text:  # rare: only then look for the rows that hold it
        rejected = [*rejected, *(_invalid_text(row) for row in rows if "\x00" in "".join(row))]
        rows = [row for row in rows if "\x00" not in "".join(row)]
        text = _copy_text(rows)
    return Block(text, len(rows), rejected)


def random_uuids(count: int) -> str:
    """`count` random (version 4) UUIDs as 32 hex digits each, from the OS's CSPRNG at once.

    The judgments' ids: one os.urandom call for a block costs far less than a
    gen_random_uuid() call per row on a server built without OpenSSL.
    """
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_UUID_VERSION)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    return raw.hex()


def _copy_text(rows: list[list[str]]) -> str:
    """Rows in COPY text format (tab-separated, empty field = NULL)."""
    if not rows:
        return ""
    text = "\n".join(map("\t".join, rows)) + "\n"
    # Fast path: no field held a tab, line end or backslash, so nothing needed escaping.
    tabs = len(rows) * (len(rows[0]) - 1)
    if (
        text.count("\t") == tabs
        and text.count("\n") == len(rows)
        and "\\" not in text
        and "\r" not in text
    ):
        return text
    escaped = ([value.translate(_COPY_ESCAPES) for value in row] for row in rows)
    return "\n".join(map("\t".join, escaped)) + "\n"


def _invalid_text(row: list[str]) -> Rejected:
    number = int(row[0])
    return Rejected(
        number,
        "invalid_text",
        "The row contains a NUL character or bytes that are not UTF-8: re-save the file as "
        "UTF-8 text (in Excel: CSV UTF-8)",
        _raw(row[1:-1]),  # neither the row number nor the id
    )
