"""Contract of the Intake Station: POST /api/v1/intake/upload and the batch endpoints."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from harness.stack.asgi import assert_error, serve_in_process
from harness.waiting import wait_until_async
from reference.api.errors import ApiError
from reference.api.uploads import check_csv
from reference.config import load_settings

API_KEY = "test-key-3b9e61d0c4f7a2"
HEADERS = {"X-DRAGONFLY-API-KEY": API_KEY}
UPLOAD = "/api/v1/intake/upload"
LIMIT = 2048  # MAX_UPLOAD_BYTES of these tests
pytestmark = pytest.mark.anyio
HEADER_ROW = b"Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
VALID_CSV = HEADER_ROW + b'2024-CV-0001,Acme Funding LLC,John Doe,"$1,234.56",01/15/2024,Kings\r\n'


@pytest.fixture
async def client(api_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (see harness.stack.asgi), with the API key and the upload limit above."""
    settings = load_settings(
        {
            "DATABASE_URL": api_database_url,
            "DRAGONFLY_API_KEY": API_KEY,
            "MAX_UPLOAD_BYTES": str(LIMIT),
        }
    )
    async with serve_in_process(settings, secrets=[API_KEY]) as served:
        yield served.client


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    filename: str = "judgments.csv",
    content_type: str = "text/csv",
    *,
    force: bool = False,
) -> httpx.Response:
    return await client.post(
        UPLOAD,
        params={"force": "true"} if force else None,
        files={"file": (filename, content, content_type)},
        headers=HEADERS,
    )


def one_row(conn: psycopg.Connection[Any], sql: str, *params: Any) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return tuple(row)


def batch_count(conn: psycopg.Connection[Any]) -> int:
    return int(one_row(conn, "SELECT count(*) FROM ops.ingest_batches")[0])


# --- the happy path and duplicates ---------------------------------------------------------


