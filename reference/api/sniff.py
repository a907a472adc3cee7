"""What an upload really is, found from its bytes before it is read as CSV.

A file's name and declared type say little: a gzip or PDF file renamed .csv and sent as
text/csv, Excel's "Unicode text" (UTF-16) or a semicolon-separated export all used to get
answers about UTF-8 bytes or missing columns. Each is named here, with the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence

from reference.api.errors import ApiError
from reference.simplicity import HeaderError, map_header

SAVE_AS_CSV = "open it in Excel (or your spreadsheet) and save it as 'CSV UTF-8 (Comma delimited)'"
# (magic bytes at offset 0, error code, what the file is)
_BINARY_KINDS: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "compressed_file", "a gzip-compressed file"),
    (b"PK\x03\x04", "zip_file", "a ZIP archive"),
    (b"PK\x05\x06", "zip_file", "an empty ZIP archive"),
    (b"%PDF-", "pdf_file", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "excel_file", "an Excel workbook (.xls)"),
    (b"BZh", "compressed_file", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "compressed_file", "an xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "compressed_file", "a 7-Zip archive"),
)
_FIXES = {
    "compressed_file": "decompress it and upload the .csv inside",
    "zip_file": "unzip it and upload the .csv inside",
    "excel_file": SAVE_AS_CSV,
    "pdf_file": "export the judgments from the source system as CSV instead (a PDF holds no rows "
    "to read)",
}
# Checked longest first: a UTF-32 LE BOM starts with the UTF-16 LE one.
_UNICODE_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)
SEPARATORS = {";": "';' (semicolon)", "\t": "a tab", "|": "'|' (pipe)"}


def _is_xlsx(content: bytes) -> bool:
    # An .xlsx is a ZIP whose first entries name the workbook's parts.
    head = content[:4096]
    return b"[Content_Types].xml" in head or b"xl/" in head


def check_file_kind(content: bytes) -> None:
    """Raise the 415 that names a compressed, archived, PDF or Excel file, whatever its name."""
    for magic, found, described in _BINARY_KINDS:
        if content.startswith(magic):
            code, kind = found, described
            if code == "zip_file" and _is_xlsx(content):
                code, kind = "excel_file", "an Excel workbook (.xlsx)"
            raise ApiError(
                415,
                code,
                f"the file is {kind}, not CSV text (whatever its name or content type): "
                f"{_FIXES[code]}",
            )


def check_unicode_bom(content: bytes) -> None:
    """Raise the 400 that names a UTF-16 or UTF-32 file (Excel's "Unicode text") by its BOM."""
    for bom, encoding in _UNICODE_BOMS:
        if content.startswith(bom):
            code = "utf32_file" if "32" in encoding else "utf16_file"
            raise ApiError(
                400,
                code,
                f"the file is {encoding} text (Excel's 'Unicode text'), not UTF-8: "
                f"{SAVE_AS_CSV}, and upload that file",
            )


def _maps(fields: Sequence[str]) -> bool:
    try:
        map_header(fields)
    except HeaderError:
        return False
    return True


def wrong_separator(header_line: str) -> str | None:
    """The separator (';', tab or '|') the header row is split by, when it is not commas."""
    best, best_count = None, 1
    for separator in SEPARATORS:
        fields = next(csv.reader(io.StringIO(header_line), delimiter=separator), [])
        if _maps(fields):
            return separator
        count = header_line.count(separator)
        if count > best_count:
            best, best_count = separator, count
    # No alias matched under any separator: name the one that splits the row, if commas do not.
    return best if best is not None and "," not in header_line else None


def separator_error(separator: str) -> ApiError:
    return ApiError(
        400,
        "wrong_separator",
        f"the file is separated by {SEPARATORS[separator]}, not commas: export it as "
        "comma-separated CSV (in Excel: Save As 'CSV UTF-8 (Comma delimited)'), or replace the "
        "separators with commas",
    )
