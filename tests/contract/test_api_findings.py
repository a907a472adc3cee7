"""The findings of issue 11 (schemathesis and hostile CSVs against the running API), pinned.

Each test failed before its fix; the issue's text gives the before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from harness.stack.asgi import assert_error, serve_in_process
from reference.api.errors import ApiError
from reference.api.uploads import check_csv
from reference.config import load_settings

API_KEY = "test-key-findings-5d0e9a"
HEADERS = {"X-DRAGONFLY-API-KEY": API_KEY}
UPLOAD = "/api/v1/intake/upload"
MISSING = "00000000-0000-4000-8000-000000000000"
HEADER_ROW = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(api_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings({"DATABASE_URL": api_database_url, "DRAGONFLY_API_KEY": API_KEY})
    async with serve_in_process(settings, secrets=[API_KEY]) as served:
        yield served.client


def count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


# --- 1: an offset past bigint was a 500 --------------------------------------------------------


@pytest.mark.parametrize("offset", ["9223372036854775808", "9223372036854775807", "1000000001"])
async def test_an_error_offset_past_the_maximum_is_422_not_500(
    client: httpx.AsyncClient, offset: str
) -> None:
    response = await client.get(f"/api/v1/intake/batches/{MISSING}/errors?offset={offset}")

    assert_error(response, 422, "invalid_request", "query parameter 'offset'")


async def test_the_schema_gives_every_integer_query_parameter_a_maximum(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter["schema"].get("type") == "integer":
                    assert "maximum" in parameter["schema"], (path, parameter["name"])


# --- 2: the upload's schema did not say the file is CSV ----------------------------------------


async def test_an_upload_built_from_the_schema_alone_is_accepted(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    """What a generator reads (encoding, file name, example) makes a request that gets 202."""
    spec = (await client.get("/openapi.json")).json()
    media = spec["paths"][UPLOAD]["post"]["requestBody"]["content"]["multipart/form-data"]
    [field_name] = media["schema"]["required"]
    encoding = media["encoding"][field_name]
    disposition = encoding["headers"]["Content-Disposition"]["schema"]["example"]
    filename = disposition.split('filename="', 1)[1].rstrip('"')
    example = media["schema"]["properties"][field_name]["examples"][0]

    response = await client.post(
        UPLOAD,
        files={field_name: (filename, example.encode(), encoding["contentType"])},
        headers=HEADERS,
    )

    assert encoding["contentType"] == "text/csv"
    assert filename.endswith(".csv")
    assert response.status_code == 202, response.text
    assert count(db_conn, "ops.ingest_batches") == 1


# --- 3: a malformed body was read before the key was checked -----------------------------------


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/v1/enforcement/strategy", b'{"judgment_id": ', "application/json"),
        ("/api/v1/enforcement/drafting", b"\xff\xfe{}", "application/json"),
        ("/api/v1/enforcement/strategy", b"x" * 100_000, "application/json"),
        (UPLOAD, b"not a form", "text/plain"),
    ],
    ids=["malformed-json", "not-utf8", "oversized", "not-multipart"],
)
@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["no-key", "wrong-key"])
async def test_a_write_without_the_key_is_401_whatever_its_body(  # noqa: PLR0917 - pytest passes by name
    client: httpx.AsyncClient,
    db_conn: psycopg.Connection[Any],
    path: str,
    body: bytes,
    content_type: str,
    key: str | None,
) -> None:
    headers = {"Content-Type": content_type, **({"X-DRAGONFLY-API-KEY": key} if key else {})}

    response = await client.post(path, content=body, headers=headers)

    assert_error(response, 401, "invalid_api_key", "X-DRAGONFLY-API-KEY")
    assert count(db_conn, "ops.job_queue") == 0


async def test_a_write_without_the_key_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    pulled = [0]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            pulled[0] += 1
            yield b" " * 1024

    response = await client.post(
        "/api/v1/enforcement/strategy",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 401, "invalid_api_key", "missing X-DRAGONFLY-API-KEY")
    assert pulled[0] <= 1  # at most what the transport reads ahead


async def test_a_json_body_that_is_not_utf8_names_the_encoding(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/enforcement/strategy",
        content='{"judgment_id": "é"}'.encode("latin-1"),
        headers={**HEADERS, "Content-Type": "application/json"},
    )

    assert_error(response, 400, "malformed_json", "UTF-8")
    assert "There was an error parsing the body" not in response.text


# --- 6: a column named twice was reported as missing_columns -----------------------------------


def test_a_header_naming_a_column_twice_is_duplicate_columns() -> None:
    content = b"Case Number,Plaintiff,Defendant,Amount,Judgment Amount,Filing Date\r\n"

    with pytest.raises(ApiError) as raised:
        check_csv(content)

    assert (raised.value.status, raised.value.code) == (400, "duplicate_columns")
    assert "Judgment Amount" in raised.value.message
    assert "missing" not in raised.value.message


async def test_a_duplicate_column_upload_is_400_and_stores_nothing(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    content = (HEADER_ROW.rstrip("\r\n") + ",County\r\n").encode()

    response = await client.post(
        UPLOAD, files={"file": ("j.csv", content, "text/csv")}, headers=HEADERS
    )

    assert_error(response, 400, "duplicate_columns", "named twice: County")
    assert count(db_conn, "ops.ingest_batches") == 0


# --- found by tests/hostile: a file whose lines end in a lone CR was refused -------------------


async def test_a_file_with_carriage_return_line_endings_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    content = (HEADER_ROW + "CV-1,P,D,1,1/1/2024,K\r\n").replace("\r\n", "\r").encode()

    response = await client.post(
        UPLOAD, files={"file": ("mac.csv", content, "text/csv")}, headers=HEADERS
    )

    assert response.status_code == 202, response.text