async def test_an_upload_stores_the_batch_the_bytes_and_a_job(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    sha256 = hashlib.sha256(VALID_CSV).hexdigest()
    response = await upload(client, VALID_CSV, "export 2024.csv")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {
        "batch_id": body["batch_id"],
        "job_id": body["job_id"],
        "status": "queued",
        "filename": "export 2024.csv",
        "size_bytes": len(VALID_CSV),
        "sha256": sha256,
    }
    filename, digest, size, status, job_id = one_row(
        db_conn,
        "SELECT filename, file_sha256, size_bytes, status::text, job_id::text "
        "FROM ops.ingest_batches WHERE id = %s",
        body["batch_id"],
    )
    assert (filename, digest, size, status) == ("export 2024.csv", sha256, len(VALID_CSV), "queued")
    assert job_id == body["job_id"]
    stored = one_row(
        db_conn, "SELECT content FROM ops.ingest_uploads WHERE batch_id = %s", body["batch_id"]
    )
    assert bytes(stored[0]) == VALID_CSV
    job = one_row(
        db_conn,
        "SELECT job_type, status::text, idempotency_key, payload FROM ops.job_queue WHERE id = %s",
        body["job_id"],
    )
    assert job == ("ingest_csv", "pending", sha256, {"batch_id": body["batch_id"]})
    assert batch_count(db_conn) == 1


async def test_the_same_file_again_is_409_naming_the_first_batch(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    first = (await upload(client, VALID_CSV)).json()

    again = await upload(client, VALID_CSV, "renamed.csv")

    assert_error(again, 409, "duplicate_file", first["batch_id"])
    assert "force=true" in again.json()["error"]["message"]
    assert batch_count(db_conn) == 1


async def test_force_true_ingests_the_same_file_as_a_second_batch(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    first = (await upload(client, VALID_CSV)).json()

    second = await upload(client, VALID_CSV, force=True)

    assert second.status_code == 202, second.text
    body = second.json()
    assert body["batch_id"] != first["batch_id"]
    assert body["job_id"] != first["job_id"]
    key, payload = one_row(
        db_conn, "SELECT idempotency_key, payload FROM ops.job_queue WHERE id = %s", body["job_id"]
    )
    assert key == f"{body['sha256']}:{body['batch_id']}"
    assert payload == {"batch_id": body["batch_id"]}
    assert batch_count(db_conn) == 2


async def test_a_job_left_from_a_deleted_batch_is_not_reused(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    first = (await upload(client, VALID_CSV)).json()
    db_conn.execute("DELETE FROM ops.ingest_batches WHERE id = %s", (first["batch_id"],))

    second = await upload(client, VALID_CSV)

    assert second.status_code == 202, second.text
    body = second.json()
    assert body["job_id"] != first["job_id"]
    payload = one_row(db_conn, "SELECT payload FROM ops.job_queue WHERE id = %s", body["job_id"])
    assert payload == ({"batch_id": body["batch_id"]},)


async def _lock_waiters(conn: psycopg.Connection[Any], expected: int) -> None:
    def enough_waiting() -> bool:
        (waiting,) = one_row(
            conn,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        return bool(waiting >= expected)

    await wait_until_async(f"{expected} requests waiting on the lock", enough_waiting, 10, 0.02)


async def test_two_concurrent_uploads_of_a_new_file_give_one_202_and_one_409(
    client: httpx.AsyncClient, db_connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    # Each request stores from its own worker thread. Holding ops.ingest_uploads makes both
    # reach the database before either commits, so a missing lock would let both through.
    blocker, observer = db_connect(), db_connect()
    statuses: list[int] = []

    async def post() -> None:
        statuses.append((await upload(client, VALID_CSV)).status_code)

    async with anyio.create_task_group() as tasks:
        with blocker.transaction():
            blocker.execute("LOCK TABLE ops.ingest_uploads IN EXCLUSIVE MODE")
            tasks.start_soon(post)
            tasks.start_soon(post)
            await _lock_waiters(observer, 2)

    assert sorted(statuses) == [202, 409]
    assert batch_count(observer) == 1


# --- what is not a usable CSV --------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("judgments.xlsx", "text/csv"), ("judgments.csv", "application/pdf"), ("notes", "image/png")],
)
async def test_a_file_that_is_not_csv_is_415(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any], filename: str, content_type: str
) -> None:
    response = await upload(client, VALID_CSV, filename, content_type)

    assert_error(response, 415, "not_csv", "is not a CSV file")
    assert filename in response.json()["error"]["message"]
    assert batch_count(db_conn) == 0


@pytest.mark.parametrize(
    "content_type", ["text/csv; charset=utf-8", "application/vnd.ms-excel", "text/plain"]
)
async def test_the_content_types_browsers_send_for_csv_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await upload(client, VALID_CSV, "JUDGMENTS.CSV", content_type)

    assert response.status_code == 202, response.text


async def test_a_file_over_the_limit_is_413(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    response = await upload(client, VALID_CSV + b"x" * LIMIT)

    assert_error(response, 413, "too_large", f"upload limit of {LIMIT} bytes")
    assert "MAX_UPLOAD_BYTES" in response.json()["error"]["message"]
    assert batch_count(db_conn) == 0


async def test_a_file_of_exactly_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    row = b"2024-CV-0002,Beta Capital,Jane Roe,$10.00,2024-02-01,Queens\r\n"
    content = VALID_CSV + row * ((LIMIT - len(VALID_CSV)) // len(row))
    content += b" " * (LIMIT - len(content))

    response = await upload(client, content)

    assert len(content) == LIMIT
    assert response.status_code == 202, response.text


def _streamed_form(boundary: str, chunks: int) -> tuple[AsyncIterator[bytes], list[int]]:
    pulled = [0]

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode() + HEADER_ROW
        for _ in range(chunks):
            pulled[0] += 1
            yield b"x" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), pulled


async def test_an_oversized_stream_is_cut_off_soon_after_the_limit(
    client: httpx.AsyncClient,
) -> None:
    body, pulled = _streamed_form("b0undary", chunks=1000)  # 1 MB, sent chunked

    response = await client.post(
        UPLOAD,
        content=body,
        headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )

    assert_error(response, 413, "too_large", f"upload limit of {LIMIT} bytes")
    assert pulled[0] <= LIMIT // 1024 + 1  # stopped at the first chunk past the limit


async def test_a_declared_length_over_the_limit_is_413_before_reading(
    client: httpx.AsyncClient,
) -> None:
    body, pulled = _streamed_form("b0undary", chunks=1000)

    response = await client.post(
        UPLOAD,
        content=body,
        headers={
            **HEADERS,
            "Content-Type": "multipart/form-data; boundary=b0undary",
            "Content-Length": str(1000 * 1024 + 200),
        },
    )

    assert_error(response, 413, "too_large", "MAX_UPLOAD_BYTES")
    assert pulled[0] == 0


@pytest.mark.parametrize("content", [b"", b"\r\n  \n", b"\xef\xbb\xbf"])
async def test_an_empty_file_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await upload(client, content)

    assert_error(response, 400, "empty_file", "the file is empty")


async def test_a_file_that_is_not_utf8_is_400_with_the_offset(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    content = VALID_CSV + b"2024-CV-0003,Caf\xe9 Holdings,Ann Lee,$5.00,2024-03-01,Bronx\r\n"
    offset = content.index(b"\xe9")

    response = await upload(client, content)

    assert_error(response, 400, "not_utf8", f"byte 0xe9 at offset {offset} (line 3)")
    assert "UTF-8" in response.json()["error"]["message"]
    assert batch_count(db_conn) == 0


async def test_a_utf8_bom_is_accepted(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    content = b"\xef\xbb\xbf" + VALID_CSV

    response = await upload(client, content)

    assert response.status_code == 202, response.text
    stored = one_row(db_conn, "SELECT content FROM ops.ingest_uploads")
    assert bytes(stored[0]) == content  # stored as uploaded


async def test_a_header_without_the_required_columns_is_400(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    content = b"Case Number,Defendant,Amount\r\n2024-CV-0004,Bob Poe,$7.00\r\n"

    response = await upload(client, content)

    assert_error(response, 400, "missing_columns", "missing required column(s): Plaintiff")
    assert "Filing Date" in response.json()["error"]["message"]
    assert batch_count(db_conn) == 0


async def test_header_aliases_after_blank_lines_are_accepted(client: httpx.AsyncClient) -> None:
    header = b"\r\n , \r\ncase_no,Creditor,Debtor,Amount,Date Filed\r\n"
    content = header + b"2024-CV-0005,A,B,$1.00,2024-01-02\r\n"

    response = await upload(client, content)

    assert response.status_code == 202, response.text


def test_a_header_that_is_not_csv_is_rejected_before_storing() -> None:
    # Unreachable over HTTP with this suite's 2 KB limit: csv's field limit is 128 KiB.
    with pytest.raises(ApiError) as raised:
        check_csv(b'"' + b"a" * 200_000 + b"\r\n")

    assert (raised.value.status, raised.value.code) == (400, "malformed_csv")
    assert "field larger than field limit" in raised.value.message


# --- what is not a usable form --------------------------------------------------------------


async def test_a_form_without_a_file_field_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        UPLOAD, files={"document": ("judgments.csv", VALID_CSV, "text/csv")}, headers=HEADERS
    )

    assert_error(response, 400, "missing_file", "no field named file")


async def test_two_file_fields_are_400(client: httpx.AsyncClient) -> None:
    files = [("file", ("a.csv", VALID_CSV, "text/csv")), ("file", ("b.csv", VALID_CSV, "text/csv"))]

    response = await client.post(UPLOAD, files=files, headers=HEADERS)

    assert_error(response, 400, "multiple_files", "more than one file")


@pytest.mark.parametrize(
    "request_kwargs",
    [{"json": {"file": "x"}}, {"data": {"file": "x"}}, {"content": VALID_CSV}],
    ids=["json", "urlencoded", "raw"],
)
async def test_a_body_that_is_not_multipart_is_415(
    client: httpx.AsyncClient, request_kwargs: dict[str, Any]
) -> None:
    response = await client.post(UPLOAD, headers=HEADERS, **request_kwargs)

    assert_error(response, 415, "not_multipart", "multipart/form-data in a field named file")


async def test_a_malformed_multipart_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        UPLOAD,
        content=b"this is not a multipart body",
        headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=xyz"},
    )

    assert_error(response, 400, "malformed_multipart", "malformed")


async def test_a_bad_force_value_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post(
        UPLOAD,
        params={"force": "perhaps"},
        files={"file": ("judgments.csv", VALID_CSV, "text/csv")},
        headers=HEADERS,
    )

    assert_error(response, 422, "invalid_request", "query parameter 'force'")


# --- following a batch ---------------------------------------------------------------------


async def test_a_batch_reports_its_status_job_and_counts(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    accepted = (await upload(client, VALID_CSV)).json()
    url = f"/api/v1/intake/batches/{accepted['batch_id']}"

    queued = (await client.get(url)).json()
    db_conn.execute(
        "UPDATE ops.ingest_batches SET status = 'completed', total_rows = 3, valid_rows = 2, "
        "invalid_rows = 1, started_at = now(), finished_at = now() WHERE id = %s",
        (accepted["batch_id"],),
    )
    done = await client.get(url)

    assert queued["status"] == "queued"
    assert queued["job_id"] == accepted["job_id"]
    assert queued["job_status"] == "pending"
    assert queued["total_rows"] is None
    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (
        "completed",
        3,
        2,
        1,
    )
    assert (body["filename"], body["sha256"], body["size_bytes"]) == (
        "judgments.csv",
        accepted["sha256"],
        len(VALID_CSV),
    )


async def test_batch_errors_are_ordered_by_row_and_paged(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    batch_id = (await upload(client, VALID_CSV)).json()["batch_id"]
    for row_number, code in [(9, "bad_date"), (2, "missing_plaintiff"), (5, "bad_amount"),
                             (2, "bad_amount")]:  # fmt: skip
        db_conn.execute(
            "INSERT INTO ops.ingest_row_errors (batch_id, row_number, error_code, message) "
            "VALUES (%s, %s, %s, %s)",
            (batch_id, row_number, code, f"row {row_number}: {code}"),
        )
    url = f"/api/v1/intake/batches/{batch_id}/errors"

    everything = (await client.get(url)).json()
    page = (await client.get(url, params={"limit": 2, "offset": 1})).json()

    assert [(e["row_number"], e["error_code"]) for e in everything["errors"]] == [
        (2, "bad_amount"),
        (2, "missing_plaintiff"),
        (5, "bad_amount"),
        (9, "bad_date"),
    ]
    assert everything["errors"][0] == {
        "row_number": 2,
        "error_code": "bad_amount",
        "message": "row 2: bad_amount",
    }
    assert (everything["total"], everything["limit"], everything["offset"]) == (4, 100, 0)
    assert [(e["row_number"], e["error_code"]) for e in page["errors"]] == [
        (2, "missing_plaintiff"),
        (5, "bad_amount"),
    ]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert (await client.get(f"/api/v1/intake/batches/{batch_id}")).json()["row_error_count"] == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset")],
)
async def test_batch_error_paging_out_of_range_is_422(
    client: httpx.AsyncClient, params: dict[str, int], field: str
) -> None:
    batch_id = (await upload(client, VALID_CSV)).json()["batch_id"]

    response = await client.get(f"/api/v1/intake/batches/{batch_id}/errors", params=params)

    assert_error(response, 422, "invalid_request", f"query parameter '{field}'")


@pytest.mark.parametrize("suffix", ["", "/errors"])
async def test_an_unknown_batch_is_404(client: httpx.AsyncClient, suffix: str) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    response = await client.get(f"/api/v1/intake/batches/{missing}{suffix}")

    assert_error(response, 404, "batch_not_found", missing)


@pytest.mark.parametrize("suffix", ["", "/errors"])
async def test_a_malformed_batch_id_is_422_naming_it(
    client: httpx.AsyncClient, suffix: str
) -> None:
    response = await client.get(f"/api/v1/intake/batches/not-a-uuid{suffix}")

    assert_error(response, 422, "invalid_request", "path parameter 'batch_id'")
