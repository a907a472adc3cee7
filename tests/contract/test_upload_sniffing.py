"""What an upload really is, named before it is read as CSV: each kind its own code and fix.

A gzip, ZIP/XLSX, PDF or old Excel file gets its name whatever its file name and content type;
UTF-16/UTF-32 text (Excel's "Unicode text") is named by its BOM; a file separated by ';', tabs
or '|' is named by its separator, not answered with "missing columns". Nothing is stored.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from harness.stack.asgi import assert_error, serve_in_process
from reference.config import load_settings

API_KEY = "test-key-sniff-5d1c"
HEADERS = {"X-DRAGONFLY-API-KEY": API_KEY}
UPLOAD = "/api/v1/intake/upload"
pytestmark = pytest.mark.anyio
COLUMNS = ["Case Number", "Plaintiff", "Defendant", "Judgment Amount", "Filing Date", "County"]
ROW = ["KGS-2024-001", "Acme Funding LLC", "John Doe", "1000.00", "01/15/2024", "Kings"]


def separated(separator: str) -> bytes:
    return (separator.join(COLUMNS) + "\r\n" + separator.join(ROW) + "\r\n").encode()


CSV = separated(",")


def xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("judgments.csv", CSV)
    return buffer.getvalue()


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings({"DATABASE_URL": database_url, "DRAGONFLY_API_KEY": API_KEY})
    async with serve_in_process(settings, secrets=[API_KEY]) as served:
        yield served.client


async def upload(client: httpx.AsyncClient, content: bytes) -> httpx.Response:
    # Named .csv and sent as text/csv: the bytes decide what the file is.
    return await client.post(
        UPLOAD, files={"file": ("judgments.csv", content, "text/csv")}, headers=HEADERS
    )


def stored(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM ops.ingest_batches), (SELECT count(*) FROM ops.job_queue)"
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(
    ("content", "status", "code", "fragment"),
    [
        (separated(";"), 400, "wrong_separator", "separated by ';' (semicolon)"),
        (separated("\t"), 400, "wrong_separator", "separated by a tab"),
        (separated("|"), 400, "wrong_separator", "separated by '|' (pipe)"),
        (gzip.compress(CSV), 415, "compressed_file", "decompress it"),
        (zipped(), 415, "zip_file", "unzip it"),
        (xlsx(), 415, "excel_file", "CSV UTF-8"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", 415, "pdf_file", "a PDF document"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, 415, "excel_file", "(.xls)"),
        (CSV.decode().encode("utf-16"), 400, "utf16_file", "save it as 'CSV UTF-8"),
        (codecs.BOM_UTF16_BE + CSV.decode().encode("utf-16-be"), 400, "utf16_file", "UTF-16 BE"),
        (CSV.decode().encode("utf-32"), 400, "utf32_file", "UTF-32"),
    ],
    ids=[
        "semicolon",
        "tab",
        "pipe",
        "gzip",
        "zip",
        "xlsx",
        "pdf",
        "xls",
        "utf16-le",
        "utf16-be",
        "utf32",
    ],
)
async def test_each_kind_of_file_is_named_with_its_fix(  # noqa: PLR0917
    client: httpx.AsyncClient,
    db_conn: psycopg.Connection[Any],
    content: bytes,
    status: int,
    code: str,
    fragment: str,
) -> None:
    response = await upload(client, content)

    assert_error(response, status, code, fragment)
    assert stored(db_conn) == (0, 0)


async def test_a_comma_file_with_semicolons_in_its_cells_passes(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    content = CSV + b'KGS-2,"Acme; Sons",Doe | Jane,12.50,01/15/2024,Kings\r\n'

    response = await upload(client, content)

    assert response.status_code == 202, response.text
    assert stored(db_conn) == (1, 1)


async def test_a_semicolon_header_with_unknown_names_is_still_named_by_its_separator(
    client: httpx.AsyncClient,
) -> None:
    response = await upload(client, b"Aktenzeichen;Klaeger;Beklagter;Betrag;Datum\r\n1;2;3;4;5\r\n")

    assert_error(response, 400, "wrong_separator", "';' (semicolon)")
