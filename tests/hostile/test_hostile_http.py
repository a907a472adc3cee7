"""Hostile HTTP: each request gets a clear 4xx with the error body, and nothing is stored.

Most cases run in-process (harness.targets.contract, every response checked against the
committed OpenAPI); chunked bodies and slow clients need a real server, so those go over raw
sockets to the API started as a process.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.stack.processes import ReferenceStack
from harness.targets import Target
from harness.targets.contract import TargetApi, target_client

SPEC = json.loads((Path(__file__).parents[1] / "contract" / "openapi.json").read_text())
UPLOAD = "/api/v1/intake/upload"
STRATEGY = "/api/v1/enforcement/strategy"
CSV = b"Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date\r\nCV-1,P,D,1,1/1/2024\r\n"
SQL = "'; DROP TABLE ops.job_queue; --"
SOCKET_TIMEOUT = 10.0  # seconds a raw-socket exchange may stall before the test fails
UPLOAD_LIMIT = 4096  # MAX_UPLOAD_BYTES of the started API: a chunked upload passes it soon


@pytest.fixture
def api(database_url: str) -> Iterator[TargetApi]:
    with target_client(Target(), database_url, SPEC) as served:
        yield served


def stored(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM ops.ingest_batches), (SELECT count(*) FROM ops.job_queue)"
    ).fetchone()
    assert row is not None
    return tuple(row)


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert len(error["message"]) > 20, error  # says what is wrong and how to fix it


@pytest.mark.parametrize(
    "filename", ["../../etc/passwd.csv", "..\\..\\boot.csv", "a/../../b.csv", "../x.csv"]
)
def test_a_file_name_that_climbs_folders_is_400(
    api: TargetApi, db_conn: psycopg.Connection[Any], filename: str
) -> None:
    response = api.client.post(
        UPLOAD, files={"file": (filename, CSV, "text/csv")}, headers=api.key_headers()
    )

    assert_refused(response, 400, "invalid_filename")
    assert stored(db_conn) == (0, 0)


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code"),
    [
        (UPLOAD, {"content": CSV, "headers": {"Content-Type": "text/csv"}}, 415, "not_multipart"),
        (UPLOAD, {"json": {"file": "x"}}, 415, "not_multipart"),
        (UPLOAD, {"files": {"file": ("x.json", b"{}", "application/json")}}, 415, "not_csv"),
        (UPLOAD, {"files": {"file": ("x.csv", CSV, "image/png")}}, 415, "not_csv"),
        (
            STRATEGY,
            {"content": b"judgment_id=1", "headers": {"Content-Type": "text/plain"}},
            422,
            "invalid_request",
        ),
        (STRATEGY, {"json": {"judgment_id": SQL}}, 422, "invalid_request"),
        (STRATEGY, {"json": {"judgment_id": ["x"] * 10}}, 422, "invalid_request"),
        (
            STRATEGY,
            {
                "content": b'{"judgment_id": "' + b"9" * 70_000 + b'"}',
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "too_large",
        ),
        (
            f"{UPLOAD}?force={SQL}",
            {"files": {"file": ("x.csv", CSV, "text/csv")}},
            422,
            "invalid_request",
        ),
    ],
    ids=[
        "upload-raw-csv",
        "upload-json",
        "upload-json-file",
        "upload-png-type",
        "strategy-text",
        "strategy-sql-id",
        "strategy-list",
        "strategy-oversized",
        "upload-sql-force",
    ],
)
def test_wrong_content_types_bad_fields_and_oversized_bodies_are_refused(  # noqa: PLR0917
    api: TargetApi,
    db_conn: psycopg.Connection[Any],
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    headers = {**kwargs.pop("headers", {}), **api.key_headers()}

    response = api.client.post(path, headers=headers, **kwargs)

    assert_refused(response, status, code)
    assert stored(db_conn) == (0, 0)


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/jobs/{SQL}",
        f"/api/v1/intake/batches/{SQL}",
        f"/api/v1/intake/batches/00000000-0000-4000-8000-000000000000/errors?limit={SQL}",
    ],
)
def test_sql_in_ids_and_query_parameters_is_422(
    api: TargetApi, db_conn: psycopg.Connection[Any], path: str
) -> None:
    assert_refused(api.client.get(path), 422, "invalid_request")
    assert db_conn.execute("SELECT to_regclass('ops.job_queue') IS NOT NULL").fetchone() == (True,)


def test_sql_in_free_text_is_stored_as_received(
    api: TargetApi, db_conn: psycopg.Connection[Any]
) -> None:
    filename = f"{SQL}.csv"

    response = api.client.post(
        UPLOAD, files={"file": (filename, CSV, "text/csv")}, headers=api.key_headers()
    )

    assert response.status_code == 202, response.text
    assert db_conn.execute("SELECT filename FROM ops.ingest_batches").fetchall() == [(filename,)]
    assert stored(db_conn) == (1, 1)  # the job table is there, with the one job


# --- over a real server: chunked bodies and slow clients --------------------------------------


def exchange(stack: ReferenceStack, head: str, body_parts: list[bytes], pause: float) -> bytes:
    """Send `head` then each body part (`pause` seconds apart); the response bytes."""
    with socket.create_connection(("127.0.0.1", stack.api_port), SOCKET_TIMEOUT) as sock:
        sock.sendall(head.encode())
        try:
            for part in body_parts:
                sock.sendall(part)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body: that is the point
        received = b""
        while not _complete(received):
            data = sock.recv(65536)
            if not data:
                break
            received += data
        return received


def _complete(response: bytes) -> bool:
    """Whether `response` holds the head and the whole body its Content-Length announces."""
    head, separator, body = response.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_chunked_bodies_without_a_length_and_slow_clients_get_a_clear_4xx(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.extra_env["MAX_UPLOAD_BYTES"] = str(UPLOAD_LIMIT)
    reference_stack.start_api()
    key = reference_stack.api_key
    chunked = "Transfer-Encoding: chunked\r\n"
    part_head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + CSV
    )
    oversized_upload = exchange(
        reference_stack,
        f"POST {UPLOAD} HTTP/1.1\r\nHost: t\r\nX-DRAGONFLY-API-KEY: {key}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\n{chunked}\r\n",
        [chunk(part_head)] + [chunk(b"CV-9,P,D,1,1/1/2024\r\n" * 200) for _ in range(200)],
        0.0,
    )

    oversized_json = exchange(
        reference_stack,
        f"POST {STRATEGY} HTTP/1.1\r\nHost: t\r\nX-DRAGONFLY-API-KEY: {key}\r\n"
        f"Content-Type: application/json\r\n{chunked}\r\n",
        [chunk(b" " * 16384) for _ in range(8)] + [b"0\r\n\r\n"],
        0.0,
    )
    slow_without_key = exchange(
        reference_stack,
        f"POST {UPLOAD} HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 1000000\r\n\r\n",
        [b"--b\r\n"] * 3,
        0.5,
    )
    slow_with_key = exchange(
        reference_stack,
        f"POST {STRATEGY} HTTP/1.1\r\nHost: t\r\nX-DRAGONFLY-API-KEY: {key}\r\n"
        f"Content-Type: application/json\r\n{chunked}\r\n",
        [chunk(b'{"judgment_id": '), chunk(b'"nope"}'), b"0\r\n\r\n"],
        0.5,
    )

    assert oversized_upload.startswith(b"HTTP/1.1 413"), oversized_upload[:300]
    assert f"upload limit of {UPLOAD_LIMIT} bytes".encode() in oversized_upload
    assert oversized_json.startswith(b"HTTP/1.1 413"), oversized_json[:300]
    assert b'"too_large"' in oversized_json
    assert slow_without_key.startswith(b"HTTP/1.1 401"), slow_without_key[:300]
    assert b'"invalid_api_key"' in slow_without_key
    assert slow_with_key.startswith(b"HTTP/1.1 422"), slow_with_key[:300]
    assert stored(db_conn) == (0, 0)
    assert key.encode() not in oversized_upload + oversized_json + slow_without_key + slow_with_key
